"""Optimizers: the seed's momentum by hand, and every optimizer and option against PyTorch."""

import numpy as np
import pytest

from layerwise import Sequential, optimizers
from layerwise.layers import Dense


def test_seed_momentum_first_steps_by_hand():
    # one weight, loss L = w²/2 so dL/dw = w; v⁰ = 0, v <- λv - η∇L, θ <- θ + v
    param = np.array([2.0])
    opt = optimizers.SGD(learning_rate=0.1, momentum=0.9)
    opt.apply([param], [param.copy()])
    assert param[0] == pytest.approx(2.0 - 0.1 * 2.0)  # v¹ = -0.2
    grad = param.copy()  # 1.8
    opt.apply([param], [grad])
    v2 = 0.9 * -0.2 - 0.1 * 1.8
    assert param[0] == pytest.approx(1.8 + v2)
    np.testing.assert_allclose(opt.get_state()["slots"]["velocity"][0], [v2])


def test_plain_gradient_descent_step():
    param = np.array([1.0, -1.0])
    optimizers.get("sgd").apply([param], [np.array([0.5, 0.5])])
    np.testing.assert_allclose(param, [1.0 - 0.005, -1.0 - 0.005])


def test_names_resolve():
    for name, cls in [("sgd", optimizers.SGD), ("momentum", optimizers.Momentum),
                      ("adagrad", optimizers.Adagrad), ("rmsprop", optimizers.RMSprop),
                      ("adam", optimizers.Adam), ("adamw", optimizers.AdamW)]:
        assert type(optimizers.get(name)) is cls
    assert optimizers.get("momentum").momentum == 0.9


def test_state_round_trip_continues_exactly(rng):
    params = [rng.normal(size=(3, 2)), rng.normal(size=(2,))]
    grads = [[rng.normal(size=p.shape) for p in params] for _ in range(6)]
    straight = [p.copy() for p in params]
    opt = optimizers.Adam(0.01, amsgrad=True)
    for g in grads:
        opt.apply(straight, g)
    resumed = [p.copy() for p in params]
    first = optimizers.Adam(0.01, amsgrad=True)
    for g in grads[:3]:
        first.apply(resumed, g)
    state = first.get_state()
    assert state["iterations"] == 3 and set(state["slots"]) == {"m", "v", "v_max"}
    second = optimizers.get(optimizers.serialize(first))
    second.set_state(state)
    for g in grads[3:]:
        second.apply(resumed, g)
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a, b)


def test_clipping_in_place():
    def g():
        return np.array([3.0, 4.0])  # norm 5

    grad = g()
    optimizers.SGD(clipnorm=1.0).clip([grad])
    assert np.allclose(grad, [0.6, 0.8])
    assert np.allclose(optimizers.SGD(clipvalue=3.5).clip([g()])[0], [3.0, 3.5])
    assert np.allclose(optimizers.SGD(clipnorm=10.0).clip([g()])[0], [3.0, 4.0])
    two = optimizers.SGD(global_clipnorm=1.0).clip([g(), g()])
    assert np.allclose(np.sqrt(sum((x**2).sum() for x in two)), 1.0)


torch = pytest.importorskip("torch", reason="PyTorch is not installed: pip install torch==2.13.0")

CASES = {
    "sgd": (lambda: optimizers.SGD(0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
    "momentum": (lambda: optimizers.SGD(0.1, momentum=0.9),
                 lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
    "nesterov": (lambda: optimizers.SGD(0.1, momentum=0.9, nesterov=True),
                 lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
    "adagrad": (lambda: optimizers.Adagrad(0.1, initial_accumulator_value=0.1),
                lambda p: torch.optim.Adagrad(p, lr=0.1, initial_accumulator_value=0.1,
                                              eps=1e-10)),
    "rmsprop": (lambda: optimizers.RMSprop(0.01),
                lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=1e-8)),
    "rmsprop_momentum": (lambda: optimizers.RMSprop(0.01, momentum=0.5),
                         lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=1e-8,
                                                       momentum=0.5)),
    "rmsprop_centered": (lambda: optimizers.RMSprop(0.01, centered=True, momentum=0.5),
                         lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=1e-8,
                                                       centered=True, momentum=0.5)),
    "adam": (lambda: optimizers.Adam(0.01),
             lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.9, 0.999), eps=1e-8)),
    "adam_amsgrad": (lambda: optimizers.Adam(0.01, beta_1=0.8, amsgrad=True),
                     lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.999), amsgrad=True)),
    "adamw": (lambda: optimizers.AdamW(0.01, weight_decay=0.1),
              lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1)),
    "sgd_clipnorm": (lambda: optimizers.SGD(0.1, clipnorm=0.05),
                     lambda p: torch.optim.SGD(p, lr=0.1)),
    "adam_clipvalue": (lambda: optimizers.Adam(0.01, clipvalue=0.01),
                       lambda p: torch.optim.Adam(p, lr=0.01)),
    "sgd_global_clipnorm": (lambda: optimizers.SGD(0.1, global_clipnorm=0.1),
                            lambda p: torch.optim.SGD(p, lr=0.1)),
    # Keras 3's optimizers and its weight_decay= on every optimizer
    "nadam": (lambda: optimizers.Nadam(0.01, epsilon=1e-8),
              lambda p: torch.optim.NAdam(p, lr=0.01, eps=1e-8, momentum_decay=0.004)),
    "adamax": (lambda: optimizers.Adamax(0.01, epsilon=1e-12),
               lambda p: torch.optim.Adamax(p, lr=0.01, eps=1e-12)),
    "adadelta": (lambda: optimizers.Adadelta(1.0, rho=0.9, epsilon=1e-6),
                 lambda p: torch.optim.Adadelta(p, lr=1.0, rho=0.9, eps=1e-6)),
    "adam_weight_decay": (lambda: optimizers.Adam(0.01, weight_decay=0.1),
                          lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1)),
    # decoupled decay without momentum equals PyTorch's coupled L2: θ(1 - ηλ) - ηg
    "sgd_weight_decay": (lambda: optimizers.SGD(0.1, weight_decay=0.05),
                         lambda p: torch.optim.SGD(p, lr=0.1, weight_decay=0.05)),
}


def _torch_clip(case, params):
    if case == "sgd_clipnorm":
        for p in params:  # Keras's clipnorm: each gradient array on its own
            torch.nn.utils.clip_grad_norm_([p], 0.05)
    elif case == "adam_clipvalue":
        torch.nn.utils.clip_grad_value_(params, 0.01)
    elif case == "sgd_global_clipnorm":
        torch.nn.utils.clip_grad_norm_(params, 0.1)


@pytest.mark.parametrize("case", sorted(CASES))
def test_five_steps_match_pytorch(case, rng, any_blas):
    ours, theirs = CASES[case]
    model = Sequential([Dense(8, activation="tanh", input_dim=5), Dense(6, activation="relu"),
                        Dense(3, activation="softmax")])
    model.compile(optimizer=ours(), loss="sparse_categorical_crossentropy")
    layers = []
    for layer in model.layers:
        lin = torch.nn.Linear(*layer.params["kernel"].shape)
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(layer.params["kernel"].T))
            lin.bias.copy_(torch.tensor(layer.params["bias"]))
        layers.append(lin)
    params = [p for lin in layers for p in (lin.weight, lin.bias)]
    opt = theirs(params)
    for _ in range(5):
        x = rng.normal(size=(16, 5)).astype(np.float32)
        y = rng.integers(0, 3, 16)
        model.train_on_batch(x, y)
        opt.zero_grad()
        h = torch.relu(layers[1](torch.tanh(layers[0](torch.tensor(x)))))
        torch.nn.functional.cross_entropy(layers[2](h), torch.tensor(y)).backward()
        _torch_clip(case, params)
        opt.step()
    ours_w = model.get_weights()
    theirs_w = [p.detach().numpy() for p in params]
    for a, b in zip(ours_w, theirs_w):
        np.testing.assert_allclose(a, b.T if a.ndim == 2 else b, atol=1e-5, rtol=1e-5)


def test_tiny_state_is_flushed_before_it_turns_subnormal():
    """Moments of parameters whose gradient stays zero decay towards subnormal floats, which
    make x86 arithmetic ~100x slower; they are zeroed every FLUSH_EVERY steps."""
    from layerwise.optimizers.base import FLUSH_EVERY

    param = np.ones(4, dtype=np.float32)
    grad = np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32)
    opt = optimizers.Adam(0.01)
    opt.apply([param], [grad])  # m, v nonzero only in the first entry
    grad[0] = 0.0
    slots = opt.slots
    slots["m"][0][1:] = 1e-33  # as if decayed from earlier gradients
    for _ in range(FLUSH_EVERY - 1):
        opt.apply([param], [grad])
    assert opt.iterations == FLUSH_EVERY
    m = slots["m"][0]
    assert np.all(m[1:] == 0) and m[0] != 0  # tiny entries flushed, the rest kept
    assert not np.any((m != 0) & (np.abs(m) < np.finfo(np.float32).tiny))


def test_lion_against_its_recurrence(rng):
    param = rng.normal(size=(3, 4))
    grads = [rng.normal(size=(3, 4)) for _ in range(4)]
    optimizer = optimizers.Lion(0.01, beta_1=0.9, beta_2=0.99, weight_decay=0.1)
    ours = param.copy()
    theta, m = param.copy(), np.zeros_like(param)
    for g in grads:
        optimizer.apply([ours], [g.copy()])
        theta = theta * (1 - 0.01 * 0.1)  # decoupled weight decay first
        theta = theta - 0.01 * np.sign(0.9 * m + 0.1 * g)
        m = 0.99 * m + 0.01 * g
    np.testing.assert_allclose(ours, theta, rtol=1e-12)


def test_nadam_resumed_from_its_state_continues_exactly(rng):
    param = rng.normal(size=(5,))
    grads = [rng.normal(size=(5,)) for _ in range(6)]
    straight, a = optimizers.Nadam(0.01), param.copy()
    for g in grads:
        straight.apply([a], [g.copy()])
    first, b = optimizers.Nadam(0.01), param.copy()
    for g in grads[:3]:
        first.apply([b], [g.copy()])
    second = optimizers.Nadam(0.01)
    second.set_state(first.get_state())
    for g in grads[3:]:
        second.apply([b], [g.copy()])
    np.testing.assert_array_equal(a, b)


def test_rmsprop_seed_form_follows_the_seeds_recurrence(rng):
    """Seed 002: σ¹ = |g¹|, then σᵗ = √(ρ (σᵗ⁻¹)² + (1 - ρ) (gᵗ)²), θᵗ⁺¹ = θᵗ - η gᵗ / σᵗ
    (with ε beside σ, as the default form has it)."""
    param = rng.normal(size=(4,))
    grads = [rng.normal(size=(4,)) for _ in range(5)]
    lr, rho, eps = 0.01, 0.9, 1e-8
    optimizer = optimizers.RMSprop(lr, rho=rho, epsilon=eps,
                                   initial_accumulator="first_gradient")
    ours, theta, sigma = param.copy(), param.copy(), None
    for g in grads:
        optimizer.apply([ours], [g.copy()])
        sigma = np.abs(g) if sigma is None else np.sqrt(rho * sigma**2 + (1 - rho) * g**2)
        theta = theta - lr * g / (sigma + eps)
    np.testing.assert_allclose(ours, theta, rtol=1e-12)
    default = optimizers.RMSprop(lr, rho=rho, epsilon=eps)
    step = param.copy()
    default.apply([step], [grads[0].copy()])
    seed = optimizers.RMSprop(lr, rho=rho, epsilon=eps, initial_accumulator="first_gradient")
    seed_step = param.copy()
    seed.apply([seed_step], [grads[0].copy()])
    assert np.abs(param - seed_step) == pytest.approx(np.full(4, lr), rel=1e-5)  # η
    assert np.abs(param - step) == pytest.approx(np.full(4, lr / np.sqrt(0.1)), rel=1e-5)
    with pytest.raises(ValueError, match="'zeros' or 'first_gradient'"):
        optimizers.RMSprop(initial_accumulator="ones")


def test_adam_keras_epsilon_adds_epsilon_before_the_bias_correction(any_blas):
    """epsilon_style="keras": θ -= η√(1-β₂ᵗ)/(1-β₁ᵗ) · m/(√v + ε), as Keras and scikit-learn."""
    rng = np.random.default_rng(0)
    theta = rng.normal(size=300_000 if any_blas == "mkl" else 50)  # MKL's path needs length
    grads = [rng.normal(scale=1e-6, size=theta.shape) for _ in range(3)]
    opt = optimizers.Adam(0.01, epsilon=1e-4, epsilon_style="keras")
    param, grad = theta.copy(), np.zeros_like(theta)
    m = v = np.zeros_like(theta)
    expected = theta.copy()
    for t, g in enumerate(grads, start=1):
        grad[...] = g
        opt.apply([param], [grad])
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        expected -= 0.01 * np.sqrt(1 - 0.999**t) / (1 - 0.9**t) * m / (np.sqrt(v) + 1e-4)
    np.testing.assert_allclose(param, expected, rtol=1e-9, atol=1e-12)
    assert type(opt).from_config(opt.get_config()).epsilon_style == "keras"
    with pytest.raises(ValueError, match="`epsilon_style` must be 'pytorch' or 'keras'"):
        optimizers.Adam(epsilon_style="tf")
