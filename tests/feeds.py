"""Seeded random inputs for any graph, shared by the tests that step every block type."""

import numpy as np

import twingraph as tg


def random_inputs(sim: tg.Simulator, steps: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs ``(steps, B, *shape)`` per graph input: bools, small ints, or floats in [0.5, 1.5).

    Floats are positive and away from zero, so they are valid as variances,
    levels and voltages alike.
    """
    rng = np.random.default_rng(seed)
    inputs = {}
    for name, signal in sim.inputs.items():
        size = (steps, sim.batch, *signal.shape)
        kind = np.dtype(signal.dtype).kind
        if kind == "b":
            inputs[name] = rng.random(size) > 0.3
        elif kind in "iu":
            inputs[name] = rng.integers(0, 10, size).astype(signal.dtype)
        else:
            inputs[name] = rng.uniform(0.5, 1.5, size).astype(signal.dtype)
    return inputs
