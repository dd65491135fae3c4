"""Build a controlled plant, save it as a graph file and draw it.

The plant is a first-order lag ``tau dy/dt = K u - y`` and the controller a PI
controller ``u = kp e + ki ∫ e dt``; both are subsystems of the top-level loop
``r -> err -> controller -> plant -> y`` with ``err = r - y``.

Run::

    python examples/graph_files/build_and_save.py --out out

It writes ``out/controlled_plant.json``, a setpoint step ``out/setpoint.csv``
to run it with, and ``out/controlled_plant.svg`` / ``.png`` when the graphviz
``dot`` program is installed. See the README beside this script for the
``twingraph`` command line.
"""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

import twingraph as tg
from blocks.discrete import Integrator
from blocks.math import Gain, Sum
from blocks.sources import Input

DT = 0.05  # tick [s]


def pi_controller(kp: float, ki: float) -> tg.Graph:
    """u = kp e + ki ∫ e dt, as a subsystem with input port ``e`` and output port ``u``."""
    g = tg.Graph("controller", dt=DT)
    g.add(Input("e", unit="m"))
    g.add(Gain(k=kp, unit="V", name="kp"))
    g.add(Integrator(k=ki, unit="V", name="ki"))
    g.add(Sum(signs="++", name="pi"))
    g.add(tg.Output("u", unit="V"))
    g.connect("e.value", "kp.u")
    g.connect("e.value", "ki.u")
    g.connect("kp.y", "pi.u1")
    g.connect("ki.y", "pi.u2")
    g.connect("pi.y", "u.u")
    return g


def first_order_plant(gain: float, tau: float) -> tg.Graph:
    """tau dy/dt = K u - y, as a subsystem with input port ``u`` and output port ``y``."""
    g = tg.Graph("plant", dt=DT)
    g.add(Input("u", unit="V"))
    g.add(Gain(k=gain, unit="m", name="K"))
    g.add(Sum(signs="+-", name="lag"))
    g.add(Gain(k=1.0 / tau, unit="m/s", name="rate"))
    g.add(Integrator(unit="m", name="x"))
    g.add(tg.Output("y", unit="m"))
    g.connect("u.value", "K.u")
    g.connect("K.y", "lag.u1")
    g.connect("x.y", "lag.u2")
    g.connect("lag.y", "rate.u")
    g.connect("rate.y", "x.u")
    g.connect("x.y", "y.u")
    return g


def controlled_plant() -> tg.Graph:
    """The closed loop: setpoint ``r`` in, plant output ``y`` out."""
    g = tg.Graph("controlled_plant", dt=DT)
    g.add(Input("r", unit="m"))
    g.add(Sum(signs="+-", name="err"))
    g.add(pi_controller(kp=1.0, ki=2.0))
    g.add(first_order_plant(gain=2.0, tau=0.5))
    g.add(tg.Output("y", unit="m"))
    g.connect("r.value", "err.u1")
    g.connect("plant.y", "err.u2")
    g.connect("err.y", "controller.e")
    g.connect("controller.u", "plant.u")
    g.connect("plant.y", "y.u")
    return g


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out", help="folder for the files (default: ./out)")
    out = Path(parser.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)

    graph = controlled_plant()
    graph.validate()
    graph.save(out / "controlled_plant.json")
    print(f"saved {out / 'controlled_plant.json'}")

    time = np.arange(200) * DT
    setpoint = pd.DataFrame({"time": time, "r": np.where(time >= 0.5, 1.0, 0.0)})
    setpoint.to_csv(out / "setpoint.csv", index=False)
    print(f"saved {out / 'setpoint.csv'}")

    for suffix in ("svg", "png"):
        try:
            print(f"drew {graph.render(out / f'controlled_plant.{suffix}')}")
        except tg.TwinGraphError as exc:  # no graphviz 'dot' program: the JSON is still there
            print(exc)
            break


if __name__ == "__main__":
    main()
