"""The twingraph block library, one subpackage per family.

Importing ``blocks`` registers every block type, so saved graphs can name them.
"""

from . import anomaly, discrete, estimation, health, math, ml, physics, sinks, sources

__all__ = ["anomaly", "discrete", "estimation", "health", "math", "ml", "physics", "sinks", "sources"]
