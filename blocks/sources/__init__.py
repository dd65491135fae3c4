"""Sources: signals fed from outside or generated from time."""

import numpy as np
import pandas as pd

from twingraph import Block, Context, Input, Signal, SimulationError, WiringError
from twingraph.errors import check_array, check_choice, check_number, check_unit, invalid_param

EXTRAPOLATIONS = ("hold", "zero", "error")


def _value_signal(value, unit) -> Signal:
    return Signal(shape=np.shape(value), unit=unit)


class Constant(Block):
    """A constant value.

    Parameters
    ----------
    value : float or array_like
        The value for every asset, finite; its shape is the port shape.
    unit : str or None
        Unit of the value.

    Ports
    -----
    y (out) : the value.

    Examples
    --------
    >>> Constant(value=[1.0, 2.0], name="c").out.y
    <output c.y: (2,) float64>
    """

    direct_feedthrough = False

    def __init__(self, value=0.0, unit: str | None = None, *, name: str | None = None):
        super().__init__(name=name)
        self.value = value
        self.unit = unit

    def check_params(self) -> None:
        check_array(self, "value")
        check_unit(self)

    def output_signals(self, inputs):
        self.check_params()
        return {"y": _value_signal(self.value, self.unit)}

    def reset(self, ctx: Context) -> None:
        self._value = np.asarray(self.value, dtype=float)

    def output(self, t, inp, out):
        out.y[...] = self._value


class Step(Block):
    """A step from ``before`` to ``after`` at ``time``.

    Parameters
    ----------
    time : float
        Step time [s], finite; the output is ``after`` from the first tick with ``t >= time``.
    before, after : float or array_like
        Values before and after the step, finite, of one shape.
    unit : str or None
        Unit of the values.

    Ports
    -----
    y (out) : ``before`` for ``t < time``, else ``after``.
    """

    direct_feedthrough = False

    def __init__(self, time: float = 1.0, before=0.0, after=1.0, unit: str | None = None, *, name=None):
        super().__init__(name=name)
        self.time = time
        self.before = before
        self.after = after
        self.unit = unit

    def check_params(self) -> None:
        check_number(self, "time", unit="s")
        before = check_array(self, "before")
        after = check_array(self, "after")
        if after.shape != before.shape:
            raise invalid_param(self, "after", f"of the shape of before {before.shape}", self.after)
        check_unit(self)

    def output_signals(self, inputs):
        self.check_params()
        return {"y": _value_signal(self.after, self.unit)}

    def reset(self, ctx: Context) -> None:
        self._before = np.asarray(self.before, dtype=float)
        self._after = np.asarray(self.after, dtype=float)
        self._switch = self.time - 1e-9 * ctx.dt  # k * dt may land a rounding error below time

    def output(self, t, inp, out):
        out.y[...] = self._after if t >= self._switch else self._before


class Sine(Block):
    """A sine wave ``y = offset + amplitude * sin(2π frequency t + phase)``.

    Every numeric param is a finite number.

    Parameters
    ----------
    amplitude : float
        Amplitude [unit].
    frequency : float
        Frequency [Hz].
    phase : float
        Phase at t = 0 [rad].
    offset : float
        Offset [unit].
    unit : str or None
        Unit of the output.

    Ports
    -----
    y (out) : scalar wave.
    """

    direct_feedthrough = False

    def __init__(
        self,
        amplitude: float = 1.0,
        frequency: float = 1.0,
        phase: float = 0.0,
        offset: float = 0.0,
        unit: str | None = None,
        *,
        name=None,
    ):
        super().__init__(name=name)
        self.amplitude = amplitude
        self.frequency = frequency
        self.phase = phase
        self.offset = offset
        self.unit = unit

    def check_params(self) -> None:
        for param, unit in (("amplitude", ""), ("frequency", "Hz"), ("phase", "rad"), ("offset", "")):
            check_number(self, param, unit=unit)
        check_unit(self)

    def output_signals(self, inputs):
        self.check_params()
        return {"y": Signal(shape=(), unit=self.unit)}

    def output(self, t, inp, out):
        out.y[...] = self.offset + self.amplitude * np.sin(2 * np.pi * self.frequency * t + self.phase)


class DataSource(Block):
    """Replays recorded data, one row per tick.

    Parameters
    ----------
    data : array_like or DataFrame
        Rows ``(T, *shape)`` (the same for every asset) or, with ``batched=True``,
        ``(T, B, *shape)``. A DataFrame gives rows ``(T, n_columns)``. Numbers, NaN
        for a missing sample, at least one row.
    batched : bool
        Whether the second axis of ``data`` is the asset axis.
    extrapolation : {"hold", "zero", "error"}
        After the last row: hold it, output zeros, or raise.
    unit : str or None
        Unit of the data.

    Ports
    -----
    y (out) : the current row.
    """

    direct_feedthrough = False

    def __init__(self, data=(0.0,), batched: bool = False, extrapolation: str = "hold", unit=None, *, name=None):
        super().__init__(name=name)
        self.data = data
        self.batched = batched
        self.extrapolation = extrapolation
        self.unit = unit

    def _rows(self) -> np.ndarray:
        data = self.data
        if isinstance(data, pd.DataFrame):
            try:
                data = data.to_numpy(dtype=float)
            except (TypeError, ValueError):
                data = data.to_numpy()  # text or other objects: refused below
        return check_array(self, "data", allow_nan=True, value=data)

    def check_params(self) -> None:
        if not isinstance(self.batched, (bool, np.bool_)):
            raise invalid_param(self, "batched", "True or False", self.batched)
        rows = self._rows()
        if rows.ndim < 1 + self.batched or len(rows) == 0:
            axes = "(T, B, ...)" if self.batched else "(T, ...)"
            raise invalid_param(self, "data", f"at least one row, shape {axes}; its shape is {rows.shape}", self.data)
        check_choice(self, "extrapolation", EXTRAPOLATIONS)
        check_unit(self)

    def output_signals(self, inputs):
        self.check_params()
        rows = self._rows()
        return {"y": Signal(shape=rows.shape[1 + self.batched :], unit=self.unit)}

    def reset(self, ctx: Context) -> None:
        self._data = self._rows()
        if self.batched and self._data.shape[1] != ctx.batch:
            raise WiringError(
                f"DataSource '{self.name}' holds data for {self._data.shape[1]} assets; the batch is {ctx.batch}."
            )
        self.k_ = 0

    def output(self, t, inp, out):
        if self.k_ < len(self._data):
            out.y[...] = self._data[self.k_]
        elif self.extrapolation == "hold":
            out.y[...] = self._data[-1]
        elif self.extrapolation == "zero":
            out.y[...] = 0.0
        else:
            raise SimulationError(f"DataSource '{self.name}' ran out of data after {len(self._data)} rows.")

    def update(self, t, inp):
        self.k_ += 1


__all__ = ["Constant", "DataSource", "Input", "Sine", "Step"]
