"""Estimation cost: an EKF estimating the efficiency of B pumps in one graph, against a filterpy loop.

Run: ``python benchmarks/bench_estimation.py [--ticks N] [--quick]``. Prints one
table: for B = 1, 100, 1000, the wall time per tick and per pump-tick of a graph of
two ``Input`` blocks (voltage, flow) feeding ``EKF(PumpLike(), estimate=("efficiency",))``,
history off. A second table does the same for ``UKF`` at B = 1000.

The references are the fastest straightforward filterpy code for the same
math, written out below: the pump's RK4 tick in Python floats
(:func:`pump_step`); one ``filterpy.kalman.ExtendedKalmanFilter`` per pump
(:class:`PumpEKF`) whose ``predict_x`` calls it and whose ``F`` is the
Jacobian of that RK4 tick by central differences (:func:`pump_transition`; the
block carries it exactly), stepped update (filterpy's Joseph form) then
predict; and one
``filterpy.kalman.UnscentedKalmanFilter`` per pump (``MerweScaledSigmaPoints``,
the block's default α = 1, β = 2, κ = 0) with ``fx`` = :func:`pump_step` per
sigma point. Before any timing each reference runs beside its graph
on 3 simulated pumps (:func:`check_reference`) and must give the same
innovations and efficiencies: to 1e-9 for the EKF, to 1e-7 for the UKF, whose
first updates shrink the variance of q from 1e-2 to about R = 1e-12 and so
magnify rounding differences in the order of operations. Each reference is timed on 20 pumps
alone, nothing else running in this process; the ratio is filterpy's time per
pump-tick over the graph's.
"""

import argparse
import math
import time
from collections.abc import Callable

import numpy as np
from filterpy.kalman import (
    ExtendedKalmanFilter,
    MerweScaledSigmaPoints,
    UnscentedKalmanFilter,
)

import twingraph as tg
from blocks.estimation import EKF, UKF
from blocks.estimation.ekf import FD_STEP
from blocks.estimation.filter import KalmanFilter
from blocks.physics import PumpLike
from blocks.sources import Input

BATCHES = (1, 100, 1000)
DT = 0.01
Q, Q_PARAMS, R = (1e-4, 1e-12), 1e-8, 1e-12
P0 = (1e-2, 1e-2, 1e-2)  # the filters' default initial variances of [ω, q, η]
PUMP = PumpLike()  # the graphs' model: the references read its constants
K_M, R_A, J, B_F, C_T, C_Q, TAU = (
    float(getattr(PUMP, name))
    for name in ("motor_constant", "resistance", "inertia", "friction", "load_coefficient", "flow_coefficient",
                 "flow_time_constant")
)
FLOW_H = np.array([[0.0, 1.0, 0.0]])  # ∂q/∂[ω, q, η]


def graph(kind: type[KalmanFilter] = EKF) -> tg.Graph:
    """Voltage and flow inputs feeding a ``kind`` filter named ``"ekf"`` or ``"ukf"`` that estimates the efficiency."""
    g = tg.Graph("bench", dt=DT)
    block = g.add(kind(PumpLike(), estimate=("efficiency",), q=Q, q_params=Q_PARAMS, r=R, name=kind.__name__.lower()))
    g.connect(g.add(Input("u", shape=(1,), unit="V")).out.value, block.inp.u)
    g.connect(g.add(Input("y", shape=(1,), unit="m3/s")).out.value, block.inp.y)
    return g


def measurements(n: int, ticks: int, dt: float = DT, seed: int = 0) -> dict[str, np.ndarray]:
    """Voltages ``(T, N, 1)`` [V] and flows ``(T, N, 1)`` [m3/s], noise variance ``R``, of ``n`` simulated pumps.

    The pumps' efficiencies lie between 0.7 and 1.0; their voltages swing
    0.5 V around 12 V at 0.1 Hz, each with its own phase.
    """
    rng = np.random.default_rng(seed)
    truth = PumpLike(efficiency=rng.uniform(0.7, 1.0, n))
    x, p = truth.initial_state(n), truth.batch_params(n)
    phase = rng.uniform(0.0, 2 * np.pi, n)
    u = np.empty((ticks, n, 1))
    y = np.empty((ticks, n, 1))
    for k in range(ticks):
        u[k, :, 0] = 12.0 + 0.5 * np.sin(0.2 * np.pi * k * dt + phase)
        y[k] = truth.observe(x, u[k], p) + math.sqrt(R) * rng.normal(size=(n, 1))
        x = truth.advance(x, u[k], k * dt, dt, p)
    return {"u": u, "y": y}


def graph_seconds_per_tick(batch: int, ticks: int, kind: type[KalmanFilter] = EKF) -> float:
    sim = tg.Simulator(graph(kind), batch=batch, log=None)
    u = np.full((ticks, batch, 1), 12.0)
    y = np.full((ticks, batch, 1), 9e-4)
    sim.run(inputs={"u": u[:5], "y": y[:5]})
    start = time.perf_counter()
    sim.run(inputs={"u": u, "y": y})
    return (time.perf_counter() - start) / ticks


def pump_rates(omega: float, q: float, eta: float, volts: float) -> tuple[float, float]:
    """``(ω̇, q̇)`` of :class:`~blocks.physics.PumpLike` with its default constants, in Python floats."""
    torque = K_M * (volts - K_M * omega) / R_A - B_F * omega - C_T * omega * abs(omega)
    return torque / J, (eta * C_Q * omega - q) / TAU


def pump_step(omega: float, q: float, eta: float, volts: float, dt: float) -> tuple[float, float]:
    """One RK4 tick of the pump, voltage held: ``(ω, q)`` at ``t + dt``."""
    a1, b1 = pump_rates(omega, q, eta, volts)
    a2, b2 = pump_rates(omega + dt / 2 * a1, q + dt / 2 * b1, eta, volts)
    a3, b3 = pump_rates(omega + dt / 2 * a2, q + dt / 2 * b2, eta, volts)
    a4, b4 = pump_rates(omega + dt * a3, q + dt * b3, eta, volts)
    return omega + dt / 6 * (a1 + 2 * a2 + 2 * a3 + a4), q + dt / 6 * (b1 + 2 * b2 + 2 * b3 + b4)


def pump_transition(omega: float, q: float, eta: float, volts: float, dt: float) -> np.ndarray:
    """``F = ∂[ω, q, η]⁺/∂[ω, q, η]`` of one tick: central differences of :func:`pump_step`.

    That is the Jacobian of the RK4 map, which the EKF block carries exactly
    (the tangent of its RK4 step); the step of column j is ``FD_STEP (1 + |z_j|)``.
    """
    z = (omega, q, eta)
    F = np.eye(3)
    for j in range(3):
        h = FD_STEP * (1.0 + abs(z[j]))
        up, down = list(z), list(z)
        up[j] += h
        down[j] -= h
        (omega_up, q_up), (omega_down, q_down) = pump_step(*up, volts, dt), pump_step(*down, volts, dt)
        F[0, j], F[1, j] = (omega_up - omega_down) / (2 * h), (q_up - q_down) / (2 * h)
    return F


def flow(x: np.ndarray) -> np.ndarray:
    """The pump's measurement ``y = q`` of a state ``[ω, q, η]``."""
    return x[1:2]


def flow_jacobian(x: np.ndarray) -> np.ndarray:
    """``H = ∂q/∂[ω, q, η]``, exact."""
    return FLOW_H


class PumpEKF(ExtendedKalmanFilter):
    """filterpy's EKF over one pump, state ``[ω, q, η]``; ``predict_x`` steps :func:`pump_step`.

    Parameters
    ----------
    dt : float
        Tick [s].
    x0, p0, q : sequence of 3 floats
        Initial state, its variances and the process variances of ``[ω, q, η]``.
    r : float
        Variance of the flow measurement [m⁶/s²].
    """

    def __init__(self, dt: float, x0, p0, q, r: float) -> None:
        super().__init__(dim_x=3, dim_z=1)
        self.dt = dt
        self.x = np.array(x0, dtype=float).reshape(3, 1)
        self.P, self.Q, self.R = np.diag(p0), np.diag(q), np.array([[r]])

    def predict_x(self, u=0.0):
        omega, q, eta = self.x[:, 0].tolist()
        omega, q = pump_step(omega, q, eta, u, self.dt)
        self.x = np.array([[omega], [q], [eta]])


def ekf_tick(f: PumpEKF, volts: float, measured: float) -> None:
    """One tick as the block does it: update with the flow, then predict with the voltage held."""
    f.update(measured, flow_jacobian, flow)
    f.F = pump_transition(*f.x[:, 0].tolist(), volts, f.dt)
    f.predict(u=volts)


def pump_ekf() -> PumpEKF:
    """The EKF reference set up as the graph's block."""
    return PumpEKF(DT, (0.0, 0.0, 1.0), P0, (*Q, Q_PARAMS), R)


def pump_fx(x: np.ndarray, dt: float, u: float) -> np.ndarray:
    """The UKF's transition of one sigma point ``[ω, q, η]``."""
    omega, q, eta = x.tolist()
    return np.array([*pump_step(omega, q, eta, u, dt), eta])


def pump_ukf() -> UnscentedKalmanFilter:
    """The UKF reference set up as the graph's block."""
    points = MerweScaledSigmaPoints(3, alpha=1.0, beta=2.0, kappa=0.0)
    f = UnscentedKalmanFilter(dim_x=3, dim_z=1, dt=DT, hx=flow, fx=pump_fx, points=points)
    f.x, f.P, f.Q, f.R = np.array([0.0, 0.0, 1.0]), np.diag(P0), np.diag([*Q, Q_PARAMS]), np.array([[R]])
    f.sigmas_f = points.sigma_points(f.x, f.P)  # the first update's points; then each predict draws them
    return f


def ukf_tick(f: UnscentedKalmanFilter, volts: float, measured: float) -> None:
    """One tick as the block does it: update with the flow, then predict with the voltage held."""
    f.update(measured)
    f.predict(u=volts)


def check_reference(kind: type[KalmanFilter], make: Callable, tick: Callable, tol: float, assets: int = 3,
                    ticks: int = 300) -> None:
    """Run a reference beside its graph on simulated pumps; AssertionError when innovations or efficiencies differ.

    ``tol`` bounds the difference of the efficiencies and that of the
    innovations relative to the largest innovation [-].
    """
    data = measurements(assets, ticks, seed=2)
    name = kind.__name__.lower()
    history = tg.Simulator(graph(kind), batch=assets, log=[f"{name}.innovation", f"{name}.params"]).run(inputs=data)
    u, y = data["u"][:, :, 0].tolist(), data["y"][:, :, 0].tolist()
    filters = [make() for _ in range(assets)]
    got = np.empty((ticks, assets, 2))
    for k in range(ticks):
        for i, f in enumerate(filters):
            tick(f, u[k][i], y[k][i])
            got[k, i] = np.ravel(f.y)[0], np.ravel(f.x_post)[2]  # the innovation and the posterior η
    innovation, eta = history[f"{name}.innovation"][:, :, 0], history[f"{name}.params"][:, :, 0]
    np.testing.assert_allclose(got[..., 0], innovation, rtol=0, atol=tol * np.abs(innovation).max(),
                               err_msg=f"filterpy {kind.__name__} reference: innovation")
    np.testing.assert_allclose(got[..., 1], eta, rtol=0, atol=tol,
                               err_msg=f"filterpy {kind.__name__} reference: efficiency")


def filterpy_seconds_per_pump_tick(make: Callable, tick: Callable, pumps: int, ticks: int) -> float:
    """Time ``tick`` over ``pumps`` filters made by ``make``, voltage 12 V and flow 0.9 L/s, per pump-tick [s]."""
    filters = [make() for _ in range(pumps)]
    start = time.perf_counter()
    for _ in range(ticks):
        for f in filters:
            tick(f, 12.0, 9e-4)
    return (time.perf_counter() - start) / (ticks * pumps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="50 ticks")
    args = parser.parse_args()
    ticks = 50 if args.quick else args.ticks
    check_reference(EKF, pump_ekf, ekf_tick, tol=1e-9)
    check_reference(UKF, pump_ukf, ukf_tick, tol=1e-7)  # the first updates shrink var q from 1e-2 to 1e-12
    print("filterpy references checked against the graphs on 3 pumps x 300 ticks: same innovations and efficiencies "
          "(EKF to 1e-9, UKF to 1e-7)")

    reference = filterpy_seconds_per_pump_tick(pump_ekf, ekf_tick, 20, ticks)
    print(f"EKF, filterpy loop reference: {reference * 1e6:.1f} µs per pump-tick\n")
    print(f"{'B':>6} {'ms/tick':>9} {'µs/pump-tick':>13} {'vs filterpy':>12}")
    for batch in BATCHES:
        per_tick = graph_seconds_per_tick(batch, ticks)
        per_pump_tick = per_tick / batch
        print(f"{batch:>6} {per_tick * 1e3:>9.3f} {per_pump_tick * 1e6:>13.2f} {reference / per_pump_tick:>11.1f}x")
    reference = filterpy_seconds_per_pump_tick(pump_ukf, ukf_tick, 20, ticks)
    per_tick = graph_seconds_per_tick(1000, ticks, UKF)
    print(f"\nUKF, filterpy loop reference: {reference * 1e6:.1f} µs per pump-tick\n")
    print(f"{'B':>6} {'ms/tick':>9} {'µs/pump-tick':>13} {'vs filterpy':>12}")
    print(f"{1000:>6} {per_tick * 1e3:>9.3f} {per_tick / 1000 * 1e6:>13.2f} {reference / (per_tick / 1000):>11.1f}x")


if __name__ == "__main__":
    main()
