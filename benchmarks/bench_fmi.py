"""FMU block cost: the mass-spring-damper as a co-simulation FMU beside the native block, per asset-tick.

Run: ``python benchmarks/bench_fmi.py [--ticks N] [--repeats R] [--quick]``. Builds
``MassSpringDamper.fmu`` with pythonfmu (:func:`blocks.fmi.examples.mass_spring_damper`)
and prints one table: for B = 1 and B = 100, the wall time per asset-tick of
a graph ``Input -> FMU`` and of the same graph with the native
``MassSpringDamper`` (RK4, one step per tick), and their ratio. Both run the
same model with the same integrator and inputs (the check at the start
asserts they agree to 1e-8). History logging is off; timings alternate
between the two graphs, best of ``repeats``.

The FMU block makes one ``setReal``, ``doStep`` and ``getReal`` call per
asset per tick through fmpy's ctypes bindings, and this FMU's ``doStep`` runs
Python (pythonfmu); the native block steps the whole batch in a few NumPy
calls. So the FMU's cost grows linearly with B, from a fixed cost per call
that a compiled FMU shares.
"""

import argparse
import tempfile
import time

import numpy as np

import twingraph as tg
from blocks import fmi
from blocks.physics import MassSpringDamper

BATCHES = (1, 100)
DT = 0.01


def graphs(fmu_path: str) -> dict[str, tg.Graph]:
    """``Input F -> plant`` with the plant as the FMU block and as the native block."""
    fmu = tg.Graph("fmu", dt=DT)
    force = fmu.add(tg.Input("F", shape=()))
    fmu.connect(force.out.value, fmu.add(fmi.FMU(path=fmu_path, start={"s0": 1.0}, name="plant")).inp.force)
    native = tg.Graph("native", dt=DT)
    force = native.add(tg.Input("F", shape=(1,)))
    native.connect(force.out.value, native.add(MassSpringDamper(x0=[1.0, 0.0], name="plant")).inp.u)
    return {"fmu": fmu, "native": native}


def inputs(kind: str, batch: int, ticks: int) -> dict[str, np.ndarray]:
    force = np.sin(np.arange(ticks) * DT)[:, None] * np.ones((1, batch))
    return {"F": force if kind == "fmu" else force[..., None]}


def check(graph: dict[str, tg.Graph]) -> None:
    """The two graphs compute the same positions (to 1e-8 over 1000 ticks)."""
    fmu = tg.Simulator(graph["fmu"], batch=2).run(inputs("fmu", 2, 1000))
    native = tg.Simulator(graph["native"], batch=2).run(inputs("native", 2, 1000))
    np.testing.assert_allclose(np.asarray(fmu["plant.s"]), np.asarray(native["plant.y"])[..., 0], rtol=0, atol=1e-8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=2000, help="ticks per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="200 ticks, 1 repeat: a smoke run")
    args = parser.parse_args()
    ticks, repeats = (200, 1) if args.quick else (args.ticks, args.repeats)

    with tempfile.TemporaryDirectory() as folder:
        path = str(fmi.examples.mass_spring_damper(folder))
        fmi.trust(path)  # this script built it
        graph = graphs(path)
        check(graph)
        print(f"{'B':>4s} {'FMU us/asset-tick':>18s} {'native us/asset-tick':>21s} {'FMU / native':>13s}")
        for batch in BATCHES:
            sims = {k: tg.Simulator(g, batch=batch, log=None, progress=False) for k, g in graph.items()}
            feeds = {k: inputs(k, batch, ticks) for k in graph}
            best = dict.fromkeys(graph, np.inf)
            for _ in range(repeats):
                for kind, sim in sims.items():
                    sim.reset()
                    start = time.perf_counter()
                    sim.run(feeds[kind])
                    best[kind] = min(best[kind], time.perf_counter() - start)
            fmu, native = (best[k] / (ticks * batch) * 1e6 for k in ("fmu", "native"))
            print(f"{batch:>4d} {fmu:>18.2f} {native:>21.2f} {fmu / native:>13.1f}")
            sims["fmu"].blocks["plant"].close()


if __name__ == "__main__":
    main()
