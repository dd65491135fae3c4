"""Anomaly detection on streamed scores: smoothing (EMA), change detection (CUSUM), thresholds, scores of
residual vectors against a fleet (Projection, SubspaceDistance).

Every detector works elementwise on an input of any shape, batch-vectorised,
one sample per tick (river's learn-one habit): at tick ``k`` the output uses
``u_k`` (direct feedthrough) and the state then moves on.
"""

import numpy as np

from twingraph import Block, Context, Signal
from twingraph.errors import check_choice, check_number, invalid_param

from .ood import Projection, SubspaceDistance

__all__ = ["CUSUM", "EMA", "Projection", "SubspaceDistance", "Threshold"]

RESTARTS = ("alarm", "never")


class EMA(Block):
    """Exponential moving average: ``y_k = α u_k + (1 - α) y_{k-1}``, ``y_0 = u_0``.

    Parameters
    ----------
    alpha : float
        Smoothing factor α in (0, 1] [-]; 1 passes ``u`` through.
    name : str or None
        Block name.

    Ports
    -----
    u (in) : any shape; NaN counts as 0.
    y (out) : smoothed ``u``, same shape and unit.

    Examples
    --------
    >>> import twingraph as tg
    >>> g = tg.Graph("smooth", dt=1.0)
    >>> u = g.add(tg.Input("u", shape=(1,)))
    >>> ema = g.add(EMA(alpha=0.5, name="ema"))
    >>> g.connect(u.out.value, ema.inp.u)
    >>> tg.Simulator(g).run(inputs={"u": [[2.0], [4.0], [0.0], [0.0]]})["ema.y"][:, 0]
    array([2.  , 3.  , 1.5 , 0.75])
    """

    inputs = {"u": Signal()}
    outputs = {"y": Signal()}

    def __init__(self, alpha=0.1, *, name=None):
        super().__init__(name=name)
        self.alpha = alpha

    def check_params(self) -> None:
        check_number(self, "alpha", 0, 1, low_open=True)

    def reset(self, ctx: Context) -> None:
        self.y_ = np.zeros((ctx.batch, *ctx.outputs["y"].shape))
        self.started_ = False

    def output(self, t, inp, out):
        u = np.nan_to_num(inp.u)
        out.y[...] = u if not self.started_ else self.alpha * u + (1 - self.alpha) * self.y_

    def update(self, t, inp):
        u = np.nan_to_num(inp.u)
        self.y_[...] = u if not self.started_ else self.alpha * u + (1 - self.alpha) * self.y_
        self.started_ = True


class CUSUM(Block):
    """Two-sided cumulative sum change detector (Page's CUSUM), elementwise.

    Parameters
    ----------
    k : float
        Allowance (reference value) [unit of u], finite, ≥ 0: about half the shift to
        detect on a standardised score.
    h : float
        Decision threshold [unit of u], finite, > 0.
    restart : {"alarm", "never"}
        ``"alarm"``: both sums restart from 0 after an alarm; ``"never"``: they keep
        accumulating (the alarm stays on while the change persists).
    name : str or None
        Block name.

    Ports
    -----
    u (in) : score to monitor, any shape; standardise it first (e.g. an innovation
        divided by its standard deviation). NaN counts as 0.
    score (out) : ``max(g⁺, g⁻)``, same shape and unit as ``u``.
    alarm (out) : ``score > h``, bool, same shape as ``u``.

    Notes
    -----
    ::

        g⁺_k = max(0, g⁺_{k-1} + u_k - k)
        g⁻_k = max(0, g⁻_{k-1} - u_k - k)
        alarm_k = max(g⁺_k, g⁻_k) > h

    For a standard normal score, ``k = 0.5, h = 5`` gives about 930 ticks
    between false alarms per side; ``k = 1, h = 5`` about 10⁵ (Siegmund's
    approximation).

    References
    ----------
    Page, E. S. (1954). Continuous inspection schemes. *Biometrika* 41, 100–115.

    Examples
    --------
    >>> import twingraph as tg
    >>> g = tg.Graph("watch", dt=1.0)
    >>> u = g.add(tg.Input("u", shape=(1,)))
    >>> cusum = g.add(CUSUM(k=0.5, h=2.0, name="cusum"))
    >>> g.connect(u.out.value, cusum.inp.u)
    >>> hist = tg.Simulator(g).run(inputs={"u": [[0.0], [1.5], [1.5], [1.0], [0.0], [-3.0]]})
    >>> hist["cusum.score"][:, 0], hist["cusum.alarm"][:, 0]
    (array([0. , 1. , 2. , 2.5, 0. , 2.5]), array([False, False, False,  True, False,  True]))
    """

    inputs = {"u": Signal()}
    outputs = {"score": Signal(), "alarm": Signal(dtype="bool", unit="")}

    def __init__(self, k=0.5, h=5.0, restart="alarm", *, name=None):
        super().__init__(name=name)
        self.k = k
        self.h = h
        self.restart = restart

    def check_params(self) -> None:
        check_number(self, "k", low=0)
        check_number(self, "h", low=0, low_open=True)
        check_choice(self, "restart", RESTARTS)

    def output_signals(self, inputs):
        signals = super().output_signals(inputs)
        return {"score": signals["score"], "alarm": Signal(shape=signals["score"].shape, dtype="bool", unit="")}

    def reset(self, ctx: Context) -> None:
        shape = (ctx.batch, *ctx.outputs["score"].shape)
        self.high_ = np.zeros(shape)
        self.low_ = np.zeros(shape)

    def output(self, t, inp, out):
        u = np.nan_to_num(inp.u)
        self._high = np.maximum(0.0, self.high_ + u - self.k)  # the sums at tick k, kept for update()
        self._low = np.maximum(0.0, self.low_ - u - self.k)
        np.maximum(self._high, self._low, out=out.score)
        np.greater(out.score, self.h, out=out.alarm)

    def update(self, t, inp):
        self.high_[...] = self._high
        self.low_[...] = self._low
        if self.restart == "alarm":
            restart = np.maximum(self._high, self._low) > self.h  # both sums restart from 0 after an alarm
            np.copyto(self.high_, 0.0, where=restart)
            np.copyto(self.low_, 0.0, where=restart)


class Threshold(Block):
    """Alarm on a level, with hysteresis and a minimum duration, elementwise.

    Parameters
    ----------
    upper : float
        The alarm turns on when ``u > upper`` for ``min_duration`` consecutive ticks [unit of u].
    lower : float or None
        Once on, the alarm stays on while ``u > lower`` (hysteresis), ``lower <= upper``;
        ``None``: ``lower = upper``.
    min_duration : int
        Consecutive ticks above ``upper`` before the alarm turns on, ≥ 1.
    name : str or None
        Block name.

    Ports
    -----
    u (in) : any shape; NaN is never above a level.
    alarm (out) : bool, same shape as ``u``.

    Notes
    -----
    ::

        n_k = n_{k-1} + 1 if u_k > upper else 0
        on_k = u_k > lower if on_{k-1} else n_k >= min_duration

    Examples
    --------
    >>> import twingraph as tg
    >>> g = tg.Graph("level", dt=1.0)
    >>> u = g.add(tg.Input("u", shape=(1,)))
    >>> th = g.add(Threshold(upper=2.0, lower=1.0, min_duration=2, name="th"))
    >>> g.connect(u.out.value, th.inp.u)
    >>> levels = [[3.0], [1.0], [3.0], [3.0], [1.5], [0.5], [3.0]]
    >>> tg.Simulator(g).run(inputs={"u": levels})["th.alarm"][:, 0]
    array([False, False, False,  True,  True, False, False])
    """

    inputs = {"u": Signal()}
    outputs = {"alarm": Signal(dtype="bool", unit="")}

    def __init__(self, upper=1.0, lower=None, min_duration=1, *, name=None):
        super().__init__(name=name)
        self.upper = upper
        self.lower = lower
        self.min_duration = min_duration

    def check_params(self) -> None:
        check_number(self, "upper")
        if self.lower is not None:
            check_number(self, "lower")
            if not self.lower <= self.upper:
                raise invalid_param(self, "lower", f"None or <= upper ({float(self.upper)})", float(self.lower))
        check_number(self, "min_duration", low=1, integer=True, unit="ticks")

    def output_signals(self, inputs):
        shape = super().output_signals(inputs)["alarm"].shape
        return {"alarm": Signal(shape=shape, dtype="bool", unit="")}

    def reset(self, ctx: Context) -> None:
        shape = (ctx.batch, *ctx.outputs["alarm"].shape)
        self._lower = self.upper if self.lower is None else self.lower
        self.count_ = np.zeros(shape, dtype=int)
        self.on_ = np.zeros(shape, dtype=bool)

    def _step(self, u):
        count = np.where(u > self.upper, self.count_ + 1, 0)
        on = np.where(self.on_, u > self._lower, count >= self.min_duration)
        return count, on

    def output(self, t, inp, out):
        out.alarm[...] = self._step(inp.u)[1]

    def update(self, t, inp):
        self.count_[...], self.on_[...] = self._step(inp.u)
