"""Initialisers: the formulas of SPEC §5, seeds, names."""

import math

import numpy as np
import pytest

from layerwise import initializers
from layerwise.layers import Dense

SHAPE = (400, 300)  # fan_in 400, fan_out 300: 120,000 draws, tight statistics


@pytest.mark.parametrize(("name", "low", "high"), [
    ("glorot_uniform", -math.sqrt(6 / 700), math.sqrt(6 / 700)),
    ("xavier_uniform", -math.sqrt(6 / 700), math.sqrt(6 / 700)),
    ("he_uniform", -math.sqrt(6 / 400), math.sqrt(6 / 400)),
    ("kaiming_uniform", -math.sqrt(6 / 400), math.sqrt(6 / 400)),
    ("random_uniform", 0.0, 1.0),
])
def test_uniform_bounds_and_spread(name, low, high):
    w = initializers.get(name)(SHAPE, "float64")
    assert low <= w.min() and w.max() <= high
    assert w.min() < low + 0.01 * (high - low) and w.max() > high - 0.01 * (high - low)
    assert w.std() == pytest.approx((high - low) / math.sqrt(12), rel=0.02)


@pytest.mark.parametrize(("name", "std"), [
    ("glorot_normal", math.sqrt(2 / 700)), ("xavier_normal", math.sqrt(2 / 700)),
    ("he_normal", math.sqrt(2 / 400)), ("kaiming_normal", math.sqrt(2 / 400)),
    ("random_normal", 1.0),
])
def test_normal_std(name, std):
    w = initializers.get(name)(SHAPE, "float64")
    assert w.mean() == pytest.approx(0.0, abs=0.02 * std)
    assert w.std() == pytest.approx(std, rel=0.02)


def test_constant_zeros_ones():
    assert np.all(initializers.get("zeros")((3, 2)) == 0)
    assert np.all(initializers.get("ones")((3, 2)) == 1)
    assert np.all(initializers.Constant(0.7)((3, 2), "float64") == 0.7)
    assert initializers.RandomUniform(-2, -1)((1000,)).max() <= -1


def test_seed_gives_reproducible_values():
    a = initializers.GlorotUniform(seed=3)((5, 4))
    b = initializers.GlorotUniform(seed=3)((5, 4))
    c = initializers.GlorotUniform(seed=4)((5, 4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    layer1 = Dense(3, kernel_initializer=initializers.HeNormal(seed=9))
    layer2 = Dense(3, kernel_initializer=initializers.HeNormal(seed=9))
    layer1.build(4)
    layer2.build(4)
    np.testing.assert_array_equal(layer1.params["kernel"], layer2.params["kernel"])


def test_dtype_is_float32_by_default():
    assert initializers.get("glorot_uniform")((2, 2)).dtype == np.float32


def test_config_round_trip():
    init = initializers.RandomNormal(mean=1.0, stddev=0.5, seed=2)
    again = initializers.get(initializers.serialize(init))
    np.testing.assert_array_equal(init((3, 3)), again((3, 3)))


@pytest.mark.parametrize(("init", "msg"), [
    (lambda: initializers.RandomUniform(1, 0), "`maxval` must be greater than `minval`"),
    (lambda: initializers.RandomNormal(stddev=0), "`stddev` must be positive"),
    (lambda: initializers.GlorotUniform(seed=-1), "`seed` must be a non-negative integer"),
])
def test_bad_arguments(init, msg):
    with pytest.raises(ValueError, match=msg):
        init()
