"""On a real NVIDIA GPU (the CuPy backend): gradient checks in float64, parity with PyTorch on
the same GPU, and files that cross between GPU and CPU. Marked ``gpu``; each skips, saying
why, without CuPy or a GPU (run them with benchmarks/gpu_check.sh)."""

import numpy as np
import pytest

from layerwise import backend
from layerwise.layers import Dense
from layerwise.models import Sequential, load_model

pytestmark = pytest.mark.gpu


def _cupy():
    cupy = pytest.importorskip("cupy", reason="GPU test: needs CuPy (layerwise[gpu])")
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # no driver
        pytest.skip(f"GPU test: no usable GPU ({exc})")
    if count < 1:
        pytest.skip("GPU test: CuPy finds no GPU")
    return cupy


@pytest.fixture
def gpu():
    cupy = _cupy()
    backend.set_backend("cupy")
    try:
        yield cupy
    finally:
        backend.set_backend("numpy")


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "elu", "gelu", "softplus"])
def test_network_gradients_on_the_gpu_match_finite_differences(gpu, activation):
    previous = backend.floatx()
    backend.set_floatx("float64")
    try:
        rng = np.random.default_rng(0)
        model = Sequential([Dense(6, activation=activation, input_dim=4),
                            Dense(3, activation="softmax")])
        model.compile(optimizer="sgd", loss="categorical_crossentropy")
        model._begin("fit")
        x = gpu.asarray(rng.normal(size=(5, 4)))
        y = gpu.asarray(np.eye(3)[rng.integers(0, 3, 5)])
        model.compute_gradients(x, y)
        analytic = [gpu.asnumpy(g).copy() for g in model.grads]
        eps = 1e-6
        for param, grad in zip(model.params, analytic):
            flat = param.reshape(-1)
            for i in range(0, flat.size, max(1, flat.size // 7)):
                keep = float(flat[i])
                flat[i] = keep + eps
                plus = model.loss(y, model.forward(x))
                flat[i] = keep - eps
                minus = model.loss(y, model.forward(x))
                flat[i] = keep
                assert abs((plus - minus) / (2 * eps) - grad.reshape(-1)[i]) < 1e-6
    finally:
        backend.set_floatx(previous)


def test_training_matches_pytorch_on_the_same_gpu(gpu):
    torch = pytest.importorskip("torch", reason="GPU parity: needs PyTorch with CUDA")
    if not torch.cuda.is_available():
        pytest.skip("GPU parity: PyTorch sees no CUDA device")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype("float32")
    y = rng.integers(0, 3, 64)
    model = Sequential([Dense(16, activation="relu", input_dim=8),
                        Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    start = model.get_weights()
    net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(),
                              torch.nn.Linear(16, 3)).cuda()
    with torch.no_grad():
        for layer, (kernel, bias) in zip([net[0], net[2]], [start[:2], start[2:]]):
            layer.weight.copy_(torch.from_numpy(kernel.T))
            layer.bias.copy_(torch.from_numpy(bias))
    optimizer = torch.optim.Adam(net.parameters(), lr=0.001)
    xt, yt = torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda()
    for _ in range(5):
        model.train_on_batch(x, y)
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        optimizer.step()
    ours = model.get_weights()
    theirs = [net[0].weight.T, net[0].bias, net[2].weight.T, net[2].bias]
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b.detach().cpu().numpy(), rtol=1e-4, atol=1e-5)


def test_saved_on_the_gpu_loads_on_the_cpu_and_back(gpu, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype("float32")
    model = Sequential([Dense(8, activation="relu", input_dim=4), Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, x[:, :2], epochs=2, verbose=0)
    expected = model.predict(x)
    model.save(tmp_path / "gpu.safetensors")
    backend.set_backend("numpy")
    host = load_model(tmp_path / "gpu.safetensors")
    np.testing.assert_allclose(host.predict(x), expected, rtol=1e-5, atol=1e-6)
    host.save(tmp_path / "cpu.safetensors")
    backend.set_backend("cupy")
    again = load_model(tmp_path / "cpu.safetensors")
    np.testing.assert_allclose(again.predict(x), expected, rtol=1e-5, atol=1e-6)
