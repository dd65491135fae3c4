"""Engine overhead: microseconds per block-tick, with full logging.

Run: ``python benchmarks/bench_engine.py [--ticks N] [--quick]``. Prints one table:

(a) a chain of 20 Gain blocks at B=1;
(b) the same chain at B=1000, per block-tick and per element;
(c) a 10-block graph with one feedback loop through a UnitDelay, at B=1.

The reference line is the bare NumPy work of (a), the same ``np.multiply(...,
out=...)`` calls and the same history copy in a plain Python loop, so the ratio
shows what the engine adds on top of the arithmetic on this machine.

Below the table, the anchor diagram of the comparison with other
block-diagram simulators (PathSim, bdsim, pycollimator): a unit step at 1 s
into a ``MassSpringDamper`` (m = 1 kg, c = 0.5 N s/m, k = 4 N/m) into a
``Gain(k=2)``, RK4, dt = 1 ms, B = 1, 10,000 ticks, every port logged, in
microseconds per tick (best of 3). Its last output is checked against the
analytic response to 1e-9 first.
"""

import argparse
import math
import time

import numpy as np

import twingraph as tg
from blocks.discrete import UnitDelay
from blocks.math import Gain, Sum
from blocks.physics import MassSpringDamper
from blocks.sources import Constant, Sine, Step

ANCHOR_TICKS = 10_000


def gain_chain(n: int = 20) -> tg.Graph:
    g = tg.Graph("chain", dt=0.01)
    prev = g.add(Sine(frequency=1.0, name="src")).out.y
    for i in range(n):
        gain = g.add(Gain(k=1.0001, name=f"g{i}"))
        g.connect(prev, gain.inp.u)
        prev = gain.out.y
    return g


def feedback_loop() -> tg.Graph:
    """Source -> Sum -> 6 gains -> UnitDelay -> back into Sum; a Constant as bias (10 blocks)."""
    g = tg.Graph("loop", dt=0.01)
    src = g.add(Sine(name="src"))
    bias = g.add(Constant(value=0.1, name="bias"))
    total = g.add(Sum(signs="++-", name="sum"))
    g.connect(src.out.y, total.inp.u1)
    g.connect(bias.out.y, total.inp.u2)
    prev = total.out.y
    for i in range(6):
        gain = g.add(Gain(k=0.5, name=f"g{i}"))
        g.connect(prev, gain.inp.u)
        prev = gain.out.y
    delay = g.add(UnitDelay(name="delay"))
    g.connect(prev, delay.inp.u)
    g.connect(delay.out.y, total.inp.u3)
    return g


def anchor() -> tg.Graph:
    """Step (1 N at 1 s) → mass-spring-damper → gain 2, RK4, dt = 1 ms."""
    g = tg.Graph("anchor", dt=1e-3)
    step = g.add(Step(time=1.0, before=[0.0], after=[1.0], unit="N", name="step"))
    msd = g.add(MassSpringDamper(mass=1.0, damping=0.5, stiffness=4.0, integrator="rk4", name="msd"))
    gain = g.add(Gain(k=2.0, name="gain"))
    g.connect(step.out.y, msd.inp.u)
    g.connect(msd.out.y, gain.inp.u)
    return g


def check_anchor() -> None:
    """AssertionError unless the anchor's last output is ``2 s(t)`` of the analytic step response to 1e-9."""
    history = tg.Simulator(anchor(), progress=False).run(steps=ANCHOR_TICKS)
    t = (ANCHOR_TICKS - 1) * 1e-3 - 1.0  # the last tick's time since the step [s]
    omega, zeta = 2.0, 0.5 / (2 * 2.0)  # √(k/m), c / (2 √(k m))
    omega_d, d = omega * math.sqrt(1 - zeta**2), -0.25  # s₀ - F/k
    decay = math.exp(-zeta * omega * t)
    s = 0.25 + decay * (d * math.cos(omega_d * t) + zeta * omega * d / omega_d * math.sin(omega_d * t))
    assert abs(float(history["gain.y"][-1, 0]) - 2 * s) < 1e-9, (float(history["gain.y"][-1, 0]), 2 * s)


def time_run(graph: tg.Graph, batch: int, ticks: int, repeats: int = 3) -> float:
    """Best wall time of ``repeats`` runs of ``ticks`` ticks [s]."""
    best = np.inf
    for _ in range(repeats):
        sim = tg.Simulator(graph, batch=batch, progress=False)
        start = time.perf_counter()
        sim.run(steps=ticks)
        best = min(best, time.perf_counter() - start)
    return best


def time_bare_numpy(n: int, ticks: int, repeats: int = 3) -> float:
    """The arithmetic of the gain chain with no engine: NumPy calls and one history copy per tick."""
    best = np.inf
    for _ in range(repeats):
        arena = np.zeros((1, n + 1))
        views = [arena[:, i] for i in range(n + 1)]
        history = np.empty((ticks, 1, n + 1))
        start = time.perf_counter()
        for k in range(ticks):
            views[0][...] = np.sin(2 * np.pi * k * 0.01)
            for i in range(n):
                np.multiply(views[i], 1.0001, out=views[i + 1])
            history[k] = arena
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true", help="2,000 ticks for the table (the anchor runs 10,000)")
    args = parser.parse_args()
    ticks = 2000 if args.quick else args.ticks

    rows = []
    chain = gain_chain(20)
    n_blocks = len(chain.blocks)
    bare = time_bare_numpy(20, ticks) / (ticks * n_blocks) * 1e6
    a = time_run(chain, 1, ticks) / (ticks * n_blocks) * 1e6
    rows.append(("(a) 20-Gain chain, B=1, logging", n_blocks, 1, a, a, a / bare))
    b_ticks = max(ticks // 10, 100)
    b = time_run(chain, 1000, b_ticks) / (b_ticks * n_blocks) * 1e6
    rows.append(("(b) 20-Gain chain, B=1000, logging", n_blocks, 1000, b, b / 1000, float("nan")))
    loop = feedback_loop()
    c = time_run(loop, 1, ticks) / (ticks * len(loop.blocks)) * 1e6
    rows.append(("(c) 10 blocks, UnitDelay feedback, B=1", len(loop.blocks), 1, c, c, float("nan")))
    rows.append(("reference: bare NumPy of (a), no engine", n_blocks, 1, bare, bare, 1.0))

    print(f"{'case':42s} {'blocks':>6s} {'B':>5s} {'us/block-tick':>14s} {'us/element':>11s} {'x bare':>7s}")
    for name, blocks, batch, per_block, per_element, ratio in rows:
        ratio_text = "" if np.isnan(ratio) else f"{ratio:7.2f}"
        print(f"{name:42s} {blocks:6d} {batch:5d} {per_block:14.3f} {per_element:11.5f} {ratio_text:>7s}")

    check_anchor()
    per_tick = time_run(anchor(), 1, ANCHOR_TICKS) / ANCHOR_TICKS * 1e6
    print(f"\nanchor: step -> mass-spring-damper -> gain, RK4, dt 1 ms, B=1, {ANCHOR_TICKS:,} ticks, logging: "
          f"{per_tick:.1f} us/tick (issue 20: ~28 us today, no slower)")


if __name__ == "__main__":
    main()
