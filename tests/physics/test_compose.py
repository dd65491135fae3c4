"""Series and parallel composition against analytic responses."""

import numpy as np
import pytest
from scipy.linalg import expm

import twingraph as tg
from blocks.physics import (
    FirstOrderLag,
    FunctionODE,
    HarmonicOscillator,
    MassSpringDamper,
    ParallelModel,
    PumpLike,
    SeriesModel,
)
from blocks.sources import Constant


def step_response(model, ticks: int = 400, dt: float = 0.01, batch: int = 1) -> tg.History:
    g = tg.Graph("g", dt=dt)
    one = g.add(Constant(value=[1.0], name="one"))
    g.add(model)
    g.connect(one.out.y, model.inp.u)
    return tg.Simulator(g, batch=batch).run(steps=ticks)


def test_series_of_two_lags_is_the_analytic_second_order_response():
    tau1, tau2 = 1.0, 0.4
    series = SeriesModel([FirstOrderLag(tau=tau1, name="a"), FirstOrderLag(tau=tau2, name="b")], name="s")
    hist = step_response(series)
    t = hist.time
    expected = 1 - (tau1 * np.exp(-t / tau1) - tau2 * np.exp(-t / tau2)) / (tau1 - tau2)
    np.testing.assert_allclose(hist["s.y"][:, 0], expected, rtol=0, atol=1e-8)
    np.testing.assert_allclose(hist["s.x"][:, 0], 1 - np.exp(-t / tau1), rtol=0, atol=1e-8)


def test_series_of_equal_lags_per_asset():
    tau = np.array([0.5, 1.0])
    series = SeriesModel([FirstOrderLag(tau=tau, name="a"), FirstOrderLag(tau=tau, name="b")], name="s")
    hist = step_response(series, batch=2)
    t = hist.time[:, None]
    np.testing.assert_allclose(hist["s.y"][:, :, 0], 1 - (1 + t / tau) * np.exp(-t / tau), rtol=0, atol=1e-8)


def test_series_is_far_closer_than_two_wired_blocks():
    t = np.arange(400) * 0.01
    exact = 1 - (1 + t) * np.exp(-t)
    joint = step_response(SeriesModel([FirstOrderLag(name="a"), FirstOrderLag(name="b")], name="s"))["s.y"][:, 0]
    g = tg.Graph("wired", dt=0.01)
    one = g.add(Constant(value=[1.0], name="one"))
    first, second = g.add(FirstOrderLag(name="a")), g.add(FirstOrderLag(name="b"))
    g.connect(one.out.y, first.inp.u)
    g.connect(first.out.y, second.inp.u)
    wired = tg.Simulator(g).run(steps=400)["b.y"][:, 0]  # b sees a's output held over each tick
    assert np.abs(joint - exact).max() < 1e-8
    assert np.abs(wired - exact).max() > 1e-3


def test_parallel_is_the_sum_of_its_members():
    a, b = FirstOrderLag(tau=1.0, gain=1.0, name="a"), FirstOrderLag(tau=0.2, gain=2.0, name="b")
    hist = step_response(ParallelModel([a, b], name="p"))
    t = hist.time
    expected = (1 - np.exp(-t)) + 2 * (1 - np.exp(-t / 0.2))
    np.testing.assert_allclose(hist["p.y"][:, 0], expected, rtol=0, atol=1e-7)
    alone = step_response(FirstOrderLag(tau=0.2, gain=2.0, name="b"))["b.y"][:, 0]
    np.testing.assert_allclose(hist["p.x"][:, 1], alone, rtol=1e-15)


def test_composites_name_states_and_parameters_by_member():
    series = SeriesModel([PumpLike(name="pump"), FirstOrderLag(tau=2.0, name="sensor")])
    assert series.states == ("pump.omega", "pump.q", "sensor.y")
    assert series.state_units == ("rad/s", "m3/s", None)
    assert "pump.efficiency" in series.parameters and "sensor.tau" in series.parameters
    assert series.parameter_values()["sensor.tau"] == 2.0
    assert (series.n_u, series.input_unit, series.n_y) == (1, "V", 1)
    unnamed = ParallelModel([FirstOrderLag(), FirstOrderLag()])
    assert unnamed.states == ("m0.y", "m1.y")


def test_initial_state_comes_from_the_members_unless_given():
    series = SeriesModel([FirstOrderLag(x0=1.0, name="a"), FirstOrderLag(x0=2.0, name="b")])
    np.testing.assert_array_equal(series.initial_state(2), [[1.0, 2.0], [1.0, 2.0]])
    series.x0 = [3.0, 4.0]
    np.testing.assert_array_equal(series.initial_state(1), [[3.0, 4.0]])


def test_nested_composition_and_solve_ivp_on_the_joint_state():
    inner = ParallelModel([FirstOrderLag(tau=1.0, name="slow"), FirstOrderLag(tau=0.1, name="fast")], name="inner")
    outer = SeriesModel([inner, FirstOrderLag(tau=0.5, gain=0.5, name="out")], name="s", substeps=4)
    adaptive = SeriesModel([inner, FirstOrderLag(tau=0.5, gain=0.5, name="out")], name="s",
                           integrator="solve_ivp", method="Radau", rtol=1e-10, atol=1e-12)
    fixed = step_response(outer, ticks=200, batch=2)["s.y"]
    np.testing.assert_allclose(step_response(adaptive, ticks=200, batch=2)["s.y"], fixed, rtol=0, atol=1e-8)
    assert outer.parameters[:2] == ("inner.slow.tau", "inner.slow.gain")
    # The joint state (slow, fast, out) is linear: ẋ = A x + b u with u = 1, x(0) = 0.
    A = np.array([[-1.0, 0.0, 0.0], [0.0, -10.0, 0.0], [1.0, 1.0, -2.0]])
    b = np.array([1.0, 10.0, 0.0])
    steady = np.linalg.solve(A, -b)
    exact = [(steady - expm(A * t) @ steady)[2] for t in np.arange(200) * 0.01]
    np.testing.assert_allclose(fixed[:, 0, 0], exact, rtol=0, atol=1e-9)


def test_feedthrough_of_composites():
    def h(x, u, p):
        return x + u

    def f(x, u, t, p):
        return -x

    through = FunctionODE(f, h=h, states=("y",), n_inputs=1, n_outputs=1, direct_feedthrough=True, name="t")
    lag = FirstOrderLag(name="lag")
    assert not SeriesModel([through, lag]).direct_feedthrough
    assert ParallelModel([through, lag]).direct_feedthrough
    through_twice = SeriesModel([through, FunctionODE(f, h=h, states=("y",), n_inputs=1, n_outputs=1,
                                                      direct_feedthrough=True, name="t2")])
    assert through_twice.direct_feedthrough


@pytest.mark.parametrize(
    "cls, models, message",
    [
        (SeriesModel, [HarmonicOscillator(name="osc"), FirstOrderLag(name="lag")],
         r"model 0 \(HarmonicOscillator\) outputs \(2,\) \[None\] and model 1 \(FirstOrderLag\) takes \(1,\)"),
        (SeriesModel, [MassSpringDamper(name="msd"), PumpLike(name="pump")],
         r"outputs \(1,\) \[m\] .* takes \(1,\) \[V\]"),
        (ParallelModel, [PumpLike(name="pump"), FirstOrderLag(name="lag")],
         r"model 0 \(PumpLike\) maps \(1,\) \[V\] to \(1,\) \[m3/s\]"),
        (SeriesModel, [FirstOrderLag(name="a"), FirstOrderLag(name="a")],
         r"must be models with distinct names\. Got \['a', 'a'\]"),
        (SeriesModel, [], r"must be a non-empty sequence of ODEModel blocks\. Got \[\]"),
        (ParallelModel, FirstOrderLag(name="lag"),
         r"must be a non-empty sequence of ODEModel blocks\. Got FirstOrderLag"),
        (SeriesModel, "lag", r"must be a non-empty sequence of ODEModel blocks\. Got 'lag'"),
    ],
)
def test_bad_compositions_are_explained(cls, models, message):
    g = tg.Graph("g", dt=0.1)
    g.add(cls(models, name="c"))
    with pytest.raises(tg.ParamError, match=f"The 'models' parameter of {cls.__name__} 'c' .*" + message):
        g.validate()


@pytest.mark.parametrize("cls", [SeriesModel, ParallelModel])
def test_a_composite_without_models_is_refused_at_validate(cls):
    g = tg.Graph("g", dt=0.1)
    block = g.add(cls(name="c"))
    message = (
        rf"The 'models' parameter of {cls.__name__} 'c' must be a non-empty sequence of ODEModel blocks\. Got None\."
    )
    with pytest.raises(tg.ParamError, match=message):
        g.validate()
    with pytest.raises(tg.ParamError, match=message):  # its ports need the models
        block.inp.u  # noqa: B018
