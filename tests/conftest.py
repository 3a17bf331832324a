"""Shared fixtures: float64 mode for gradient checks, a fixed global seed per test."""

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
