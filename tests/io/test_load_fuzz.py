"""Garbled graph files: the loader returns a graph or raises LoadError, and executes nothing.

Documents are made by mutating a valid one (a subsystem, inline and sidecar
arrays, tuples, non-finite floats, a DataFrame): deleting keys and elements,
swapping types, garbling strings, nesting values, inserting random JSON.
"""

import copy
import json
import math
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import twingraph as tg
from blocks.math import Saturation, Sum
from blocks.sources import Constant, DataSource, Step

INTERESTING = [
    "Graph", "Gain", "Sum", "Input", "Output", "Integrator", "DataSource", "os.system",
    "nan", "inf", "-inf", "float64", "object", "int8", "bool",
    "r.value", "err.u1", "err.u9", "ghost.y", "ctrl.e", "g.npz", "../g.npz", "/etc/passwd", "src.data.0",
    "+", "+-", "*",
    "twingraph.graph", "twingraph.snapshot", "__import__('os')", "",
]
KEYS = st.sampled_from(
    [
        "type", "name", "params", "dt", "blocks", "connections", "weights", "arrays", "state", "format", "version",
        "__array__", "dtype", "shape", "__npz__", "__tuple__", "__float__", "__frame__", "__block__",
        "columns", "index", "values",
        "k", "signs", "unit", "value",
    ]
) | st.text(max_size=6)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.just(10**400)
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(INTERESTING)
)
JSON = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4), max_leaves=10
)


def _base_graph(make_loop) -> tg.Graph:
    g = make_loop()
    g.add(Step(time=0.25, before=(0.0, 0.0), after=(1.0, 2.0), name="step"))
    g.add(Constant(value=np.array([1.5, -2.0]), unit="m", name="c"))
    g.add(Saturation(lower=-math.inf, upper=1.0, name="clip"))  # a non-finite float param
    g.add(Sum(signs="++", name="total"))
    frame = pd.DataFrame({"a": np.linspace(0.0, 1.0, 1500), "b": np.arange(1500)})
    frame.loc[7, "a"] = math.nan  # a missing sample
    g.add(DataSource(data=frame, extrapolation="zero", name="src"))
    g.add(tg.Output("replay"))
    g.connect("step.y", "clip.u")
    g.connect("clip.y", "total.u1")
    g.connect("c.y", "total.u2")
    g.connect("src.y", "replay.u")
    return g


@pytest.fixture(scope="module")
def saved(tmp_path_factory, make_loop):
    folder = tmp_path_factory.mktemp("fuzz")
    graph = _base_graph(make_loop)
    sim = tg.Simulator(graph, batch=2)
    sim.run({"r": np.ones((3, 2))})
    graph.save(folder / "g.json", state=sim.snapshot())
    text = (folder / "g.json").read_text()
    return folder, json.loads(text), text


def _paths(value, path=()):
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _paths(item, (*path, i))


def _mutate(data, doc):
    paths = list(_paths(doc))
    in_params = [p for p in paths if "params" in p[:-1]]  # half the time, mutate a param value
    path = data.draw(st.sampled_from(in_params if in_params and data.draw(st.booleans()) else paths))
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    key = path[-1] if path else None
    value = parent[key] if path else doc
    op = data.draw(st.sampled_from(["delete", "replace", "garble", "swap", "nest", "duplicate"]))
    if op == "garble" and isinstance(value, str):
        cut = data.draw(st.integers(0, len(value)))
        new = value[:cut] + data.draw(st.text(max_size=3)) + value[cut + data.draw(st.integers(0, 2)) :]
    elif op == "swap":
        new = data.draw(st.sampled_from([[value], {"x": value}, str(value), None, 0, -1.5, True, {}]))
    elif op == "nest":
        new = data.draw(
            st.sampled_from([[[value]], {"__tuple__": value}, {"__array__": value, "dtype": "float64", "shape": [2]}])
        )
    elif op == "duplicate" and path and isinstance(parent, list):
        parent.insert(key, copy.deepcopy(value))
        return doc
    else:
        new = data.draw(JSON)
    if not path:
        return new
    if op == "delete":
        del parent[key]
    else:
        parent[key] = new
    return doc


def _loads_or_load_error(load, expected: type | tuple[type, ...] = tg.Graph) -> None:
    modules = set(sys.modules)
    try:
        result = load()
    except tg.LoadError as exc:
        assert str(exc).strip()
    else:
        assert isinstance(result, expected)
    new = {m for m in set(sys.modules) - modules if not m.startswith("blocks")}
    assert not new, f"loading imported {sorted(new)}"


def test_the_base_document_loads(saved, make_loop):
    folder, doc, _ = saved
    graph = tg.from_dict(doc, directory=folder)
    assert graph.to_dict() == _base_graph(make_loop).to_dict()
    assert doc["arrays"] == "g.npz"
    assert tg.load_state(folder / "g.json")["tick"] == 3


@settings(max_examples=500, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_documents_load_or_raise_load_error(saved, data):
    folder, base, _ = saved
    doc = copy.deepcopy(base)
    for _ in range(data.draw(st.integers(1, 3))):
        doc = _mutate(data, doc)
    _loads_or_load_error(lambda: tg.from_dict(doc, directory=folder))
    path = folder / "mutated.json"
    path.write_text(json.dumps(doc))
    _loads_or_load_error(lambda: tg.load_state(path), (dict, type(None)))


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_garbled_text_loads_or_raises_load_error(saved, data):
    folder, _, text = saved
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, min(len(text), start + 20)))
    garbled = text[:start] + data.draw(st.text(max_size=10)) + text[end:]
    path = folder / "garbled.json"
    path.write_text(garbled, encoding="utf-8", errors="surrogatepass")
    _loads_or_load_error(lambda: tg.load(path))
