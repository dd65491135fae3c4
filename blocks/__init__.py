"""The twingraph block library, one subpackage per family.

Importing ``blocks`` registers every block type, so saved graphs can name them.
The :class:`~blocks.twin.TwinSystem` facade, which wires the standard twin from
these blocks, is here too: ``from blocks import TwinSystem``.
"""

from . import anomaly, discrete, estimation, fmi, health, math, ml, physics, sinks, sources
from .twin import TwinResult, TwinSystem

__all__ = ["TwinResult", "TwinSystem", "anomaly", "discrete", "estimation", "fmi", "health", "math", "ml",
           "physics", "sinks", "sources"]
