"""Graphs shared by the engine tests."""

import twingraph as tg
from blocks.discrete import Integrator
from blocks.math import Gain, Sum
from blocks.sources import Input, Sine, Step


def closed_loop(with_integrator: bool = True, dt: float = 0.01, k: float = 3.0) -> tg.Graph:
    """Step -> Sum(+,-) -> Gain -> Integrator -> back into the Sum."""
    g = tg.Graph("loop", dt=dt)
    ref = g.add(Step(time=0.0, before=0.0, after=2.0, name="ref"))
    err = g.add(Sum(signs="+-", name="err"))
    gain = g.add(Gain(k=k, name="gain"))
    g.connect(ref.out.y, err.inp.u1)
    g.connect(err.out.y, gain.inp.u)
    if with_integrator:
        integ = g.add(Integrator(name="integ"))
        g.connect(gain.out.y, integ.inp.u)
        g.connect(integ.out.y, err.inp.u2)
    else:
        g.connect(gain.out.y, err.inp.u2)
    return g


def controller(dt: float) -> tg.Graph:
    """A PI-like subsystem: input e, output y = kp e + integral of ki e."""
    sub = tg.Graph("ctrl", dt=dt)
    e = sub.add(Input("e"))
    kp = sub.add(Gain(k=1.5, name="kp"))
    ki = sub.add(Integrator(k=0.8, name="ki"))
    total = sub.add(Sum(signs="++", name="total"))
    y = sub.add(tg.Output("y"))
    sub.connect(e.out.value, kp.inp.u)
    sub.connect(e.out.value, ki.inp.u)
    sub.connect(kp.out.y, total.inp.u1)
    sub.connect(ki.out.y, total.inp.u2)
    sub.connect(total.out.y, y.inp.u)
    return sub


def plant_loop(use_subsystem: bool, dt: float = 0.05) -> tg.Graph:
    g = tg.Graph("plant", dt=dt)
    ref = g.add(Sine(amplitude=1.0, frequency=0.2, name="ref"))
    err = g.add(Sum(signs="+-", name="err"))
    plant = g.add(Integrator(k=0.5, name="plant"))
    g.connect(ref.out.y, err.inp.u1)
    g.connect(plant.out.y, err.inp.u2)
    if use_subsystem:
        ctrl = g.add(controller(dt))
        g.connect(err.out.y, ctrl.inp.e)
        g.connect(ctrl.out.y, plant.inp.u)
    else:  # the same blocks, wired by hand, named as the flattened subsystem names them
        kp = g.add(Gain(k=1.5, name="kp"))
        ki = g.add(Integrator(k=0.8, name="ki"))
        total = g.add(Sum(signs="++", name="total"))
        g.connect(err.out.y, kp.inp.u)
        g.connect(err.out.y, ki.inp.u)
        g.connect(kp.out.y, total.inp.u1)
        g.connect(ki.out.y, total.inp.u2)
        g.connect(total.out.y, plant.inp.u)
    return g
