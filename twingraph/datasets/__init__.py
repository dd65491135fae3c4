"""Loaders for public data sets used by the examples (files are never bundled)."""

from .cmapss import CMAPSS, COLUMNS, SENSORS, SETTINGS, find_cmapss_dir, load_cmapss

__all__ = ["CMAPSS", "COLUMNS", "SENSORS", "SETTINGS", "find_cmapss_dir", "load_cmapss"]
