"""Discrete-time blocks: state advanced once per tick."""

import numpy as np

from twingraph import Block, Context, Signal, units
from twingraph.errors import check_array, check_number, check_unit

from ..math import check_broadcast


class UnitDelay(Block):
    """Delay by one tick: ``y_k = u_{k-1}``, ``y_0 = initial``.

    Parameters
    ----------
    initial : float, bool or array_like
        Output at the first tick, finite, broadcast to the signal shape, or one row per
        asset ``(B, *shape)``.

    Ports
    -----
    u (in) : any shape and dtype.
    y (out) : ``u`` one tick earlier.
    """

    inputs = {"u": Signal(dtype=None)}
    outputs = {"y": Signal(dtype=None)}
    direct_feedthrough = False

    def __init__(self, initial=0.0, *, name: str | None = None):
        super().__init__(name=name)
        self.initial = initial

    def check_params(self) -> None:
        check_array(self, "initial", kinds="biuf")

    def output_signals(self, inputs):
        self.check_params()
        signals = super().output_signals(inputs)
        check_broadcast(self, "initial", signals["y"].shape, per_asset=True)
        return signals

    def reset(self, ctx: Context) -> None:
        signal = ctx.outputs["y"]
        check_broadcast(self, "initial", signal.shape, per_asset=True, batch=ctx.batch)
        self.x_ = np.empty((ctx.batch, *signal.shape), dtype=signal.dtype)
        self.x_[...] = self.initial

    def output(self, t, inp, out):
        out.y[...] = self.x_

    def update(self, t, inp):
        self.x_[...] = inp.u


class Integrator(Block):
    """Discrete integrator (forward Euler): ``y_k = x_k``, ``x_{k+1} = x_k + k dt u_k``.

    Parameters
    ----------
    k : float
        Gain applied to the input, finite.
    initial : float or array_like
        Initial state ``x_0``, finite, broadcast to the input shape, or one row per asset
        ``(B, *shape)``.
    unit : str or None
        Unit of the output; ``None`` derives it: the input's unit times seconds (``m/s`` in, ``m`` out).

    Ports
    -----
    u (in) : any shape.
    y (out) : the integral, same shape.

    Notes
    -----
    The output does not depend on the current input (no direct feedthrough), so
    an integrator closes a feedback loop.
    """

    inputs = {"u": Signal()}
    direct_feedthrough = False

    def __init__(self, k: float = 1.0, initial=0.0, unit: str | None = None, *, name: str | None = None):
        super().__init__(name=name)
        self.k = k
        self.initial = initial
        self.unit = unit

    def check_params(self) -> None:
        check_number(self, "k")
        check_array(self, "initial")
        check_unit(self)

    def output_signals(self, inputs):
        self.check_params()
        check_broadcast(self, "initial", inputs["u"].shape, per_asset=True)
        derived = units.product([(inputs["u"].unit, 1), ("s", 1)])
        return {"y": Signal(shape=inputs["u"].shape, unit=derived if self.unit is None else self.unit)}

    def reset(self, ctx: Context) -> None:
        check_broadcast(self, "initial", ctx.outputs["y"].shape, per_asset=True, batch=ctx.batch)
        self.x_ = np.empty((ctx.batch, *ctx.outputs["y"].shape))
        self.x_[...] = self.initial
        self._gain = self.k * ctx.dt

    def output(self, t, inp, out):
        out.y[...] = self.x_

    def update(self, t, inp):
        self.x_ += self._gain * inp.u


__all__ = ["Integrator", "UnitDelay"]
