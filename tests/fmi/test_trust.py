"""Loading and validating never run an FMU; running needs the file trusted (blocks.fmi.trust)."""

import shutil
import zipfile

import numpy as np
import pytest

import twingraph as tg
from blocks import fmi
from twingraph import cli


def marker_graph(fmu_name: str) -> tg.Graph:
    graph = tg.Graph("marked", dt=0.1)
    u = graph.add(tg.Input("u", shape=()))
    block = graph.add(fmi.FMU(path=fmu_name, name="plant"))
    graph.connect(u.out.value, block.inp.u)
    return graph


def saved(marker_fmu, folder) -> tuple:
    """The marker FMU copied into ``folder`` beside a graph file naming it; returns (graph file, marker)."""
    fmu, marker = marker_fmu
    shutil.copy(fmu, folder / "marker.fmu")
    marker_graph(str(folder / "marker.fmu")).save(folder / "g.json")
    text = (folder / "g.json").read_text().replace(str(folder / "marker.fmu"), "marker.fmu")
    (folder / "g.json").write_text(text)
    return folder / "g.json", marker


def test_load_and_validate_run_nothing_and_running_does(marker_fmu, tmp_path, capsys):
    graph_file, marker = saved(marker_fmu, tmp_path)
    graph = tg.load(graph_file)
    graph.validate()
    assert cli.main(["validate", str(graph_file)]) in (0, None)
    assert list(graph.blocks["plant"].input_signals()) == ["u"]
    assert not marker.exists()

    fmi.trust(str(tmp_path / "marker.fmu"))
    history = tg.Simulator(graph, batch=2).run({"u": np.ones((3, 2))})
    assert marker.read_text() == "instantiated"
    np.testing.assert_array_equal(np.asarray(history["plant.y"]), [[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]])


def test_an_untrusted_fmu_is_refused_naming_the_block_and_the_remedy(marker_fmu, tmp_path):
    fmu, marker = marker_fmu
    marker.unlink(missing_ok=True)
    altered = tmp_path / "altered.fmu"  # other bytes than any trusted file: a zip comment
    shutil.copy(fmu, altered)
    with zipfile.ZipFile(altered, "a") as archive:
        archive.comment = b"changed after trust"
    graph = marker_graph(str(altered))
    with pytest.raises(fmi.UntrustedFMUError, match=r"FMU 'plant' would run .* call blocks\.fmi\.trust\("):
        tg.Simulator(graph)
    assert not marker.exists()
