"""NASA C-MAPSS turbofan engine degradation data (Saxena et al., PHM 2008).

Each ``train_FD00x.txt`` / ``test_FD00x.txt`` file holds one row per engine
cycle, 26 whitespace-separated columns with no header: unit, cycle, three
operating settings and 21 sensors. ``RUL_FD00x.txt`` holds the true remaining
cycles after the last test row of each unit. See ``data/README.md`` for where
to get the files.

The loader looks for the files in ``data/turbofan_engine_degradation/`` (below
the current folder), then in the folder named by ``$TWINGRAPH_CMAPSS_DIR``;
a ``path`` argument overrides both.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import TwinGraphError

ENV_VAR = "TWINGRAPH_CMAPSS_DIR"
DEFAULT_DIR = Path("data") / "turbofan_engine_degradation"
SETTINGS = [f"setting_{i}" for i in range(1, 4)]
SENSORS = [f"s_{i}" for i in range(1, 22)]
COLUMNS = ["unit", "cycle", *SETTINGS, *SENSORS]
SUBSETS = ("FD001", "FD002", "FD003", "FD004")


@dataclass(frozen=True)
class CMAPSS:
    """One C-MAPSS subset: ``train`` and ``test`` frames (``COLUMNS``) and ``rul``, absent files as None.

    ``rul`` is indexed by unit, with column ``rul`` [cycles] after each test unit's last row.
    """

    subset: str
    train: pd.DataFrame | None
    test: pd.DataFrame | None
    rul: pd.DataFrame | None

    def train_targets(self, cap: int | None = 125) -> pd.Series:
        """Per training row, the remaining cycles to failure, capped at ``cap`` (piecewise linear)."""
        if self.train is None:
            raise TwinGraphError(f"C-MAPSS {self.subset}: no train file was found.")
        last = self.train.groupby("unit")["cycle"].transform("max")
        rul = last - self.train["cycle"]
        return rul.clip(upper=cap) if cap is not None else rul


def find_cmapss_dir(path: str | os.PathLike | None = None) -> Path:
    """The folder holding the C-MAPSS files: ``path``, else the default folder, else ``$TWINGRAPH_CMAPSS_DIR``."""
    candidates = [Path(path)] if path is not None else [DEFAULT_DIR]
    if path is None and os.environ.get(ENV_VAR):
        candidates.append(Path(os.environ[ENV_VAR]))
    for folder in candidates:
        if any((folder / f"{kind}_{s}.txt").is_file() for kind in ("train", "test") for s in SUBSETS):
            return folder
    tried = ", ".join(f"'{c}'" for c in candidates)
    raise TwinGraphError(
        f"No C-MAPSS files (train_FD001.txt, test_FD001.txt, RUL_FD001.txt, ...) in {tried}. Download the "
        f"'Turbofan Engine Degradation Simulation Data Set' from the NASA Prognostics Center of Excellence "
        f"data repository and put the text files in '{DEFAULT_DIR}', or set {ENV_VAR} to their folder "
        f"(see data/README.md)."
    )


def _read_table(file: Path) -> pd.DataFrame:
    frame = pd.read_csv(file, sep=r"\s+", header=None, engine="python")
    if frame.shape[1] != len(COLUMNS):
        raise TwinGraphError(f"{file} has {frame.shape[1]} columns; a C-MAPSS file has {len(COLUMNS)}.")
    frame.columns = COLUMNS
    frame = frame.astype({"unit": int, "cycle": int})
    if frame[COLUMNS[2:]].isna().any().any():
        raise TwinGraphError(f"{file} has missing values.")
    return frame


def load_cmapss(subset: str = "FD001", path: str | os.PathLike | None = None) -> CMAPSS:
    """Load one C-MAPSS subset (``"FD001"`` ... ``"FD004"``).

    Examples
    --------
    >>> load_cmapss("FD007")  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ...
    twingraph.errors.TwinGraphError: The 'subset' parameter of load_cmapss must be one of
    ('FD001', 'FD002', 'FD003', 'FD004'). Got 'FD007' instead.
    """
    if subset not in SUBSETS:
        raise TwinGraphError(f"The 'subset' parameter of load_cmapss must be one of {SUBSETS}. Got {subset!r} instead.")
    folder = find_cmapss_dir(path)
    files = {kind: folder / f"{kind}_{subset}.txt" for kind in ("train", "test", "RUL")}
    if not any(f.is_file() for f in files.values()):
        raise TwinGraphError(
            f"No C-MAPSS {subset} files in '{folder}' (looked for {[f.name for f in files.values()]})."
        )
    train = _read_table(files["train"]) if files["train"].is_file() else None
    test = _read_table(files["test"]) if files["test"].is_file() else None
    rul = None
    if files["RUL"].is_file():
        values = np.loadtxt(files["RUL"], ndmin=1)
        units = np.sort(test["unit"].unique()) if test is not None else np.arange(1, len(values) + 1)
        if len(units) != len(values):
            raise TwinGraphError(f"{files['RUL']} has {len(values)} rows for {len(units)} test units.")
        rul = pd.DataFrame({"rul": values.astype(int)}, index=pd.Index(units, name="unit"))
    return CMAPSS(subset, train, test, rul)
