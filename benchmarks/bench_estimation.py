"""Estimation cost: an EKF estimating the efficiency of B pumps in one graph, against a filterpy loop.

Run: ``python benchmarks/bench_estimation.py [--ticks N]``. Prints one table:
for B = 1, 100, 1000, the wall time per tick and per pump-tick of a graph of
two ``Input`` blocks (voltage, flow) feeding ``EKF(PumpLike(), estimate=("efficiency",))``,
history off. The reference is the same filter, one
``filterpy.kalman.ExtendedKalmanFilter`` per pump stepped in a Python loop
(update, then predict with ``predict_x`` calling the model's ``advance`` and
``F`` from central differences of ``advance``, all perturbed copies in one
call, as the block does). The ratio is filterpy's time per pump-tick over the graph's.
"""

import argparse
import time

import numpy as np
from filterpy.kalman import ExtendedKalmanFilter

import twingraph as tg
from blocks.estimation import EKF
from blocks.physics import PumpLike
from blocks.sources import Input

BATCHES = (1, 100, 1000)
DT = 0.01
Q, Q_PARAMS, R = (1e-4, 1e-12), 1e-8, 1e-12


def graph() -> tg.Graph:
    g = tg.Graph("bench", dt=DT)
    ekf = g.add(EKF(PumpLike(), estimate=("efficiency",), q=Q, q_params=Q_PARAMS, r=R, name="ekf"))
    g.connect(g.add(Input("u", shape=(1,), unit="V")).out.value, ekf.inp.u)
    g.connect(g.add(Input("y", shape=(1,), unit="m3/s")).out.value, ekf.inp.y)
    return g


def graph_seconds_per_tick(batch: int, ticks: int) -> float:
    sim = tg.Simulator(graph(), batch=batch, log=None)
    u = np.full((ticks, batch, 1), 12.0)
    y = np.full((ticks, batch, 1), 9e-4)
    sim.run(inputs={"u": u[:5], "y": y[:5]})
    start = time.perf_counter()
    sim.run(inputs={"u": u, "y": y})
    return (time.perf_counter() - start) / ticks


def filterpy_seconds_per_pump_tick(pumps: int, ticks: int) -> float:
    model = PumpLike()
    p = model.batch_params(1)
    step = 6e-6

    def advance(z, u):
        params = {**{k: np.full(len(z), v[0]) for k, v in p.items()}, "efficiency": z[:, 2]}
        return np.concatenate([model.advance(z[:, :2], np.full((len(z), 1), u), 0.0, DT, params), z[:, 2:]], axis=1)

    class PumpEKF(ExtendedKalmanFilter):
        def predict_x(self, u=0):
            self.x = advance(self.x.T, u).T

    def jacobian(x, u):
        h = step * (1 + np.abs(x[:, 0]))
        zs = np.concatenate([x.T, x.T + np.diag(h), x.T - np.diag(h)])
        values = advance(zs, u)
        return ((values[1:4] - values[4:]) / (2 * h[:, None])).T

    filters = []
    for _ in range(pumps):
        f = PumpEKF(dim_x=3, dim_z=1)
        f.x = np.array([[0.0], [0.0], [1.0]])
        f.P, f.Q, f.R = np.diag([1e-2] * 3), np.diag([*Q, Q_PARAMS]), np.array([[R]])
        filters.append(f)
    start = time.perf_counter()
    for _ in range(ticks):
        for f in filters:
            f.update(np.array([[9e-4]]), lambda x: np.array([[0.0, 1.0, 0.0]]), lambda x: x[1:2])
            f.F = jacobian(f.x, 12.0)
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
        print(f"{batch:>6} {per_tick * 1e3:>9.3f} {per_tick / batch * 1e6:>13.2f} {reference / (per_tick / batch):>11.1f}x")


if __name__ == "__main__":
    main()
