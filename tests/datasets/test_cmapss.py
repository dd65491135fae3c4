"""The C-MAPSS loader on synthetic files, on the real ones when present, and its errors."""

import numpy as np
import pytest

from twingraph import TwinGraphError
from twingraph.datasets import COLUMNS, load_cmapss

from .synthetic import REAL_DIR, write_synthetic_cmapss


def test_loads_a_synthetic_subset(tmp_path):
    true_rul = write_synthetic_cmapss(tmp_path, "FD003", units=5)
    data = load_cmapss("FD003", path=tmp_path)
    assert list(data.train.columns) == COLUMNS and list(data.test.columns) == COLUMNS
    assert data.train["unit"].nunique() == 5
    assert data.rul["rul"].to_dict() == true_rul
    targets = data.train_targets(cap=125)
    first = data.train[data.train["unit"] == 1]
    life = first["cycle"].max()
    np.testing.assert_array_equal(targets[first.index], np.minimum(life - first["cycle"], 125))


def test_environment_variable_is_searched(tmp_path, monkeypatch):
    write_synthetic_cmapss(tmp_path, units=2)
    monkeypatch.chdir(tmp_path.parent)
    monkeypatch.setenv("TWINGRAPH_CMAPSS_DIR", str(tmp_path))
    assert load_cmapss().train["unit"].nunique() == 2


def test_missing_files_say_where_to_get_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TWINGRAPH_CMAPSS_DIR", raising=False)
    with pytest.raises(TwinGraphError, match="NASA Prognostics Center of Excellence.*data/README.md"):
        load_cmapss()


def test_wrong_column_count_is_refused(tmp_path):
    (tmp_path / "train_FD001.txt").write_text("1 1 0.0 0.0\n")
    with pytest.raises(TwinGraphError, match="has 4 columns; a C-MAPSS file has 26"):
        load_cmapss(path=tmp_path)


@pytest.mark.skipif(not (REAL_DIR / "train_FD001.txt").is_file(), reason="real C-MAPSS files absent")
def test_real_fd001_matches_its_published_size():
    data = load_cmapss("FD001", path=REAL_DIR)
    assert data.train.shape == (20631, 26) and data.test.shape == (13096, 26)
    assert data.train["unit"].nunique() == 100 and len(data.rul) == 100
    assert data.train.groupby("unit")["cycle"].max().min() == 128
