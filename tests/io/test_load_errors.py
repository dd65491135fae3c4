"""Bad graph files: each problem is a LoadError that names the file and the place in it."""

import copy
import json
import re

import numpy as np
import pytest

import twingraph as tg
from blocks.sources import Constant


@pytest.fixture
def doc(loop):
    return loop.to_dict()


def _load_text(tmp_path, text: str) -> tg.Graph:
    path = tmp_path / "bad.json"
    path.write_text(text)
    return tg.load(path)


def _load(tmp_path, document) -> tg.Graph:
    return _load_text(tmp_path, json.dumps(document))


class Needs(tg.Block, type_name="tests.io.Needs"):
    """A block with a required param (for these tests)."""

    outputs = {"y": tg.Signal(shape=())}

    def __init__(self, k, *, name=None):
        super().__init__(name=name)
        if k < 0:
            raise ValueError(f"The 'k' parameter of Needs must be >= 0. Got {k} instead.")
        self.k = k


def test_not_json(tmp_path):
    with pytest.raises(tg.LoadError, match=r"bad\.json: not JSON: Expecting .* at line 2, column 1"):
        _load_text(tmp_path, '{"format": "twingraph.graph",\n')


def test_missing_file(tmp_path):
    with pytest.raises(tg.LoadError, match=r"Cannot read graph file '.*missing\.json'"):
        tg.load(tmp_path / "missing.json")


def test_not_utf8(tmp_path):
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(tg.LoadError, match=r"Cannot read graph file"):
        tg.load(tmp_path / "bin.json")


def test_not_an_object(tmp_path):
    with pytest.raises(tg.LoadError, match=r"\$: a graph document is a JSON object. Got list instead"):
        _load_text(tmp_path, "[1, 2]")


def test_wrong_format(tmp_path, doc):
    doc["format"] = "pathsim"
    with pytest.raises(tg.LoadError, match=r"\$\.format: not a twingraph graph file: 'format' is 'pathsim'"):
        _load(tmp_path, doc)


def test_newer_version_says_upgrade(tmp_path, doc):
    doc["version"] = 3
    with pytest.raises(
        tg.LoadError,
        match=r"\$\.version: the file has format version 3; this twingraph reads versions \[1, 2\]. "
        r"Upgrade twingraph",
    ):
        _load(tmp_path, doc)
    for bad in [True, 0, -1, "2", 2.0, None]:
        doc["version"] = bad
        with pytest.raises(
            tg.LoadError,
            match=rf"\$\.version: this twingraph reads format versions \[1, 2\]. Got {re.escape(repr(bad))} ",
        ):
            _load(tmp_path, doc)


def test_schema_violation_names_the_json_path(tmp_path, doc):
    del doc["blocks"][2]["blocks"][1]["name"]
    with pytest.raises(tg.LoadError, match=r"\$\.blocks\[2\]\.blocks\[1\]: 'name' is a required property"):
        _load(tmp_path, doc)


def test_negative_dt(tmp_path, doc):
    doc["dt"] = -0.1
    with pytest.raises(
        tg.LoadError, match=r"\$\.dt: -0\.1 is less than or equal to the minimum of 0 \(in graph 'loop'\)"
    ):
        _load(tmp_path, doc)


@pytest.mark.parametrize(
    "text, message",
    [
        ("Infinity", r"\$\.dt: The 'dt' parameter of Graph 'loop' must be a number > 0(\.0)? \[s\], finite. Got inf\."),
        ("1e400", r"\$\.dt: The 'dt' parameter of Graph 'loop' must be a number > 0(\.0)? \[s\], finite. Got inf\."),
        ("-Infinity", r"\$\.dt: -inf is less than or equal to the minimum of 0 \(in graph 'loop'\)"),
        ("NaN", r"\$\.dt: The 'dt' parameter of Graph 'loop' must be a number > 0(\.0)? \[s\]. Got nan\."),
        ('"0.1"', r"\$\.dt: '0\.1' is not of type 'number' \(in graph 'loop'\)"),
        ("true", r"\$\.dt: True is not of type 'number' \(in graph 'loop'\)"),
        ("null", r"\$\.dt: None is not of type 'number' \(in graph 'loop'\)"),
    ],
)
def test_dt_must_be_a_finite_positive_number(tmp_path, doc, text, message):
    """JSON has no inf, but Python reads ``Infinity`` and ``1e400`` as inf."""
    with pytest.raises(tg.LoadError, match=r"bad\.json: " + message):
        _load_text(tmp_path, json.dumps({**doc, "dt": "DT"}).replace('"DT"', text))


@pytest.mark.parametrize("text", ["Infinity", "1e400", "NaN", '"fast"', "false"])
def test_subsystem_dt_names_the_subsystem(tmp_path, doc, text):
    doc["blocks"][2]["dt"] = "DT"
    with pytest.raises(tg.LoadError, match=r"\$\.blocks\[2\]\.dt: .*(Graph|subsystem) 'ctrl'"):
        _load_text(tmp_path, json.dumps(doc).replace('"DT"', text))


def test_unknown_block_type_suggests_and_hints(tmp_path, doc):
    doc["blocks"][3]["type"] = "Gian"
    with pytest.raises(
        tg.LoadError,
        match=r"\$\.blocks\[3\]: block 'gain' has unknown type 'Gian'. Did you mean 'Gain'\?.*register when loading",
    ):
        _load(tmp_path, doc)
    doc["blocks"][3]["type"] = "acme.Pump"
    with pytest.raises(tg.LoadError, match=r"unknown type 'acme.Pump'.*importing its package \('acme'\)"):
        _load(tmp_path, doc)


def test_unknown_param(tmp_path, doc):
    doc["blocks"][2]["blocks"][1]["params"]["kk"] = 2.0
    with pytest.raises(
        tg.LoadError,
        match=r"\$\.blocks\[2\]\.blocks\[1\]: block 'ctrl/kp' \(Gain\) has no param 'kk'. "
        r"Its params are \['k', 'unit'\]",
    ):
        _load(tmp_path, doc)


def test_constructor_errors_name_the_block(tmp_path):
    g = tg.Graph("g")
    g.add(Needs(k=1.0, name="n"))
    doc = g.to_dict()
    del doc["blocks"][0]["params"]["k"]
    with pytest.raises(tg.LoadError, match=r"cannot build block 'n' \(tests.io.Needs\): .*missing 1 required .*'k'"):
        _load(tmp_path, doc)
    doc["blocks"][0]["params"]["k"] = -1
    with pytest.raises(tg.LoadError, match=r"\$\.blocks\[0\]: cannot build block 'n'.*must be >= 0. Got -1 instead"):
        _load(tmp_path, doc)


def test_missing_port_in_a_connection(tmp_path, doc):
    doc["connections"][1] = ["plant.y", "err.u9"]
    with pytest.raises(
        tg.LoadError,
        match=r"\$\.connections\[1\]: cannot connect 'plant.y' to 'err.u9': Block 'err' has no input port 'u9'",
    ):
        _load(tmp_path, doc)


def test_extra_or_malformed_connection_entries(tmp_path, doc):
    doc["connections"][1] = ["plant.y", "err.u2", "y.u"]
    with pytest.raises(tg.LoadError, match=r"\$\.connections\[1\]: .* is too long"):
        _load(tmp_path, doc)
    doc["connections"][1] = ["plant.y", "err"]
    with pytest.raises(tg.LoadError, match=r"\$\.connections\[1\]\[1\]: 'err' does not match"):
        _load(tmp_path, doc)


def test_dangling_connection(tmp_path, doc):
    doc["connections"][1] = ["ghost.y", "err.u2"]
    with pytest.raises(
        tg.LoadError, match=r"\$\.connections\[1\]: cannot connect 'ghost.y' to 'err.u2': .*no output 'ghost.y'"
    ):
        _load(tmp_path, doc)


def test_type_mismatch_in_a_connection(tmp_path, doc):
    doc["blocks"][5]["params"]["unit"] = "s"  # the Output 'y' now expects seconds
    with pytest.raises(
        tg.LoadError, match=r"\$\.connections\[5\]: cannot connect 'plant.y' to 'y.u': .*\[m\].*\[s\].*units differ"
    ):
        _load(tmp_path, doc)


def test_unconnected_input_fails_validation_unless_asked_not_to(tmp_path, doc):
    del doc["connections"][1]
    with pytest.raises(
        tg.LoadError, match=r"bad\.json: Graph 'loop' is not valid:\n  - Input 'err.u2' is not connected"
    ):
        _load(tmp_path, doc)
    (tmp_path / "wip.json").write_text(json.dumps(doc))
    assert tg.load(tmp_path / "wip.json", validate=False).connections[1] == ("err.y", "ctrl.e")


def test_numbers_too_large(tmp_path, doc):
    doc["dt"] = 10**400
    with pytest.raises(tg.LoadError, match=r"bad\.json: \$\.dt: the 'dt' of Graph 'loop' is too large"):
        _load(tmp_path, doc)
    doc["dt"] = 0.1
    doc["blocks"][3]["params"]["k"] = {"__array__": [], "dtype": "float64", "shape": [0, 10**30]}
    with pytest.raises(tg.LoadError, match=r"\$\.blocks\[3\]\.params\.k: not an array of float64 with shape"):
        _load(tmp_path, doc)


def test_duplicate_block_name_and_duplicate_key(tmp_path, doc):
    doc["blocks"].append(copy.deepcopy(doc["blocks"][1]))
    with pytest.raises(tg.LoadError, match=r"\$\.blocks\[6\]: Graph 'loop' already has a block named 'err'"):
        _load(tmp_path, doc)
    with pytest.raises(tg.LoadError, match=r"the key 'name' appears twice"):
        _load_text(tmp_path, '{"format": "twingraph.graph", "name": "a", "name": "b"}')


def test_subsystem_dt_must_match(tmp_path, doc):
    doc["blocks"][2]["dt"] = 0.2
    with pytest.raises(tg.LoadError, match=r"Subsystem 'ctrl' has dt=0.2 but its parent 'loop' has dt=0.1"):
        _load(tmp_path, doc)


@pytest.mark.parametrize(
    "value, message",
    [
        ({"__array__": [1, 2], "dtype": "object", "shape": [2]}, r"\.dtype: 'object' is not one of"),
        (
            {"__array__": [1, 2], "dtype": "float64", "shape": [3]},
            r"the values have shape \(2,\) but 'shape' says \(3,\)",
        ),
        ({"__array__": [[1], [2, 3]], "dtype": "float64", "shape": [2]}, r"not an array of float64"),
        ({"__array__": [1.5], "dtype": "int64", "shape": [1]}, r"__array__: 1\.5 is not a valid element"),
        ({"__array__": ["nan", "x"], "dtype": "float64", "shape": [2]}, r"__array__: 'x' is not a valid element"),
        ({"__array__": [300], "dtype": "uint8", "shape": [1]}, r"not an array of uint8"),
        ({"__array__": [1.0], "dtype": "float64"}, r"'shape' is a required property"),
        ({"__float__": "huge"}, r"'huge' is not one of \['nan', 'inf', '-inf'\]"),
        ({"__tuple__": [1], "__float__": "nan"}, r"Additional properties are not allowed"),
        ({"__npz__": "c.value"}, r"refers to an array in the .npz file, but the document names none"),
    ],
)
def test_bad_array_values(tmp_path, value, message):
    g = tg.Graph("g")
    g.add(Constant(value=1.0, name="c"))
    doc = g.to_dict()
    doc["blocks"][0]["params"]["value"] = value
    with pytest.raises(tg.LoadError, match=r"\$\.blocks\[0\]\.params\.value" + ".*" + message):
        _load(tmp_path, doc)


def test_sidecar_problems(tmp_path):
    g = tg.Graph("g")
    g.add(Constant(value=np.arange(2000.0), name="c"))
    g.save(tmp_path / "g.json")
    doc = json.loads((tmp_path / "g.json").read_text())
    assert tg.load(tmp_path / "g.json").to_dict() == g.to_dict()
    for ref, message in [
        ("/etc/passwd", r"\$\.arrays: must be a path inside the graph file's folder"),
        ("../g.npz", r"\$\.arrays: must be a path inside the graph file's folder"),
        ("gone.npz", r"\$\.arrays: cannot read '.*gone.npz'"),
        ("g.json", r"\$\.arrays: cannot read '.*g.json'"),
    ]:
        (tmp_path / "bad.json").write_text(json.dumps({**doc, "arrays": ref}))
        with pytest.raises(tg.LoadError, match=message):
            tg.load(tmp_path / "bad.json")
    doc["blocks"][0]["params"]["value"] = {"__npz__": "c.other"}
    with pytest.raises(tg.LoadError, match=r"\$\.blocks\[0\]\.params\.value: no array 'c.other' in 'g.npz'"):
        _load(tmp_path, doc)
    np.save(tmp_path / "objects.npy", np.array([{}], dtype=object), allow_pickle=True)
    (tmp_path / "objects.npy").rename(tmp_path / "objects.npz")
    with pytest.raises(tg.LoadError, match=r"\$\.arrays: .*objects.npz"):
        _load(tmp_path, {**doc, "arrays": "objects.npz"})


def test_state_errors_are_load_errors(tmp_path, loop):
    sim = tg.Simulator(loop)
    loop.save(tmp_path / "loop.json", state=sim.snapshot())
    doc = json.loads((tmp_path / "loop.json").read_text())
    doc["state"]["blocks"]["plant"]["x_"]["dtype"] = "str"
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    with pytest.raises(tg.LoadError, match=r"\$\.state\.blocks\.plant\.x_\.dtype: 'str' is not one of"):
        tg.load_state(tmp_path / "bad.json")
    with pytest.raises(tg.TwinGraphError, match=r"must be the dict made by Simulator.snapshot\(\)"):
        loop.save(tmp_path / "x.json", state={"tick": 3})
