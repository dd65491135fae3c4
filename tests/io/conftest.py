"""Graphs shared by the graph-file tests."""

import pytest

import twingraph as tg
from blocks.discrete import Integrator
from blocks.math import Gain, Sum
from blocks.sources import Input


def controlled_loop(dt: float = 0.1) -> tg.Graph:
    """Six top-level blocks, one of them a PI controller subsystem, in a feedback loop.

    r -> err -> ctrl(e -> kp, ki -> pi -> u) -> plant -> y, and plant -> err.
    """
    ctrl = tg.Graph("ctrl", dt=dt)
    ctrl.add(Input("e", shape=(2,), unit="m"))
    ctrl.add(Gain(k=1.5, unit="V", name="kp"))
    ctrl.add(Integrator(k=0.8, unit="V", name="ki"))
    ctrl.add(Sum(signs="++", name="pi"))
    ctrl.add(tg.Output("u", unit="V"))
    for src, dst in [("e.value", "kp.u"), ("e.value", "ki.u"), ("kp.y", "pi.u1"), ("ki.y", "pi.u2"), ("pi.y", "u.u")]:
        ctrl.connect(src, dst)

    g = tg.Graph("loop", dt=dt)
    g.add(Input("r", shape=(2,), unit="m"))
    g.add(Sum(signs="+-", name="err"))
    g.add(ctrl)
    g.add(Gain(k=0.5, unit="m/s", name="gain"))
    g.add(Integrator(unit="m", name="plant"))
    g.add(tg.Output("y", unit="m"))
    for src, dst in [
        ("r.value", "err.u1"),
        ("plant.y", "err.u2"),
        ("err.y", "ctrl.e"),
        ("ctrl.u", "gain.u"),
        ("gain.y", "plant.u"),
        ("plant.y", "y.u"),
    ]:
        g.connect(src, dst)
    return g


@pytest.fixture
def loop() -> tg.Graph:
    return controlled_loop()


@pytest.fixture(scope="session")
def make_loop():
    """The builder of the ``loop`` graph, for fixtures that outlive one test."""
    return controlled_loop
