"""Estimation cost: an EKF estimating the efficiency of B pumps in one graph, against a filterpy loop.

Run: ``python benchmarks/bench_estimation.py [--ticks N]``. Prints one table:
for B = 1, 100, 1000, the wall time per tick and per pump-tick of a graph of
two ``Input`` blocks (voltage, flow) feeding ``EKF(PumpLike(), estimate=("efficiency",))``,
history off. The reference is the same filter, one
``filterpy.kalman.ExtendedKalmanFilter`` per pump stepped in a Python loop
(update, then predict with ``predict_x`` calling the model's ``advance`` and
``F`` from central differences of ``advance``, all perturbed copies in one
call, as the block does). The ratio is filterpy's time per pump-tick over the graph's.

A second table does the same for ``UKF`` at B = 1000 against one
``filterpy.kalman.UnscentedKalmanFilter`` (``MerweScaledSigmaPoints``, the
block's default α = 1, β = 2, κ = 0) per pump, its sigma points advanced in
one call of the model, as the block does.
"""

import argparse
import time

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


def graph(kind: type[KalmanFilter] = EKF) -> tg.Graph:
    """Voltage and flow inputs feeding a ``kind`` filter named ``"ekf"`` or ``"ukf"`` that estimates the efficiency."""
    g = tg.Graph("bench", dt=DT)
    block = g.add(kind(PumpLike(), estimate=("efficiency",), q=Q, q_params=Q_PARAMS, r=R, name=kind.__name__.lower()))
    g.connect(g.add(Input("u", shape=(1,), unit="V")).out.value, block.inp.u)
    g.connect(g.add(Input("y", shape=(1,), unit="m3/s")).out.value, block.inp.y)
    return g


def graph_seconds_per_tick(batch: int, ticks: int, kind: type[KalmanFilter] = EKF) -> float:
    sim = tg.Simulator(graph(kind), batch=batch, log=None)
    u = np.full((ticks, batch, 1), 12.0)
    y = np.full((ticks, batch, 1), 9e-4)
    sim.run(inputs={"u": u[:5], "y": y[:5]})
    start = time.perf_counter()
    sim.run(inputs={"u": u, "y": y})
    return (time.perf_counter() - start) / ticks


def filterpy_pumps(count: int) -> list[ExtendedKalmanFilter]:
    """One ``filterpy`` EKF per pump, set up as the block: state ``[ω, q, η]``, same P0, Q and R."""
    model = PumpLike()
    p = model.batch_params(1)

    def advance(z, u):
        params = {**{k: np.full(len(z), v[0]) for k, v in p.items()}, "efficiency": z[:, 2]}
        return np.concatenate([model.advance(z[:, :2], np.full((len(z), 1), u), 0.0, DT, params), z[:, 2:]], axis=1)

    class PumpEKF(ExtendedKalmanFilter):
        def predict_x(self, u=0):
            self.x = advance(self.x.T, u).T

        def transition(self, u):
            """``F`` by central differences of ``advance``, all perturbed copies in one call."""
            h = FD_STEP * (1 + np.abs(self.x[:, 0]))
            zs = np.concatenate([self.x.T, self.x.T + np.diag(h), self.x.T - np.diag(h)])
            values = advance(zs, u)
            return ((values[1:4] - values[4:]) / (2 * h[:, None])).T

    filters = []
    for _ in range(count):
        f = PumpEKF(dim_x=3, dim_z=1)
        f.x = np.array([[0.0], [0.0], [1.0]])
        f.P, f.Q, f.R = np.diag([1e-2] * 3), np.diag([*Q, Q_PARAMS]), np.array([[R]])
        filters.append(f)
    return filters


def flow_jacobian(x: np.ndarray) -> np.ndarray:
    """``H = ∂q/∂[ω, q, η]`` of the pump's measurement."""
    return np.array([[0.0, 1.0, 0.0]])


def flow(x: np.ndarray) -> np.ndarray:
    """The pump's measurement ``y = q`` of a state column ``[ω, q, η]``."""
    return x[1:2]


def filterpy_tick(f: ExtendedKalmanFilter, u: float, y: float) -> None:
    """One tick of one pump as the block does it: update with ``y``, then predict with ``u`` held."""
    f.update(np.array([[y]]), flow_jacobian, flow)
    f.F = f.transition(u)
    f.predict(u=u)


def filterpy_seconds_per_pump_tick(pumps: int, ticks: int) -> float:
    filters = filterpy_pumps(pumps)
    start = time.perf_counter()
    for _ in range(ticks):
        for f in filters:
            filterpy_tick(f, 12.0, 9e-4)
    return (time.perf_counter() - start) / (ticks * pumps)


def filterpy_ukf_seconds_per_pump_tick(pumps: int, ticks: int) -> float:
    """One ``filterpy`` UKF per pump, set up as the block, stepped update-then-predict in a Python loop."""
    model = PumpLike()
    p = model.batch_params(1)

    class PumpUKF(UnscentedKalmanFilter):
        def compute_process_sigmas(self, dt, fx=None, u=0.0):
            """All sigma points through the model's ``advance`` in one call."""
            z = self.points_fn.sigma_points(self.x, self.P)
            params = {**{k: np.full(len(z), v[0]) for k, v in p.items()}, "efficiency": z[:, 2]}
            x = model.advance(z[:, :2], np.full((len(z), 1), u), 0.0, dt, params)
            self.sigmas_f = np.concatenate([x, z[:, 2:]], axis=1)

    filters = []
    for _ in range(pumps):
        points = MerweScaledSigmaPoints(3, alpha=1.0, beta=2.0, kappa=0.0)
        f = PumpUKF(dim_x=3, dim_z=1, dt=DT, hx=flow, fx=None, points=points)
        f.x, f.P, f.Q, f.R = np.array([0.0, 0.0, 1.0]), np.diag([1e-2] * 3), np.diag([*Q, Q_PARAMS]), np.array([[R]])
        f.sigmas_f = points.sigma_points(f.x, f.P)
        filters.append(f)
    start = time.perf_counter()
    for _ in range(ticks):
        for f in filters:
            f.update(np.array([9e-4]))
            f.predict(u=12.0)
    return (time.perf_counter() - start) / (ticks * pumps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=200)
    args = parser.parse_args()
    reference = filterpy_seconds_per_pump_tick(20, args.ticks)
    print(f"filterpy loop reference: {reference * 1e6:.1f} µs per pump-tick\n")
    print(f"{'B':>6} {'ms/tick':>9} {'µs/pump-tick':>13} {'vs filterpy':>12}")
    for batch in BATCHES:
        per_tick = graph_seconds_per_tick(batch, args.ticks)
        per_pump_tick = per_tick / batch
        print(f"{batch:>6} {per_tick * 1e3:>9.3f} {per_pump_tick * 1e6:>13.2f} {reference / per_pump_tick:>11.1f}x")
    reference = filterpy_ukf_seconds_per_pump_tick(20, args.ticks)
    per_tick = graph_seconds_per_tick(1000, args.ticks, UKF)
    print(f"\nUKF, filterpy loop reference: {reference * 1e6:.1f} µs per pump-tick\n")
    print(f"{'B':>6} {'ms/tick':>9} {'µs/pump-tick':>13} {'vs filterpy':>12}")
    print(f"{1000:>6} {per_tick * 1e3:>9.3f} {per_tick / 1000 * 1e6:>13.2f} {reference / (per_tick / 1000):>11.1f}x")


if __name__ == "__main__":
    main()
