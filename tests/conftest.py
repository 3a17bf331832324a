"""Shared fixtures: float64 mode for gradient checks, a fixed global seed per test."""

import os
import tempfile

# compiled kernels (layerwise.compiled) built by the tests: without LLVM's optimizations,
# which halves their compile time and changes no result (no fast-math anywhere), and kept
# apart from the user's cache, which must hold only optimized code
os.environ.setdefault("NUMBA_OPT", "0")
os.environ.setdefault("LAYERWISE_CACHE_DIR",
                      os.path.join(tempfile.gettempdir(), "layerwise-test-kernels"))

import numpy as np
import pytest

from layerwise import backend
from layerwise.utils import set_random_seed


@pytest.fixture
def float64():
    """Build layers in float64 for the duration of a test (gradient checks)."""
    previous = backend.floatx()
    backend.set_floatx("float64")
    yield
    backend.set_floatx(previous)


@pytest.fixture(autouse=True)
def _seeded():
    set_random_seed(1234)
    yield


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _use_blas(name, monkeypatch):
    """Select ``name`` for matrix multiplies and optimizer kernels; for MKL, with every size
    threshold at zero so that small test arrays take the MKL path too."""
    from layerwise import blas

    if name == "mkl":
        if blas._load_mkl() is None:
            pytest.skip("MKL is not installed: pip install 'layerwise[mkl]'")
        for threshold in ("MIN_GEMM_WORK", "MIN_BIAS_SIZE"):
            monkeypatch.setattr(blas, threshold, 0)
    previous = blas._choice
    blas.set_blas(name)
    return previous


@pytest.fixture(params=["numpy", "mkl"])
def any_blas(request, monkeypatch):
    """Run a test once with NumPy's BLAS and once with MKL (skipped where MKL is missing)."""
    from layerwise import blas

    previous = _use_blas(request.param, monkeypatch)
    yield request.param
    blas.set_blas(previous)


@pytest.fixture
def mkl(monkeypatch):
    """MKL for matrix multiplies and optimizer kernels at every size (skips without MKL)."""
    from layerwise import blas

    previous = _use_blas("mkl", monkeypatch)
    yield blas.active
    blas.set_blas(previous)
