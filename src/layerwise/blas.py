"""Where the matrix multiplies come from.

By default every matrix multiply is ``xp.matmul``: NumPy's own BLAS (OpenBLAS in the NumPy
wheels). When Intel's MKL is installed (``pip install 'layerwise[mkl]'``), layerwise may call
its ``sgemm``/``dgemm`` directly instead, and add biases as MKL rank-1 updates. Nothing else
changes: the same layers, the same results to float rounding. (The optimizers' updates are
one compiled pass with numba installed, see ``layerwise.compiled``, whatever the BLAS.)

Why: on the training shapes of a dense network (a batch of 128 against 512-wide layers) MKL's
GEMM was 1.35x faster than the OpenBLAS NumPy ships on an Intel Xeon (see
``docs/benchmarks.md``).

Choose with ``set_blas("mkl" | "numpy" | "auto")`` or the environment variable
``LAYERWISE_BLAS`` (read at import). ``"auto"``, the default, decides by measurement: when MKL
and threadpoolctl are installed and the array backend is NumPy, the first model loop (or the
first large matrix multiply) times the model's heaviest product in both libraries, a few
milliseconds, and keeps the faster for the rest of the process (``decision()`` says what was
measured). MKL's GEMM is ahead on Intel processors and can be far behind on AMD ones.
While MKL is active, NumPy's OpenBLAS runs on one thread inside the model's loops
(``one_thread_pool``, through threadpoolctl, part of the ``mkl`` extra) so that two thread
pools do not spin against each other on the same cores.

Small multiplies stay with NumPy: below ``MIN_GEMM_WORK`` multiply-adds MKL's thread start-up
costs more than it saves.

The compiled training kernel (``layerwise.compiled``) calls numba's BLAS (SciPy's OpenBLAS)
for its products, or, with oneDNN installed (``pip install 'layerwise[onednn]'``, Linux
x86-64), oneDNN's ``sgemm`` for float32 networks: ``kernel_library`` times one training step's
products of the network in both when its kernel is built, and keeps oneDNN unless OpenBLAS
is clearly (``KERNEL_ONEDNN_MARGIN``) faster. On a 2-vCPU AMD EPYC (Zen 4) one step's
products of config C took 2.2-2.4 ms in oneDNN against 2.3-2.7 ms in OpenBLAS, and oneDNN's
kept their speed through minutes-long stretches in which OpenBLAS's two threads ran at the
speed of one (config C: 44k against 23k samples/s). Where a network's layers allow it,
the kernel with oneDNN is the split one (``layerwise.parts_kernel``): each thread runs
single-threaded products on its own rows of every layer.
``set_blas("onednn")`` forces it; ``"numpy"`` and ``"mkl"`` keep numba's BLAS in the kernel.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import importlib.util
import os
import site
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from .backend import backend_name, xp

__all__ = ["KERNEL_ONEDNN_MARGIN", "MIN_BIAS_SIZE", "MIN_GEMM_WORK", "MKL", "OneDNN",
           "active", "add_bias", "blas_name", "decide", "decision", "kernel_decisions",
           "kernel_library", "matmul", "one_thread_pool", "onednn", "pending",
           "predict_decisions", "predict_library", "set_blas"]

#: multiply-adds (m·n·k) from which a GEMM goes to MKL: below about a million, MKL's thread
#: start-up costs more than it saves (measured: 64x64x128 takes 14 µs in MKL, 8 µs in NumPy;
#: 128x128x128 28 µs against 34 µs)
MIN_GEMM_WORK = 1 << 20
#: entries of z from which a bias is added by MKL (256x512: 11 µs against NumPy's 21 µs;
#: 1024x512: 25 µs against 93 µs)
MIN_BIAS_SIZE = 1 << 17

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_INT_MAX = 2**31 - 1
_CHOICES = ("auto", "mkl", "numpy", "onednn")


def _open(path: str | None, what: str) -> tuple[str, ctypes.CDLL]:
    """(path, the library loaded with its symbols global), or ``OSError`` naming ``what``."""
    if path is None:
        raise OSError(f"{what} was not found")
    return path, ctypes.CDLL(path, mode=getattr(ctypes, "RTLD_GLOBAL", 0))


class MKL:
    """ctypes bindings to the two MKL routines layerwise uses (GEMM and the rank-1 update),
    float32 and float64. Raises ``OSError`` when the library cannot be loaded."""

    def __init__(self, path: str | None = None) -> None:
        self.path, self._lib = _open(path or _find_mkl(), "MKL's runtime library (mkl_rt)")
        lib = self._lib
        i, p = ctypes.c_int, ctypes.c_void_p
        self._fn: dict[tuple[str, str], Any] = {}
        for char, real in (("s", ctypes.c_float), ("d", ctypes.c_double)):
            name = "float32" if char == "s" else "float64"
            spec = {
                "gemm": (f"cblas_{char}gemm", [i] * 6 + [real, p, i, p, i, real, p, i]),
                "ger": (f"cblas_{char}ger", [i, i, i, real, p, i, p, i, p, i]),
            }
            for op, (symbol, argtypes) in spec.items():
                fn = getattr(lib, symbol)
                fn.restype, fn.argtypes = None, argtypes
                self._fn[(op, name)] = fn
        self._ones: dict[str, np.ndarray] = {}
        get_max_threads = lib.MKL_Get_Max_Threads
        get_max_threads.restype = ctypes.c_int
        self.num_threads = int(get_max_threads())

    def __repr__(self) -> str:
        return f"MKL(path={self.path!r}, num_threads={self.num_threads})"

    # -- matrix multiply ----------------------------------------------------------------
    def gemm(self, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> bool:
        """``out = a @ b`` for 2-D ``a (m, k)``, ``b (k, n)``, ``out (m, n)``; transposed views
        cost nothing. Returns False, doing nothing, for a layout or dtype MKL cannot take
        (the caller then uses NumPy)."""
        fn = self._fn.get(("gemm", _NAMES.get(out.dtype.char)))
        args = None if fn is None else _gemm_args(a, b, out)
        if args is None:
            return False
        m, n, k, ta, lda, tb, ldb, ldc = args
        if k:
            fn(_ROW_MAJOR, ta, tb, m, n, k, 1.0, _ptr(a), lda, _ptr(b), ldb, 0.0, _ptr(out),
               ldc)
        return True

    def add_rows(self, z: np.ndarray, row: np.ndarray) -> bool:
        """``z += row`` on every row of a 2-D ``z`` (a bias), as the rank-1 update
        z <- z + 1 rowᵀ, which MKL spreads over its threads. Returns False, doing nothing,
        where the layout or dtype does not allow it."""
        name = _NAMES.get(z.dtype.char)
        if name is None or row.dtype != z.dtype or z.ndim != 2 or row.shape != z.shape[1:] \
                or not row.flags.c_contiguous or not z.flags.writeable:
            return False
        rows, cols = z.shape
        trans, ld = _layout(z, z.itemsize)
        if trans != _NO_TRANS or rows == 0 or max(rows, cols) > _INT_MAX:
            return False
        ones = self._ones.get(name)
        if ones is None or ones.shape[0] < rows:
            ones = self._ones[name] = np.ones(max(rows, 1024), dtype=z.dtype)
        self._fn[("ger", name)](_ROW_MAJOR, rows, cols, 1.0, _ptr(ones), 1, _ptr(row), 1,
                                _ptr(z), ld)
        return True

_NAMES = {"f": "float32", "d": "float64"}


def _ptr(a: np.ndarray) -> int:
    return a.ctypes.data


def _layout(a: np.ndarray, size: int) -> tuple[int | None, int]:
    """(transpose flag, leading dimension) of a 2-D array for row-major BLAS, or (None, 0).

    A stride along a dimension of length 1 is never used, so NumPy may set it to anything
    (0 for ``x[None, :]``); BLAS still wants a leading dimension >= the row length.
    """
    rows, cols = a.shape
    s0, s1 = a.strides
    if (s1 == size or cols == 1) and (rows == 1 or (s0 >= cols * size and s0 % size == 0)):
        return _NO_TRANS, max(cols, s0 // size if rows > 1 else cols, 1)
    if (s0 == size or rows == 1) and (cols == 1 or (s1 >= rows * size and s1 % size == 0)):
        return _TRANS, max(rows, s1 // size if cols > 1 else rows, 1)
    return None, 0


def _gemm_args(a: np.ndarray, b: np.ndarray, out: np.ndarray
               ) -> tuple[int, int, int, int, int, int, int, int] | None:
    """``(m, n, k, trans_a, lda, trans_b, ldb, ldc)`` of a row-major BLAS ``out = a @ b``
    for 2-D ``a (m, k)``, ``b (k, n)``, ``out (m, n)`` of one dtype, or None where BLAS
    cannot take them (a layout, overlapping arrays, a size). For ``k == 0`` (an empty sum)
    ``out`` is filled with zeros here and the call is to be skipped."""
    if a.dtype != out.dtype or b.dtype != out.dtype or a.ndim != 2 or b.ndim != 2:
        return None
    m, k = a.shape
    n = b.shape[1]
    if b.shape[0] != k or out.shape != (m, n) or not out.flags.writeable or \
            max(m, n, k) > _INT_MAX or m == 0 or n == 0:
        return None
    size = out.itemsize
    ldc, tc = _layout(out, size)[::-1]
    if tc != _NO_TRANS:
        return None
    if k == 0:
        out.fill(0)
        return m, n, 0, _NO_TRANS, 1, _NO_TRANS, 1, ldc
    ta, lda = _layout(a, size)
    tb, ldb = _layout(b, size)
    if ta is None or tb is None or np.may_share_memory(out, a) or np.may_share_memory(out, b):
        return None
    return m, n, k, ta, lda, tb, ldb, ldc


def _find_mkl() -> str | None:
    """Path of MKL's single dynamic library as pip's ``mkl`` wheel or a system installs it."""
    names = {"linux": ["libmkl_rt.so.3", "libmkl_rt.so.2", "libmkl_rt.so"],
             "win32": ["mkl_rt.3.dll", "mkl_rt.2.dll"],
             "darwin": ["libmkl_rt.3.dylib", "libmkl_rt.2.dylib", "libmkl_rt.dylib"]}
    candidates = names.get(sys.platform, names["linux"])
    folders = []
    for prefix in dict.fromkeys([sys.prefix, sys.base_prefix, site.getuserbase()]):
        folders += [os.path.join(prefix, "lib"), os.path.join(prefix, "Library", "bin")]
    for folder in folders:
        for name in candidates:
            path = os.path.join(folder, name)
            if os.path.exists(path):
                return path
    return ctypes.util.find_library("mkl_rt")


class OneDNN:
    """ctypes bindings to oneDNN's ``dnnl_sgemm`` (float32, row-major), which the compiled
    training kernel calls when it is the faster (``kernel_library``), and to the OpenMP
    runtime it runs its threads on. Raises ``OSError`` when the library cannot be loaded
    (it needs the system's GNU OpenMP, ``libgomp.so.1``)."""

    def __init__(self, path: str | None = None) -> None:
        self.path, self._lib = _open(path or _find_onednn(), "oneDNN's library (libdnnl)")
        lib = self._lib
        i64, p = ctypes.c_int64, ctypes.c_void_p
        self._sgemm = lib.dnnl_sgemm
        self._sgemm.restype = ctypes.c_int
        self._sgemm.argtypes = [ctypes.c_char, ctypes.c_char, i64, i64, i64, ctypes.c_float,
                                p, i64, p, i64, ctypes.c_float, p, i64]
        # its OpenMP calls go to the first OpenMP runtime loaded into the process: GNU's,
        # which it brings, or Intel's (MKL's) when that came first; set the threads in both
        self._set_threads = []  # (omp_get_max_threads, omp_set_num_threads) of each
        for name in (None, "libgomp.so.1"):
            try:
                runtime = ctypes.CDLL(name)
                get, put = runtime.omp_get_max_threads, runtime.omp_set_num_threads
            except (OSError, AttributeError):
                continue
            get.argtypes, get.restype = [], ctypes.c_int
            put.argtypes, put.restype = [ctypes.c_int], None
            self._set_threads.append((get, put))

    def __repr__(self) -> str:
        return f"OneDNN(path={self.path!r})"

    def set_threads(self, threads: int) -> None:
        """The OpenMP threads of the calling thread's next oneDNN calls (a setting of each
        thread, which threadpoolctl may change too: read back each time, and set only when it
        differs, since setting it cost 0.7 ms a call even to the same count in a process that
        had trained)."""
        for get, put in self._set_threads:
            if get() != threads:
                put(int(threads))

    def gemm(self, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> bool:
        """``out = a @ b`` for float32 2-D arrays (transposed views cost nothing); False,
        doing nothing, for another dtype or layout."""
        args = _gemm_args(a, b, out) if out.dtype == np.float32 else None
        if args is None:
            return False
        m, n, k, ta, lda, tb, ldb, ldc = args
        if not k:
            return True
        status = self._sgemm(b"T" if ta == _TRANS else b"N", b"T" if tb == _TRANS else b"N",
                             m, n, k, 1.0, _ptr(a), lda, _ptr(b), ldb, 0.0, _ptr(out), ldc)
        return status == 0


def _find_onednn() -> str | None:
    """Path of oneDNN's library as the ``onednn-cpu-gomp`` wheel (or a system) installs it."""
    for prefix in dict.fromkeys([sys.prefix, sys.base_prefix, site.getuserbase()]):
        for name in ("libdnnl.so.3", "libdnnl.so"):
            path = os.path.join(prefix, "lib", name)
            if os.path.exists(path):
                return path
    return ctypes.util.find_library("dnnl")


_onednn_cache: list[OneDNN | None] = []  # [] until the first attempt; [None] if it failed


def onednn() -> OneDNN | None:
    """oneDNN, loaded once; None when it is not installed or cannot be loaded (float32
    products of the compiled kernel then stay with numba's BLAS)."""
    if not _onednn_cache:
        try:
            _onednn_cache.append(OneDNN())
        except (OSError, AttributeError) as exc:
            _onednn_cache.append(None)
            _load_error.append(f"oneDNN: {exc}")
    return _onednn_cache[0]


#: OpenBLAS computes the compiled kernel's products instead of oneDNN only when it measured
#: this many times faster (see ``kernel_library``)
KERNEL_ONEDNN_MARGIN = 1.10
#: seconds NumPy's OpenBLAS threads spin after a call before they sleep (about 0.1 s)
OPENBLAS_SPIN_S = 0.12
#: what kernel_library measured, per network: {shapes: {"onednn_s", "openblas_s", "chosen"}}
kernel_decisions: dict[tuple[Any, ...], dict[str, Any]] = {}


def _step_products(sizes: list[tuple[int, int]], batch: int) -> list[tuple[Any, Any, Any]]:
    """Scratch arrays for one training step's products of a network of layers
    ``(fan_in, units)``: per layer X@W, Xᵀ@dZ, and dZ@Wᵀ above the first layer."""
    rng = np.random.default_rng(0)
    products = []
    for i, (fan_in, units) in enumerate(sizes):
        x = rng.standard_normal((batch, fan_in)).astype(np.float32)
        w = rng.standard_normal((fan_in, units)).astype(np.float32)
        dz = rng.standard_normal((batch, units)).astype(np.float32)
        products += [(x, w, np.empty((batch, units), np.float32)),
                     (x.T, dz, np.empty((fan_in, units), np.float32))]
        if i > 0:
            products.append((dz, w.T, np.empty((batch, fan_in), np.float32)))
    return products


def kernel_library(sizes: list[tuple[int, int]], batch: int, dtype: Any,
                   threads: int | None = None, parts: int = 1) -> str:
    """The library the compiled training kernel calls for its products: ``"onednn"`` or
    ``"openblas"`` (numba's BLAS). ``set_blas("onednn")`` forces oneDNN, ``"numpy"`` and
    ``"mkl"`` keep numba's; under ``"auto"``, for a float32 network with oneDNN installed,
    one training step's products (scratch arrays of the network's shapes) are timed in both,
    the best of three (one, for a step of more than 2**30 multiply-adds), and the faster is
    kept for this network's shapes for the process (``kernel_decisions`` says what was
    measured). ``parts`` > 1: the network trains in the split kernel with oneDNN
    (``parts_kernel``), so oneDNN's side is what each of its threads computes there, its
    share of every layer's inputs in one-thread products, against OpenBLAS's whole products
    on ``threads``. About 0.15 s on config C, 1.3 s on config D, once."""
    key = (tuple(sizes), batch, parts)
    known = _known_library(dtype, kernel_decisions, key)
    if known is not None:
        return known
    lib = onednn()
    assert lib is not None  # _known_library answered without it
    products = shares = _step_products(sizes, batch)
    if parts > 1:  # what each of the split kernel's threads multiplies, on one oneDNN thread
        shares = _step_products([(-(-fan_in // parts), units) for fan_in, units in sizes],
                                batch)
        threads = 1
    if threads is not None:
        lib.set_threads(threads)

    def run_onednn() -> None:
        for a, b, out in shares:
            lib.gemm(a, b, out)

    def run_openblas() -> None:
        for a, b, out in products:
            np.matmul(a, b, out=out)

    work = sum(a.shape[0] * a.shape[1] * b.shape[1] for a, b, _ in products)
    # C's step (784-512-512-10, batch 128): 2 ms of products, 3 rounds of 3; D's
    # (1024-4096-4096-10, batch 512): 0.3 s, one round of one after a warm-up
    return _faster(kernel_decisions, key, run_onednn, run_openblas,
                   3 if work < 1 << 30 else 1)


#: what predict_library measured, per network: {(shapes, parts): {"onednn_s", ...}}
predict_decisions: dict[tuple[Any, ...], dict[str, Any]] = {}
#: the fewest and the most rows predict_library's probe runs (the fewest: its chunk)
PREDICT_PROBE_ROWS = (256, 8192)


def predict_library(sizes: list[tuple[int, int]], dtype: Any, parts: int) -> str:
    """The library of the compiled inference kernel's products: ``"onednn"`` (each of
    ``parts`` threads runs single-threaded products on its own rows of ``x``) or
    ``"openblas"`` (numba's BLAS, its own threads). Forced as ``kernel_library`` is; under
    ``"auto"`` a forward pass of ReLU layers of the network's sizes over 256 to 8192 rows
    (``PREDICT_PROBE_ROWS``), 256 at a time, is timed in OpenBLAS (its threads) against one
    thread's share of the rows in one-thread oneDNN, once per network and process. About 10 ms on
    configs B and C, 0.4 s on config D."""
    key = (tuple(sizes), parts)
    known = _known_library(dtype, predict_decisions, key)
    if known is not None:
        return known
    lib = onednn()
    assert lib is not None  # _known_library answered without it
    rng = np.random.default_rng(0)
    # enough rows for about 2**26 multiply-adds (a millisecond or two), so that starting the
    # threads (tens of µs, once per predict) weighs on the probe no more than on a predict
    per_row = sum(fan_in * units for fan_in, units in sizes)
    rows = min(PREDICT_PROBE_ROWS[1], max(PREDICT_PROBE_ROWS[0], (1 << 26) // per_row))
    chunk = PREDICT_PROBE_ROWS[0]
    x = rng.standard_normal((rows, sizes[0][0])).astype(np.float32)
    weights = [rng.standard_normal(size).astype(np.float32) for size in sizes]

    def forward(lo: int, hi: int, gemm: Any) -> None:
        """As the kernel runs: ``chunk`` rows at a time through every layer (a product and
        an element-wise pass, a ReLU's), in buffers that stay in the cache."""
        buffers = [np.empty((chunk, units), np.float32) for _, units in sizes]
        for start in range(lo, hi, chunk):
            a = x[start:min(start + chunk, hi)]
            for w, buffer in zip(weights, buffers):
                out = buffer[:a.shape[0]]
                gemm(a, w, out)
                np.maximum(out, 0.0, out=out)  # NumPy's ufuncs let go of the GIL
                a = out

    def run_onednn() -> None:
        """One thread's share: the threads run theirs at once, each its own rows, never
        waiting for another (timed here alone: Python's share of the probe, per chunk,
        would make threads wait on the GIL, which the compiled kernel does not)."""
        lib.set_threads(1)
        forward(0, rows // parts, lib.gemm)

    def run_openblas() -> None:  # all the rows, OpenBLAS's threads in the products
        forward(0, rows, lambda a, b, out: np.matmul(a, b, out=out))

    # the best of 5 (a ms or two each), or of one for a large network (config D: 0.06 s)
    return _faster(predict_decisions, key, run_onednn, run_openblas,
                   5 if rows * per_row < 1 << 30 else 1)


def _known_library(dtype: Any, decisions: dict[tuple[Any, ...], dict[str, Any]],
                   key: tuple[Any, ...]) -> str | None:
    """The library without a measurement: forced by ``set_blas``, the only one (not
    float32, or oneDNN missing), or measured before for ``key``; None when it must be."""
    if np.dtype(dtype) != np.float32 or _choice in ("numpy", "mkl") or onednn() is None:
        return "openblas"
    if _choice == "onednn":
        return "onednn"
    known = decisions.get(key)
    return None if known is None else known["chosen"]


def _faster(decisions: dict[tuple[Any, ...], dict[str, Any]], key: tuple[Any, ...],
            run_onednn: Any, run_openblas: Any, repeats: int) -> str:
    """Time ``run_onednn`` and ``run_openblas`` (the best of ``repeats`` after a warm-up),
    record both in ``decisions[key]`` and return the one kept: ``"onednn"`` unless OpenBLAS
    measured ``KERNEL_ONEDNN_MARGIN`` times faster."""
    # one library after the other, never interleaved: each keeps its threads spinning for a
    # while after a call (OpenMP's for about a millisecond, NumPy's OpenBLAS's for about
    # 0.1 s: measured, 105 ms), and those would take the cores from the other's threads.
    # OpenBLAS first, then its spin waited out: timed last, it spun on into the kernel's
    # first calls (config B: every predict in the 0.1 s after the probe 2.4 ms, not 1.3)
    time.sleep(0.005)
    best = {"openblas": _time_gemm(run_openblas, repeats)}
    time.sleep(OPENBLAS_SPIN_S)
    best["onednn"] = _time_gemm(run_onednn, repeats)
    # oneDNN unless OpenBLAS is clearly faster: on a shared 2-vCPU AMD EPYC OpenBLAS's
    # two-thread products were seen to run at half speed for minutes at a time while
    # oneDNN's kept theirs (config C: 23k against 44k samples/s), a measurement of a few
    # milliseconds cannot see such a stretch coming, and the two measured within 5% otherwise
    chosen = "openblas" if best["openblas"] * KERNEL_ONEDNN_MARGIN < best["onednn"] else \
        "onednn"
    decisions[key] = {"onednn_s": best["onednn"], "openblas_s": best["openblas"],
                      "chosen": chosen}
    return chosen


# -- the active choice --------------------------------------------------------------------
active: MKL | None = None
_choice = "numpy"
_mkl_cache: list[MKL | None] = []  # [] until the first attempt; [None] if loading failed
_load_error: list[str] = []
_openblas: list[Any] = []  # [] until first needed; then [controller or None, len(sys.modules)]


def _load_mkl() -> MKL | None:
    if not _mkl_cache:
        try:
            _mkl_cache.append(MKL())
        except (OSError, AttributeError) as exc:
            _mkl_cache.append(None)
            _load_error.append(str(exc))
    return _mkl_cache[0]


#: MKL loaded under "auto", waiting for the measurement that decides between it and NumPy
_candidate: MKL | None = None
#: what "auto" measured: {"shape", "dtype", "mkl_s", "numpy_s", "chosen"}, or None
_decision: dict[str, Any] | None = None


def _time_gemm(run: Any, repeats: int = 3) -> float:
    """The fastest of ``repeats`` calls of ``run()`` after one warm-up call, in seconds."""
    run()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def decide(m: int, k: int, n: int, dtype: Any = np.float32) -> str:
    """Under ``"auto"``, with MKL installed and not yet measured: time ``(m, k) @ (k, n)`` in
    MKL and in NumPy (on arrays made here, never the caller's) and keep the faster for the
    process. Returns the library in use, ``"mkl"`` or ``"numpy"``; without a pending choice
    it only returns that."""
    global active, _candidate, _decision
    lib = _candidate
    if lib is None or m * k * n < MIN_GEMM_WORK:
        return blas_name()
    dtype = np.dtype(dtype)
    if dtype.char not in _NAMES:  # a dtype MKL does not take: nothing to decide on
        return blas_name()
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    out = np.empty((m, n), dtype)
    # rounds in alternating order, the best of each kept: each library's threads keep
    # spinning for a while after its calls and slow the other's first calls down
    runs = {"numpy": lambda: np.matmul(a, b, out=out), "mkl": lambda: lib.gemm(a, b, out)}
    best = {"numpy": float("inf"), "mkl": float("inf")}
    for round_ in range(3):
        for name in ("numpy", "mkl") if round_ % 2 == 0 else ("mkl", "numpy"):
            best[name] = min(best[name], _time_gemm(runs[name]))
    mkl_s, numpy_s = best["mkl"], best["numpy"]
    active = lib if mkl_s < numpy_s else None
    _candidate = None
    _decision = {"shape": (m, k, n), "dtype": dtype.name, "mkl_s": mkl_s,
                 "numpy_s": numpy_s, "chosen": blas_name()}
    return blas_name()


def pending() -> bool:
    """Whether ``"auto"`` still has to measure (MKL installed, no decision yet)."""
    return _candidate is not None


def decision() -> dict[str, Any] | None:
    """What ``"auto"`` measured and chose (None before a measurement, or when the library
    was forced or MKL is not installed)."""
    return None if _decision is None else dict(_decision)


def set_blas(name: str = "auto") -> str:
    """Choose the library behind matrix multiplies and fused optimizer updates.

    Args:
        name: ``"mkl"`` (error if MKL is not installed), ``"numpy"`` (NumPy's own BLAS),
            ``"onednn"`` (the compiled training kernel's float32 products by oneDNN, error if
            it is not installed; the NumPy path keeps NumPy's), or ``"auto"`` (NumPy until
            ``decide`` has timed both, then the faster; NumPy when MKL or threadpoolctl is
            missing or the array backend is not NumPy; the kernel's library chosen by
            ``kernel_library``'s measurement).

    Returns the name now in use, ``"mkl"`` or ``"numpy"`` (under ``"auto"``, ``"numpy"``
    until the measurement).
    """
    global active, _choice, _candidate, _decision
    if name not in _CHOICES:
        raise ValueError(f"`name` must be one of {list(_CHOICES)}. Received: name={name!r}")
    if name == "mkl" and backend_name() != "numpy":
        raise ValueError(f"MKL works on NumPy arrays; the array backend is {backend_name()!r}.")
    kernel_decisions.clear()
    if name == "onednn" and onednn() is None:
        raise ImportError("oneDNN could not be loaded (" + "; ".join(_load_error) + "). "
                          "Install it with: pip install 'layerwise[onednn]' (Linux x86-64; "
                          "it needs the system's GNU OpenMP, libgomp.so.1)")
    lib = None
    # "auto" also wants threadpoolctl, without which the two thread pools would compete
    if name == "mkl" or (name == "auto" and backend_name() == "numpy"
                         and importlib.util.find_spec("threadpoolctl") is not None):
        lib = _load_mkl()
        if lib is None and name == "mkl":
            raise ImportError("MKL could not be loaded (" + "; ".join(_load_error) + "). "
                              "Install it with: pip install 'layerwise[mkl]'")
    _choice = name
    _decision = None
    if name == "auto":  # measured at first use (decide), kept for the process
        active, _candidate = None, lib
    else:
        active, _candidate = lib, None
    return blas_name()


def blas_name() -> str:
    """``"mkl"`` when MKL computes the matrix multiplies, else ``"numpy"``."""
    return "mkl" if active is not None else "numpy"


@contextlib.contextmanager
def one_thread_pool() -> Iterator[None]:
    """Inside this block, while MKL is active, NumPy's OpenBLAS runs on one thread.

    Both libraries keep worker threads that spin for a while after each call; on the same
    cores they slow each other down (config C trained at 9k samples/s instead of 45k). The
    model's loops (``fit``, ``evaluate``, ``predict``, ``train_on_batch``) run inside this
    block; outside it OpenBLAS keeps its threads. Needs threadpoolctl (in the ``mkl`` extra);
    costs about 5 µs.
    """
    controller = _openblas_controller() if active is not None else None
    if controller is None:
        yield
        return
    # counted across threads (concurrent predict calls): the first to enter sets the limit,
    # the last to leave restores it
    with _pool_lock:
        if _pool_users[0] == 0:
            _pool_users[1] = controller.limit(limits=1)
        _pool_users[0] += 1
    try:
        yield
    finally:
        with _pool_lock:
            _pool_users[0] -= 1
            if _pool_users[0] == 0:
                _pool_users[1].restore_original_limits()
                _pool_users[1] = None


_pool_lock = threading.Lock()
_pool_users: list[Any] = [0, None]  # [threads inside one_thread_pool, the active limiter]


def _openblas_controller() -> Any | None:
    """threadpoolctl's controller of every loaded OpenBLAS (NumPy's, and SciPy's once it is
    imported): found again when modules were imported since, as a new one may bring its own."""
    modules = len(sys.modules)
    if not _openblas or _openblas[1] != modules:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            controller = None
        else:
            controller = ThreadpoolController().select(internal_api="openblas")
        _openblas[:] = [controller, modules]
    return _openblas[0]


def matmul(a: Any, b: Any, out: Any) -> Any:
    """``out = a @ b`` for 2-D arrays, by MKL when active and the product is large enough,
    else by ``xp.matmul``. Returns ``out``."""
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] * a.shape[1] * b.shape[1] < MIN_GEMM_WORK:
        return xp.matmul(a, b, out=out)  # small: NumPy's, whatever the choice
    if _candidate is not None:  # "auto", not yet measured: this product decides
        decide(a.shape[0], a.shape[1], b.shape[1], out.dtype)
    lib = active
    if lib is not None and lib.gemm(a, b, out):
        return out
    return xp.matmul(a, b, out=out)


def add_bias(z: Any, bias: Any) -> Any:
    """``z += bias`` for ``z`` (batch, units) and ``bias`` (units,); by MKL's rank-1 update
    when active and z has at least ``MIN_BIAS_SIZE`` entries. Returns ``z``."""
    lib = active
    if lib is not None and z.size >= MIN_BIAS_SIZE and lib.add_rows(z, bias):
        return z
    z += bias
    return z


def _on_backend_change() -> None:
    """Called by ``backend.set_backend``: MKL only serves NumPy arrays."""
    global active, _candidate
    if backend_name() != "numpy":
        active = _candidate = None
    elif _decision is None:
        set_blas(_choice)
    else:  # a decision measured before stays
        active = _load_mkl() if _decision["chosen"] == "mkl" else None


def _from_environment() -> None:
    value = os.environ.get("LAYERWISE_BLAS", "auto").strip().lower() or "auto"
    if value not in _CHOICES:
        raise ValueError(f"The environment variable LAYERWISE_BLAS must be one of "
                         f"{list(_CHOICES)}. Received: LAYERWISE_BLAS={value!r}")
    set_blas(value)


_from_environment()
