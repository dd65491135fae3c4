"""Health: indicators in [0, 1] from estimated parameters."""

import numpy as np

from twingraph import Block, Context, Signal
from twingraph.errors import check_choice, check_number, invalid_param

from .degradation import ExponentialDegradation
from .fusion import FusedRUL
from .prognosis import (
    ALARM,
    MonteCarloRUL,
    Prognosis,
    predict_rul,
    predict_rul_unscented,
    raised,
    samples_from_gaussian,
    samples_from_particles,
    summarize,
)
from .residual_health import ResidualHealth

__all__ = [
    "RUL",
    "ExponentialDegradation",
    "FusedRUL",
    "MonteCarloRUL",
    "ParameterHealth",
    "Prognosis",
    "ResidualHealth",
    "predict_rul",
    "predict_rul_unscented",
    "samples_from_gaussian",
    "samples_from_particles",
    "summarize",
]


class ParameterHealth(Block):
    """Health indicator from an estimated parameter between its nominal and failure values.

    Parameters
    ----------
    param : str
        Name of the monitored parameter (e.g. ``"efficiency"``).
    nominal : float
        Its value when new [param unit], finite; health 1.
    failed : float
        Its value at failure [param unit], finite, not ``nominal``; health 0. May be above or
        below ``nominal``.
    estimated : tuple of str or None
        Names of the elements of the ``params`` port in order, as given to the
        EKF's ``estimate``; ``None``: the port holds ``param`` alone.
    name : str or None
        Block name.

    Ports
    -----
    params (in) : estimated parameters, shape ``(len(estimated),)``.
    hi (out) : health indicator, shape ``()`` [-], in [0, 1]; NaN in, NaN out.

    Notes
    -----
    ``hi = clip((θ - failed) / (nominal - failed), 0, 1)``.

    Examples
    --------
    >>> import twingraph as tg
    >>> g = tg.Graph("health", dt=1.0)
    >>> p = g.add(tg.Input("p", shape=(2,)))
    >>> hi = g.add(ParameterHealth("efficiency", 1.0, 0.6, estimated=("friction", "efficiency"), name="hi"))
    >>> g.connect(p.out.value, hi.inp.params)
    >>> tg.Simulator(g, batch=3).run(inputs={"p": [[[0.0, 1.1], [0.0, 0.8], [0.0, 0.5]]]})["hi.hi"]
    array([[1. , 0.5, 0. ]])
    """

    outputs = {"hi": Signal(shape=(), unit="")}

    def __init__(self, param="efficiency", nominal=1.0, failed=0.6, estimated=None, *, name=None):
        super().__init__(name=name)
        self.param = param
        self.nominal = nominal
        self.failed = failed
        self.estimated = estimated

    def _names(self) -> tuple[str, ...]:
        return (self.param,) if self.estimated is None else tuple(self.estimated)

    def check_params(self) -> None:
        if not isinstance(self.param, str):
            raise invalid_param(self, "param", "a parameter name (str)", self.param)
        check_number(self, "nominal")
        check_number(self, "failed")
        if not self.nominal != self.failed:
            raise invalid_param(self, "failed", f"different from nominal ({float(self.nominal)})", float(self.failed))
        names_ok = isinstance(self.estimated, (tuple, list)) and all(isinstance(n, str) for n in self.estimated)
        if self.estimated is not None and not (names_ok and self.param in self.estimated):
            raise invalid_param(self, "estimated", f"None or a tuple of names holding '{self.param}'", self.estimated)

    def input_signals(self):
        self.check_params()
        return {"params": Signal(shape=(len(self._names()),))}

    def output_signals(self, inputs):
        return dict(self.outputs)

    def reset(self, ctx: Context) -> None:
        self._index = self._names().index(self.param)

    def output(self, t, inp, out):
        theta = inp.params[:, self._index]
        out.hi[...] = np.clip((theta - self.failed) / (self.nominal - self.failed), 0.0, 1.0)


MODELS = ("linear", "exponential", "best")
LAWS = {"linear": ("linear",), "exponential": ("exponential",), "best": ("linear", "exponential")}
LOG_FLOOR = 1e-12  # 1 - hi is floored here before the exponential law's log


def transform(hi: np.ndarray, laws: tuple[str, ...]) -> np.ndarray:
    """The indicator ``(..., B)`` as each law fits it, ``hi`` or ``log(1 - hi)``: shape ``(..., len(laws), B)``."""
    g = np.empty((*hi.shape[:-1], len(laws), hi.shape[-1]))
    for i, law in enumerate(laws):
        g[..., i, :] = hi if law == "linear" else np.log(np.maximum(1.0 - hi, LOG_FLOOR))
    return g


def fit_line(sums: np.ndarray, now: int, dt: float):
    """Least squares ``g ≈ a + b τ`` from running sums: ``a, b``, ``var a, var b, cov(a, b)`` and ``Σ r²``.

    Parameters
    ----------
    sums : ndarray, shape ``(2, 3, 3, ...)``
        ``Σ x xᵀ`` over the samples present, ``x = (1, j, g)`` with ``j`` the sample's
        tick index, and ``Σ x_k x_{k-1}ᵀ`` over the pairs of consecutive samples both present.
    now : int
        The tick index at ``τ = 0``.
    dt : float
        Tick [time unit]: ``τ = dt (j - now)``.

    Returns
    -------
    a, b, var_a, var_b, cov_ab, sum_sq : ndarray, shape ``(...)``
        Intercept at ``τ = 0`` [g], slope [g / time unit], their (co)variances and
        the residuals' sum of squares [g²].

    Notes
    -----
    With ``n`` samples, means ``j̄, ḡ`` and centred sums ``S_jj, S_jg``, the
    residual of a sample is ``r = vᵀ x``::

        β = S_jg / S_jj,   v = (β j̄ - ḡ, -β, 1),   Σ r² = vᵀ (Σ x xᵀ) v
        b = β / dt,   a = ḡ - b τ̄,   τ̄ = dt (j̄ - now),   S_ττ = dt² S_jj

    The variances allow for serially correlated residuals (a filtered health
    indicator is smooth): with ``ρ = Σ r_k r_{k-1} / Σ r²`` the lag-1
    autocorrelation of the residuals (``Σ r_k r_{k-1} = vᵀ (Σ x_k x_{k-1}ᵀ) v``),
    clipped to [0, 0.99] (0 for an exact fit), the white-noise variance
    ``σ² = Σ r² / (n - 2)`` is inflated by the AR(1) factor ``(1 + ρ) / (1 - ρ)``
    (the sample count over the effective sample count)::

        var b = σ² / S_ττ,   var a = σ² (1 / n + τ̄² / S_ττ),   cov(a, b) = -σ² τ̄ / S_ττ

    Examples
    --------
    Four samples, one every 0.5 s, the last one now; their residuals alternate in sign (ρ = 0):

    >>> x = np.stack([np.ones(4), np.arange(4.0), [1.0, 0.92, 0.79, 0.71]])
    >>> sums = np.stack([x @ x.T, x[:, 1:] @ x[:, :-1].T])
    >>> print(np.round(fit_line(sums, now=3, dt=0.5), 6))
    [ 7.05e-01 -2.00e-01  1.75e-04  2.00e-04  1.50e-04  5.00e-04]
    """
    moments = sums[0]
    n = moments[0, 0]
    mean = moments[0] / n  # (1, j̄, ḡ)
    s_jj = moments[1, 1] - n * mean[1] ** 2
    beta = (moments[1, 2] - n * mean[1] * mean[2]) / s_jj
    v = np.empty_like(mean)
    v[0] = beta * mean[1] - mean[2]
    v[1] = -beta
    v[2] = 1.0
    sum_sq, lag = (v[:, None] * sums * v[None, :]).sum((1, 2))
    sum_sq = np.maximum(sum_sq, 0.0)  # rounding may take an exact fit below 0
    rho = np.fmin(np.fmax(lag / sum_sq, 0.0), 0.99)  # fmax: 0 / 0 is 0
    sigma2 = sum_sq / (n - 2) * (1 + rho) / (1 - rho)
    b = beta / dt
    tau_bar = dt * (mean[1] - now)
    s_tt = dt**2 * s_jj
    var_b = sigma2 / s_tt
    return mean[2] - b * tau_bar, b, var_b * (s_tt / n + tau_bar**2), var_b, -var_b * tau_bar, sum_sq


class RUL(Block):
    """Remaining useful life from the trend of a health indicator over a sliding window.

    Parameters
    ----------
    window : int
        Number of most recent ticks fitted, ≥ 3.
    threshold : float
        Health indicator at failure [-], finite, < 1.
    model : {"linear", "exponential", "best"}
        Degradation law fitted: ``hi = a + b τ``, ``hi = 1 - exp(a + b τ)``, or per
        asset the one with the smaller squared error in ``hi``.
    confidence : float
        Coverage of the band ``[rul_lower, rul_upper]``, in (0, 1).
    min_samples : int
        Samples needed before a first estimate (``inf`` until then), 3 ≤ min_samples ≤ window.
    horizon : float
        Longest RUL reported [unit], > 0; a crossing farther ahead is reported as ``inf``.
        The default ``inf`` sets no limit.
    unit : str
        The graph's time unit, in which the RUL is given: ``"s"`` for a graph stepped
        in seconds, ``"cycle"`` for one stepped once per operating cycle.
    armed : bool
        Wait for an ``alarm`` (a fault detector's) and fit only the samples from it on.
    name : str or None
        Block name.

    Ports
    -----
    hi (in) : health indicator, shape ``()`` [-]; NaN samples are skipped.
    alarm (in) : bool, shape ``()``; only with ``armed=True``. Before an asset's first alarm
        its outputs are ``inf``; at it, the window is emptied, so that the fit holds only
        samples from the alarm tick on (the alarm latches).
    rul (out) : remaining useful life [unit], shape ``()``. It is
        0 once the fitted indicator has reached the threshold, and ``inf`` (never a
        large finite number) when no failure is predicted: before ``min_samples``
        samples, when the fitted slope is not toward the threshold by more than
        ``z`` of its standard deviations (a flat or rising indicator, or a slope that
        is only noise), or when the crossing lies beyond ``horizon``.
    rul_lower, rul_upper (out) : the band [unit], shape ``()``; both ``inf`` when ``rul`` is,
        and ``rul_upper`` is ``inf`` when it lies beyond ``horizon``.

    Notes
    -----
    With ``τ ≤ 0`` the age of each sample (``τ = 0`` now), the transformed
    indicator ``g`` (``hi``, or ``log(1 - hi)`` for the exponential law) is fitted
    by least squares, ``g ≈ a + b τ``, with covariance ``σ² (XᵀX)⁻¹`` (σ² inflated
    for the residuals' lag-1 autocorrelation, see :func:`fit_line`). The
    threshold ``g*`` is reached at ``τ* = (g* - a) / b``; by the delta method::

        var τ* = (var a + τ*² var b + 2 τ* cov(a, b)) / b²
        band = τ* ± z σ_τ*,  z = Φ⁻¹((1 + confidence) / 2),  lower clipped at 0

    A crossing is predicted only when the slope points toward the threshold
    with the band's confidence, ``s b > z √(var b)`` (``s`` the sign of
    approach): on a flat indicator with white noise, about ``(1 - confidence) / 2``
    of the fits pass by chance, and their crossings lie far ahead, which is what
    ``horizon`` is for.

    The fit costs O(1) per tick and asset: the block keeps the sums ``Σ x xᵀ``
    over the window and ``Σ x_k x_{k-1}ᵀ`` over its consecutive pairs,
    ``x = (1, j, g)`` with ``j`` the tick index (zero for a missing sample), adds
    the new sample and drops the oldest. Against cancellation, ``j`` counts from
    a recent tick and ``g`` from the middle of its recent range; every ``window``
    ticks both are moved and the sums rebuilt from the window, so that rounding
    does not accumulate. A window whose samples are all equal (an indicator
    clipped at 0 after failure) gets exact sums, ``g`` counted from its value, so
    that its fit is exactly flat. Only ``model="best"`` also passes over the
    window each tick: the exponential law's squared error in ``hi`` is not a
    function of sums.

    After a step fault the window holds the step for a window length, and a
    line fitted across it is far too steep; arming the block with the fault
    detector's alarm restarts the window at the fault (the detection →
    prognosis hand-off), at the cost of ``min_samples`` ticks without an estimate.

    Examples
    --------
    A health indicator falling by 0.01 per second from 0.8 reaches 0 in 80 s:

    >>> import twingraph as tg
    >>> g = tg.Graph("life", dt=1.0)
    >>> h = g.add(tg.Input("h", shape=()))
    >>> rul = g.add(RUL(window=20, name="rul"))
    >>> g.connect(h.out.value, "rul.hi")
    >>> hist = tg.Simulator(g).run(inputs={"h": 1.0 - 0.01 * np.arange(21)})
    >>> round(float(hist["rul.rul"][-1]), 6)
    80.0
    """

    inputs = {"hi": Signal(shape=(), unit="")}
    outputs = {"rul": Signal(shape=(), unit="s"), "rul_lower": Signal(shape=(), unit="s"),
               "rul_upper": Signal(shape=(), unit="s")}

    def __init__(
        self,
        window=100,
        threshold=0.0,
        model="linear",
        confidence=0.95,
        min_samples=10,
        horizon=np.inf,
        unit="s",
        armed=False,
        *,
        name=None,
    ):
        super().__init__(name=name)
        self.window = window
        self.threshold = threshold
        self.model = model
        self.confidence = confidence
        self.min_samples = min_samples
        self.horizon = horizon
        self.unit = unit
        self.armed = armed

    def check_params(self) -> None:
        check_number(self, "window", low=3, integer=True, unit="ticks")
        check_number(self, "threshold", high=1, high_open=True)
        check_choice(self, "model", MODELS)
        check_number(self, "confidence", 0, 1, low_open=True, high_open=True)
        check_number(self, "min_samples", 3, self.window, integer=True, unit="ticks")
        check_number(self, "horizon", low=0, low_open=True, finite=False)
        if not (isinstance(self.unit, str) and self.unit):
            raise invalid_param(self, "unit", "a time unit such as 's' or 'cycle'", self.unit)
        if not isinstance(self.armed, bool):
            raise invalid_param(self, "armed", "True or False", self.armed)

    def input_signals(self):
        return {**self.inputs, "alarm": ALARM} if self.armed else dict(self.inputs)

    def output_signals(self, inputs):
        return {port: Signal(shape=(), unit=self.unit) for port in self.outputs}

    def reset(self, ctx: Context) -> None:
        from scipy.stats import norm

        self._z = float(norm.ppf((1 + self.confidence) / 2))
        self._dt = ctx.dt
        self._laws = LAWS[self.model]
        laws = len(self._laws)
        lines = np.array([[0, 1, 2 + i] for i in range(laws)]).T  # where (1, j, g) of each law sit in x
        # sums[self._lines]: (2, 3, 3, laws, B), a view for a single law
        self._lines = (..., None, slice(None)) if laws == 1 else (slice(None), lines[:, None], lines[None, :])
        self._targets = transform(np.array([float(self.threshold)]), self._laws)
        self._toward = np.array([[-1.0 if law == "linear" else 1.0] for law in self._laws])  # sign of approach
        ages = np.array([0, self.window, self.window - 1, 1])  # this tick, the oldest, the next, the last
        ticks = np.arange(self.window)[:, None]
        self._rows = (ticks - ages[1:]) % self.window  # by tick % window: the rows of hi_ read each tick
        self._j = ticks - ages  # by tick - origin_: j of the samples read
        self.hi_ = np.full((self.window, ctx.batch), np.nan)  # the sample of tick k in row k % window
        self.sums_ = np.zeros((2, 2 + laws, 2 + laws, ctx.batch))  # Σ x xᵀ and Σ x_k x_{k-1}ᵀ
        self.offset_ = np.zeros((laws, ctx.batch))  # subtracted from g in x
        self.tick_ = 0
        self.origin_ = 0  # the tick of j = 0
        self.armed_ = np.full(ctx.batch, not self.armed)  # armed assets: past their first alarm
        self._never = np.zeros(ctx.batch, bool)
        self.last_ = np.full(ctx.batch, np.nan)  # the last sample present
        self.run_ = np.zeros(ctx.batch)  # how many samples present in a row have been equal to it
        self._of_g = np.arange(2 + laws) >= 2
        self._of_g = (self._of_g[:, None] | self._of_g[None, :])[..., None]  # the entries of the sums holding g

    def _features(self, g: np.ndarray, j: np.ndarray, offset: np.ndarray) -> np.ndarray:
        """``x = (1, j, g - offset)`` ``(k, 2 + laws, B)`` of samples ``g`` ``(k, laws, B)`` at ticks ``j`` ``(k,)``.

        A missing sample has ``x = 0``.
        """
        x = np.empty((len(g), 2 + g.shape[1], g.shape[2]))
        x[:, 0] = 1.0
        x[:, 1] = j[:, None]
        x[:, 2:] = g - offset
        return np.where(np.isfinite(x[:, 2:3]), x, 0.0)

    def _crossing(self, a, b, var_a, var_b, cov_ab, target):
        """Time to reach ``target`` along the fitted lines, and its sd."""
        tau = (target - a) / b
        sd = np.sqrt(np.maximum(var_a + tau**2 * var_b + 2 * tau * cov_ab, 0.0)) / np.abs(b)
        reached = self._toward * (a - target) >= 0
        approaching = self._toward * b > self._z * np.sqrt(var_b)  # a slope within z sd of flat is noise
        tau = np.where(reached, 0.0, np.where(approaching & np.isfinite(tau), tau, np.inf))
        sd = np.where(np.isfinite(tau) & np.isfinite(sd), sd, 0.0)
        return tau, sd

    def _first_alarm(self, inp) -> np.ndarray:
        """The assets whose first alarm is this tick."""
        return raised(inp.alarm) & ~self.armed_ if self.armed else self._never

    def _exponential_error(self, hi, first, a, b) -> np.ndarray:
        """``Σ (hi - 1 + exp(min(a + b τ, 0)))²`` over the window: the exponential law's squared error in ``hi``."""
        newest = self.tick_ % self.window
        tau = -self._dt * ((newest - np.arange(self.window)) % self.window)[:, None]
        error = np.exp(np.minimum(a + b * tau, 0.0)) - 1.0
        error_now = error[newest] + hi
        error += self.hi_
        error[:, first] = np.nan  # the window restarts at the alarm: only this tick's sample
        error[newest] = error_now
        return np.fmax(error**2, 0.0).sum(axis=0)  # fmax: a missing sample adds 0

    def output(self, t, inp, out):
        now = self.tick_ - self.origin_
        first = self._first_alarm(inp)
        hi = np.empty((4, len(first)))
        hi[0] = inp.hi
        hi[1:] = self.hi_[self._rows[self.tick_ % self.window]]
        g = transform(hi, self._laws)
        sums, offset = self.sums_, self.offset_
        if first.any():  # the window restarts at the alarm
            g[1:, :, first] = np.nan
            sums = np.where(first, 0.0, sums)
        x = self._features(g, self._j[now], offset)
        step = x[[0, 0, 1, 2], :, None] * x[[0, 3, 1, 1], None, :]  # x xᵀ and x_k x_{k-1}ᵀ added, then dropped
        sums = sums + step[:2] - step[2:]
        present = np.isfinite(inp.hi)
        run = np.where(present, self.run_ * (inp.hi == self.last_) + 1, self.run_)
        last = np.where(present, inp.hi, self.last_)
        constant = (run >= sums[0, 0, 0]) & (sums[0, 0, 0] > 0)  # all samples in the window are equal
        if constant.any():  # exact sums, free of the rounding left by the samples dropped
            offset = np.where(constant, transform(last, self._laws), offset)
            sums = np.where(constant & self._of_g, 0.0, sums)
        self._next = sums, offset, run, last  # the state at this tick, kept for update()
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            a, b, var_a, var_b, cov_ab, sum_sq = fit_line(sums[self._lines], now, self._dt)
            tau, sd = self._crossing(a, b, var_a, var_b, cov_ab, self._targets - offset)
            if self.model == "best":
                pick = self._exponential_error(inp.hi, first, a[1] + offset[1], b[1]) < sum_sq[0]
                tau, sd = np.where(pick, tau[1], tau[0]), np.where(pick, sd[1], sd[0])
            else:
                tau, sd = tau[0], sd[0]
            live = (sums[0, 0, 0] >= self.min_samples) & (self.armed_ | first) & (tau <= self.horizon)
            tau = np.where(live, tau, np.inf)  # NaN is no prediction either
            upper = tau + self._z * sd
            out.rul[...] = tau
            out.rul_lower[...] = np.maximum(tau - self._z * sd, 0.0)
            out.rul_upper[...] = np.where(upper <= self.horizon, upper, np.inf)

    def update(self, t, inp):
        self.sums_, self.offset_, self.run_, self.last_ = self._next
        first = self._first_alarm(inp)
        self.armed_ |= first
        self.hi_[:, first] = np.nan
        self.hi_[self.tick_ % self.window] = inp.hi
        self.tick_ += 1
        if self.tick_ - self.origin_ == self.window:
            self._rebuild()

    def _rebuild(self) -> None:
        """Sums recomputed from the window, with ``j`` counted from the next tick and ``g`` from its range's middle."""
        self.origin_ = self.tick_
        g = transform(self.hi_[(self.tick_ + np.arange(self.window)) % self.window], self._laws)  # oldest first
        self.offset_ = np.nan_to_num((np.fmax.reduce(g) + np.fmin.reduce(g)) / 2)
        x = self._features(g, np.arange(self.window) - self.window, self.offset_)
        self.sums_ = np.stack([np.einsum("kpb,kqb->pqb", x, x), np.einsum("kpb,kqb->pqb", x[1:], x[:-1])])
