"""Parity with PyTorch (CPU): same weights, same batch -> same outputs, loss and SGD step.

Skipped, with the reason printed, when torch is not installed (pip install torch==2.13.0).
"""

import numpy as np
import pytest

from layerwise import Sequential
from layerwise.layers import Dense, Maxout, PReLU
from layerwise.optimizers import SGD

torch = pytest.importorskip("torch", reason="PyTorch is not installed: pip install torch==2.13.0")
F = torch.nn.functional

TORCH_ACTIVATIONS = {
    "linear": lambda z: z, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": F.relu,
    "leaky_relu": lambda z: F.leaky_relu(z, 0.01), "elu": F.elu,
    "softmax": lambda z: F.softmax(z, dim=-1), "softplus": F.softplus, "selu": F.selu,
    "gelu": F.gelu, "silu": F.silu, "swish": F.silu, "hard_sigmoid": F.hardsigmoid,
    "mish": F.mish, "identity": lambda z: z,
}
LR = 0.1
TOL = 1e-5


def _t(a):
    return torch.tensor(np.asarray(a), dtype=torch.float32)


def _linear(layer):
    """A torch Linear carrying a copy of a layerwise Dense/Maxout's weights."""
    kernel, bias = layer.params["kernel"], layer.params["bias"]
    lin = torch.nn.Linear(kernel.shape[0], kernel.shape[1])
    with torch.no_grad():
        lin.weight.copy_(_t(kernel.T))
        lin.bias.copy_(_t(bias))
    return lin


def _compare(model, torch_params, torch_forward, torch_loss, x, y):
    """Forward, loss and one SGD step of both frameworks agree to TOL."""
    out = torch_forward(_t(x))
    np.testing.assert_allclose(model.predict(x), out.detach().numpy(), atol=TOL, rtol=TOL)
    loss_t = torch_loss(out)
    model.compile(optimizer=SGD(learning_rate=LR), loss=model.loss)
    loss = model.train_on_batch(x, y)
    assert loss == pytest.approx(loss_t.item(), rel=TOL, abs=TOL)
    loss_t.backward()
    with torch.no_grad():
        for p in torch_params:
            p -= LR * p.grad
    ours = model.get_weights()
    theirs = [p.detach().numpy() for p in torch_params]
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b.T if a.ndim == 2 else b, atol=TOL, rtol=TOL)


@pytest.mark.parametrize("activation", sorted(TORCH_ACTIVATIONS))
def test_each_activation(activation, rng, any_blas):
    model = Sequential([Dense(6, activation=activation, input_dim=4,
                              bias_initializer="random_normal"), Dense(3)])
    model.loss = "mse"
    x = rng.normal(0, 2, size=(8, 4)).astype(np.float32)
    y = rng.normal(size=(8, 3)).astype(np.float32)
    l1, l2 = _linear(model.layers[0]), _linear(model.layers[1])
    act = TORCH_ACTIVATIONS[activation]
    _compare(model, [l1.weight, l1.bias, l2.weight, l2.bias], lambda t: l2(act(l1(t))),
             lambda out: F.mse_loss(out, _t(y)), x, y)


def _classes(rng, n=8, units=3):
    return rng.integers(0, units, n)


LOSSES = {
    "mean_squared_error": (None, lambda out, y: F.mse_loss(out, _t(y)), "real"),
    "mean_absolute_error": (None, lambda out, y: F.l1_loss(out, _t(y)), "real"),
    "huber": (None, lambda out, y: F.huber_loss(out, _t(y), delta=1.0), "real"),
    "binary_crossentropy": ("sigmoid", lambda out, y: F.binary_cross_entropy(out, _t(y)), "bin"),
    "categorical_crossentropy": (
        "softmax", lambda out, y: F.nll_loss(torch.log(out), torch.tensor(y.argmax(1))), "onehot"),
    "sparse_categorical_crossentropy": (
        "softmax", lambda out, y: F.nll_loss(torch.log(out), torch.tensor(y)), "labels"),
}


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_each_loss(loss, rng):
    activation, torch_loss, kind = LOSSES[loss]
    model = Sequential([Dense(5, activation="tanh", input_dim=4), Dense(3, activation=activation)])
    model.loss = loss
    x = rng.normal(size=(8, 4)).astype(np.float32)
    labels = _classes(rng)
    y = {"real": rng.normal(size=(8, 3)).astype(np.float32),
         "bin": rng.integers(0, 2, (8, 3)).astype(np.float32),
         "onehot": np.eye(3, dtype=np.float32)[labels], "labels": labels}[kind]
    l1, l2 = _linear(model.layers[0]), _linear(model.layers[1])
    head = {"sigmoid": torch.sigmoid, "softmax": lambda z: F.softmax(z, -1), None: lambda z: z}
    params = [l1.weight, l1.bias, l2.weight, l2.bias]
    _compare(model, params, lambda t: head[activation](l2(torch.tanh(l1(t)))),
             lambda out: torch_loss(out, y), x, y)


def test_prelu(rng):
    model = Sequential([Dense(5, input_dim=4), PReLU(), Dense(2)])
    model.loss = "mse"
    x = rng.normal(size=(16, 4)).astype(np.float32)
    y = rng.normal(size=(16, 2)).astype(np.float32)
    l1, l2 = _linear(model.layers[0]), _linear(model.layers[2])
    prelu = torch.nn.PReLU(num_parameters=5, init=0.25)
    _compare(model, [l1.weight, l1.bias, prelu.weight, l2.weight, l2.bias],
             lambda t: l2(prelu(l1(t))), lambda out: F.mse_loss(out, _t(y)), x, y)


def test_maxout(rng, any_blas):
    units, pieces = 4, 3
    model = Sequential([Maxout(units, pieces=pieces, input_dim=5,
                               bias_initializer="random_normal"), Dense(2)])
    model.loss = "mse"
    x = rng.normal(size=(16, 5)).astype(np.float32)
    y = rng.normal(size=(16, 2)).astype(np.float32)
    l1, l2 = _linear(model.layers[0]), _linear(model.layers[1])

    def forward(t):  # maxout from torch ops: linear, view into groups, max over pieces
        return l2(l1(t).view(t.shape[0], units, pieces).amax(dim=-1))

    _compare(model, [l1.weight, l1.bias, l2.weight, l2.bias], forward,
             lambda out: F.mse_loss(out, _t(y)), x, y)
