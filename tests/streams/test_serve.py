"""``twingraph serve`` as a process: SIGTERM checkpoints and exits 0, kill -9 loses nothing, a restart finishes."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twingraph.streams import CheckpointStore

from . import pumps

PUMPS = 5
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The twin as a graph file and the fleet's recording as a CSV file."""
    folder = tmp_path_factory.mktemp("serve")
    pumps.example.build_twin().save(folder / "twin.json")
    pumps.long_frame(pumps.recording(PUMPS)).to_csv(folder / "fleet.csv", index=False)
    return folder


def serve(files: Path, out: Path, speed: float | None) -> subprocess.Popen:
    source = str(files / "fleet.csv") + ("" if speed is None else f"?speed={speed}")
    command = [
        sys.executable,
        "-m",
        "twingraph.cli",
        "serve",
        str(files / "twin.json"),
        "--source",
        source,
        "--sink",
        str(out / "results.csv"),
        "--assets",
        ",".join(pumps.assets(PUMPS)),
        "--checkpoint",
        str(out / "checkpoints"),
        "--checkpoint-every",
        "20",
        "--outputs",
        ",".join(pumps.OUTPUTS),
        "--log-every",
        "0.2",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)


def ticks_written(out: Path) -> int:
    try:
        with open(out / "results.csv", encoding="utf-8") as file:
            return max(0, sum(1 for _ in file) - 1) // PUMPS
    except FileNotFoundError:
        return 0


def interrupt(process: subprocess.Popen, out: Path, sig: int, after: int) -> None:
    """Send ``sig`` once ``after`` ticks are written (the service is mid-run)."""
    deadline = time.monotonic() + 60
    while ticks_written(out) < after and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, process.communicate()
    process.send_signal(sig)


def final_outputs(out: Path) -> dict[str, np.ndarray]:
    """Every tick's outputs from the results file, the last write of a tick winning."""
    frame = (
        pd.read_csv(out / "results.csv").drop_duplicates(["tick", "asset"], keep="last").sort_values(["tick", "asset"])
    )
    steps = frame["tick"].max() + 1
    assert len(frame) == steps * PUMPS
    column = {port: f"{port}[0]" if f"{port}[0]" in frame.columns else port for port in pumps.OUTPUTS}
    return {port: frame[column[port]].to_numpy().reshape(steps, PUMPS) for port in pumps.OUTPUTS}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_killed_service_restarts_and_finishes_with_the_uninterrupted_outputs(files, tmp_path, sig):
    steps = pumps.recording(PUMPS)["u"].shape[0]
    first = serve(files, tmp_path, speed=20.0)  # 80 s of data in 4 s
    interrupt(first, tmp_path, sig, after=70)  # checkpoints every 20 ticks: 10 ticks only in the journal
    stdout, stderr = first.communicate(timeout=30)
    interrupted_at = ticks_written(tmp_path)
    assert interrupted_at < steps
    store = CheckpointStore(tmp_path / "checkpoints")
    if sig == signal.SIGTERM:
        assert first.returncode == 0, stderr
        counters = json.loads(stdout.split("counters ", 1)[1])
        assert counters["ticks"] == interrupted_at and counters["malformed"] == 0
        assert store.latest()[1]["snapshot"]["tick"] == interrupted_at  # the checkpoint on the way out
    else:
        assert first.returncode == -signal.SIGKILL
        n, document = store.latest()
        assert document["snapshot"]["tick"] < interrupted_at
        assert store.journal_path(n).stat().st_size > 0  # the journal holds the rest
    second = serve(files, tmp_path, speed=None)
    stdout, stderr = second.communicate(timeout=60)
    assert second.returncode == 0, stderr
    assert "resumed from checkpoint" in stderr
    counters = json.loads(stdout.split("counters ", 1)[1])
    assert counters["ticks"] == steps and counters["used"] == counters["messages"] == 2 * PUMPS * steps
    served = final_outputs(tmp_path)
    expected = pumps.expected(PUMPS)
    for port in pumps.OUTPUTS:
        np.testing.assert_allclose(
            served[port], expected[port].reshape(served[port].shape), rtol=0, atol=1e-12, err_msg=port
        )
