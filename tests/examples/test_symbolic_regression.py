"""The symbolic regression example: equations recovered within 5 %, a twin that tracks on them."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_recovers_the_oscillator_and_tracks_it(tmp_path):
    pytest.importorskip("gplearn")
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples/symbolic_regression/run_symbolic_regression.py"), "--out",
         str(tmp_path), "--population", "300", "--generations", "8"],
        capture_output=True, text=True, check=True, env={**os.environ, "MPLBACKEND": "Agg"}, cwd=ROOT,
    )
    assert "dx/dt = " in result.stdout and "dv/dt = " in result.stdout
    table = pd.read_csv(tmp_path / "coefficients.csv")
    truth = table[table["true"] != 0]
    assert len(truth) == 4 and np.all(truth["error_percent"] < 5), table
    assert np.all(np.abs(table.loc[table["true"] == 0, "learned"]) < 0.05), table  # no spurious term of weight
    twin = pd.read_csv(tmp_path / "twin.csv")
    settled = twin[twin["time"] >= 2.5]
    for state in ("x", "v"):
        error = np.sqrt(((settled[f"{state}_hat"] - settled[f"{state}_true"]) ** 2).mean())
        assert error < 0.05 / 2, (state, error)  # well under the position noise, the unmeasured velocity too
    doc = json.loads((tmp_path / "twin.json").read_text())
    formulas = doc["blocks"][2]["params"]["model"]["__block__"]["params"]["formulas"]["__tuple__"]
    assert all(isinstance(f, str) for f in formulas) and "*x" in formulas[1]
    assert (tmp_path / "symbolic_regression.png").stat().st_size > 10_000
