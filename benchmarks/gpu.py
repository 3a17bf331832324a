"""GPU benchmark: layerwise on CuPy against PyTorch CUDA (eager with fused Adam, and
torch.compile) and JAX jit, training and inference, one run, reported as ratios.

Configs B (64-128-10, batch 64), C (784-512-512-10, batch 128), D (1024-4096-4096-10, batch
512) and E (2048-8192-8192-1000, batch 4096), all Adam, float32. Every framework trains the
same data in the same batches; an epoch is timed from its start to a device synchronisation
at its end (no per-step read-back for any of them), the best of ``--repeats`` epochs after
one warm-up epoch. Inference is ``predict`` over the data in batches of 4096 (E: 8192),
results brought back to the host as every framework's user would.

    python benchmarks/run.py --device gpu [--configs B,C,D,E] [--write report.md]
    python benchmarks/gpu.py               (the same)
"""

from __future__ import annotations

import argparse
import itertools
import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np

CONFIGS = {  # sizes, batch, samples per epoch
    "B": ((64, 128, 10), 64, 65536),
    "C": ((784, 512, 512, 10), 128, 65536),
    "D": ((1024, 4096, 4096, 10), 512, 16384),
    "E": ((2048, 8192, 8192, 1000), 4096, 32768),
}


def data(sizes: tuple[int, ...], n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return (rng.normal(size=(n, sizes[0])).astype(np.float32),
            rng.integers(0, sizes[-1], n).astype(np.int64))


def bench_layerwise(sizes, batch, x, y):
    import cupy

    import layerwise as lw
    from layerwise.layers import Dense

    lw.backend.set_backend("cupy")
    model = lw.Sequential([Dense(sizes[1], activation="relu", input_dim=sizes[0]),
                           *[Dense(u, activation="relu") for u in sizes[2:-1]],
                           Dense(sizes[-1], activation="softmax")])
    model.compile(optimizer=lw.optimizers.Adam(0.001), loss="sparse_categorical_crossentropy")
    xd, yd = cupy.asarray(x), cupy.asarray(y)  # data already on the device, used in place

    def epoch():
        model.fit(xd, yd, batch_size=batch, epochs=1, verbose=0, shuffle=False)
        cupy.cuda.runtime.deviceSynchronize()

    return epoch, lambda inputs: model.predict(inputs, batch_size=4096)


def bench_torch(sizes, batch, x, y, compiled=False):
    import torch

    layers: list[Any] = []
    for a, b in itertools.pairwise(sizes):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    layers.append(torch.nn.Linear(sizes[-2], sizes[-1]))
    net = torch.nn.Sequential(*layers).cuda()
    optimizer = torch.optim.Adam(net.parameters(), lr=0.001, fused=True)
    xd, yd = torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda()
    forward = torch.compile(net) if compiled else net

    def step(xb, yb):
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(forward(xb), yb).backward()
        optimizer.step()

    def epoch():
        for start in range(0, len(x), batch):
            step(xd[start:start + batch], yd[start:start + batch])
        torch.cuda.synchronize()

    def predict(inputs):
        with torch.no_grad():
            data_in = torch.from_numpy(inputs).cuda()
            return torch.cat([torch.softmax(forward(data_in[i:i + 4096]), 1)
                              for i in range(0, len(inputs), 4096)]).cpu().numpy()

    return epoch, predict


def bench_jax(sizes, batch, x, y):
    import jax
    import jax.numpy as jnp
    import optax

    key = jax.random.PRNGKey(0)
    params = []
    for a, b in itertools.pairwise(sizes):
        key, sub = jax.random.split(key)
        params.append((jax.random.normal(sub, (a, b)) * (2.0 / a) ** 0.5, jnp.zeros(b)))

    def forward(p, xb):
        for w, b in p[:-1]:
            xb = jax.nn.relu(xb @ w + b)
        return xb @ p[-1][0] + p[-1][1]

    def loss(p, xb, yb):
        return optax.softmax_cross_entropy_with_integer_labels(forward(p, xb), yb).mean()

    tx = optax.adam(0.001)
    state = [params, tx.init(params)]

    @jax.jit
    def step(p, s, xb, yb):
        value, grads = jax.value_and_grad(loss)(p, xb, yb)
        updates, s = tx.update(grads, s, p)
        return optax.apply_updates(p, updates), s, value

    xd, yd = jax.device_put(x), jax.device_put(y)

    def epoch():
        p, s = state
        for start in range(0, len(x), batch):
            p, s, _ = step(p, s, xd[start:start + batch], yd[start:start + batch])
        jax.block_until_ready(p)
        state[:] = [p, s]

    predict_jit = jax.jit(lambda p, xb: jax.nn.softmax(forward(p, xb)))
    return epoch, lambda inputs: np.concatenate([
        np.asarray(predict_jit(state[0], inputs[i:i + 4096]))
        for i in range(0, len(inputs), 4096)])


FRAMEWORKS: dict[str, Callable[..., Any]] = {
    "layerwise (CuPy)": bench_layerwise,
    "PyTorch eager (fused Adam)": bench_torch,
    "torch.compile": lambda *a: bench_torch(*a, compiled=True),
    "JAX jit": bench_jax,
}


def measure(make, sizes, batch, n, repeats):
    x, y = data(sizes, n)
    epoch, predict = make(sizes, batch, x, y)
    epoch()  # warm-up (compilation, allocation)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - start)
    predict(x[:4096])
    start = time.perf_counter()
    predict(x)
    return n / min(times), n / (time.perf_counter() - start)


def versions() -> str:
    parts = [f"Python {platform.python_version()}"]
    for name in ("cupy", "torch", "jax"):
        try:
            module = __import__(name)
            parts.append(f"{name} {module.__version__}")
        except ImportError:
            parts.append(f"{name} missing")
    try:
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(0)
        parts.insert(0, f"GPU {props['name'].decode()}")
    except Exception as exc:
        parts.insert(0, f"no GPU ({exc})")
    return ", ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="B,C,D,E")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", help="also write the report (markdown) to this file")
    args = parser.parse_args(argv)
    lines = [f"GPU benchmark: {versions()}", "",
             "| config | framework | training samples/s | inference samples/s | "
             "training vs layerwise | inference vs layerwise |", "|---|---|---|---|---|---|"]
    for name in args.configs.split(","):
        sizes, batch, n = CONFIGS[name]
        results = {}
        for framework, make in FRAMEWORKS.items():
            try:
                results[framework] = measure(make, sizes, batch, n, args.repeats)
            except Exception as exc:
                print(f"{name} {framework}: skipped ({type(exc).__name__}: {exc})")
        ours = results.get("layerwise (CuPy)")
        for framework, (train, infer) in results.items():
            ratio = (f"{ours[0] / train:.2f}", f"{ours[1] / infer:.2f}") if ours else ("-", "-")
            lines.append(f"| {name} | {framework} | {train:,.0f} | {infer:,.0f} | "
                         f"{ratio[0]} | {ratio[1]} |")
        print("\n".join(lines[-len(results):]), flush=True)
    report = "\n".join(lines)
    print("\n" + report)
    if args.write:
        with open(args.write, "w", encoding="utf-8") as handle:
            handle.write(report + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
