"""Compiled training: one numba kernel runs many steps of ``fit`` with no Python per step.

On a small network the NumPy path spends most of a step in Python (about 100 µs of calls on
config A's 2-16-16-1 network, whose arithmetic takes a few µs). When numba is installed
(``pip install 'layerwise[fast]'``), ``fit`` hands whole runs of steps to one compiled
kernel instead: gather the batch, forward, loss, backward, optimizer update and the
finiteness checks, for up to ``MAX_STEPS`` steps per call.

Nothing is written twice. The kernel is generated for the model's layer sizes and compiled
from the same functions the NumPy path runs: each activation's ``formula`` and
``gradient_formula``, each loss's ``formulas()``, each optimizer's ``formula``. They are plain
functions of arrays written with ``xp``; here they are compiled with ``xp`` bound to a NumPy
namespace (``jit_formula``) whose float32 ``exp`` and ``tanh`` are vectorisable polynomials.
Three helpers that NumPy computes with tricks numba does not compile (``stable_shift``,
``row_sums``, ``erf``) are replaced by plain loops giving the same values.

With oneDNN's products, a network whose layers allow it trains in the split kernel of
``layerwise.parts_kernel`` instead: the same formulas, each thread owning its rows of
every layer (no weight is read by one core and written by the other).

The same compiled optimizer pass serves the NumPy path: ``Optimizer.update`` runs its
formula over the flat parameter buffer in one pass (``update_in_one_pass``) instead of a
dozen NumPy sweeps.

``fit`` uses the kernel when ``compile(jit_compile=...)`` allows it (``"auto"``: numba is
installed and the run has at least ``AUTO_MIN_STEPS`` steps, or this network's kernel is
compiled already) and every part has a compiled form: ``Dense`` layers with formula
activations, a loss with formulas, an optimizer with a formula and no clipping, in-memory
arrays, no weight penalties, metrics or per-batch callbacks. Otherwise it trains step by
step in Python and ``verbose=2`` says why (``reason_not_compiled``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import marshal
import math
import os
import sys
import types
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from . import parts_kernel
from .optimizers.base import FLUSH_EVERY, TINY

__all__ = ["AUTO_MIN_STEPS", "MAX_STEPS", "ONE_PASS_MIN", "STRETCH", "CompileError", "EpochKernel",
           "PREDICT_CHUNK_MAX_WEIGHTS", "PREDICT_CHUNK_ROWS", "PREDICT_MAX_WEIGHTS",
           "PREDICT_MIN_WORK", "PredictKernel", "available", "jit_formula",
           "reason_not_compiled", "reason_not_predicted", "update_in_one_pass"]

#: ``jit_compile="auto"`` compiles a network's kernel (several seconds, once: it is kept in
#: the cache directory) for runs of at least this many steps; a network whose kernel is
#: compiled already (in this process or on disk) uses it for any run
AUTO_MIN_STEPS = 1000
#: steps per kernel call at most: a Ctrl-C waits for the call to end
MAX_STEPS = 1024
#: seconds per kernel call, about: between calls the thread governor of ``layerwise.threads``
#: counts the steps made (so the kernel's BLAS threads follow the load as the Python loop's)
STRETCH = 0.05
#: weights up to which ``predict`` runs the compiled inference kernel: above, the products
#: dominate and NumPy's own BLAS computed them faster than numba's (config C, 668k weights:
#: 70 ms against 62 ms per 8192 rows); below, the kernel's fused bias-and-activation loops
#: and no Python per batch make it 1.2-1.5x faster (config B, 64-128-10)
PREDICT_MAX_WEIGHTS = 1 << 18
#: multiply-adds per thread from which ``predict``'s kernel with oneDNN products uses more
#: threads (a pool thread starts in tens of µs; this is about as long)
PREDICT_MIN_WORK = 1 << 21
#: rows at a time in ``predict``'s kernel with oneDNN products, for networks of at most
#: ``PREDICT_CHUNK_MAX_WEIGHTS`` weights: their weights stay in the cache, and layer buffers
#: of fewer rows do too (config C, a thread's 4096 rows: 49.5 ms in 128-row batches, 56 ms
#: in 1024-row ones); larger networks keep the batch, which spreads each pass over their
#: weights over more rows (config D: 392 ms in 1024-row batches, 456 ms in 128-row ones)
PREDICT_CHUNK_ROWS = 128
PREDICT_CHUNK_MAX_WEIGHTS = 1 << 21
#: parameters from which ``Optimizer.update`` runs its compiled pass (below it, the call
#: costs more than the NumPy chunks)
ONE_PASS_MIN = 4096

_numba: Any = None
_jitted: dict[Any, Any] = {}
_loops: dict[Any, Any] = {}
_kernels: dict[Any, Any] = {}
_on_disk: dict[Any, bool] = {}  # see _kept_on_disk
_digest: str | None = None
_xp_module: types.ModuleType | None = None
_as_float32: Any = None
_cast: Any = None
_prefetch: Any = None
_onednn: dict[str, Any] | None = None


class CompileError(RuntimeError):
    """numba could not compile a kernel (a user's formula it does not support, say)."""


def available() -> bool:
    """Whether numba is installed (and not switched off by ``LAYERWISE_JIT=0``) and the
    arrays are NumPy's."""
    global _numba
    if os.environ.get("LAYERWISE_JIT", "1") == "0":
        return False
    from .backend import xp

    if xp.__name__ != "numpy":
        return False
    if _numba is None:
        try:
            import numba
            import numba.extending
        except ImportError:
            _numba = False
        else:
            _numba = numba
    return _numba is not False


# -- compiling the formulas ----------------------------------------------------------------


# numba's z[i].max() and z[i].sum() cost ~30 ns a row before the first element: on a batch
# of 64 rows of 10 classes the plain loops below are 4x faster (wide rows keep numba's)


def _row_max(z: Any) -> Any:
    rows, cols = z.shape
    out = np.empty((rows, 1), z.dtype)
    for i in range(rows):
        if cols > 32 or cols == 0:
            out[i, 0] = z[i].max()
            continue
        top = z[i, 0]
        for j in range(1, cols):
            v = z[i, j]
            if v > top or v != v:  # NaN wins, as in NumPy's max
                top = v
                if v != v:
                    break
        out[i, 0] = top
    return out


def _row_sums(e: Any) -> Any:
    rows, cols = e.shape
    out = np.empty((rows, 1), e.dtype)
    for i in range(rows):
        if cols > 32:
            out[i, 0] = e[i].sum()
            continue
        total = 0.0
        for j in range(cols):
            total += e[i, j]
        out[i, 0] = total
    return out


def _erf(x: Any) -> Any:
    flat = np.ascontiguousarray(x).ravel()
    out = np.empty(flat.shape[0], np.float64)
    for i in range(flat.shape[0]):
        out[i] = math.erf(flat[i])
    return out.reshape(x.shape).astype(x.dtype)


# numba evaluates np.exp and np.tanh on float32 arrays one libm call per element (5-10 ns
# each, not vectorised: config A spent half its step in two tanh calls). For float32 these
# two run here as branch-free polynomials that LLVM vectorises, accurate to a few units in
# the last place (tests/test_compiled.py measures them against NumPy); float64 keeps numba's.
# Every constant is a float32: one Python float (a float64 to numba) would turn the whole
# computation into float64, at half the vector width and with slow double divisions.

_F = np.float32
_LOG2E, _LN2_HI, _LN2_LO = _F(1.4426950408889634), _F(0.693359375), _F(-2.12194440e-4)
_EXP_POLY = tuple(map(_F, (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3,
                           4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1)))
_TANH_POLY = tuple(map(_F, (-5.70498872745e-3, 2.06390887954e-2, -5.37397155531e-2,
                            1.33314422036e-1, -3.33332819422e-1)))
_EXP_LOW, _EXP_HIGH, _TANH_SMALL, _TANH_BIG = _F(-104.0), _F(89.0), _F(0.625), _F(20.0)
_HALF, _ONE, _TWO = _F(0.5), _F(1.0), _F(2.0)


def _exp32(x: Any) -> Any:
    """e^x for one float32: x = n ln2 + r, |r| <= ln2/2; e^r by a degree-6 polynomial (the
    Cephes expf coefficients), times 2^n built from exponent bits in two halves (so that
    overflow to infinity and the subnormal results come out as NumPy's)."""
    c = min(max(x, _EXP_LOW), _EXP_HIGH)  # beyond: 0 and infinity
    n = np.floor(c * _LOG2E + _HALF)  # np.floor keeps float32 (math.floor gives an int)
    r = c - n * _LN2_HI - n * _LN2_LO  # ln2 in two parts: r is exact
    p0, p1, p2, p3, p4, p5 = _EXP_POLY
    p = ((((p0 * r + p1) * r + p2) * r + p3) * r + p4) * r + p5
    p = p * r * r + r + _ONE
    k = np.int32(n)
    half = k >> 1
    y = p * _as_float32(np.int32((half + 127) << 23)) \
        * _as_float32(np.int32((k - half + 127) << 23))
    return x if x != x else y  # NaN stays NaN (the clamp would lose it)


def _tanh32(x: Any) -> Any:
    """tanh of one float32: an odd polynomial below |x| = 0.625 (Cephes tanhf), else
    sign(x)(1 - 2/(e^(2|x|) + 1))."""
    a = abs(x)
    z = x * x
    t0, t1, t2, t3, t4 = _TANH_POLY
    small = ((((t0 * z + t1) * z + t2) * z + t3) * z + t4) * z * x + x
    large = _ONE - _TWO / (_exp32(_TWO * min(a, _TANH_BIG)) + _ONE)
    large = large if x >= 0 else -large
    return small if a < _TANH_SMALL else (large if x == x else x)


def _vectorised(scalar: Callable[..., Any], fallback: Callable[..., Any]) -> Callable[..., Any]:
    """A NumPy-like function for compiled formulas: ``scalar`` applied to each entry of a
    float32 array or to a float32 number; ``fallback`` (NumPy's, as numba has it) else."""

    def stub(x):  # type: ignore[no-untyped-def]  # numba wants the implementation's signature
        return fallback(x)

    def typer(x):  # type: ignore[no-untyped-def]
        from numba.core import types as nb

        element = scalar if isinstance(scalar, _numba.core.dispatcher.Dispatcher) else \
            _numba.njit(inline="always", error_model="numpy")(scalar)
        if isinstance(x, nb.Array) and x.dtype == nb.float32:
            def on_array(x):  # type: ignore[no-untyped-def]
                flat = np.ascontiguousarray(x).ravel()
                out = np.empty(flat.shape[0], np.float32)
                for i in range(flat.shape[0]):
                    out[i] = element(flat[i])
                return out.reshape(x.shape)
            return on_array
        if x == nb.float32:
            return lambda x: element(x)
        return lambda x: fallback(x)

    # inlined where it is called, so that a loop over elements vectorises
    _numba.extending.overload(stub, inline="always")(typer)
    return stub


def _scalar_where() -> Callable[..., Any]:
    """NumPy's ``where`` for compiled formulas, giving a number when every argument is a
    number (numba's gives a 0-d array, and the kernel applies an element-wise formula to one
    element at a time)."""

    def where(c, a, b):  # type: ignore[no-untyped-def]
        return np.where(c, a, b)

    def typer(c, a, b):  # type: ignore[no-untyped-def]
        if all(isinstance(v, (_nb().Number, _nb().Boolean)) for v in (c, a, b)):
            return lambda c, a, b: a if c else b
        return lambda c, a, b: np.where(c, a, b)

    _numba.extending.overload(where)(typer)
    return where


def _scalar_ones_like() -> Callable[..., Any]:
    """NumPy's ``ones_like`` for compiled formulas, giving a number for a number."""

    def ones_like(z):  # type: ignore[no-untyped-def]
        return np.ones_like(z)

    def typer(z):  # type: ignore[no-untyped-def]
        if isinstance(z, _nb().Number):
            return lambda z: z * 0 + 1  # NaN stays NaN, as the array form's product with it
        return lambda z: np.ones_like(z)

    _numba.extending.overload(ones_like)(typer)
    return ones_like


def _scalar_clip() -> Callable[..., Any]:
    """NumPy's ``clip`` for compiled formulas, giving a number for numbers (NaN stays NaN)."""

    def clip(a, low, high):  # type: ignore[no-untyped-def]
        return np.clip(a, low, high)

    def typer(a, low, high):  # type: ignore[no-untyped-def]
        if all(isinstance(v, _nb().Number) for v in (a, low, high)):
            return lambda a, low, high: a if a != a else min(max(a, low), high)
        return lambda a, low, high: np.clip(a, low, high)

    _numba.extending.overload(clip)(typer)
    return clip


def _nb() -> Any:
    from numba.core import types as nb

    return nb


def _prefetch_function() -> Callable[..., Any]:
    """``prefetch(a, i, j)``: ask the processor to bring the cache line of ``a[i, j]`` in,
    without waiting for it. The kernel asks for the next batch's rows while it computes the
    current one: a shuffled batch's rows are scattered over the data, and fetching them
    when needed cost B's step 9 of its 40 µs."""
    global _prefetch
    if _prefetch is None:
        from llvmlite import ir
        from numba.core import cgutils
        from numba.extending import intrinsic

        nb = _nb()

        @intrinsic
        def prefetch(typingctx: Any, array: Any, row: Any, col: Any) -> Any:
            def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
                kind = signature.args[0]
                data = context.make_array(kind)(context, builder, args[0])
                pointer = cgutils.get_item_pointer(context, builder, kind, data,
                                                   [args[1], args[2]], wraparound=False)
                byte, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
                function = cgutils.get_or_insert_function(
                    builder.module, ir.FunctionType(ir.VoidType(), [byte, i32, i32, i32]),
                    "llvm.prefetch.p0i8")
                # read, keep in all cache levels, data cache
                builder.call(function, [builder.bitcast(pointer, byte), i32(0), i32(3),
                                        i32(1)])
                return context.get_dummy_value()

            return nb.void(array, row, col), codegen

        _prefetch = prefetch
    return _prefetch


def _cast_function() -> Callable[..., Any]:
    """``cast(a, like)``: ``a`` in ``like``'s dtype, with no copy when it is already (numba's
    ``astype`` always copies)."""
    global _cast
    if _cast is None:
        from numba.core import types as nb

        def cast(a, like):  # type: ignore[no-untyped-def]
            return a.astype(like.dtype)

        def typer(a, like):  # type: ignore[no-untyped-def]
            if isinstance(a, nb.Array) and a.dtype == like.dtype:
                return lambda a, like: a
            return lambda a, like: a.astype(like.dtype)

        _numba.extending.overload(cast)(typer)
        _cast = cast
    return _cast


def _all_finite_function() -> Callable[..., Any]:
    """Whether every entry of a 1-D array is finite, for the kernel's weight check: the sum
    of ``p - p`` (0 for a finite entry, NaN for NaN or ±inf), in a loop that vectorises
    (``reassoc`` lets LLVM reorder the sum; without ``nnan`` it cannot fold ``p - p`` to 0).
    About 30 µs on config C's 670k parameters, run only on the steps that check; a flag
    set inside the optimizer's loop cost that loop half its speed there."""
    global _all_finite
    if _all_finite is None:
        @_numba.njit(error_model="numpy", fastmath={"reassoc"})
        def all_finite(p):  # type: ignore[no-untyped-def]
            acc = p[0] - p[0]
            for i in range(1, p.shape[0]):
                acc += p[i] - p[i]
            return acc == 0.0

        _all_finite = all_finite
    return _all_finite


_all_finite: Any = None


def _onednn_functions() -> dict[str, Any]:
    """``gemm(a, b, c, ta, tb)``: c = op(a) @ op(b), op the transpose where ``ta``/``tb``,
    for float32 arrays whose rows are contiguous (blocks of wider arrays allowed), by
    oneDNN's ``dnnl_sgemm`` (row-major), called from the kernel as numba calls its own
    BLAS: a symbol of a library loaded for good, so that the kernel's machine code can
    still be kept on disk. oneDNN leaves ``c`` unwritten when the inner dimension is 0."""
    global _onednn
    if _onednn is None:
        import llvmlite.binding as llvm

        from . import blas

        lib = blas.onednn()
        if lib is None:
            raise RuntimeError("oneDNN is not installed (pip install 'layerwise[onednn]')")
        llvm.load_library_permanently(lib.path)
        t = _numba.types
        f32p = t.CPointer(t.float32)
        sgemm = t.ExternalFunction("dnnl_sgemm", t.int32(
            t.char, t.char, t.int64, t.int64, t.int64, t.float32, f32p, t.int64, f32p,
            t.int64, t.float32, f32p, t.int64))
        no, yes = ord("N"), ord("T")

        def gemm(a, b, c, ta, tb):  # type: ignore[no-untyped-def]
            # rows may be a view's (a block of a wider array): the leading dimension is the
            # row stride; the elements of a row must be adjacent
            inner = a.shape[0] if ta else a.shape[1]
            sgemm(yes if ta else no, yes if tb else no, c.shape[0], c.shape[1], inner,
                  np.float32(1.0), a.ctypes, a.strides[0] // 4, b.ctypes, b.strides[0] // 4,
                  np.float32(0.0), c.ctypes, c.strides[0] // 4)

        _onednn = {"gemm": _numba.njit(gemm)}
    return _onednn


def _compiled_xp() -> types.ModuleType:
    """The array namespace the formulas are compiled with: NumPy, with the float32 exp and
    tanh above."""
    global _xp_module, _as_float32
    if _xp_module is None:
        from numba.core import types as nb
        from numba.extending import intrinsic

        @intrinsic
        def as_float32(typingctx: Any, bits: Any) -> Any:
            """The float32 whose bits are the int32 ``bits``."""
            def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
                return builder.bitcast(args[0], context.get_value_type(nb.float32))
            return nb.float32(nb.int32), codegen

        _as_float32 = as_float32
        globals()["_exp32"] = _numba.njit(inline="always", error_model="numpy")(_exp32)
        module = types.ModuleType("layerwise.compiled.xp")
        vars(module).update({k: v for k, v in vars(np).items() if not k.startswith("__")})
        module.exp = _vectorised(globals()["_exp32"], np.exp)
        module.tanh = _vectorised(_tanh32, np.tanh)
        module.where = _scalar_where()
        module.ones_like = _scalar_ones_like()
        module.clip = _scalar_clip()
        _xp_module = module
    return _xp_module


def _replacements() -> dict[Any, Callable[..., Any]]:
    """Helpers written with NumPy tricks numba does not compile, and loops giving the same
    values: a per-row shift (the row maxima), row sums, and erf."""
    from . import activations

    return {activations.stable_shift: _row_max, activations.row_sums: _row_sums,
            activations.erf: _erf}


def _single(code: types.CodeType) -> types.CodeType:
    """``code`` with its float constants (``1.0 - beta_1``'s 1.0) as float32."""
    consts = tuple(_F(c) if type(c) is float else _single(c) if isinstance(c, types.CodeType)
                   else c for c in code.co_consts)
    return code.replace(co_consts=consts)


def jit_formula(function: Callable[..., Any], inline: bool = False,
                dtype: str = "float64") -> Any:
    """``function`` compiled by numba with ``xp`` bound to ``_compiled_xp()``; the layerwise
    functions it calls are compiled the same way (or replaced, see ``_replacements``).

    ``inline``: numba inlines it (and what it calls) into its callers, as the kernel's loops
    over single elements need to vectorise (a call per element does not). ``dtype``
    "float32", for formulas applied to single numbers only: its float constants (and the
    module's float constants it reads) are float32, as NumPy treats a Python float in
    ``0.9 * m`` for a float32 array; numba would compute such a formula in float64 (at half
    the vector width, with slow double divisions)."""
    key = (function, inline, dtype)
    compiled = _jitted.get(key)
    if compiled is not None:
        return compiled
    options = {"error_model": "numpy", **({"inline": "always"} if inline else {})}
    replacement = _replacements().get(function)
    if replacement is not None:
        compiled = _numba.njit(**options)(replacement)
    else:
        single = dtype == "float32"
        scope = dict(function.__globals__, xp=_compiled_xp())
        for name in function.__code__.co_names:
            value = scope.get(name)
            if isinstance(value, types.FunctionType) and \
                    value.__module__.startswith("layerwise."):
                scope[name] = jit_formula(value, inline, dtype)
            elif single and type(value) is float:
                scope[name] = _F(value)
        code = _single(function.__code__) if single else function.__code__
        rebound = types.FunctionType(code, scope, function.__name__,
                                     function.__defaults__, function.__closure__)
        rebound.__qualname__ = function.__qualname__  # e.g. Adam.formula, for the caches
        compiled = _numba.njit(**options)(rebound)
    _jitted[key] = compiled
    return compiled


_scalar_checked: dict[Any, bool] = {}


def _formulas_take_numbers(formulas: tuple[Any, ...], inputs: tuple[int, ...], n_hyper: int,
                           dtype: str) -> bool:
    """Whether each formula compiles for ``inputs[k]`` single numbers (and ``n_hyper``
    float hyper-parameters), giving a number: then the kernel applies it element by element
    in its own loops, inlined, with no temporary arrays (ReLU's backward ~6x faster on a
    64x128 batch; tanh ~10x). A formula that works on rows (softmax's shift by the row
    maximum, say) does not compile for numbers and runs on whole arrays."""
    key = (*formulas, inputs, n_hyper, dtype)
    if key not in _scalar_checked:
        nb = _nb()
        number = nb.float32 if dtype == "float32" else nb.float64
        ok = True
        for formula, n_inputs in zip(formulas, inputs):
            function = jit_formula(formula, dtype=dtype)
            signature = (number,) * (n_inputs + n_hyper)  # the kernel casts hyper-parameters
            try:
                with _compiling():
                    function.compile(signature)
            except _numba.core.errors.NumbaError:
                ok = False
            else:
                returns = function.overloads[signature].signature.return_type
                ok = isinstance(returns, (nb.Number, nb.Boolean))
            if not ok:
                break
        _scalar_checked[key] = ok
    return _scalar_checked[key]


def _takes_numbers(activation: Any, dtype: str) -> bool:
    """Whether an element-wise activation's formula and derivative take single numbers."""
    return activation.elementwise and _formulas_take_numbers(
        (type(activation).formula, type(activation).gradient_formula), (1, 2),
        len(activation.hyper()), dtype)


def _loss_takes_numbers(loss: Any, dtype: str) -> bool:
    """Whether a loss's two formulas take single numbers ``(y_true, y_pred)``: each unit's
    loss is then its own (not so for cross-entropy from logits, which needs the row)."""
    return _formulas_take_numbers(loss.formulas(), (2, 2), len(loss.hyper()), dtype)


def _cache_dir() -> Path | None:
    """Where generated kernels and numba's compiled code are kept between processes
    (``LAYERWISE_CACHE_DIR``, default ``~/.cache/layerwise``), or None if not writable."""
    root = Path(os.environ.get("LAYERWISE_CACHE_DIR") or Path.home() / ".cache" / "layerwise")
    directory = root / "kernels"
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return directory if os.access(directory, os.W_OK) else None


def _sources_digest() -> str:
    """A digest of the code a kernel is compiled from: a changed formula makes new kernels
    (numba's own cache would not see a change in a function the kernel calls)."""
    global _digest
    if _digest is None:
        package = Path(__file__).parent
        files = ["activations.py", "losses.py", "compiled.py", "parts_kernel.py",
                 *sorted(f"optimizers/{p.name}" for p in (package / "optimizers").glob("*.py"))]
        hasher = hashlib.sha256(f"{_numba.__version__} {np.__version__}".encode())
        for name in files:
            hasher.update((package / name).read_bytes())
        _digest = hasher.hexdigest()
    return _digest


def _qualified(function: Any) -> str:
    """The function's name and a digest of its code (a user's formula is not in the digest
    of layerwise's own files)."""
    original = getattr(function, "py_func", function)
    code = getattr(original, "__code__", None)
    digest = "" if code is None else \
        " " + hashlib.sha256(marshal.dumps(code)).hexdigest()[:12]
    return f"{original.__module__}.{original.__qualname__}{digest}"


def _cache_file(source: str, name: str, scope: dict[str, Any]) -> tuple[str, Path | None]:
    """The full source of the function ``name`` and the file it is kept in (None when there
    is no writable cache directory)."""
    # the functions the source calls are part of what it means: name them in it, so that
    # two kernels differing only in them get different files (and numba caches)
    called = "".join(f"# {key} = {_qualified(value)}\n" for key, value in sorted(scope.items()))
    source = f"{called}import numpy as np\n\n\n{source}"
    directory = _cache_dir()
    if directory is None:
        return source, None
    digest = hashlib.sha256((_sources_digest() + source).encode()).hexdigest()[:24]
    return source, directory / f"{name}_{digest}.py"


def _kept_on_disk(key: tuple[Any, ...], name: str,
                  plan: Callable[[], tuple[str, dict[str, Any]]]) -> bool:
    """Whether the cache directory holds numba's machine code for the kernel ``key`` (``plan``
    gives its source and the functions it calls). Looked up once per process and cache
    directory: it costs a generated source, a digest and a directory listing (about 0.2 ms,
    too much for every small ``predict``), and a kernel compiled since is in ``_kernels``."""
    where = (key, os.environ.get("LAYERWISE_CACHE_DIR"))
    if where not in _on_disk:
        source, scope = plan()
        path = _cache_file(source, name, scope)[1]
        _on_disk[where] = path is not None and any(
            path.parent.glob(f"__pycache__/{path.stem}.*.nbi"))
    return _on_disk[where]


def _compile(source: str, name: str, scope: dict[str, Any], nogil: bool = False) -> Any:
    """Compile the function ``name`` defined by ``source``, calling the compiled functions
    in ``scope`` (``nogil``: it runs without the GIL, for threads that run it at once). The
    source is written to a file in ``_cache_dir()`` named by its digest, so that numba
    keeps the machine code there: a later process loads it in milliseconds instead of
    compiling again (several seconds for a training kernel)."""
    source, path = _cache_file(source, name, scope)
    if path is None:
        namespace = {"np": np, **scope}
        exec(compile(source, f"<layerwise.compiled {name}>", "exec"), namespace)
        return _numba.njit(error_model="numpy", nogil=nogil)(namespace[name])
    digest = path.stem.rsplit("_", 1)[1]
    if not path.exists():  # written whole or not at all: another process may read it
        part = path.with_suffix(f".{os.getpid()}.tmp")
        part.write_text(source)
        os.replace(part, path)
    spec = importlib.util.spec_from_file_location(f"layerwise_{name}_{digest}", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[module.__name__] = module  # numba's cache finds the module by its name
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    vars(module).update(scope)
    return _numba.njit(cache=True, error_model="numpy", nogil=nogil)(getattr(module, name))


# -- the optimizer's pass ------------------------------------------------------------------


def _update_loop(formula: Callable[..., Any], present: tuple[bool, ...], n_hyper: int,
                 dtype: str) -> Any:
    key = (formula, present, n_hyper, dtype)
    loop = _loops.get(key)
    if loop is None:
        slots = [f"s{i}" for i in range(len(present))]
        hyper = ", ".join(f"h{i}" for i in range(n_hyper))
        # a slot that is off reads as a zero of the parameters' dtype: a float64 0.0 would
        # make the formula's unused branch (AMSGrad's maximum) and so its result float64
        args = ", ".join(f"{s}[i]" if on else "zero" for s, on in zip(slots, present))
        writes = "".join(f"        {s}[i] = r[{k + 1}]\n"
                         for k, (s, on) in enumerate(zip(slots, present)) if on)
        casts = "".join(f"    h{i} = np.{dtype}(h{i})\n" for i in range(n_hyper))
        casts += f"    zero = np.{dtype}(0.0)\n"
        source = (f"def loop(p, g, {', '.join([*slots, ''])}{hyper}):\n{casts}"
                  f"    for i in range(p.shape[0]):\n"
                  f"        r = formula(p[i], g[i], {args + ', ' if args else ''}{hyper})\n"
                  f"        p[i] = r[0]\n{writes}")
        loop = _loops[key] = _compile(source, "loop",
                                      {"formula": jit_formula(formula, True, dtype)})
    return loop


def update_in_one_pass(formula: Callable[..., Any], p: Any, g: Any, state: list[Any],
                       hyper: tuple[Any, ...]) -> bool:
    """Apply an optimizer's ``formula`` to the 1-D ``p``, ``g`` and ``state`` (None where a
    slot is off) in one compiled pass; False (nothing done) when numba is not available or
    the arrays do not suit it."""
    if p.shape[0] < ONE_PASS_MIN or not available() or p.dtype.char not in "fd" or \
            any(a is not None and (a.dtype != p.dtype or not a.flags.c_contiguous)
                for a in (p, g, *state)):
        return False
    present = tuple(s is not None for s in state)
    dummy = p[:1]  # never read: the loop passes a zero for a slot that is off
    loop = _update_loop(formula, present, len(hyper), p.dtype.name)
    args = (p, g, *[dummy if s is None else s for s in state], *[float(h) for h in hyper])
    with _compiling():  # the first call for these dtypes compiles
        loop(*args)
    return True


def _threads_outside_fit() -> int:
    """The threads a kernel runs on where no thread governor measures: the fixed setting
    of ``layerwise.threads``, else every core."""
    from . import threads

    return threads.threads_setting() or threads.cores_available()


@contextlib.contextmanager
def _compiling() -> Any:
    """Around a first call, which compiles: numba's note that some code cannot be kept in
    its cache (it is then compiled again in the next process) is no concern of the user."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Cannot cache compiled function",
                                category=_numba.NumbaWarning)
        # a pedantic check of numba's that inlined code with branches trips (numba asks
        # for reports, but the code is right: the kernels equal the Python loop in tests)
        warnings.filterwarnings("ignore", category=_numba.core.errors.NumbaIRAssumptionWarning)
        yield


# -- the training kernel -------------------------------------------------------------------


def _own_math(obj: Any, formula: str, methods: tuple[str, ...]) -> bool:
    """Whether ``obj``'s ``methods`` are those of the class that gives its ``formula`` (or of
    its bases): a subclass that overrides one of them (its own ``backward``, say) computes
    something the formula does not say, so only the Python path runs it faithfully."""
    return _class_own_math(type(obj), formula, methods)


@functools.lru_cache(maxsize=256)
def _class_own_math(cls: type, formula: str, methods: tuple[str, ...]) -> bool:
    """``_own_math`` of the class: walked once per class (every ``predict`` asks)."""
    mro = cls.__mro__

    def defined_in(name: str) -> int:
        return next((i for i, cls in enumerate(mro) if name in vars(cls)), len(mro))

    owner = defined_in(formula)
    for name in methods:
        where = defined_in(name)
        if where < owner and not mro[where].__module__.startswith("layerwise."):
            return False
    return owner < len(mro)


def _layers_reason(model: Any, training: bool) -> str | None:
    """Why ``model``'s layers have no compiled form (for training, or inference), or None."""
    from . import layers

    for layer in model.layers:
        if type(layer) is not layers.Dense:
            return f"layer {layer.name!r} is a {type(layer).__name__}, not a Dense layer"
        if training and not layer.trainable:
            return f"layer {layer.name!r} is frozen"
        if type(layer.activation).formula is None or not _own_math(
                layer.activation, "formula", ("forward", "derivative", "backward")):
            return f"the activation of layer {layer.name!r} is Python code"
    return None


def reason_not_compiled(model: Any, source: Any, batch_hooks: bool) -> str | None:
    """Why ``model`` cannot train ``source`` in the compiled kernel, or None if it can."""
    from . import data, losses
    from .backend import xp

    if not available():
        if xp.__name__ != "numpy":
            return f"the arrays live on {xp.__name__}"
        return "numba is not installed (pip install 'layerwise[fast]')"
    if not isinstance(source, data.ArraySource) or source.shard is not None:
        return "the data is streamed, not in-memory arrays"
    if batch_hooks:
        return "a callback wants every batch"
    if model.metrics:
        return "metrics are computed in Python"
    if model._regularized:
        return "weight penalties are computed in Python"
    if model.gradient_reducer is not None or model._strategy is not None:
        return "gradients are reduced across processes"
    if model._flat_params is None or model._grad_buffer is None or model._grad_tail:
        return "the parameters are not in one flat buffer"
    if np.dtype(model._flat_params.dtype).char not in "fd":
        return f"the compiled kernel runs float32 and float64, not {model._flat_params.dtype}"
    reason = _layers_reason(model, training=True)
    if reason is not None:
        return reason
    loss = model._fused or model.loss
    if loss.formulas() is None or type(loss).call is not losses.Loss.call or not _own_math(
            loss, "formulas", ("per_sample", "gradient", "loss_and_gradient")):
        return f"the loss {loss.name!r} is Python code"
    optimizer = model.optimizer
    if optimizer.formula is None or not _own_math(optimizer, "formula", ("update", "apply")):
        return f"the optimizer {type(optimizer).__name__} has no formula"
    if optimizer.clipvalue is not None or optimizer.clipnorm is not None or \
            optimizer.global_clipnorm:
        return "gradients are clipped in Python"
    if model.loss_weight <= 0:
        return "the loss weight is not positive"
    return None


def _layer_buffers(dense: list[Any], numbers: list[bool], n_hyper: list[int], dtype: str
                   ) -> list[str]:
    """Kernel lines before the loop: each layer's z (and a) for ``batch`` rows, reused by
    every batch, and its activation's hyper-parameters as numbers of the model's dtype."""
    lines = []
    for i, layer in enumerate(dense):
        lines.append(f"    Z{i} = np.empty((batch, {layer.units}), np.{dtype})")
        if numbers[i]:
            lines.append(f"    A{i} = np.empty((batch, {layer.units}), np.{dtype})")
        lines += [f"    ah{i}_{h} = np.{dtype}(ahyper[{i}, {h}])" for h in range(n_hyper[i])]
    return lines


def _product(kind: str, a: str, b: str, out: str, onednn: bool) -> str:
    """A kernel line computing ``out`` = a @ b (``kind`` "nn"), aᵀ @ b ("tn") or a @ bᵀ
    ("nt"): numba's ``np.dot`` (its BLAS), or oneDNN's sgemm (``_onednn_functions``)."""
    if onednn:
        return f"        gemm({a}, {b}, {out}, {kind[0] == 't'}, {kind[1] == 't'})"
    a, b = (f"{a}.T", b) if kind == "tn" else (a, f"{b}.T") if kind == "nt" else (a, b)
    return f"        np.dot({a}, {b}, {out})"


def _forward(dense: list[Any], numbers: list[bool], fused: bool,
             nhp: Callable[[int], str], onednn: bool = False) -> list[str]:
    """Kernel lines of one forward pass of the ``m`` rows ``a_in``: every layer's product,
    bias and activation, the network's output left in ``out`` (the last layer's z when its
    activation is ``fused`` into the loss). Shared by the training and the inference kernel."""
    lines = []
    last = len(dense) - 1
    previous = "a_in"
    for i, layer in enumerate(dense):
        lines += [f"        z{i} = Z{i}[:m]", _product("nn", previous, f"W{i}", f"z{i}", onednn)]
        bias = f" + B{i}[c]" if layer.use_bias else ""
        if numbers[i] and not (i == last and fused):  # bias and formula, one loop
            lines += [f"        a{i} = A{i}[:m]",
                      "        for r in range(m):",
                      f"            for c in range({layer.units}):",
                      f"                v = z{i}[r, c]{bias}",
                      f"                z{i}[r, c] = v",
                      f"                a{i}[r, c] = f{i}(v{nhp(i)})"]
            previous = f"a{i}"
            continue
        if layer.use_bias:
            lines += ["        for r in range(m):",
                      f"            for c in range({layer.units}):",
                      f"                z{i}[r, c] += B{i}[c]"]
        if i == last and fused:
            lines.append(f"        out = z{i}")
        else:
            lines.append(f"        a{i} = cast(f{i}(z{i}{nhp(i)}), z{i})")
            previous = f"a{i}"
    if not fused:
        lines.append(f"        out = a{last}")
    return lines


def _parameter_views(dense: list[Any]) -> list[str]:
    """Kernel lines before the loop: each layer's W, gW (and B, gB) as views of the flat
    parameters ``P`` and gradients ``G`` at the layer's ``offsets``."""
    lines = []
    for i, layer in enumerate(dense):
        k, b = f"offsets[{i}, 0]", f"offsets[{i}, 1]"
        rows, cols = layer.input_dim, layer.units
        lines += [f"    W{i} = P[{k}:{k} + {rows * cols}].reshape(({rows}, {cols}))",
                  f"    gW{i} = G[{k}:{k} + {rows * cols}].reshape(({rows}, {cols}))"]
        if layer.use_bias:
            lines += [f"    B{i} = P[{b}:{b} + {cols}]", f"    gB{i} = G[{b}:{b} + {cols}]"]
    return lines


def _update_lines(slots: list[str], present: tuple[bool, ...], n_opt_hyper: int,
                  decoupled: bool, num: str, own: bool = False) -> list[str]:
    """Kernel lines of a step's optimizer pass: the formula over every parameter, or
    (``own``) over the flat ranges ``own[k, 0]:own[k, 1]`` only; then, every
    ``FLUSH_EVERY`` steps, the state below ``TINY`` set to 0 over the same parameters (as
    ``Optimizer.flush_subnormal_state``)."""
    # the step's numbers as locals: read from H inside the loop, they would have to be
    # read again after every store (H might alias P), and the loop would not vectorize
    hyper = "".join(f", h{h}" for h in range(n_opt_hyper))
    # a slot that is off reads as a zero of the model's dtype: a float64 0.0 would make the
    # formula's unused branch (AMSGrad's maximum) and so all of Adam float64 (3x slower)
    args = "".join(f", {s}[i]" if on else ", zero" for s, on in zip(slots, present))
    loop = ["for k in range(own.shape[0]):", "    for i in range(own[k, 0], own[k, 1]):"] \
        if own else ["for i in range(P.shape[0]):"]
    inner = " " * (4 * len(loop))

    def over(pad: str, body: list[str]) -> list[str]:
        return [pad + line for line in loop] + [pad + inner + line for line in body]

    lines = [f"        h{h} = {num}(H[s, {h}])" for h in range(n_opt_hyper + decoupled)]
    lines += over("        ", [
        f"u = opt({f'P[i] * h{n_opt_hyper}' if decoupled else 'P[i]'}, G[i]{args}{hyper})",
        "P[i] = u[0]", *[f"{s}[i] = u[{k + 1}]"
                         for k, (s, on) in enumerate(zip(slots, present)) if on]])
    flush = [f"if abs({s}[i]) < {TINY}:\n{' ' * 12}{inner}    {s}[i] = 0.0"
             for s, on in zip(slots, present) if on] or ["pass"]
    lines += [f"        if (it0 + s + 1) % {FLUSH_EVERY} == 0:", *over(" " * 12, flush)]
    return lines


def _kernel_source(model: Any, fused: bool, elementwise: list[bool], n_hyper: list[int],
                   n_loss_hyper: int, present: tuple[bool, ...], n_opt_hyper: int,
                   decoupled: bool, dtype: str, numbers: list[bool], loss_numbers: bool,
                   onednn: bool = False) -> str:
    """The source of one network's kernel: the layers unrolled, each step's work in order."""
    dense = model.layers
    last = len(dense) - 1

    def nhp(i: int) -> str:  # an activation's hyper-parameters, read once
        return "".join(f", ah{i}_{h}" for h in range(n_hyper[i]))

    # the formulas' numbers in the model's dtype: a float64 among float32 values would make
    # numba compute in float64, as NumPy does not
    num = f"np.{dtype}"
    lhp = "".join(f", lh{h}" for h in range(n_loss_hyper))

    slots = [f"S{i}" for i in range(len(present))]
    lines = [f"def epoch(x, t, sw, order, first, steps, batch, P, G, {', '.join([*slots, ''])}"
             "H, offsets, ahyper, lhyper, loss_weight, units_denominator, every, it0, losses):",
             "    n = order.shape[0]"]
    lines += _parameter_views(dense)
    lines += _layer_buffers(dense, numbers, n_hyper, dtype)
    lines += [f"    lh{h} = {num}(lhyper[{h}])" for h in range(n_loss_hyper)]
    lines.append(f"    zero = {num}(0.0)  # an optimizer slot that is off")
    for i in range(1, len(dense)):  # dL/d(input) of the layers above the first
        lines.append(f"    DY{i} = np.empty((batch, {dense[i].input_dim}), P.dtype)")
    if loss_numbers:
        lines.append(f"    DL = np.empty((batch, {dense[last].units}), P.dtype)")
    lines += ["    X = np.empty((batch, x.shape[1]), x.dtype)",
              "    T = np.empty((batch, t.shape[1]), t.dtype)",
              "    Wt = np.empty(batch, sw.dtype)",
              "    total = 0.0",
              "    for s in range(steps):",
              "        start = (first + s) * batch",
              "        m = min(batch, n - start)",
              "        for r in range(m):",
              "            j = order[start + r]",
              "            X[r] = x[j]",
              "            T[r] = t[j]",
              "            Wt[r] = sw[j]",
              "        ahead = start + batch  # the next batch's rows: on their way meanwhile",
              "        for r in range(min(batch, n - ahead) if s + 1 < steps else 0):",
              "            j = order[ahead + r]",
              f"            for c in range(0, x.shape[1], {64 // np.dtype(dtype).itemsize}):",
              "                prefetch(x, j, c)",
              "            prefetch(t, j, 0)",
              "        a_in = X[:m]"]
    lines += _forward(dense, numbers, fused, nhp, onednn)
    lines += ["        tb = T[:m]",
              "        wb = Wt[:m]"]
    if loss_numbers:  # each unit's loss and derivative, in one loop
        lines += ["        dy = DL[:m]",
                  "        loss = 0.0",
                  f"        factor = {num}(loss_weight / (units_denominator * m))",
                  "        for r in range(m):",
                  "            weight = wb[r] * factor",
                  f"            for c in range({dense[last].units}):",
                  f"                loss += loss_value(tb[r, c], out[r, c]{lhp}) * weight",
                  f"                dy[r, c] = loss_grad(tb[r, c], out[r, c]{lhp}) * weight"]
    else:
        lines += [f"        each = loss_value(tb, out{lhp})",
                  "        loss = (each * wb.reshape((m, 1))).sum() / units_denominator / m "
                  "* loss_weight",
                  "        scale = wb * (loss_weight / (units_denominator * m))",
                  f"        dy = cast(loss_grad(tb, out{lhp}) * scale.reshape((m, 1)), out)"]
    lines += ["        if not np.isfinite(loss):",
              "            losses[0] = loss",
              "            return s, 1, total"]
    for i in range(last, -1, -1):
        layer = dense[i]
        hp = nhp(i)
        below = "a_in" if i == 0 else f"a{i - 1}"
        if i == last and fused:
            lines.append("        dz = dy")
        elif numbers[i]:  # dy is this step's own array: scaled in place
            lines += ["        dz = dy",
                      "        for r in range(m):",
                      f"            for c in range({layer.units}):",
                      f"                dz[r, c] = dy[r, c] * "
                      f"df{i}(z{i}[r, c], a{i}[r, c]{nhp(i)})"]
        elif elementwise[i]:
            lines.append(f"        dz = cast(dy * df{i}(z{i}, a{i}{hp}), dy)")
        else:
            lines.append(f"        dz = cast(df{i}(z{i}, a{i}, dy{hp}), dy)")
        lines.append(_product("tn", below, "dz", f"gW{i}", onednn))
        if layer.use_bias:
            lines += _bias_gradient(i, "dz", "0", str(layer.units))
        if i > 0:
            lines += [f"        dy = DY{i}[:m]", _product("nt", "dz", f"W{i}", "dy", onednn)]
    lines += _update_lines(slots, present, n_opt_hyper, decoupled, num)
    lines += ["        total += loss * m",
              "        losses[0] = loss",
              "        if (it0 + s + 1) % every == 0 and not all_finite(P):",
              "            return s + 1, 2, total",
              "    return steps, 0, total"]
    return "\n".join(lines) + "\n"


def _bias_gradient(i: int, dz: str, lo: str, hi: str) -> list[str]:
    """Kernel lines: layer ``i``'s bias gradient, Σ over the batch of ``dz``, for the
    columns ``lo:hi``, row by row (numba's sum(axis=0) is slow)."""
    return [f"        for c in range({lo}, {hi}):",
            f"            gB{i}[c] = {dz}[0, c]",
            "        for r in range(1, m):",
            f"            for c in range({lo}, {hi}):",
            f"                gB{i}[c] += {dz}[r, c]"]


def _layers_key(dense: list[Any]) -> tuple[Any, ...]:
    """What of the layers a kernel is compiled for: sizes, bias, activation formula and its
    number of hyper-parameters (their values are arguments)."""
    return tuple((layer.input_dim, layer.units, layer.use_bias,
                  type(layer.activation).formula, len(layer.activation.hyper()))
                 for layer in dense)


def _activation_hyper(dense: list[Any]) -> np.ndarray:
    """``(layers, most hyper-parameters)``: each layer's activation hyper-parameters, in a
    row padded with zeros, the kernels' ``ahyper`` argument."""
    rows = [layer.activation.hyper() for layer in dense]
    table = np.zeros((len(rows), max([len(row) for row in rows] + [1])))
    for i, row in enumerate(rows):
        table[i, :len(row)] = row
    return table


class EpochKernel:
    """The compiled steps of one compiled model: ``run`` trains a stretch of an epoch."""

    def __init__(self, model: Any, batch: int | None = None) -> None:
        from . import blas

        self.model = model
        self.loss = loss = model._fused or model.loss
        #: who computes the products: "openblas" (numba's BLAS) or "onednn", chosen by
        #: ``blas.kernel_library`` (measured on this network's shapes for ``batch`` rows)
        split = parts_kernel.reason_not_split(model, np.dtype(model.dtype).name) is None
        threads = self._threads()
        self.library = "openblas" if batch is None else blas.kernel_library(
            [(layer.input_dim, layer.units) for layer in model.layers], batch, model.dtype,
            threads, threads if split else 1)
        if self.library == "onednn" and split:
            self.library = "onednn-parts"  # each thread its own part of every layer
        self.key = key = self.key_of(model, self.library)
        *_, self.present, _, self.decoupled, self.dtype = key
        self.offsets = self._offsets()
        self.function = _kernels.get(key)
        if self.function is None:
            source, scope = self.plan(model, self.library)
            self.function = _kernels[key] = _compile(source, "epoch", scope,
                                                     nogil=self.library == "onednn-parts")
        self.ahyper = _activation_hyper(model.layers)
        self.lhyper = np.array([*loss.hyper(), 0.0], dtype=np.float64)
        #: seconds per step, as last measured (a first stretch of 16 steps measures it)
        self.step_time = STRETCH / 16
        self._parts_state: tuple[Any, ...] | None = None  # the split kernel's shared arrays

    @staticmethod
    def key_of(model: Any, library: str = "openblas") -> tuple[Any, ...]:
        """What makes one kernel differ from another: the library of its products, the
        layers, the loss's formulas, the optimizer's formula and options, the dtype."""
        loss, optimizer = model._fused or model.loss, model.optimizer
        return (library, _layers_key(model.layers),
                loss.formulas(), loss.sums_units, model._fused is not None,
                optimizer.formula,
                tuple(name in optimizer.slot_names for name in optimizer.formula_slots),
                len(optimizer.hyper(optimizer.current_learning_rate(), 1)),
                bool(optimizer.weight_decay) and not optimizer.decays_itself,
                np.dtype(model.dtype).name)

    @staticmethod
    def plan(model: Any, library: str = "openblas") -> tuple[str, dict[str, Any]]:
        """The kernel's source and the compiled functions it calls."""
        loss, optimizer = model._fused or model.loss, model.optimizer
        acts = [layer.activation for layer in model.layers]
        *_, present, n_opt_hyper, decoupled, dtype = EpochKernel.key_of(model, library)
        loss_numbers = _loss_takes_numbers(loss, dtype)

        def compiled(formula: Any, on_numbers: bool) -> Any:
            # float32 constants only on numbers (numba's array expressions refuse them)
            return jit_formula(formula, on_numbers, dtype if on_numbers else "float64")

        scope = {"cast": _cast_function(), "prefetch": _prefetch_function(),
                 "all_finite": _all_finite_function(),
                 "loss_value": compiled(loss.formulas()[0], loss_numbers),
                 "loss_grad": compiled(loss.formulas()[1], loss_numbers),
                 "opt": compiled(optimizer.formula, True)}
        numbers = [_takes_numbers(a, dtype) for a in acts]
        for i, act in enumerate(acts):
            scope[f"f{i}"] = compiled(type(act).formula, numbers[i])
            scope[f"df{i}"] = compiled(type(act).gradient_formula, numbers[i])
        if library == "onednn-parts":
            source = parts_kernel.kernel_source(model, [len(a.hyper()) for a in acts],
                                                len(loss.hyper()), present, n_opt_hyper,
                                                decoupled, dtype, loss_numbers)
            scope.update(parts_kernel._sync_functions())
        else:
            source = _kernel_source(model, model._fused is not None,
                                    [a.elementwise for a in acts], [len(a.hyper()) for a in acts],
                                    len(loss.hyper()), present, n_opt_hyper, decoupled, dtype,
                                    numbers, loss_numbers, library == "onednn")
        if library.startswith("onednn"):
            scope.update(_onednn_functions())
        return source, scope

    @staticmethod
    def is_compiled(model: Any) -> bool:
        """Whether this model's kernel is compiled already: in this process, or kept in the
        cache directory by an earlier one (then loading it takes milliseconds)."""
        if not available():
            return False
        own = EpochKernel.key_of(model)[1:]  # whichever library computes its products
        if any(key[1:] == own for key in _kernels):
            return True
        from . import blas

        libraries = ["openblas"]
        if blas.onednn() is not None:
            libraries.append("onednn")
            if parts_kernel.reason_not_split(model, np.dtype(model.dtype).name) is None:
                libraries.append("onednn-parts")
        return any(_kept_on_disk(EpochKernel.key_of(model, library), "epoch",
                                 lambda library=library: EpochKernel.plan(model, library))
                   for library in libraries)

    def _threads(self) -> int:
        """The threads the products run on: the thread governor's current count in ``fit``
        (``layerwise.threads``), else the fixed setting, else every core."""
        governor = getattr(self.model, "_governor", None)
        if governor is not None:
            return int(governor.current)
        return _threads_outside_fit()

    def _offsets(self) -> np.ndarray:
        flat = self.model._flat_params
        base = flat.__array_interface__["data"][0]
        rows = []
        for layer in self.model.layers:
            kernel = layer.params["kernel"]
            bias = layer.params.get("bias")
            rows.append([(kernel.__array_interface__["data"][0] - base) // flat.itemsize,
                         -1 if bias is None else
                         (bias.__array_interface__["data"][0] - base) // flat.itemsize])
        return np.array(rows, dtype=np.int64)

    def prepare(self, source: Any) -> None:
        """The targets as the loss formulas take them, and the sample weights (ones when
        none), once per ``fit``."""
        units = self.model.layers[-1].units
        t = self.loss.targets_for_formulas(source.y, units)
        t = np.asarray(t, dtype=self.dtype)
        self.t = t.reshape(t.shape[0], -1)
        self.sw = np.ones(source.samples, self.dtype) if source.w is None else \
            np.ascontiguousarray(source.w, dtype=self.dtype)
        self.x = np.ascontiguousarray(source.x)
        units_denominator = 1.0 if self.loss.sums_units else float(units)
        self.units_denominator = units_denominator
        if not self.function.signatures:  # compile (or load) now: a run of no steps
            try:
                self.run(np.arange(self.x.shape[0]), 0, 0, 1)
            except _numba.core.errors.NumbaError as error:
                summary = " ".join(str(error).split())
                raise CompileError(summary[:400]) from error

    def hyper(self, steps: int) -> np.ndarray:
        """The optimizer's numbers for its next ``steps`` steps, one row per step (and the
        decoupled weight-decay factor in the last column)."""
        optimizer = self.model.optimizer
        it0 = optimizer.iterations
        if callable(optimizer.learning_rate):
            lrs = []
            for i in range(steps):
                optimizer.iterations = it0 + i
                lrs.append(optimizer.current_learning_rate())
            optimizer.iterations = it0
            lr: Any = np.array(lrs)
        else:
            lr = optimizer.learning_rate
        t = np.arange(it0 + 1, it0 + steps + 1)
        columns = [np.broadcast_to(np.asarray(v, dtype=np.float64), (steps,))
                   for v in optimizer.hyper(lr, t)]
        if self.decoupled:
            columns.append(np.broadcast_to(1.0 - lr * optimizer.weight_decay, (steps,)))
        return np.ascontiguousarray(np.stack(columns, axis=1)) if columns else \
            np.zeros((steps, 1))

    def run(self, order: np.ndarray, first: int, steps: int, batch: int
            ) -> tuple[int, int, float, float]:
        """Train ``steps`` batches from batch ``first`` of the epoch's ``order``. Returns
        (steps whose update was applied, status: 0 done, 1 a non-finite loss stopped it before
        that batch's update, 2 the weights became non-finite; the sum of loss x batch size
        over the applied steps, the last loss)."""
        model, optimizer = self.model, self.model.optimizer
        flat_slots = optimizer._flat[2]
        slots = [flat_slots[name] if on else model._flat_params[:1]
                 for name, on in zip(optimizer.formula_slots, self.present)]
        losses = np.zeros(1)
        args = (self.x, self.t, self.sw, order, first, steps, batch, model._flat_params,
                model._grad_buffer, *slots, self.hyper(steps), self.offsets, self.ahyper,
                self.lhyper, float(model.loss_weight), self.units_denominator,
                int(model._check_every), int(optimizer.iterations), losses)
        if self.library == "onednn-parts":
            done, status, total = self._run_parts(args, batch, self._threads() if steps else 1)
            return int(done), int(status), float(total), float(losses[0])
        if self.library == "onednn":  # the thread count the governor set for the BLAS
            from . import blas

            blas.onednn().set_threads(self._threads())  # type: ignore[union-attr]
        with _compiling():  # new array types (read-only, say) compile once more
            done, status, total = self.function(*args)
        return int(done), int(status), float(total), float(losses[0])

    def _run_parts(self, args: tuple[Any, ...], batch: int, parts: int
                   ) -> tuple[int, int, float]:
        """Run the split kernel (``parts_kernel``) on ``parts`` threads: this one runs part
        0, the pool's the others, each with one-thread oneDNN products."""
        from . import blas

        lib = blas.onednn()
        key = (batch, parts, self.t.shape[1])
        if self._parts_state is None or self._parts_state[0] != key:
            places, size = parts_kernel.work_places(self.model, *key)
            self._parts_state = (key, parts_kernel.split_bounds(self.model, parts), places,
                                 parts_kernel.aligned_empty(size, self.dtype))
        _, bounds, places, work = self._parts_state
        sync = np.zeros(2, np.int64)  # arrivals at the barrier; abort
        shared = np.zeros(2 * parts)  # each part's loss; whether its weights are finite

        def part(index: int, losses: np.ndarray) -> tuple[int, int, float]:
            try:
                if index:  # this thread's was set before the others started (see below)
                    lib.set_threads(1)  # type: ignore[union-attr]  # a setting of each thread
                return self.function(*args[:-1], losses, index, parts, bounds, work, places,
                                     sync, shared)
            except BaseException:
                sync[1] = 1  # the others stop waiting for this one at their next barrier
                raise

        # set here first: with Intel's OpenMP loaded too (by MKL), setting it while another
        # thread is in a oneDNN call was seen to wait for that call to end
        lib.set_threads(1)  # type: ignore[union-attr]
        with parts_kernel.run_lock:
            others = [parts_kernel.helpers(parts - 1).submit(part, index, np.zeros(1))
                      for index in range(1, parts)]
            try:
                with _compiling():
                    result = part(0, args[-1])
            finally:
                results = [future.result() for future in others]  # a helper's error: raised
        if any(other != result for other in results):
            raise RuntimeError(f"the kernel's threads disagree: {[result, *results]}")
        return result


# -- the inference kernel ------------------------------------------------------------------


def _predict_source(dense: list[Any], n_hyper: list[int], dtype: str, numbers: list[bool],
                    onednn: bool = False) -> str:
    """The source of one network's inference kernel: ``_forward`` over the rows of ``x`` in
    batches, each batch's output copied into ``result``; its products by oneDNN's sgemm
    where ``onednn``."""

    def nhp(i: int) -> str:
        return "".join(f", ah{i}_{h}" for h in range(n_hyper[i]))

    weights = [f"W{i}, B{i}" if layer.use_bias else f"W{i}" for i, layer in enumerate(dense)]
    lines = [f"def predict(x, result, batch, {', '.join(weights)}, ahyper):",
             "    n = x.shape[0]"]
    lines += _layer_buffers(dense, numbers, n_hyper, dtype)
    lines += ["    for start in range(0, n, batch):",
              "        m = min(batch, n - start)",
              "        a_in = x[start:start + m]"]
    lines += _forward(dense, numbers, False, nhp, onednn)
    lines += ["        result[start:start + m] = out"]
    return "\n".join(lines) + "\n"


def reason_not_predicted(model: Any, x: Any) -> str | None:
    """Why ``predict`` cannot run ``model`` on ``x`` in the compiled inference kernel (the
    arrays must already be C-contiguous rows of the model's dtype: the kernel never copies
    the data whole), or None if it can."""
    if not available():
        return "numba is not installed, or the arrays are not NumPy's"
    if not isinstance(x, np.ndarray) or x.ndim != 2:
        return "the data is not one 2-D NumPy array"
    if x.dtype != np.dtype(model.dtype) or x.dtype.char not in "fd":
        return f"the data is {x.dtype}, not the model's {np.dtype(model.dtype)}"
    if not x.flags.c_contiguous:
        return "the data's rows are not contiguous"
    reason = _layers_reason(model, training=False)
    if reason is None and model.count_params() > PREDICT_MAX_WEIGHTS and \
            PredictKernel.library_of(model) != "onednn":
        return f"the network has more than {PREDICT_MAX_WEIGHTS} weights: NumPy's products"
    return reason


class PredictKernel:
    """The compiled forward pass of a network of ``Dense`` layers: ``run`` fills
    ``predict``'s output with no Python per batch. The same ``_forward`` lines as the
    training kernel, compiled from the same activation formulas. With oneDNN's products
    (``blas.predict_library``) each thread runs it on its own block of rows."""

    def __init__(self, model: Any) -> None:
        if not available():
            raise RuntimeError("The inference kernel needs numba and NumPy arrays "
                               "(pip install 'layerwise[fast]').")
        self.model = model
        self.library = self.library_of(model)
        self.key = self.key_of(model, self.library)
        self.function = _kernels.get(self.key)
        if self.function is None:
            source, scope = self.plan(model, self.library)
            self.function = _kernels[self.key] = _compile(source, "predict", scope,
                                                          nogil=self.library == "onednn")

    @staticmethod
    def library_of(model: Any) -> str:
        """Who computes the products: ``"onednn"`` (on ``parts`` threads, each its own rows)
        or ``"openblas"`` (numba's BLAS), as ``blas.predict_library`` measured or was told."""
        from . import blas

        sizes = [(layer.input_dim, layer.units) for layer in model.layers]
        return blas.predict_library(sizes, model.dtype, _threads_outside_fit())


    @staticmethod
    def key_of(model: Any, library: str = "openblas") -> tuple[Any, ...]:
        """The layers (sizes, bias, activation formula), the dtype and the library."""
        return ("predict", _layers_key(model.layers), np.dtype(model.dtype).name, library)

    @staticmethod
    def plan(model: Any, library: str = "openblas") -> tuple[str, dict[str, Any]]:
        """The kernel's source and the compiled functions it calls."""
        dtype = np.dtype(model.dtype).name
        acts = [layer.activation for layer in model.layers]
        numbers = [_takes_numbers(a, dtype) for a in acts]
        scope: dict[str, Any] = {"cast": _cast_function()}
        for i, act in enumerate(acts):
            scope[f"f{i}"] = jit_formula(type(act).formula, numbers[i],
                                         dtype if numbers[i] else "float64")
        source = _predict_source(model.layers, [len(a.hyper()) for a in acts], dtype,
                                 numbers, library == "onednn")
        if library == "onednn":
            scope.update(_onednn_functions())
        return source, scope

    @staticmethod
    def is_compiled(model: Any) -> bool:
        """Whether this network's inference kernel is compiled already, in this process or
        kept in the cache directory by an earlier one (for either library)."""
        if not available():
            return False
        from . import blas

        libraries = ["openblas"]
        if np.dtype(model.dtype) == np.float32 and blas.onednn() is not None:
            libraries.append("onednn")
        return any(
            PredictKernel.key_of(model, library) in _kernels or _kept_on_disk(
                PredictKernel.key_of(model, library), "predict",
                lambda library=library: PredictKernel.plan(model, library))
            for library in libraries)

    def run(self, x: np.ndarray, result: np.ndarray, batch: int) -> None:
        """``result (rows, units) <- the network's outputs for x (rows, features)``, ``batch``
        rows at a time. Raises ``CompileError`` when numba cannot compile it."""
        weights = []
        for layer in self.model.layers:
            weights.append(layer.params["kernel"])
            if layer.use_bias:
                weights.append(layer.params["bias"])
        hyper = _activation_hyper(self.model.layers)
        try:
            with _compiling():
                if self.library == "onednn":
                    self._run_parts(x, result, batch, weights, hyper)
                else:
                    self.function(x, result, batch, *weights, hyper)
        except _numba.core.errors.NumbaError as error:
            summary = " ".join(str(error).split())
            raise CompileError(summary[:400]) from error

    def _run_parts(self, x: np.ndarray, result: np.ndarray, batch: int, weights: list[Any],
                   hyper: np.ndarray) -> None:
        """The rows of ``x`` in one contiguous block per thread (this one and the split
        kernel's pool), each with one-thread oneDNN products: the rows are independent, so
        the threads never wait for each other, and they only read the weights."""
        from . import blas

        lib = blas.onednn()
        rows = x.shape[0]
        if self.model.count_params() <= PREDICT_CHUNK_MAX_WEIGHTS:
            batch = min(batch, PREDICT_CHUNK_ROWS)  # the rows do not change the outputs
        # at least PREDICT_MIN_WORK multiply-adds a thread: below, starting one costs more
        per_row = sum(layer.input_dim * layer.units for layer in self.model.layers)
        parts = max(1, min(_threads_outside_fit(), rows * per_row // PREDICT_MIN_WORK))
        cuts = [rows * t // parts for t in range(parts + 1)]

        def block(t: int) -> None:
            if t:  # this thread's was set before the others started (see below)
                lib.set_threads(1)  # type: ignore[union-attr]  # a setting of each thread
            lo, hi = cuts[t], cuts[t + 1]
            self.function(x[lo:hi], result[lo:hi], batch, *weights, hyper)

        # set here first: with Intel's OpenMP loaded too (by MKL), setting it while another
        # thread is in a oneDNN call was seen to wait for that call to end (B: 1 ms a predict)
        lib.set_threads(1)  # type: ignore[union-attr]
        others = [parts_kernel.helpers(parts - 1).submit(block, t) for t in range(1, parts)]
        try:
            block(0)
        finally:
            for other in others:  # a pool thread's error is raised here
                other.result()
