"""Exception types: every error twingraph raises on misuse is a ``TwinGraphError``."""


class TwinGraphError(Exception):
    """Base class of the errors twingraph raises for bad graphs, inputs or files."""


class WiringError(TwinGraphError, ValueError):
    """A connection or port reference is invalid (unknown port, mismatched signal, ...)."""


class ValidationError(TwinGraphError, ValueError):
    """A graph cannot be simulated: unconnected inputs, algebraic loops, type conflicts."""


class SimulationError(TwinGraphError, ValueError):
    """Bad data given to a simulator (missing input, wrong shape, bad snapshot)."""


class LoadError(TwinGraphError, ValueError):
    """A saved graph cannot be loaded: not JSON, wrong format, unknown block type, bad value or wiring."""
