"""Fleet scale: a pump twin for N assets, in asset-ticks per second, against a filterpy loop.

Run: ``python benchmarks/bench_fleet.py [--ticks T] [--sizes N ...] [--no-dask]``.

The twin is the graph of ``bench_estimation.py`` (``Input`` voltage and flow
feeding ``EKF(PumpLike(), estimate=("efficiency",))``) with a ``CUSUM`` on the
innovation and a ``ParameterHealth`` on the estimated efficiency. The
measurements come from a fleet of simulated pumps with efficiencies between
0.7 and 1.0 and voltages around 12 V, made before any timing. For each N the
table gives the wall time of T ticks, the asset-ticks per second, and for the
in-process lines the CPU time of this process (the machine may be shared):

- in process, one :class:`~twingraph.Simulator` with ``batch=N``, history off
  (``log=None``) and with every port logged (``log="all"``), each timed after
  a 5-tick warm-up and a reset;
- through :func:`twingraph.fleet.run_fleet` on a Dask ``LocalCluster`` of 2
  worker processes (one thread each, Dask's default settings), one shard per
  worker, history off; the time includes shipping the inputs to the workers
  but not starting the cluster.

The reference is the same work as a Python loop: one
``filterpy.kalman.ExtendedKalmanFilter`` per pump (``bench_estimation.filterpy_tick``),
then the CUSUM sums and the health indicator in plain Python floats. It is
timed on a subset of the assets (``--reference-assets``) over all T ticks and
scaled per asset-tick; the last column is each line's rate over the reference rate.

Memory: at N = 10,000 one tick's temporary arrays total a few MB. In a process
that has not yet freed a block of that size, glibc's default (dynamic) heap
trim threshold is lower, the heap is trimmed at the end of every tick and the
next tick page-faults the memory in again, about 1,500 faults per tick at
N = 10,000, which halves the rate. The warm-up and reset before each timing
free the first buffers, which raises the threshold; the environment variables
``MALLOC_MMAP_THRESHOLD_=67108864 MALLOC_TRIM_THRESHOLD_=268435456`` keep the
heap from the start. Dask starts its workers with ``MALLOC_TRIM_THRESHOLD_=65536``
(``distributed.nanny.pre-spawn-environ``), which returns memory to the system
eagerly and so makes every large temporary a fresh mapping: the worker lines
pay that cost on every tick.
"""

import argparse
import math
import time
import warnings

import numpy as np
from bench_estimation import DT, R, filterpy_pumps, filterpy_tick, graph

import twingraph as tg
from blocks.anomaly import CUSUM
from blocks.health import ParameterHealth
from blocks.physics import PumpLike
from twingraph._optional import require
from twingraph.fleet import run_fleet

SIZES = (1, 100, 10_000)
K, H = 0.5 * math.sqrt(R), 5.0 * math.sqrt(R)  # CUSUM allowance and threshold on the innovation [m3/s]
NOMINAL, FAILED = 1.0, 0.6  # efficiency when new and at failure [-]
WORKERS = 2


def pump_twin() -> tg.Graph:
    """The EKF graph of ``bench_estimation`` with a CUSUM on the innovation and a health indicator."""
    g = graph()
    alarm = g.add(CUSUM(k=K, h=H, name="alarm"))
    hi = g.add(ParameterHealth("efficiency", NOMINAL, FAILED, name="hi"))
    g.connect("ekf.innovation", alarm.inp.u)
    g.connect("ekf.params", hi.inp.params)
    return g


def measurements(n: int, ticks: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Voltages ``(T, N, 1)`` [V] and noisy flows ``(T, N, 1)`` [m3/s] of ``n`` simulated pumps."""
    rng = np.random.default_rng(seed)
    truth = PumpLike(efficiency=rng.uniform(0.7, 1.0, n))
    x, p = truth.initial_state(n), truth.batch_params(n)
    phase = rng.uniform(0.0, 2 * np.pi, n)
    u = np.empty((ticks, n, 1))
    y = np.empty((ticks, n, 1))
    for k in range(ticks):
        u[k, :, 0] = 12.0 + 0.5 * np.sin(0.2 * np.pi * k * DT + phase)
        y[k] = truth.observe(x, u[k], p) + math.sqrt(R) * rng.normal(size=(n, 1))
        x = truth.advance(x, u[k], k * DT, DT, p)
    return {"u": u, "y": y}


def in_process_seconds(g: tg.Graph, inputs: dict[str, np.ndarray], log) -> tuple[float, float]:
    """Wall and CPU time of one ``Simulator.run`` over ``inputs``, after a 5-tick warm-up and a reset [s]."""
    n = inputs["u"].shape[1]
    sim = tg.Simulator(g, batch=n, log=log, progress=False)
    sim.run(inputs={name: values[:5] for name, values in inputs.items()})
    sim.reset()
    start, cpu = time.perf_counter(), time.process_time()
    sim.run(inputs=inputs)
    return time.perf_counter() - start, time.process_time() - cpu


def dask_seconds(g: tg.Graph, inputs: dict[str, np.ndarray], client) -> tuple[float, float]:
    """Wall time of :func:`run_fleet` over ``inputs``, one shard per worker, history off [s]; no CPU time (NaN)."""
    n = inputs["u"].shape[1]
    start = time.perf_counter()
    result = run_fleet(g, n, inputs=inputs, shard_size=-(-n // WORKERS), client=client, log=None)
    seconds = time.perf_counter() - start
    if result.failures:
        raise RuntimeError(f"Shards failed on Dask: {result.failures}")
    return seconds, float("nan")


def filterpy_seconds_per_asset_tick(inputs: dict[str, np.ndarray], assets: int) -> float:
    """The reference: filterpy EKF, CUSUM and health per pump in a Python loop, per asset-tick [s]."""
    u, y = inputs["u"][:, :assets, 0].tolist(), inputs["y"][:, :assets, 0].tolist()
    filters = filterpy_pumps(assets)
    high, low, health = [0.0] * assets, [0.0] * assets, [1.0] * assets
    start = time.perf_counter()
    for u_k, y_k in zip(u, y, strict=True):
        for i, f in enumerate(filters):
            filterpy_tick(f, u_k[i], y_k[i])
            nu = float(f.y[0, 0])
            high[i], low[i] = max(0.0, high[i] + nu - K), max(0.0, low[i] - nu - K)
            if max(high[i], low[i]) > H:
                high[i] = low[i] = 0.0
            health[i] = min(max((float(f.x_post[2, 0]) - FAILED) / (NOMINAL - FAILED), 0.0), 1.0)
    return (time.perf_counter() - start) / (len(u) * assets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=1000)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="fleet sizes N")
    parser.add_argument("--reference-assets", type=int, default=20, help="assets the filterpy loop is timed on")
    parser.add_argument("--no-dask", action="store_true", help="skip the LocalCluster lines")
    args = parser.parse_args()
    ticks = args.ticks

    g = pump_twin()
    client = None
    if not args.no_dask:
        distributed = require("dask.distributed", "fleet", purpose="the LocalCluster lines")
        cluster = distributed.LocalCluster(
            n_workers=WORKERS, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = distributed.Client(cluster)
        # run_fleet ships each shard's inputs inside its task, so that a retried task still has them
        warnings.filterwarnings("ignore", message="Sending large graph", category=UserWarning)

    reference_inputs = measurements(args.reference_assets, ticks, seed=1)
    reference = filterpy_seconds_per_asset_tick(reference_inputs, args.reference_assets)
    print(f"pump twin: EKF(PumpLike, estimate=efficiency) + CUSUM + ParameterHealth, {ticks} ticks")
    print(
        f"reference: filterpy EKF + CUSUM + health in a Python loop, timed on {args.reference_assets} assets "
        f"x {ticks} ticks and scaled per asset-tick: {reference * 1e6:.1f} us/asset-tick, "
        f"{1 / reference:,.0f} asset-ticks/s\n"
    )
    print(f"{'N':>7s}  {'line':32s} {'seconds':>9s} {'cpu s':>8s} {'asset-ticks/s':>15s} {'x filterpy':>11s}")
    for n in args.sizes:
        inputs = measurements(n, ticks)
        lines = [("in process, log=None", in_process_seconds(g, inputs, None))]
        lines.append(('in process, log="all"', in_process_seconds(g, inputs, "all")))
        if client is not None:
            lines.append((f"Dask LocalCluster, {WORKERS} workers", dask_seconds(g, inputs, client)))
        for name, (seconds, cpu) in lines:
            rate = n * ticks / seconds
            cpu_text = "-" if np.isnan(cpu) else f"{cpu:.3f}"
            print(f"{n:>7d}  {name:32s} {seconds:9.3f} {cpu_text:>8s} {rate:15,.0f} {rate * reference:10.1f}x")
    if client is not None:
        client.close()
        cluster.close()


if __name__ == "__main__":
    main()
