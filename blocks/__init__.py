"""The twingraph block library, one subpackage per family.

Importing ``blocks`` registers every block type, so saved graphs can name them.
"""

from . import discrete, math, physics, sinks, sources

__all__ = ["discrete", "math", "physics", "sinks", "sources"]
