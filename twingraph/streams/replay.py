"""Replay of recorded data as a :class:`~twingraph.streams.Source`."""

import re
import time as _time
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._optional import require
from ..errors import TwinGraphError, quote
from .records import Record, Source

_ELEMENT = re.compile(r"(.+)\[(\d+(?:,\d+)*)\]")
BATCH = 10_000  # most records one poll returns


def read_frame(data: pd.DataFrame | str | PathLike) -> pd.DataFrame:
    """A DataFrame as is, or read from a ``.csv`` or ``.parquet`` file."""
    if isinstance(data, pd.DataFrame):
        return data
    path = Path(data)
    if path.suffix == ".parquet":
        require("pyarrow", "streams", "parquet files")
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return pd.read_csv(path)
    raise TwinGraphError(f"Cannot replay {quote(str(path))}: give a .csv or .parquet file, or a DataFrame.")


def port_columns(columns: list[str]) -> dict[str, list[str] | str]:
    """Group column names into ports: ``"u"`` is a port of its own, ``"y[0]"``, ``"y[1]"`` the elements of ``y``.

    >>> port_columns(["u", "y[1]", "y[0]"])
    {'u': 'u', 'y': ['y[0]', 'y[1]']}
    """
    ports: dict[str, Any] = {}
    elements: dict[str, dict[tuple[int, ...], str]] = {}
    for column in columns:
        match = _ELEMENT.fullmatch(column)
        if match:
            index = tuple(int(i) for i in match.group(2).split(","))
            elements.setdefault(match.group(1), {})[index] = column
        else:
            ports[column] = column
    for name, by_index in elements.items():
        if name in ports:
            raise TwinGraphError(f"Column {quote(name)} and element columns {sorted(by_index.values())} clash.")
        shape = tuple(max(i[d] for i in by_index) + 1 for d in range(len(next(iter(by_index)))))
        missing = [i for i in np.ndindex(*shape) if i not in by_index]
        if missing or any(len(i) != len(shape) for i in by_index):
            raise TwinGraphError(f"The element columns of {quote(name)} do not fill a shape {shape}.")
        ports[name] = [by_index[i] for i in np.ndindex(*shape)]
    return ports


class ReplaySource(Source):
    """Records from a table in long format: a time column, an asset column, one column per port or element.

    Each row is one :class:`Record` of its asset at its time, rows in time order
    (stable: rows of equal time keep their order). A port is a column of its
    own (``u``) or element columns (``y[0]``, ``y[1]``, sent as a list).
    NaN cells are missing values. :meth:`position` is the number of rows
    returned so far.

    Parameters
    ----------
    data : DataFrame, or path of a .csv or .parquet file
        The recording.
    speed : float or None
        ``None`` replays as fast as the service takes records; a number paces
        the rows at real time times ``speed`` (``2.0``: twice as fast).
    time, asset : str
        Names of the time [s] and asset columns.

    Examples
    --------
    >>> frame = pd.DataFrame({"time": [0.0, 0.0, 0.5], "asset": ["a", "b", "a"], "u": [1.0, 2.0, 3.0]})
    >>> source = ReplaySource(frame)
    >>> source.open()
    >>> source.poll(0.0)[:2]
    [Record(time=0.0, asset='a', values={'u': 1.0}), Record(time=0.0, asset='b', values={'u': 2.0})]
    >>> source.position(), source.exhausted
    (3, True)
    """

    def __init__(
        self, data: pd.DataFrame | str | PathLike, speed: float | None = None, time: str = "time", asset: str = "asset"
    ) -> None:
        if speed is not None and not (isinstance(speed, (int, float)) and 0 < speed < float("inf")):
            raise TwinGraphError(f"The 'speed' parameter of ReplaySource must be a number > 0 or None. Got {speed!r}.")
        frame = read_frame(data)
        absent = [c for c in (time, asset) if c not in frame.columns]
        if absent:
            raise TwinGraphError(f"Cannot replay: no column {absent}; the columns are {list(map(str, frame.columns))}.")
        frame = frame.sort_values(time, kind="stable")
        self.speed = speed
        self.times = frame[time].to_numpy(dtype=float)
        self.assets = frame[asset].astype(str).tolist()
        ports = port_columns([str(c) for c in frame.columns if c not in (time, asset)])
        self.columns = {
            port: frame[cols].to_numpy().tolist() if isinstance(cols, list) else frame[cols].tolist()
            for port, cols in ports.items()
        }
        self._next = 0
        self._anchor: tuple[float, float] | None = None

    def __len__(self) -> int:
        return len(self.times)

    def open(self, position: Any = None) -> None:
        self._next = 0 if position is None else int(position)
        if self.speed is not None and self._next < len(self):
            self._anchor = (_time.monotonic(), float(self.times[self._next]))

    def _due(self) -> int:
        """The end of the rows due now."""
        end = min(self._next + BATCH, len(self))
        if self._anchor is None:
            return end
        wall, start = self._anchor
        now = start + (_time.monotonic() - wall) * self.speed
        return self._next + int(np.searchsorted(self.times[self._next : end], now, side="right"))

    def poll(self, timeout: float) -> list[Record]:
        end = self._due()
        if end == self._next and self._next < len(self) and self._anchor is not None:
            wall, start = self._anchor
            wait = wall + (self.times[self._next] - start) / self.speed - _time.monotonic()
            _time.sleep(max(0.0, min(timeout, wait)))
            end = self._due()
        rows = range(self._next, end)
        times, assets = self.times, self.assets
        records = [Record(float(times[i]), assets[i], {p: c[i] for p, c in self.columns.items()}) for i in rows]
        self._next = end
        return records

    def position(self) -> int:
        return self._next

    @property
    def exhausted(self) -> bool:
        return self._next >= len(self)
