"""Port memory: one ``(B, W)`` array per dtype, every output port a view into it.

Blocks write their outputs in place into these views and read their inputs
from the views of the ports that feed them, so a tick builds no dicts and
copies nothing between blocks; logging a tick is one copy per dtype.
"""

import math
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
        return math.prod(self.shape)

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


Reader = tuple[str, tuple, tuple[int, ...] | None]  # dtype, index into its (B, W) array, shape to give the value


def readers(slots: Mapping[str, Slot], unbatched: bool) -> dict[str, Reader]:
    """How to read each port from its dtype's array, worked out once: ``arrays[dtype][index]``, reshaped if needed.

    With ``unbatched=True`` (a batch of one asset) the value drops the batch axis.
    """
    lead = (0,) if unbatched else (slice(None),)
    found = {}
    for path, slot in slots.items():
        if slot.shape == ():
            found[path] = slot.dtype, (*lead, slot.offset), None
        else:
            shape = None if len(slot.shape) == 1 else (() if unbatched else (-1,)) + slot.shape
            found[path] = slot.dtype, (*lead, slice(slot.offset, slot.offset + slot.size)), shape
    return found


class PortValues(Mapping[str, np.ndarray]):
    """Read-only mapping ``"block.port"`` to values, over arrays laid out by :func:`layout`.

    ``readers`` come from :func:`readers`; each look-up is one index into its array.
    """

    def __init__(self, arrays: dict[str, np.ndarray], readers: dict[str, Reader]) -> None:
        self._arrays = arrays
        self._readers = readers

    def __getitem__(self, path: str) -> np.ndarray:
        try:
            dtype, index, shape = self._readers[path]
        except KeyError:
            raise KeyError(f"No port '{path}'. Ports are: {list(self._readers)}") from None
        value = self._arrays[dtype][index]
        return value if shape is None else value.reshape(shape)

    def __iter__(self) -> Iterator[str]:
        return iter(self._readers)

    def __len__(self) -> int:
        return len(self._readers)

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{k!r}: {self[k]!r}" for k in self) + "}"
