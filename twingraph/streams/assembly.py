"""Tick assembly: asynchronous values in, one complete input array per port and tick out.

The :class:`TickAssembler` is the one place where raw values are decoded and
checked, so every source counts bad data the same way. The rules:

- **Payloads** (bytes or str) are JSON: a number ``3.2``, an array
  ``[1.0, 2.0]`` for a vector port, ``null`` for a missing value (NaN), or an
  object ``{"time": 12.5, "value": 3.2}`` whose time [s] overrides the
  record's. Bool ports take ``true``/``false``, int ports integers. Python
  values (a float, a list, an array) are checked the same way. NaN marks a
  missing value; ±inf, a wrong type or shape, non-UTF-8 bytes, bad JSON and
  payloads over ``max_bytes`` are *malformed*.
- **Clock**: tick ``k`` covers ``[k·dt, (k+1)·dt)``; a value at time ``t``
  belongs to tick ``floor(t/dt + 1e-9)``. A value without a time is stamped by
  the caller (its arrival, for a wall clock) or, failing that, with the
  newest time seen (the *watermark*). Tick ``k`` can be closed once the clock
  reaches ``(k+1)·dt + lateness`` (:meth:`TickAssembler.ready`); with
  ``early=True`` also as soon as every asset has a value of every Input for
  it (and for every tick before it), so a result need not wait for the next
  tick's first value.
- **Late**: a value for a tick already closed is dropped and counted ``late``.
  A value more than ``horizon`` [s] ahead of the next tick is malformed
  (``"too far ahead"``), so a hostile timestamp cannot make the twin step
  millions of empty ticks.
- **Duplicates**: a second value for the same tick, asset and port replaces
  the first when its time is newer or equal (equal times: the later arrival
  wins); the value that loses counts ``duplicate``.
- **Missing**: per port, ``"nan"`` (float ports only) or ``"hold"`` (the last
  non-missing value; NaN before any, ``0``/``False`` for int and bool ports,
  whose default is ``"hold"``).

Every value (one port of one record) ends in exactly one of the counts
``used``, ``late``, ``unknown``, ``malformed``, ``duplicate``; each reject is
logged on the ``"twingraph.streams"`` logger in one line naming asset, port
and reason, the first :data:`LOG_FIRST` per reason, then as a periodic summary.
"""

import json
import logging
import math
import re
import time as _time
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np

from ..errors import TwinGraphError, quote
from ..signals import Signal
from .records import Counters, Record

logger = logging.getLogger("twingraph.streams")

MAX_BYTES = 65536  # default largest payload [bytes]
HORIZON = 3600.0  # default: how far ahead of the next tick a value may be [s]
LOG_FIRST = 10  # rejects logged one by one per reason, then summarised
LOG_SUMMARY_EVERY = 60.0  # at most one summary of the rejects not logged per this many seconds [s]
EPS = 1e-9  # in ticks: a time a rounding error below a tick boundary belongs to the later tick
FILLS = ("hold", "nan")
UNKNOWN_REASONS = frozenset(["unknown asset", "unknown port"])
_NUM = rb"-?(?:0|[1-9][0-9]{0,30})(?:\.[0-9]{1,40})?(?:[eE][+-]?[0-9]{1,4})?"  # a short JSON number
_NUMBER = re.compile(_NUM)
_STAMPED = re.compile(  # json.dumps of the object form with a number or a one-number list
    rb'\{"time": ?(' + _NUM + rb'), ?"value": ?(\[)?(' + _NUM + rb")(?(2)\])\}"
)


class Reject(Exception):
    """A value that cannot be used: ``reason`` (a :attr:`Counters.reasons` key) and a short ``detail``."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail


def category(reason: str) -> str:
    """The :class:`Counters` field a reject reason counts in: late, duplicate, unknown or malformed.

    >>> category("bad JSON"), category("unknown port"), category("late")
    ('malformed', 'unknown', 'late')
    """
    if reason in ("late", "duplicate"):
        return reason
    return "unknown" if reason in UNKNOWN_REASONS else "malformed"


def decode(raw: Any, max_bytes: int = MAX_BYTES) -> tuple[Any, float | None]:
    """A raw value as ``(value, time or None)``: payload bytes or text parsed as JSON, objects unwrapped.

    Examples
    --------
    >>> decode(b'{"time": 1.5, "value": [1, 2]}')
    ([1, 2], 1.5)
    >>> decode(b"\\xff")
    Traceback (most recent call last):
    ...
    twingraph.streams.assembly.Reject: ('not UTF-8', "b'\\\\xff'")
    """
    if type(raw) is bytes:  # the common cases, a number with or without its time, need no JSON parser
        if _NUMBER.fullmatch(raw):
            return _number(raw), None
        stamped = _STAMPED.fullmatch(raw)
        if stamped:
            value = _number(stamped[3])
            return ([value] if stamped[2] else value), checked_time(float(stamped[1]))
    if isinstance(raw, (bytes, bytearray, memoryview)):
        raw = bytes(raw)
        if len(raw) > max_bytes:
            raise Reject("oversized", f"{len(raw)} bytes, more than {max_bytes}")
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise Reject("not UTF-8", quote(raw, 60)) from None
    elif isinstance(raw, str) and len(raw) > max_bytes // 4 and len(raw.encode("utf-8")) > max_bytes:
        raise Reject("oversized", f"{len(raw.encode('utf-8'))} bytes, more than {max_bytes}")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except (ValueError, RecursionError):  # not JSON, an int too long, nesting too deep
            raise Reject("bad JSON", quote(raw, 60)) from None
    if not isinstance(raw, dict):
        return raw, None
    if "value" not in raw or not raw.keys() <= {"time", "value"}:
        raise Reject("bad object", f"an object needs 'value' and may have 'time'; got keys {quote(list(raw), 60)}")
    stamp = raw.get("time")
    return raw["value"], None if stamp is None else checked_time(stamp)


def _number(text: bytes) -> float | int:
    """A JSON number's value, as ``json.loads`` gives it (an int without fraction or exponent)."""
    return float(text) if b"." in text or b"e" in text or b"E" in text else int(text)


def checked_time(stamp: Any) -> float:
    """``stamp`` as a finite float [s], else :class:`Reject` ``"bad time"``."""
    if type(stamp) is float and math.isfinite(stamp):
        return stamp
    if isinstance(stamp, (bool, np.bool_)) or not isinstance(stamp, Real) or not math.isfinite(stamp):
        raise Reject("bad time", f"time {quote(stamp, 40)} is not a finite number")
    return float(stamp)


def _leaves(value: Any, depth: int = 0) -> tuple[list, tuple[int, ...]]:
    """The leaves of nested lists and their shape; :class:`Reject` ``"wrong shape"`` when ragged."""
    if not isinstance(value, (list, tuple)):
        return [value], ()
    if depth > 8:
        raise Reject("wrong shape", "lists nested too deep")
    parts = [_leaves(v, depth + 1) for v in value]
    shapes = {shape for _, shape in parts}
    if len(shapes) > 1:
        raise Reject("wrong shape", "ragged nested lists")
    inner = shapes.pop() if shapes else ()
    return [leaf for leaves, _ in parts for leaf in leaves], (len(value), *inner)


def _is_bool(x: Any) -> bool:
    return isinstance(x, (bool, np.bool_))


def _is_int(x: Any) -> bool:
    return isinstance(x, (Integral, np.integer)) and not _is_bool(x)


def _is_float(x: Any) -> bool:
    return isinstance(x, (Real, np.floating, np.integer)) and not _is_bool(x)


def convert(value: Any, signal: Signal, port: str) -> Any:
    """A decoded value checked against the port's signal: a float for scalar float ports, else an array.

    Examples
    --------
    >>> convert(2, Signal(shape=(1,)), "u")
    2.0
    >>> convert([1.0, float("inf")], Signal(shape=(2,)), "u")
    Traceback (most recent call last):
    ...
    twingraph.streams.assembly.Reject: ('inf', "Input 'u' got inf; NaN marks a missing value")
    """
    if type(value) is list and len(value) == 1 and signal.shape == (1,):  # the common case: one number in a list
        value = value[0] if type(value[0]) in (float, int) else value
    if type(value) in (float, int) and signal.dtype == "float64" and signal.shape in ((), (1,)):  # the common case
        value = float(value)
        if math.isinf(value):
            raise Reject("inf", f"Input {quote(port)} got inf; NaN marks a missing value")
        return value
    kind = np.dtype(signal.dtype).kind
    if value is None:
        if kind != "f":
            raise Reject("wrong type", f"null (missing) for {signal.dtype} Input {quote(port)}: use a float port")
        return math.nan if signal.size <= 1 else np.full(signal.shape, np.nan)
    if isinstance(value, np.ndarray):
        leaves, shape = value.ravel().tolist(), value.shape
    else:
        leaves, shape = _leaves(value)
    if shape != signal.shape and not (shape == () and signal.shape == (1,)):
        raise Reject("wrong shape", f"Input {quote(port)} expects shape {signal.shape}, got {shape}")
    check = _is_float if kind == "f" else (_is_bool if kind == "b" else _is_int)
    if not all(check(x) for x in leaves):
        bad = next(x for x in leaves if not check(x))
        raise Reject("wrong type", f"Input {quote(port)} expects {signal.dtype} values, got {quote(bad, 40)}")
    if kind == "f":
        if any(math.isinf(x) for x in leaves):
            raise Reject("inf", f"Input {quote(port)} got inf; NaN marks a missing value")
        if signal.size == 1:
            return float(leaves[0])
    try:
        return np.array(leaves, dtype=signal.dtype).reshape(signal.shape)
    except OverflowError:
        raise Reject("wrong type", f"Input {quote(port)}: a value is out of the range of {signal.dtype}") from None


class RejectLog:
    """One log line per reject, the first ``first`` of each reason; then a summary at most every ``every`` [s]."""

    def __init__(self, first: int = LOG_FIRST, every: float = LOG_SUMMARY_EVERY) -> None:
        self.first = first
        self.every = every
        self.seen: dict[str, int] = {}
        self.quiet: dict[str, int] = {}
        self._last = _time.monotonic()

    def __call__(self, reason: str, asset: Any, port: Any, detail: str) -> None:
        n = self.seen[reason] = self.seen.get(reason, 0) + 1
        if n <= self.first:
            level = logging.INFO if reason in ("late", "duplicate") else logging.WARNING
            more = " (further ones summarised)" if n == self.first else ""
            logger.log(
                level,
                "%s value of asset %s, port %s dropped: %s%s",
                reason,
                quote(asset, 60),
                quote(port, 60),
                detail or reason,
                more,
            )
        else:
            self.quiet[reason] = self.quiet.get(reason, 0) + 1
            self.summarize()

    def summarize(self, force: bool = False) -> None:
        """Log the rejects not logged one by one, if any and if ``every`` [s] passed (or ``force``)."""
        now = _time.monotonic()
        if self.quiet and (force or now - self._last >= self.every):
            logger.warning(
                "%d more values dropped in the last %.0f s: %s", sum(self.quiet.values()), now - self._last, self.quiet
            )
            self.quiet = {}
        if force or now - self._last >= self.every:
            self._last = now


class TickAssembler:
    """Values of a fleet's assets, sorted into ticks of ``dt`` and closed into input arrays.

    Parameters
    ----------
    inputs : dict of str to Signal
        The graph's ``Input`` ports (``Simulator.inputs``).
    assets : sequence of str
        Asset names in batch order.
    dt : float
        Tick length [s].
    fill : dict of str to str, optional
        Per port, ``"hold"`` or ``"nan"`` for a tick without a value (default
        ``"nan"`` for float ports, ``"hold"`` for bool and int ports).
    lateness : float
        How long [s] after its end a tick waits for values.
    max_bytes : int
        Largest payload [bytes]; larger ones are malformed.
    horizon : float
        How far [s] ahead of the next tick a value may be.
    early : bool
        Close a tick as soon as it holds a value of every Input of every
        asset; values for it arriving later are ``late``.
    counters : Counters, optional
        Where to count (default: new ones).

    Examples
    --------
    >>> from twingraph import Signal
    >>> a = TickAssembler({"u": Signal(shape=(1,))}, ["p1", "p2"], dt=1.0, fill={"u": "hold"})
    >>> a.add(Record(0.2, "p1", {"u": b"3.5"}))
    >>> a.add(Record(0.5, "p2", {"u": b"1e999", "v": 1.0}))
    >>> a.add(Record(1.0, "p2", {"u": b'{"time": 1.2, "value": [2.0]}'}))
    >>> a.ready(a.watermark), a.pop()
    (1, (0, {'u': array([[3.5],
           [nan]])}))
    >>> a.counters.used, a.counters.malformed, a.counters.unknown, a.counters.reasons
    (2, 1, 1, {'inf': 1, 'unknown port': 1})
    """

    def __init__(
        self,
        inputs: Mapping[str, Signal],
        assets: Sequence[str],
        dt: float,
        fill: Mapping[str, str] | None = None,
        lateness: float = 0.0,
        max_bytes: int = MAX_BYTES,
        horizon: float = HORIZON,
        early: bool = False,
        counters: Counters | None = None,
    ) -> None:
        self.inputs = dict(inputs)
        self.assets = list(assets)
        self.dt = float(dt)
        self.lateness = float(lateness)
        self.max_bytes = int(max_bytes)
        self.horizon = float(horizon)
        self.early = bool(early)
        self.counters = Counters() if counters is None else counters
        self.log = RejectLog()
        self.fill = self._fills(fill or {})
        self._index = {name: i for i, name in enumerate(self.assets)}
        if len(self._index) != len(self.assets):
            raise TwinGraphError(f"Asset names must be unique. Got {quote(self.assets)}.")
        self.next_tick = 0
        self.watermark: float | None = None
        self._seq = 0
        self._pending: dict[int, dict[tuple[int, str], tuple[float, int, Any]]] = {}
        self.held = {port: self._initial(port) for port in self.inputs}

    def _fills(self, fill: Mapping[str, str]) -> dict[str, str]:
        unknown = sorted(set(fill) - set(self.inputs))
        if unknown:
            raise TwinGraphError(f"'fill' names {unknown}, which are not Inputs; the Inputs are {sorted(self.inputs)}.")
        fills = {}
        for port, signal in self.inputs.items():
            is_float = np.dtype(signal.dtype).kind == "f"
            choice = fill.get(port, "nan" if is_float else "hold")
            if choice not in FILLS:
                raise TwinGraphError(
                    f"The fill of Input {quote(port)} must be one of {list(FILLS)}. Got {quote(choice)}."
                )
            if choice == "nan" and not is_float:
                raise TwinGraphError(
                    f"The fill of Input {quote(port)} cannot be 'nan': the port is {signal.dtype}. Use 'hold' "
                    f"(0 or False before the first value)."
                )
            fills[port] = choice
        return fills

    def _initial(self, port: str) -> np.ndarray:
        signal = self.inputs[port]
        fill = np.nan if np.dtype(signal.dtype).kind == "f" else 0
        return np.full((len(self.assets), *signal.shape), fill, dtype=signal.dtype)

    def tick_of(self, t: float) -> int:
        """The tick a time [s] belongs to: ``floor(t/dt + 1e-9)``."""
        return math.floor(t / self.dt + EPS)

    def _reject(self, reason: str, asset: Any, port: Any, detail: str) -> None:
        field = category(reason)
        setattr(self.counters, field, getattr(self.counters, field) + 1)
        self.counters.reasons[reason] = self.counters.reasons.get(reason, 0) + 1
        self.log(reason, asset, port, detail)

    def add(self, record: Record) -> None:
        """Decode, check and file every value of ``record``, counting each one."""
        values = record.values
        if not (type(values) is dict or isinstance(values, Mapping)) or not values:
            self._reject("bad record", getattr(record, "asset", None), None, "a record without values")
            return
        i = self._index.get(record.asset) if type(record.asset) is str or isinstance(record.asset, str) else None
        if i is None:
            for port in values:
                self._reject("unknown asset", record.asset, port, f"the assets are {quote(self.assets, 120)}")
            return
        stamp = record.time
        if stamp is not None:
            try:
                stamp = checked_time(stamp)
            except Reject as exc:
                for port in values:
                    self._reject(exc.reason, record.asset, port, exc.detail)
                return
        for port, raw in values.items():
            signal = self.inputs.get(port) if type(port) is str or isinstance(port, str) else None
            if signal is None:
                self._reject("unknown port", record.asset, port, f"the Inputs are {sorted(self.inputs)}")
                continue
            try:
                value, own = decode(raw, self.max_bytes)
                value = convert(value, signal, port)
                self._file(i, port, value, stamp if own is None else own)
            except Reject as exc:
                self._reject(exc.reason, record.asset, port, exc.detail)

    def _file(self, i: int, port: str, value: Any, stamp: float | None) -> None:
        if stamp is None:
            stamp = self.next_tick * self.dt if self.watermark is None else self.watermark
        tick = self.tick_of(stamp)
        if tick < self.next_tick:
            raise Reject("late", f"time {stamp:.6g} s is in tick {tick}, already stepped (next: {self.next_tick})")
        if stamp > (self.next_tick * self.dt) + self.horizon:
            raise Reject(
                "too far ahead",
                f"time {stamp:.6g} s is more than {self.horizon:g} s after the next tick "
                f"({self.next_tick * self.dt:.6g} s)",
            )
        self._seq += 1
        slot = self._pending.setdefault(tick, {})
        key = (i, port)
        old = slot.get(key)
        if old is None:
            self.counters.used += 1
        else:
            self._reject("duplicate", self.assets[i], port, f"a second value for tick {tick}")
            if (stamp, self._seq) < old[:2]:
                return
        slot[key] = (stamp, self._seq, value)
        if self.watermark is None or stamp > self.watermark:
            self.watermark = stamp
            self.counters.lag = stamp - (self.next_tick - 1) * self.dt

    def ready(self, clock: float | None) -> int:
        """How many ticks, from :attr:`next_tick`, the clock time ``clock`` [s] closes (``None``: none).

        With :attr:`early`, the complete ticks that follow those count too.
        """
        n = 0 if clock is None else max(0, self.tick_of(clock - self.lateness) - self.next_tick)
        if self.early:
            full = len(self.assets) * len(self.inputs)
            while len(self._pending.get(self.next_tick + n, ())) == full:
                n += 1
        return n

    def pending(self) -> int:
        """How many ticks, from :attr:`next_tick`, it takes to use every value held (for the end of a source)."""
        return max(self._pending, default=self.next_tick - 1) + 1 - self.next_tick

    def pop(self) -> tuple[int, dict[str, np.ndarray]]:
        """Close the next tick: its number and, per Input port, the values ``(B, *shape)``."""
        tick = self.next_tick
        entries = self._pending.pop(tick, {})
        inputs = {}
        for port, held in self.held.items():
            inputs[port] = held.copy() if self.fill[port] == "hold" else np.full_like(held, np.nan)
        for (i, port), (_, _, value) in entries.items():
            inputs[port][i] = value
        for port, values in inputs.items():
            if self.fill[port] == "hold":
                held = self.held[port]
                self.held[port] = np.where(np.isnan(values), held, values) if values.dtype.kind == "f" else values
        self.next_tick = tick + 1
        self.counters.lag = 0.0 if self.watermark is None else self.watermark - tick * self.dt
        return tick, inputs

    def state_dict(self) -> dict[str, Any]:
        """The assembler's state (values waiting, values held, next tick, counters) as plain data."""
        pending = [
            [tick, self.assets[i], port, stamp, seq, value]
            for tick, slot in sorted(self._pending.items())
            for (i, port), (stamp, seq, value) in slot.items()
        ]
        counters = self.counters.as_dict()
        counters.pop("messages")
        return {
            "assets": list(self.assets),
            "next_tick": self.next_tick,
            "watermark": self.watermark,
            "seq": self._seq,
            "pending": pending,
            "held": dict(self.held),
            "counters": counters,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state_dict`; assets are matched by name, new ones start empty."""
        self.next_tick = int(state["next_tick"])
        self.watermark = state["watermark"]
        self._seq = int(state["seq"])
        self._pending = {}
        for tick, asset, port, stamp, seq, value in state["pending"]:
            if asset in self._index and port in self.inputs:
                self._pending.setdefault(int(tick), {})[(self._index[asset], port)] = (stamp, seq, value)
        rows = [(i, state["assets"].index(a)) for i, a in enumerate(self.assets) if a in state["assets"]]
        for port in self.inputs:
            held = self._initial(port)
            saved = np.asarray(state["held"].get(port, held))
            for new, old in rows:
                held[new] = saved[old]
            self.held[port] = held
        counters = dict(state["counters"])
        for name, value in counters.items():
            setattr(self.counters, name, dict(value) if name == "reasons" else value)
