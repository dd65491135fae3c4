"""What flows through a live twin: timestamped records in, per-tick results out.

A :class:`Source` yields :class:`Record` objects, each one measurement
message: a time, an asset and raw values per ``Input`` port. Raw means as the
transport delivered them (a float, a list, the bytes of an MQTT payload): the
tick assembler decodes and checks every value in one place, so that every
source counts bad data the same way. A :class:`Sink` receives, once per tick,
the chosen output ports of every asset. :class:`Counters` are the service's
live figures.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class Record:
    """One message: ``values`` (port name → raw value) of ``asset`` measured at ``time``.

    ``time`` is the source's timestamp [s] on the graph's clock (tick ``k``
    covers ``[k·dt, (k+1)·dt)``), or ``None`` where the message carries none
    and the service stamps it with its arrival.
    """

    time: float | None
    asset: str
    values: Mapping[str, Any]


class Source(ABC):
    """Where records come from: a recording replayed, a broker, an industrial server.

    The service calls :meth:`open` once, then :meth:`poll` until
    :attr:`exhausted`, and :meth:`commit` after the records a poll returned are
    safely journaled (a transport with acknowledgements acknowledges them
    then, so that a crash before the journal write gets them delivered again).
    """

    @abstractmethod
    def open(self, position: Any = None) -> None:
        """Connect; resume after ``position`` (from :meth:`position`) where the source has one."""

    @abstractmethod
    def poll(self, timeout: float) -> list[Record]:
        """The records available now, waiting at most ``timeout`` [s] for the first one."""

    def commit(self) -> None:
        """Acknowledge every record returned by :meth:`poll` so far (default: nothing to do)."""
        return None

    def position(self) -> Any:
        """A JSON-able position after the records returned so far, or ``None`` where the transport keeps it."""
        return None

    @property
    def exhausted(self) -> bool:
        """True when no record will ever come again (the end of a recording); live sources never are."""
        return False

    def close(self) -> None:
        """Disconnect and release resources (default: nothing to do)."""
        return None


class Sink(ABC):
    """Where results go: once per tick, the chosen output ports of every asset."""

    @abstractmethod
    def write(self, tick: int, time: float, assets: Sequence[str], values: Mapping[str, np.ndarray]) -> None:
        """Take tick ``tick`` (at ``time`` [s]): ``values[port]`` is ``(len(assets), *shape)``, row i for asset i."""

    def close(self) -> None:
        """Flush and release resources (default: nothing to do)."""
        return None


@dataclass
class Counters:
    """Live figures of a service; every value the service saw is in exactly one of the value counts.

    A value is one port of one record (an MQTT message on a per-port topic is
    one value; a record the assembler cannot attribute counts once). ``used``
    values went into a tick; ``late`` ones arrived after their tick
    was stepped; ``unknown`` named an asset or port the twin does not have;
    ``malformed`` ones could not be decoded or held a bad value (wrong type or
    shape, ±inf, oversized); ``duplicate`` ones repeated a value already held
    for the same tick, asset and port. ``overruns`` counts ticks whose
    stepping took longer than ``dt`` of wall time, ``lag`` is the newest
    record's time minus the time of the last stepped tick [s].
    """

    ticks: int = 0
    used: int = 0
    late: int = 0
    unknown: int = 0
    malformed: int = 0
    duplicate: int = 0
    overruns: int = 0
    lag: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def messages(self) -> int:
        """Every value seen: used + late + unknown + malformed + duplicate."""
        return self.used + self.late + self.unknown + self.malformed + self.duplicate

    def as_dict(self) -> dict[str, Any]:
        """The figures as a plain dict (for logs, JSON and checkpoints)."""
        return {**asdict(self), "messages": self.messages}
