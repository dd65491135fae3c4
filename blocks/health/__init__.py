"""Health: indicators in [0, 1] from estimated parameters."""

import numpy as np

from twingraph import Block, Context, Signal
from twingraph.errors import check_choice, check_number, invalid_param

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


def fit_line(g: np.ndarray, w: np.ndarray, tau: np.ndarray):
    """Weighted least squares ``g ≈ a + b τ`` per asset: ``a, b`` and ``var a, var b, cov(a, b)``.

    The variances allow for serially correlated residuals (a filtered health
    indicator is smooth): with ``ρ`` the lag-1 autocorrelation of the
    residuals, clipped to [0, 0.99], the white-noise variances are inflated
    by the AR(1) factor ``(1 + ρ) / (1 - ρ)`` (the sample count over the
    effective sample count).
    """
    s0, s1, s2 = w.sum(1), w @ tau, w @ tau**2
    sy, sty = (w * g).sum(1), (w * g) @ tau
    det = s0 * s2 - s1**2
    b = (s0 * sty - s1 * sy) / det
    a = (s2 * sy - s1 * sty) / det
    resid = w * (g - a[:, None] - b[:, None] * tau)
    sum_sq = (resid**2).sum(1)
    rho = np.clip((resid[:, 1:] * resid[:, :-1]).sum(1) / sum_sq, 0.0, 0.99)
    sigma2 = sum_sq / (s0 - 2) * (1 + rho) / (1 - rho)
    return a, b, sigma2 * s2 / det, sigma2 * s0 / det, -sigma2 * s1 / det


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
        self._tau = -ctx.dt * np.arange(self.window)[::-1]
        self.hi_ = np.full((ctx.batch, self.window), np.nan)  # oldest first
        self.armed_ = np.full(ctx.batch, not self.armed)  # armed assets: past their first alarm

    def _crossing(self, g, w, target, toward):
        """Time to reach ``target`` along the fitted line, and its sd; ``toward`` is the sign of approach."""
        a, b, var_a, var_b, cov_ab = fit_line(g, w, self._tau)
        tau = (target - a) / b
        sd = np.sqrt(np.maximum(var_a + tau**2 * var_b + 2 * tau * cov_ab, 0.0)) / np.abs(b)
        reached = toward * (a - target) >= 0
        approaching = toward * b > self._z * np.sqrt(var_b)  # a slope within z sd of flat is noise
        tau = np.where(reached, 0.0, np.where(approaching & np.isfinite(tau), tau, np.inf))
        sd = np.where(np.isfinite(tau) & np.isfinite(sd), sd, 0.0)
        return tau, sd, a, b

    def _first_alarm(self, inp) -> np.ndarray:
        """The assets whose first alarm is this tick."""
        return raised(inp.alarm) & ~self.armed_ if self.armed else np.zeros_like(self.armed_)

    def output(self, t, inp, out):
        recent = np.concatenate([self.hi_[:, 1:], inp.hi[:, None]], axis=1)
        first = self._first_alarm(inp)
        recent[first, :-1] = np.nan  # the window restarts at the alarm
        w = np.isfinite(recent).astype(float)
        h = np.nan_to_num(recent)
        enough = w.sum(1) >= self.min_samples
        w = w * enough[:, None] + (~enough)[:, None] * np.r_[np.zeros(self.window - 3), np.ones(3)]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            fits = {}
            if self.model in ("linear", "best"):
                tau, sd, a, b = self._crossing(h, w, self.threshold, -1.0)
                fits["linear"] = tau, sd, (w * (h - a[:, None] - b[:, None] * self._tau) ** 2).sum(1)
            if self.model in ("exponential", "best"):
                g = np.log(np.maximum(1.0 - h, 1e-12))
                tau, sd, a, b = self._crossing(g, w, np.log(1.0 - self.threshold), 1.0)
                pred = 1.0 - np.exp(np.minimum(a[:, None] + b[:, None] * self._tau, 0.0))
                fits["exponential"] = tau, sd, (w * (h - pred) ** 2).sum(1)
            if self.model == "best":
                pick = fits["exponential"][2] < fits["linear"][2]
                tau, sd = (np.where(pick, e, l) for e, l in zip(fits["exponential"][:2], fits["linear"][:2]))
            else:
                tau, sd, _ = fits[self.model]
            live = enough & (self.armed_ | first) & (tau <= self.horizon)
            tau = np.where(live, tau, np.inf)  # NaN is no prediction either
            upper = tau + self._z * sd
            out.rul[...] = tau
            out.rul_lower[...] = np.maximum(tau - self._z * sd, 0.0)
            out.rul_upper[...] = np.where(upper <= self.horizon, upper, np.inf)

    def update(self, t, inp):
        first = self._first_alarm(inp)
        self.hi_[first] = np.nan
        self.armed_ |= first
        self.hi_[:, :-1] = self.hi_[:, 1:]
        self.hi_[:, -1] = inp.hi
