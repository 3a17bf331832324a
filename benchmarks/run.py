"""Training and inference throughput of layerwise against PyTorch, JAX and scikit-learn.

Every framework trains the same networks on the same float32 data with the same batch size
and optimizer, one epoch at a time (shuffled mini-batches, the last partial batch kept);
warm-up is excluded and the median of the repeats is reported as samples per second, with
layerwise's ratio to each peer. The GEMM bound is the time of only the matrix multiplies one
training step needs (per layer X@W, Xᵀ@dY, dY@Wᵀ) measured with NumPy on the same shapes (and
with MKL, as layerwise calls it, when the ``mkl`` extra is installed). Inference is ``predict``
in batches of 1024 returning the class probabilities as one NumPy array, in every framework.

Each framework and configuration runs in ``--runs`` fresh processes (so that no framework's
thread pool is left spinning while another is timed), interleaved (every framework once, then
again: a slow stretch of a shared machine slows all alike); the median is reported with its
spread.
Every peer is written as its users write it: JAX with one jitted call per step and the loss
summed on the device (read once per epoch), and with the whole epoch in one ``lax.scan``;
PyTorch eager with its default and its fused optimizer, the loss read once per epoch; Keras 3's
``fit`` on the JAX backend; scikit-learn's MLPClassifier (``partial_fit``: one epoch). JAX and
PyTorch visit the samples in the same orders. With MKL installed, layerwise runs three times:
as installed (``auto``: it measures both BLAS and keeps the faster), and with each forced.
layerwise trains with ``compile(jit_compile=True)``: the compiled kernel of
``layerwise.compiled`` (numba, the ``fast`` extra), as JAX's step is jitted; ``layerwise_python``
runs with numba switched off (``LAYERWISE_JIT=0``), as without the ``fast`` extra.
The report names the CPU model and vendor.

    python benchmarks/run.py                      # all configurations, all installed peers
    python benchmarks/run.py --configs C --frameworks layerwise,jax
    python benchmarks/run.py --memory             # also peak resident memory training C
    python benchmarks/run.py --write docs/benchmarks.md
    python benchmarks/run.py --clean-env          # rerun with OPENBLAS_CORETYPE/L2_SIZE unset

Peers come from the optional ``bench`` extra; a peer that is not installed is skipped and the
table says so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


@dataclass(frozen=True)
class Config:
    name: str
    sizes: tuple[int, ...]  # input, hidden..., output
    activation: str
    batch_size: int
    optimizer: str  # "momentum" (SGD, momentum 0.9) or "adam"
    samples: int  # per timed epoch
    learning_rate: float

    @property
    def binary(self) -> bool:
        return self.sizes[-1] == 1

    def describe(self) -> str:
        head = "sigmoid + binary cross-entropy" if self.binary else "softmax + cross-entropy"
        opt = "SGD momentum 0.9" if self.optimizer == "momentum" else (
            "SGD" if self.optimizer == "sgd" else "Adam")
        return (f"{'-'.join(map(str, self.sizes))}, {self.activation}, {head}, batch "
                f"{self.batch_size}, {opt}")


CONFIGS = {
    "A": Config("A", (2, 16, 16, 1), "tanh", 32, "momentum", 65536, 0.01),
    "B": Config("B", (64, 128, 10), "relu", 64, "adam", 65536, 0.001),
    "C": Config("C", (784, 512, 512, 10), "relu", 128, "adam", 16384, 0.001),
    "D": Config("D", (1024, 4096, 4096, 10), "relu", 512, "adam", 4096, 0.001),
}


def with_optimizer(config: Config, optimizer: str) -> Config:
    return Config(f"{config.name} ({optimizer})", config.sizes, config.activation,
                  config.batch_size, optimizer, config.samples, 0.01)


def make_data(config: Config, samples: int | None = None, seed: int = 0
              ) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = samples or config.samples
    x = rng.normal(size=(n, config.sizes[0])).astype(np.float32)
    if config.binary:
        y = rng.integers(0, 2, n).astype(np.float32)
    else:
        y = rng.integers(0, config.sizes[-1], n).astype(np.int64)
    return x, y


# ---- one runner per framework: (train one epoch, predict) ------------------------------

Runner = tuple[Callable[[], None], Callable[[np.ndarray], Any]]


def run_layerwise(config: Config, x: np.ndarray, y: np.ndarray) -> Runner:
    import layerwise as lw
    from layerwise.layers import Dense

    sizes = config.sizes
    layers = [Dense(sizes[1], activation=config.activation, input_dim=sizes[0])]
    layers += [Dense(units, activation=config.activation) for units in sizes[2:-1]]
    layers.append(Dense(sizes[-1], activation="sigmoid" if config.binary else "softmax"))
    model = lw.Sequential(layers)
    optimizer = {"momentum": lw.optimizers.SGD(config.learning_rate, momentum=0.9),
                 "sgd": lw.optimizers.SGD(config.learning_rate),
                 "adam": lw.optimizers.Adam(config.learning_rate)}[config.optimizer]
    # the compiled kernel (layerwise.compiled). fit(epochs=1) is called once per timed epoch
    # here; "auto" would compile only for runs of 1000 steps or more (a real fit of 10 epochs
    # of C has 1280), so the harness asks for it, as JAX's is jitted
    jit = os.environ.get("BENCH_JIT_COMPILE", "1") == "1" or "auto"
    model.compile(optimizer=optimizer, loss="binary_crossentropy" if config.binary
                  else "sparse_categorical_crossentropy", jit_compile=jit)

    def epoch() -> None:
        model.fit(x, y, batch_size=config.batch_size, epochs=1, verbose=0)

    return epoch, lambda data: model.predict(data, batch_size=1024)


def run_torch(config: Config, x: np.ndarray, y: np.ndarray, compiled: bool = False,
              fused: bool = False) -> Runner:
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    act = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}[config.activation]
    modules: list[Any] = []
    for fan_in, fan_out in zip(config.sizes[:-2], config.sizes[1:-1]):
        modules += [torch.nn.Linear(fan_in, fan_out), act()]
    modules.append(torch.nn.Linear(config.sizes[-2], config.sizes[-1]))
    net = torch.nn.Sequential(*modules)
    if config.optimizer == "adam":
        opt = torch.optim.Adam(net.parameters(), lr=config.learning_rate,
                               **({"fused": True} if fused else {}))
    else:
        opt = torch.optim.SGD(net.parameters(), lr=config.learning_rate,
                              momentum=0.9 if config.optimizer == "momentum" else 0.0,
                              **({"fused": True} if fused else {}))
    loss_fn = (torch.nn.BCEWithLogitsLoss() if config.binary else torch.nn.CrossEntropyLoss())
    forward = torch.compile(net) if compiled else net
    xt = torch.from_numpy(x)
    yt = torch.from_numpy(y[:, None] if config.binary else y)
    n, bs = len(x), config.batch_size

    orders = np.random.default_rng(0)

    def epoch() -> None:
        order = torch.from_numpy(orders.permutation(n))  # the same orders as JAX's
        total = torch.zeros(())
        for start in range(0, n, bs):
            idx = order[start:start + bs]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(forward(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            total += loss.detach() * len(idx)
        float(total) / n  # the epoch's mean loss, read once, as a PyTorch user logs it

    def predict(data: np.ndarray) -> Any:  # probabilities in one array, as predict() gives
        with torch.inference_mode():
            t = torch.from_numpy(data)
            outs = [forward(t[i:i + 1024]) for i in range(0, len(t), 1024)]
            probs = torch.sigmoid if config.binary else lambda z: torch.softmax(z, dim=1)
            return torch.cat([probs(o) for o in outs]).numpy()

    return epoch, predict


def run_jax(config: Config, x: np.ndarray, y: np.ndarray, scan: bool = False) -> Runner:
    import jax
    import jax.numpy as jnp

    key = jax.random.PRNGKey(0)
    params = []
    for fan_in, fan_out in zip(config.sizes[:-1], config.sizes[1:]):
        key, sub = jax.random.split(key)
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        params.append((jax.random.uniform(sub, (fan_in, fan_out), jnp.float32, -limit, limit),
                       jnp.zeros((fan_out,), jnp.float32)))
    act = {"relu": jax.nn.relu, "tanh": jnp.tanh}[config.activation]

    def logits(params: Any, xb: Any) -> Any:
        for w, b in params[:-1]:
            xb = act(xb @ w + b)
        w, b = params[-1]
        return xb @ w + b

    def loss_fn(params: Any, xb: Any, yb: Any) -> Any:
        z = logits(params, xb)
        if config.binary:
            z = z[:, 0]
            return jnp.mean(jnp.maximum(z, 0) - z * yb + jnp.log1p(jnp.exp(-jnp.abs(z))))
        return jnp.mean(jax.nn.logsumexp(z, axis=1) - jnp.take_along_axis(
            z, yb[:, None], axis=1)[:, 0])

    lr = config.learning_rate
    if config.optimizer == "adam":
        state: Any = (jax.tree_util.tree_map(jnp.zeros_like, params),
                      jax.tree_util.tree_map(jnp.zeros_like, params), jnp.zeros((), jnp.int32))

        def update(params: Any, grads: Any, state: Any) -> Any:
            m, v, t = state
            t = t + 1
            m = jax.tree_util.tree_map(lambda m, g: 0.9 * m + 0.1 * g, m, grads)
            v = jax.tree_util.tree_map(lambda v, g: 0.999 * v + 0.001 * g * g, v, grads)
            step = lr / (1 - 0.9 ** t)
            scale = 1 / jnp.sqrt(1 - 0.999 ** t)
            params = jax.tree_util.tree_map(
                lambda p, m, v: p - step * m / (jnp.sqrt(v) * scale + 1e-8), params, m, v)
            return params, (m, v, t)
    else:
        momentum = 0.9 if config.optimizer == "momentum" else 0.0
        state = jax.tree_util.tree_map(jnp.zeros_like, params)

        def update(params: Any, grads: Any, state: Any) -> Any:
            state = jax.tree_util.tree_map(lambda v, g: momentum * v - lr * g, state, grads)
            return jax.tree_util.tree_map(lambda p, v: p + v, params, state), state

    def one_step(params: Any, state: Any, xs: Any, ys: Any, idx: Any) -> Any:
        loss, grads = jax.value_and_grad(loss_fn)(params, xs[idx], ys[idx])
        params, state = update(params, grads, state)
        return params, state, loss

    step = jax.jit(one_step)

    @jax.jit
    def sliced_step(params: Any, state: Any, total: Any, xs: Any, ys: Any, order: Any,
                    start: Any) -> Any:
        """One full batch: its indices sliced on the device, the loss summed there."""
        idx = jax.lax.dynamic_slice(order, (start,), (config.batch_size,))
        params, state, loss = one_step(params, state, xs, ys, idx)
        return params, state, total + loss * config.batch_size

    @jax.jit
    def scan_epoch(params: Any, state: Any, xs: Any, ys: Any, batches: Any) -> Any:
        def body(carry: Any, idx: Any) -> Any:
            p, s, total = carry
            p, s, loss = one_step(p, s, xs, ys, idx)
            return (p, s, total + loss * idx.shape[0]), None

        (params, state, total), _ = jax.lax.scan(body, (params, state, jnp.zeros(())),
                                                 batches)
        return params, state, total

    xs, ys = jnp.asarray(x), jnp.asarray(y)
    n, bs = len(x), config.batch_size
    rng = np.random.default_rng(0)  # the same orders as PyTorch's
    holder = {"params": params, "state": state}
    probs = jax.nn.sigmoid if config.binary else jax.nn.softmax
    predict_jit = jax.jit(lambda params, xb: probs(logits(params, xb)))

    def epoch() -> None:
        order = rng.permutation(n)
        p, s = holder["params"], holder["state"]
        full = n // bs * bs
        if scan:  # the epoch's full batches in one compiled call (lax.scan over the steps)
            p, s, total = scan_epoch(p, s, xs, ys, order[:full].reshape(-1, bs))
        else:  # one compiled call per step; the order goes to the device once per epoch
            total, device_order = jnp.zeros(()), jnp.asarray(order)
            for start in range(0, full, bs):
                p, s, total = sliced_step(p, s, total, xs, ys, device_order, start)
        if full < n:  # the last partial batch
            p, s, loss = step(p, s, xs, ys, order[full:])
            total = total + loss * (n - full)
        float(total) / n  # the epoch's mean loss: one read per epoch, as a JAX user logs it
        holder["params"], holder["state"] = p, s

    def predict(data: np.ndarray) -> Any:
        outs = [predict_jit(holder["params"], data[i:i + 1024]) for i in range(0, len(data),
                                                                               1024)]
        return np.concatenate([np.asarray(o) for o in outs])

    return epoch, predict


def run_sklearn(config: Config, x: np.ndarray, y: np.ndarray) -> Runner:
    import warnings

    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=config.sizes[1:-1], activation=config.activation,
                        solver="adam" if config.optimizer == "adam" else "sgd",
                        batch_size=config.batch_size, learning_rate_init=config.learning_rate,
                        momentum=0.9 if config.optimizer == "momentum" else 0.0,
                        nesterovs_momentum=False, alpha=0.0, shuffle=True, random_state=0)
    classes = np.unique(y)
    labels = y.astype(np.int64)

    def epoch() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.partial_fit(x, labels, classes=classes)  # one pass over the data

    def predict(data: np.ndarray) -> Any:
        return np.concatenate([clf.predict_proba(data[i:i + 1024])
                               for i in range(0, len(data), 1024)])

    return epoch, predict


def run_keras(config: Config, x: np.ndarray, y: np.ndarray) -> Runner:
    """Keras 3's own ``fit`` on the JAX backend (KERAS_BACKEND=jax is set for its child)."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((config.sizes[0],))])
    for units in config.sizes[1:-1]:
        model.add(keras.layers.Dense(units, activation=config.activation))
    model.add(keras.layers.Dense(config.sizes[-1],
                                 activation="sigmoid" if config.binary else "softmax"))
    optimizer = (keras.optimizers.Adam(config.learning_rate) if config.optimizer == "adam"
                 else keras.optimizers.SGD(config.learning_rate, momentum=0.9
                                           if config.optimizer == "momentum" else 0.0))
    model.compile(optimizer=optimizer, loss="binary_crossentropy" if config.binary
                  else "sparse_categorical_crossentropy")

    def epoch() -> None:
        model.fit(x, y, batch_size=config.batch_size, epochs=1, verbose=0, shuffle=True)

    return epoch, lambda data: model.predict(data, batch_size=1024, verbose=0)


FRAMEWORKS: dict[str, tuple[str, Callable[..., Runner]]] = {
    "layerwise": ("layerwise", run_layerwise),
    "layerwise_numpy": ("layerwise", run_layerwise),
    "layerwise_python": ("layerwise", run_layerwise),
    "torch": ("torch", run_torch),
    "torch_fused": ("torch", lambda c, x, y: run_torch(c, x, y, fused=True)),
    "torch_compile": ("torch", lambda c, x, y: run_torch(c, x, y, compiled=True)),
    "jax": ("jax", run_jax),
    "jax_scan": ("jax", lambda c, x, y: run_jax(c, x, y, scan=True)),
    "keras_jax": ("keras", run_keras),
    "sklearn": ("sklearn", run_sklearn),
}
LABELS = {"layerwise": "layerwise", "layerwise_numpy": "layerwise (NumPy BLAS)",
          "layerwise_python": "layerwise without numba",
          "layerwise_mkl": "layerwise (MKL)", "torch": "PyTorch eager",
          "torch_fused": "PyTorch eager, fused optimizer", "torch_compile": "torch.compile",
          "jax": "JAX jit (one call per step)", "jax_scan": "JAX jit + lax.scan epoch",
          "keras_jax": "Keras 3 fit (JAX)", "sklearn": "scikit-learn"}
FRAMEWORKS["layerwise_mkl"] = ("layerwise", run_layerwise)
#: environment of each framework's child process: layerwise as installed ("auto" measures),
#: and with each BLAS forced; Keras on its JAX backend
ENVIRONMENT = {"layerwise_numpy": {"LAYERWISE_BLAS": "numpy"},
               "layerwise_python": {"LAYERWISE_JIT": "0", "BENCH_JIT_COMPILE": "0"},
               "layerwise_mkl": {"LAYERWISE_BLAS": "mkl"},
               "keras_jax": {"KERAS_BACKEND": "jax"}}


def has_mkl() -> bool:
    """Whether layerwise would use MKL (asked in a child, so that this process's BLAS stays
    NumPy's own while it measures the GEMM bound)."""
    code = "import layerwise.blas as b; print(b.pending() or b.blas_name() == 'mkl')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return result.stdout.strip() == "True"


def installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def time_training(runner: Runner, config: Config, repeats: int) -> float:
    epoch, _ = runner
    epoch()  # warm-up: compilation, caches, buffers
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - start)
    return config.samples / float(np.median(times))


#: seconds of timed predict calls per process, at least (see time_inference)
INFER_MIN_SECONDS = 0.25


def time_inference(runner: Runner, x: np.ndarray, repeats: int,
                   min_seconds: float = INFER_MIN_SECONDS) -> float:
    """Samples/s of ``predict`` over ``x``: the median of at least ``repeats`` timed calls,
    more where those take under ``min_seconds`` (config B's call is 1-2 ms: three of them
    would be a 5 ms measurement, which one 20 ms stretch of a slow host decides)."""
    _, predict = runner
    predict(x)
    times: list[float] = []
    while len(times) < repeats or sum(times) < min_seconds:
        start = time.perf_counter()
        predict(x)
        times.append(time.perf_counter() - start)
    return len(x) / float(np.median(times))


def gemm_bound(config: Config, repeats: int = 50, library: str = "numpy") -> float:
    """Samples/s if a training step cost only its matrix multiplies (float32), by NumPy's
    ``matmul`` or, with ``library="mkl"``, as layerwise runs them with MKL installed (MKL's
    sgemm from a million multiply-adds, NumPy's below)."""
    if library == "mkl":  # layerwise's own dispatch: MKL, or NumPy for small products
        from layerwise import blas

        blas.set_blas("mkl")
        pool = blas.one_thread_pool()  # as inside fit: NumPy's BLAS on one thread
        pool.__enter__()  # held by this frame until the function returns
        matmul = blas.matmul
    else:
        matmul = np.matmul
    rng = np.random.default_rng(0)
    bs = config.batch_size
    ops = []
    for fan_in, fan_out in zip(config.sizes[:-1], config.sizes[1:]):
        x = rng.normal(size=(bs, fan_in)).astype(np.float32)
        w = rng.normal(size=(fan_in, fan_out)).astype(np.float32)
        dy = rng.normal(size=(bs, fan_out)).astype(np.float32)
        out_z = np.empty((bs, fan_out), np.float32)
        out_w = np.empty((fan_in, fan_out), np.float32)
        out_x = np.empty((bs, fan_in), np.float32)
        ops += [(x, w, out_z), (x.T, dy, out_w), (dy, w.T, out_x)]

    def step() -> None:
        for a, b, out in ops:
            matmul(a, b, out)

    for _ in range(20):  # warm-up: MKL and OpenBLAS start their threads and buffers
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return bs / float(np.median(times))


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM). Unlike ru_maxrss, it starts afresh at
    exec, so a child does not inherit its parent's peak."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmHWM in /proc/self/status")


# ---- one fresh process per framework and configuration ---------------------------------
# Thread pools (OpenBLAS, MKL's OpenMP, PyTorch's, XLA's) keep spinning threads after use;
# in one process they would slow whichever framework runs next.

def all_configs() -> dict[str, Config]:
    return {**CONFIGS, **{f"{c} (sgd)": with_optimizer(CONFIGS[c], "sgd") for c in "CD"}}


def throughput_child(framework: str, config_name: str, repeats: int) -> None:
    config = all_configs()[config_name]
    x, y = make_data(config)
    runner = FRAMEWORKS[framework][1](config, x, y)
    result: dict[str, Any] = {"train": time_training(runner, config, repeats)}
    if config.name in ("B", "C", "D"):
        xi = make_data(config, samples=8192, seed=1)[0]
        result["infer"] = time_inference(runner, xi, repeats)
    if framework.startswith("layerwise"):
        from layerwise import blas, compiled

        result["blas"] = blas.blas_name()  # what "auto" measured and chose, or was forced
        # and which training kernels ran: their products' library (blas.kernel_library),
        # "onednn-parts" for the split kernel (layerwise.parts_kernel)
        kernel = sorted({f"predict: {key[-1]}" if key[0] == "predict" else key[0]
                         for key in compiled._kernels})
        if kernel:
            result["blas"] += " (kernel: " + ", ".join(kernel) + ")"
    print(json.dumps(result))


def run_child(args: list[str], framework: str | None = None) -> dict[str, Any]:
    env = {**os.environ, **ENVIRONMENT.get(framework or "", {})}
    result = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                            timeout=3600, env=env)
    if result.returncode != 0:
        last = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "?"
        return {"error": f"failed: {last[:60]}"}
    return json.loads(result.stdout.strip().splitlines()[-1])



def memory_child(framework: str, config_name: str) -> None:
    config = CONFIGS[config_name]
    x, y = make_data(config)
    runner = FRAMEWORKS[framework][1](config, x, y)
    for _ in range(2):
        runner[0]()
    print(json.dumps({"peak_mb": peak_rss_mb()}))


def peak_memory(framework: str, config_name: str) -> float | str:
    result = run_child(["--memory-child", framework, "--configs", config_name], framework)
    return result.get("peak_mb", result.get("error", "?"))


# ---- report -----------------------------------------------------------------------------

def _cpuinfo(field: str) -> str | None:
    """The value of ``field`` in /proc/cpuinfo (Linux), or None."""
    try:
        with open("/proc/cpuinfo") as handle:
            return next(line.split(":", 1)[1].strip() for line in handle
                        if line.startswith(field))
    except (OSError, StopIteration):
        return None


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "numpy": np.__version__,
                            "cores": os.cpu_count(), "platform": platform.platform()}
    info["cpu"] = _cpuinfo("model name") or platform.processor()
    info["cpu_vendor"] = _cpuinfo("vendor_id") or platform.machine()
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [{k: pool.get(k) for k in ("internal_api", "version", "architecture",
                                                   "num_threads", "threading_layer")}
                        for pool in threadpool_info() if pool.get("user_api") == "blas"]
    except ImportError:
        info["blas"] = "threadpoolctl not installed"
    from importlib.metadata import PackageNotFoundError, version

    for module, package in (("layerwise", "layerwise"), ("torch", "torch"), ("jax", "jax"),
                            ("keras", "keras"), ("sklearn", "scikit-learn")):
        try:  # the version without importing (keras picks its backend at import)
            info[module] = version(package)
        except PackageNotFoundError:
            pass
    info["env"] = {k: os.environ[k] for k in OPENBLAS_VARS if k in os.environ} or "unset"
    return info


def fmt(value: float | str | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return f"{value / 1e6:.2f}M" if value >= 1e6 else f"{value / 1e3:.1f}k" if value >= 1e3 \
        else f"{value:.0f}"


def table(title: str, results: dict[str, dict[str, float | str]], frameworks: list[str],
          bounds: dict[str, dict[str, float]] | None = None,
          spreads: dict[str, dict[str, float]] | None = None) -> str:
    """Markdown: throughput per framework (± half the range over the fresh-process runs, as a
    share of the median), then layerwise's ratio to each peer, to the fastest peer, and to
    each GEMM bound."""
    bounds, spreads = bounds or {}, spreads or {}
    ours = [f for f in frameworks if f.startswith("layerwise")]
    peers = [f for f in frameworks if f not in ours]
    head = ["config", *(LABELS[f] for f in frameworks), *bounds]
    if "layerwise" in ours:
        head += [f"layerwise / {LABELS[f]}" for f in peers]
    head += [f"{LABELS[f]} / fastest peer" for f in ours if peers]
    if "layerwise" in ours:
        head += [f"layerwise / {name}" for name in bounds]
    lines = [f"### {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def ratio(a: Any, b: Any) -> str:
        return f"{a / b:.2f}" if isinstance(a, float) and isinstance(b, float) and b else "-"

    for name, row in results.items():
        measured = [row.get(f) for f in peers if isinstance(row.get(f), float)]
        fastest = max(measured) if measured else None
        spread = spreads.get(name, {})
        cells = [name, *(fmt(row.get(f)) + (f" ±{spread[f]:.0%}" if f in spread else "")
                         for f in frameworks),
                 *(fmt(bound.get(name)) for bound in bounds.values())]
        if "layerwise" in ours:
            cells += [ratio(row.get("layerwise"), row.get(f)) for f in peers]
        cells += [ratio(row.get(f), fastest) for f in ours if peers]
        if "layerwise" in ours:
            cells += [ratio(row.get("layerwise"), bound.get(name)) for bound in bounds.values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    if argv is None:
        argv = sys.argv[1:]
    if "--device" in argv and argv[argv.index("--device") + 1:][:1] == ["gpu"]:
        import gpu  # benchmarks/gpu.py: CuPy against PyTorch CUDA and JAX on a GPU

        rest = [a for i, a in enumerate(argv) if a != "--device" and
                (i == 0 or argv[i - 1] != "--device")]
        return gpu.main(rest)
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu",
                        help="gpu: benchmarks/gpu.py (configs B-E on CuPy, PyTorch CUDA, JAX)")
    parser.add_argument("--configs", default="A,B,C,D")
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per process")
    parser.add_argument("--runs", type=int, default=3,
                        help="fresh processes per framework and configuration; the median "
                             "is reported, with the spread")
    parser.add_argument("--sgd", action="store_true",
                        help="also train C and D with plain SGD (for the GEMM-bound target)")
    parser.add_argument("--memory", action="store_true", help="peak memory training C")
    parser.add_argument("--write", help="write the report (markdown) to this file")
    parser.add_argument("--clean-env", action="store_true",
                        help="re-run with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--mkl-bound-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        memory_child(args.memory_child, args.configs)
        return 0
    if args.child:
        throughput_child(args.child, args.configs, args.repeats)
        return 0
    if args.mkl_bound_child:
        print(json.dumps({name: gemm_bound(all_configs()[name], library="mkl")
                          for name in args.configs.split(",")}))
        return 0
    if args.clean_env and any(k in os.environ for k in OPENBLAS_VARS):
        env = {k: v for k, v in os.environ.items() if k not in OPENBLAS_VARS}
        argv = [a for a in (argv or sys.argv[1:]) if a != "--clean-env"]
        return subprocess.call([sys.executable, __file__, *argv], env=env)

    mkl = installed("layerwise") and has_mkl()
    wanted = [f for f in args.frameworks.split(",") if f]
    if not mkl:  # without MKL, both are "layerwise" itself
        wanted = [f for f in wanted if f not in ("layerwise_numpy", "layerwise_mkl")]
    available = [f for f in wanted if installed(FRAMEWORKS[f][0])]
    missing = [f for f in wanted if f not in available]
    names = [c for c in args.configs.split(",") if c]
    if args.sgd:
        names += [f"{c} (sgd)" for c in ("C", "D") if c in names]
    configs = [all_configs()[name] for name in names]
    info = machine()
    info["layerwise_blas"] = "mkl" if mkl else "numpy"
    report = ["## Machine", "", "```", json.dumps(info, indent=2), "```", ""]
    if missing:
        report.append(f"Not installed, skipped: {', '.join(LABELS[f] for f in missing)} "
                      "(pip install 'layerwise[bench]').\n")
    train: dict[str, dict[str, float | str]] = {}
    infer: dict[str, dict[str, float | str]] = {}
    bounds: dict[str, dict[str, float]] = {
        "GEMM bound (NumPy)": {c.name: gemm_bound(c) for c in configs}}
    if mkl:
        bounds["GEMM bound (MKL)"] = run_child(["--mkl-bound-child", "--configs",
                                                ",".join(names)], "layerwise")
    spread_train: dict[str, dict[str, float]] = {}
    spread_infer: dict[str, dict[str, float]] = {}
    chosen: dict[str, str] = {}
    for config in configs:
        train[config.name], infer[config.name] = {}, {}
        spread_train[config.name], spread_infer[config.name] = {}, {}
        # the runs interleaved (each framework once, then again): on a shared machine whose
        # speed drifts over minutes, a slow stretch then slows every framework alike
        all_runs: dict[str, list[dict[str, Any]]] = {f: [] for f in available}
        for _ in range(args.runs):
            for framework in available:
                all_runs[framework].append(run_child(
                    ["--child", framework, "--configs", config.name, "--repeats",
                     str(args.repeats)], framework))
        for framework in available:
            runs = all_runs[framework]
            for key, into, spread in (("train", train, spread_train),
                                      ("infer", infer, spread_infer)):
                values = [r[key] for r in runs if key in r]
                if values:
                    median = float(np.median(values))
                    into[config.name][framework] = median
                    spread[config.name][framework] = (max(values) - min(values)) / 2 / median
                elif key == "train":
                    into[config.name][framework] = runs[0].get("error", "?")
            if framework == "layerwise" and "blas" in runs[0]:
                chosen[config.name] = ", ".join(sorted({r["blas"] for r in runs if "blas" in r}))
            print(f"{config.name} {framework}: {fmt(train[config.name][framework])} samples/s",
                  file=sys.stderr, flush=True)
    report.append(f"Each figure: the median of {args.runs} fresh processes (interleaved "
                  "across frameworks), each the median "
                  f"of {args.repeats} timed epochs after a warm-up one; ± is half the range "
                  "over the processes.\n")
    if chosen:
        report.append("layerwise as installed (`LAYERWISE_BLAS` unset) measured and chose "
                      "(the NumPy path's library, and the compiled kernel's): "
                      + "; ".join(f"{k}: {v}" for k, v in chosen.items()) + ".\n")
    report.append(table("Training, samples per second (higher is better)", train, available,
                        bounds, spread_train))
    report.append("")
    report.append(table("Inference (predict, batch 1024), samples per second",
                        {k: v for k, v in infer.items() if v}, available, None, spread_infer))
    if args.memory:
        report += ["", "### Peak resident memory training C (MB, lower is better)", "",
                   "| framework | peak RSS |", "|---|---|"]
        for framework in available:
            report.append(f"| {LABELS[framework]} | {fmt(peak_memory(framework, 'C'))} |")
    text = "\n".join(report) + "\n"
    print(text)
    if args.write:
        with open(args.write, "w", encoding="utf-8") as handle:
            handle.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
