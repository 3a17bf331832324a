"""Learning-rate schedules against their formulas, and inside an optimizer."""

import math

import numpy as np
import pytest

from layerwise import optimizers
from layerwise.optimizers import schedules

STEPS = [0, 1, 5, 10, 37, 100, 1000]


@pytest.mark.parametrize("step", STEPS)
def test_exponential_decay(step):
    s = schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    assert s(step) == pytest.approx(0.1 * 0.5 ** (step / 10))
    stair = schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5, staircase=True)
    assert stair(step) == pytest.approx(0.1 * 0.5 ** (step // 10))


@pytest.mark.parametrize("step", STEPS)
def test_inverse_time_decay(step):
    s = schedules.InverseTimeDecay(0.1, decay_steps=10, decay_rate=2.0)
    assert s(step) == pytest.approx(0.1 / (1 + 2.0 * step / 10))
    stair = schedules.InverseTimeDecay(0.1, decay_steps=10, decay_rate=2.0, staircase=True)
    assert stair(step) == pytest.approx(0.1 / (1 + 2.0 * (step // 10)))


@pytest.mark.parametrize(("step", "expected"), [(0, 1.0), (10, 1.0), (11, 0.5), (20, 0.5),
                                                (21, 0.1), (500, 0.1)])
def test_piecewise_constant_decay(step, expected):
    s = schedules.PiecewiseConstantDecay(boundaries=[10, 20], values=[1.0, 0.5, 0.1])
    assert s(step) == expected


@pytest.mark.parametrize("step", STEPS)
def test_cosine_decay(step):
    s = schedules.CosineDecay(0.1, decay_steps=100, alpha=0.1)
    t = min(step, 100)
    expected = 0.1 * (0.9 * 0.5 * (1 + math.cos(math.pi * t / 100)) + 0.1)
    assert s(step) == pytest.approx(expected)


def test_cosine_decay_with_warmup():
    s = schedules.CosineDecay(0.0001, decay_steps=100, warmup_target=0.1, warmup_steps=10)
    assert s(0) == pytest.approx(0.0001)
    assert s(5) == pytest.approx(0.0001 + (0.1 - 0.0001) * 0.5)
    assert s(10) == pytest.approx(0.1)
    assert s(60) == pytest.approx(0.1 * 0.5)
    assert s(110) == pytest.approx(0.0) and s(5000) == pytest.approx(0.0)


def test_optimizer_uses_schedule_by_step():
    param = np.array([0.0])
    opt = optimizers.SGD(learning_rate=schedules.ExponentialDecay(1.0, 1, 0.5))
    for _ in range(3):
        opt.apply([param], [np.array([1.0])])
    assert param[0] == pytest.approx(-(1.0 + 0.5 + 0.25))
    assert opt.current_learning_rate() == pytest.approx(0.125)


def test_schedule_config_round_trip():
    opt = optimizers.Adam(learning_rate=schedules.PiecewiseConstantDecay([5], [0.1, 0.01]))
    again = optimizers.get(optimizers.serialize(opt))
    assert isinstance(again.learning_rate, schedules.PiecewiseConstantDecay)
    assert again.learning_rate(6) == 0.01


def test_bad_schedule_arguments():
    with pytest.raises(ValueError, match="one more entry than `boundaries`"):
        schedules.PiecewiseConstantDecay([1, 2], [0.1])
    with pytest.raises(ValueError, match=r"must be positive\. Received: decay_steps=0"):
        schedules.ExponentialDecay(0.1, 0, 0.5)
