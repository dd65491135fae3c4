"""Neural ODE, neural dynamics and residual blocks: training, Jacobians, save and load."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import twingraph as tg  # noqa: E402
from blocks.ml import (  # noqa: E402
    NeuralDynamics,
    NeuralODE,
    TorchResidual,
    compute_dx_dt_central,
    prepare_dynamics_data,
    prepare_ode_data_from_timeseries,
    train_dynamics,
    train_neural_ode,
    train_neural_ode_trajectory,
    train_residual,
)
from blocks.physics import FirstOrderLag, MassSpringDamper, SeriesModel  # noqa: E402

DT = 0.05


def damped_data(model, batch=8, steps=121, seed=0, forced=False):
    """Trajectories of ``model`` from random initial states: t (T,), x (T, B, 2), u (T, B, 1)."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps) * DT
    x = np.empty((steps, batch, 2))
    x[0] = rng.uniform(-2, 2, (batch, 2))
    u = rng.normal(size=(steps, batch, 1)) if forced else np.zeros((steps, batch, 1))
    p = model.batch_params(batch)
    for k in range(steps - 1):
        x[k + 1] = model.advance(x[k], u[k], t[k], DT, p)
    return t, x, u


def rollout(model, x0, u):
    xs = [x0]
    p = model.batch_params(len(x0))
    for k, u_k in enumerate(u):
        xs.append(model.advance(xs[-1], u_k, k * DT, DT, p))
    return np.stack(xs)


def relative_rmse(a, b):
    """RMSE per state as a fraction of the true signal's range."""
    return np.sqrt(((a - b) ** 2).mean(axis=(0, 1))) / (b.max(axis=(0, 1)) - b.min(axis=(0, 1)))


TRUTH = MassSpringDamper(mass=1.0, damping=0.4, stiffness=4.0)
HELD_OUT = np.array([[1.5, -0.5]])


def test_central_differences_are_second_order():
    t = np.linspace(0.0, 1.0, 11)
    np.testing.assert_allclose(compute_dx_dt_central(t, t**2), 2 * t, atol=1e-12)
    X, y = prepare_ode_data_from_timeseries(t, np.stack([t, t**2], 1), np.ones(11), with_time=True)
    assert X.shape == (11, 4) and y.shape == (11, 2)
    np.testing.assert_array_equal(X[:, 3], t)


@pytest.fixture(scope="module")
def trained_node():
    t, x, u = damped_data(TRUTH)
    model = NeuralODE(states=("s", "v"), n_inputs=1, hidden=(32, 32))
    history = train_neural_ode(model, *prepare_ode_data_from_timeseries(t, x, u), epochs=150, progress=False)
    return model, history, (t, x, u)


def test_neural_ode_learns_a_damped_oscillator_and_its_jacobian(trained_node):
    model, history, _ = trained_node
    assert set(history) == {"epoch", "train_loss", "val_loss", "best_epoch"}
    assert history["val_loss"][history["best_epoch"] - 1] == min(history["val_loss"])
    u_test = np.zeros((120, 1, 1))
    error = relative_rmse(rollout(model, HELD_OUT, u_test), rollout(TRUTH, HELD_OUT, u_test))
    assert np.all(error < 0.02), error
    jac = model.jacobian(HELD_OUT, np.zeros((1, 1)), 0.0, {})
    np.testing.assert_allclose(jac[0], [[0.0, 1.0], [-4.0, -0.4]], atol=0.4)  # the small net, locally
    eps = 1e-6
    fd = np.stack([(model.derivative(HELD_OUT + eps * e, np.zeros((1, 1)), 0.0, {})
                    - model.derivative(HELD_OUT - eps * e, np.zeros((1, 1)), 0.0, {}))[0] / (2 * eps)
                   for e in np.eye(2)], axis=1)
    np.testing.assert_allclose(jac[0], fd, atol=1e-6)


def test_trajectory_matching_lowers_the_rollout_loss(trained_node):
    model, _, (t, x, u) = trained_node
    tuned = NeuralODE(states=("s", "v"), n_inputs=1, hidden=(32, 32))
    tuned.load_weights(model.weights())
    history = train_neural_ode_trajectory(tuned, t, x[:, :4], u[:, :4], horizon=5, epochs=4, lr=1e-4,
                                          validation=0.0, progress=False)
    assert history["train_loss"][-1] < history["train_loss"][0]


def test_ekf_tracks_the_system_a_neural_ode_learned(trained_node):
    ekf_module = pytest.importorskip("blocks.estimation")
    model, _, _ = trained_node
    rng = np.random.default_rng(5)
    steps, noise = 200, 0.1
    u = np.zeros((steps, 1, 1))
    truth = rollout(TRUTH, HELD_OUT, u[:-1])
    y = truth + rng.normal(scale=noise, size=truth.shape)
    g = tg.Graph("twin", dt=DT)
    g.add(tg.Input("u", shape=(1,)))
    g.add(tg.Input("y", shape=(2,)))
    g.add(ekf_module.EKF(model=model, q=1e-5, r=noise**2, p0=1.0, x0=[0.0, 0.0], jacobian="analytic", name="ekf"))
    g.connect("u.value", "ekf.u")
    g.connect("y.value", "ekf.y")
    estimate = tg.Simulator(g).run(inputs={"u": u, "y": y}, steps=steps)["ekf.x_hat"]
    tracking = np.sqrt(((estimate[50:] - truth[50:, 0]) ** 2).mean())
    assert tracking < 0.5 * noise, tracking


def test_training_is_deterministic():
    t, x, u = damped_data(TRUTH, batch=2, steps=41)
    X, y = prepare_ode_data_from_timeseries(t, x, u)
    runs = []
    for _ in range(2):
        model = NeuralODE(states=("s", "v"), n_inputs=1, hidden=(8,))
        runs.append((train_neural_ode(model, X, y, epochs=5, progress=False)["val_loss"], model.weights()))
    assert runs[0][0] == runs[1][0]
    for key, value in runs[0][1].items():
        np.testing.assert_array_equal(value, runs[1][1][key])


def test_neural_dynamics_rolls_out_a_held_out_trajectory():
    t, x, u = damped_data(TRUTH)
    data, dt = prepare_dynamics_data(t, x, u)
    model = NeuralDynamics(n_states=2, n_inputs=1, hidden=(32, 32))
    train_dynamics(model, data, dt=dt, epochs=150, progress=False)
    assert model.dt == pytest.approx(DT)
    u_test = np.zeros((120, 1, 1))
    error = relative_rmse(model.rollout(HELD_OUT, u_test), rollout(TRUTH, HELD_OUT, u_test))
    assert np.all(error < 0.03), error


def test_residual_corrects_a_wrong_damping_at_least_fivefold():
    wrong = MassSpringDamper(mass=1.0, damping=0.05, stiffness=4.0)
    t, x, u = damped_data(TRUTH, batch=16, steps=201, forced=True)
    residual = TorchResidual(model=wrong)
    np.testing.assert_array_equal(residual.derivative(x[0], u[0], 0.0, wrong.batch_params(16)),
                                  wrong.derivative(x[0], u[0], 0.0, wrong.batch_params(16)))  # untrained: physics
    train_residual(residual, t, x, u, epochs=300, progress=False)
    u_test = np.sin(np.arange(200) * DT)[:, None, None]
    truth = rollout(TRUTH, HELD_OUT, u_test)
    physics_error = np.sqrt(((rollout(wrong, HELD_OUT, u_test) - truth) ** 2).mean())
    corrected_error = np.sqrt(((rollout(residual, HELD_OUT, u_test) - truth) ** 2).mean())
    assert physics_error / corrected_error >= 5, (physics_error, corrected_error)
    jac = residual.jacobian(HELD_OUT, np.zeros((1, 1)), 0.0, wrong.batch_params(1))
    np.testing.assert_allclose(jac[0], [[0.0, 1.0], [-4.0, -0.4]], atol=0.15)


def test_residual_on_the_output_and_inside_a_series_model():
    residual = TorchResidual(model=FirstOrderLag(tau=0.5), target="output", hidden=(4,), name="res")
    t = np.arange(50) * DT
    u = np.sin(t)[:, None]
    p = residual.physics.batch_params(1)
    x = np.empty((50, 1))
    x[0] = 0.0
    for k in range(49):
        x[k + 1] = residual.physics.advance(x[k:k + 1], u[k:k + 1], t[k], DT, p)[0]
    train_residual(residual, t, x, u, y=x + 0.3, epochs=200, progress=False)
    np.testing.assert_allclose(residual.observe(x, u, residual.batch_params(50)), x + 0.3, atol=0.02)
    assert residual.direct_feedthrough
    g = tg.Graph("series", dt=DT)
    g.add(tg.Input("u", shape=(1,)))
    g.add(SeriesModel(models=(FirstOrderLag(name="lag"), TorchResidual(model=FirstOrderLag(), name="res")),
                      name="chain"))
    g.connect("u.value", "chain.u")
    history = tg.Simulator(g).run(inputs={"u": np.ones((20, 1, 1))}, steps=20)
    reference = SeriesModel(models=(FirstOrderLag(name="lag"), FirstOrderLag(name="res")))
    x_ref = np.zeros((1, 2))
    for k in range(19):
        x_ref = reference.advance(x_ref, np.ones((1, 1)), k * DT, DT, reference.batch_params(1))
    np.testing.assert_allclose(history["chain.x"][-1], x_ref[0], atol=1e-12)


def test_user_network_runs_but_does_not_save(tmp_path):
    net = torch.nn.Linear(3, 2, dtype=torch.float64)
    g = tg.Graph("user", dt=DT)
    g.add(tg.Input("u", shape=(1,), unit="N"))
    g.add(TorchResidual(model=MassSpringDamper(), net=net, name="res"))
    g.connect("u.value", "res.u")
    tg.Simulator(g).run(inputs={"u": np.ones((3, 1, 1))}, steps=3)
    with pytest.raises(tg.TwinGraphError, match="param 'net' of block 'res'"):
        g.save(tmp_path / "user.json")
    with pytest.raises(tg.TwinGraphError, match=r"float64 torch\.nn\.Module"):
        TorchResidual(model=MassSpringDamper(), net=torch.nn.Linear(3, 2)).network()


@pytest.mark.parametrize("make", [
    lambda: NeuralODE(states=("s", "v"), n_inputs=1, hidden=(8,), seed=3, x0=[1.0, 0.0], name="m"),
    lambda: NeuralDynamics(n_states=2, n_inputs=1, dt=DT, hidden=(8,), seed=3, x0=[1.0, 0.0], name="m"),
    lambda: TorchResidual(model=MassSpringDamper(x0=[1.0, 0.0]), hidden=(8,), seed=3, name="m"),
])
def test_weights_save_and_load_with_identical_outputs(make, tmp_path):
    block = make()
    rng = np.random.default_rng(1)
    block.set_normalization(rng.normal(size=(20, block.net_inputs)), rng.normal(size=(20, block.net_outputs)))
    with torch.no_grad():
        for w in block.network().parameters():
            w.add_(torch.from_numpy(rng.normal(size=tuple(w.shape))))
    g = tg.Graph("net", dt=DT)
    g.add(tg.Input("u", shape=(1,), unit="N"))
    g.add(block)
    g.connect("u.value", "m.u")
    inputs = {"u": rng.normal(size=(15, 1, 1))}
    before = tg.Simulator(g).run(inputs=inputs, steps=15)
    g.save(tmp_path / "net.json")
    assert (tmp_path / "net.npz").exists()
    loaded = tg.load(tmp_path / "net.json")
    after = tg.Simulator(loaded).run(inputs=inputs, steps=15)
    np.testing.assert_array_equal(before["m.x"], after["m.x"])
    assert not np.allclose(before["m.x"][-1], before["m.x"][0])


def test_bad_weights_and_wrong_tick_are_clear_errors():
    model = NeuralDynamics(hidden=(4,), name="nd")
    weights = model.weights()
    weights["net.0.weight"] = np.zeros((3, 3))
    with pytest.raises(tg.WiringError, match=r"weight 'net\.0\.weight' must have shape"):
        model.load_weights(weights)
    with pytest.raises(tg.WiringError, match="missing"):
        model.load_weights({})
    g = tg.Graph("tick", dt=0.2)
    g.add(NeuralDynamics(dt=0.1, name="nd"))
    with pytest.raises(tg.ParamError, match=r"The 'dt' parameter of NeuralDynamics 'nd' must be the graph's dt, 0\.2"):
        tg.Simulator(g).run(steps=1)
