"""layerwise.threads: GEMM thread counts inside fit chosen by the measured step rate."""

import numpy as np
import pytest

from layerwise import threads
from layerwise.layers import Dense
from layerwise.models import Sequential


class _Machine:
    """A fake clock: each step takes ``seconds_per_step[threads]``."""

    def __init__(self, seconds_per_step):
        self.seconds_per_step = seconds_per_step
        self.now = 0.0
        self.threads = None
        self.applied = []

    def apply(self, n):
        self.threads = n
        self.applied.append(n)

    def clock(self):
        return self.now

    def run(self, governor, seconds):
        end = self.now + seconds
        while self.now < end:
            self.now += self.seconds_per_step[self.threads]
            governor.step()


def test_quiet_machine_keeps_all_cores():
    machine = _Machine({2: 0.001, 1: 0.002})
    governor = threads.Governor([2, 1, 1], machine.apply, machine.clock)
    assert governor.candidates == [2, 1]
    machine.run(governor, 1.0)
    assert governor.choice == 2 and machine.threads == 2
    assert governor.history[0][1] == 2


def test_a_loaded_machine_switches_to_one_thread_and_back():
    machine = _Machine({2: 0.001, 1: 0.002})
    governor = threads.Governor([2, 1], machine.apply, machine.clock)
    machine.run(governor, 1.0)
    assert governor.choice == 2
    machine.seconds_per_step = {2: 0.05, 1: 0.003}  # other processes took the cores
    machine.run(governor, 10.0)
    assert governor.choice == 1 and machine.threads == 1
    machine.seconds_per_step = {2: 0.001, 1: 0.002}  # and left
    machine.run(governor, 10.0)
    assert governor.choice == 2 and machine.threads == 2


def test_one_slow_window_does_not_switch():
    """A shared core slow for one probe of all cores: the next probe, at once, finds it
    fast again, and the count stays."""
    machine = _Machine({2: 0.001, 1: 0.002})
    governor = threads.Governor([2, 1], machine.apply, machine.clock)
    original = machine.seconds_per_step
    machine.seconds_per_step = {2: 0.004, 1: 0.002}  # the first window: the core is slow
    machine.run(governor, 0.26)
    machine.seconds_per_step = original
    machine.run(governor, 1.0)
    assert [choice for _, choice in governor.history] == [2, 2]
    assert governor.choice == 2 and machine.threads == 2


def test_small_differences_do_not_switch():
    machine = _Machine({2: 0.00100, 1: 0.00097})  # 1 thread 3% faster: not a clear gain
    governor = threads.Governor([2, 1], machine.apply, machine.clock)
    machine.run(governor, 5.0)
    assert governor.choice == 2 and all(choice == 2 for _, choice in governor.history)


def test_the_hold_doubles_while_the_choice_stays_and_caps():
    machine = _Machine({2: 0.001, 1: 0.002})
    governor = threads.Governor([2, 1], machine.apply, machine.clock)
    machine.run(governor, 400.0)
    assert governor.hold == threads.HOLD_MAX
    # measurements are rare once stable: the time spent on one thread is small
    probes = len(governor.history)
    assert 8 <= probes <= 15


def test_a_window_opens_after_its_first_step():
    """What ran before a probe's first step (fit's setup, a compiled kernel loading) is not
    charged to the first thread count."""
    machine = _Machine({2: 0.001, 1: 0.002})
    governor = threads.Governor([2, 1], machine.apply, machine.clock)
    machine.now += 3.0  # setup: seconds before the first step ends
    machine.run(governor, 1.0)
    assert governor.history[0][0][2] == pytest.approx(1 / 0.001, rel=0.02)
    assert governor.choice == 2


def test_short_fits_change_nothing():
    machine = _Machine({2: 0.001, 1: 0.0001})
    governor = threads.Governor([2, 1], machine.apply, machine.clock)
    machine.run(governor, 0.2)  # shorter than one window
    assert machine.applied == [2]


def test_stretches_of_steps_count_as_their_steps():
    """The compiled kernel reports its steps a stretch at a time: step(n)."""
    machine = _Machine({2: 0.05, 1: 0.003})  # a loaded machine
    governor = threads.Governor([2, 1], machine.apply, machine.clock)
    while governor.choice != 1:
        machine.now += 16 * machine.seconds_per_step[machine.threads]
        governor.step(16)
    assert machine.threads == 1 and [choice for _, choice in governor.history] == [2, 1]
    assert governor.history[0][0][1] == pytest.approx(1 / 0.003)


def test_a_probe_continues_across_fits_of_less_than_two_windows():
    """fit(epochs=1) in a loop, each call 0.4 s: the probe of 2 threads completes in the
    first call, that of 1 thread in the second (its window begun afresh, the pause between
    calls not counted), and from then on every call trains on the choice."""
    machine = _Machine({2: 0.001, 1: 0.002})
    governor = threads.Governor([2, 1], machine.apply, machine.clock)
    machine.run(governor, 0.4)  # the first call: 2 threads measured, 1 thread begun
    assert machine.threads == 1 and governor.probing == 1
    machine.now += 5.0  # between calls: validation, the user's own code
    governor.resume()
    assert machine.threads == 1 and governor.steps == 0
    machine.run(governor, 0.4)
    assert governor.probing is None and governor.choice == 2 and machine.threads == 2
    assert governor.history[0][0][1] == pytest.approx(1 / 0.002, rel=0.02)
    for _ in range(3):  # later calls, inside the 2 s hold: no probe
        governor.resume()
        machine.run(governor, 0.4)
    assert len(governor.history) == 1 and set(machine.applied[-4:]) == {2}


def test_a_hold_keeps_counting_across_fits():
    machine = _Machine({2: 0.001, 1: 0.002})
    governor = threads.Governor([2, 1], machine.apply, machine.clock)
    machine.run(governor, 0.6)  # both measured: 2 threads kept, held for 4 s
    assert governor.probing is None and governor.hold == 4.0
    governor.resume()
    machine.run(governor, 0.1)
    assert governor.probing is None
    machine.now += 5.0  # the hold ran out between two fits
    governor.resume()
    machine.run(governor, 0.1)
    assert governor.probing == 0  # the next fit measures again at once


def test_a_model_continues_its_governor_from_fit_to_fit(monkeypatch):
    pytest.importorskip("threadpoolctl")
    monkeypatch.setattr(threads, "_setting", [None])  # LAYERWISE_THREADS may fix it
    x = np.random.default_rng(0).normal(size=(64, 8)).astype("float32")
    y = np.zeros(64, dtype=int)
    model = _model()
    model.fit(x, y, epochs=1, verbose=0)  # may load SciPy's OpenBLAS (numba's): continued
    first = model._last_governor
    if first is None:
        pytest.skip("one core or no controllable BLAS: nothing to govern")
    model.fit(x, y, epochs=1, verbose=0)
    assert model._last_governor is first
    import pickle

    assert pickle.loads(pickle.dumps(model))._last_governor is None


@pytest.mark.parametrize("value", [0, -1, 1.5, "two", True])
def test_set_threads_validates(value):
    with pytest.raises(ValueError, match="`threads` must be a positive integer"):
        threads.set_threads(value)


def _threadpool_threads():
    from threadpoolctl import threadpool_info

    return [(i["internal_api"], i["num_threads"]) for i in threadpool_info()]


def _model():
    model = Sequential([Dense(32, activation="relu", input_dim=8), Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def test_fit_restores_the_thread_count_and_fixed_settings_hold(monkeypatch):
    pytest.importorskip("threadpoolctl")
    x = np.random.default_rng(0).normal(size=(256, 8)).astype("float32")
    y = np.zeros(256, dtype=int)
    _model().fit(x[:8], y[:8], epochs=1, verbose=0)  # loads every library fit uses (numba's)
    before = _threadpool_threads()
    seen = []
    monkeypatch.setattr(threads, "WINDOW", 0.0)
    monkeypatch.setattr(threads, "MIN_STEPS", 1)
    original = threads.Governor.__init__

    def recording(self, candidates, apply, clock=None):
        def spy(n):
            seen.append(n)
            apply(n)
        original(self, candidates, spy, *(() if clock is None else (clock,)))
    monkeypatch.setattr(threads.Governor, "__init__", recording)
    _model().fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert _threadpool_threads() == before
    if len(set(seen)) > 1:  # a machine of 2 or more cores measured each count
        assert 1 in seen
    seen.clear()
    with threads.fixed(1):
        _model().fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert seen == [] and _threadpool_threads() == before
