"""Physical units: parsed and compared with pint when a graph is wired, never per tick.

A unit is written as text (``"m3/s"``, ``"m^3/s"``, ``"m**3/s"``, ``"W/K"``,
``""`` for dimensionless) and compared by what it means, not by its spelling.
Three rules on top of pint's own grammar:

- digits right after a unit name are a power: ``m3/s`` is ``m**3/s`` and
  ``m/s2`` is ``m/s**2`` (``cmH2O``, whose digits sit inside a name, is left alone);
- ``cycle`` is one *operating cycle*, a dimension of its own (C-MAPSS engines
  age in cycles), never a turn of angle and never convertible to seconds;
  ``turn`` and ``revolution`` remain angles;
- a unit text is at most ``MAX_CHARS`` characters.

pint is imported and its registry built on the first check (about a second),
and every text is parsed once (:func:`functools.cache`); the simulator's tick
never touches this module.

Examples
--------
>>> mismatch("m^3/s", "m3/s") is None
True
>>> mismatch("m", "s")
"the units differ in dimension ('m' is [length], 's' is [time])"
>>> mismatch("mm", "m")
"the units differ in scale (1 mm = 0.001 m): insert a Gain(k=0.001, unit='m') between them"
>>> product([("m/s", 1), ("s", 1)]), product([("m3/s", 2)])
('m', 'm6/s2')
"""

import functools
import math
import re

from .errors import quote

MAX_CHARS = 100  # longer unit text is refused unparsed (pint's parser recurses on long products)
_POWER_DIGITS = re.compile(r"\b([^\W\d]+)(\d+)\b")  # "m3" -> "m**3"; not "cmH2O" nor "1e3"
_DIGIT_POWERS = re.compile(r"\*\*(\d+)\b(?!\.)")  # "m**3" -> "m3" when formatting


@functools.cache
def registry():
    """The engine's one pint ``UnitRegistry``, built on first use, with ``cycle`` an operating cycle."""
    import pint

    units = pint.UnitRegistry(on_redefinition="ignore")  # "cycle" is redefined on purpose
    units.define("operating_cycle = [operating_cycle] = cycle")
    return units


@functools.cache
def parse(text: str):
    """The pint ``Unit`` that ``text`` means; ValueError, with pint's reason, when it means none."""
    if len(text) > MAX_CHARS:
        raise ValueError(f"a unit is at most {MAX_CHARS} characters")
    from pint.errors import PintError

    try:
        return registry().parse_units(_POWER_DIGITS.sub(r"\1**\2", text))
    except (PintError, ValueError) as exc:  # an unknown name; a number such as "1e3"
        raise ValueError(str(exc).rstrip(".")) from exc
    except Exception as exc:  # pint's parser lets tokenize, Assertion, ZeroDivision... errors out
        raise ValueError("pint cannot parse it") from exc


def problem(text: str | None, port: str) -> str | None:
    """The error text when ``text``, the unit of port ``port`` (``"block.port"``), is not a unit; else None.

    >>> print(problem("m/sek", "plant.y"))  # doctest: +ELLIPSIS
    The unit 'm/sek' of 'plant.y' is not a unit: 'sek' is not defined in the unit registry. Write ...
    """
    if text is None:
        return None
    try:
        parse(text)
    except ValueError as exc:
        return (
            f"The unit {quote(text)} of '{port}' is not a unit: {exc}. "
            f"Write units such as 'm3/s', 'm^3/s', 'rad/s', 'W/K' or '' (dimensionless)."
        )
    return None


def _parses(text: str) -> bool:
    try:
        parse(text)
    except ValueError:
        return False
    return True


def mismatch(src: str | None, dst: str | None) -> str | None:
    """Why a value in unit ``src`` cannot feed a port expecting ``dst``, or None when it can.

    Equal meaning connects (``N*m`` and ``J``, ``rad`` and ``""``); a different
    dimension is refused; the same dimension at another scale (``mm`` into
    ``m``) is refused with the conversion to insert. None or an unparsable text
    on either side is no mismatch here (an unparsable text is reported by
    :func:`problem`).
    """
    if src is None or dst is None or src == dst or not (_parses(src) and _parses(dst)):
        return None
    a, b = parse(src), parse(dst)
    if a.dimensionality != b.dimensionality:
        return f"the units differ in dimension ({src!r} is {_dimension(a)}, {dst!r} is {_dimension(b)})"
    quantity = registry().Quantity
    offset = quantity(0.0, a).to(b).magnitude
    scale = quantity(1.0, a).to(b).magnitude - offset
    if math.isclose(scale, 1.0, rel_tol=1e-9) and math.isclose(offset, 0.0, abs_tol=1e-12):
        return None
    if offset:
        return (
            f"the units differ in offset ({src} to {dst} is y = {scale:.12g} * u + {offset:.12g}): "
            f"convert the value before this connection"
        )
    return (
        f"the units differ in scale (1 {src or 'dimensionless'} = {scale:.12g} {dst or 'dimensionless'}): "
        f"insert a Gain(k={scale:.12g}, unit={dst!r}) between them"
    )


def distinct(texts) -> list[str]:
    """The known units among ``texts``, one spelling per meaning (the first), in order.

    >>> distinct(["m3/s", None, "m^3/s", "mm", "xyz"])
    ['m3/s', 'mm', 'xyz']
    """
    kept: list[str] = []
    for text in texts:
        if text is not None and not any(_same(text, k) for k in kept):
            kept.append(text)
    return kept


def _same(a: str, b: str) -> bool:
    return a == b or (_parses(a) and _parses(b) and mismatch(a, b) is None)


def product(factors) -> str | None:
    """The unit of ``Π u_i ** p_i`` for ``(u_i, p_i)`` pairs, as text; None if any unit is unknown.

    >>> product([("m", 1), ("s", -2)]), product([("m", 1), ("m", -1)]), product([(None, 1)])
    ('m/s2', '', None)
    """
    factors = list(factors)
    if any(unit is None or not _parses(unit) for unit, _ in factors):
        return None
    result = registry().dimensionless
    for unit, power in factors:
        result = result * parse(unit) ** power
    return format_unit(result)


def format_unit(unit) -> str:
    """Short text of a pint ``Unit`` that parses back to it: ``m3/s`` style, full names where symbols don't."""
    text = _DIGIT_POWERS.sub(r"\1", f"{unit:~C}")
    try:
        if parse(text) == unit:
            return text
    except ValueError:
        pass
    return f"{unit:C}"


def _dimension(unit) -> str:
    return "dimensionless" if unit.dimensionless else str(unit.dimensionality)
