"""The check both kernel test modules make: a compiled fit equals the Python loop's."""

import numpy as np


def assert_same_training(python, kernel, hp, hk, rtol, atol):
    """Same epoch losses, weights, iteration count and optimizer state, to ``rtol``/``atol``,
    for two models trained alike (``hp``/``hk`` their histories)."""
    np.testing.assert_allclose(hk.history["loss"], hp.history["loss"], rtol=rtol, atol=atol)
    for a, b in zip(kernel.get_weights(), python.get_weights()):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
    state_k, state_p = kernel.optimizer.get_state(), python.optimizer.get_state()
    assert state_k["iterations"] == state_p["iterations"]
    for name in state_p["slots"]:
        for a, b in zip(state_k["slots"][name], state_p["slots"][name]):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
