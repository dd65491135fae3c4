"""Fleet scale: the README's pump twin for N assets, in asset-ticks per second, against a filterpy loop.

Run: ``python benchmarks/bench_fleet.py [--ticks T] [--sizes N ...] [--no-dask] [--quick]``.

The twin is the graph :class:`~blocks.TwinSystem` builds for the README
(``PumpLike``; ``EKF`` estimating the efficiency, q = 0, q_params = 1e-6,
r = 1e-12, p0 = 0, p0_params = 0.1; its innovation in standard deviations,
``ν / √S``, through a ``Residual``; ``CUSUM(k=1, h=8)`` on that;
``ParameterHealth`` from the efficiency, 1.0 new and 0.6 failed; for the full
twin ``RUL(window=50)`` on the health indicator), dt = 0.05 s. The measurements
come from a fleet of simulated pumps (``bench_estimation.measurements``:
efficiencies between 0.7 and 1.0, voltages swinging around 12 V, flow noise
of variance r), made before any timing.

Every in-process line runs on one core: BLAS and OpenMP pools are limited to
one thread with ``threadpoolctl`` (the ``cpu s`` and ``cpu/wall`` columns are
this process's CPU time; on a shared machine cpu/wall falls below 1). Each line
runs 60 ticks first (the RUL window fills) and times the next T ticks of the
same simulator.

1. The twin without RUL at each N: one :class:`~twingraph.Simulator` with
   ``batch=N``, history off (``log=None``) and every port logged (``log="all"``,
   all T ticks kept), and through :func:`twingraph.fleet.run_fleet` on a Dask
   ``LocalCluster`` of 2 worker processes (one thread each), one shard per
   worker, history off, timed with the shipping of the inputs but not the start
   of the cluster (one small run first). The cluster starts after every other line and the
   reference are timed. The last column is each line's rate over the reference's.
2. The full twin with RUL at B = 1, 10, 100, 1,000, 10,000, history off and
   on, with memory: the tracemalloc peak of a separate, untimed run, from
   building the simulator to its last tick (history buffers, the blocks' state,
   each tick's temporaries; the inputs excluded). The last line says whether
   B = 10,000 meets issue 20's target (2 M asset-ticks/s history off, 1 M on).

The reference (:func:`filterpy_twin`) is the same twin without RUL as the
fastest straightforward Python loop: one ``bench_estimation.PumpEKF`` per pump
(filterpy's ``ExtendedKalmanFilter`` over the pump's RK4 tick in floats, ``F``
built as the block builds it, Joseph update), then the normalised innovation,
the CUSUM sums with their restart and the health indicator in Python floats.
Before timing it runs beside the graph on 3 pumps and must give the same
innovations, efficiencies, CUSUM scores and health to 1e-9 of each one's
largest value; it is timed
alone on ``--reference-assets`` pumps over T ticks and scaled per asset-tick.

Memory: at N = 10,000 one tick's temporary arrays total a few MB. In a process
that has not yet freed a block of that size, glibc's default (dynamic) heap
trim threshold is lower, the heap is trimmed at the end of every tick and the
next tick page-faults the memory in again, about 1,500 faults per tick at
N = 10,000, which halves the rate. The warm-up frees the first buffers, which
raises the threshold; the environment variables
``MALLOC_MMAP_THRESHOLD_=67108864 MALLOC_TRIM_THRESHOLD_=268435456`` keep the
heap from the start. Dask starts its workers with ``MALLOC_TRIM_THRESHOLD_=65536``
(``distributed.nanny.pre-spawn-environ``), which returns memory to the system
eagerly and so makes every large temporary a fresh mapping: the worker lines
pay that cost on every tick.
"""

import argparse
import math
import time
import tracemalloc
import warnings

import numpy as np
from bench_estimation import PumpEKF, R, flow, flow_jacobian, measurements, pump_transition
from threadpoolctl import threadpool_limits

import twingraph as tg
from blocks import TwinSystem
from blocks.anomaly import CUSUM
from blocks.estimation import EKF
from blocks.health import RUL, ParameterHealth
from blocks.physics import PumpLike
from twingraph._optional import require
from twingraph.fleet import run_fleet

SIZES = (1, 100, 10_000)
SCALING = (1, 10, 100, 1_000, 10_000)
DT = 0.05  # tick [s]
Q_PARAMS, P0_PARAMS = 1e-6, 0.1  # random-walk and initial variance of the efficiency [-]
K, H = 1.0, 8.0  # CUSUM allowance and threshold on the normalised innovation [-]
NOMINAL, FAILED = 1.0, 0.6  # efficiency when new and at failure [-]
WINDOW = 50  # RUL window [ticks]
WARMUP = 60  # ticks run before each timing: the RUL window is full
WORKERS = 2
TARGET = (2e6, 1e6)  # issue 20: full twin at B = 10,000 on one core, history off and on [asset-ticks/s]


def pump_twin(rul: bool) -> tg.Graph:
    """The README's twin graph, with or without its ``RUL`` block."""
    twin = TwinSystem(
        physics=PumpLike(),
        estimator=EKF(estimate=("efficiency",), q=0.0, q_params=Q_PARAMS, r=R, p0=0.0, p0_params=P0_PARAMS,
                      x0=[0.0, 0.0]),
        anomaly=CUSUM(k=K, h=H),
        health=ParameterHealth(param="efficiency", nominal=NOMINAL, failed=FAILED),
        rul=RUL(window=WINDOW) if rul else None,
        dt=DT,
    )
    return twin.graph


def split(inputs: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The first ``WARMUP`` ticks of ``inputs`` and the rest."""
    return ({name: v[:WARMUP] for name, v in inputs.items()}, {name: v[WARMUP:] for name, v in inputs.items()})


def in_process_seconds(g: tg.Graph, inputs: dict[str, np.ndarray], log) -> tuple[float, float]:
    """Wall and CPU time of the ticks after ``WARMUP`` of one simulator over ``inputs`` [s]."""
    warm, timed = split(inputs)
    sim = tg.Simulator(g, batch=inputs["u"].shape[1], log=log, progress=False)
    sim.run(inputs=warm)
    start, cpu = time.perf_counter(), time.process_time()
    sim.run(inputs=timed)
    return time.perf_counter() - start, time.process_time() - cpu


def traced_peak_mb(g: tg.Graph, inputs: dict[str, np.ndarray], log) -> float:
    """tracemalloc's peak over building a simulator and running it over ``inputs`` [MB]."""
    warm, timed = split(inputs)
    tracemalloc.start()
    sim = tg.Simulator(g, batch=inputs["u"].shape[1], log=log, progress=False)
    sim.run(inputs=warm)
    sim.run(inputs=timed)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 1e6


def dask_seconds(g: tg.Graph, inputs: dict[str, np.ndarray], client) -> tuple[float, float]:
    """Wall time of :func:`run_fleet` over the ticks after ``WARMUP``, one shard per worker, history off [s].

    No CPU time (NaN): the work is in the workers.
    """
    timed = split(inputs)[1]
    n = timed["u"].shape[1]
    start = time.perf_counter()
    result = run_fleet(g, n, inputs=timed, shard_size=-(-n // WORKERS), client=client, log=None)
    seconds = time.perf_counter() - start
    if result.failures:
        raise RuntimeError(f"Shards failed on Dask: {result.failures}")
    return seconds, float("nan")


def filterpy_twin(u: list[list[float]], y: list[list[float]], record: np.ndarray | None = None) -> float:
    """The reference: the twin without RUL, one filterpy EKF per pump in a Python loop; seconds per asset-tick.

    ``u`` and ``y`` are ``[tick][asset]`` voltages [V] and flows [m3/s]; when
    ``record`` is given, ``(T, N, 4)``, it receives each tick's innovation,
    efficiency, CUSUM score and health indicator.
    """
    assets = len(u[0])
    filters = [PumpEKF(DT, (0.0, 0.0, 1.0), (0.0, 0.0, P0_PARAMS), (0.0, 0.0, Q_PARAMS), R) for _ in range(assets)]
    high, low = [0.0] * assets, [0.0] * assets
    start = time.perf_counter()
    for k, (u_k, y_k) in enumerate(zip(u, y, strict=True)):
        for i, f in enumerate(filters):
            f.update(y_k[i], flow_jacobian, flow)
            nu = float(f.y[0, 0])
            residual = nu / math.sqrt(f.S[0, 0])
            high[i], low[i] = max(0.0, high[i] + residual - K), max(0.0, low[i] - residual - K)
            score = max(high[i], low[i])
            if score > H:  # the alarm restarts both sums
                high[i] = low[i] = 0.0
            omega, q, eta = f.x[:, 0].tolist()
            health = min(max((eta - FAILED) / (NOMINAL - FAILED), 0.0), 1.0)
            if record is not None:
                record[k, i] = nu, eta, score, health
            f.F = pump_transition(omega, q, eta, u_k[i], DT)
            f.predict(u=u_k[i])
    return (time.perf_counter() - start) / (len(u) * assets)


def check_reference(assets: int = 3, ticks: int = 300) -> None:
    """Run :func:`filterpy_twin` beside the graph on simulated pumps; AssertionError where they differ."""
    data = measurements(assets, ticks, dt=DT, seed=2)
    ports = ("estimator.innovation", "estimator.params", "anomaly.score", "health.hi")
    history = tg.Simulator(pump_twin(rul=False), batch=assets, log=list(ports)).run(inputs=data)
    got = np.empty((ticks, assets, 4))
    filterpy_twin(data["u"][:, :, 0].tolist(), data["y"][:, :, 0].tolist(), record=got)
    for j, port in enumerate(ports):
        want = history[port].reshape(ticks, assets)
        np.testing.assert_allclose(got[..., j], want, rtol=0, atol=1e-9 * np.abs(want).max(),
                                   err_msg=f"filterpy twin reference: {port}")


def scaling_ticks(batch: int, quick: bool) -> int:
    """Timed ticks of the scaling table at ``batch``: about 2 M asset-ticks, 200 to 2,000 (quick: 0.05 M, 20 to 200)."""
    low, high, budget = (20, 200, 50_000) if quick else (200, 2000, 2_000_000)
    return min(high, max(low, budget // batch))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=1000, help="timed ticks of table 1")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="fleet sizes N of table 1")
    parser.add_argument("--reference-assets", type=int, default=20, help="assets the filterpy loop is timed on")
    parser.add_argument("--no-dask", action="store_true", help="skip the LocalCluster lines")
    parser.add_argument("--quick", action="store_true",
                        help="100 ticks, N = 1, 100, 1000, no Dask lines; shorter scaling runs")
    args = parser.parse_args()
    ticks, sizes = (100, [1, 100, 1000]) if args.quick else (args.ticks, args.sizes)

    check_reference()
    with threadpool_limits(limits=1):
        data = measurements(args.reference_assets, ticks, dt=DT, seed=1)
        reference = filterpy_twin(data["u"][:, :, 0].tolist(), data["y"][:, :, 0].tolist())
        twin = pump_twin(rul=False)
        rows = []
        for n in sizes:
            inputs = measurements(n, WARMUP + ticks, dt=DT)
            rows.append((n, "in process, log=None", in_process_seconds(twin, inputs, None)))
            rows.append((n, 'in process, log="all"', in_process_seconds(twin, inputs, "all")))
        full = pump_twin(rul=True)
        scaling = []
        for batch in SCALING:
            steps = scaling_ticks(batch, args.quick)
            inputs = measurements(batch, WARMUP + steps, dt=DT)
            timings = [in_process_seconds(full, inputs, log) for log in (None, "all")]
            peaks = [traced_peak_mb(full, inputs, log) for log in (None, "all")]
            scaling.append((batch, steps, timings, peaks))
    if not (args.no_dask or args.quick):
        distributed = require("dask.distributed", "fleet", purpose="the LocalCluster lines")
        with (
            distributed.LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True,
                                     dashboard_address=None) as cluster,
            distributed.Client(cluster) as client,
        ):
            # run_fleet ships each shard's inputs inside its task, so that a retried task still has them
            warnings.filterwarnings("ignore", message="Sending large graph", category=UserWarning)
            run_fleet(twin, WORKERS, inputs=measurements(WORKERS, 5, dt=DT), shard_size=1, client=client,
                      log=None)  # the workers import and compile before the timed lines
            for n in sizes:
                rows.append((n, f"Dask LocalCluster, {WORKERS} workers",
                             dask_seconds(twin, measurements(n, WARMUP + ticks, dt=DT), client)))

    print(f"1. pump twin without RUL: EKF + Residual + CUSUM + ParameterHealth, {ticks} ticks, one core")
    print(
        f"reference: filterpy twin in a Python loop (checked against the graph on 3 pumps), timed alone on "
        f"{args.reference_assets} assets x {ticks} ticks: {reference * 1e6:.1f} us/asset-tick, "
        f"{1 / reference:,.0f} asset-ticks/s\n"
    )
    print(f"{'N':>7s}  {'line':32s} {'seconds':>9s} {'cpu s':>8s} {'asset-ticks/s':>15s} {'x filterpy':>11s}")
    for n, name, (seconds, cpu) in sorted(rows, key=lambda row: row[0]):
        rate = n * ticks / seconds
        cpu_text = "-" if np.isnan(cpu) else f"{cpu:.3f}"
        print(f"{n:>7d}  {name:32s} {seconds:9.3f} {cpu_text:>8s} {rate:15,.0f} {rate * reference:10.1f}x")

    print("\n2. full twin with RUL(window=50), one core; memory: tracemalloc peak of a separate untimed run [MB]\n")
    print(f"{'B':>7s} {'ticks':>6s}  {'log off /s':>12s} {'cpu/wall':>8s} {'MB':>8s}  "
          f"{'log on /s':>12s} {'cpu/wall':>8s} {'MB':>8s}  {'us/tick off':>11s}")
    for batch, steps, timings, peaks in scaling:
        cells = [f"{batch * steps / s:12,.0f} {cpu / s:8.2f} {mb:8.1f}" for (s, cpu), mb in zip(timings, peaks)]
        print(f"{batch:>7d} {steps:>6d}  {'  '.join(cells)}  {timings[0][0] / steps * 1e6:11.1f}")
    batch, steps, timings, _ = scaling[-1]
    rates = [batch * steps / s for s, _ in timings]
    verdicts = [f"{rate / 1e6:.2f} M (target {target / 1e6:.0f} M: {'met' if rate >= target else 'NOT met'})"
                for rate, target in zip(rates, TARGET, strict=True)]
    print(f"\nissue 20 target at B = {batch:,}: log off {verdicts[0]}; log on {verdicts[1]}")


if __name__ == "__main__":
    main()
