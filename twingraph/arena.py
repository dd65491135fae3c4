"""Port memory: one ``(B, W)`` array per dtype, every output port a view into it.

Blocks write their outputs in place into these views and read their inputs
from the views of the ports that feed them, so a tick builds no dicts and
copies nothing between blocks; logging a tick is one copy per dtype.
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from .signals import Signal


@dataclass(frozen=True)
class Slot:
    """Where one port lives: its dtype's array, the first column, the per-asset shape."""

    dtype: str
    offset: int
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=int))

    def of(self, array: np.ndarray) -> np.ndarray:
        """This port's values in ``array`` of shape ``(..., W)`` as ``(..., *shape)``; a view."""
        if self.shape == ():
            return array[..., self.offset]
        block = array[..., self.offset : self.offset + self.size]
        return block.reshape(array.shape[:-1] + self.shape)


def layout(signals: Mapping[str, Signal]) -> tuple[dict[str, Slot], dict[str, int]]:
    """Pack resolved signals by dtype: slots by port path, and the width of each dtype's array."""
    slots: dict[str, Slot] = {}
    widths: dict[str, int] = {}
    for path, signal in signals.items():
        offset = widths.get(signal.dtype, 0)
        slots[path] = Slot(signal.dtype, offset, signal.shape)
        widths[signal.dtype] = offset + signal.size
    return slots, widths


class PortValues(Mapping[str, np.ndarray]):
    """Read-only mapping ``"block.port"`` to values, over arrays laid out by :func:`layout`.

    With ``unbatched=True`` (a batch of one asset) values drop the batch axis.
    """

    def __init__(self, arrays: dict[str, np.ndarray], slots: dict[str, Slot], unbatched: bool) -> None:
        self._arrays = arrays
        self._slots = slots
        self._unbatched = unbatched

    def __getitem__(self, path: str) -> np.ndarray:
        try:
            slot = self._slots[path]
        except KeyError:
            raise KeyError(f"No port '{path}'. Ports are: {list(self._slots)}") from None
        value = slot.of(self._arrays[slot.dtype])
        return value[0] if self._unbatched else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._slots)

    def __len__(self) -> int:
        return len(self._slots)

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{k!r}: {self[k]!r}" for k in self) + "}"
