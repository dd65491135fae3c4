"""Plot inputs: trajectories from a History or raw arrays; matplotlib stays optional."""

import subprocess
import sys

import numpy as np
import pytest

import twingraph as tg
from blocks.physics import HarmonicOscillator, trajectory


def oscillator_history(batch: int) -> tg.History:
    g = tg.Graph("g", dt=0.1)
    g.add(HarmonicOscillator(omega=[1.0, 2.0][:batch], name="osc"))
    return tg.Simulator(g, batch=batch).run(steps=30)


def test_trajectory_of_a_history_port_for_one_asset():
    hist = oscillator_history(batch=2)
    time, values, labels = trajectory(hist, "osc.x", asset=1)
    np.testing.assert_array_equal(time, np.arange(30) * 0.1)
    np.testing.assert_array_equal(values, hist["osc.x"][:, 1])
    assert labels == ["osc.x[0]", "osc.x[1]"]
    _, single, _ = trajectory(oscillator_history(batch=1), "osc.y")
    assert single.shape == (30, 2)


def test_trajectory_of_raw_arrays():
    time, values, labels = trajectory(np.arange(4.0), time=[0.0, 0.5, 1.0, 1.5], labels=["h"])
    np.testing.assert_array_equal(time, [0.0, 0.5, 1.0, 1.5])
    assert values.shape == (4, 1) and labels == ["h"]


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        ((np.zeros((3, 2, 2, 2)),), {}, r"must have shape \(T,\), \(T, n\) or \(T, B, n\)\. Got \(3, 2, 2, 2\)"),
        ((np.zeros((3, 2)),), {"time": [0.0, 1.0]}, "Got 3 rows of 2 values, 2 times and 2 labels"),
        ((np.zeros((3, 2)), "osc.x"), {}, "'port' names a History port"),
    ],
)
def test_trajectory_rejects_what_it_cannot_plot(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        trajectory(*args, **kwargs)


def test_a_history_needs_a_port():
    with pytest.raises(ValueError, match=r"logged ports are \['osc.y', 'osc.x'\]"):
        trajectory(oscillator_history(batch=1))


def test_importing_the_physics_blocks_does_not_import_matplotlib():
    code = "import sys, blocks.physics; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
