"""A degradation state growing exponentially, observed linearly in a vector of residuals."""

import numpy as np

from twingraph.errors import check_array, check_number, invalid_param

from ..physics.ode import ODEModel


class ExponentialDegradation(ODEModel):
    """Damage ``d`` growing at a rate proportional to ``d + offset``, seen through residuals ``y = b + C d``.

    Parameters
    ----------
    loading : sequence of float
        ``C``, the change of each residual per unit of damage ``(n_y,)`` [residual unit].
    intercept : sequence of float
        ``b``, the residuals of an undamaged asset ``(n_y,)`` [residual unit].
    log_rate : float or sequence of float
        ``θ = ln r``, the log of the growth rate ``r`` [1/tick], one value or one per asset;
        a filter estimates it per asset.
    offset : float
        ``e`` > 0 [damage]: the growth rate of an undamaged asset is ``r e`` (``e → 0``: pure
        exponential growth; large ``e``: nearly linear).
    x0 : float
        Initial damage [damage].
    integrator, substeps, method, rtol, atol, name
        As for :class:`~blocks.physics.ode.ODEModel`.

    Ports
    -----
    u (in) : the residual vector ``(n_y,)`` of the tick; only whether it is finite matters: an asset
        without a cycle at this tick (NaN residuals) accrues no damage.
    y (out) : expected residuals ``(n_y,)``.
    x (out) : the damage ``(1,)``.

    Notes
    -----
    ::

        ḋ = r (max(d, 0) + e) · 1[u finite],   r = exp(θ)     so from d_0 ≥ 0:  d(t) = (d_0 + e) exp(r t) - e
        y = b + C d

    A negative damage (an estimate below the healthy level) grows linearly at ``r e`` back to 0. The
    time from ``d`` to ``d_fail`` is ``max(-d, 0) / (r e) + ln((d_fail + e) / (max(d, 0) + e)) / r``
    (:meth:`time_to`); :meth:`event_time` gives it to :class:`~blocks.health.MonteCarloRUL`, which
    then needs no integration.

    Examples
    --------
    >>> model = ExponentialDegradation(loading=(1.0, -2.0), intercept=(0.0, 0.0), log_rate=np.log(0.01),
    ...                                offset=1.0, substeps=4)
    >>> x = model.rollout(np.zeros((1, 1)), np.zeros((100, 1, 2)), dt=1.0)[-1]
    >>> round(float(x[0, 0]), 4), round(float(np.e - 1), 4)
    (1.7183, 1.7183)
    >>> model.observe(x, np.zeros((1, 2)), model.batch_params(1)).round(3)
    array([[ 1.718, -3.437]])
    """

    states = ("d",)
    state_units = ("",)
    parameters = ("log_rate",)

    def __init__(self, loading=(1.0,), intercept=(0.0,), log_rate=-4.0, offset=0.1, x0=0.0, **kwargs) -> None:
        super().__init__(x0, **kwargs)
        self.loading = loading
        self.intercept = intercept
        self.log_rate = log_rate
        self.offset = offset

    @property
    def n_inputs(self) -> int:
        return len(self.loading)

    @property
    def n_outputs(self) -> int:
        return len(self.loading)

    def check_params(self) -> None:
        loading = check_array(self, "loading")
        if loading.ndim != 1 or not loading.size or not np.any(loading != 0):
            raise invalid_param(self, "loading", "a non-empty sequence of numbers, not all 0", self.loading)
        intercept = check_array(self, "intercept")
        if intercept.shape != loading.shape:
            raise invalid_param(self, "intercept", f"{loading.size} numbers (one per element of 'loading')",
                                self.intercept)
        check_number(self, "offset", 0, low_open=True)
        super().check_params()

    def derivative(self, x, u, t, p):
        running = np.isfinite(u).all(axis=1)[:, None]
        return np.where(running, np.exp(p["log_rate"])[:, None] * (np.maximum(x, 0.0) + self.offset), 0.0)

    def observe(self, x, u, p):
        return np.asarray(self.intercept, dtype=float) + x * np.asarray(self.loading, dtype=float)

    def time_to(self, d_fail, d, log_rate) -> np.ndarray:
        """Ticks for damage ``d`` to reach ``d_fail`` at ``log_rate`` (0 once reached): the closed form.

        Linear at ``r e`` below 0, exponential above::

            T = max(min(d_fail, 0) - d, 0) / (r e) + max(ln((max(d_fail, 0) + e) / (max(d, 0) + e)), 0) / r
        """
        d, d_fail, rate = (np.asarray(a, dtype=float) for a in (d, d_fail, np.exp(log_rate)))
        linear = np.maximum(np.minimum(d_fail, 0.0) - d, 0.0) / self.offset
        growth = np.maximum(np.log((np.maximum(d_fail, 0.0) + self.offset) / (np.maximum(d, 0.0) + self.offset)), 0.0)
        return (linear + growth) / rate

    def event_time(self, x, u, p, variable, threshold, direction):
        """Closed-form time [1 / r, ticks] until ``d`` (or an output ``y[i]``, linear in it) crosses ``threshold``.

        The damage never decreases: it reaches a level above it in :meth:`time_to` while the input
        is finite, never when it is not (no cycles), and never falls. A parameter is constant:
        ``inf`` unless already past (see :meth:`~blocks.physics.ode.ODEModel.event_time`).
        """
        d = x[:, 0]
        if variable in self.parameters:
            value = p[variable]
            return np.where((value <= threshold) if direction == "below" else (value >= threshold), 0.0, np.inf)
        rising = direction == "above"
        if variable != "d":
            i = int(variable[2:-1])  # "y[i]": y_i = b_i + C_i d
            slope = float(self.loading[i])
            if slope == 0.0:  # a constant output
                y = float(self.intercept[i])
                return np.full(len(d), 0.0 if (y >= threshold if rising else y <= threshold) else np.inf)
            threshold, rising = (threshold - float(self.intercept[i])) / slope, rising == (slope > 0)
        if not rising:
            return np.where(d <= threshold, 0.0, np.inf)
        running = np.isfinite(u).all(axis=1)
        ahead = self.time_to(threshold, d, p["log_rate"])
        return np.where(running | (ahead == 0.0), ahead, np.inf)

__all__ = ["ExponentialDegradation"]
