"""TwinSystem builds the standard graph and steps it like the hand-wired one."""

import numpy as np
import pytest

import twingraph as tg
from blocks.anomaly import CUSUM
from blocks.estimation import EKF, Residual
from blocks.health import RUL, ParameterHealth
from blocks.physics import FunctionODE, PumpLike


def test_twin_matches_the_hand_wired_graph_and_survives_missing_samples():
    pump = PumpLike()
    make = {"model": pump, "estimate": ("efficiency",), "q": 0.0, "q_params": 1e-6, "r": 1e-12, "p0": 0.0,
            "p0_params": 0.1}
    twin = tg.TwinSystem(pump, EKF(**make), CUSUM(k=1.0, h=8.0), ParameterHealth(), RUL(window=20), dt=0.05)
    twin.initialize()
    g = tg.Graph("wired", dt=0.05)
    ekf = g.add(EKF(**make, name="ekf"))
    res = g.add(Residual(name="res"))
    cusum = g.add(CUSUM(k=1.0, h=8.0, name="cusum"))
    g.connect(g.add(tg.Input("u", shape=(1,), unit="V")).out.value, ekf.inp.u)
    g.connect(g.add(tg.Input("y", shape=(1,), unit="m3/s")).out.value, ekf.inp.y)
    g.connect(ekf.out.innovation, res.inp.innovation)
    g.connect(ekf.out.S, res.inp.S)
    g.connect(res.out.residual, cusum.inp.x)
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
        np.testing.assert_array_equal(result.anomaly, wired["cusum.score"])
    assert abs(result.params[0] - 0.85) < 1e-3 and abs(result.health_indicator - 0.625) < 3e-3
    assert not result.alarm.any() and result.rul.shape == ()
    assert twin.history["health.hi"].shape == (100,)
    innovation, S = twin.history["estimator.innovation"], twin.history["estimator.S"]
    np.testing.assert_array_equal(twin.history["residual.residual"], innovation / np.sqrt(S))
    assert (twin.history["residual.residual"][3::7] == 0).all()  # missing samples: no evidence


class Differencer(tg.Block, type_name="tests.estimation.Differencer"):
    """A stand-in estimator without ``S``: ``x_hat = y``, ``innovation = y - y_prev``."""

    inputs = {"y": tg.Signal(shape=(1,), unit="m3/s")}
    outputs = {"x_hat": tg.Signal(shape=(1,), unit="m3/s"), "innovation": tg.Signal(shape=(1,), unit="m3/s")}

    def reset(self, ctx):
        self.y_ = np.zeros((ctx.batch, 1))

    def output(self, t, inp, out):
        out.x_hat[...] = inp.y
        out.innovation[...] = inp.y - self.y_

    def update(self, t, inp):
        self.y_[...] = inp.y


def test_an_estimator_without_S_feeds_its_raw_innovation():
    flow = FunctionODE(lambda x, u, t, p: -x, states=("q",), state_units=("m3/s",))
    twin = tg.TwinSystem(flow, Differencer(), CUSUM(k=0.0, h=10.0), dt=1.0)
    scores = [float(twin.step(measurement=y).anomaly[0]) for y in (1.0, 3.0, 2.0)]
    assert "residual" not in twin.graph.blocks
    assert scores == [1.0, 3.0, 2.0]  # g⁺ of the innovations 1, 2, -1 [m3/s]


def test_rul_needs_health():
    with pytest.raises(ValueError, match="The 'rul' parameter of TwinSystem needs 'health'"):
        tg.TwinSystem(PumpLike(), rul=RUL())
