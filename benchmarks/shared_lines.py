"""Why config C is sometimes 1.5x slower: the weights both cores read, one core then writes.

In one step of config C (784-512-512-10, Adam, batch 128) both threads of the two-thread
products read every weight (X@W and dZ@Wᵀ), then the main thread alone runs the Adam pass,
which writes every weight. Each weight line then has to be taken away from the other core's
caches first. How much that costs depends on where the host runs the two vCPUs: on some
shared 2-vCPU machines, for minutes at a time and in about a third of fresh processes, it
costs 1.3 ms on the first layer's weights alone (against 0.3 ms otherwise), and that is the
whole of C's slow epochs (24-26k against 40-45k samples/s).

Each round trains one epoch of C (layerwise, compiled kernel, two threads) and then times
the Adam pass over the first layer's 401,408 weights, averaged over 30 repeats, right after:

- ``shared``: a two-thread oneDNN product X@W0 (both cores read W0), Adam on the main thread;
- ``one-reader``: the same product on one thread (only the main core read W0), Adam the same;
- ``owned``: each thread computes the product of its own half of W0's rows (a split of the
  inner dimension, K) and runs Adam on that same half: no line is read by one core and
  written by the other. The figure is the slower thread's time.

A process in the slow state shows ``shared`` 4-10x ``one-reader`` while ``owned`` stays
fast; run a few fresh processes (``--processes``) to meet one. Needs numba and the
``onednn`` extra.

    python benchmarks/shared_lines.py [--processes 6] [--rounds 2]
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPEATS = 30
ROWS, UNITS, BATCH = 784, 512, 128


def one_process(rounds: int) -> None:
    import numba

    sys.path.insert(0, str(HERE))
    import run as harness

    from layerwise import blas, compiled
    from layerwise.optimizers.adam import Adam

    lib = blas.onednn()
    if lib is None or not compiled.available():
        sys.exit("needs numba and oneDNN: pip install 'layerwise[fast,onednn]'")
    config = harness.CONFIGS["C"]
    x, y = harness.make_data(config)
    epoch = harness.run_layerwise(config, x, y)[0]
    epoch()
    optimizer = next(o for o in gc.get_objects() if isinstance(o, Adam))
    params, grads, slots = optimizer._flat
    m, v = slots["m"], slots["v"]
    n = ROWS * UNITS
    w0 = params[:n].reshape(ROWS, UNITS)  # the first layer's weights, (784, 512)
    # the library's own Adam pass, compiled without the GIL so that two threads can run it
    loop = compiled._update_loop(Adam.formula, (True, True, False), 7, "float32")
    adam = numba.njit(nogil=True, error_model="numpy")(loop.py_func)
    hyper = (0.0, 1.0, 1e-7, 1.0, 0.9, 0.999, 0.0)  # a step of 0: the weights stay
    a = np.ones((BATCH, ROWS), np.float32)
    z = [np.empty((BATCH, UNITS), np.float32) for _ in range(2)]

    def update(lo: int, hi: int) -> None:
        adam(params[lo:hi], grads[lo:hi], m[lo:hi], v[lo:hi], params[:1], *hyper)

    update(0, n)

    def after_product(threads: int) -> float:
        total = 0.0
        for _ in range(REPEATS):
            lib.set_threads(threads)
            lib.gemm(a, w0, z[0])
            start = time.perf_counter()
            update(0, n)
            total += time.perf_counter() - start
        lib.set_threads(2)
        return total / REPEATS

    def owned() -> float:
        barrier = threading.Barrier(2)
        spent = [0.0, 0.0]
        half = ROWS // 2

        def part(t: int) -> None:
            lib.set_threads(1)  # OpenMP's setting is per calling thread
            r0 = half * t
            for _ in range(REPEATS):
                # z[t] = a[:, rows] @ w0[rows, :]: this thread reads only its own rows
                lib._sgemm(b"N", b"N", BATCH, UNITS, half, 1.0, a.ctypes.data + 4 * r0, ROWS,
                           w0.ctypes.data + 4 * r0 * UNITS, UNITS, 0.0, z[t].ctypes.data,
                           UNITS)
                barrier.wait()
                start = time.perf_counter()
                update(r0 * UNITS, (r0 + half) * UNITS)
                spent[t] += time.perf_counter() - start
                barrier.wait()

        other = threading.Thread(target=part, args=(1,))
        other.start()
        part(0)
        other.join()
        lib.set_threads(2)
        return max(spent) / REPEATS

    lines = []
    for _ in range(rounds):
        start = time.perf_counter()
        epoch()
        rate = config.samples / (time.perf_counter() - start)
        saved = m.copy(), v.copy()  # the probes move the moments; training resumes from here
        shared, one, own = after_product(2), after_product(1), owned()
        m[:], v[:] = saved
        lines.append(f"C {rate / 1e3:5.1f}k samples/s | Adam on W0 after the product: shared "
                     f"{shared * 1e6:5.0f} µs, one-reader {one * 1e6:5.0f} µs, owned "
                     f"{own * 1e6:5.0f} µs")
    print("\n".join(lines), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        one_process(args.rounds)
        return
    env = {**os.environ, "LAYERWISE_THREADS": "2"}
    for k in range(args.processes):
        print(f"process {k + 1}", flush=True)
        subprocess.run([sys.executable, __file__, "--child", "--rounds", str(args.rounds)],
                       env=env, check=True)


if __name__ == "__main__":
    main()
