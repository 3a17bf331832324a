"""layerwise.blas: MKL's kernels against NumPy, the fallbacks, and choosing the library.

The tests that need MKL skip, saying so, where it is not installed (pip install
'layerwise[mkl]'); the ``mkl`` fixture lowers every size threshold so small arrays use it.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

from layerwise import Sequential, blas
from layerwise.layers import Dense

needs_mkl = pytest.mark.skipif(blas._load_mkl() is None,
                               reason="MKL is not installed: pip install 'layerwise[mkl]'")


def _layouts(a):
    """``a`` as C-ordered, Fortran-ordered, a row-sliced view and a transposed copy's view."""
    padded = np.zeros((a.shape[0], a.shape[1] + 3), a.dtype)
    padded[:, : a.shape[1]] = a
    return [a, np.asfortranarray(a), padded[:, : a.shape[1]], a.T.copy().T]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7, 5, 3), (1, 4, 6), (6, 1, 4), (5, 4, 1), (1, 1, 1)])
def test_gemm_matches_numpy_in_every_layout(mkl, dtype, shape, rng):
    m, k, n = shape
    a = rng.normal(size=(m, k)).astype(dtype)
    b = rng.normal(size=(k, n)).astype(dtype)
    expected = a @ b
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for aa in _layouts(a):
        for bb in _layouts(b):
            for out in (np.empty((m, n), dtype), np.empty((m, n + 2), dtype)[:, :n]):
                assert mkl.gemm(aa, bb, out)
                np.testing.assert_allclose(out, expected, rtol=tol, atol=tol)
    row = np.empty(n, dtype)[None, :] if m == 1 else np.empty((m, n), dtype)
    assert mkl.gemm(a, b, row)  # a (1, n) view has stride 0 on its first axis
    np.testing.assert_allclose(row, expected, rtol=tol, atol=tol)


def test_gemm_declines_what_it_cannot_take(mkl, rng):
    a = rng.normal(size=(6, 4)).astype(np.float32)
    b = rng.normal(size=(4, 5)).astype(np.float32)
    out = np.empty((6, 5), np.float32)
    assert not mkl.gemm(a.astype(np.float64), b, out)  # mixed dtypes
    ints = np.ones((6, 4), np.int32), np.ones((4, 5), np.int32), np.empty((6, 5), np.int32)
    assert not mkl.gemm(*ints)  # no integer GEMM
    assert not mkl.gemm(a[:, ::2], b[::2], out)  # neither row- nor column-contiguous
    assert not mkl.gemm(a, b, np.empty((6, 6), np.float32))  # wrong output shape
    assert not mkl.gemm(a, b, np.empty((5, 6), np.float32).T)  # column-major output
    square = rng.normal(size=(5, 5)).astype(np.float32)
    assert not mkl.gemm(square, square, square)  # output overlaps an input
    readonly = np.empty((6, 5), np.float32)
    readonly.flags.writeable = False
    assert not mkl.gemm(a, b, readonly)
    # and matmul then falls back to NumPy, which computes or raises NumPy's own error
    np.testing.assert_allclose(blas.matmul(a[:, ::2], b[::2], out), a[:, ::2] @ b[::2],
                               rtol=1e-5)
    with pytest.raises(ValueError):
        blas.matmul(a, b, np.empty((6, 6), np.float32))


def test_gemm_with_an_empty_inner_dimension_gives_zeros(mkl):
    out = np.full((3, 2), 7.0, np.float32)
    assert mkl.gemm(np.empty((3, 0), np.float32), np.empty((0, 2), np.float32), out)
    assert not out.any()


def test_add_bias(mkl, rng):
    z = rng.normal(size=(9, 4)).astype(np.float32)
    bias = rng.normal(size=4).astype(np.float32)
    expected = z + bias
    assert blas.add_bias(z, bias) is z
    np.testing.assert_allclose(z, expected, rtol=1e-6)
    wide = rng.normal(size=(9, 7)).astype(np.float32)
    view = wide[:, :4]  # rows longer than the view: the leading dimension is 7
    expected = wide.copy()
    expected[:, :4] += bias
    blas.add_bias(view, bias)
    np.testing.assert_allclose(wide, expected, rtol=1e-6)
    strided = wide[:, ::2]  # columns not adjacent: NumPy adds it
    expected = wide.copy()
    expected[:, ::2] += bias
    assert not mkl.add_rows(strided, bias)
    blas.add_bias(strided, bias)
    np.testing.assert_allclose(wide, expected, rtol=1e-6)


@needs_mkl
def test_training_agrees_between_the_two_libraries(monkeypatch, rng):
    for threshold in ("MIN_GEMM_WORK", "MIN_BIAS_SIZE"):
        monkeypatch.setattr(blas, threshold, 0)
    x = rng.normal(size=(256, 20)).astype(np.float32)
    y = rng.integers(0, 4, 256)
    weights = {}
    previous = blas._choice
    try:
        for choice in ("numpy", "mkl"):
            blas.set_blas(choice)
            model = Sequential([Dense(32, activation="relu", input_dim=20),
                                Dense(4, activation="softmax")])
            model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
            model.set_weights([np.full_like(w, 0.01) + 0.05 * np.sin(np.arange(w.size))
                               .reshape(w.shape).astype(w.dtype) for w in model.get_weights()])
            model.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0)
            weights[choice] = model.get_weights()
    finally:
        blas.set_blas(previous)
    for a, b in zip(weights["mkl"], weights["numpy"]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_openblas_keeps_one_thread_only_inside_model_loops(mkl):
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def openblas_threads():
        return [pool["num_threads"] for pool in threadpoolctl.threadpool_info()
                if pool["internal_api"] == "openblas"]

    before = openblas_threads()
    if not before:
        pytest.skip("NumPy does not use OpenBLAS here")
    with blas.one_thread_pool():
        assert openblas_threads() == [1] * len(before)
    assert openblas_threads() == before


def test_set_blas_validates_its_argument():
    with pytest.raises(ValueError, match=r"`name` must be one of \['auto', 'mkl', 'numpy', "
                                         r"'onednn'\]. Received: name='openblas'"):
        blas.set_blas("openblas")


def test_set_blas_mkl_without_mkl_names_the_extra(monkeypatch):
    monkeypatch.setattr(blas, "_mkl_cache", [])
    monkeypatch.setattr(blas, "_load_error", [])
    monkeypatch.setattr(blas, "_find_mkl", lambda: None)
    previous = blas.active, blas._choice
    try:
        with pytest.raises(ImportError, match=r"pip install 'layerwise\[mkl\]'"):
            blas.set_blas("mkl")
        assert blas.set_blas("auto") == "numpy"  # auto quietly uses NumPy
        assert blas.active is None
    finally:
        blas.active, blas._choice = previous


@needs_mkl
def test_auto_wants_threadpoolctl_too(monkeypatch):
    find_spec = blas.importlib.util.find_spec
    monkeypatch.setattr(blas.importlib.util, "find_spec",
                        lambda name, *a: None if name == "threadpoolctl" else find_spec(name, *a))
    previous = blas._choice
    try:
        # without it OpenBLAS's threads would compete with MKL's: auto keeps to NumPy
        assert blas.set_blas("auto") == "numpy"
        assert blas.set_blas("mkl") == "mkl"  # asked for by name, MKL is used all the same
    finally:
        blas.set_blas(previous)


def test_numpy_choice_turns_mkl_off():
    previous = blas._choice
    try:
        assert blas.set_blas("numpy") == "numpy"
        assert blas.active is None and blas.blas_name() == "numpy"
    finally:
        blas.set_blas(previous)


def test_environment_variable_is_read_at_import():
    env = {**os.environ, "LAYERWISE_BLAS": "numpy"}
    code = "import layerwise.blas as b; print(b.blas_name())"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env)
    assert result.stdout.strip() == "numpy"
    env["LAYERWISE_BLAS"] = "fast"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env)
    assert result.returncode != 0
    assert "LAYERWISE_BLAS must be one of ['auto', 'mkl', 'numpy', 'onednn']. Received: " \
           "LAYERWISE_BLAS='fast'" in result.stderr


@needs_mkl
@pytest.mark.parametrize(("mkl_s", "numpy_s", "chosen"), [(1e-4, 2e-4, "mkl"),
                                                          (3e-4, 1e-4, "numpy")])
def test_auto_keeps_the_library_measured_faster(monkeypatch, mkl_s, numpy_s, chosen):
    """Forced timings: whichever library times faster on the model's heaviest product is
    kept for the process; MKL's presence alone decides nothing."""
    timings = {True: mkl_s, False: numpy_s}  # keyed by "is this MKL's run"
    monkeypatch.setattr(blas, "_time_gemm", lambda run, repeats=3: timings[
        "gemm" in run.__code__.co_names and "matmul" not in run.__code__.co_names])
    previous = blas._choice
    try:
        assert blas.set_blas("auto") == "numpy" and blas.pending()
        model = Sequential([Dense(256, activation="relu", input_dim=300), Dense(10)])
        model.compile(optimizer="adam", loss="mse")
        x = np.random.default_rng(0).normal(size=(64, 300)).astype("float32")
        model.fit(x, np.zeros((64, 10), "float32"), batch_size=32, epochs=1, verbose=0)
        assert blas.blas_name() == chosen and not blas.pending()
        measured = blas.decision()
        assert measured["shape"] == (32, 300, 256) and measured["chosen"] == chosen
        assert (measured["mkl_s"], measured["numpy_s"]) == (mkl_s, numpy_s)
        model.fit(x, np.zeros((64, 10), "float32"), epochs=1, verbose=0)  # no new measure
        assert blas.set_blas("mkl") == "mkl" and blas.decision() is None  # forced: as said
        assert blas.set_blas("numpy") == "numpy"
    finally:
        blas.set_blas(previous)


@needs_mkl
def test_auto_measures_at_the_first_large_product_outside_a_model(monkeypatch):
    calls = []  # NumPy timed slower: MKL is kept
    monkeypatch.setattr(blas, "_time_gemm", lambda run, repeats=3: calls.append(run) or (
        2.0 if "matmul" in run.__code__.co_names else 1.0))
    previous = blas._choice
    try:
        blas.set_blas("auto")
        a, b = np.ones((8, 8), "float32"), np.ones((8, 8), "float32")
        blas.matmul(a, b, np.empty((8, 8), "float32"))  # too small to be worth a measure
        assert blas.pending() and not calls
        a, b = np.ones((256, 128), "float32"), np.ones((128, 64), "float32")
        out = blas.matmul(a, b, np.empty((256, 64), "float32"))
        np.testing.assert_array_equal(out, a @ b)
        assert len(calls) == 6 and blas.blas_name() == "mkl"  # 3 rounds of both
    finally:
        blas.set_blas(previous)


# -- oneDNN: the compiled training kernel's products ----------------------------------------

needs_onednn = pytest.mark.skipif(blas.onednn() is None, reason="oneDNN is not installed: "
                                  "pip install 'layerwise[onednn]'")


@needs_onednn
@pytest.mark.parametrize("shape", [(5, 7, 3), (64, 300, 200)])
def test_onednn_gemm_matches_numpy_in_every_layout(shape, rng):
    lib = blas.onednn()
    m, k, n = shape
    a, b = rng.normal(size=(m, k)).astype("float32"), rng.normal(size=(k, n)).astype("float32")
    for left in (a, np.asfortranarray(a)):
        for right in (b, np.asfortranarray(b)):
            out = np.empty((m, n), "float32")
            assert lib.gemm(left, right, out)
            np.testing.assert_allclose(out, a @ b, rtol=1e-4, atol=1e-4)
    assert not lib.gemm(a.astype("float64"), b.astype("float64"), np.empty((m, n)))


class _FakeOneDNN:
    threads = 0

    def set_threads(self, threads):
        self.threads = threads


# the measured choices: the compiled training kernel's library (on the network's own step
# products; for the split kernel, one thread's share of them against OpenBLAS's whole) and
# predict's (one thread's share of the rows against OpenBLAS's whole)
CHOOSERS = {
    "kernel": (lambda sizes, dtype: blas.kernel_library(sizes, 16, dtype, threads=2),
               "kernel_decisions", (16, 1)),
    "kernel-split": (lambda sizes, dtype: blas.kernel_library(sizes, 16, dtype, 2, parts=2),
                     "kernel_decisions", (16, 2)),
    "predict": (lambda sizes, dtype: blas.predict_library(sizes, dtype, 2),
                "predict_decisions", (2,)),
}


@pytest.mark.parametrize("chooser", sorted(CHOOSERS))
@pytest.mark.parametrize(("onednn_s", "openblas_s", "chosen"), [
    (1e-3, 2e-3, "onednn"), (1.05e-3, 1e-3, "onednn"),  # within the margin: oneDNN kept
    (3e-3, 1e-3, "openblas")])
def test_library_choice_keeps_the_measured_faster(monkeypatch, chooser, onednn_s, openblas_s,
                                                  chosen):
    """Forced timings: the library is chosen by measurement on the network's own shapes,
    once per network and process; oneDNN's presence alone decides nothing. OpenBLAS is
    timed first and its threads' spin waited out before oneDNN's (and the kernel's) turn."""
    choose, decisions, last = CHOOSERS[chooser]
    monkeypatch.setattr(blas, "_onednn_cache", [_FakeOneDNN()])
    timed = []
    monkeypatch.setattr(blas.time, "sleep", lambda seconds: timed.append(seconds))
    monkeypatch.setattr(blas, decisions, {})

    def fake_time(run, repeats=3):
        timed.append(run.__name__)
        return onednn_s if run.__name__ == "run_onednn" else openblas_s

    monkeypatch.setattr(blas, "_time_gemm", fake_time)
    previous = blas._choice
    try:
        blas.set_blas("auto")
        sizes = [(30, 20), (20, 4)]
        assert choose(sizes, "float32") == chosen
        # a short wait for any other library's spinning threads, then OpenBLAS, its spin
        # waited out, then oneDNN
        assert timed[1:] == ["run_openblas", blas.OPENBLAS_SPIN_S, "run_onednn"]
        assert getattr(blas, decisions)[(tuple(sizes), *last)] == {
            "onednn_s": onednn_s, "openblas_s": openblas_s, "chosen": chosen}
        assert choose(sizes, "float32") == chosen and len(timed) == 4
        assert choose(sizes, "float64") == "openblas"  # float32 only
        blas.set_blas("numpy")
        assert choose(sizes, "float32") == "openblas"
        blas.set_blas("onednn")
        assert choose(sizes, "float32") == "onednn" and len(timed) == 4
    finally:
        blas.set_blas(previous)


@needs_onednn
def test_predict_library_probe_runs_both_libraries(monkeypatch):
    """The real probe: both forward passes run (a failing library would raise here)."""
    monkeypatch.setattr(blas, "predict_decisions", {})
    previous = blas._choice
    try:
        blas.set_blas("auto")
        chosen = blas.predict_library([(48, 40), (40, 3)], "float32", 2)
        decision = blas.predict_decisions[(((48, 40), (40, 3)), 2)]
        assert chosen == decision["chosen"] in ("onednn", "openblas")
        assert decision["onednn_s"] > 0 and decision["openblas_s"] > 0
    finally:
        blas.set_blas(previous)


def test_split_kernel_probe_times_one_threads_share(monkeypatch):
    """For the split kernel, oneDNN's side of the probe is one thread's part of every
    product (a share of each layer's inputs, on one oneDNN thread), OpenBLAS's the whole."""
    shapes = {"onednn": [], "openblas": []}

    class Recording(_FakeOneDNN):
        def gemm(self, a, b, out):
            assert self.threads == 1  # single-threaded, as each of the kernel's threads
            shapes["onednn"].append((a.shape, b.shape))
            return True

    real_matmul = np.matmul

    def matmul(a, b, out=None):
        shapes["openblas"].append((a.shape, b.shape))
        return real_matmul(a, b, out=out)

    monkeypatch.setattr(blas, "_onednn_cache", [Recording()])
    monkeypatch.setattr(blas, "kernel_decisions", {})
    monkeypatch.setattr(blas.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(blas, "_time_gemm", lambda run, repeats=3: run() or 1e-3)
    monkeypatch.setattr(blas.np, "matmul", matmul)
    previous = blas._choice
    try:
        blas.set_blas("auto")
        blas.kernel_library([(64, 8), (32, 4)], 16, "float32", threads=2, parts=2)
    finally:
        blas.set_blas(previous)
    assert shapes["openblas"] == [((16, 64), (64, 8)), ((64, 16), (16, 8)),
                                  ((16, 32), (32, 4)), ((32, 16), (16, 4)), ((16, 4), (4, 32))]
    assert shapes["onednn"] == [((16, 32), (32, 8)), ((32, 16), (16, 8)),
                                ((16, 16), (16, 4)), ((16, 16), (16, 4)), ((16, 4), (4, 16))]


def test_set_blas_onednn_without_onednn_names_the_extra(monkeypatch):
    monkeypatch.setattr(blas, "_onednn_cache", [None])
    previous = blas._choice
    try:
        with pytest.raises(ImportError, match=r"pip install 'layerwise\[onednn\]'"):
            blas.set_blas("onednn")
        blas.set_blas("auto")
        assert blas.kernel_library([(30, 20)], 16, "float32") == "openblas"
    finally:
        blas.set_blas(previous)


def test_step_products_are_one_training_step():
    products = blas._step_products([(6, 5), (5, 3)], 4)
    shapes = [(a.shape, b.shape, out.shape) for a, b, out in products]
    assert shapes == [((4, 6), (6, 5), (4, 5)), ((6, 4), (4, 5), (6, 5)),
                      ((4, 5), (5, 3), (4, 3)), ((5, 4), (4, 3), (5, 3)),
                      ((4, 3), (3, 5), (4, 5))]
