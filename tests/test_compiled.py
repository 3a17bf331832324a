"""The compiled training kernel (``layerwise.compiled``) against the Python step loop.

Every activation, loss (each of its forms) and optimizer (each option that changes its
formula) trains a small float64 network for several epochs both ways; the weights, the
optimizer state and the epoch losses must agree to float64 rounding. Compiling is slow
(seconds per kernel), so each loss case shares its kernel with one optimizer case and the
activations share three networks.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import layerwise as lw
from _kernel_checks import assert_same_training
from layerwise import activations, compiled, losses, optimizers
from layerwise.guards import NonFiniteLossError
from layerwise.layers import Dense, Dropout

numba = pytest.importorskip("numba", reason="the compiled kernel needs numba: "
                            "pip install 'layerwise[fast]'")


def _fit_both(build, x, y, epochs=3, batch_size=16, **fit):
    """Train two copies of ``build()``'s model, Python loop and compiled kernel; return
    (python model, compiled model, python history, compiled history)."""
    out = []
    for jit in (False, True):
        lw.utils.set_random_seed(7)
        model = build(jit)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # jit_compile=True warns when it falls back
            history = model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0,
                                seed=3, **fit)
        assert history.params["jit_compiled"] is jit
        out.append((model, history))
    (python, hp), (kernel, hk) = out
    return python, kernel, hp, hk


def _assert_same(python, kernel, hp, hk, rtol=1e-9, atol=1e-12):
    assert_same_training(python, kernel, hp, hk, rtol, atol)


def _formula_activations():
    seen, found = set(), []
    for name in activations.names():
        act = activations.get(name)
        if type(act).formula is not None and type(act) not in seen:
            seen.add(type(act))
            found.append(name)
    return found


def test_every_activation_with_a_formula_is_covered():
    types = {type(activations.get(n)) for n in _formula_activations()}
    assert {activations.ReLU, activations.Tanh, activations.Softmax, activations.GELU,
            activations.Exponential} <= types
    assert activations.Hardmax not in types  # prediction only: no gradient, so no kernel


ACTIVATION_GROUPS = [
    ["linear", "sigmoid", "tanh", "relu", {"class_name": "leaky_relu",
                                            "config": {"negative_slope": 0.2}}],
    [{"class_name": "elu", "config": {"alpha": 0.7}}, "softmax", "exponential", "softplus",
     "selu"],
    ["gelu", {"class_name": "gelu", "config": {"approximate": True}}, "silu",
     "hard_sigmoid", "mish"],
]


def test_groups_cover_every_activation():
    named = {a if isinstance(a, str) else a["class_name"] for g in ACTIVATION_GROUPS for a in g}
    assert {type(activations.get(n)) for n in named} == \
        {type(activations.get(n)) for n in _formula_activations()}


@pytest.mark.parametrize("group", ACTIVATION_GROUPS, ids=lambda g: "-".join(
    a if isinstance(a, str) else a["class_name"] for a in g))
def test_activations_match_the_python_loop(group, rng):
    x = rng.normal(size=(100, 4)) * 0.5
    y = rng.normal(size=(100, 2))

    def build(jit):
        layers = [Dense(5, activation=group[0], input_dim=4, dtype="float64")]
        layers += [Dense(5, activation=a, dtype="float64") for a in group[1:]]
        model = lw.Sequential([*layers, Dense(2, dtype="float64")])
        model.compile(optimizers.Adam(0.01), "mse", jit_compile=jit)
        return model

    _assert_same(*_fit_both(build, x, y))


def _targets(case, rng, n):
    kind = case["targets"]
    units = case["units"]
    if kind == "binary":
        return rng.integers(0, 2, size=(n, units)).astype(float)
    if kind == "one_hot":
        return np.eye(units)[rng.integers(0, units, n)]
    if kind == "index":
        return rng.integers(0, units, n)
    if kind == "probabilities":
        p = rng.random((n, units)) + 0.1
        return p / p.sum(axis=1, keepdims=True)
    if kind == "counts":
        return rng.poisson(2.0, size=(n, units)).astype(float)
    return rng.normal(size=(n, units))


# (loss, output activation, targets); the fused cases are the last layer's logits form
LOSS_CASES = [
    ("mse", "linear", "real"),
    ("mae", "linear", "real"),
    ({"class_name": "huber", "config": {"delta": 0.5}}, "linear", "real"),
    ("log_cosh", "tanh", "real"),
    ("binary_crossentropy", "sigmoid", "binary"),  # fused with the sigmoid
    ("binary_crossentropy", "hard_sigmoid", "binary"),  # from probabilities
    ({"class_name": "binary_crossentropy", "config": {"from_logits": True}}, "linear",
     "binary"),
    ("categorical_crossentropy", "softmax", "one_hot"),  # fused
    ("categorical_crossentropy", "sigmoid", "probabilities"),  # from probabilities
    ({"class_name": "categorical_crossentropy", "config": {"from_logits": True}}, "linear",
     "one_hot"),
    ("sparse_categorical_crossentropy", "softmax", "index"),  # fused
    ("poisson", "exponential", "counts"),  # fused: from the log-rate
    ("poisson", "softplus", "counts"),
    ("kl_divergence", "softmax", "probabilities"),
    ("hinge", "tanh", "binary"),
    ({"class_name": "binary_focal_crossentropy",
      "config": {"gamma": 2.0, "alpha": 0.3, "apply_class_balancing": True}}, "sigmoid",
     "binary"),
]

OPTIMIZER_CASES = [
    optimizers.SGD(0.05),
    optimizers.get({"class_name": "momentum", "config": {"learning_rate": 0.05}}),
    optimizers.SGD(0.05, momentum=0.9, nesterov=True),
    optimizers.SGD(0.05, momentum=0.5, weight_decay=0.1),  # decoupled decay beside it
    optimizers.Adagrad(0.1, initial_accumulator_value=0.1),
    optimizers.RMSprop(0.01),
    optimizers.RMSprop(0.01, centered=True, momentum=0.5),
    optimizers.RMSprop(0.01, initial_accumulator="first_gradient"),
    optimizers.Adam(0.01),
    optimizers.Adam(0.01, amsgrad=True, epsilon_style="keras"),
    optimizers.AdamW(0.01, weight_decay=0.05),
    optimizers.Adamax(0.01),
    optimizers.Nadam(0.01),
    optimizers.Adadelta(1.0),
    optimizers.Lion(0.003),
    optimizers.Adam(optimizers.schedules.ExponentialDecay(0.02, decay_steps=5,
                                                          decay_rate=0.5)),
]


def test_cases_cover_every_loss_and_optimizer():
    named = {losses.get(case[0]).name for case in LOSS_CASES}
    with_formulas = {losses.get(n).name for n in losses.names()
                     if losses.get(n).formulas() is not None}
    assert named == with_formulas
    assert {type(o) for o in OPTIMIZER_CASES} == {
        type(optimizers.get(n)) for n in optimizers.OPTIMIZERS.names()}


@pytest.mark.parametrize("index", range(len(LOSS_CASES)),
                         ids=lambda i: f"{LOSS_CASES[i][1]}-{type(OPTIMIZER_CASES[i]).__name__}")
def test_losses_and_optimizers_match_the_python_loop(index, rng):
    loss, output, targets = LOSS_CASES[index]
    units = 1 if targets == "binary" else 3
    x = rng.normal(size=(90, 4))
    y = _targets({"targets": targets, "units": units}, rng, 90)
    config = optimizers.serialize(OPTIMIZER_CASES[index])

    def build(jit):
        model = lw.Sequential([Dense(6, activation="tanh", input_dim=4, dtype="float64"),
                               Dense(units, activation=output, dtype="float64")])
        model.compile(optimizers.get(config), loss, jit_compile=jit)
        return model

    weights = rng.random(90) + 0.5 if index % 3 == 0 else None  # sample weights too
    _assert_same(*_fit_both(build, x, y, sample_weight=weights))


def test_float32_matches_to_float32_rounding(rng):
    x = rng.normal(size=(256, 2)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] > 0).astype(np.float32)

    def build(jit):
        model = lw.Sequential([Dense(16, activation="tanh", input_dim=2),
                               Dense(16, activation="tanh"), Dense(1, activation="sigmoid")])
        model.compile(optimizers.SGD(0.05, momentum=0.9), "binary_crossentropy",
                      jit_compile=jit)
        return model

    python, kernel, hp, hk = _fit_both(build, x, y, epochs=4, batch_size=32)
    assert kernel.get_weights()[0].dtype == np.float32
    _assert_same(python, kernel, hp, hk, rtol=2e-4, atol=2e-6)


def test_loss_weights_steps_per_epoch_and_no_shuffle(rng):
    x, y = rng.normal(size=(70, 3)), rng.normal(size=(70, 2))

    def build(jit):
        model = lw.Sequential([Dense(4, activation="relu", input_dim=3, dtype="float64"),
                               Dense(2, dtype="float64", use_bias=False)])
        model.compile(optimizers.Adam(0.01), "mse", loss_weights=2.5, jit_compile=jit)
        return model

    _assert_same(*_fit_both(build, x, y, steps_per_epoch=3, shuffle=False))


def test_float32_exp_and_tanh_are_within_two_units_in_the_last_place():
    compiled.available()
    xp = compiled._compiled_xp()

    @numba.njit
    def both(v):
        return xp.exp(v), xp.tanh(v)

    v = np.concatenate([np.linspace(-110, 95, 400001), np.linspace(-1, 1, 200001),
                        [0.0, -0.0, 1e-30, -1e-30]]).astype(np.float32)
    e, t = both(v)
    assert e.dtype == t.dtype == np.float32
    wide = v.astype(np.float64)
    for got, want in ((e, np.exp(wide)), (t, np.tanh(wide))):
        finite = np.isfinite(want) & (np.abs(want) > np.finfo(np.float32).tiny) & \
            (np.abs(want) < np.finfo(np.float32).max)
        ulp = np.spacing(np.abs(want[finite]).astype(np.float32)).astype(np.float64)
        assert (np.abs(got[finite] - want[finite]) / ulp).max() <= 2.0
    special = np.array([np.nan, np.inf, -np.inf, 89.0, -200.0], dtype=np.float32)
    e, t = both(special)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(e, np.exp(special))
    np.testing.assert_array_equal(t, np.tanh(special))


@pytest.mark.parametrize("optimizer", OPTIMIZER_CASES, ids=lambda o: type(o).__name__)
def test_the_optimizer_pass_equals_the_numpy_chunks_for(optimizer, monkeypatch):
    rng = np.random.default_rng(0)
    n = compiled.ONE_PASS_MIN + 123
    grads = [rng.normal(size=n) for _ in range(4)]
    finals = []
    for jit in ("1", "0"):
        monkeypatch.setenv("LAYERWISE_JIT", jit)
        opt = optimizers.get(optimizers.serialize(optimizer))
        params = [np.linspace(-1.0, 1.0, n)]
        for g in grads:
            opt.apply(params, [g.copy()])
        finals.append((params[0], opt.get_state()))
    (p1, s1), (p0, s0) = finals
    np.testing.assert_allclose(p1, p0, rtol=1e-12, atol=1e-14)
    for name in s0["slots"]:
        np.testing.assert_allclose(s1["slots"][name][0], s0["slots"][name][0], rtol=1e-12,
                                   atol=1e-14)


def _float32_only(dispatcher, names=("r",)):
    """The numba types of the variables ``names`` (and their SSA versions ``r.1``, ...) of
    ``dispatcher``'s one compiled signature: each a number or tuple of float32."""
    typemap = dispatcher.overloads[dispatcher.signatures[0]].type_annotation.typemap
    found = {k: str(v) for k, v in typemap.items() if k.split(".")[0] in names}
    assert found
    for name, kind in found.items():
        assert "float64" not in kind, f"{name} is {kind}"
        assert "float32" in kind, f"{name} is {kind}"


@pytest.mark.parametrize("optimizer", OPTIMIZER_CASES, ids=lambda o: type(o).__name__)
def test_a_float32_optimizer_pass_computes_in_float32(optimizer, monkeypatch, tmp_path):
    """A slot that is off (AMSGrad's v_max, a velocity without momentum) must not bring a
    float64 into the formula: Adam computed in float64 (its division and square root at
    half the vector width) took three times as long on C's parameters."""
    monkeypatch.setenv("LAYERWISE_JIT", "1")
    monkeypatch.setenv("LAYERWISE_CACHE_DIR", str(tmp_path))  # compiled here: typed anew
    monkeypatch.setattr(compiled, "_loops", {})
    opt = optimizers.get(optimizers.serialize(optimizer))
    params = [np.linspace(-1.0, 1.0, compiled.ONE_PASS_MIN + 5, dtype=np.float32)]
    opt.apply(params, [np.full_like(params[0], 0.1)])
    (loop,) = compiled._loops.values()
    _float32_only(loop)


def test_a_float32_kernel_computes_in_float32(rng, monkeypatch, tmp_path):
    monkeypatch.setenv("LAYERWISE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(compiled, "_kernels", {})
    model = lw.Sequential([Dense(8, activation="elu", input_dim=3),
                           Dense(3, activation="softmax")])
    model.compile(optimizers.Adam(0.01), "categorical_crossentropy", jit_compile=True)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, size=32)]
    model.fit(rng.normal(size=(32, 3)).astype(np.float32), y, epochs=1, verbose=0)
    (kernel,) = compiled._kernels.values()
    _float32_only(kernel, ("u", "v", "dz", "zero", "h0", "ah0_0"))


def test_a_nonfinite_loss_stops_before_its_update_as_the_python_loop(rng):
    x = rng.normal(size=(64, 3))
    y = rng.normal(size=(64, 1))
    y[40] = 1e200  # its square overflows the loss of batch 3 of 4 (no shuffling)
    errors, weights = [], []
    for jit in (False, True):
        lw.utils.set_random_seed(2)
        model = lw.Sequential([Dense(4, activation="tanh", input_dim=3, dtype="float64"),
                               Dense(1, dtype="float64")])
        model.compile("sgd", "mse", jit_compile=jit)
        with pytest.raises(NonFiniteLossError) as info:
            model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
        errors.append((info.value.epoch, info.value.batch, str(info.value)))
        weights.append(model.get_weights())
    assert errors[0] == errors[1]
    assert errors[0][:2] == (0, 2)
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.parametrize("check_elements", [100_000, 10])  # a check every step; every 6th
def test_nonfinite_weights_are_found_at_the_same_check_as_the_python_loop(check_elements,
                                                                          monkeypatch):
    """Adam with epsilon=0: a unit that never gets a gradient computes 0/0 = NaN in its first
    update although the loss is finite. Both paths check the weights on the same steps (the
    kernel in its own pass after the update), roll back, and say the same."""
    from layerwise import guards

    monkeypatch.setattr(guards, "CHECK_ELEMENTS", check_elements)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    x[:, 3] = 0.0  # the kernel row of feature 3 never gets a gradient
    y = rng.integers(0, 3, size=64)
    results = []
    for jit in (False, True):
        lw.utils.set_random_seed(2)
        model = lw.Sequential([Dense(8, activation="relu", input_dim=4),
                               Dense(3, activation="softmax")])
        model.compile(lw.optimizers.Adam(0.01, epsilon=0.0),
                      "sparse_categorical_crossentropy", jit_compile=jit)
        start = [w.copy() for w in model.get_weights()]
        with pytest.raises(lw.models.NonFiniteWeightsError) as info, \
                warnings.catch_warnings():
            warnings.simplefilter("error")  # jit_compile=True warns when it falls back
            model.fit(x, y, batch_size=16, epochs=3, verbose=0)
        assert model.weights_finite() and model.optimizer.iterations == 0
        for before, after in zip(start, model.get_weights()):
            np.testing.assert_array_equal(before, after)
        results.append(str(info.value))
    assert results[0] == results[1]
    assert "rolled back to the start of epoch 1" in results[0]


def test_fallback_is_explained_in_verbose_2(rng, capsys):
    x, y = rng.normal(size=(40, 3)), rng.normal(size=(40, 1))
    model = lw.Sequential([Dense(4, activation="relu", input_dim=3), Dropout(0.2), Dense(1)])
    model.compile("adam", "mse")
    history = model.fit(x, y, batch_size=4, epochs=compiled.AUTO_MIN_STEPS // 10, verbose=2)
    assert history.params["jit_compiled"] is False
    assert "Training step by step in Python: layer 'dropout" in capsys.readouterr().out
    model.compile("adam", "mse", jit_compile=True)
    with pytest.warns(UserWarning, match="jit_compile=True, but fit trains step by step in "
                                         "Python: layer 'dropout.* is a Dropout"):
        model.fit(x, y, epochs=1, verbose=0)


def test_auto_compiles_long_runs_only(rng, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERWISE_CACHE_DIR", str(tmp_path))  # nothing compiled before
    x, y = rng.normal(size=(64, 3)), rng.normal(size=(64, 1))
    model = lw.Sequential([Dense(3, activation="elu", input_dim=3), Dense(1)])
    model.compile(optimizers.Adagrad(0.01), "mae")  # a kernel no other test compiles
    assert not compiled.EpochKernel.is_compiled(model)
    short = model.fit(x, y, batch_size=16, epochs=2, verbose=2)
    assert short.params["jit_compiled"] is False
    assert "step by step" not in capsys.readouterr().out  # too short to compile: quietly
    long = model.fit(x, y, batch_size=16, epochs=compiled.AUTO_MIN_STEPS // 4, verbose=2)
    assert long.params["jit_compiled"] is True
    assert capsys.readouterr().out.startswith("Compiling the training kernel")
    assert model.fit(x, y, batch_size=16, epochs=1, verbose=0).params["jit_compiled"] is True
    model.compile(optimizers.Adagrad(0.01), "mae", jit_compile=False)
    assert model.fit(x, y, epochs=1, verbose=0).params["jit_compiled"] is False



def test_jit_compile_is_checked_and_saved(tmp_path):
    model = lw.Sequential([Dense(2, input_dim=2)])
    with pytest.raises(ValueError, match=r"`jit_compile` must be True, False or 'auto'\. "
                                         r"Received: jit_compile='yes'"):
        model.compile("sgd", "mse", jit_compile="yes")
    model.compile("sgd", "mse", jit_compile=False)
    path = tmp_path / "m.safetensors"
    model.save(path)
    assert lw.models.load_model(path).jit_compile is False


def test_reasons_name_what_needs_python(rng):
    x, y = rng.normal(size=(20, 2)), rng.normal(size=(20, 1))
    model = lw.Sequential([Dense(2, input_dim=2, kernel_regularizer="l2"), Dense(1)])
    model.compile("sgd", "mse", metrics=["mae"])
    model.fit(x, y, epochs=1, verbose=0)
    source = lw.data.ArraySource(x, y, None, 32)
    assert compiled.reason_not_compiled(model, source, False) == \
        "metrics are computed in Python"
    model.compile("sgd", "mse")
    model._begin("fit")
    assert compiled.reason_not_compiled(model, source, True) == "a callback wants every batch"
    assert compiled.reason_not_compiled(model, source, False) == \
        "weight penalties are computed in Python"
    model.compile(optimizers.SGD(0.1, clipnorm=1.0), "mse")
    model.layers[0].kernel_regularizer = None
    model.layers[0].regularizers.clear()
    model._begin("fit")
    assert compiled.reason_not_compiled(model, source, False) == \
        "gradients are clipped in Python"


def test_tiny_optimizer_state_is_flushed_at_the_same_step(rng):
    """Optimizer.apply zeroes state below 1e-30 every FLUSH_EVERY steps; the kernel too."""
    from layerwise.optimizers.base import FLUSH_EVERY

    x, y = rng.normal(size=(64, 3)), rng.normal(size=(64, 1))
    states = []
    for jit in (False, True):
        lw.utils.set_random_seed(4)
        model = lw.Sequential([Dense(4, activation="relu", input_dim=3, dtype="float64"),
                               Dense(1, dtype="float64")])
        model.compile(optimizers.Adam(0.001), "mse", jit_compile=jit)
        model.fit(x, y, batch_size=64, epochs=1, verbose=0)
        bias = model.layers[0].params["bias"]
        bias[0] = -1e6  # unit 0 is dead from now on: its kernel column gets no gradient
        opt = model.optimizer
        opt.iterations = FLUSH_EVERY - 2
        for slot in opt._flat[2].values():
            slot[...] = 1e-31
        model.fit(x, y, batch_size=64, epochs=3, verbose=0)  # steps 99, 100 and 101
        states.append(opt.get_state())
    for name in ("m", "v"):
        python, kernel = states[0]["slots"][name][0], states[1]["slots"][name][0]
        np.testing.assert_array_equal(python[:, 0], 0.0)  # flushed at step 100
        np.testing.assert_allclose(kernel, python, rtol=1e-9, atol=0)


_CACHED_RUN = """
import sys, numpy as np, layerwise as lw
from layerwise.layers import Dense
rng = np.random.default_rng(0)
x, y = rng.normal(size=(64, 3)), rng.normal(size=(64, 1))
model = lw.Sequential([Dense(3, activation="relu", input_dim=3), Dense(1)])
model.compile("rmsprop", "mse")
print(model.fit(x, y, batch_size=16, epochs=int(sys.argv[1]), verbose=0).params["jit_compiled"])
"""


def test_a_kernel_compiled_by_one_process_serves_the_next(tmp_path):
    """numba keeps the machine code in the cache directory (with LLVM's optimizations on, as
    users run it; the tests' own kernels are built without them and are not kept)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "NUMBA_OPT"}
    env["LAYERWISE_CACHE_DIR"] = str(tmp_path)
    script = tmp_path / "run.py"
    script.write_text(_CACHED_RUN)

    def run(epochs: int) -> str:
        done = subprocess.run([sys.executable, str(script), str(epochs)], env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert run(2) == "False"  # 8 steps, nothing compiled yet: Python
    assert run(compiled.AUTO_MIN_STEPS // 4) == "True"  # long: compiled, and kept
    assert list(tmp_path.glob("kernels/__pycache__/epoch_*.nbi"))
    assert run(2) == "True"  # a short run now loads the kept kernel


class _Cube(activations.Activation):
    """A user's activation whose formula numba cannot compile (a Python list comprehension
    over a dict)."""

    @staticmethod
    def formula(z):
        return z * sum(v for v in {"a": 1.0}.values())

    @staticmethod
    def gradient_formula(z, y):
        return z * 0.0 + 1.0


def test_a_formula_numba_cannot_compile_falls_back_with_a_warning(rng):
    x, y = rng.normal(size=(32, 2)), rng.normal(size=(32, 1))
    model = lw.Sequential([Dense(3, activation=_Cube(), input_dim=2), Dense(1)])
    model.compile("sgd", "mse", jit_compile=True)
    with pytest.warns(UserWarning, match="the compiled kernel failed to build"):
        history = model.fit(x, y, epochs=2, verbose=0)
    assert history.params["jit_compiled"] is False
    assert np.isfinite(history.history["loss"]).all()
    # predict likewise: warned once, then layer by layer, with the same outputs
    x32 = x.astype(np.float32)  # the model's dtype: what the inference kernel takes
    assert compiled.reason_not_predicted(model, x32) is None
    model.jit_compile = False
    expected = model.predict(x32)
    model.jit_compile = True
    with pytest.warns(UserWarning, match="predict runs layer by layer in Python"):
        np.testing.assert_allclose(model.predict(x32), expected)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(model.predict(x32), expected)


class _ReLUWithOwnBackward(activations.ReLU):
    """A user's ReLU whose backward is not its formula's: the kernel must not replace it."""

    def backward(self, z, y, dy, out=None):
        return dy * 0.5


def test_a_subclass_that_overrides_the_math_keeps_the_python_path(rng):
    x, y = rng.normal(size=(20, 2)), rng.normal(size=(20, 1))
    model = lw.Sequential([Dense(3, activation=_ReLUWithOwnBackward(), input_dim=2),
                           Dense(1)])
    model.compile("sgd", "mse")
    model.fit(x, y, epochs=1, verbose=0)
    source = lw.data.ArraySource(x, y, None, 32)
    reason = compiled.reason_not_compiled(model, source, False)
    assert reason == f"the activation of layer {model.layers[0].name!r} is Python code"

    class HalfMSE(losses.MeanSquaredError):
        def gradient(self, y_true, y_pred, sample_weight=None):
            return super().gradient(y_true, y_pred, sample_weight) * 0.5

    model = lw.Sequential([Dense(3, activation="relu", input_dim=2), Dense(1)])
    model.compile("sgd", HalfMSE())
    model.fit(x, y, epochs=1, verbose=0)
    assert "is Python code" in compiled.reason_not_compiled(model, source, False)
    model.compile("sgd", "mse")  # the library's own classes compile
    model._begin("fit")
    assert compiled.reason_not_compiled(model, source, False) is None


def test_element_wise_formulas_run_in_the_kernels_own_loops(rng):
    """Formulas that compile for single numbers run element by element in the kernel (no
    temporary arrays); the others on whole arrays. Both forms are checked against the
    Python loop by the activation tests above."""
    assert compiled.available()
    for dtype in ("float32", "float64"):
        for name in ("relu", "tanh", "sigmoid", "linear", "silu"):
            assert compiled._takes_numbers(activations.get(name), dtype), (name, dtype)
        for name in ("softmax", "hard_sigmoid", "gelu"):
            assert not compiled._takes_numbers(activations.get(name), dtype), (name, dtype)
    model = lw.Sequential([Dense(8, activation="relu", input_dim=3),
                           Dense(8, activation="gelu"), Dense(2, activation="softmax")])
    model.compile("adam", "categorical_crossentropy")
    model._fused = model._fused_loss()  # as fit does: the loss from the softmax's logits
    source, _ = compiled.EpochKernel.plan(model)
    assert "v = z0[r, c] + B0[c]" in source and "a0[r, c] = f0(v)" in source
    assert "df0(z0[r, c], a0[r, c])" in source
    assert "a1 = cast(f1(z1, ah1_0), z1)" in source  # GELU: on the whole array
    assert "each = loss_value(tb, out)" in source  # cross-entropy from logits: by rows
    for dtype in ("float32", "float64"):
        for name in ("mse", "mae", "huber", "binary_crossentropy", "poisson", "hinge"):
            assert compiled._loss_takes_numbers(losses.get(name), dtype), (name, dtype)
        fused = losses.get("categorical_crossentropy").with_logits()
        assert not compiled._loss_takes_numbers(fused, dtype)
    model = lw.Sequential([Dense(4, activation="tanh", input_dim=3), Dense(2)])
    model.compile("sgd", "huber")
    source, _ = compiled.EpochKernel.plan(model)
    assert "loss += loss_value(tb[r, c], out[r, c], lh0) * weight" in source
    xp = compiled._compiled_xp()

    @numba.njit
    def where_and_ones(c, a, b):
        return xp.where(c, a, b), xp.ones_like(a)

    assert where_and_ones(True, 2.0, 3.0) == (2.0, 1.0)  # numbers, not 0-d arrays
    assert np.isnan(where_and_ones(False, np.nan, 1.0)[1])
    c, a, b = rng.random(7) > 0.5, rng.normal(size=7), rng.normal(size=7)
    got = where_and_ones(c, a, b)
    np.testing.assert_array_equal(got[0], np.where(c, a, b))
    np.testing.assert_array_equal(got[1], np.ones(7))


@pytest.mark.parametrize("cols", [1, 10, 33, 300])
def test_row_max_and_sums_as_numpy(cols, rng):
    z = rng.normal(size=(6, cols)).astype(np.float32)
    z[2, -1] = np.nan
    z[4, 0] = np.inf
    row_max, row_sums = numba.njit(compiled._row_max), numba.njit(compiled._row_sums)
    np.testing.assert_array_equal(row_max(z), z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(row_sums(z), z.sum(axis=1, keepdims=True), rtol=1e-5)


# -- the inference kernel ------------------------------------------------------------------


def _predict_both(model, x, batch_size):
    """predict through the compiled inference kernel, then layer by layer in Python."""
    model.jit_compile = True
    assert model._predict_kernel(x, batch_size) is not None
    kernel = model.predict(x, batch_size=batch_size)
    model.jit_compile = False
    assert model._predict_kernel(x, batch_size) is None
    return kernel, model.predict(x, batch_size=batch_size)


@pytest.mark.parametrize("group", ACTIVATION_GROUPS, ids=lambda g: "-".join(
    a if isinstance(a, str) else a["class_name"] for a in g))
def test_predict_kernel_matches_the_layers_for_every_activation(group, rng):
    layers = [Dense(6, activation=group[0], input_dim=4, dtype="float64")]
    layers += [Dense(6, activation=a, dtype="float64", use_bias=i % 2 == 0)
               for i, a in enumerate(group[1:])]
    model = lw.Sequential([*layers, Dense(3, activation="softmax", dtype="float64")])
    x = rng.normal(size=(70, 4))
    kernel, python = _predict_both(model, x, batch_size=32)  # a partial last batch
    np.testing.assert_allclose(kernel, python, rtol=1e-9, atol=1e-12)


def test_predict_kernel_float32_matches_to_float32_rounding(rng):
    model = lw.Sequential([Dense(32, activation="relu", input_dim=8),
                           Dense(16, activation="tanh"), Dense(4, activation="softmax")])
    x = rng.normal(size=(300, 8)).astype(np.float32)
    kernel, python = _predict_both(model, x, batch_size=128)
    assert kernel.dtype == python.dtype == np.float32
    np.testing.assert_allclose(kernel, python, rtol=2e-6, atol=1e-6)


def test_predict_kernel_only_where_it_applies(rng, tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERWISE_CACHE_DIR", str(tmp_path))  # nothing compiled before
    model = lw.Sequential([Dense(7, activation="mish", input_dim=3), Dense(2)])
    x = rng.normal(size=(40, 3)).astype(np.float32)
    # "auto": a short predict does not compile (seconds) ...
    assert not compiled.PredictKernel.is_compiled(model)
    assert model._predict_kernel(x, 32) is None
    many = compiled.AUTO_MIN_STEPS * 4
    assert model._predict_kernel(np.zeros((many, 3), np.float32), 4) is not None
    # ... and once compiled, every predict uses it
    model.jit_compile = True
    model.predict(x)
    model.jit_compile = "auto"
    assert compiled.PredictKernel.is_compiled(model)
    assert model._predict_kernel(x, 32) is not None
    # the data is never copied whole for it: other dtypes and strided rows take the layers
    for data in (x.astype(np.float64), np.asfortranarray(x), x[::2]):
        assert compiled.reason_not_predicted(model, data) is not None
        assert model._predict_kernel(data, 32) is None
    np.testing.assert_allclose(model.predict(x[::2]),  # layers vs kernel: float32 rounding
                               model.predict(np.ascontiguousarray(x[::2])), rtol=2e-6, atol=1e-6)
    # layers without a formula, and large networks without oneDNN's products, keep NumPy's
    assert "Dropout" in compiled.reason_not_predicted(
        lw.Sequential([Dense(4, input_dim=3), Dropout(0.5), Dense(1)]), x)
    wide = lw.Sequential([Dense(1024, input_dim=512), Dense(2)])
    previous = lw.blas._choice
    try:
        lw.blas.set_blas("numpy")
        assert "weights" in compiled.reason_not_predicted(wide, np.zeros((2, 512), np.float32))
    finally:
        lw.blas.set_blas(previous)


def test_predict_kernel_refuses_nonfinite_data_before_computing(rng):
    model = lw.Sequential([Dense(4, activation="relu", input_dim=3), Dense(2)])
    model.jit_compile = True
    x = rng.normal(size=(50, 3)).astype(np.float32)
    x[37, 1] = np.nan
    with pytest.raises(ValueError, match=r"x\[37, 1\] is nan"):
        model.predict(x)


def test_predict_kernel_with_callbacks_runs_the_layers(rng):
    model = lw.Sequential([Dense(4, activation="relu", input_dim=3), Dense(2)])
    model.jit_compile = True
    seen = []

    class Batches(lw.callbacks.Callback):
        def on_predict_batch_end(self, batch, logs=None):
            seen.append(batch)

    out = model.predict(rng.normal(size=(50, 3)).astype(np.float32), batch_size=16,
                        callbacks=[Batches()])
    assert out.shape == (50, 2) and seen == [0, 1, 2, 3]


@pytest.mark.skipif(lw.blas.onednn() is None, reason="oneDNN is not installed: "
                    "pip install 'layerwise[onednn]'")
def test_a_kernel_on_onednn_matches_the_python_loop(rng):
    """set_blas("onednn"): the kernel's products by oneDNN's sgemm, the rest unchanged."""
    previous = lw.blas._choice
    x = rng.normal(size=(90, 12)).astype(np.float32)
    y = rng.integers(0, 3, size=90)

    def build(jit):
        model = lw.Sequential([Dense(24, activation="relu", input_dim=12),
                               Dense(16, activation="tanh"), Dense(3, activation="softmax")])
        model.compile(optimizers.Adam(0.01), "sparse_categorical_crossentropy",
                      jit_compile=jit)
        return model

    try:
        lw.blas.set_blas("onednn")
        python, kernel, hp, hk = _fit_both(build, x, y, epochs=3, batch_size=32)
        assert any(key[0] == "onednn" for key in compiled._kernels)
    finally:
        lw.blas.set_blas(previous)
    _assert_same(python, kernel, hp, hk, rtol=2e-5, atol=2e-6)
