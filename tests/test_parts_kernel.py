"""The split training kernel (``layerwise.parts_kernel``) against the Python step loop.

Each of ``parts`` threads owns its rows of every weight and meets the others at a spin
barrier; the result must be the Python loop's to float32 rounding (the partial products are
added up in another order), for one, two and three threads, and a failing thread must stop
the others instead of leaving them waiting.
"""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

import layerwise as lw
from _kernel_checks import assert_same_training
from layerwise import compiled, optimizers, parts_kernel
from layerwise.guards import NonFiniteLossError, NonFiniteWeightsError
from layerwise.layers import Dense
from layerwise.optimizers import schedules

pytest.importorskip("numba", reason="the compiled kernel needs numba: "
                    "pip install 'layerwise[fast]'")
pytestmark = pytest.mark.skipif(lw.blas.onednn() is None, reason="the split kernel's "
                                "products are oneDNN's: pip install 'layerwise[onednn]'")


@pytest.fixture
def onednn():
    previous = lw.blas._choice
    lw.blas.set_blas("onednn")
    compiled.available()
    yield
    lw.blas.set_blas(previous)


def _fit_both(build, x, y, threads, epochs=3, batch_size=32, **fit):
    """Train ``build(jit)``'s model with the Python loop and with the kernel on ``threads``
    threads; return both models and histories."""
    out = []
    for jit in (False, True):
        lw.utils.set_random_seed(7)
        model = build(jit)
        with warnings.catch_warnings(), lw.threads.fixed(threads):
            warnings.simplefilter("error")  # jit_compile=True warns when it falls back
            history = model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0,
                                seed=3, **fit)
        assert history.params["jit_compiled"] is jit
        out.append((model, history))
    return out


def _assert_same(out, rtol=2e-5, atol=2e-6):
    (python, hp), (kernel, hk) = out
    assert_same_training(python, kernel, hp, hk, rtol, atol)


def _trained_split(model):
    """Whether the model's last fit ran the split kernel."""
    key = compiled.EpochKernel.key_of(model, "onednn-parts")
    return key in compiled._kernels


def _classifier(jit, optimizer=None, loss="sparse_categorical_crossentropy"):
    model = lw.Sequential([Dense(48, activation="relu", input_dim=40),
                           Dense(36, activation="tanh"), Dense(3, activation="softmax")])
    model.compile(optimizer or optimizers.Adam(0.01), loss, jit_compile=jit)
    return model


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_fused_softmax_adam_with_sample_weights_matches_the_python_loop(onednn, rng, threads):
    x = rng.normal(size=(90, 40)).astype(np.float32)  # 90 = 2 * 32 + 26: a short last batch
    y = rng.integers(0, 3, size=90)
    weights = rng.uniform(0.2, 2.0, size=90)
    out = _fit_both(_classifier, x, y, threads, sample_weight=weights)
    assert _trained_split(out[1][0])
    _assert_same(out)


def test_linear_mse_nesterov_and_a_layer_without_bias(onednn, rng):
    x = rng.normal(size=(70, 36)).astype(np.float32)
    y = rng.normal(size=(70, 2)).astype(np.float32)

    def build(jit):
        model = lw.Sequential([Dense(40, activation="linear", use_bias=False, input_dim=36),
                               Dense(33, activation="sigmoid"), Dense(2)])
        model.compile(optimizers.SGD(0.01, momentum=0.9, nesterov=True), "mse",
                      jit_compile=jit)
        return model

    out = _fit_both(build, x, y, 2, batch_size=16)
    assert _trained_split(out[1][0])
    _assert_same(out)


def test_a_last_activation_on_numbers_with_adamw_and_a_schedule(onednn, rng):
    """The sigmoid is not fused into this loss: its derivative runs in the kernel. Three
    threads over 32 inputs leave one thread no rows (aligned starts: 0, 16, 16, 32)."""
    x = rng.normal(size=(64, 32)).astype(np.float32)
    y = (rng.uniform(size=(64, 4)) > 0.5).astype(np.float32)

    def build(jit):
        model = lw.Sequential([Dense(32, activation="silu", input_dim=32),
                               Dense(4, activation="sigmoid")])
        decay = schedules.ExponentialDecay(0.02, decay_steps=3, decay_rate=0.8)
        model.compile(optimizers.AdamW(decay, weight_decay=0.05), "binary_crossentropy",
                      jit_compile=jit)
        return model

    out = _fit_both(build, x, y, 3, epochs=4, batch_size=20)
    assert _trained_split(out[1][0])
    _assert_same(out)


def test_one_layer_with_centered_rmsprop_and_one_hot_targets(onednn, rng):
    x = rng.normal(size=(50, 48)).astype(np.float32)
    y = np.eye(5, dtype=np.float32)[rng.integers(0, 5, size=50)]

    def build(jit):
        model = lw.Sequential([Dense(5, activation="softmax", input_dim=48)])
        model.compile(optimizers.RMSprop(0.01, centered=True), "categorical_crossentropy",
                      jit_compile=jit)
        return model

    out = _fit_both(build, x, y, 2, batch_size=16)
    assert _trained_split(out[1][0])
    _assert_same(out)


def test_a_non_finite_loss_stops_as_the_python_loop_does(onednn, rng):
    x = rng.normal(size=(64, 40)).astype(np.float32)
    y = rng.normal(size=(64, 3)).astype(np.float32)
    y[40] = 1e30  # its square overflows float32: the loss of the second batch is inf
    seen = []
    for jit in (False, True):
        lw.utils.set_random_seed(7)
        model = lw.Sequential([Dense(32, activation="relu", input_dim=40), Dense(3)])
        model.compile("adam", "mse", jit_compile=jit)
        with lw.threads.fixed(2), pytest.raises(NonFiniteLossError) as error:
            model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False)
        seen.append((str(error.value), model.optimizer.iterations))
        if jit:
            assert _trained_split(model)
    assert seen[0] == seen[1]


def test_non_finite_weights_stop_as_the_python_loop_does(onednn, rng):
    """Adam with epsilon=0 divides 0 by 0 where an input is always 0: NaN weights, which
    each thread finds in its own rows."""
    x = rng.normal(size=(64, 40)).astype(np.float32)
    x[:, 37] = 0.0  # in the second thread's rows
    y = rng.integers(0, 3, size=64)
    seen = []
    for jit in (False, True):
        lw.utils.set_random_seed(7)
        model = _classifier(jit, optimizers.Adam(0.01, epsilon=0.0))
        with lw.threads.fixed(2), pytest.raises(NonFiniteWeightsError) as error:
            model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False)
        seen.append((type(error.value), str(error.value), model.optimizer.iterations))
        if jit:
            assert _trained_split(model)
    assert seen[0] == seen[1]


def test_split_bounds_cover_every_row_at_aligned_starts():
    model = lw.Sequential([Dense(50, input_dim=100), Dense(7)])
    model.build()
    for parts in (1, 2, 3, 4):
        bounds = parts_kernel.split_bounds(model, parts)
        assert bounds.shape == (3, parts + 1)
        for row, size in zip(bounds, (100, 50, 7)):
            assert row[0] == 0 and row[-1] == size and np.all(np.diff(row) >= 0)
        assert np.all(bounds[:2, :-1] % parts_kernel.ALIGN == 0)  # the inputs' rows
    assert parts_kernel.split_bounds(model, 2)[0].tolist() == [0, 48, 100]


def test_reason_not_split_names_what_it_needs():
    compiled.available()
    wide = lw.Sequential([Dense(40, activation="relu", input_dim=40), Dense(3)])
    wide.compile("adam", "mse")
    assert parts_kernel.reason_not_split(wide, "float32") is None
    assert parts_kernel.reason_not_split(wide, "float64") == "not float32"
    narrow = lw.Sequential([Dense(40, activation="relu", input_dim=20), Dense(3)])
    narrow.compile("adam", "mse")
    assert "fewer than 32 inputs" in parts_kernel.reason_not_split(narrow, "float32")
    for name in ("softmax", "elu"):  # a formula on whole rows, or on arrays (np.where)
        rows = lw.Sequential([Dense(40, activation=name, input_dim=40), Dense(3)])
        rows.compile("adam", "mse")
        assert "layer 0's activation" in parts_kernel.reason_not_split(rows, "float32")


def test_the_barrier_lets_all_through_and_aborts_a_waiting_thread():
    compiled.available()
    barrier = parts_kernel._sync_functions()["barrier"]
    sync = np.zeros(2, np.int64)
    got = []
    helper = threading.Thread(target=lambda: got.append(barrier(sync, 0, 2)))
    helper.start()
    assert barrier(sync, 0, 2) == 1  # both arrived: generation 1
    helper.join(10)
    assert got == [1] and sync[0] == 2
    # a thread waiting for a part that failed returns -1 once the abort is set
    helper = threading.Thread(target=lambda: got.append(barrier(sync, 1, 2)))
    helper.start()
    helper.join(0.2)
    assert helper.is_alive()  # waiting for the other part
    sync[1] = 1
    helper.join(10)
    assert not helper.is_alive() and got[-1] == -1


def test_an_error_in_a_helper_thread_is_raised_without_a_hang(onednn, rng, monkeypatch):
    x = rng.normal(size=(64, 40)).astype(np.float32)
    y = rng.integers(0, 3, size=64)
    model = _classifier(True)
    with lw.threads.fixed(2):
        model.fit(x, y, batch_size=16, epochs=1, verbose=0)  # compiled, and its workspace
    assert _trained_split(model)
    lib = lw.blas.onednn()
    real = type(lib).set_threads

    def set_threads(self, count):  # fails in the helper thread only
        if threading.current_thread() is not trainer:
            raise RuntimeError("helper failed")
        real(self, count)

    monkeypatch.setattr(type(lib), "set_threads", set_threads)
    result = []

    def train():
        try:
            with lw.threads.fixed(2):
                model.fit(x, y, batch_size=16, epochs=1, verbose=0)
        except RuntimeError as error:
            result.append(error)

    trainer = threading.Thread(target=train, daemon=True)
    trainer.start()
    trainer.join(60)
    assert not trainer.is_alive(), "the main part kept waiting for a helper that failed"
    assert len(result) == 1 and "helper failed" in str(result[0])


# -- predict: each thread its own rows --------------------------------------------------------

@pytest.mark.parametrize("threads", [1, 2, 3])
def test_predict_on_threads_matches_the_layers(onednn, rng, threads):
    """Above PREDICT_MAX_WEIGHTS too: with oneDNN's products the kernel has no size limit."""
    model = lw.Sequential([Dense(600, activation="relu", input_dim=500),
                           Dense(40, activation="tanh"), Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    assert model.count_params() > compiled.PREDICT_MAX_WEIGHTS
    x = rng.normal(size=(1001, 500)).astype(np.float32)  # rows split unevenly
    model.jit_compile = False
    expected = model.predict(x, batch_size=128)
    model.jit_compile = True
    with lw.threads.fixed(threads):
        assert compiled.reason_not_predicted(model, x) is None
        kernel = model._predict_kernel(x, 128)
        assert kernel.library == "onednn"
        got = model.predict(x, batch_size=128)
        small = model.predict(x[:3], batch_size=128)  # too few rows for more threads
    np.testing.assert_allclose(got, expected, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(small, expected[:3], rtol=2e-5, atol=1e-6)


def test_predict_raises_an_error_of_a_pool_thread(onednn, rng, monkeypatch):
    model = lw.Sequential([Dense(600, activation="relu", input_dim=500), Dense(3)])
    model.compile("adam", "mse")
    model.jit_compile = True
    x = rng.normal(size=(512, 500)).astype(np.float32)
    with lw.threads.fixed(2):
        model.predict(x)  # compiled
        lib, caller = lw.blas.onednn(), threading.current_thread()
        real = type(lib).set_threads

        def set_threads(self, count):  # fails in the pool's thread only
            if threading.current_thread() is not caller:
                raise RuntimeError("pool thread failed")
            real(self, count)

        monkeypatch.setattr(type(lib), "set_threads", set_threads)
        with pytest.raises(RuntimeError, match="pool thread failed"):
            model.predict(x)


def test_two_fits_at_once_on_three_threads_both_finish(onednn, rng, monkeypatch):
    """Two split kernels at once: the pool's two threads could each hold one kernel's part,
    waiting at its barrier for a part queued behind the other's (``parts_kernel.run_lock``).
    Here each fit, after submitting its first part, waits (up to 2 s) for the other to
    submit its first too: without the lock, the pool's threads then hold one part of each."""
    x = rng.normal(size=(256, 40)).astype(np.float32)
    y = rng.integers(0, 3, size=256)
    done = []
    real, meet = parts_kernel.helpers, threading.Barrier(2)

    class Interleaving:
        def __init__(self, pool):
            self.pool = pool

        def submit(self, fn, index, *args):
            future = self.pool.submit(fn, index, *args)
            if index == 1 and not meet.broken:
                try:
                    meet.wait(timeout=2.0)  # with the lock the other fit cannot come
                except threading.BrokenBarrierError:
                    pass
            return future

    with lw.threads.fixed(3):  # compiled first: both fits then reach their parts at once
        _classifier(True).fit(x, y, batch_size=16, epochs=1, verbose=0)
    monkeypatch.setattr(parts_kernel, "helpers", lambda count: Interleaving(real(count)))

    def train():
        model = _classifier(True)
        model.fit(x, y, batch_size=16, epochs=3, verbose=0)
        done.append(_trained_split(model))

    with lw.threads.fixed(3):
        runners = [threading.Thread(target=train, daemon=True) for _ in range(2)]
        for runner in runners:
            runner.start()
        for runner in runners:
            runner.join(60)
    assert done == [True, True], "a fit kept waiting for a part that never ran"
