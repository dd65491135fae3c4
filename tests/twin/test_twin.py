"""TwinSystem builds the standard graph from the library's blocks and steps it like the hand-wired one."""

import numpy as np
import pytest

import twingraph as tg
from blocks import TwinResult, TwinSystem
from blocks.anomaly import CUSUM
from blocks.estimation import EKF, Residual
from blocks.health import RUL, ParameterHealth
from blocks.math import Gain
from blocks.physics import FunctionODE, MassSpringDamper, PumpLike

PUMP_EKF = {"estimate": ("efficiency",), "q": 0.0, "q_params": 1e-6, "r": 1e-12, "p0": 0.0, "p0_params": 0.1}


def test_twin_matches_the_hand_wired_graph_and_survives_missing_samples():
    pump = PumpLike(name="pump")
    twin = TwinSystem(physics=pump, estimator=EKF(model=pump, **PUMP_EKF), anomaly=CUSUM(k=1.0, h=8.0),
                      health=ParameterHealth(), rul=RUL(window=20, min_samples=5), dt=0.05)
    twin.initialize(x0=[0.0, 0.0])
    g = tg.Graph("wired", dt=0.05)
    ekf = g.add(EKF(model=pump, **PUMP_EKF, x0=[0.0, 0.0], name="ekf"))
    res = g.add(Residual(name="res"))
    cusum = g.add(CUSUM(k=1.0, h=8.0, name="cusum"))
    health = g.add(ParameterHealth(name="hi"))
    rul = g.add(RUL(window=20, min_samples=5, name="life"))
    g.connect(g.add(tg.Input("u", shape=(1,), unit="V")).out.value, ekf.inp.u)
    g.connect(g.add(tg.Input("y", shape=(1,), unit="m3/s")).out.value, ekf.inp.y)
    g.connect(ekf.out.innovation, res.inp.innovation)
    g.connect(ekf.out.S, res.inp.S)
    g.connect(res.out.residual, cusum.inp.u)
    g.connect(ekf.out.params, health.inp.params)
    g.connect(health.out.hi, rul.inp.hi)
    sim = tg.Simulator(g)
    truth = PumpLike(efficiency=0.85)
    x, p = truth.initial_state(1), truth.batch_params(1)
    for k in range(100):
        y = np.nan if k % 7 == 3 else truth.observe(x, None, p)[0, 0]
        result = twin.step(u=12.0, measurement=y)
        wired = sim.step(u=12.0, y=y)
        x = truth.advance(x, np.full((1, 1), 12.0), 0.0, 0.05, p)
        for field, port in (("state", "ekf.x_hat"), ("params", "ekf.params"), ("anomaly", "cusum.score"),
                            ("alarm", "cusum.alarm"), ("health_indicator", "hi.hi"), ("rul", "life.rul"),
                            ("rul_lower", "life.rul_lower"), ("rul_upper", "life.rul_upper")):
            np.testing.assert_array_equal(getattr(result, field), wired[port])
        np.testing.assert_array_equal(result.params_std, np.sqrt(wired["ekf.P"][2:]))  # P = [x (2), params]
    assert isinstance(result, TwinResult)
    assert abs(result.params[0] - 0.85) < 1e-3 and abs(result.health_indicator - 0.625) < 3e-3
    assert 0 < result.params_std[0] < 0.01 and not result.alarm.any()
    assert np.isinf(result.rul)  # the RUL block's value when the trend never reaches the threshold
    assert twin.history["health.hi"].shape == (100,)
    innovation, S = twin.history["estimator.innovation"], twin.history["estimator.S"]
    np.testing.assert_array_equal(twin.history["normalized.residual"], innovation / np.sqrt(S))
    assert (twin.history["normalized.residual"][3::7] == 0).all()  # missing samples: no evidence


def test_params_std_is_the_root_of_the_P_diagonal_of_the_estimated_params_for_a_fleet():
    pump = PumpLike()
    twin = TwinSystem(physics=pump, estimator=EKF(estimate=("friction", "efficiency"), p0_params=[1e-8, 0.04]),
                      dt=0.05, batch=3)
    result = twin.step(u=np.full((3, 1), 12.0), measurement=np.full((3, 1), 1e-4))
    P = twin.history["estimator.P"][-1]
    assert result.params.shape == result.params_std.shape == (3, 2)
    np.testing.assert_array_equal(result.params_std, np.sqrt(P[:, 2:]))
    assert result.anomaly is result.alarm is result.health_indicator is result.rul is result.rul_upper is None


def test_mass_spring_damper_with_an_ekf_without_model_tracks_the_position():
    msd = MassSpringDamper()
    estimator = EKF()
    twin = TwinSystem(physics=msd, estimator=estimator, dt=0.01)
    assert estimator.model is msd and twin.graph.blocks["u"].unit == "N"
    truth = MassSpringDamper()
    x, p = np.array([[0.5, 0.0]]), truth.batch_params(1)
    for _ in range(300):
        result = twin.step(u=1.0, measurement=truth.observe(x, None, p)[0])
        x = truth.advance(x, np.ones((1, 1)), 0.0, 0.01, p)
    assert abs(result.state[0] - x[0, 0]) < 1e-2 and result.params is None and result.params_std is None


def test_no_estimator_is_an_ekf_on_the_twins_model():
    msd = MassSpringDamper(name="msd")
    twin = TwinSystem(physics=msd, dt=0.01)
    estimator = twin.graph.blocks["estimator"]
    assert type(estimator) is EKF and estimator.model is msd and estimator.estimate == ()


def test_initial_state_is_the_estimators_x0_param():
    twin = TwinSystem(physics=MassSpringDamper(), dt=0.01)
    twin.initialize(x0=[0.25, -1.0])
    assert twin.estimator.x0 == [0.25, -1.0]
    np.testing.assert_array_equal(twin.step(u=0.0, measurement=np.nan).state, [0.25, -1.0])
    twin.initialize()  # keeps the param
    np.testing.assert_array_equal(twin.step(u=0.0, measurement=np.nan).state, [0.25, -1.0])


def test_a_bad_initial_state_is_a_param_error_of_the_estimator():
    twin = TwinSystem(physics=MassSpringDamper(), dt=0.01)
    with pytest.raises(tg.ParamError, match="The 'x0' parameter of EKF 'estimator' must be"):
        twin.initialize(x0=[1.0, 2.0, 3.0])
    custom = TwinSystem(physics=flow(), estimator=Differencer(), dt=1.0)
    with pytest.raises(tg.ParamError, match="The 'estimator' parameter of TwinSystem 'twin' must be a filter with "
                                            "an 'x0' param"):
        custom.initialize(x0=[1.0])


def test_an_estimator_on_another_model_is_an_error_naming_both():
    with pytest.raises(tg.ParamError) as error:
        TwinSystem(physics=MassSpringDamper(name="msd"), estimator=EKF(model=PumpLike(name="pump")), dt=0.01)
    assert str(error.value) == (
        "The 'estimator' parameter of TwinSystem 'twin' must be built on the twin's model MassSpringDamper 'msd' "
        "(or have model=None). Got EKF 'estimator' on PumpLike 'pump'."
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"physics": Gain(name="k")}, "The 'physics' parameter of TwinSystem 'twin' must be an ODEModel block"),
        ({"estimator": "ekf"}, "The 'estimator' parameter of TwinSystem 'twin' must be a Block"),
        ({"anomaly": 3.0}, "The 'anomaly' parameter of TwinSystem 'twin' must be a Block or None. Got 3.0."),
        ({"rul": RUL()}, "The 'rul' parameter of TwinSystem 'twin' must be None when 'health' is None"),
        ({"health": ParameterHealth()}, "The 'health' parameter of TwinSystem 'twin' must be None when the "
                                        "estimator has no 'params' port"),
        ({"residual": MassSpringDamper()}, "The 'residual' parameter of TwinSystem 'twin' must be an ODEModel "
                                           "correcting a 'model' param"),
        ({"batch": 0}, "The 'batch' parameter of TwinSystem 'twin' must be an int >= 1. Got 0."),
        ({"max_len": "lots"}, "The 'max_len' parameter of TwinSystem 'twin' must be an int >= 1. Got 'lots'."),
    ],
)
def test_bad_params_are_param_errors_naming_the_param(kwargs, message):
    with pytest.raises(tg.ParamError, match=message.replace("(", r"\(").replace(")", r"\)")):
        TwinSystem(**{"physics": MassSpringDamper(), "dt": 0.01, **kwargs})


def test_bad_dt_is_refused():
    with pytest.raises(tg.ParamError, match="dt"):
        TwinSystem(physics=MassSpringDamper(), dt=float("inf"))


def test_the_input_u_is_given_exactly_when_the_model_has_one():
    twin = TwinSystem(physics=MassSpringDamper(), dt=0.01)
    with pytest.raises(tg.SimulationError, match="TwinSystem 'twin' takes an input u every step"):
        twin.step(measurement=0.0)
    tank = FunctionODE(lambda x, u, t, p: -x, states=("h",), state_units=("m",))
    with pytest.raises(tg.SimulationError, match="takes no input u"):
        TwinSystem(physics=tank, dt=0.1).step(u=1.0, measurement=0.0)


class Differencer(tg.Block, type_name="tests.twin.Differencer"):
    """A stand-in estimator without ``S`` nor ``model``: ``x_hat = y``, ``innovation = y - y_prev``."""

    inputs = {"y": tg.Signal(shape=(1,), unit="m3/s")}
    outputs = {"x_hat": tg.Signal(shape=(1,), unit="m3/s"), "innovation": tg.Signal(shape=(1,), unit="m3/s")}

    def reset(self, ctx):
        self.y_ = np.zeros((ctx.batch, 1))

    def output(self, t, inp, out):
        out.x_hat[...] = inp.y
        out.innovation[...] = inp.y - self.y_

    def update(self, t, inp):
        self.y_[...] = inp.y


def flow():
    return FunctionODE(lambda x, u, t, p: -x, states=("q",), state_units=("m3/s",))


def test_an_estimator_without_S_feeds_its_raw_innovation():
    twin = TwinSystem(physics=flow(), estimator=Differencer(), anomaly=CUSUM(k=0.0, h=10.0), dt=1.0)
    scores = [float(twin.step(measurement=y).anomaly[0]) for y in (1.0, 3.0, 2.0)]
    assert "normalized" not in twin.graph.blocks
    assert scores == [1.0, 3.0, 2.0]  # g⁺ of the innovations 1, 2, -1 [m3/s]


def test_history_is_bounded_by_default_and_flat_over_a_long_run():
    assert TwinSystem(physics=flow(), dt=1.0).max_len == 10_000
    twin = TwinSystem(physics=flow(), estimator=Differencer(), anomaly=CUSUM(k=0.0, h=10.0), dt=1.0, max_len=500)
    measurements = np.sin(np.arange(5_000))

    def sizes():
        return {port: array.nbytes for port, array in twin.history.to_numpy().items()}

    for y in measurements[:1_000]:
        twin.step(measurement=y)
    assert twin.history.max_len == 500 and len(twin.history) == 500
    after_1k = sizes()
    for y in measurements[1_000:]:
        twin.step(measurement=y)
    assert sizes() == after_1k and len(twin.history) == 500
    assert twin.history.ticks[0] == 4_500 and twin.history.ticks[-1] == 4_999
    np.testing.assert_array_equal(twin.history["estimator.x_hat"][:, 0], measurements[4_500:])


def test_log_none_keeps_no_history_and_max_len_none_keeps_every_tick():
    quiet = TwinSystem(physics=flow(), estimator=Differencer(), dt=1.0, log=None)
    assert quiet.step(measurement=1.0).state == 1.0 and quiet.history.ports == []
    full = TwinSystem(physics=flow(), estimator=Differencer(), dt=1.0, max_len=None)
    for y in range(12):
        full.step(measurement=float(y))
    assert full.history.max_len is None and len(full.history) == 12


def constant_force_residual(physics, force):
    """A TorchResidual adding ``force / mass`` to the acceleration: the built-in MLP starts at zero, so the
    correction is the output mean."""
    from blocks.ml import TorchResidual

    residual = TorchResidual(model=physics, hidden=(4,), name="residual")
    residual.set_normalization(outputs=np.tile([0.0, force], (2, 1)))
    return residual


def test_a_residual_is_composed_with_the_physics_and_the_estimator_runs_on_both():
    pytest.importorskip("torch")
    from blocks.ml import TorchResidual

    msd = MassSpringDamper(name="msd")
    residual = TorchResidual(hidden=(4,))
    estimator = EKF(estimate=("stiffness",))
    TwinSystem(physics=msd, residual=residual, estimator=estimator, dt=0.01)
    assert residual.model is msd and estimator.model is residual

    # The asset feels an extra 2 N the physics does not know; the trained residual does.
    truth = constant_force_residual(MassSpringDamper(), 2.0)
    settings = {"estimate": ("stiffness",), "q": 1e-8, "q_params": 1e-6, "r": 1e-8, "p0": 1e-6, "p0_params": 1.0}
    physics = MassSpringDamper(stiffness=3.0)
    corrected = constant_force_residual(physics, 2.0)
    hybrid = TwinSystem(physics=physics, residual=corrected, estimator=EKF(**settings), dt=0.1)
    physics_only = TwinSystem(physics=MassSpringDamper(stiffness=3.0), estimator=EKF(**settings), dt=0.1)
    x, p = truth.initial_state(1), truth.batch_params(1)
    for k in range(100):
        u = np.array([[1.0 + np.sin(0.07 * k)]])
        y = truth.observe(x, u, p)[0]
        with_ml, without_ml = hybrid.step(u=u[0], measurement=y), physics_only.step(u=u[0], measurement=y)
        x = truth.advance(x, u, 0.0, 0.1, p)
    assert abs(with_ml.params[0] - 4.0) < 1e-2  # the true stiffness [N/m]
    assert abs(without_ml.params[0] - 4.0) > 0.5  # the physics alone explains the extra force by the stiffness


def test_a_residual_on_another_physics_or_an_estimator_on_the_bare_physics_is_an_error():
    pytest.importorskip("torch")
    from blocks.ml import TorchResidual

    msd = MassSpringDamper(name="msd")
    with pytest.raises(tg.ParamError) as error:
        TwinSystem(physics=msd, residual=TorchResidual(model=MassSpringDamper(name="other"), name="res"), dt=0.01)
    assert str(error.value) == (
        "The 'residual' parameter of TwinSystem 'twin' must be built on the twin's physics MassSpringDamper 'msd' "
        "(or have model=None). Got TorchResidual 'res' on MassSpringDamper 'other'."
    )
    with pytest.raises(tg.ParamError) as error:
        TwinSystem(physics=msd, residual=TorchResidual(name="res"), estimator=EKF(model=msd), dt=0.01)
    assert str(error.value) == (
        "The 'estimator' parameter of TwinSystem 'twin' must be built on the twin's model TorchResidual 'res' "
        "(or have model=None). Got EKF 'estimator' on MassSpringDamper 'msd'."
    )


def test_a_twin_with_a_fresh_residual_steps_and_its_graph_saves_and_loads(tmp_path):
    pytest.importorskip("torch")
    from blocks.ml import TorchResidual

    twin = TwinSystem(physics=MassSpringDamper(), residual=TorchResidual(hidden=(4,)), anomaly=CUSUM(),
                      estimator=EKF(estimate=("stiffness",)), dt=0.1)
    twin.initialize(x0=[0.1, 0.0])
    twin.graph.save(tmp_path / "twin.json")
    sim = tg.Simulator(tg.load(tmp_path / "twin.json"))
    for y in (0.1, 0.12, np.nan, 0.15):
        result, loaded = twin.step(u=1.0, measurement=y), sim.step(u=1.0, y=y)
        np.testing.assert_array_equal(result.state, loaded["estimator.x_hat"])
        np.testing.assert_array_equal(result.anomaly, loaded["anomaly.score"])
