"""Physics cost: a chain of 50 coupled oscillators integrated with RK4, for fleets of B assets.

Run: ``python benchmarks/bench_physics.py [--ticks N] [--repeats R] [--quick]``. Prints one
table: for B = 1, 10, 100, 1000, the wall time per tick, per asset-tick, and
the time per tick relative to B = 1, and the cost of each asset added since
the previous row (constant when the cost is linear in B). The graph is a ``Constant`` force feeding
an ``OscillatorChain(n_masses=50)`` (100 states per asset, one RK4 step per
tick); history logging is off, so the numbers are the integration and the
engine's per-tick work. Small batches are dominated by the fixed cost of each
NumPy call; from there the cost grows linearly with B.

At B = 1000 every temporary array of the RK4 step is 400-800 kB. With glibc's
default malloc settings such blocks are returned to the system and faulted in
again on every allocation, which adds system time that grows faster than B;
``MALLOC_MMAP_THRESHOLD_=67108864 MALLOC_TRIM_THRESHOLD_=268435456`` in the
environment keeps them in the heap and shows the arithmetic alone.
"""

import argparse
import time

import numpy as np

import twingraph as tg
from blocks.physics import OscillatorChain
from blocks.sources import Constant

BATCHES = (1, 10, 100, 1000)


def chain_graph(n_masses: int = 50) -> tg.Graph:
    g = tg.Graph("chain", dt=0.05)
    force = g.add(Constant(value=[0.0], unit="N", name="force"))
    x0 = np.concatenate([np.sin(np.arange(1, n_masses + 1) * np.pi / (n_masses + 1)), np.zeros(n_masses)])
    chain = g.add(OscillatorChain(n_masses=n_masses, x0=x0, integrator="rk4", name="chain"))
    g.connect(force.out.y, chain.inp.u)
    return g


def seconds_per_tick(graph: tg.Graph, batch: int, ticks: int, repeats: int) -> float:
    """Best wall time of ``repeats`` runs of ``ticks`` ticks, per tick [s]."""
    best = np.inf
    for _ in range(repeats):
        sim = tg.Simulator(graph, batch=batch, log=None, progress=False)
        start = time.perf_counter()
        sim.run(steps=ticks)
        best = min(best, time.perf_counter() - start)
    return best / ticks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=10_000, help="ticks per run for B <= 100 (B = 1000 runs a tenth)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1,000 ticks, one run each")
    args = parser.parse_args()
    if args.quick:
        args.ticks, args.repeats = 1000, 1

    graph = chain_graph()
    print(f"{'B':>5s} {'ticks':>6s} {'us/tick':>10s} {'us/asset-tick':>14s} {'x B=1':>7s} {'us/added asset':>15s}")
    base = previous = None
    for batch in BATCHES:
        ticks = args.ticks if batch <= 100 else max(args.ticks // 10, 10)
        per_tick = seconds_per_tick(graph, batch, ticks, args.repeats) * 1e6
        base = base or per_tick
        added = "" if previous is None else f"{(per_tick - previous[1]) / (batch - previous[0]):15.3f}"
        print(f"{batch:5d} {ticks:6d} {per_tick:10.1f} {per_tick / batch:14.3f} {per_tick / base:7.1f} {added:>15s}")
        previous = (batch, per_tick)


if __name__ == "__main__":
    main()
