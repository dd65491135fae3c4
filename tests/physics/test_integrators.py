"""Integrators: measured convergence order, and a stiff network that only solve_ivp survives."""

import numpy as np
import pytest
from scipy.linalg import expm

import twingraph as tg
from blocks.physics import FunctionODE, HarmonicOscillator, ThermalNetwork
from blocks.physics.integrators import block_diagonal, euler, rk4, solve_ivp_step
from blocks.sources import Constant


def observed_order(integrator: str, ticks_per_run: list[int], horizon: float = 2.0) -> float:
    """Slope of log(error) against log(dt) for the oscillator s̈ = -s run through a Simulator."""
    dts, errors = [], []
    for ticks in ticks_per_run:
        dt = horizon / ticks
        g = tg.Graph("osc", dt=dt)
        g.add(HarmonicOscillator(omega=1.0, x0=[1.0, 0.0], integrator=integrator, name="osc"))
        sim = tg.Simulator(g, log=None)
        sim.run(steps=ticks)
        exact = np.array([np.cos(horizon), -np.sin(horizon)])
        dts.append(dt)
        errors.append(np.abs(sim.blocks["osc"].x_[0] - exact).max())
    return np.polyfit(np.log(dts), np.log(errors), 1)[0]


def test_euler_converges_with_order_one():
    assert observed_order("euler", [200, 400, 800, 1600]) == pytest.approx(1.0, abs=0.2)


def test_rk4_converges_with_order_four():
    assert observed_order("rk4", [10, 20, 40, 80]) == pytest.approx(4.0, abs=0.2)


def test_substeps_split_the_tick():
    def decay(x, u, t):
        return -x

    x, u = np.ones((3, 1)), np.zeros((3, 0))
    assert euler(decay, x, u, 0.0, 1.0, substeps=4) == pytest.approx(0.75**4)
    halves = rk4(decay, rk4(decay, x, u, 0.0, 0.5), u, 0.5, 0.5)
    np.testing.assert_array_equal(rk4(decay, x, u, 0.0, 1.0, substeps=2), halves)


def test_time_advances_inside_a_tick():
    def ramp(x, u, t):
        return np.full_like(x, t)  # x(t) = t²/2, a polynomial RK4 integrates exactly

    x, u = np.zeros((1, 1)), np.zeros((1, 0))
    assert rk4(ramp, x, u, 1.0, 2.0)[0, 0] == pytest.approx((3.0**2 - 1.0**2) / 2, rel=1e-14)
    assert solve_ivp_step(ramp, x, u, 1.0, 2.0, rtol=1e-10, atol=1e-12)[0, 0] == pytest.approx(4.0, rel=1e-9)


def test_block_diagonal_keeps_assets_apart():
    blocks = np.arange(12.0).reshape(3, 2, 2)
    dense = block_diagonal(blocks).toarray()
    assert dense.shape == (6, 6)
    for b in range(3):
        np.testing.assert_array_equal(dense[2 * b : 2 * b + 2, 2 * b : 2 * b + 2], blocks[b])
    assert np.count_nonzero(dense) == np.count_nonzero(blocks)


# Two nodes: 0.01 J/K behind 1 W/K (τ ≈ 0.01 s) and 100 J/K (τ ≈ 100 s): eigenvalues -100.01 and -0.01.
STIFF = dict(conductance=[[0.0, 1.0], [1.0, 0.0]], capacitance=[0.01, 100.0], ambient_conductance=[0.0, 1.0])
AMBIENT = [280.0, 290.0, 300.0]
HEAT = [0.5, 2.0]


def stiff_graph(model) -> tg.Graph:
    g = tg.Graph("stiff", dt=1.0)
    heat = g.add(Constant(value=HEAT, unit="W", name="heat"))
    g.add(model)
    g.connect(heat.out.y, model.inp.u)
    return g


def exact_stiff_response(ticks: int) -> np.ndarray:
    """T(t) = T_ss + e^{At} (T₀ - T_ss) for each asset, at t = 0, 1, ..., ticks - 1: (ticks, B, 2)."""
    C = np.array(STIFF["capacitance"])
    g_a = np.array(STIFF["ambient_conductance"])
    G = np.array(STIFF["conductance"])
    A = (G - np.diag(G.sum(axis=1) + g_a)) / C[:, None]
    rows = []
    for t in range(ticks):
        decay = expm(A * t)
        per_asset = []
        for T_a in AMBIENT:
            b = (g_a * T_a + np.array(HEAT)) / C
            steady = np.linalg.solve(A, -b)
            per_asset.append(steady + decay @ (np.full(2, 350.0) - steady))
        rows.append(per_asset)
    return np.array(rows)


def test_stiff_network_has_time_constants_four_decades_apart():
    net = ThermalNetwork(**STIFF, ambient_temperature=AMBIENT)
    p = net.batch_params(3)
    rates = np.sort(-np.linalg.eigvals(net.jacobian(net.initial_state(3), np.zeros((3, 2)), 0.0, p)[0]).real)
    assert rates[1] / rates[0] > 1e4


def test_fixed_rk4_blows_up_on_the_stiff_network():
    net = ThermalNetwork(**STIFF, ambient_temperature=AMBIENT, x0=350.0, integrator="rk4", name="net")
    sim = tg.Simulator(stiff_graph(net), batch=3)
    with np.errstate(over="ignore", invalid="ignore"):
        hist = sim.run(steps=50)
    fast_node = hist["net.y"][:, :, 0]
    assert not np.all(np.isfinite(fast_node[-1])) or np.abs(fast_node[-1]).max() > 1e30
    assert np.abs(fast_node[5] - 350.0).max() > 1e6  # already diverging after five ticks


@pytest.mark.parametrize("method, tolerance", [("Radau", 1e-8), ("BDF", 5e-4), ("LSODA", 1e-4)])
def test_solve_ivp_follows_the_stiff_network_at_the_same_dt(method, tolerance):
    net = ThermalNetwork(**STIFF, ambient_temperature=AMBIENT, x0=350.0, integrator="solve_ivp", method=method,
                         rtol=1e-8, atol=1e-8, name="net")
    hist = tg.Simulator(stiff_graph(net), batch=3).run(steps=50)
    np.testing.assert_allclose(hist["net.y"], exact_stiff_response(50), rtol=0, atol=tolerance)  # [K]


def test_solve_ivp_without_an_analytic_jacobian_uses_the_block_sparsity():
    reference = ThermalNetwork(**STIFF, ambient_temperature=AMBIENT)

    def f(x, u, t, p):
        return reference.derivative(x, u, t, p)

    net = FunctionODE(f, states=("T0", "T1"), n_inputs=2, input_unit="W", params={"ambient_temperature": AMBIENT},
                      x0=350.0, integrator="solve_ivp", method="Radau", rtol=1e-8, atol=1e-8, name="net")
    hist = tg.Simulator(stiff_graph(net), batch=3).run(steps=50)
    np.testing.assert_allclose(hist["net.y"], exact_stiff_response(50), rtol=0, atol=1e-8)


def test_solve_ivp_failure_is_a_simulation_error():
    def explode(x, u, t):
        return x**2

    with pytest.raises(tg.SimulationError, match=r"solve_ivp \(RK45\) failed over t = \[0, 2\] s"):
        solve_ivp_step(explode, np.ones((1, 1)), np.zeros((1, 0)), 0.0, 2.0)
