"""The EKF against filterpy, its consistency (NIS), missing and infinite measurements, parameters, bad params."""

import re

import numpy as np
import pytest
from filterpy.kalman import ExtendedKalmanFilter
from scipy.stats import chi2

import twingraph as tg
from blocks.estimation import EKF, UKF
from blocks.math import Gain
from blocks.physics import FunctionODE, MassSpringDamper, PumpLike, TankLevel
from blocks.sources import Input

from .problems import DT, filter_graph, missing_measurements, pendulum, simulate_linear


def rk4_matrices(a: np.ndarray, b: np.ndarray, h: float):
    """The exact one-step RK4 map of ``ẋ = A x + b u``: ``x⁺ = Φ x + Γ u``."""
    ah = a * h
    eye = np.eye(len(a))
    phi = eye + ah + ah @ ah / 2 + ah @ ah @ ah / 6 + ah @ ah @ ah @ ah / 24
    gamma = h * (eye + ah / 2 + ah @ ah / 6 + ah @ ah @ ah / 24) @ b
    return phi, gamma


def test_linear_ekf_matches_filterpy_to_1e9():
    mass, damping, stiffness = 1.0, 0.5, 4.0
    model = MassSpringDamper(mass=mass, damping=damping, stiffness=stiffness)
    q, r, p0 = np.array([1e-4, 2e-4]), 1e-2, 0.5
    ekf = EKF(model=model, q=q, r=r, p0=p0, x0=[0.3, -0.1], name="ekf")
    sim = tg.Simulator(filter_graph(ekf), batch=2)
    rng = np.random.default_rng(1)
    steps = 200
    u = rng.normal(size=(steps, 2, 1))
    y = np.sin(0.1 * np.arange(steps))[:, None, None] + 0.1 * rng.normal(size=(steps, 2, 1))
    a = np.array([[0.0, 1.0], [-stiffness / mass, -damping / mass]])
    phi, gamma = rk4_matrices(a, np.array([[0.0], [1.0 / mass]]), DT)
    reference = []
    for _ in range(2):
        fk = ExtendedKalmanFilter(dim_x=2, dim_z=1, dim_u=1)
        fk.x = np.array([[0.3], [-0.1]])
        fk.P = np.eye(2) * p0
        fk.F, fk.B, fk.Q, fk.R = phi, gamma, np.diag(q), np.array([[r]])
        reference.append(fk)
    worst = 0.0
    for k in range(steps):
        out = sim.step(u=u[k], y=y[k])
        for i, fk in enumerate(reference):
            fk.update(y[k, i], lambda x: np.array([[1.0, 0.0]]), lambda x: x[:1])
            fk.predict(u=u[k, i][:, None])  # a column: filterpy computes B @ u
            state = sim.blocks["ekf"]
            for ours, theirs in (
                (out["ekf.x_hat"][i], fk.x_post[:, 0]),
                (out["ekf.P"][i], np.diag(fk.P_post)),
                (state.z_[i], fk.x[:, 0]),
                (state.P_[i], fk.P),
            ):
                worst = max(worst, np.max(np.abs(ours - theirs) / np.max(np.abs(theirs))))
    assert worst < 1e-9


def test_nonlinear_ekf_matches_filterpy():
    """A damped pendulum observed through a range-like nonlinear sensor; filterpy gets exact (complex-step) F."""
    model = pendulum()
    q, r = 1e-4, np.array([1e-3, 2e-3])
    ekf = EKF(model=model, q=q, r=r, p0=0.1, x0=[0.5, 0.0], name="ekf")
    assert EKF(model=model).get_params()["jacobian"] == "auto"
    sim = tg.Simulator(filter_graph(ekf))
    p = model.batch_params(1)

    class Reference(ExtendedKalmanFilter):
        def predict_x(self, u):
            self.x = model.advance(self.x.T, np.atleast_2d(u), 0.0, DT, p).T

    def step_jacobian(x, u):
        eps = 1e-30
        columns = [model.advance(x.T + 1j * eps * e, u, 0.0, DT, p).imag[0] / eps for e in np.eye(2)]
        return np.array(columns).T

    def h_jacobian(x):
        theta, omega = x[:, 0]
        return np.array([[theta / np.sqrt(1 + theta**2), 0.0], [-omega * np.sin(theta), np.cos(theta)]])

    fk = Reference(dim_x=2, dim_z=2, dim_u=1)
    fk.x, fk.P, fk.Q, fk.R = np.array([[0.5], [0.0]]), np.eye(2) * 0.1, np.eye(2) * q, np.diag(r)
    rng = np.random.default_rng(2)
    worst = 0.0
    for k in range(150):
        u = np.array([[0.3 * np.sin(0.2 * k)]])
        y = np.array([np.sqrt(1 + 0.4**2), 0.1]) + 0.03 * rng.normal(size=2)
        out = sim.step(u=u, y=y)
        fk.update(y[:, None], h_jacobian, lambda x: model.observe(x.T, None, p).T)
        fk.F = step_jacobian(fk.x, u)
        fk.predict(u=u)
        state = sim.blocks["ekf"]
        for ours, theirs in ((out["ekf.x_hat"], fk.x_post[:, 0]), (state.z_[0], fk.x[:, 0]), (state.P_[0], fk.P)):
            worst = max(worst, np.max(np.abs(ours - theirs) / np.max(np.abs(theirs))))
    assert worst < 1e-7


@pytest.mark.parametrize("integrator", ["rk4", "euler"])
def test_tangent_through_the_step_matches_filterpy_with_exact_f(integrator):
    """The pendulum with its analytic ∂f/∂x, estimating g (∂f/∂g by differences of f); filterpy gets exact F."""
    model = pendulum(g=9.0)
    model.jac = lambda x, u, t, p: np.stack(
        [np.stack([0.0 * x[:, 0], 1.0 + 0.0 * x[:, 0]], axis=1),
         np.stack([-p["g"] * np.cos(x[:, 0]), -0.2 + 0.0 * x[:, 0]], axis=1)], axis=1)
    model.integrator, model.substeps = integrator, 2
    q, r = 1e-4, np.array([1e-3, 2e-3])
    ekf = EKF(model=model, estimate=("g",), q=q, q_params=1e-3, r=r, p0=0.1, p0_params=1.0, x0=[0.5, 0.0], name="ekf")
    sim = tg.Simulator(filter_graph(ekf))

    def advance(z, u):  # the augmented step [x, g] → [advance(x), g], complex-safe
        return np.concatenate([model.advance(z[:, :2], u, 0.0, DT, {"g": z[:, 2]}), z[:, 2:]], axis=1)

    class Reference(ExtendedKalmanFilter):
        def predict_x(self, u):
            self.x = advance(self.x.T, np.atleast_2d(u)).T

    def step_jacobian(z, u):
        eps = 1e-30
        return np.array([advance(z.T + 1j * eps * e, u).imag[0] / eps for e in np.eye(3)]).T

    def h_jacobian(z):
        theta, omega = z[:2, 0]
        return np.array([[theta / np.sqrt(1 + theta**2), 0.0, 0.0], [-omega * np.sin(theta), np.cos(theta), 0.0]])

    fk = Reference(dim_x=3, dim_z=2, dim_u=1)
    fk.x, fk.P = np.array([[0.5], [0.0], [9.0]]), np.diag([0.1, 0.1, 1.0])
    fk.Q, fk.R = np.diag([q, q, 1e-3]), np.diag(r)
    rng = np.random.default_rng(3)
    worst = 0.0
    for k in range(150):
        u = np.array([[0.3 * np.sin(0.2 * k)]])
        y = np.array([np.sqrt(1 + 0.4**2), 0.1]) + 0.03 * rng.normal(size=2)
        out = sim.step(u=u, y=y)
        fk.update(y[:, None], h_jacobian, lambda z: model.observe(z[:2].T, None, {}).T)
        fk.F = step_jacobian(fk.x, u)
        fk.predict(u=u)
        state = sim.blocks["ekf"]
        for ours, theirs in ((out["ekf.params"], fk.x_post[2]), (state.z_[0], fk.x[:, 0]), (state.P_[0], fk.P)):
            worst = max(worst, np.max(np.abs(ours - theirs) / np.max(np.abs(theirs))))
    assert worst < 1e-6  # F exact on both sides; our H is differenced (1e-10 a tick, amplified estimating g)


def test_nis_of_a_consistent_linear_filter_is_chi_square():
    q, r, steps = np.array([1e-5, 1e-4]), 1e-3, 2000
    model, u, y = simulate_linear(steps, 1, q, r, seed=3)
    sim = tg.Simulator(filter_graph(EKF(model=model, q=q, r=r, p0=1e-6, x0=0.0, name="ekf")))
    nis = sim.run(inputs={"u": u, "y": y})["ekf.nis"]
    low, high = chi2.ppf([0.025, 0.975], steps) / steps  # the mean of 2,000 χ²(1) draws
    assert low < nis.mean() < high
    assert (round(low, 3), round(high, 3)) == (0.939, 1.063)


def test_missing_elements_are_predict_only():
    """Dropping y[1] by NaN equals a filter that never observes y[1]; an all-NaN tick leaves the prior."""
    both, first, y = missing_measurements()  # asset 1 never measures y[1], asset 2 nothing at ticks 20-29
    sim = tg.Simulator(filter_graph(EKF(model=both, r=[0.1, 0.2], x0=[0.4, 0.0], name="ekf")), batch=3)
    hist = sim.run(inputs={"y": y})
    assert np.isfinite(hist["ekf.x_hat"]).all() and np.isfinite(hist["ekf.P"]).all()
    assert (hist["ekf.innovation"][:, 1, 1] == 0).all()
    single = tg.Simulator(filter_graph(EKF(model=first, r=0.1, x0=[0.4, 0.0], name="ekf")), batch=3)
    reference = single.run(inputs={"y": y[:, :, :1]})
    np.testing.assert_allclose(hist["ekf.x_hat"][:, 1], reference["ekf.x_hat"][:, 1], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(hist["ekf.P"][:, 1], reference["ekf.P"][:, 1], rtol=1e-9, atol=1e-12)
    assert (hist["ekf.nis"][20:30, 2] == 0).all()
    # with nothing measured, the posterior is the prior: the filter coasts on the model
    coast = both.advance(hist["ekf.x_hat"][20, 2:3], np.zeros((1, 0)), 0.0, DT, {})
    np.testing.assert_allclose(hist["ekf.x_hat"][21, 2], coast[0], rtol=1e-12)


def test_efficiency_is_estimated_per_asset():
    truth = PumpLike(efficiency=[1.0, 0.9, 0.7])
    x, p = truth.initial_state(3), truth.batch_params(3)
    ekf = EKF(PumpLike(), estimate=("efficiency",), q=0.0, q_params=1e-7, r=1e-14, p0=0.0, p0_params=0.1, name="ekf")
    sim = tg.Simulator(filter_graph(ekf), batch=3)
    rng = np.random.default_rng(5)
    for k in range(300):
        u = np.full((3, 1), 12.0 + np.sin(0.1 * k))
        out = sim.step(u=u, y=truth.observe(x, u, p) + 1e-7 * rng.normal(size=(3, 1)))
        x = truth.advance(x, u, k * DT, DT, p)
    np.testing.assert_allclose(out["ekf.params"][:, 0], [1.0, 0.9, 0.7], atol=2e-3)
    assert out["ekf.P"].shape == (3, 3) and (out["ekf.P"][:, 2] > 0).all()


def test_analytic_and_finite_difference_jacobians_agree():
    model, u, y = simulate_linear(100, 1, np.array([1e-5, 1e-4]), 1e-3, seed=6)
    hist = {}
    for mode in ("analytic", "fd"):
        sim = tg.Simulator(filter_graph(EKF(model=model, q=1e-5, r=1e-3, jacobian=mode, name="ekf")))
        hist[mode] = sim.run(inputs={"u": u, "y": y})
    np.testing.assert_allclose(hist["analytic"]["ekf.x_hat"], hist["fd"]["ekf.x_hat"], rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"estimate": ("eta",)}, r"The 'estimate' parameter of EKF 'ekf' must be a tuple of distinct names from \["),
        ({"estimate": "efficiency"}, "The 'estimate' parameter of EKF 'ekf' must be a tuple of distinct names"),
        ({"jacobian": "exact"}, r"The 'jacobian' parameter of EKF 'ekf' must be one of \['auto', 'analytic', 'fd'\]"),
        ({"r": 0.0}, r"The 'r' parameter of EKF 'ekf' must be a variance > 0, or 1 of them \(one per measurement\)"),
        ({"q": [1.0, 2.0, 3.0]}, r"The 'q' parameter of EKF 'ekf' must be a variance >= 0, or 2 of them "
                                 r"\(one per state\)\. Got \[1\.0, 2\.0, 3\.0\]\."),
        ({"q": "lots"}, r"The 'q' parameter of EKF 'ekf' must be a number or an array_like of finite numbers\. "
                        r"Got 'lots'\."),
        ({"q_params": float("inf")}, "The 'q_params' parameter of EKF 'ekf' must be a number or an array_like of"),
        ({"p0": [True, False]}, "The 'p0' parameter of EKF 'ekf' must be a number or an array_like of"),
        ({"p0": [[1.0], [1.0, 2.0]]}, "The 'p0' parameter of EKF 'ekf' must be a number or an array_like of"),
        ({"x0": "abc"}, r"The 'x0' parameter of EKF 'ekf' must be a number or an array_like of finite numbers"),
        ({"x0": [1.0, 2.0, 3.0]}, r"The 'x0' parameter of EKF 'ekf' must be None or an initial state of 2 values"),
    ],
)
def test_bad_params_are_named_at_validate(params, message):
    block = EKF(model=PumpLike(name="pump"), name="ekf", **params)
    with pytest.raises(tg.ParamError, match=message):
        filter_graph(block).validate()


def test_an_analytic_jacobian_needs_a_model_that_has_one():
    tank = EKF(model=TankLevel(name="tank"), jacobian="analytic", name="ekf")
    message = r"The 'jacobian' parameter of EKF 'ekf' must be 'auto' or 'fd' \(TankLevel has no analytic Jacobian\)"
    with pytest.raises(tg.ParamError, match=message):
        filter_graph(tank).validate()
    none = FunctionODE(lambda x, u, t, p: -x, jac=None, name="decay")  # overrides jacobian, returns None
    with pytest.raises(tg.ParamError, match="The 'jacobian' parameter of EKF 'ekf' must be 'auto' or 'fd'"):
        tg.Simulator(filter_graph(EKF(model=none, jacobian="analytic", name="ekf")))
    auto = tg.Simulator(filter_graph(EKF(model=TankLevel(name="tank"), name="ekf")))  # "auto": finite differences
    assert np.isfinite(auto.step(u=[[1e-3]], y=[[1.0]])["ekf.x_hat"]).all()


@pytest.mark.parametrize(("model", "got"), [(None, r"None\."), (Gain(k=2.0, name="k"), r"Gain\(k=2\.0")])
def test_a_filter_without_an_ode_model_is_refused_at_validate(model, got):
    g = tg.Graph("g", dt=DT)
    ekf = g.add(EKF(model=model, name="ekf"))
    message = rf"^The 'model' parameter of EKF 'ekf' must be an ODEModel block\. Got {got}"
    with pytest.raises(tg.ParamError, match="Graph 'g' has invalid params") as error:
        g.validate()
    assert re.search(message, str(error.value).splitlines()[1].lstrip(" -"))
    with pytest.raises(tg.ParamError, match=message):  # wiring it fails early, with the same message
        g.connect(g.add(Input("y", shape=(1,))).out.value, ekf.inp.y)


def sensor_feeding(block: tg.Block) -> tg.Graph:
    """``u → sensor → block.y``: the sensor reads 0.5 where ``u`` is 0, ±inf where ``u`` ≷ 0, NaN where NaN."""
    sensor = FunctionODE(
        lambda x, u, t, p: 0.0 * x,
        h=lambda x, u, p: np.select([u == 0.0, u > 0.0, u < 0.0], [x, np.inf, -np.inf], np.nan),
        states=("a",), x0=0.5, n_inputs=1, n_outputs=1, direct_feedthrough=True, name="sensor",
    )
    g = tg.Graph("sensed", dt=DT)
    g.connect(g.add(Input("u", shape=(1,))).out.value, g.add(sensor).inp.u)
    g.connect(sensor.out.y, g.add(block).inp.y)
    return g


@pytest.mark.parametrize("kind", [EKF, UKF])
def test_nan_is_missing_and_inf_is_an_error_naming_block_and_port(kind):
    decay = FunctionODE(lambda x, u, t, p: -x, states=("a",), name="decay")
    sim = tg.Simulator(sensor_feeding(kind(model=decay, r=0.1, name="f")), batch=2)
    out = sim.step(u=[[0.0], [np.nan]])  # asset 1 measures NaN: missing, predict only
    assert out["f.innovation"][1, 0] == 0.0 and out["f.nis"][1] == 0.0 and np.isfinite(out["f.x_hat"]).all()
    for value, shown in ((1.0, "inf"), (-1.0, "-inf")):
        with pytest.raises(tg.SimulationError, match=(
            rf"^{kind.__name__} 'f': input 'y' is {shown} at t = 0.05 s \(asset 1, element 0\)\. "
            r"A measurement must be finite, or NaN where it is missing\.$")):
            sim.step(u=[[0.0], [value]])


def test_snapshot_restore_resumes_exactly():
    model, u, y = simulate_linear(40, 2, np.array([1e-5, 1e-4]), 1e-3, seed=7)
    sim = tg.Simulator(filter_graph(EKF(model=model, name="ekf")), batch=2)
    full = sim.run(inputs={"u": u, "y": y})["ekf.x_hat"].copy()
    sim.reset()
    sim.run(inputs={"u": u[:20], "y": y[:20]})
    snap = sim.snapshot()
    other = tg.Simulator(filter_graph(EKF(model=model, name="ekf")), batch=2)
    other.restore(snap)
    for k in range(20, 40):
        out = other.step(u=u[k], y=y[k])
    np.testing.assert_array_equal(out["ekf.x_hat"], full[-1])
