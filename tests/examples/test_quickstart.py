"""The README's demo: the tank reaches each setpoint."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]


def test_quickstart_tracks_every_setpoint(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples/quickstart/run_quickstart.py"), "--out", str(tmp_path)],
        capture_output=True, text=True, check=True, env={**os.environ, "MPLBACKEND": "Agg"},
    )
    assert "saved" in result.stdout
    history = pd.read_csv(tmp_path / "history.csv", index_col="time")
    for t_end, level in [(199.5, 1.2), (399.5, 0.6), (599.5, 1.5)]:
        assert abs(history.loc[t_end, "tank.y[0]"] - level) < 2e-3
    assert np.all(history["pump_limit.y[0]"].between(0.0, 0.05))
    assert (tmp_path / "quickstart.png").stat().st_size > 10_000
