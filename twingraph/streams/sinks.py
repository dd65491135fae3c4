"""Sinks that keep results: in memory, appended to a CSV file, or to parquet files.

Rows are one asset at one tick: ``time`` [s], ``tick``, ``asset`` and one
column per output element, named like history columns (``"rul.rul"``,
``"track.params[0]"``). Floats are written with full precision.
"""

import csv
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from .._optional import require
from ..history import element_columns
from .records import Sink


def _rows(tick: int, time: float, assets: Sequence[str], values: Mapping[str, np.ndarray]) -> tuple[list, list]:
    """Column names and rows (lists of Python values) of one tick."""
    names = ["time", "tick", "asset"]
    columns = []
    for port, array in values.items():
        array = np.asarray(array)
        flat = array.reshape(len(assets), -1)
        names += element_columns(port, array.shape[1:])
        columns.append(flat.tolist())
    rows = [[time, tick, asset, *(x for block in columns for x in block[i])] for i, asset in enumerate(assets)]
    return names, rows


class MemorySink(Sink):
    """Keeps every tick in memory; :meth:`frame` and :meth:`arrays` give them back.

    Examples
    --------
    >>> sink = MemorySink()
    >>> sink.write(0, 0.0, ["a", "b"], {"y": np.array([1.0, 2.0])})
    >>> sink.write(1, 0.5, ["a", "b"], {"y": np.array([3.0, 4.0])})
    >>> sink.arrays()["y"]
    array([[1., 2.],
           [3., 4.]])
    >>> float(sink.frame().loc[(1, "b"), "y"])
    4.0
    """

    def __init__(self) -> None:
        self.ticks: list[int] = []
        self.times: list[float] = []
        self.assets: list[str] = []
        self.values: list[dict[str, np.ndarray]] = []

    def write(self, tick: int, time: float, assets: Sequence[str], values: Mapping[str, np.ndarray]) -> None:
        self.ticks.append(tick)
        self.times.append(time)
        self.assets = list(assets)
        self.values.append({port: np.array(v) for port, v in values.items()})

    def arrays(self) -> dict[str, np.ndarray]:
        """Per port, the values of every tick written, ``(T, B, *shape)``."""
        if not self.values:
            return {}
        return {port: np.stack([v[port] for v in self.values]) for port in self.values[0]}

    def frame(self) -> pd.DataFrame:
        """One row per tick and asset, indexed by ``(tick, asset)``, with ``time`` and the element columns."""
        names, rows = ["time", "tick", "asset"], []
        for tick, time, values in zip(self.ticks, self.times, self.values):
            names, more = _rows(tick, time, self.assets, values)
            rows += more
        return pd.DataFrame(rows, columns=names).set_index(["tick", "asset"])


class CSVSink(Sink):
    """Appends rows to a CSV file (the header is written when the file is new or empty)."""

    def __init__(self, path: str | PathLike) -> None:
        self.path = Path(path)
        self._file = None
        self._writer = None

    def write(self, tick: int, time: float, assets: Sequence[str], values: Mapping[str, np.ndarray]) -> None:
        names, rows = _rows(tick, time, assets, values)
        if self._file is None:
            new = not self.path.exists() or self.path.stat().st_size == 0
            self._file = open(self.path, "a", newline="", encoding="utf-8")  # noqa: SIM115 - kept open, see close()
            self._writer = csv.writer(self._file)
            if new:
                self._writer.writerow(names)
        self._writer.writerows(rows)
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class ParquetSink(Sink):
    """Appends rows to a parquet data set: a folder of part files, one per ``every`` ticks (and one at close).

    Read it back with ``pandas.read_parquet(path)``. Each part is written to a
    temporary name and renamed, so a crash leaves only whole parts.
    """

    def __init__(self, path: str | PathLike, every: int = 100) -> None:
        self.path = Path(path)
        self.every = every
        self._names: list[str] = []
        self._rows: list[list] = []
        self._ticks = 0
        self._first = 0

    def write(self, tick: int, time: float, assets: Sequence[str], values: Mapping[str, np.ndarray]) -> None:
        self._names, rows = _rows(tick, time, assets, values)
        if not self._rows:
            self._first = tick
        self._rows += rows
        self._ticks += 1
        if self._ticks >= self.every:
            self.flush()

    def flush(self) -> None:
        """Write the rows kept so far as one part file."""
        if not self._rows:
            return
        pa = require("pyarrow", "streams", "parquet files")
        require("pyarrow.parquet", "streams", "parquet files")
        self.path.mkdir(parents=True, exist_ok=True)
        frame = pd.DataFrame(self._rows, columns=self._names)
        name = f"part-{self._first:012d}"
        n = len(list(self.path.glob(f"{name}*.parquet")))
        final = self.path / f"{name}-{n}.parquet"
        temp = self.path / f".{final.name}.tmp"
        pa.parquet.write_table(pa.Table.from_pandas(frame, preserve_index=False), temp)
        temp.replace(final)
        self._rows, self._ticks = [], 0

    def close(self) -> None:
        self.flush()
