"""Port-level history of a simulation, in preallocated NumPy buffers.

Each logged tick is one copy per dtype from the simulator's port memory into
a ``(capacity, B, W)`` buffer. Capacity grows by doubling, or is fixed at
``max_len`` rows used as a ring buffer so that long runs stay bounded.
"""

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ._optional import require
from .arena import Slot, layout
from .signals import Signal


def element_columns(path: str, shape: tuple[int, ...]) -> list[str]:
    """Column names of a port's elements: ``"b.p"`` for a scalar, else ``"b.p[i]"`` / ``"b.p[i,j]"``."""
    if shape == ():
        return [path]
    return [f"{path}[{','.join(map(str, idx))}]" for idx in np.ndindex(*shape)]


class History:
    """Logged port values over time.

    Values are read as arrays of shape ``(T, B, *shape)``; with a batch of one
    asset the batch axis is dropped, ``(T, *shape)``.

    Parameters
    ----------
    signals : dict of str to Signal
        The logged ports (``"block.port"``) and their resolved signals.
    arrays : dict of str to ndarray
        The simulator's port memory, one ``(B, W)`` array per dtype.
    slots : dict of str to Slot
        Where each port lives in ``arrays``.
    batch : int
        Number of assets B.
    dt : float
        Tick length [s].
    max_len : int or None
        Keep only the last ``max_len`` ticks (ring buffer); ``None`` keeps all.
    """

    def __init__(
        self,
        signals: dict[str, Signal],
        arrays: dict[str, np.ndarray],
        slots: dict[str, Slot],
        batch: int,
        dt: float,
        max_len: int | None = None,
    ) -> None:
        if max_len is not None and (not isinstance(max_len, (int, np.integer)) or max_len < 1):
            raise ValueError(f"The 'max_len' parameter of History must be an int >= 1. Got {max_len!r} instead.")
        self.dt = dt
        self.max_len = max_len
        self.batch = batch
        self.slots, widths = layout(signals)
        self._sources = []
        for dtype in widths:
            columns = np.concatenate(
                [
                    np.arange(slots[p].offset, slots[p].offset + s.size)
                    for p, s in self.slots.items()
                    if s.dtype == dtype
                ]
            )
            whole = len(columns) == arrays[dtype].shape[1] and np.array_equal(columns, np.arange(len(columns)))
            self._sources.append((dtype, arrays[dtype], None if whole else columns))
        self._widths = widths
        self._n = self._capacity = 0
        self._allocate(max_len or 0)

    def _allocate(self, capacity: int) -> None:
        old_rows = min(self._n, self._capacity)
        buffers = {d: np.empty((capacity, self.batch, w), dtype=d) for d, w in self._widths.items()}
        ticks = np.empty(capacity, dtype=np.int64)
        if old_rows:
            for d in buffers:
                buffers[d][:old_rows] = self._buffers[d][:old_rows]
            ticks[:old_rows] = self._ticks[:old_rows]
        self._buffers, self._ticks, self._capacity = buffers, ticks, capacity
        self._copies = [(buffers[d], src, cols) for d, src, cols in self._sources]

    def reserve(self, rows: int) -> None:
        """Make room for ``rows`` more ticks at once (a ring buffer is already full size)."""
        if self.max_len is None and self._n + rows > self._capacity:
            self._allocate(self._n + rows)

    def record(self, tick: int) -> None:
        """Copy the current port values as the row for ``tick``."""
        n = self._n
        if self.max_len is not None:
            row = n % self._capacity
        else:
            if n == self._capacity:
                self._allocate(max(1024, 2 * n))
            row = n
        for buffer, source, columns in self._copies:
            if columns is None:
                buffer[row] = source
            else:
                np.take(source, columns, axis=1, out=buffer[row])
        self._ticks[row] = tick
        self._n = n + 1

    def _rows(self) -> np.ndarray:
        """Buffer rows in chronological order (a full ring buffer starts after its newest row)."""
        if self.max_len is None or self._n <= self._capacity:
            return np.arange(min(self._n, self._capacity))
        start = self._n % self._capacity
        return np.concatenate([np.arange(start, self._capacity), np.arange(start)])

    def __len__(self) -> int:
        return min(self._n, self._capacity)

    @property
    def ports(self) -> list[str]:
        """The logged ports, ``"block.port"``."""
        return list(self.slots)

    @property
    def ticks(self) -> np.ndarray:
        """Tick number of each logged row."""
        return self._ticks[self._rows()]

    @property
    def time(self) -> np.ndarray:
        """Time of each logged row [s]."""
        return self.ticks * self.dt

    def __getitem__(self, path: str) -> np.ndarray:
        try:
            slot = self.slots[path]
        except KeyError:
            raise KeyError(f"Port '{path}' was not logged. Logged ports: {self.ports}") from None
        values = slot.of(self._buffers[slot.dtype][self._rows()])
        return values[:, 0] if self.batch == 1 else values

    def to_numpy(self, ports: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Values of ``ports`` (default all) by port, each ``(T, B, *shape)`` or ``(T, *shape)`` for B=1."""
        return {p: self[p] for p in (self.ports if ports is None else ports)}

    def to_pandas(self, ports: Sequence[str] | None = None, last: int | None = None) -> pd.DataFrame:
        """A DataFrame with one column per port element (``"block.port[i]"``).

        The index is ``time`` [s]; with more than one asset, a MultiIndex ``(time, asset)``.
        ``last`` keeps only the last ``last`` ticks.
        """
        rows = self._rows()
        if last is not None:
            rows = rows[max(len(rows) - last, 0) :]
        time = self._ticks[rows] * self.dt
        columns = {}
        for path in self.ports if ports is None else ports:
            slot = self.slots[path]
            values = self._buffers[slot.dtype][rows][..., slot.offset : slot.offset + slot.size]
            flat = values.reshape(len(rows) * self.batch, slot.size)
            for i, name in enumerate(element_columns(path, slot.shape)):
                columns[name] = flat[:, i]
        if self.batch == 1:
            index = pd.Index(time, name="time")
        else:
            index = pd.MultiIndex.from_product([time, range(self.batch)], names=["time", "asset"])
        return pd.DataFrame(columns, index=index)

    def to_csv(self, path, ports: Sequence[str] | None = None) -> None:
        """Write :meth:`to_pandas` to a CSV file."""
        self.to_pandas(ports).to_csv(path)

    def plot(self, ports: str | Sequence[str] | None = None, asset: int = 0, axes=None):
        """Plot ``ports`` (default all) against time for one asset, one panel per port.

        Returns the matplotlib axes.
        """
        plt = require("matplotlib.pyplot", purpose="History.plot")
        ports = [ports] if isinstance(ports, str) else list(self.ports if ports is None else ports)
        if axes is None:
            _, axes = plt.subplots(len(ports), 1, sharex=True, squeeze=False, figsize=(7, 1.8 * len(ports) + 0.6))
            axes = axes[:, 0]
        time = self.time
        for ax, path in zip(axes, ports):
            values = self[path] if self.batch == 1 else self[path][:, asset]
            values = values.reshape(len(time), -1)
            labels = element_columns(path, self.slots[path].shape)
            for column, label in zip(values.T, labels):
                ax.plot(time, column, label=label)
            ax.set_ylabel(path)
            if len(labels) > 1:
                ax.legend(loc="best", fontsize="small")
        axes[-1].set_xlabel("time [s]")
        return axes

    def _repr_html_(self) -> str:
        """Notebook display: a table of the last ticks."""
        from .render import history_html

        return history_html(self)

    def __repr__(self) -> str:
        return f"<History: {len(self)} ticks, {len(self.slots)} ports, batch {self.batch}>"
