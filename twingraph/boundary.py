"""Graph boundary blocks: ``Input`` is fed from outside, ``Output`` marks a result.

In a top-level graph, the simulator writes each tick's external value into an
``Input``. In a subsystem, its ``Input`` and ``Output`` blocks are the ports the
subsystem shows to the graph that contains it.
"""

from .block import Block, check_name
from .signals import Signal


class Input(Block):
    """An external signal, fed at each step (``sim.step(u=...)``) or from recorded data.

    Parameters
    ----------
    name : str
        Block name; also the keyword used to feed it and its port name on a subsystem.
    shape : tuple of int
        Shape of one asset's value; ``()`` for a scalar.
    dtype : str
        NumPy dtype name.
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

    def input_signals(self) -> dict[str, Signal]:
        return {}

    def output_signals(self, inputs: dict[str, Signal]) -> dict[str, Signal]:
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

    def input_signals(self) -> dict[str, Signal]:
        return {"u": Signal(dtype=None, unit=self.unit)}

    def output_signals(self, inputs: dict[str, Signal]) -> dict[str, Signal]:
        return {}
