"""twingraph: hybrid digital twins as block diagrams.

The engine: typed signals and ports, blocks, graphs, the two-phase scheduler,
the simulator and its port-level history. The block library lives in the
separate ``blocks`` package, which registers its block types when imported.
"""

from .block import Block, Buffers, Context, block_types
from .boundary import Input, Output
from .errors import LoadError, ParamError, SimulationError, TwinGraphError, ValidationError, WiringError
from .graph import Graph
from .history import History
from .serialize import from_dict, load, load_state
from .signals import Port, Signal
from .simulator import Simulator

__version__ = "0.1.0"

__all__ = [
    "Block",
    "Buffers",
    "Context",
    "Graph",
    "History",
    "Input",
    "LoadError",
    "Output",
    "ParamError",
    "Port",
    "Signal",
    "SimulationError",
    "Simulator",
    "TwinGraphError",
    "ValidationError",
    "WiringError",
    "block_types",
    "from_dict",
    "load",
    "load_state",
]
