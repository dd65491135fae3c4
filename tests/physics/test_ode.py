"""The ODEModel contract: ports, params, errors, purity of advance, state, and FunctionODE."""

import copy
import inspect

import numpy as np
import pytest

import twingraph as tg
from blocks.catalog import EXAMPLES
from blocks.discrete import UnitDelay
from blocks.math import Gain
from blocks.physics import (
    FirstOrderLag,
    FunctionODE,
    HarmonicOscillator,
    MassSpringDamper,
    ODEModel,
    PumpLike,
)
from blocks.sources import Constant, Input


def physics_types() -> list[type]:
    return [
        cls
        for name, cls in sorted(tg.block_types().items())
        if cls.__module__.startswith("blocks.physics") and issubclass(cls, ODEModel) and cls is not FunctionODE
    ]


def graph_around(model) -> tg.Graph:
    g = tg.Graph("g", dt=0.05)
    g.add(model)
    if model.n_u:
        source = g.add(Constant(value=np.full(model.n_u, 0.5), unit=model.input_unit, name="source"))
        g.connect(source.out.y, model.inp.u)
    return g


def test_every_physics_block_is_registered_and_built_from_defaults():
    names = {cls.__name__ for cls in physics_types()}
    assert {"FirstOrderLag", "DoubleIntegrator", "MassSpringDamper", "TankLevel", "PumpLike", "HarmonicOscillator",
            "SeriesModel", "ParallelModel", "OscillatorChain", "ThermalNetwork", "Pendulum"} <= names
    assert "ODEModel" not in tg.block_types()


@pytest.mark.parametrize("cls", physics_types(), ids=lambda c: c.__name__)
def test_examples_run_and_params_round_trip(cls):
    model = cls(**EXAMPLES[cls.type_name].build().get_params(), name="m")
    again = cls(**model.get_params(), name="m")
    assert repr(again) == repr(model)
    sim = tg.Simulator(graph_around(model), batch=2)
    first = sim.run(steps=20)["m.x"].copy()
    assert np.all(np.isfinite(first))
    sim.reset()  # reset builds the same state again
    np.testing.assert_array_equal(sim.run(steps=20)["m.x"], first)
    assert sim.blocks["m"].x_.shape == (2, model.n_x)
    assert set(sim.blocks["m"].p_) == set(model.parameters)


def test_ports_follow_the_declared_sizes_and_units():
    msd = MassSpringDamper(name="msd")
    assert [p.name for p in msd.inp] == ["u"]
    assert msd.inp.u.signal == tg.Signal(shape=(1,), unit="N")
    assert msd.out.y.signal == tg.Signal(shape=(1,), unit="m")
    assert msd.out.x.signal == tg.Signal(shape=(2,), unit=None)  # m and m/s: no common unit
    osc = HarmonicOscillator(name="osc")
    assert list(osc.inp) == []  # no inputs, no input port
    assert osc.out.y.signal == tg.Signal(shape=(2,), unit=None)  # y = x
    assert (osc.n_x, osc.n_u, osc.n_y) == (2, 0, 2)


def test_advance_is_a_pure_function_of_its_arguments():
    g = tg.Graph("g", dt=0.1)
    pump = g.add(PumpLike(name="pump"))
    volts = g.add(Constant(value=[12.0], unit="V", name="volts"))
    g.connect(volts.out.y, pump.inp.u)
    sim = tg.Simulator(g, batch=2)
    sim.run(steps=10)
    model = sim.blocks["pump"]
    state = copy.deepcopy(model.state_dict())
    x = np.array([[150.0, 7e-4], [150.0, 7e-4]])
    p = {**model.p_, "efficiency": np.array([0.9, 0.7])}  # an estimator's own parameter estimates
    u = np.full((2, 1), 12.0)
    first = model.advance(x, u, 0.3, 0.1, p)
    np.testing.assert_array_equal(model.advance(x, u, 0.3, 0.1, p), first)
    np.testing.assert_array_equal(x, [[150.0, 7e-4], [150.0, 7e-4]])  # inputs untouched
    np.testing.assert_array_equal(model.x_, state["x_"])  # the block's own state untouched
    fresh = PumpLike()  # never reset: advance needs nothing from reset()
    np.testing.assert_array_equal(fresh.advance(x, u, 0.3, 0.1, p), first)
    np.testing.assert_array_equal(fresh.observe(first, u, p), first[:, 1:])
    assert first[0, 1] > first[1, 1]  # the worn pump delivers less


def test_snapshot_and_restore_resume_exactly():
    g = tg.Graph("g", dt=0.05)
    msd = g.add(MassSpringDamper(x0=[1.0, 0.0], stiffness=[4.0, 9.0], name="msd"))
    force = g.add(Input("force", shape=(1,), unit="N"))
    g.connect(force.out.value, msd.inp.u)
    forces = np.sin(np.arange(60) * 0.3)[:, None]
    straight = tg.Simulator(g, batch=2).run(inputs={"force": forces})["msd.x"].copy()
    first = tg.Simulator(g, batch=2)
    first.run(inputs={"force": forces[:25]})
    snap = first.snapshot()
    second = tg.Simulator(g, batch=2)
    second.restore(snap)
    rest = second.run(inputs={"force": forces[25:]})["msd.x"]
    np.testing.assert_array_equal(rest, straight[25:])


def test_an_ode_closes_a_feedback_loop():
    # u = -2 y through a gain, legal because the lag has no feedthrough. The graph exchanges u once per
    # tick (co-simulation), so over a tick the lag sees u = -2 y_k held: y_{k+1} = (3 e^{-dt} - 2) y_k.
    g = tg.Graph("loop", dt=0.01)
    lag = g.add(FirstOrderLag(tau=1.0, x0=1.0, substeps=2, name="lag"))
    gain = g.add(Gain(k=-2.0, name="k"))
    g.connect(lag.out.y, gain.inp.u)
    g.connect(gain.out.y, lag.inp.u)
    hist = tg.Simulator(g).run(steps=100)
    np.testing.assert_allclose(hist["lag.y"][:, 0], (3 * np.exp(-0.01) - 2) ** np.arange(100), rtol=1e-10)


def test_solver_params_are_declared_once_and_are_params_of_every_model():
    params = list(FirstOrderLag().get_params())
    assert params == ["tau", "gain", "x0", "integrator", "substeps", "method", "rtol", "atol"]
    assert list(inspect.signature(FirstOrderLag).parameters) == [*params, "name"]
    assert repr(FirstOrderLag(substeps=4, name="lag")) == (
        "FirstOrderLag(tau=1.0, gain=1.0, x0=0.0, integrator='rk4', substeps=4, method='RK45', rtol=1e-06, "
        "atol=1e-09, name='lag')"
    )
    g = tg.Graph("g", dt=0.1)
    g.add(HarmonicOscillator(name="osc"))
    doc = g.to_dict()
    saved = {"omega": 2.0, "x0": [1.0, 0.0], "integrator": "euler", "substeps": 3, "method": "RK45",
             "rtol": 1e-06, "atol": 1e-09}  # as files hold them: the solver params at the top level
    doc["blocks"][0]["params"] = saved
    assert tg.from_dict(doc).blocks["osc"].get_params() == saved
    doc["blocks"][0]["params"] = {"substep": 3}
    with pytest.raises(tg.LoadError, match="has no param 'substep'"):
        tg.from_dict(doc)


def test_integrator_choice_is_validated_with_the_valid_values():
    model = PumpLike(integrator="foo", name="pump")
    message = "The 'integrator' parameter of PumpLike 'pump' must be one of ['euler', 'rk4', 'solve_ivp']. Got 'foo'."
    with pytest.raises(tg.ParamError) as err:
        _ = model.out.y.signal
    assert str(err.value) == message
    with pytest.raises(tg.ParamError, match=r"must be one of \['euler'"):
        model.advance(np.zeros((1, 2)), np.zeros((1, 1)), 0.0, 0.1, model.batch_params(1))
    g = graph_around(model)
    with pytest.raises(tg.ParamError, match=r"The 'integrator' parameter of PumpLike 'pump'"):
        g.validate()


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(method="Euler"),
         r"'method' parameter of FirstOrderLag 'lag' must be one of "
         r"\['RK45', 'RK23', 'DOP853', 'Radau', 'BDF', 'LSODA'\]\. Got 'Euler'"),
        (dict(substeps=0), r"'substeps' parameter of FirstOrderLag 'lag' must be an int >= 1\. Got 0\.$"),
        (dict(substeps=2.5), r"'substeps' .* must be an int >= 1\. Got 2.5"),
        (dict(substeps="2"), r"'substeps' .* must be an int >= 1\. Got '2'"),
        (dict(rtol=0.0), r"'rtol' parameter of FirstOrderLag 'lag' must be a number > 0\. Got 0.0"),
        (dict(atol=float("nan")), r"'atol' parameter of FirstOrderLag 'lag' must be a number > 0\. Got nan"),
        (dict(tau=-1.0), r"'tau' parameter of FirstOrderLag 'lag' must be a number > 0, or one per asset\. Got -1.0"),
        (dict(tau="abc"), r"'tau' parameter of FirstOrderLag 'lag' must be a number > 0, or one per asset\. Got 'abc'"),
        (dict(tau=[1.0, "2"]), r"'tau' .* must be a number > 0, or one per asset\. Got \[1.0, '2'\]"),
        (dict(tau=[1.0, 0.0]), r"'tau' .* must be a number > 0, or one per asset\. Got \[1.0, 0.0\]"),
        (dict(tau=[[1.0]]), r"'tau' .* must be a number > 0, or one per asset"),
        (dict(tau=[]), r"'tau' .* must be a number > 0, or one per asset"),
        (dict(gain=float("inf")), r"'gain' parameter of FirstOrderLag 'lag' must be a number, or one per asset"),
        (dict(gain=None), r"'gain' .* must be a number, or one per asset\. Got None"),
        (dict(x0=[1.0, 2.0]),
         r"'x0' parameter of FirstOrderLag 'lag' must be a number, one number per state \['y'\], or one such row "
         r"per asset\. Got \[1.0, 2.0\]\.$"),
        (dict(x0="hot"), r"'x0' parameter of FirstOrderLag 'lag' must be a number"),
        (dict(x0=float("nan")), r"'x0' parameter of FirstOrderLag 'lag' must be a number"),
        (dict(x0=[[1.0], [2.0, 3.0]]), r"'x0' parameter of FirstOrderLag 'lag' must be a number"),
    ],
)
def test_bad_params_are_refused_at_validate_naming_block_and_param(params, message):
    model = FirstOrderLag(**params, name="lag")
    with pytest.raises(tg.ParamError, match=message):
        model.check_params()
    with pytest.raises(tg.ParamError, match=message):
        graph_around(model).validate()


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(tau=[1.0, 2.0]),
         r"'tau' parameter of FirstOrderLag 'lag' must be a number or a sequence of 3 numbers "
         r"\(one per asset\)\. Got \[1.0, 2.0\]"),
        (dict(x0=[[1.0], [2.0]]), r"'x0' parameter of FirstOrderLag 'lag' must be .* one such row per asset "
                                  r"\(3 rows\)\. Got \[\[1.0\], \[2.0\]\]"),
    ],
)
def test_per_asset_values_are_checked_against_the_batch(params, message):
    model = FirstOrderLag(**params, name="lag")
    graph_around(model).validate()  # valid for some number of assets
    with pytest.raises(tg.ParamError, match=message):
        tg.Simulator(graph_around(model), batch=3)


def test_parameters_may_differ_per_asset_and_x0_per_state_or_asset():
    model = MassSpringDamper(mass=[1.0, 2.0, 4.0], x0=[[1.0, 0.0], [2.0, 0.0], [3.0, 0.5]])
    p = model.batch_params(3)
    np.testing.assert_array_equal(p["mass"], [1.0, 2.0, 4.0])
    np.testing.assert_array_equal(p["stiffness"], [4.0, 4.0, 4.0])
    np.testing.assert_array_equal(model.initial_state(3)[:, 0], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(MassSpringDamper(x0=[1.0, -1.0]).initial_state(2), [[1.0, -1.0], [1.0, -1.0]])


def lag(x, u, t, p):
    return (u - x) / p["tau"][:, None]


def test_function_ode_runs_like_a_subclass():
    model = FunctionODE(lag, states=("y",), n_inputs=1, params={"tau": [0.5, 1.0]}, substeps=4, name="f")
    reference = FirstOrderLag(tau=[0.5, 1.0], substeps=4, name="f")
    runs = [tg.Simulator(graph_around(m), batch=2).run(steps=40)["f.y"] for m in (model, reference)]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert model.parameters == ("tau",)


def test_function_ode_with_an_output_map_that_uses_the_input_has_feedthrough():
    def h(x, u, p):
        return x + u

    model = FunctionODE(lag, h=h, states=("y",), n_inputs=1, n_outputs=1, params={"tau": 1.0},
                        direct_feedthrough=True, name="f")
    g = tg.Graph("g", dt=0.1)
    g.add(model)
    delay = g.add(UnitDelay(name="d"))
    g.connect(model.out.y, delay.inp.u)
    g.connect(delay.out.y, model.inp.u)
    assert tg.Simulator(g).plan.order.index("d") < tg.Simulator(g).plan.order.index("f")
    g2 = tg.Graph("g2", dt=0.1)
    g2.add(FunctionODE(lag, h=h, states=("y",), n_inputs=1, n_outputs=1, params={"tau": 1.0},
                       direct_feedthrough=True, name="f"))
    g2.connect("f.y", "f.u")
    with pytest.raises(tg.ValidationError, match="Algebraic loop through blocks 'f' -> 'f'"):
        g2.validate()


def test_function_ode_checks_what_its_functions_return():
    def flat(x, u, t, p):
        return x[:, 0]

    model = FunctionODE(flat, states=("a", "b"), name="f")
    message = (
        r"FunctionODE 'f': derivative\(x, u, t, p\) returned shape \(3,\) for x of shape \(3, 2\); "
        r"it must return shape \(3, 2\)"
    )
    with pytest.raises(tg.WiringError, match=message):
        tg.Simulator(graph_around(model), batch=3)



@pytest.mark.parametrize(
    "params, message",
    [
        (dict(h=lambda x, u, p: x), "'n_outputs' parameter of FunctionODE 'f' must be the size of y"),
        (dict(f=3), "'f' parameter of FunctionODE 'f' must be a callable. Got 3."),
        (dict(jac="d/dx"), "'jac' parameter of FunctionODE 'f' must be a callable or None. Got 'd/dx'."),
        (dict(states="y"), "'states' parameter of FunctionODE 'f' must be a non-empty sequence of distinct names"),
        (dict(states=("y", "y")), "'states' parameter"),
        (dict(state_units=("m", "s")), r"'state_units' parameter .* must be None or one unit \(str or None\) per "
                                       r"state, 1 of them\. Got \('m', 's'\)"),
        (dict(n_inputs=-1), "'n_inputs' parameter of FunctionODE 'f' must be an int >= 0. Got -1."),
        (dict(n_inputs=1.5), "'n_inputs' parameter .* must be an int >= 0. Got 1.5."),
        (dict(n_outputs=0), "'n_outputs' parameter .* must be an int >= 1. Got 0."),
        (dict(input_unit=1), r"'input_unit' parameter .* must be a unit \(str\) or None. Got 1."),
        (dict(params={"tau": "slow"}), "'tau' parameter of FunctionODE 'f' must be a number, or one per asset"),
        (dict(params=[1.0]), "'params' parameter .* must be None or a dict"),
        (dict(direct_feedthrough="yes"), "'direct_feedthrough' parameter .* must be True or False"),
    ],
)
def test_function_ode_params_are_checked_at_validate(params, message):
    model = FunctionODE(**{"f": lag, "states": ("y",), "n_inputs": 1, "params": {"tau": 1.0}, **params}, name="f")
    with pytest.raises(tg.ParamError, match=message):
        model.check_params()

