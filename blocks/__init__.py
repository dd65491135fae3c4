"""The twingraph block library, one subpackage per family.

Importing ``blocks`` registers every block type, so saved graphs can name them.
"""

from . import discrete, math, sinks, sources

__all__ = ["discrete", "math", "sinks", "sources"]
