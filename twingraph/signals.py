"""Signal specifications and the ports that carry them.

A :class:`Signal` describes what flows through a port: the per-asset ``shape``
(the batch dimension ``B`` is never part of it), the ``dtype`` and the physical
``unit``. ``None`` in any of these fields means *inferred*: a generic block
such as a gain takes the shape, dtype or unit of whatever is connected to it.
"""

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from . import units
from .errors import WiringError, quote

Shape = tuple[int, ...]


def _normalise_shape(shape) -> Shape | None:
    if shape is None:
        return None
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    try:
        dims = tuple(int(d) for d in shape)
    except (TypeError, ValueError) as exc:
        raise WiringError(f"A signal shape must be a tuple of ints. Got {shape!r} instead.") from exc
    if any(d < 1 for d in dims):
        raise WiringError(f"A signal shape must have positive dimensions. Got {dims} instead.")
    return dims


def _normalise_unit(unit) -> str | None:
    if unit is None:
        return None
    if not isinstance(unit, str):
        raise WiringError(f"A signal unit must be a string such as 'm3/s'. Got {quote(unit)} instead.")
    return unit.strip()


@dataclass(frozen=True)
class Signal:
    """What one port carries, per asset.

    Parameters
    ----------
    shape : tuple of int or None
        Shape of one asset's value; ``()`` for a scalar. ``None``: inferred from the connection.
    dtype : str or None
        NumPy dtype name (``"float64"``, ``"bool"``). ``None``: inferred.
    unit : str or None
        Physical unit (``"m3/s"``, ``"m^3/s"``, ``"rad/s"``); ``""`` is dimensionless, ``None``
        unspecified. Kept as written (surrounding spaces removed) for display; parsed with pint
        and compared by meaning when the graph is wired (:mod:`twingraph.units`).
    description : str
        Free text shown in renderings and docs.

    Examples
    --------
    >>> Signal(shape=(3,), unit="m").describe()
    '(3,) float64 [m]'
    """

    shape: Shape | None = None
    dtype: str | None = "float64"
    unit: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", _normalise_shape(self.shape))
        object.__setattr__(self, "unit", _normalise_unit(self.unit))
        if self.dtype is not None:
            try:
                dtype = np.dtype(self.dtype).name
            except TypeError as exc:
                raise WiringError(f"Unknown signal dtype {self.dtype!r}.") from exc
            object.__setattr__(self, "dtype", dtype)

    @property
    def size(self) -> int:
        """Number of scalar elements per asset (the shape must be known)."""
        return math.prod(self.shape)

    @property
    def resolved(self) -> bool:
        """True when shape and dtype are known."""
        return self.shape is not None and self.dtype is not None

    def mismatch(self, other: "Signal") -> str | None:
        """Why a value of ``self`` cannot feed a port expecting ``other``, or None when it can.

        Known shapes and dtypes must be equal; known units must mean the same
        (see :func:`twingraph.units.mismatch`: ``m^3/s`` feeds ``m3/s``, ``mm`` does not feed ``m``).

        >>> print(Signal(shape=(), unit="mm").mismatch(Signal(shape=(), unit="m")))
        the units differ in scale (1 mm = 0.001 m): insert a Gain(k=0.001, unit='m') between them
        """
        for field in ("shape", "dtype"):
            mine, theirs = getattr(self, field), getattr(other, field)
            if mine is not None and theirs is not None and mine != theirs:
                return f"the {field}s differ"
        return units.mismatch(self.unit, other.unit)

    def merge(self, other: "Signal") -> "Signal":
        """Fill this signal's unknown fields from ``other``."""
        return replace(
            self,
            shape=self.shape if self.shape is not None else other.shape,
            dtype=self.dtype if self.dtype is not None else other.dtype,
            unit=self.unit if self.unit is not None else other.unit,
        )

    def describe(self) -> str:
        """Short text such as ``(3,) float64 [m]``, with ``?`` for unknown fields."""
        shape = "?" if self.shape is None else str(self.shape)
        text = f"{shape} {self.dtype or '?'}"
        return f"{text} [{self.unit}]" if self.unit else text


@dataclass(frozen=True)
class Port:
    """A reference to one input or output of a block or subsystem."""

    owner: object
    name: str
    direction: str  # "in" or "out"

    @property
    def path(self) -> str:
        """``"block.port"``, the name used in connections and history."""
        return f"{self.owner.name}.{self.name}"

    @property
    def signal(self) -> Signal:
        """The declared signal (unknown fields are inferred when the graph is compiled)."""
        if self.direction == "in":
            return self.owner.input_signals()[self.name]
        return self.owner.output_signals(self.owner.input_signals())[self.name]

    def __repr__(self) -> str:
        return f"<{'input' if self.direction == 'in' else 'output'} {self.path}: {self.signal.describe()}>"


class PortNamespace:
    """Attribute access to a block's ports: ``block.inp.u``, ``block.out.y``."""

    def __init__(self, owner, direction: str) -> None:
        self._owner = owner
        self._direction = direction

    def _names(self) -> list[str]:
        if self._direction == "in":
            return list(self._owner.input_signals())
        return list(self._owner.output_signals(self._owner.input_signals()))

    def __getattr__(self, name: str) -> Port:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name: str) -> Port:
        names = self._names()
        if name not in names:
            kind = "input" if self._direction == "in" else "output"
            raise WiringError(
                f"Block '{self._owner.name}' has no {kind} port '{name}'. Its {kind}s are: {names}."
            )
        return Port(self._owner, name, self._direction)

    def __iter__(self) -> Iterator[Port]:
        return (Port(self._owner, n, self._direction) for n in self._names())

    def __dir__(self) -> list[str]:
        return self._names()

    def __repr__(self) -> str:
        return f"<{'inputs' if self._direction == 'in' else 'outputs'} of {self._owner.name}: {self._names()}>"
