"""Larger systems: oscillator chain, thermal network, pendulum."""

import numpy as np
import pytest
from scipy.linalg import expm
from scipy.special import ellipk

import twingraph as tg
from blocks.physics import OscillatorChain, Pendulum, ThermalNetwork
from blocks.physics.library import STANDARD_GRAVITY
from blocks.sources import Constant


def forced(model, value, dt: float, batch: int = 1, **options) -> tg.Simulator:
    g = tg.Graph("g", dt=dt)
    source = g.add(Constant(value=value, unit=model.input_unit, name="source"))
    g.add(model)
    g.connect(source.out.y, model.inp.u)
    return tg.Simulator(g, batch=batch, **options)


def test_chain_normal_mode_oscillates_at_its_frequency():
    n, k, m, j = 5, 2.0, 0.5, 2
    shape = np.sin(np.arange(1, n + 1) * j * np.pi / (n + 1))
    omega = 2 * np.sqrt(k / m) * np.sin(j * np.pi / (2 * (n + 1)))
    period = 2 * np.pi / omega
    chain = OscillatorChain(n_masses=n, mass=m, stiffness=k, x0=np.concatenate([shape, np.zeros(n)]), name="chain")
    hist = forced(chain, [0.0], period / 200).run(steps=400)
    np.testing.assert_allclose(hist["chain.y"], np.cos(omega * hist.time)[:, None] * shape, rtol=0, atol=1e-7)


def test_chain_force_on_the_first_mass_settles_to_the_static_deflection():
    # Static: k (s_{i+1} - 2 s_i + s_{i-1}) + F δ_i1 = 0 with walls: s_i = F (n + 1 - i) i / (k (n + 1)).
    n, k, force = 4, 3.0, 1.5
    sim = forced(OscillatorChain(n_masses=n, stiffness=k, damping=2.0, name="chain"), [force], 0.05, log=None)
    sim.run(steps=4000)
    i = np.arange(1, n + 1)
    np.testing.assert_allclose(sim.blocks["chain"].x_[0, :n], force * (n + 1 - i) / (k * (n + 1)), rtol=1e-9)


def test_fifty_oscillators_for_a_hundred_assets_run_ten_thousand_ticks():
    n, batch = 50, 100
    modes = np.sin(np.outer(np.arange(1, n + 1), [1, 2, 3]) * np.pi / (n + 1))
    rng = np.random.default_rng(7)
    x0 = np.concatenate([rng.normal(size=(batch, 3)) @ modes.T, np.zeros((batch, n))], axis=1)
    chain = OscillatorChain(n_masses=n, stiffness=rng.uniform(0.5, 2.0, batch), x0=x0, name="chain")
    sim = forced(chain, [0.0], 0.05, batch=batch, log=["chain.y"], max_len=100)
    sim.run(steps=10_000)
    block = sim.blocks["chain"]
    energy = block.energy(block.x_, block.p_)
    np.testing.assert_allclose(energy, block.energy(x0, block.p_), rtol=1e-9)
    assert sim.history["chain.y"].shape == (100, batch, n)
    assert sim.history.ticks[-1] == 9_999


def test_chain_damping_only_removes_energy():
    chain = OscillatorChain(n_masses=6, damping=[0.0, 0.1], x0=np.r_[np.linspace(-1, 1, 6), np.zeros(6)], name="chain")
    sim = forced(chain, [0.0], 0.05, batch=2, log=["chain.x"])
    hist = sim.run(steps=600)
    energy = np.array([chain.energy(x, chain.batch_params(2)) for x in hist["chain.x"]])
    assert np.ptp(energy[:, 0]) / energy[0, 0] < 1e-5
    assert np.all(np.diff(energy[:, 1]) < 0)
    assert energy[-1, 1] < 0.1 * energy[0, 1]


def test_thermal_network_follows_the_matrix_exponential():
    net = ThermalNetwork(ambient_temperature=[280.0, 300.0], x0=[350.0, 320.0, 300.0], name="net")
    heat = [50.0, 0.0, 20.0]
    hist = forced(net, heat, 10.0, batch=2).run(steps=300)
    G, C, g_a = np.array(net.conductance), np.array(net.capacitance), np.array(net.ambient_conductance)
    A = (G - np.diag(G.sum(axis=1) + g_a)) / C[:, None]
    for asset, T_a in enumerate([280.0, 300.0]):
        steady = np.linalg.solve(A, -(g_a * T_a + heat) / C)
        exact = [steady + expm(A * t) @ (np.array([350.0, 320.0, 300.0]) - steady) for t in hist.time]
        np.testing.assert_allclose(hist["net.y"][:, asset], exact, rtol=0, atol=1e-5)  # [K]


def test_thermal_network_checks_its_matrices():
    with pytest.raises(
        tg.ParamError, match=r"'conductance' parameter of ThermalNetwork 'net' must be a symmetric \(2, 2\) matrix"
    ):
        ThermalNetwork(conductance=[[0.0, 1.0], [2.0, 0.0]], capacitance=[1.0, 1.0], ambient_conductance=[0.0, 1.0],
                       name="net").check_params()
    with pytest.raises(
        tg.ParamError, match=r"'ambient_conductance' parameter of ThermalNetwork 'net' must be 2 numbers >= 0"
    ):
        ThermalNetwork(conductance=[[0.0, 1.0], [1.0, 0.0]], capacitance=[1.0, 1.0], ambient_conductance=[1.0],
                       name="net").check_params()
    assert ThermalNetwork().inp.u.signal == tg.Signal(shape=(3,), unit="W")


@pytest.mark.parametrize(
    "model, message",
    [
        (ThermalNetwork(capacitance="big", name="m"),
         r"'capacitance' parameter of ThermalNetwork 'm' must be a non-empty sequence of numbers > 0 \[J/K\]\. "
         r"Got 'big'\."),
        (ThermalNetwork(conductance=[["a"]], capacitance=[1.0], ambient_conductance=[1.0], name="m"),
         r"'conductance' parameter of ThermalNetwork 'm' must be a symmetric \(1, 1\) matrix"),
        (ThermalNetwork(ambient_conductance=(1.0, float("nan"), 0.5), name="m"),
         r"'ambient_conductance' parameter .* must be 3 numbers >= 0"),
        (ThermalNetwork(ambient_temperature="warm", name="m"),
         r"'ambient_temperature' parameter of ThermalNetwork 'm' must be a number > 0, or one per asset"),
        (ThermalNetwork(x0=[290.0, 300.0], name="m"),
         r"'x0' parameter of ThermalNetwork 'm' must be a number, one number per state \['T0', 'T1', 'T2'\]"),
        (OscillatorChain(n_masses="3", name="m"), r"'n_masses' parameter of OscillatorChain 'm' must be an int >= 1"),
        (OscillatorChain(n_masses=0, name="m"), r"'n_masses' parameter .* must be an int >= 1\. Got 0\."),
        (OscillatorChain(n_masses=2, x0=[1.0, 2.0, 3.0], name="m"),
         r"'x0' parameter .* one number per state \['s0', 's1', 'v0', 'v1'\]"),
        (OscillatorChain(stiffness=-1.0, name="m"), r"'stiffness' parameter .* must be a number > 0"),
        (Pendulum(length=0.0, name="m"), r"'length' parameter of Pendulum 'm' must be a number > 0"),
        (Pendulum(damping="some", name="m"), r"'damping' parameter of Pendulum 'm' must be a number, or one per asset"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, tg.Block) else "",
)
def test_bad_params_are_refused_at_validate(model, message):
    g = tg.Graph("g", dt=0.1)
    g.add(model)
    with pytest.raises(tg.ParamError, match=message):
        g.validate()


def test_pendulum_large_swing_has_the_elliptic_period():
    theta0 = 2.0  # 115 degrees, far from the small-angle period 2π √(l/g)
    length = 0.8
    period = 4 * np.sqrt(length / STANDARD_GRAVITY) * ellipk(np.sin(theta0 / 2) ** 2)
    assert period > 1.3 * 2 * np.pi * np.sqrt(length / STANDARD_GRAVITY)
    pendulum = Pendulum(length=length, x0=[theta0, 0.0], name="pendulum")
    sim = forced(pendulum, [0.0], period / 1000)
    hist = sim.run(steps=1000)
    np.testing.assert_allclose(hist["pendulum.x"][500], [-theta0, 0.0], atol=1e-8)  # half a period: far side
    np.testing.assert_allclose(sim.blocks["pendulum"].x_[0], [theta0, 0.0], atol=1e-8)  # a full period: back
    p = pendulum.batch_params(1)
    energy = pendulum.energy(hist["pendulum.x"], p)
    assert np.ptp(energy) / energy[0] < 1e-9


def test_pendulum_settles_under_a_constant_torque():
    # m g l sin θ = τ at rest.
    torque, mass, length = 2.0, 1.0, 0.5
    sim = forced(Pendulum(length=length, mass=mass, damping=0.5, x0=0.0, name="pendulum"), [torque], 0.01, log=None)
    sim.run(steps=3000)
    theta = np.arcsin(torque / (mass * STANDARD_GRAVITY * length))
    assert sim.blocks["pendulum"].x_[0, 0] == pytest.approx(theta, abs=1e-9)
