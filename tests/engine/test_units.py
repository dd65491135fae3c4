"""Units: parsed with pint and compared by meaning at connect and validate, never per tick."""

import re

import numpy as np
import pytest

import twingraph as tg
from blocks.discrete import Integrator
from blocks.estimation import EKF
from blocks.math import Gain, Product, Sum
from blocks.physics import PumpLike
from twingraph import units


def pair(src_unit, dst_unit):
    g = tg.Graph("g")
    a = g.add(tg.Input("a", shape=(), unit=src_unit))
    b = g.add(tg.Output("b", unit=dst_unit))
    return g, a.out.value, b.inp.u


def output_unit(block, **input_units):
    g = tg.Graph("g")
    g.add(block)
    for port, unit in input_units.items():
        g.add(tg.Input(port, shape=(), unit=unit))
        g.connect(f"{port}.value", f"{block.name}.{port}")
    g.add(tg.Output("y"))
    g.connect(f"{block.name}.y", "y.u")
    return tg.Simulator(g).plan.outputs[block.name]["y"].unit


@pytest.mark.parametrize(
    "src, dst",
    [("m^3/s", "m3/s"), ("m**3/s", "m3/s"), ("m3/s", "m^3/s"), ("m/s2", "m*s^-2"), ("N*m", "J"), ("kg m/s", "N*s")],
)
def test_equivalent_spellings_connect(src, dst):
    g, a, b = pair(src, dst)
    g.connect(a, b)
    g.validate()


def test_equivalent_spellings_agree_on_the_inputs_of_a_sum():
    g = tg.Graph("g")
    g.add(tg.Input("a", shape=(), unit="m^3/s"))
    g.add(tg.Input("b", shape=(), unit="m3/s"))
    g.add(Sum(signs="+-", name="s"))
    g.connect("a.value", "s.u1")
    g.connect("b.value", "s.u2")
    assert tg.Simulator(g).plan.outputs["s"]["y"].unit == "m^3/s"  # the first input's spelling


def test_incompatible_dimensions_are_refused_naming_both_ends():
    g, a, b = pair("m", "V")
    with pytest.raises(
        tg.WiringError,
        match=r"Cannot connect 'a.value' \(\(\) float64 \[m\]\) to 'b.u' \(expects \? \? \[V\]\): "
        r"the units differ in dimension \('m' is \[length\], 'V' is .*\[current\]",
    ):
        g.connect(a, b)


def test_incompatible_dimensions_known_after_inference_fail_at_validate():
    g = tg.Graph("g")
    g.add(tg.Input("a", shape=(), unit="m"))
    g.add(Gain(k=2.0, name="k"))
    g.add(tg.Output("b", unit="s"))
    g.connect("a.value", "k.u")
    g.connect("k.y", "b.u")  # the gain's unit is known only once inferred
    with pytest.raises(tg.ValidationError, match=r"Cannot connect 'k.y' .*\[m\]\) to 'b.u' .*differ in dimension"):
        g.validate()


def test_same_dimension_other_scale_is_refused_with_the_gain_to_insert():
    g, a, b = pair("mm", "m")
    with pytest.raises(tg.WiringError, match=re.escape("(1 mm = 0.001 m): insert a Gain(k=0.001, unit='m')")):
        g.connect(a, b)
    g = tg.Graph("g")  # the hint works
    g.add(tg.Input("a", shape=(), unit="mm"))
    g.add(Gain(k=0.001, unit="m", name="to_m"))
    g.add(tg.Output("b", unit="m"))
    g.connect("a.value", "to_m.u")
    g.connect("to_m.y", "b.u")
    assert float(tg.Simulator(g).step(a=1500.0)["to_m.y"]) == pytest.approx(1.5)


def test_an_offset_unit_is_refused_with_its_conversion():
    g, a, b = pair("degC", "K")
    with pytest.raises(tg.WiringError, match=r"differ in offset \(degC to K is y = 1 \* u \+ 273.15\)"):
        g.connect(a, b)


def test_cycle_is_an_operating_cycle_not_an_angle_nor_time():
    assert units.mismatch("cycle", "cycles") is None
    assert "[operating_cycle]" in units.mismatch("cycle", "rad")
    assert "[operating_cycle]" in units.mismatch("cycle", "s")
    assert units.mismatch("turn", "rad").startswith("the units differ in scale")  # angles stay angles


@pytest.mark.parametrize("bad", ["meters_per_sec", "m 3/s", "1e3", "m/(s", "x" * 5000])
def test_a_bad_unit_is_named_with_its_port_at_connect(bad):
    g, a, b = pair(bad, "m")
    with pytest.raises(tg.WiringError, match=r"The unit '.* of 'a.value' is not a unit: .+\. Write units such as"):
        g.connect(a, b)


def test_a_bad_unit_param_is_named_with_its_port_at_connect_and_at_validate():
    g = tg.Graph("g")
    g.add(tg.Input("a", shape=()))
    g.add(Gain(k=2.0, unit="vlots", name="k"))
    g.add(tg.Output("b"))
    g.connect("a.value", "k.u")
    message = "The unit 'vlots' of 'k.y' is not a unit: 'vlots' is not defined in the unit registry"
    with pytest.raises(tg.WiringError, match=message):
        g.connect("k.y", "b.u")
    g = tg.Graph("g")
    g.add(tg.Input("a", shape=()))
    g.add(Gain(k=2.0, unit="vlots", name="k"))
    g.connect("a.value", "k.u")
    with pytest.raises(tg.ValidationError, match=message):  # an output left unconnected is checked too
        g.validate()


def test_gain_unit_none_keeps_the_input_unit_and_empty_is_dimensionless():
    assert output_unit(Gain(k=2.0, name="k"), u="m") == "m"
    assert output_unit(Gain(k=2.0, unit="", name="k"), u="m") == ""
    assert output_unit(Gain(k=2.0, unit="V", name="k"), u="m") == "V"


def test_integrator_output_is_the_input_unit_times_seconds():
    assert output_unit(Integrator(name="i"), u="m/s") == "m"
    assert output_unit(Integrator(name="i"), u="m3/s") == "m3"
    assert output_unit(Integrator(name="i"), u="") == "s"
    assert output_unit(Integrator(name="i"), u=None) is None
    assert output_unit(Integrator(unit="m", name="i"), u="m") == "m"  # the param says otherwise


def test_product_output_is_the_product_of_its_input_units():
    assert units.mismatch(output_unit(Product(ops="**", name="p"), u1="V", u2="A"), "W") is None
    assert output_unit(Product(ops="*/", name="p"), u1="m", u2="s") == "m/s"
    assert output_unit(Product(ops="**", unit="W", name="p"), u1="V", u2="A") == "W"


def test_filter_s_is_in_the_measurement_unit_squared():
    ekf = EKF(model=PumpLike(), name="ekf")
    assert ekf.out.innovation.signal.unit == "m3/s"
    assert ekf.out.S.signal.unit == "m6/s2"
    assert units.mismatch(ekf.out.S.signal.unit, "m^6/s^2") is None


def test_units_are_never_parsed_per_tick(monkeypatch):
    g = tg.Graph("g", dt=0.1)
    g.add(tg.Input("a", shape=(), unit="m/s"))
    g.add(Integrator(name="x"))
    g.add(Gain(k=2.0, unit="mm", name="k"))
    g.add(tg.Output("y", unit="mm"))
    g.connect("a.value", "x.u")
    g.connect("x.y", "k.u")
    g.connect("k.y", "y.u")
    sim = tg.Simulator(g)
    assert sim.plan.outputs["x"]["y"].unit == "m"  # derived while compiling

    def refuse(text):
        raise AssertionError(f"unit {text!r} parsed during a run")

    monkeypatch.setattr(units, "parse", refuse)
    monkeypatch.setattr(units, "registry", refuse)
    history = sim.run(inputs={"a": np.ones(5)})
    np.testing.assert_allclose(history["k.y"], [0.0, 0.2, 0.4, 0.6, 0.8])  # 2 * the integral of 1


def test_every_unit_the_library_declares_parses():
    from blocks.catalog import EXAMPLES

    for type_name, example in EXAMPLES.items():
        block = example.build()
        block.name = "b"
        for port in (*block.inp, *block.out):
            assert units.problem(port.signal.unit, port.path) is None, (type_name, port)
