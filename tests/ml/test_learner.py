"""Learner: surrogates of a physics block, of a graph and of recorded data, usable as physics."""

import numpy as np
import pytest

import twingraph as tg
from blocks.estimation import EKF
from blocks.math import Gain
from blocks.ml import Learner, NeuralODE, SymbolicODE
from blocks.physics import MassSpringDamper

DT = 0.05
TRUTH = MassSpringDamper(mass=1.0, damping=0.4, stiffness=4.0)
SEARCH = {"population_size": 300, "generations": 8}


def jacobian_and_input_gain(model: SymbolicODE) -> tuple[np.ndarray, float]:
    """∂f/∂x and ∂(dv/dt)/∂u of a learned linear oscillator, read at a random state."""
    x = np.random.default_rng(0).normal(size=(1, 2))
    u = np.zeros((1, model.n_u))
    f0 = model.derivative(x, u, 0.0, {})
    gain = (model.derivative(x, u + 1.0, 0.0, {}) - f0)[0, 1]
    return model.jacobian(x, u, 0.0, {})[0], gain


def test_a_symbolic_surrogate_of_a_block_is_its_physics():
    pytest.importorskip("gplearn")
    learner = Learner(method="symbolic", train_options=SEARCH)
    model = learner.learn(dynamics=TRUTH, trajectories=8, steps=100, x0_range=(-2.0, 2.0), name="surrogate")
    assert isinstance(model, SymbolicODE) and model.name == "surrogate"
    assert model.states == ("s", "v") and model.input_names == ("u0",)
    print(model.equations())
    jac, gain = jacobian_and_input_gain(model)
    np.testing.assert_allclose(jac, [[0.0, 1.0], [-4.0, -0.4]], rtol=1e-3, atol=1e-9)  # exact derivative targets
    assert gain == pytest.approx(1.0, rel=1e-3)
    X, y = learner.data_
    assert X.shape == (8 * 101, 3) and y.shape == (8 * 101, 2)
    assert learner.history_["formulas"] == list(model.formulas)
    g = tg.Graph("twin", dt=DT)  # it goes into an estimator in place of the physics model
    g.add(tg.Input("u", shape=(1,)))
    g.add(tg.Input("y", shape=(2,)))
    g.add(EKF(model=model, name="ekf"))
    g.connect("u.value", "ekf.u")
    g.connect("y.value", "ekf.y")
    g.validate()


def test_a_graph_is_sampled_through_its_inputs_and_ode_states():
    pytest.importorskip("gplearn")
    g = tg.Graph("plant", dt=DT)
    g.add(tg.Input("F", shape=(1,)))
    g.add(Gain(k=2.0, name="amplifier"))
    g.add(MassSpringDamper(mass=1.0, damping=0.4, stiffness=4.0, name="msd"))
    g.connect("F.value", "amplifier.u")
    g.connect("amplifier.y", "msd.u")
    before = g.to_dict()
    learner = Learner(method="symbolic", train_options=SEARCH)
    model = learner.learn(dynamics=g, trajectories=8, steps=100, x0_range=(-2.0, 2.0), hold=10)
    assert model.states == ("msd_s", "msd_v")
    print(model.equations())
    jac, gain = jacobian_and_input_gain(model)
    np.testing.assert_allclose(jac, [[0.0, 1.0], [-4.0, -0.4]], rtol=0.01, atol=0.01)  # central differences
    assert gain == pytest.approx(2.0, rel=0.01)  # through the amplifier
    assert len(learner.data_[0]) == 8 * 90  # ends and the 9 samples at an input change left out of 101
    assert g.to_dict() == before  # the graph itself is untouched


def test_a_neural_surrogate_from_recorded_data():
    pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    t = np.arange(121) * DT
    x = np.empty((121, 8, 2))
    x[0] = rng.uniform(-2, 2, (8, 2))
    for k in range(120):
        x[k + 1] = TRUTH.advance(x[k], np.zeros((8, 1)), t[k], DT, TRUTH.batch_params(8))
    learner = Learner(model_options={"hidden": (32, 32)}, train_options={"epochs": 150, "progress": False})
    model = learner.learn(data=(t, x), states=("s", "v"))
    assert isinstance(model, NeuralODE) and model.states == ("s", "v") and model.n_inputs == 0
    states = x[::10].reshape(-1, 2)
    error = model.derivative(states, np.zeros((len(states), 0)), 0.0, {}) - TRUTH.derivative(
        states, np.zeros((len(states), 1)), 0.0, TRUTH.batch_params(len(states)))
    assert np.sqrt((error**2).mean()) < 0.03 * np.abs(x).max(), error  # 1.1 % measured
    assert learner.history_["best_epoch"] > 0


@pytest.mark.parametrize("kwargs, message", [
    ({}, "either dynamics= .* or data="),
    ({"dynamics": TRUTH, "data": (np.arange(3.0), np.zeros((3, 1)))}, "not both or neither"),
    ({"dynamics": Gain()}, "samples an ODE model block or a Graph"),
    ({"dynamics": TRUTH, "hold": 0}, "hold >= 1"),
    ({"dynamics": TRUTH, "x0_range": (1.0, -1.0)}, "initial state range must have low <= high"),
])
def test_misuse_is_a_clear_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Learner(method="symbolic").learn(**kwargs)
    with pytest.raises(ValueError, match=r"'method' parameter of Learner must be one of \['neural_ode', 'symbolic'\]"):
        Learner(method="sindy").learn(dynamics=TRUTH)


def test_a_graph_without_ode_blocks_cannot_be_learned():
    g = tg.Graph("static", dt=DT)
    g.add(tg.Input("u", shape=(1,)))
    g.add(Gain(name="k"))
    g.connect("u.value", "k.u")
    with pytest.raises(ValueError, match="Graph 'static' has no ODE model block"):
        Learner(method="symbolic").learn(dynamics=g)
