"""The model library against analytic solutions."""

import numpy as np
import pytest

import twingraph as tg
from blocks.physics import (
    DoubleIntegrator,
    FirstOrderLag,
    HarmonicOscillator,
    MassSpringDamper,
    OscillatorChain,
    Pendulum,
    PumpLike,
    TankLevel,
    ThermalNetwork,
)
from blocks.physics.library import STANDARD_GRAVITY
from blocks.sources import Input


def driven(model, dt: float, u: np.ndarray, batch: int = 1) -> tg.History:
    """Run ``model`` fed from an Input 'u' with the rows of ``u`` (T, n_u); return the history."""
    g = tg.Graph("driven", dt=dt)
    source = g.add(Input("u", shape=(model.n_u,), unit=model.input_unit))
    g.add(model)
    g.connect(source.out.value, model.inp.u)
    return tg.Simulator(g, batch=batch).run(inputs={"u": u})


def test_first_order_lag_step_response_for_a_fleet():
    tau, gain = np.array([0.5, 1.0, 2.0]), np.array([1.0, 2.0, 3.0])
    hist = driven(FirstOrderLag(tau=tau, gain=gain, name="lag"), 0.05, np.ones((200, 1)), batch=3)
    t = hist.time[:, None]
    np.testing.assert_allclose(hist["lag.y"][:, :, 0], gain * (1 - np.exp(-t / tau)), rtol=0, atol=1e-6)


def test_oscillator_energy_loss_per_rk4_step_is_the_textbook_one():
    # |R(iωh)|² = 1 - (ωh)⁶/72 + (ωh)⁸/576 for RK4's stability polynomial R.
    osc = HarmonicOscillator(omega=2 * np.pi, x0=[1.0, 0.0], substeps=100)  # 100 steps per 1 s period
    p, x, u = osc.batch_params(1), osc.initial_state(1), np.zeros((1, 0))
    for period in range(100):
        x = osc.advance(x, u, float(period), 1.0, p)
    drift = 1 - osc.energy(x, p)[0] / osc.energy(osc.initial_state(1), p)[0]
    y = 2 * np.pi / 100
    assert drift == pytest.approx(1 - (1 - y**6 / 72 + y**8 / 576) ** (100 * 100), rel=1e-4)  # 8.5e-6


def test_oscillator_energy_drift_over_a_thousand_periods():
    # 100 ticks per period, each split into 3 RK4 substeps; 1,000 periods.
    g = tg.Graph("osc", dt=0.01)
    g.add(HarmonicOscillator(omega=2 * np.pi, x0=[1.0, 0.0], substeps=3, name="osc"))
    sim = tg.Simulator(g, log=None)
    sim.run(steps=100_000)
    osc = sim.blocks["osc"]
    drift = 1 - osc.energy(osc.x_, osc.p_)[0] / osc.energy(osc.initial_state(1), osc.p_)[0]
    assert 0 < drift < 1e-6  # RK4 loses energy, slowly: 3.5e-7
    np.testing.assert_allclose(osc.x_[0], [1.0, 0.0], atol=1e-4)  # and the phase, within 1e-5 rad


def test_damped_mass_spring_damper_matches_the_closed_form():
    m, c, k, force = 2.0, 0.8, 8.0, 4.0
    s0, v0 = 1.0, -0.5
    msd = MassSpringDamper(mass=m, damping=c, stiffness=k, x0=[s0, v0], name="msd")
    hist = driven(msd, 0.01, np.full((1000, 1), force))
    t = hist.time
    omega, zeta = np.sqrt(k / m), c / (2 * np.sqrt(k * m))
    omega_d = omega * np.sqrt(1 - zeta**2)
    s_eq = force / k
    d = s0 - s_eq
    decay = np.exp(-zeta * omega * t)
    s = s_eq + decay * (d * np.cos(omega_d * t) + (v0 + zeta * omega * d) / omega_d * np.sin(omega_d * t))
    np.testing.assert_allclose(hist["msd.y"][:, 0], s, rtol=0, atol=1e-8)
    assert hist["msd.x"][-1, 0] == pytest.approx(s_eq, abs=0.02)


def test_tank_drains_along_torricelli_and_empties_on_time():
    area, outlet, cd, h0, dt = 2.0, 0.02, 0.6, 3.0, 0.1
    tank = TankLevel(area=area, outlet_area=outlet, discharge_coefficient=cd, x0=h0, name="tank")
    hist = driven(tank, dt, np.zeros((2000, 1)))
    kappa = cd * outlet * np.sqrt(2 * STANDARD_GRAVITY) / area
    empty_at = (area / (cd * outlet)) * np.sqrt(2 * h0 / STANDARD_GRAVITY)  # 130.4 s
    level = hist["tank.y"][:, 0]
    before = hist.time < empty_at - 1.0
    np.testing.assert_allclose(level[before], (np.sqrt(h0) - kappa * hist.time[before] / 2) ** 2, rtol=0, atol=1e-8)
    first_empty = hist.time[np.argmax(level <= 1e-6)]
    assert first_empty == pytest.approx(empty_at, abs=dt)
    assert level.min() > -1e-5  # the √h kink lets RK4 undershoot zero by O((κ dt)²) only


def test_tank_settles_where_outflow_meets_inflow():
    q_in = 0.01
    hist = driven(TankLevel(area=0.5, x0=0.0, name="tank"), 0.5, np.full((4000, 1), q_in))
    assert hist["tank.y"][-1, 0] == pytest.approx((q_in / (0.6 * 0.01)) ** 2 / (2 * STANDARD_GRAVITY), rel=1e-6)


def test_pump_speed_and_flow_settle_where_torques_balance():
    efficiency = np.array([1.0, 0.8, 0.6])
    pump = PumpLike(efficiency=efficiency, name="pump")
    hist = driven(pump, 0.01, np.full((2000, 1), 12.0), batch=3)
    K, R, b, c_T, c_Q = 0.05, 1.0, 1e-4, 2.5e-6, 5e-6
    # K (V - K ω) / R = b ω + c_T ω²
    speed = max(np.roots([c_T, K**2 / R + b, -K * 12.0 / R]))
    np.testing.assert_allclose(hist["pump.x"][-1, :, 0], speed, rtol=1e-9)
    np.testing.assert_allclose(hist["pump.y"][-1, :, 0], efficiency * c_Q * speed, rtol=1e-9)


def test_pump_has_the_interface_the_design_uses():
    pump = PumpLike(name="pump")
    assert pump.inp.u.signal == tg.Signal(shape=(1,), unit="V")
    assert pump.out.y.signal == tg.Signal(shape=(1,), unit="m3/s")
    assert (pump.states, pump.state_units) == (("omega", "q"), ("rad/s", "m3/s"))
    assert {"efficiency", "friction"} <= set(pump.parameters)
    assert pump.efficiency == 1.0
    assert not pump.direct_feedthrough


def test_double_integrator_is_exact_for_a_constant_force():
    hist = driven(DoubleIntegrator(mass=4.0, name="body"), 0.1, np.full((50, 1), 2.0))
    t = hist.time
    np.testing.assert_allclose(hist["body.x"], np.stack([t**2 / 4, t / 2], axis=1), rtol=0, atol=1e-12)


def finite_difference_jacobian(model, x, u, p, eps=1e-6):
    batch, n = x.shape
    jac = np.empty((batch, n, n))
    for j in range(n):
        step = eps * np.maximum(1.0, np.abs(x[:, j]))
        dx = np.zeros_like(x)
        dx[:, j] = step
        jac[:, :, j] = (model.derivative(x + dx, u, 0.0, p) - model.derivative(x - dx, u, 0.0, p)) / (2 * step[:, None])
    return jac


@pytest.mark.parametrize(
    "model",
    [
        FirstOrderLag(tau=[0.5, 1.0, 2.0]),
        DoubleIntegrator(mass=[1.0, 2.0, 3.0]),
        MassSpringDamper(damping=[0.1, 0.5, 1.0]),
        HarmonicOscillator(omega=[1.0, 2.0, 3.0]),
        PumpLike(efficiency=[1.0, 0.8, 0.6]),
        OscillatorChain(n_masses=4, stiffness=[1.0, 2.0, 3.0], damping=0.3),
        ThermalNetwork(ambient_temperature=[280.0, 290.0, 300.0]),
        Pendulum(damping=[0.0, 0.2, 0.4]),
    ],
    ids=lambda m: type(m).__name__,
)
def test_analytic_jacobians_match_finite_differences(model):
    rng = np.random.default_rng(0)
    p = model.batch_params(3)
    x = rng.normal(size=(3, model.n_x)) * 10.0 ** rng.integers(0, 3, size=(1, model.n_x))
    u = rng.normal(size=(3, model.n_u))
    np.testing.assert_allclose(
        model.jacobian(x, u, 0.0, p), finite_difference_jacobian(model, x, u, p), rtol=1e-6, atol=1e-6
    )


def test_pump_parameter_jacobian_matches_finite_differences():
    model = PumpLike(efficiency=[1.0, 0.8, 0.6])
    rng = np.random.default_rng(1)
    x = np.stack([rng.normal(size=3) * 150.0, rng.normal(size=3) * 1e-3], axis=1)  # ω of both signs
    u = rng.normal(size=(3, 1)) * 12.0
    p = model.batch_params(3)
    names = model.parameters[::-1]  # any order, all of them
    jac = model.parameter_jacobian(x, u, 0.0, p, names)
    assert jac.shape == (3, 2, len(names))
    for j, name in enumerate(names):
        step = 1e-6 * p[name]
        up, down = dict(p), dict(p)
        up[name], down[name] = p[name] + step, p[name] - step
        difference = (model.derivative(x, u, 0.0, up) - model.derivative(x, u, 0.0, down)) / (2 * step[:, None])
        np.testing.assert_allclose(jac[:, :, j], difference, rtol=1e-6, atol=1e-12 * np.abs(difference).max())
    assert model.parameter_jacobian(x, u, 0.0, p, ()).shape == (3, 2, 0)


@pytest.mark.parametrize(
    "model",
    [FirstOrderLag(), DoubleIntegrator(), MassSpringDamper(), HarmonicOscillator(), TankLevel(), PumpLike()],
    ids=lambda m: type(m).__name__,
)
def test_observation_matrix_is_the_linear_observation(model):
    x = np.random.default_rng(2).normal(size=(4, model.n_x))
    c = model.observation_matrix()
    assert c.shape == (model.n_y, model.n_x)
    np.testing.assert_array_equal(model.observe(x, np.zeros((4, model.n_u)), model.batch_params(4)), x @ c.T)


def test_a_subclass_with_new_equations_does_not_inherit_their_descriptions():
    class Sensed(PumpLike):
        def observe(self, x, u, p):
            return x[:, :1] * 2.0

    class Worn(PumpLike):
        def derivative(self, x, u, t, p):
            return 0.5 * super().derivative(x, u, t, p)

    x, u = np.ones((1, 2)), np.ones((1, 1))
    assert Sensed().observation_matrix() is None  # differenced, not PumpLike's [0 1]
    assert Sensed().parameter_jacobian(x, u, 0.0, Sensed().batch_params(1), ("efficiency",)) is not None
    assert Worn().parameter_jacobian(x, u, 0.0, Worn().batch_params(1), ("efficiency",)) is None
    np.testing.assert_array_equal(Worn().observation_matrix(), [[0.0, 1.0]])
