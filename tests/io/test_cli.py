"""The ``twingraph`` command on the example graph, run as a user would (subprocesses)."""

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import twingraph as tg
from twingraph import cli

EXAMPLE = Path(__file__).parents[2] / "examples" / "graph_files" / "build_and_save.py"


def twingraph(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "twingraph.cli", *args], cwd=cwd, capture_output=True, text=True)


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> Path:
    """The folder where the example script saved its graph and setpoint data."""
    folder = tmp_path_factory.mktemp("example")
    result = subprocess.run([sys.executable, str(EXAMPLE), "--out", "out"], cwd=folder, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "saved out/controlled_plant.json" in result.stdout
    return folder / "out"


def test_the_example_saves_a_loadable_graph_and_data(example):
    graph = tg.load(example / "controlled_plant.json")
    assert list(graph.blocks) == ["r", "err", "controller", "plant", "y"]
    setpoint = pd.read_csv(example / "setpoint.csv")
    assert list(setpoint.columns) == ["time", "r"] and len(setpoint) == 200
    if shutil.which("dot"):
        assert (example / "controlled_plant.png").read_bytes()[:4] == b"\x89PNG"
        ET.parse(example / "controlled_plant.svg")


def test_help_lists_the_commands(tmp_path):
    script = shutil.which("twingraph") or pytest.skip(
        "the twingraph console script is not installed (pip install -e .)"
    )
    for command in ([script, "--help"], [sys.executable, "-m", "twingraph.cli", "--help"]):
        result = subprocess.run(command, capture_output=True, text=True)
        assert result.returncode == 0
        for name in ("validate", "render", "run", "info"):
            assert f"    {name} " in result.stdout


def test_validate(example):
    result = twingraph("validate", "controlled_plant.json", cwd=example)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "ok: graph 'controlled_plant' (dt = 0.05 s): 10 blocks, 2 subsystems, 12 connections; "
        "inputs ['r'], outputs ['y']\n"
    )


def test_errors_are_one_message_without_traceback(example, tmp_path, monkeypatch, capsys):
    (tmp_path / "bad.json").write_text('{"format": "twingraph.graph", "version": 1, "name": "x"}')
    (tmp_path / "no_time.csv").write_text("r\n1.0\n")
    graph = str(example / "controlled_plant.json")
    result = twingraph("validate", "bad.json", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "twingraph validate: error: bad.json: $: 'dt' is a required property (in graph 'x')\n"
    monkeypatch.chdir(tmp_path)
    for args, message in [
        (["info", "missing.json"], "Cannot read graph file 'missing.json'"),
        (["run", graph, "--out", "h.csv"], "Graph 'controlled_plant' takes inputs ['r']: missing ['r']."),
        (["run", graph, "--inputs", "missing.csv", "--out", "h.csv"], "No such file or directory"),
        (["run", graph, "--inputs", "no_time.csv", "--out", "h.csv"], "needs a 'time' column"),
        (["render", "bad.json", "-o", "g.svg"], "'dt' is a required property"),
    ]:
        assert cli.main(args) == 1
        out, err = capsys.readouterr()
        assert out == ""
        assert err.startswith(f"twingraph {args[0]}: error: ") and message in err and err.count("\n") == 1


def test_info_lists_blocks_ports_and_order(example):
    result = twingraph("info", "controlled_plant.json", cwd=example)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "graph 'controlled_plant': dt = 0.05 s, 10 blocks, 2 subsystems"
    assert lines[1] == "inputs: r () float64 [m]"
    order = [line.split()[1] for line in lines if line[:4].strip().rstrip(".").isdigit()]
    plan = tg.Simulator(tg.load(example / "controlled_plant.json")).plan
    assert order == plan.order
    assert "  3. plant/x [Integrator] k=1.0, initial=0.0, unit='m'" in lines
    assert "       in  u: () float64 [m/s]  <- plant/rate.y" in lines
    assert "       out y: () float64 [m]" in lines


@pytest.mark.skipif(shutil.which("dot") is None, reason="the graphviz 'dot' program is not installed")
def test_render(example, tmp_path):
    result = twingraph("render", str(example / "controlled_plant.json"), "-o", "loop.svg", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "wrote loop.svg\n"
    texts = {t.text for t in ET.parse(tmp_path / "loop.svg").iter("{http://www.w3.org/2000/svg}text")}
    assert {"controller", "plant", "kp", "ki", "pi", "K", "lag", "rate", "x", "err"} <= texts
    result = twingraph(
        "render", str(example / "controlled_plant.json"), "-o", "loop.img", "--format", "png", cwd=tmp_path
    )
    assert (tmp_path / "loop.img").read_bytes()[:4] == b"\x89PNG"


def test_run_matches_the_python_api_and_settles_on_the_setpoint(example, tmp_path):
    result = twingraph(
        "run",
        str(example / "controlled_plant.json"),
        "--inputs",
        str(example / "setpoint.csv"),
        "--out",
        "history.csv",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ran 200 ticks of 'controlled_plant' (batch 1, from reset); wrote history.csv\n"
    history = pd.read_csv(tmp_path / "history.csv", index_col="time")
    setpoint = pd.read_csv(example / "setpoint.csv", index_col="time")
    expected = tg.Simulator(tg.load(example / "controlled_plant.json")).run(inputs=setpoint).to_pandas()
    pd.testing.assert_frame_equal(history, expected, check_exact=True, check_index_type=False)
    assert history["plant/x.y"].iloc[-1] == pytest.approx(1.0, abs=1e-6)  # PI control: no steady-state error
    assert history["plant/x.y"].iloc[:10].abs().max() < 0.3  # before and just after the step at 0.5 s


def test_run_steps_batch_and_saved_state(example, tmp_path):
    graph = tg.load(example / "controlled_plant.json")
    frame = pd.DataFrame(
        {"time": np.repeat(np.arange(20) * 0.05, 2), "asset": np.tile([0, 1], 20), "r": np.tile([1.0, 2.0], 20)}
    )
    frame.to_csv(tmp_path / "fleet.csv", index=False)
    result = twingraph(
        "run",
        str(example / "controlled_plant.json"),
        "--inputs",
        "fleet.csv",
        "--out",
        "h.csv",
        "--steps",
        "15",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    fleet = pd.read_csv(tmp_path / "h.csv", index_col=["time", "asset"])
    assert fleet.shape == (30, 9)
    assert np.all(
        fleet["plant/x.y"].xs(1, level="asset").to_numpy() == 2 * fleet["plant/x.y"].xs(0, level="asset").to_numpy()
    )

    sim = tg.Simulator(graph, batch=2)
    sim.run({"r": np.ones((12, 2))})
    graph.save(tmp_path / "resume.json", state=sim.snapshot())
    expected = sim.run({"r": np.ones((8, 2))})
    pd.DataFrame({"time": np.repeat(np.arange(8) * 0.05, 2), "asset": np.tile([0, 1], 8), "r": 1.0}).to_csv(
        tmp_path / "ones.csv", index=False
    )
    result = twingraph("run", "resume.json", "--inputs", "ones.csv", "--out", "resumed.csv", cwd=tmp_path)
    assert result.stdout == "ran 8 ticks of 'controlled_plant' (batch 2, from the saved state); wrote resumed.csv\n"
    resumed = pd.read_csv(tmp_path / "resumed.csv", index_col=["time", "asset"])
    np.testing.assert_array_equal(resumed["plant/x.y"].to_numpy().reshape(8, 2), expected["plant/x.y"][12:, :])
    np.testing.assert_allclose(resumed.index.get_level_values("time")[::2], np.arange(12, 20) * 0.05)
