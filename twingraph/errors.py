"""Exception types and the one template for bad params.

Every error twingraph raises on misuse is a :class:`TwinGraphError`. A bad
param, of any block or of a graph, is a :class:`ParamError` made by
:func:`invalid_param`, whose message names the block type, the block, the
param, what is expected (with its unit) and what was given::

    The 'upper' parameter of Saturation 'sat' must be >= lower (2.0). Got 1.0.

A block checks its params in :meth:`Block.check_params <twingraph.Block.check_params>`,
which the compiler calls for every block when a graph is validated (so
``Graph.validate``, ``tg.load``, ``twingraph validate`` and ``Simulator``
all check). The checkers below cover the common cases; a user's own block
uses them too.

Examples
--------
>>> from twingraph import Block
>>> class Scale(Block, type_name="examples.errors.Scale"):
...     def __init__(self, k=1.0, *, name=None):
...         super().__init__(name=name)
...         self.k = k
...     def check_params(self):
...         check_number(self, "k", low=0.0, low_open=True)
>>> Scale(k=-1, name="s").check_params()
Traceback (most recent call last):
...
twingraph.errors.ParamError: The 'k' parameter of Scale 's' must be a number > 0. Got -1.
>>> Scale(k="abc", name="s").check_params()
Traceback (most recent call last):
...
twingraph.errors.ParamError: The 'k' parameter of Scale 's' must be a number > 0. Got 'abc'.
"""

import math
from collections.abc import Iterable
from numbers import Integral, Real
from typing import Any

import numpy as np

QUOTE_MAX = 200  # characters of user text quoted in an error message
_UNSET = object()


class TwinGraphError(Exception):
    """Base class of the errors twingraph raises for bad graphs, inputs or files."""


class WiringError(TwinGraphError, ValueError):
    """A connection or port reference is invalid (unknown port, mismatched signal, ...)."""


class ParamError(TwinGraphError, ValueError):
    """A param of a block or graph has a bad value or type."""


class ValidationError(TwinGraphError, ValueError):
    """A graph cannot be simulated: unconnected inputs, algebraic loops, type conflicts."""


class SimulationError(TwinGraphError, ValueError):
    """Bad data given to a simulator (missing input, wrong shape, ``inf``, bad snapshot)."""


class LoadError(TwinGraphError, ValueError):
    """A saved graph cannot be loaded: not JSON, wrong format, unknown block type, bad value or wiring."""


def cut(text: str, limit: int = QUOTE_MAX) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was.

    >>> cut("abcdefgh", limit=4)
    'abc... (8 characters)'
    """
    return text if len(text) <= limit else f"{text[: limit - 1]}... ({len(text)} characters)"


def quote(value: Any, limit: int = QUOTE_MAX) -> str:
    """``repr(value)``, cut to ``limit`` characters so that hostile input never floods a message.

    >>> quote("x" * 1000, limit=10)
    "'xxxxxxxx... (1002 characters)"
    """
    return cut(repr(value), limit)


def invalid_param(owner: Any, param: str, expected: str, got: Any) -> ParamError:
    """The error for a bad param of ``owner`` (a block or a graph), to raise.

    >>> class Gain: name = "k"
    >>> str(invalid_param(Gain(), "k", "a number", "abc"))
    "The 'k' parameter of Gain 'k' must be a number. Got 'abc'."
    """
    return ParamError(
        f"The '{param}' parameter of {type(owner).__name__} '{owner.name}' must be {expected}. Got {quote(got)}."
    )


def _bounds_text(low, high, low_open: bool, high_open: bool) -> str:
    low, high = (None if b is None else f"{b:g}" for b in (low, high))
    if low is not None and high is not None:
        return f" in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f" {'>' if low_open else '>='} {low}"
    if high is not None:
        return f" {'<' if high_open else '<='} {high}"
    return ""


def is_number(value: Any) -> bool:
    """True for a real number that is not a bool (NumPy scalars included)."""
    return isinstance(value, Real) and not isinstance(value, bool) and type(value).__name__ != "bool_"


def check_number(
    owner: Any,
    param: str,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
    finite: bool = True,
    unit: str = "",
    value: Any = _UNSET,
) -> None:
    """Raise :class:`ParamError` unless param ``param`` of ``owner`` is a number within bounds.

    ``value`` defaults to ``getattr(owner, param)``. ``integer`` asks for an
    int, ``finite`` refuses NaN and ±inf, ``unit`` is shown in brackets.
    """
    value = getattr(owner, param) if value is _UNSET else value
    kind = "an int" if integer else "a number"
    expected = kind + _bounds_text(low, high, low_open, high_open) + (f" [{unit}]" if unit else "")
    ok = is_number(value) and (isinstance(value, Integral) or not integer) and not math.isnan(value)
    if ok and finite and math.isinf(value):
        ok, expected = False, f"{expected}, finite"
    if ok:
        ok = (
            (low is None or (value > low if low_open else value >= low))
            and (high is None or (value < high if high_open else value <= high))
        )
    if not ok:
        raise invalid_param(owner, param, expected, value)


def check_choice(owner: Any, param: str, choices: Iterable, value: Any = _UNSET) -> None:
    """Raise :class:`ParamError` unless param ``param`` of ``owner`` is one of ``choices``."""
    value = getattr(owner, param) if value is _UNSET else value
    choices = list(choices)
    if not (isinstance(value, str) or value is None) or value not in choices:
        raise invalid_param(owner, param, f"one of {choices}", value)


def check_array(
    owner: Any, param: str, *, kinds: str = "iuf", allow_nan: bool = False, value: Any = _UNSET
) -> np.ndarray:
    """Raise :class:`ParamError` unless param ``param`` of ``owner`` is a number or an array_like of numbers.

    ``kinds`` are the NumPy dtype kinds accepted (``"iuf"``: int and float;
    add ``"b"`` for bool). Text, ragged nesting and ``±inf`` are refused, NaN
    unless ``allow_nan``. Returns the value as an array.

    >>> class Gain: name = "g"
    >>> check_array(Gain(), "k", value=[1, 2.5])
    array([1. , 2.5])
    >>> try:
    ...     check_array(Gain(), "k", value="2")
    ... except ParamError as error:
    ...     print(error)
    The 'k' parameter of Gain 'g' must be a number or an array_like of finite numbers. Got '2'.
    """
    value = getattr(owner, param) if value is _UNSET else value
    expected = "a number or an array_like of " + ("numbers (NaN allowed, not ±inf)" if allow_nan else "finite numbers")
    try:
        array = np.asarray(value)
    except ValueError:  # ragged nesting
        raise invalid_param(owner, param, expected, value) from None
    if array.dtype.kind not in kinds:
        raise invalid_param(owner, param, expected, value)
    array = array.astype(float)
    if np.isinf(array).any() or (not allow_nan and np.isnan(array).any()):
        raise invalid_param(owner, param, expected, value)
    return array


def check_unit(owner: Any, param: str = "unit", value: Any = _UNSET) -> None:
    """Raise :class:`ParamError` unless param ``param`` of ``owner`` is a unit string or None.

    ``""`` is dimensionless, ``None`` inferred.
    """
    value = getattr(owner, param) if value is _UNSET else value
    if not (value is None or isinstance(value, str)):
        raise invalid_param(owner, param, "a unit string such as 'm3/s' ('' for dimensionless) or None", value)
