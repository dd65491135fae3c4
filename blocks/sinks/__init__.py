"""Sinks: where signals leave a graph."""

from twingraph.boundary import Output

__all__ = ["Output"]
