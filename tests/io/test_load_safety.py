"""Hostile graph files: sidecars outside the folder, deep nesting, huge strings, odd names, validator panics."""

import json
import os
import re
import time

import numpy as np
import pytest

import twingraph as tg
from blocks.math import Gain
from blocks.sources import Constant


def _gain_graph() -> tg.Graph:
    g = tg.Graph("g", dt=0.1)
    g.add(tg.Input("u"))
    g.add(Gain(k=2.0, name="amp"))
    g.add(tg.Output("y"))
    g.connect("u.value", "amp.u")
    g.connect("amp.y", "y.u")
    return g


def _load(tmp_path, document) -> tg.Graph:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    return tg.load(path)


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_sidecar_symlink_leaving_the_folder_is_refused(tmp_path):
    g = tg.Graph("g")
    g.add(Constant(value=np.arange(2000.0), name="c"))
    folder, outside = tmp_path / "graphs", tmp_path / "elsewhere"
    folder.mkdir()
    outside.mkdir()
    g.save(folder / "g.json")
    (folder / "g.npz").rename(outside / "g.npz")
    (folder / "g.npz").symlink_to(outside / "g.npz")
    with pytest.raises(
        tg.LoadError,
        match=r"g\.json: \$\.arrays: must be a path inside the graph file's folder: 'g\.npz' leads to "
        r"'.*elsewhere/g\.npz', outside '.*graphs'",
    ):
        tg.load(folder / "g.json")
    (folder / "g.npz").unlink()
    (folder / "sub").mkdir()
    (outside / "g.npz").rename(folder / "sub" / "real.npz")
    (folder / "g.npz").symlink_to(folder / "sub" / "real.npz")  # a link that stays inside is followed
    assert tg.load(folder / "g.json").to_dict() == g.to_dict()


@pytest.mark.parametrize(
    "ref, reason", [("sub", r"'sub' is not a file"), ("a\u0000b", r"'a\\x00b' cannot be resolved")]
)
def test_sidecar_must_be_a_file(tmp_path, ref, reason):
    g = tg.Graph("g")
    g.add(Constant(value=np.arange(2000.0), name="c"))
    g.save(tmp_path / "g.json")
    (tmp_path / "sub").mkdir()
    doc = json.loads((tmp_path / "g.json").read_text())
    with pytest.raises(tg.LoadError, match=r"\$\.arrays: must be a path inside the graph file's folder: " + reason):
        _load(tmp_path, {**doc, "arrays": ref})


def test_local_file_applies_the_folder_rule(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "w.npz").write_bytes(b"")
    assert tg.serialize.local_file(tmp_path, "a/../a/w.npz") == (tmp_path / "a" / "w.npz").resolve()
    assert tg.serialize.local_file(tmp_path, "missing.npz") == (tmp_path / "missing.npz").resolve()
    for ref in ["/etc/passwd", "../x.npz", "a/../../x.npz"]:
        with pytest.raises(ValueError, match=r"absolute path|outside"):
            tg.serialize.local_file(tmp_path / "a", ref)


def test_deep_nesting_is_a_load_error_quickly(tmp_path):
    doc = _gain_graph().to_dict()
    start = time.perf_counter()
    text = json.dumps(doc).replace('"k": 2.0', '"k": ' + "[" * 100_000 + "]" * 100_000)
    (tmp_path / "deep.json").write_text(text)
    with pytest.raises(tg.LoadError, match=r"deep\.json: not JSON: maximum recursion depth"):
        tg.load(tmp_path / "deep.json")
    (tmp_path / "deep.json").write_text(text.replace("[" * 99_500, "").replace("]" * 99_500, ""))  # parses
    with pytest.raises(tg.LoadError, match=r"deep\.json: \$: the document nests lists and objects more than 64 levels"):
        tg.load(tmp_path / "deep.json")
    doc["blocks"][1]["params"]["k"] = _nested(100_000)
    with pytest.raises(tg.LoadError, match=r"graph document: \$: the document nests .* more than 64 levels deep"):
        tg.from_dict(doc)
    assert time.perf_counter() - start < 5.0


def test_depth_limit_boundary():
    assert not tg.serialize._too_deep(_nested(tg.serialize.MAX_DEPTH))
    assert tg.serialize._too_deep(_nested(tg.serialize.MAX_DEPTH + 1))
    assert tg.serialize._too_deep({"a": [{"b": _nested(tg.serialize.MAX_DEPTH - 2)}]})


class _Panic(BaseException):
    """Stands for pyo3_runtime.PanicException, which derives from BaseException."""


class _Validator:
    def __init__(self, error: BaseException) -> None:
        self.error = error

    def iter_errors(self, data):
        raise self.error


def test_a_validator_panic_is_a_load_error(monkeypatch):
    doc = _gain_graph().to_dict()
    monkeypatch.setattr(tg.serialize, "_validator", lambda: _Validator(_Panic("index out of bounds")))
    with pytest.raises(tg.LoadError, match=r"graph document: \$: the schema check failed on this document: .*bounds"):
        tg.from_dict(doc)
    for passes in [KeyboardInterrupt(), SystemExit(2), MemoryError()]:
        monkeypatch.setattr(tg.serialize, "_validator", lambda e=passes: _Validator(e))
        with pytest.raises(type(passes)):
            tg.from_dict(doc)


@pytest.mark.parametrize("name", ["pump\n", "pump\r\n", "\npump", "pu mp", "pump\x00"])
def test_block_names_are_matched_whole(tmp_path, name):
    doc = _gain_graph().to_dict()
    doc["blocks"][1]["name"] = name
    with pytest.raises(tg.LoadError, match=r"\$\.blocks\[1\]\.name: .* does not match"):
        _load(tmp_path, doc)
    with pytest.raises(tg.WiringError, match=r"A block name must start with a letter"):
        Gain(name=name)
    with pytest.raises(tg.WiringError, match=r"A graph name must start with a letter"):
        tg.Graph(name)


def test_port_references_are_matched_whole(tmp_path):
    doc = _gain_graph().to_dict()
    doc["connections"][0] = ["u.value\n", "amp.u"]
    with pytest.raises(tg.LoadError, match=r"\$\.connections\[0\]\[0\]: 'u\.value\\n' does not match"):
        _load(tmp_path, doc)


HUGE = "x" * 5_000_000


def _set(doc: dict, path: tuple, value) -> dict:
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: _set(d, ("format",), HUGE), r"\$\.format: not a twingraph graph file"),
        (lambda d: _set(d, ("version",), HUGE), r"\$\.version: this twingraph reads format versions"),
        (lambda d: _set(d, ("name",), HUGE + "!"), r"\$\.name: 'xxx.* does not match"),
        (lambda d: _set(d, ("blocks", 1, "type"), HUGE), r"\$\.blocks\[1\]: block 'amp' has unknown type 'xxx"),
        (lambda d: _set(d, ("blocks", 1, "name"), HUGE), r"\$\.connections\[0\]: .* has no input 'amp\.u'.*'xxx"),
        (lambda d: _set(d, ("blocks", 1, "params", HUGE), 1.0), r"block 'amp' \(Gain\) has no param 'xxx"),
        (lambda d: _set(d, ("blocks", 1, "params", "k"), HUGE), r"The 'k' parameter of Gain 'amp' .* Got 'xxx"),
        (lambda d: _set(d, ("connections", 0, 0), HUGE + ".value"), r"\$\.connections\[0\]: cannot connect 'xxx"),
        (
            lambda d: _set(_set(d, ("blocks", 1, "params", "k"), {"__npz__": "k"}), ("arrays",), HUGE),
            r"\$\.arrays: must be a path inside the graph file's folder: 'xxx",
        ),
    ],
    ids=["format", "version", "graph name", "type", "block name", "param name", "param", "connection", "arrays"],
)
def test_huge_strings_are_quoted_short(tmp_path, mutate, message):
    with pytest.raises(tg.LoadError, match=message) as info:
        _load(tmp_path, mutate(_gain_graph().to_dict()))
    assert len(str(info.value)) < 1000, str(info.value)[:2000]


def test_a_50_mb_param_string_is_not_echoed(tmp_path):
    doc = _gain_graph().to_dict()
    doc["blocks"][1]["params"]["k"] = "y" * 50_000_000
    with pytest.raises(
        tg.LoadError, match=r"The 'k' parameter of Gain 'amp' must be .*\(50000002 characters\)"
    ) as info:
        _load(tmp_path, doc)
    assert len(str(info.value)) < 1000


def test_a_string_for_a_number_names_block_and_param(tmp_path):
    doc = _gain_graph().to_dict()
    doc["blocks"][1]["params"]["k"] = "abc"
    with pytest.raises(tg.LoadError, match=r"bad\.json: .*'k' parameter of Gain 'amp'.*Got 'abc'") as info:
        _load(tmp_path, doc)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda text: text.replace('"dt": 0.1', '"dt": Infinity', 1), r"\$\.dt: The 'dt' parameter of Graph 'g'"),
        (lambda text: text.replace('"dt": 0.1', '"dt": 1e400', 1), r"\$\.dt: The 'dt' parameter of Graph 'g'"),
        (lambda text: text.replace('"name": "amp"', '"name": "amp\\n"'), r"\$\.blocks\[1\]\.name: 'amp\\n' does not"),
        (lambda text: text.replace('"k": 2.0', '"k": "abc"'), r"The 'k' parameter of Gain 'amp' .* Got 'abc'"),
        (lambda text: text.replace('"k": 2.0', '"k": "' + "z" * 1_000_000 + '"'), r"Got 'zzz.*characters\)"),
        (lambda text: text.replace('"k": 2.0', '"k": ' + "[" * 100 + "]" * 100), r"more than 64 levels"),
        (lambda text: text.replace('"k": 2.0', '"k": ' + "[" * 100_000 + "]" * 100_000), r"not JSON"),
        (lambda text: text.replace('"version": 2', '"version": 3'), r"Upgrade twingraph"),
    ],
    ids=["Infinity", "1e400", "newline", "string k", "huge k", "deep", "deeper", "version 3"],
)
def test_the_cli_reports_load_errors_on_one_line(tmp_path, capsys, edit, message):
    from twingraph.cli import main

    _gain_graph().save(tmp_path / "g.json")
    text = (tmp_path / "g.json").read_text()
    (tmp_path / "bad.json").write_text(edit(text))
    assert main(["validate", str(tmp_path / "bad.json")]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("twingraph validate: error: ") and err.count("\n") == 1
    assert re.search(message, err) and len(err) < 1000, err[:1000]


def test_a_symlinked_sidecar_in_the_cli_is_one_line(tmp_path, capsys):
    from twingraph.cli import main

    g = tg.Graph("g")
    g.add(Constant(value=np.arange(2000.0), name="c"))
    g.add(tg.Output("y"))
    g.connect("c.y", "y.u")
    (tmp_path / "graphs").mkdir()
    g.save(tmp_path / "graphs" / "g.json")
    os.replace(tmp_path / "graphs" / "g.npz", tmp_path / "g.npz")
    (tmp_path / "graphs" / "g.npz").symlink_to(tmp_path / "g.npz")
    assert main(["validate", str(tmp_path / "graphs" / "g.json")]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "outside" in err and err.startswith("twingraph validate: error: ")
