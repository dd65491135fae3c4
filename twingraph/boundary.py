"""Graph boundary blocks: ``Input`` is fed from outside, ``Output`` marks a result.

In a top-level graph, the simulator writes each tick's external value into an
``Input``. In a subsystem, its ``Input`` and ``Output`` blocks are the ports the
subsystem shows to the graph that contains it.
"""

from numbers import Integral

import numpy as np

from .block import Block, check_name
from .errors import check_unit, invalid_param
from .signals import Signal


class Input(Block):
    """An external signal, fed at each step (``sim.step(u=...)``) or from recorded data.

    Parameters
    ----------
    name : str
        Block name; also the keyword used to feed it and its port name on a subsystem.
    shape : tuple of int
        Shape of one asset's value, dimensions >= 1; ``()`` for a scalar.
    dtype : str
        NumPy dtype name of a number or bool (``"float64"``, ``"int64"``, ``"bool"``).
    unit : str or None
        Physical unit of the signal, e.g. ``"V"``.

    Ports
    -----
    value (out) : the fed value.

    Examples
    --------
    >>> Input("u", shape=(2,), unit="V").out.value
    <output u.value: (2,) float64 [V]>
    """

    direct_feedthrough = False

    def __init__(self, name: str, shape: tuple = (), dtype: str = "float64", unit: str | None = None):
        super().__init__(name=check_name(name))
        self.shape = shape
        self.dtype = dtype
        self.unit = unit

    def check_params(self) -> None:
        dims_ok = isinstance(self.shape, (tuple, list)) and all(
            isinstance(d, Integral) and not isinstance(d, bool) and d >= 1 for d in self.shape
        )
        if not dims_ok:
            raise invalid_param(self, "shape", "a tuple of ints >= 1 (() for a scalar)", self.shape)
        if not (isinstance(self.dtype, str) and _dtype_kind(self.dtype) in ("b", "i", "u", "f")):
            raise invalid_param(self, "dtype", "a NumPy dtype name of numbers or bools, e.g. 'float64'", self.dtype)
        check_unit(self)

    def input_signals(self) -> dict[str, Signal]:
        return {}

    def output_signals(self, inputs: dict[str, Signal]) -> dict[str, Signal]:
        self.check_params()
        return {"value": Signal(shape=self.shape, dtype=self.dtype, unit=self.unit)}


class Output(Block):
    """A named result of a graph; the output port of a subsystem.

    Parameters
    ----------
    name : str
        Block name; the port name on a subsystem.
    unit : str or None
        Expected unit of the connected signal (``None`` accepts any).

    Ports
    -----
    u (in) : the signal to publish.
    """

    def __init__(self, name: str, unit: str | None = None):
        super().__init__(name=check_name(name))
        self.unit = unit

    def check_params(self) -> None:
        check_unit(self)

    def input_signals(self) -> dict[str, Signal]:
        self.check_params()
        return {"u": Signal(dtype=None, unit=self.unit)}

    def output_signals(self, inputs: dict[str, Signal]) -> dict[str, Signal]:
        return {}


def _dtype_kind(name: str) -> str:
    """The NumPy kind letter of dtype ``name`` (``"f"``, ``"b"``, ...), or ``""`` if NumPy knows no such dtype."""
    try:
        return np.dtype(name).kind
    except TypeError:
        return ""
