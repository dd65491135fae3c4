"""Graph files round trip: subsystems, every kind of param value, state and weights.

Every registered block type's own round trip is in tests/blocks/test_conformance.py.
"""

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import twingraph as tg
from blocks.discrete import Integrator, UnitDelay
from blocks.math import Gain
from blocks.sources import Constant, DataSource, Input
from tests.feeds import random_inputs


def _history(graph: tg.Graph, steps: int = 10) -> tg.History:
    sim = tg.Simulator(graph, batch=2)
    return sim.run(inputs=random_inputs(sim, steps) or None, steps=steps)


def assert_same_history(a: tg.History, b: tg.History) -> None:
    assert a.ports == b.ports
    np.testing.assert_array_equal(a.time, b.time)
    for port in a.ports:
        np.testing.assert_array_equal(a[port], b[port], err_msg=port)


def test_a_fresh_process_loads_library_blocks_without_importing_them(loop, tmp_path):
    loop.save(tmp_path / "loop.json")
    code = (
        "import sys, twingraph\n"
        "assert 'blocks' not in sys.modules, 'twingraph imported blocks'\n"
        f"g = twingraph.load({str(tmp_path / 'loop.json')!r})\n"
        "print(sorted(type(b).__module__ for b in g.blocks['ctrl'].blocks.values()))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "blocks.math" in result.stdout


def test_subsystem_graph_round_trips_with_identical_history(loop, tmp_path):
    loop.save(tmp_path / "loop.json")
    loaded = tg.load(tmp_path / "loop.json")
    assert isinstance(loaded.blocks["ctrl"], tg.Graph)
    assert loaded.blocks["ctrl"].connections == loop.blocks["ctrl"].connections
    assert loaded.connections == loop.connections
    assert loaded.to_dict() == loop.to_dict()
    assert_same_history(_history(loop, 50), _history(loaded, 50))


def test_document_layout(loop):
    doc = loop.to_dict()
    assert (doc["format"], doc["version"], doc["name"], doc["dt"]) == ("twingraph.graph", 2, "loop", 0.1)
    assert doc["connections"][0] == ["r.value", "err.u1"]
    assert doc["blocks"][0] == {
        "type": "Input",
        "name": "r",
        "params": {"shape": {"__tuple__": [2]}, "dtype": "float64", "unit": "m"},
    }
    ctrl = doc["blocks"][2]
    assert (ctrl["type"], ctrl["name"], ctrl["dt"]) == ("Graph", "ctrl", 0.1)
    assert ctrl["blocks"][1] == {"type": "Gain", "name": "kp", "params": {"k": 1.5, "unit": "V"}}
    assert tg.serialize._checked(doc, "doc") is doc  # valid against the shipped schema, nothing migrated


def test_schema_is_shipped_and_valid():
    import jsonschema

    schema = tg.serialize.schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["properties"]["format"] == {"const": "twingraph.graph"}


class Store(tg.Block, type_name="tests.io.Store"):
    """Outputs a fixed array; holds any param value and optional learned weights (for these tests)."""

    direct_feedthrough = False

    def __init__(self, value=None, table=None, *, name=None):
        super().__init__(name=name)
        self.value = value
        self.table = table
        self.w_ = None  # learned weights, set by a fit (here: by the test)

    def output_signals(self, inputs):
        return {"y": tg.Signal(shape=(3,))}

    def weights(self):
        return {} if self.w_ is None else {"w": self.w_}

    def load_weights(self, weights):
        self.w_ = weights["w"]

    def output(self, t, inp, out):
        out.y[...] = 0.0 if self.w_ is None else self.w_[:3]


def _store_graph(block: tg.Block) -> tg.Graph:
    g = tg.Graph("store", dt=1.0)
    g.add(block)
    return g


VALUES = {
    "scalars": [1, -2.5, True, None, "text", 10**30],
    "non-finite": [math.nan, math.inf, -math.inf],
    "tuples": ((1, 2), (), ("a", (3.0,))),
    "dict": {"mass": 2.0, "nested": {"k": [1, 2]}},
    "small array": np.arange(6.0).reshape(2, 3),
    "array with nan": np.array([1.0, np.nan, -np.inf], dtype=np.float32),
    "int and bool arrays": [np.array([1, 2], dtype=np.int16), np.array([[True], [False]])],
    "empty array": np.zeros((0, 3)),
    "0-d array": np.array(4.5),
    "large array": np.linspace(0.0, 1.0, 5000).reshape(50, 100),
    "block": Gain(k=np.array([1.0, 2.0]), unit="V", name="inner"),
}


def _equal(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return type(b) is dict and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, tg.Block):
        return type(a) is type(b) and a.name == b.name and _equal(a.get_params(), b.get_params())
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("kind", VALUES)
def test_param_values_round_trip_exactly(kind, tmp_path):
    graph = _store_graph(Store(value=VALUES[kind], name="s"))
    graph.save(tmp_path / "g.json")
    loaded = tg.load(tmp_path / "g.json").blocks["s"]
    assert _equal(VALUES[kind], loaded.value)
    assert _equal(VALUES[kind], tg.from_dict(graph.to_dict()).blocks["s"].value)


def test_strict_json_and_large_arrays_in_the_sidecar(tmp_path):
    big = np.random.default_rng(1).normal(size=(400, 3))
    graph = _store_graph(Store(value=[big, np.array([math.nan])], name="s"))
    graph.save(tmp_path / "g.json")
    text = (tmp_path / "g.json").read_text()
    doc = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert doc["arrays"] == "g.npz"
    assert doc["blocks"][0]["params"]["value"][0] == {"__npz__": "s.value.0"}
    assert doc["blocks"][0]["params"]["value"][1] == {"__array__": ["nan"], "dtype": "float64", "shape": [1]}
    with np.load(tmp_path / "g.npz", allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["s.value.0"], big)
    assert len(text) < 2000  # the 1200 numbers are not in the JSON


def test_dataframe_param_round_trips(tmp_path):
    frame = pd.DataFrame({"flow": np.linspace(0, 1, 2000), "on": np.arange(2000) % 2 == 0, 7: np.arange(2000)})
    graph = tg.Graph("replay", dt=0.5)
    source = graph.add(DataSource(data=frame, name="src"))
    graph.add(tg.Output("y"))
    graph.connect(source.out.y, "y.u")
    graph.save(tmp_path / "replay.json")
    loaded = tg.load(tmp_path / "replay.json")
    data = loaded.blocks["src"].data
    assert list(data.columns) == ["flow", "on", 7]
    assert list(data.dtypes) == [np.float64, np.bool_, np.int64]
    assert data.equals(frame)
    assert loaded.to_dict() == graph.to_dict()
    history = tg.Simulator(loaded).run(steps=3)
    np.testing.assert_array_equal(history["src.y"], frame.to_numpy(dtype=float)[:3])


def test_learned_weights_go_to_the_sidecar_and_come_back(tmp_path):
    block = Store(name="net")
    block.w_ = np.arange(3000.0)
    graph = _store_graph(block)
    graph.save(tmp_path / "net.json")
    doc = json.loads((tmp_path / "net.json").read_text())
    assert doc["blocks"][0]["weights"] == {"w": {"__npz__": "net/w"}}
    loaded = tg.load(tmp_path / "net.json").blocks["net"]
    np.testing.assert_array_equal(loaded.w_, block.w_)
    assert tg.Simulator(tg.load(tmp_path / "net.json")).step()["net.y"].tolist() == [0.0, 1.0, 2.0]
    assert _equal(tg.from_dict(graph.to_dict()).blocks["net"].w_, block.w_)  # inline without a file


def test_weights_for_a_block_without_weights_are_refused(tmp_path):
    doc = _store_graph(Constant(value=1.0, name="c")).to_dict()
    doc["blocks"][0]["weights"] = {"w": {"__array__": [1.0], "dtype": "float64", "shape": [1]}}
    with pytest.raises(tg.LoadError, match=r"weights of block 'c'.*no learned weights"):
        tg.from_dict(doc)


def test_functions_and_unknown_objects_cannot_be_saved(tmp_path):
    with pytest.raises(tg.TwinGraphError, match=r"param 'value' of block 's': it is a function .*code is never saved"):
        _store_graph(Store(value=np.sin, name="s")).save(tmp_path / "g.json")
    with pytest.raises(tg.TwinGraphError, match=r"param 'table' of block 's': it is a builtins.set"):
        _store_graph(Store(table={1, 2}, name="s")).to_dict()
    with pytest.raises(tg.TwinGraphError, match=r"dtype complex128 cannot be saved"):
        _store_graph(Store(value=np.ones(2, complex), name="s")).to_dict()
    with pytest.raises(tg.TwinGraphError, match=r"string keys"):
        _store_graph(Store(value={"__tuple__": 1}, name="s")).to_dict()
    assert not (tmp_path / "g.json").exists()


def test_state_is_saved_and_restored_exactly(loop, tmp_path):
    steps = random_inputs(tg.Simulator(loop, batch=3), 40)
    first = {k: v[:25] for k, v in steps.items()}
    rest = {k: v[25:] for k, v in steps.items()}
    sim = tg.Simulator(loop, batch=3)
    sim.run(first)
    loop.save(tmp_path / "loop.json", state=sim.snapshot())
    expected = sim.run(rest)

    assert tg.load_state(tmp_path / "loop.json")["tick"] == 25
    resumed = tg.Simulator(tg.load(tmp_path / "loop.json"), batch=3)
    resumed.restore(tg.load_state(tmp_path / "loop.json"))
    history = resumed.run(rest)
    np.testing.assert_array_equal(history.ticks, np.arange(25, 40))
    for port in expected.ports:
        np.testing.assert_array_equal(history[port], expected[port][25:], err_msg=port)


def test_a_file_without_state_has_none(loop, tmp_path):
    loop.save(tmp_path / "loop.json")
    assert tg.load_state(tmp_path / "loop.json") is None


def test_random_generator_state_round_trips(tmp_path):
    block = Store(name="s")
    block.rng_ = np.random.default_rng(7)
    snapshot = {
        "format": "twingraph.snapshot",
        "graph": "store",
        "batch": 1,
        "tick": 3,
        "blocks": {"s": block.state_dict()},
    }
    _store_graph(block).save(tmp_path / "g.json", state=snapshot)
    restored = Store(name="s")
    restored.rng_ = np.random.default_rng(0)
    restored.load_state_dict(tg.load_state(tmp_path / "g.json")["blocks"]["s"])
    assert restored.rng_.random() == block.rng_.random()


def test_unit_delay_of_bools_and_integrator_state(tmp_path):
    g = tg.Graph("flags", dt=1.0)
    g.add(Input("f", shape=(2,), dtype="bool"))
    g.add(UnitDelay(initial=True, name="d"))
    g.add(Input("u"))
    g.add(Integrator(initial=np.array(0.5), name="i"))
    g.connect("f.value", "d.u")
    g.connect("u.value", "i.u")
    g.save(tmp_path / "flags.json")
    assert_same_history(_history(g), _history(tg.load(tmp_path / "flags.json")))
