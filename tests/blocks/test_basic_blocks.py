"""Sources, math and discrete blocks against their formulas."""

import numpy as np
import pandas as pd
import pytest

import twingraph as tg
from blocks.discrete import Integrator, UnitDelay
from blocks.math import Gain, Product, Saturation, Sum
from blocks.sources import Constant, DataSource, Input, Sine, Step


def run_single(block: tg.Block, steps: int, dt: float = 0.1, batch: int = 1, **inputs) -> tg.History:
    """Run one block with each input port fed from an Input of the same name."""
    g = tg.Graph("single", dt=dt)
    g.add(block)
    for port, values in inputs.items():
        values = np.asarray(values, dtype=float)
        source = g.add(Input(port, shape=values.shape[1 + (batch > 1) :]))
        g.connect(source.out.value, getattr(block.inp, port))
    return tg.Simulator(g, batch=batch).run(inputs=inputs or None, steps=steps)


def test_step_switches_on_the_first_tick_at_or_after_its_time():
    hist = run_single(Step(time=0.3, before=-1.0, after=2.0, name="s"), steps=6, dt=0.1)
    np.testing.assert_array_equal(hist["s.y"], [-1, -1, -1, 2, 2, 2])


def validate_alone(block: tg.Block, **input_shapes) -> None:
    """Validate a graph of ``block`` with each named input port fed from an Input of that shape."""
    g = tg.Graph("alone", dt=0.1)
    g.add(block)
    for port, shape in input_shapes.items():
        g.connect(g.add(Input(f"in_{port}", shape=shape)).out.value, getattr(block.inp, port))
    g.validate()


def test_sine_matches_its_formula():
    hist = run_single(Sine(amplitude=2.0, frequency=0.5, phase=0.3, offset=1.0, name="w"), steps=50, dt=0.05)
    t = np.arange(50) * 0.05
    np.testing.assert_allclose(hist["w.y"], 1.0 + 2.0 * np.sin(2 * np.pi * 0.5 * t + 0.3), rtol=0, atol=1e-15)


def test_constant_of_any_shape():
    hist = run_single(Constant(value=[[1.0, 2.0]], unit="K", name="c"), steps=2)
    np.testing.assert_array_equal(hist["c.y"], [[[1.0, 2.0]]] * 2)


@pytest.mark.parametrize("extrapolation, after", [("hold", 3.0), ("zero", 0.0)])
def test_data_source_replays_rows_then_extrapolates(extrapolation, after):
    hist = run_single(DataSource(data=[1.0, 2.0, 3.0], extrapolation=extrapolation, name="d"), steps=5)
    np.testing.assert_array_equal(hist["d.y"], [1.0, 2.0, 3.0, after, after])


def test_data_source_from_a_dataframe_and_batched_and_errors():
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    hist = run_single(DataSource(data=frame, name="d"), steps=2)
    np.testing.assert_array_equal(hist["d.y"], frame.to_numpy())
    per_asset = np.arange(6.0).reshape(3, 2)  # 3 ticks, 2 assets
    hist = run_single(DataSource(data=per_asset, batched=True, name="d"), steps=3, batch=2)
    np.testing.assert_array_equal(hist["d.y"], per_asset)
    with pytest.raises(tg.SimulationError, match="DataSource 'd' ran out of data after 1 rows"):
        run_single(DataSource(data=[1.0], extrapolation="error", name="d"), steps=2)
    with pytest.raises(tg.WiringError, match="holds data for 3 assets; the batch is 2"):
        run_single(DataSource(data=np.zeros((4, 3)), batched=True, name="d"), steps=1, batch=2)


def test_gain_sum_product_saturation():
    rng = np.random.default_rng(0)
    a, b, c = rng.normal(size=(3, 20, 3))
    hist = run_single(Gain(k=[1.0, -2.0, 0.5], name="k"), steps=20, u=a)
    np.testing.assert_array_equal(hist["k.y"], a * [1.0, -2.0, 0.5])
    hist = run_single(Sum(signs="-+-", name="s"), steps=20, u1=a, u2=b, u3=c)
    np.testing.assert_allclose(hist["s.y"], -a + b - c, rtol=1e-15)
    hist = run_single(Product(ops="/**", name="p"), steps=20, u1=a, u2=b, u3=c)
    np.testing.assert_allclose(hist["p.y"], b * c / a, rtol=1e-13)
    hist = run_single(Saturation(lower=-0.5, upper=0.25, name="sat"), steps=20, u=a)
    np.testing.assert_array_equal(hist["sat.y"], np.clip(a, -0.5, 0.25))


def test_gain_unit_none_keeps_the_input_unit_and_empty_is_dimensionless():
    g = tg.Graph("units", dt=0.1)
    u = g.add(Input("u", unit="V"))
    for name, unit in (("keep", None), ("plain", ""), ("amps", "A")):
        g.connect(u.out.value, g.add(Gain(k=2.0, unit=unit, name=name)).inp.u)
    outputs = tg.Simulator(g).plan.outputs
    assert [outputs[n]["y"].unit for n in ("keep", "plain", "amps")] == ["V", "", "A"]


@pytest.mark.parametrize(
    ("block", "inputs", "message"),
    [
        (Gain(k="abc", name="k"), {"u": ()}, "The 'k' parameter of Gain 'k' must be a number or an array_like "
         "of finite numbers. Got 'abc'."),
        (Gain(k=[1.0, np.inf], name="k"), {"u": (2,)}, "The 'k' parameter of Gain 'k' must be a number or an "
         "array_like of finite numbers. Got [1.0, inf]."),
        (Gain(k=[[1.0], [2.0, 3.0]], name="k"), {"u": (2,)}, "The 'k' parameter of Gain 'k' must be a number or "
         "an array_like of finite numbers. Got [[1.0], [2.0, 3.0]]."),
        (Gain(k=[1.0, 2.0, 3.0], name="k"), {"u": (2,)}, "The 'k' parameter of Gain 'k' must be a value "
         "broadcastable to the signal shape (2,). Got [1.0, 2.0, 3.0]."),
        (Gain(unit=5, name="k"), {"u": ()}, "The 'unit' parameter of Gain 'k' must be a unit string such as "
         "'m3/s' ('' for dimensionless) or None. Got 5."),
        (Sum(signs="+x", name="s"), {}, "The 'signs' parameter of Sum 's' must be a non-empty string of "
         "['+', '-']. Got '+x'."),
        (Product(ops="", name="p"), {}, "The 'ops' parameter of Product 'p' must be a non-empty string of "
         "['*', '/']. Got ''."),
        (Saturation(lower=2, upper=1, name="sat"), {"u": ()}, "The 'upper' parameter of Saturation 'sat' "
         "must be >= lower (2.0). Got 1.0."),
        (Saturation(lower="low", name="sat"), {"u": ()}, "The 'lower' parameter of Saturation 'sat' must be "
         "a number. Got 'low'."),
        (UnitDelay(initial="zero", name="d"), {"u": ()}, "The 'initial' parameter of UnitDelay 'd' must be a "
         "number or an array_like of finite numbers. Got 'zero'."),
        (UnitDelay(initial=[1.0, 2.0, 3.0], name="d"), {"u": (2,)}, "The 'initial' parameter of UnitDelay 'd' "
         "must be a value broadcastable to the signal shape (2,) or one row per asset, shape (B, 2). "
         "Got [1.0, 2.0, 3.0]."),
        (Integrator(k=np.nan, name="i"), {"u": ()}, "The 'k' parameter of Integrator 'i' must be a number. "
         "Got nan."),
        (Constant(value="1.5", name="c"), {}, "The 'value' parameter of Constant 'c' must be a number or an "
         "array_like of finite numbers. Got '1.5'."),
        (Step(time=np.inf, name="s"), {}, "The 'time' parameter of Step 's' must be a number [s], finite. Got inf."),
        (Step(before=0.0, after=[1.0, 2.0], name="s"), {}, "The 'after' parameter of Step 's' must be of the "
         "shape of before (). Got [1.0, 2.0]."),
        (Sine(frequency="fast", name="w"), {}, "The 'frequency' parameter of Sine 'w' must be a number [Hz]. "
         "Got 'fast'."),
        (DataSource(data=[1.0, np.inf], name="d"), {}, "The 'data' parameter of DataSource 'd' must be a number "
         "or an array_like of numbers (NaN allowed, not ±inf). Got [1.0, inf]."),
        (DataSource(data=[], name="d"), {}, "The 'data' parameter of DataSource 'd' must be at least one row, "
         "shape (T, ...); its shape is (0,). Got []."),
        (DataSource(batched="yes", name="d"), {}, "The 'batched' parameter of DataSource 'd' must be True or "
         "False. Got 'yes'."),
        (DataSource(extrapolation="wrap", name="d"), {}, "The 'extrapolation' parameter of DataSource 'd' must "
         "be one of ['hold', 'zero', 'error']. Got 'wrap'."),
        (Input("i", shape=(0,)), {}, "The 'shape' parameter of Input 'i' must be a tuple of ints >= 1 (() for "
         "a scalar). Got (0,)."),
        (Input("i", dtype="str"), {}, "The 'dtype' parameter of Input 'i' must be a NumPy dtype name of "
         "numbers or bools, e.g. 'float64'. Got 'str'."),
        (tg.Output("o", unit=["V"]), {"u": ()}, "The 'unit' parameter of Output 'o' must be a unit string such as "
         "'m3/s' ('' for dimensionless) or None. Got ['V']."),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, tg.Block) else "",
)
def test_bad_params_are_refused_naming_block_and_param(block, inputs, message):
    with pytest.raises(tg.ParamError) as error:
        validate_alone(block, **inputs)
    assert message in str(error.value)


def test_initial_states_may_hold_one_row_per_asset_of_the_batch():
    u = np.ones((3, 2, 1))
    hist = run_single(UnitDelay(initial=[[1.0], [-1.0]], name="d"), steps=3, batch=2, u=u)
    np.testing.assert_array_equal(hist["d.y"][0], [[1.0], [-1.0]])
    g = tg.Graph("rows", dt=0.1)
    g.connect(g.add(Input("u")).out.value, g.add(Integrator(initial=[1.0, 2.0, 3.0], name="i")).inp.u)
    g.validate()  # three rows: fine for a batch of three
    with pytest.raises(tg.ParamError, match=r"The 'initial' parameter of Integrator 'i' must be .* or one row per "
                       r"asset, shape \(2\). Got \[1.0, 2.0, 3.0\]."):
        tg.Simulator(g, batch=2)


def test_a_loaded_graph_checks_its_params():
    g = tg.Graph("loaded", dt=0.1)
    g.connect(g.add(Input("u")).out.value, g.add(Gain(k=2.0, name="k")).inp.u)
    document = g.to_dict()
    document["blocks"][1]["params"]["k"] = "abc"
    with pytest.raises(tg.LoadError, match="The 'k' parameter of Gain 'k' must be a number or an array_like"):
        tg.from_dict(document)


def test_unit_delay_and_integrator():
    u = np.arange(1.0, 6.0)[:, None]
    hist = run_single(UnitDelay(initial=-1.0, name="d"), steps=5, u=u)
    np.testing.assert_array_equal(hist["d.y"][:, 0], [-1, 1, 2, 3, 4])
    hist = run_single(Integrator(k=2.0, initial=1.0, name="i"), steps=5, dt=0.5, u=u)
    # x_{n+1} = x_n + k dt u_n
    np.testing.assert_array_equal(hist["i.y"][:, 0], [1, 2, 4, 7, 11])
