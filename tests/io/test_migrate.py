"""Graph files of format version 1 load, migrated to the port names of version 2."""

import json

import numpy as np
import pytest

import twingraph as tg
from twingraph.migrate import RENAMED_PORTS, UPGRADES

# Written by hand as twingraph 0.x saved it: the NIS was `normalized_innovation` on the
# filters and `chi2` on Residual, and the detectors took their signal on `x`.
VERSION_1 = """{
  "format": "twingraph.graph", "version": 1, "name": "monitor", "dt": 0.1,
  "blocks": [
    {"type": "Input", "name": "force", "params": {"shape": {"__tuple__": [1]}, "unit": "N"}},
    {"type": "Input", "name": "y", "params": {"shape": {"__tuple__": [1]}, "unit": "m"}},
    {"type": "EKF", "name": "ekf", "params": {"model": {"__block__": {"type": "MassSpringDamper"}}}},
    {"type": "Residual", "name": "res"},
    {"type": "Graph", "name": "detect", "dt": 0.1,
     "blocks": [
       {"type": "Input", "name": "nis"},
       {"type": "EMA", "name": "ema", "params": {"alpha": 0.5}},
       {"type": "Output", "name": "level"}
     ],
     "connections": [["nis.value", "ema.x"], ["ema.y", "level.u"]]},
    {"type": "CUSUM", "name": "cusum", "params": {"k": 0.5, "h": 5.0}},
    {"type": "Threshold", "name": "th", "params": {"upper": 3.0}}
  ],
  "connections": [
    ["force.value", "ekf.u"], ["y.value", "ekf.y"],
    ["ekf.innovation", "res.innovation"], ["ekf.S", "res.S"],
    ["ekf.normalized_innovation", "detect.nis"],
    ["res.chi2", "cusum.x"], ["res.chi2", "th.x"]
  ]
}
"""


def test_a_version_1_file_loads_and_runs_with_the_new_port_names(tmp_path):
    (tmp_path / "v1.json").write_text(VERSION_1)
    graph = tg.load(tmp_path / "v1.json")
    assert ("ekf.nis", "detect.nis") in graph.connections
    assert ("res.nis", "cusum.u") in graph.connections and ("res.nis", "th.u") in graph.connections
    assert graph.blocks["detect"].connections[0] == ("nis.value", "ema.u")
    assert tg.load_state(tmp_path / "v1.json") is None
    rng = np.random.default_rng(0)
    steps = 50
    history = tg.Simulator(graph).run({"force": np.zeros((steps, 1)), "y": rng.normal(0.0, 0.1, (steps, 1))})
    nis = history["ekf.nis"]
    assert np.allclose(history["res.nis"], nis)  # one measurement: ν²/S is the NIS
    level = np.zeros_like(nis)
    for k in range(steps):  # the EMA inside the subsystem, fed the NIS through its new port
        level[k] = nis[k] if k == 0 else level[k - 1] + 0.5 * (nis[k] - level[k - 1])
    assert np.allclose(history["detect/ema.y"], level)
    saved = tmp_path / "v2.json"
    graph.save(saved)
    assert json.loads(saved.read_text())["version"] == 2
    assert tg.load(saved).to_dict() == graph.to_dict()


@pytest.mark.parametrize("type_name", sorted(RENAMED_PORTS))
def test_every_renamed_port_is_migrated_and_nothing_else(type_name):
    renames = RENAMED_PORTS[type_name]
    old_in, new_in = next(iter(renames.get("in", {"a": "a"}).items()))
    old_out, new_out = next(iter(renames.get("out", {"b": "b"}).items()))
    doc = {
        "format": "twingraph.graph",
        "version": 1,
        "blocks": [{"type": type_name, "name": "blk"}, {"type": "Gain", "name": "x"}],
        "connections": [["x.y", f"blk.{old_in}"], [f"blk.{old_out}", "x.u"], ["x.x", "x.x"]],
    }
    original = json.loads(json.dumps(doc))
    migrated = UPGRADES[1](doc)
    assert migrated["version"] == 2 and doc == original  # the input is left as it was
    assert migrated["connections"] == [["x.y", f"blk.{new_in}"], [f"blk.{new_out}", "x.u"], ["x.x", "x.x"]]


@pytest.mark.parametrize(
    "document",
    [
        {"version": 1},
        {"version": 1, "blocks": "many", "connections": {"a": 1}},
        {
            "version": 1,
            "blocks": [None, {"type": ["EKF"], "name": "e"}, {"type": "Graph", "name": 3}],
            "connections": [None, ["e.x"], [1, 2], ["e.normalized_innovation", "e.x", "extra"]],
        },
    ],
)
def test_migration_leaves_malformed_documents_to_the_schema_check(document):
    migrated = UPGRADES[1](document)
    assert {k: v for k, v in migrated.items() if k != "version"} == {
        k: v for k, v in document.items() if k != "version"
    }


def test_a_malformed_version_1_file_is_a_load_error(tmp_path):
    doc = json.loads(VERSION_1)
    doc["connections"].append(["res.chi2"])
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    with pytest.raises(tg.LoadError, match=r"\$\.connections\[7\]: \['res.chi2'\] is too short \(in graph 'monitor'\)"):
        tg.load(tmp_path / "bad.json")
