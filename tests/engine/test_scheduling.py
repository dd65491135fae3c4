"""Two-phase scheduling: feedback loops, algebraic loops, subsystems."""

import numpy as np
import pytest

import twingraph as tg
from blocks.discrete import UnitDelay
from blocks.math import Gain, Sum
from blocks.sources import Input, Sine, Step

from .graphs import closed_loop, controller, plant_loop


def test_closed_loop_matches_the_discrete_analytic_response():
    dt, k, r = 0.01, 3.0, 2.0
    hist = tg.Simulator(closed_loop(dt=dt, k=k)).run(steps=1000)
    ticks = np.arange(1000)
    # x_{n+1} = x_n + dt k (r - x_n), x_0 = 0  =>  x_n = r (1 - (1 - k dt)^n)
    expected = r * (1 - (1 - k * dt) ** ticks)
    np.testing.assert_allclose(hist["integ.y"], expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(hist["err.y"], r - expected, rtol=0, atol=1e-12)


def test_loop_without_a_stateful_block_is_an_algebraic_loop():
    with pytest.raises(tg.ValidationError, match=r"Algebraic loop through blocks 'err' -> 'gain' -> 'err'"):
        closed_loop(with_integrator=False).validate()


def test_self_loop_is_an_algebraic_loop_but_a_delay_closes_it():
    g = tg.Graph("g")
    s = g.add(Sum(signs="++", name="acc"))
    src = g.add(Sine(name="src"))
    g.connect(src.out.y, s.inp.u1)
    g.connect(s.out.y, s.inp.u2)
    with pytest.raises(tg.ValidationError, match="Algebraic loop through blocks 'acc' -> 'acc'"):
        g.validate()

    g = tg.Graph("g", dt=0.1)
    s = g.add(Sum(signs="++", name="acc"))
    d = g.add(UnitDelay(name="d"))
    one = g.add(Step(time=0.0, name="one"))
    g.connect(one.out.y, s.inp.u1)
    g.connect(s.out.y, d.inp.u)
    g.connect(d.out.y, s.inp.u2)
    hist = tg.Simulator(g).run(steps=5)
    np.testing.assert_array_equal(hist["acc.y"], [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(hist["d.y"], [0, 1, 2, 3, 4])


def test_phase_one_order_follows_feedthrough_not_insertion():
    g = tg.Graph("g")
    last = g.add(Gain(k=2.0, name="last"))
    first = g.add(Gain(k=3.0, name="first"))
    u = g.add(Input("u"))
    g.connect(first.out.y, last.inp.u)
    g.connect(u.out.value, first.inp.u)
    sim = tg.Simulator(g)
    assert sim.plan.order.index("first") < sim.plan.order.index("last")
    assert float(sim.step(u=1.0)["last.y"]) == 6.0


def test_subsystem_gives_the_same_history_as_the_flattened_graph():
    nested = tg.Simulator(plant_loop(True)).run(steps=400)
    flat = tg.Simulator(plant_loop(False)).run(steps=400)
    for port in flat.ports:
        name = port if port.split(".")[0] in ("ref", "err", "plant") else f"ctrl/{port}"
        np.testing.assert_array_equal(nested[name], flat[port], err_msg=port)
    assert len(nested.ports) == len(flat.ports)


def test_nested_subsystems_and_unconnected_subsystem_port():
    inner = controller(0.1)
    outer = tg.Graph("outer", dt=0.1)
    x = outer.add(Input("x"))
    outer.add(inner)
    y = outer.add(tg.Output("y"))
    outer.connect(x.out.value, inner.inp.e)
    outer.connect(inner.out.y, y.inp.u)
    top = tg.Graph("top", dt=0.1)
    u = top.add(Input("u"))
    top.add(outer)
    top.connect(u.out.value, outer.inp.x)
    sim = tg.Simulator(top)
    values = [float(sim.step(u=1.0)["outer/ctrl/total.y"]) for _ in range(3)]
    np.testing.assert_allclose(values, [1.5, 1.5 + 0.08, 1.5 + 0.16])

    loose = tg.Graph("loose", dt=0.1)
    loose.add(controller(0.1))
    with pytest.raises(tg.ValidationError, match="Port 'e' of subsystem 'ctrl' is not connected"):
        loose.validate()


def test_subsystem_with_a_different_dt_is_rejected():
    g = tg.Graph("g", dt=0.1)
    u = g.add(Input("u"))
    ctrl = g.add(controller(0.2))
    g.connect(u.out.value, ctrl.inp.e)
    with pytest.raises(tg.ValidationError, match="Subsystem 'ctrl' has dt=0.2 but its parent 'g' has dt=0.1"):
        g.validate()
