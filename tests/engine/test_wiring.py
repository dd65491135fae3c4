"""Typed ports and connections: what connect() accepts and what it refuses."""

import pytest

import twingraph as tg
from blocks.discrete import UnitDelay
from blocks.math import Gain, Sum
from blocks.sources import Constant, Input


def test_connect_by_port_object_and_by_string():
    g = tg.Graph("g")
    u = g.add(Input("u", shape=(2,), unit="m"))
    k = g.add(Gain(k=2.0, name="k"))
    g.add(tg.Output("y"))
    g.connect(u.out.value, k.inp.u)
    g.connect("k.y", "y.u")
    assert g.connections == [("u.value", "k.u"), ("k.y", "y.u")]


def test_shape_mismatch_names_both_ends():
    g = tg.Graph("g")
    g.add(Input("plant", shape=(3,), unit="m"))
    g.add(Input("y", shape=(2,), unit="m"))
    g.add(Sum(signs="+-", name="err"))
    g.connect("y.value", "err.u2")
    g.connect("plant.value", "err.u1")  # generic inputs accept any shape at connect time ...
    with pytest.raises(tg.ValidationError, match=r"Block 'err' cannot infer its output shape"):
        g.validate()  # ... the disagreement shows once shapes are known


def test_declared_mismatch_fails_at_connect():
    g = tg.Graph("g")
    a = g.add(Input("a", shape=(3,), unit="m"))
    b = g.add(tg.Output("b", unit="s"))
    with pytest.raises(
        tg.WiringError,
        match=r"Cannot connect 'a.value' \(\(3,\) float64 \[m\]\) to 'b.u' \(expects .*\[s\]\): the units differ",
    ):
        g.connect(a.out.value, b.inp.u)


def test_dtype_mismatch_fails_at_connect():
    g = tg.Graph("g")
    flag = g.add(Input("flag", shape=(), dtype="bool"))
    k = g.add(Gain(name="k"))
    with pytest.raises(
        tg.WiringError, match=r"'flag.value' \(\(\) bool\) to 'k.u' \(expects \? float64\): the dtypes differ"
    ):
        g.connect(flag.out.value, k.inp.u)


def test_mismatch_known_only_after_inference_fails_at_validate():
    g = tg.Graph("g")
    u = g.add(Input("u", shape=(2,), unit="m"))
    k = g.add(Gain(name="k"))
    y = g.add(tg.Output("y", unit="s"))
    g.connect(u.out.value, k.inp.u)
    g.connect(k.out.y, y.inp.u)  # the gain's unit is unknown until inferred from 'u'
    with pytest.raises(
        tg.ValidationError, match=r"Cannot connect 'k.y' \(\(2,\) float64 \[m\]\) to 'y.u' .*the units differ"
    ):
        g.validate()


def test_an_input_takes_one_source_an_output_fans_out():
    g = tg.Graph("g")
    a = g.add(Constant(value=1.0, name="a"))
    b = g.add(Constant(value=2.0, name="b"))
    k1, k2 = g.add(Gain(name="k1")), g.add(Gain(name="k2"))
    g.connect(a.out.y, k1.inp.u)
    g.connect(a.out.y, k2.inp.u)
    with pytest.raises(tg.WiringError, match="Input 'k1.u' is already connected to 'a.y'"):
        g.connect(b.out.y, k1.inp.u)


@pytest.mark.parametrize(
    "src, dst, message",
    [
        ("nope.y", "k.u", "has no output 'nope.y'"),
        ("a.z", "k.u", "Block 'a' has no output port 'z'. Its outputs are: \\['y'\\]"),
        ("a.y", "k.v", "Block 'k' has no input port 'v'"),
        ("a", "k.u", "write 'block.port'"),
    ],
)
def test_unknown_ports_are_named(src, dst, message):
    g = tg.Graph("g")
    g.add(Constant(name="a"))
    g.add(Gain(name="k"))
    with pytest.raises(tg.WiringError, match=message):
        g.connect(src, dst)


def test_port_of_a_block_outside_the_graph_and_wrong_direction():
    g = tg.Graph("g")
    inside = g.add(Gain(name="k"))
    outside = Constant(name="c")
    with pytest.raises(tg.WiringError, match="Block 'c' is not in graph 'g'; add it first"):
        g.connect(outside.out.y, inside.inp.u)
    with pytest.raises(tg.WiringError, match="'k.u' is not an output port"):
        g.connect(inside.inp.u, inside.inp.u)


def test_names_are_checked_and_defaulted():
    g = tg.Graph("g")
    first, second = g.add(Gain()), g.add(Gain())
    assert (first.name, second.name) == ("gain", "gain_1")
    with pytest.raises(tg.WiringError, match="already has a block named 'gain'"):
        g.add(Gain(name="gain"))
    with pytest.raises(tg.WiringError, match=r"Got 'a\.b'\.$"):
        Gain(name="a.b")
    with pytest.raises(tg.ParamError, match=r"'dt' parameter of Graph 'g' must be a number > 0 \[s\]\. Got 0\."):
        tg.Graph("g", dt=0)


def test_validate_lists_every_unconnected_input():
    g = tg.Graph("g")
    g.add(Sum(signs="++", name="s"))
    g.add(UnitDelay(name="d"))
    with pytest.raises(tg.ValidationError) as err:
        g.validate()
    text = str(err.value)
    assert "Input 's.u1' is not connected" in text
    assert "Input 's.u2' is not connected" in text
    assert "Input 'd.u' is not connected" in text


def test_signal_describe_and_bad_specs():
    assert tg.Signal(shape=4, unit=" m^3/s ").describe() == "(4,) float64 [m^3/s]"  # as written, trimmed
    with pytest.raises(tg.WiringError, match="positive dimensions"):
        tg.Signal(shape=(0,))
    with pytest.raises(tg.WiringError, match="unit must be a string"):
        tg.Signal(unit=3)
    with pytest.raises(tg.WiringError, match="Unknown signal dtype"):
        tg.Signal(dtype="quaternion")
