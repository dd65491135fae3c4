"""TwinSystem builds the standard graph and steps it like the hand-wired one."""

import numpy as np
import pytest

import twingraph as tg
from blocks.anomaly import CUSUM
from blocks.estimation import EKF
from blocks.health import RUL, ParameterHealth
from blocks.physics import PumpLike


def test_twin_matches_the_hand_wired_graph_and_survives_missing_samples():
    pump = PumpLike()
    make = dict(model=pump, estimate=("efficiency",), q=0.0, q_params=1e-6, r=1e-12, p0=0.0, p0_params=0.1)
    twin = tg.TwinSystem(pump, EKF(**make), CUSUM(k=1.0, h=8.0), ParameterHealth(), RUL(window=20), dt=0.05)
    twin.initialize()
    g = tg.Graph("wired", dt=0.05)
    ekf = g.add(EKF(**make, name="ekf"))
    g.connect(g.add(tg.Input("u", shape=(1,), unit="V")).out.value, ekf.inp.u)
    g.connect(g.add(tg.Input("y", shape=(1,), unit="m3/s")).out.value, ekf.inp.y)
    sim = tg.Simulator(g)
    truth = PumpLike(efficiency=0.85)
    x, p = truth.initial_state(1), truth.batch_params(1)
    for k in range(100):
        y = np.nan if k % 7 == 3 else truth.observe(x, None, p)[0, 0]
        result = twin.step(u=12.0, measurement=y)
        wired = sim.step(u=12.0, y=y)
        x = truth.advance(x, np.full((1, 1), 12.0), 0.0, 0.05, p)
        np.testing.assert_array_equal(result.state, wired["ekf.x_hat"])
        np.testing.assert_array_equal(result.params, wired["ekf.params"])
    assert abs(result.params[0] - 0.85) < 1e-3 and abs(result.health_indicator - 0.625) < 3e-3
    assert not result.alarm.any() and result.rul.shape == ()
    assert twin.history["health.hi"].shape == (100,)


def test_rul_needs_health():
    with pytest.raises(ValueError, match="The 'rul' parameter of TwinSystem needs 'health'"):
        tg.TwinSystem(PumpLike(), rul=RUL())
