"""Time of an event predicted by Monte Carlo from a filter's posterior.

Samples of the state and parameters (a particle cloud, or draws from a
Kalman filter's Gaussian) are propagated with the model under a future input
until an event (a threshold on a state, parameter or output, or a function of
the state and parameters) or a horizon: the spread of the times of event is
the uncertainty of the remaining useful life. :func:`predict_rul` is the
plain function, :class:`MonteCarloRUL` the block that calls it every
``period`` ticks; :func:`samples_from_gaussian` and
:func:`samples_from_particles` turn filter outputs into samples.

References
----------
.. [1] M. Daigle, K. Goebel, "Model-based prognostics with concurrent damage
   progression processes", IEEE Trans. SMC: Systems 43(3), 2013 (prediction
   of the time of an event by sampling the posterior and simulating forward).
"""

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from twingraph import Block, Context, Signal, WiringError
from twingraph.errors import check_array, check_choice, check_number, invalid_param

from ..physics.ode import ODEModel, check_estimate, checked_model

ALARM = Signal(dtype="bool", unit="", description="a detector's alarm, any shape: raised when any element is")


def raised(alarm: np.ndarray) -> np.ndarray:
    """``(B,)``: the assets whose alarm port ``(B, ...)`` has any element raised."""
    return alarm.reshape(len(alarm), -1).any(axis=1)

DIRECTIONS = ("below", "above")
POSTERIORS = ("gaussian", "particles")
JITTER = (0.0, 1e-10, 1e-8, 1e-6)  # added to the correlation matrix's diagonal until a Cholesky factor exists


@dataclass(frozen=True)
class Prognosis:
    """Times of event of ``B`` assets, ``S`` samples each, and their summary.

    Attributes
    ----------
    samples : ndarray, shape (B, S)
        Time from now to the event of each sample [s]: 0 for a sample already
        past it, ``inf`` for one that does not reach it within the horizon,
        NaN for a sample with a NaN state or parameter (or whose
        propagation became NaN).
    weights : ndarray, shape (B, S), or None
        The samples' weights; ``None``: equal.
    levels : tuple of float
        The probability levels of ``quantiles``.
    quantiles : ndarray, shape (B, len(levels))
        Weighted quantiles [s]: the inverse of the weighted empirical CDF,
        ``Q(q) = min{T_i : Σ_{T_j ≤ T_i} w_j ≥ q Σ w}`` (NumPy's
        ``"inverted_cdf"``); ``inf`` where fewer than ``q`` of the samples
        reach the event within the horizon.
    median : ndarray, shape (B,)
        ``Q(0.5)`` [s].
    mean : ndarray, shape (B,)
        Weighted mean [s]; ``inf`` when a sample of positive weight is ``inf``
        (the mean is not known from samples censored at the horizon).
    p_event : ndarray, shape (B,)
        Weighted fraction of the samples that reach the event within the horizon.

    Every summary of an asset with a NaN sample is NaN.
    """

    samples: np.ndarray
    weights: np.ndarray | None
    levels: tuple[float, ...]
    quantiles: np.ndarray
    median: np.ndarray
    mean: np.ndarray
    p_event: np.ndarray


def summarize(samples, weights=None, levels=(0.05, 0.5, 0.95)) -> Prognosis:
    """The :class:`Prognosis` of times of event ``samples (B, S)`` with optional ``weights (B, S)``.

    Examples
    --------
    >>> p = summarize([[1.0, 2.0, 3.0, np.inf]], levels=(0.5, 0.9))
    >>> p.quantiles, p.median, p.mean, p.p_event
    (array([[ 2., inf]]), array([2.]), array([inf]), array([0.75]))
    """
    samples = np.asarray(samples, dtype=float)
    w = np.ones_like(samples) if weights is None else np.broadcast_to(np.asarray(weights, dtype=float), samples.shape)
    levels = tuple(float(q) for q in levels)
    quantiles = np.quantile(samples, (*levels, 0.5), axis=1, weights=w, method="inverted_cdf").T
    total = w.sum(1)
    lost = np.isnan(samples).any(1)
    with np.errstate(invalid="ignore"):
        mean = np.where(w > 0, w * samples, 0.0).sum(1) / total
    p_event = np.where(lost, np.nan, (w * np.isfinite(samples)).sum(1) / total)
    return Prognosis(samples, None if weights is None else w, levels, quantiles[:, :-1], quantiles[:, -1], mean,
                     p_event)


def samples_from_gaussian(mean, cov, n_samples: int, rng) -> np.ndarray:
    """``n_samples`` draws of ``N(mean_b, cov_b)`` per asset, shape ``(B, n_samples, n)``.

    ``mean (B, n)`` and ``cov (B, n, n)``, as a Kalman filter publishes them
    (``[x_hat, params]`` and ``cov``). The factor ``L`` (``L Lᵀ = cov``) is
    the Cholesky factor of the correlation matrix, scaled back by the
    standard deviations, so that the jitter is relative to each variance: when
    the factor does not exist (a covariance that rounding left slightly
    indefinite, or singular), ``ε I`` is added to the correlation matrix,
    ε in 1e-10, 1e-8, 1e-6, until it does. An element of zero variance is
    drawn at its mean. An asset whose covariance is not finite, has a negative
    variance, or stays indefinite after the largest jitter gets NaN samples.
    The standard normal draws are shared by the assets (common random
    numbers): an asset's samples do not depend on the others in the batch.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> z = samples_from_gaussian([[1.0, 2.0]], [[[4.0, 1.0], [1.0, 1.0]]], 100_000, rng)
    >>> np.round(np.cov(z[0].T), 1)
    array([[4., 1.],
           [1., 1.]])
    """
    mean = np.asarray(mean, dtype=float)
    z = rng.standard_normal((n_samples, mean.shape[1]))
    return mean[:, None, :] + np.einsum("bij,sj->bsi", _factor(mean, cov), z)


def _factor(mean: np.ndarray, cov) -> np.ndarray:
    """``L (B, n, n)`` with ``L Lᵀ = cov``, as :func:`samples_from_gaussian` describes; NaN for an invalid asset."""
    cov = np.asarray(cov, dtype=float)
    n = mean.shape[1]
    cov = (cov + cov.transpose(0, 2, 1)) / 2
    var = np.diagonal(cov, axis1=1, axis2=2)
    bad = ~(np.isfinite(cov).all((1, 2)) & np.isfinite(mean).all(1) & (var >= 0).all(1))
    sd = np.sqrt(np.where(var > 0, var, 0.0))
    scale = np.where(sd > 0, sd, 1.0)
    corr = np.where((sd[:, :, None] > 0) & (sd[:, None, :] > 0), cov / scale[:, :, None] / scale[:, None, :], 0.0)
    eye = np.eye(n)
    corr[:, eye > 0] = 1.0
    corr[bad] = eye
    factor = np.full_like(corr, np.nan)
    todo = np.flatnonzero(~bad)
    for jitter in JITTER:
        if not todo.size:
            break
        found, ok = _cholesky(corr[todo] + jitter * eye)
        factor[todo[ok]] = found[ok]
        todo = todo[~ok]
    return sd[:, :, None] * factor


def _cholesky(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cholesky factors of a stack ``a (m, n, n)`` and where they exist; the others are NaN."""
    try:
        return np.linalg.cholesky(a), np.ones(len(a), dtype=bool)
    except np.linalg.LinAlgError:  # one matrix failed: find which, one at a time
        factor, ok = np.full_like(a, np.nan), np.zeros(len(a), dtype=bool)
        for i, matrix in enumerate(a):
            with contextlib.suppress(np.linalg.LinAlgError):
                factor[i], ok[i] = np.linalg.cholesky(matrix), True
        return factor, ok


def samples_from_particles(particles, weights, n_samples: int, rng) -> np.ndarray:
    """``n_samples`` equally weighted draws from a weighted particle cloud, shape ``(B, n_samples, n)``.

    Systematic resampling of ``particles (B, N, n)`` by ``weights (B, N)``
    (normalised here): with one ``u ~ U[0, 1)``, sample ``s`` takes the first
    particle ``j`` with cumulative weight ``c_j > (u + s) / n_samples``, so
    particle ``j`` is drawn ``⌊n w_j⌋`` or ``⌈n w_j⌉`` times. ``u`` is shared
    by the assets. An asset whose weights are not finite, are negative or sum
    to 0 gets NaN samples.

    Examples
    --------
    >>> cloud = np.array([[[0.0], [1.0], [2.0]]])
    >>> samples_from_particles(cloud, [[0.5, 0.25, 0.25]], 4, np.random.default_rng(0))[0, :, 0]
    array([0., 0., 1., 2.])
    """
    particles, weights = np.asarray(particles, dtype=float), np.asarray(weights, dtype=float)
    batch, n_particles = weights.shape
    total = weights.sum(1)
    bad = ~(np.isfinite(weights).all(1) & (weights >= 0).all(1) & (total > 0))
    cumulative = np.cumsum(np.where(bad[:, None], 1.0, weights), axis=1)
    cumulative /= cumulative[:, -1:]
    rows = np.arange(batch)[:, None]
    positions = (rng.random() + np.arange(n_samples)) / n_samples
    # one sorted search for the whole batch: asset b's cumulative weights shifted into [b, b + 1]
    index = np.searchsorted((cumulative + rows).ravel(), (positions + rows).ravel(), side="right")
    index = np.minimum(index.reshape(batch, n_samples) - rows * n_particles, n_particles - 1)
    samples = particles[rows, index]
    samples[bad] = np.nan
    return samples


def _input_profile(model: ODEModel, future_input, batch: int, dt: float) -> Callable[[int], np.ndarray]:
    """``u_at(k)``: the input ``(B, n_u)`` held over prediction step ``k``."""
    n_u = model.n_u
    if callable(future_input):
        return lambda k: np.broadcast_to(np.asarray(future_input(k * dt), dtype=float), (batch, n_u))
    if future_input is None:
        if n_u:
            raise ValueError(f"{type(model).__name__} has {n_u} input(s): give future_input.")
        future_input = np.zeros(0)
    u = np.asarray(future_input, dtype=float)
    if u.ndim <= 1:
        constant = np.broadcast_to(u, (batch, n_u))
        return lambda k: constant
    profile = np.broadcast_to(u if u.ndim == 3 else u[:, None], (len(u), batch, n_u))
    last = len(profile) - 1
    return lambda k: profile[min(k, last)]


def _margin(model: ODEModel, variable, threshold, direction: str, event) -> Callable:
    """``margin(x, u, p) -> (M,)``: > 0 before the event, ≤ 0 once it has happened (±1 for a bool event)."""
    if event is not None:

        def margin(x, u, p):
            value = np.asarray(event(x, p))
            return np.where(value, -1.0, 1.0) if value.dtype == bool else value.astype(float)

        return margin
    sign = 1.0 if direction == "below" else -1.0
    if variable in model.states:
        i = model.states.index(variable)
        return lambda x, u, p: sign * (x[:, i] - threshold)
    if variable in model.parameters:
        return lambda x, u, p: sign * (p[variable] - threshold)
    outputs = [f"y[{i}]" for i in range(model.n_y)]
    if variable in outputs:
        i = outputs.index(variable)
        return lambda x, u, p: sign * (model.observe(x, u, p)[:, i] - threshold)
    raise ValueError(f"variable must be a state {list(model.states)}, a parameter {list(model.parameters)} or an "
                     f"output {outputs} of {type(model).__name__}. Got {variable!r}.")


def predict_rul(
    model: ODEModel,
    states,
    params=None,
    weights=None,
    *,
    dt: float,
    horizon: float,
    variable: str | None = None,
    threshold: float | None = None,
    direction: str = "below",
    event: Callable | None = None,
    future_input=None,
    process_noise=0.0,
    rng=None,
    levels=(0.05, 0.5, 0.95),
    t0: float = 0.0,
) -> Prognosis:
    """Times of event of ``B`` assets by Monte Carlo: ``S`` posterior samples each, propagated with the model.

    Parameters
    ----------
    model : ODEModel
        The model propagated (its :meth:`~blocks.physics.ode.ODEModel.advance`, integrator and
        parameter values).
    states : array_like, shape (B, S, n_x)
        State samples [state units].
    params : dict of str to array_like, optional
        Parameter samples by name, each ``(B, S)`` (or ``(B, 1)``, ``(B,)`` per asset); the
        parameters not given take the model's values.
    weights : array_like, shape (B, S), optional
        Sample weights (a particle cloud's); ``None``: equal. They weight the summary, not the
        propagation.
    dt : float
        Prediction step [s]: the input is held and the process noise drawn over each step.
    horizon : float
        How far ahead to look [s], > 0; a sample that has not reached the event by then gets ``inf``.
    variable, threshold, direction : str, float, {"below", "above"}
        The event as a threshold: ``variable`` (a state name, a parameter name, or ``"y[i]"``, the
        model's output ``i``) reaches ``threshold`` from above (``"below"``) or from below (``"above"``).
    event : callable, optional
        Instead of a threshold, ``event(x, p)`` of states ``(M, n_x)`` and parameters (a dict of
        ``(M,)`` arrays): a bool array ``(M,)``, True once the event has happened, or a float
        array, the distance to the event, ≤ 0 once it has happened.
    future_input : float, array_like or callable, optional
        The model's input from now on: a constant ``(n_u,)`` (or a number); a profile over
        prediction steps ``(K, n_u)`` or ``(K, B, n_u)``, its last row held after step ``K``; or a
        function of the time from now [s] returning ``(n_u,)`` or ``(B, n_u)``. ``None`` only
        for a model without inputs.
    process_noise : float or array_like
        Variance rate of a Brownian disturbance of each state [state unit²/s], ≥ 0, a number or
        ``(n_x,)``: ``N(0, q dt)`` is added to the states after each step. A filter's
        per-tick variance ``q`` is the rate ``q / tick``.
    rng : numpy.random.Generator or int, optional
        Random generator (or its seed) for the process noise; needed only when it is > 0.
    levels : tuple of float
        Probability levels of the reported quantiles, in [0, 1].
    t0 : float
        Time now [s], passed on to ``advance`` (the input profile is in time from now).

    Returns
    -------
    Prognosis
        The times of event ``(B, S)`` [s] and their weighted summary per asset.

    Notes
    -----
    All ``B S`` samples are advanced together, one ``advance`` call per step; a sample stops
    once it has reached the event, the loop once every sample has, or at the horizon. With
    the margin ``g`` (``threshold - value`` for ``"below"``, or a float ``event``) ``> 0`` before
    step ``k`` and ``≤ 0`` after it, the crossing is interpolated linearly within the step::

        T = (k + g_k / (g_k - g_{k+1})) dt

    so that ``T`` does not snap to the grid of ``dt``. A bool ``event`` counts as a margin of
    ±1: it is placed in the middle of the step in which it first holds, ``T = (k + 1/2) dt``
    (error ≤ dt/2); return the distance to the event for a sharper time.
    The process noise draws ``(S, n_x)`` standard normals a step, shared by the assets (common
    random numbers: an asset's times do not depend on the others in the batch).

    Closed form: with a threshold event, a constant ``future_input`` and no process noise, each
    sample's time is first asked of the model's
    :meth:`~blocks.physics.ode.ODEModel.event_time`; only the samples it leaves NaN (or all,
    when it returns ``None``, the default) are integrated. The times are then exact rather than
    interpolated within a step (they agree with the integrated ones to within ``dt``), and
    cost one call instead of ``horizon / dt`` steps.

    Examples
    --------
    Linear wear ``ẋ = -a`` from ``x = 1`` to 0 takes ``1 / a``, whatever the step:

    >>> from blocks.physics import FunctionODE
    >>> wear = FunctionODE(lambda x, u, t, p: -p["a"][:, None], params={"a": 0.01}, x0=1.0)
    >>> a = np.random.default_rng(0).normal(0.01, 0.001, size=(1, 2000))
    >>> result = predict_rul(wear, np.ones((1, 2000, 1)), {"a": a}, dt=7.0, horizon=500.0,
    ...                      variable="x", threshold=0.0)
    >>> bool(np.allclose(result.samples, 1 / a)), np.round(result.quantiles, 1)
    (True, array([[ 86.1, 100.3, 119.5]]))
    """
    states = np.asarray(states, dtype=float)
    if states.ndim != 3 or states.shape[2] != model.n_x:
        raise ValueError(f"states must have shape (B, S, {model.n_x}). Got {states.shape}.")
    batch, n_samples, n_x = states.shape
    if not (horizon > 0 and math.isfinite(horizon) and dt > 0):
        raise ValueError(f"horizon and dt must be finite and > 0. Got horizon={horizon}, dt={dt}.")
    if (event is None) == (variable is None or threshold is None):
        raise ValueError("Give either variable and threshold, or event.")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {list(DIRECTIONS)}. Got {direction!r}.")
    margin = _margin(model, variable, threshold, direction, event)
    given = dict(params or {})
    unknown = sorted(set(given) - set(model.parameters))
    if unknown:
        raise ValueError(f"params {unknown} are not parameters of {type(model).__name__} {list(model.parameters)}.")
    defaults = model.batch_params(batch) if set(model.parameters) - set(given) else {}
    p = {}
    for name in model.parameters:
        value = np.asarray(given[name] if name in given else defaults[name], dtype=float)
        value = value[:, None] if value.ndim == 1 else value
        p[name] = np.broadcast_to(value, (batch, n_samples)).ravel()
    noise = np.broadcast_to(np.asarray(process_noise, dtype=float), (n_x,))
    sd = np.sqrt(noise * dt) if noise.any() else None
    rng = np.random.default_rng(rng) if sd is not None else None
    u_at = _input_profile(model, future_input, batch, dt)
    constant = event is None and sd is None and not callable(future_input) and np.ndim(future_input) <= 1
    exact = partial(model.event_time, variable=variable, threshold=threshold, direction=direction) if constant else None
    times = _propagate(model, states.reshape(-1, n_x), p, u_at, margin, dt, horizon, sd, rng, n_samples, t0, exact)
    return summarize(times.reshape(batch, n_samples), weights, levels)


def predict_rul_unscented(model: ODEModel, mean, cov, names=(), *, kappa: float | None = None, **options):
    """Mean and standard deviation of the time of event [s] per asset from the sigma points of a Gaussian.

    The unscented variant of :func:`predict_rul`: instead of random samples,
    the ``2 n + 1`` sigma points of ``N(mean_b, cov_b)`` (``mean (B, n)``
    = ``[x_hat, params]``, ``cov (B, n, n)``, ``names`` the estimated
    parameters after the states) are propagated, deterministically (no process
    noise), and their times of event ``T_i`` weighted::

        z_0 = μ,   z_{±i} = μ ± √(n + κ) L_i   (L Lᵀ = cov, L_i its column i)
        w_0 = κ / (n + κ),   w_{±i} = 1 / (2 (n + κ))
        E[T] ≈ Σ w_i T_i,   var T ≈ Σ w_i (T_i - E[T])²

    ``κ = 3 - n`` by default (matches the fourth moment of a Gaussian in one
    dimension). The mean is ``inf`` when a sigma point does not reach the event
    within the horizon, NaN for an invalid posterior. ``options`` are those of
    :func:`predict_rul` (``dt``, ``horizon``, the event, ``future_input``,
    ``t0``).

    Examples
    --------
    Linear wear ``ẋ = -a``, ``a ~ N(0.01, 0.001²)``, from 1 to 0: ``1/a`` has mean 101.03 s and
    standard deviation 10.43 s.

    >>> from blocks.physics import FunctionODE
    >>> wear = FunctionODE(lambda x, u, t, p: -p["a"][:, None], params={"a": 0.01})
    >>> mean, sd = predict_rul_unscented(wear, [[1.0, 0.01]], [np.diag([0.0, 1e-6])], ("a",), dt=1.0,
    ...                                  horizon=500.0, variable="x", threshold=0.0)
    >>> np.round(mean, 2), np.round(sd, 2)
    (array([101.03]), array([10.41]))
    """
    mean = np.asarray(mean, dtype=float)
    n = mean.shape[1]
    kappa = 3.0 - n if kappa is None else kappa
    spread = math.sqrt(n + kappa) * _factor(mean, cov).transpose(0, 2, 1)  # row i: column i of L
    points = np.concatenate([mean[:, None], mean[:, None] + spread, mean[:, None] - spread], axis=1)
    n_x = model.n_x
    params = dict(zip(names, np.moveaxis(points[:, :, n_x:], 2, 0), strict=True))
    times = predict_rul(model, points[:, :, :n_x], params, **options).samples
    weights = np.r_[kappa, np.full(2 * n, 0.5)] / (n + kappa)
    with np.errstate(invalid="ignore"):
        expected = times @ weights
        variance = (times - expected[:, None]) ** 2 @ weights
    return expected, np.sqrt(np.maximum(variance, 0.0))


def _propagate(model, x, p, u_at, margin, dt, horizon, sd, rng, n_samples, t0, exact=None) -> np.ndarray:
    """Times of event ``(M,)`` of the samples ``x (M, n_x)`` (asset-major, ``n_samples`` per asset).

    ``exact(x, u, p)``, when given, is the model's closed-form time of event (its
    :meth:`~blocks.physics.ode.ODEModel.event_time`); only the rows it leaves NaN are integrated.
    """
    n_steps = math.ceil(horizon / dt - 1e-9)
    times = np.full(len(x), np.inf)
    asset, sample = np.divmod(np.arange(len(x)), n_samples)
    g = margin(x, u_at(0)[asset], p)
    times[g <= 0] = 0.0
    times[np.isnan(g)] = np.nan
    live = np.flatnonzero(g > 0)
    known = None if exact is None or not live.size else exact(
        x[live], u_at(0)[asset[live]], {name: value[live] for name, value in p.items()})
    if known is not None:
        found = ~np.isnan(known)
        times[live[found]] = known[found]
        live = live[~found]
    x, g, p = x[live], g[live], {name: value[live] for name, value in p.items()}
    rows, draws = asset[live], sample[live]  # the asset and the noise row of each live sample
    for k in range(n_steps):
        if not live.size:
            break
        u = u_at(k)[rows]
        x = model.advance(x, u, t0 + k * dt, dt, p)
        if sd is not None:
            x = x + sd * rng.standard_normal((n_samples, len(sd)))[draws]
        g_next = margin(x, u, p)
        done = ~(g_next > 0)  # crossed, or NaN
        if done.any():
            crossed = done & (g_next <= 0)
            times[live[crossed]] = (k + g[crossed] / (g[crossed] - g_next[crossed])) * dt
            times[live[done & ~crossed]] = np.nan
            keep = ~done
            live, rows, draws, x, g_next = live[keep], rows[keep], draws[keep], x[keep], g_next[keep]
            p = {name: value[keep] for name, value in p.items()}
        g = g_next
    times[times > horizon] = np.inf
    return times


class MonteCarloRUL(Block):
    """Remaining useful life by Monte Carlo from a filter's posterior, predicted every ``period`` ticks.

    Parameters
    ----------
    model : ODEModel
        The model propagated (required: the graph does not validate without one).
    estimate : tuple of str
        The model parameters estimated with the state, in the order of the filter's ``estimate``
        (the ``params`` port, and the columns of ``cov`` or ``particles`` after the states).
    variable : str
        What fails: a state name, a parameter name or ``"y[i]"`` (the model's output ``i``).
    threshold : float
        Value of ``variable`` at the event [its unit].
    direction : {"below", "above"}
        The event is ``variable`` falling to ``threshold`` (``"below"``) or rising to it.
    horizon : float
        How far ahead to look [s], > 0, finite; a sample that does not reach the event by then
        has a time of event of ``inf``.
    dt : float or None
        Prediction step [s]; ``None``: the graph's tick.
    n_samples : int
        Posterior samples propagated per asset, ≥ 1.
    period : int
        Ticks between predictions, ≥ 1; in between, the last prediction is aged.
    future_input : float, array_like or None
        The model's input from the prediction time on: a number, ``(n_u,)``, or a profile of
        ``(K, n_u)`` over prediction steps (its last row held). ``None`` only for a model without
        inputs.
    process_noise : float or array_like
        Variance rate of the disturbance of each state [state unit²/s], ≥ 0, a number or ``(n_x,)``
        (see :func:`predict_rul`).
    quantiles : tuple of float
        Probability levels ``(lower, upper)`` of ``rul_lower`` and ``rul_upper``, ``0 < lower < upper < 1``.
    seed : int
        Seed of the random numbers, ≥ 0.
    posterior : {"gaussian", "particles"}
        What the filter gives: ``x_hat``, ``params`` and ``cov`` (EKF, UKF), sampled with
        :func:`samples_from_gaussian`; or ``particles`` and ``weights`` (ParticleFilter),
        resampled with :func:`samples_from_particles`.
    armed : bool
        Wait for an ``alarm`` (a fault detector's) before predicting.
    name : str or None
        Block name.

    Ports
    -----
    x_hat (in) : state estimate, shape ``(n_x,)``; ``posterior="gaussian"``.
    params (in) : estimated parameters, shape ``(n_est,)``; ``posterior="gaussian"`` with ``estimate``.
    cov (in) : covariance of ``[x_hat, params]``, shape ``(n, n)``; ``posterior="gaussian"``.
    particles (in) : the cloud ``[x, params]``, shape ``(N, n)``; ``posterior="particles"``.
    weights (in) : the particles' weights, shape ``(N,)``; ``posterior="particles"``.
    alarm (in) : bool, shape ``()``; with ``armed=True``.
    rul (out) : the median time of event [s], shape ``()`` (the point estimate; as ``rul_median``).
    rul_lower, rul_upper (out) : its ``quantiles`` [s], shape ``()``.
    rul_mean (out) : mean [s], shape ``()``; ``inf`` when a sample does not reach the event
        within the horizon.
    rul_median (out) : median [s], shape ``()``.
    rul_samples (out) : the time of event of every sample [s], shape ``(n_samples,)``.
    p_event (out) : fraction of the samples reaching the event within the horizon, shape ``()`` [-].

    Notes
    -----
    At tick ``k`` the block reads the filter's posterior of tick ``k`` (it is direct
    feedthrough). An asset predicts at its first (armed) tick and then every ``period``
    ticks: ``n_samples`` draws of the posterior propagated by :func:`predict_rul` from
    ``t_k``. In between, every output is the last prediction aged by the time ``e`` since
    it: ``max(T - e, 0)`` for each sample and quantile (exact, since quantiles commute with
    the shift), the mean taken over the aged samples; ``p_event`` is kept.

    Without ``armed``, the first prediction is at tick 0. With it, an asset reports
    ``inf`` for every time (``p_event`` 0) and samples nothing until its ``alarm`` is
    first True; it predicts at that tick and stays armed (the alarm latches).

    Random numbers: prediction ``j`` of an asset (``j = 0, 1, ...``) draws from
    ``numpy.random.default_rng([seed, j])``, shared by the assets at the same ``j``, so that
    an asset's outputs depend on its own inputs and the seed only, not on the rest of the
    batch; the state is the count ``j`` per asset, and a snapshot resumes exactly.

    NaN: an asset whose posterior holds a NaN (or whose covariance is not positive
    semi-definite, or whose weights are invalid) reports NaN for every output until its
    next prediction from a valid posterior.

    Examples
    --------
    Wear ``ẋ = -a`` from ``x = 1`` with ``a ≈ 0.01 ± 0.001`` /s reaches 0 in about 100 s; the
    prediction of tick 0 ages by a second a tick until tick 5 predicts again:

    >>> import twingraph as tg
    >>> from blocks.physics import FunctionODE
    >>> wear = FunctionODE(lambda x, u, t, p: -p["a"][:, None], params={"a": 0.01})
    >>> g = tg.Graph("prognosis", dt=1.0)
    >>> x = g.add(tg.Input("x", shape=(1,)))
    >>> a = g.add(tg.Input("a", shape=(1,)))
    >>> cov = g.add(tg.Input("cov", shape=(2, 2)))
    >>> mc = g.add(MonteCarloRUL(model=wear, estimate=("a",), variable="x", threshold=0.0, horizon=300.0,
    ...                          n_samples=2000, period=5, name="mc"))
    >>> for port, feed in (("x_hat", x), ("params", a), ("cov", cov)):
    ...     g.connect(feed.out.value, mc.inp[port])
    >>> hist = tg.Simulator(g).run(inputs={"x": np.ones((7, 1)), "a": np.full((7, 1), 0.01),
    ...                                    "cov": np.tile(np.diag([0.0, 1e-6]), (7, 1, 1))})
    >>> np.round(hist["mc.rul"], 1)
    array([100.4,  99.4,  98.4,  97.4,  96.4,  99.9,  98.9])
    >>> round(float(hist["mc.rul_lower"][0]), 1), round(float(hist["mc.rul_upper"][0]), 1)  # exact: 85.9, 119.7
    (85.9, 119.1)
    """

    outputs = {
        "rul": Signal(shape=(), unit="s"),
        "rul_lower": Signal(shape=(), unit="s"),
        "rul_upper": Signal(shape=(), unit="s"),
        "rul_mean": Signal(shape=(), unit="s"),
        "rul_median": Signal(shape=(), unit="s"),
        "p_event": Signal(shape=(), unit=""),
    }

    def __init__(
        self,
        model: ODEModel | None = None,
        estimate: tuple[str, ...] = (),
        variable: str | None = None,
        threshold=0.0,
        direction="below",
        horizon=100.0,
        dt=None,
        n_samples=100,
        period=1,
        future_input=None,
        process_noise=0.0,
        quantiles=(0.05, 0.95),
        seed=0,
        posterior="gaussian",
        armed=False,
        *,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self.model = model
        self.estimate = estimate
        self.variable = variable
        self.threshold = threshold
        self.direction = direction
        self.horizon = horizon
        self.dt = dt
        self.n_samples = n_samples
        self.period = period
        self.future_input = future_input
        self.process_noise = process_noise
        self.quantiles = quantiles
        self.seed = seed
        self.posterior = posterior
        self.armed = armed

    def check_params(self) -> None:
        model = checked_model(self)
        model.check_params()
        check_estimate(self, model)
        variables = [*model.states, *model.parameters, *(f"y[{i}]" for i in range(model.n_y))]
        if not (isinstance(self.variable, str) and self.variable in variables):
            raise invalid_param(self, "variable", f"one of {variables}", self.variable)
        check_number(self, "threshold")
        check_choice(self, "direction", DIRECTIONS)
        check_number(self, "horizon", 0, low_open=True, unit="s")
        if self.dt is not None:
            check_number(self, "dt", 0, low_open=True, unit="s")
        check_number(self, "n_samples", 1, integer=True)
        check_number(self, "period", 1, integer=True, unit="ticks")
        self._check_future_input(model)
        noise = check_array(self, "process_noise")
        if noise.ndim > 1 or noise.size not in (1, model.n_x) or np.any(noise < 0):
            raise invalid_param(self, "process_noise", f"a variance rate >= 0, or {model.n_x} of them (one per "
                                "state)", self.process_noise)
        levels = self.quantiles
        if not (
            isinstance(levels, (tuple, list)) and len(levels) == 2 and all(isinstance(q, float) for q in levels)
            and 0 < levels[0] < levels[1] < 1
        ):
            raise invalid_param(self, "quantiles", "two levels (lower, upper) with 0 < lower < upper < 1", levels)
        check_number(self, "seed", 0, integer=True)
        check_choice(self, "posterior", POSTERIORS)
        if not isinstance(self.armed, bool):
            raise invalid_param(self, "armed", "True or False", self.armed)

    def _check_future_input(self, model: ODEModel) -> None:
        n_u = model.n_u
        if n_u == 0:
            if self.future_input is not None:
                raise invalid_param(self, "future_input", f"None ({type(model).__name__} has no input)",
                                    self.future_input)
            return
        expected = f"a number, {n_u} values or a profile of shape (K, {n_u})"
        if self.future_input is None:
            raise invalid_param(self, "future_input", expected, None)
        u = check_array(self, "future_input")
        if not (u.ndim == 0 or (u.ndim in (1, 2) and u.shape[-1] == n_u and u.size)):
            raise invalid_param(self, "future_input", expected, self.future_input)

    def input_signals(self) -> dict[str, Signal]:
        self.check_params()
        model, n = self.model, self.model.n_x + len(self.estimate)
        if self.posterior == "gaussian":
            ports = {"x_hat": Signal(shape=(model.n_x,))}
            if self.estimate:
                ports["params"] = Signal(shape=(len(self.estimate),))
            ports["cov"] = Signal(shape=(n, n))
        else:
            ports = {"particles": Signal(shape=None), "weights": Signal(shape=None)}
        if self.armed:
            ports["alarm"] = ALARM
        return ports

    def output_signals(self, inputs):
        self.check_params()
        if self.posterior == "particles":
            n = self.model.n_x + len(self.estimate)
            cloud, weights = inputs["particles"].shape, inputs["weights"].shape
            if cloud is not None and (len(cloud) != 2 or cloud[1] != n):
                raise WiringError(f"MonteCarloRUL '{self.name}': input 'particles' must have shape (N, {n}) "
                                  f"(a particle [x, params] a row). Got {cloud}.")
            if weights is not None and cloud is not None and weights != cloud[:1]:
                raise WiringError(f"MonteCarloRUL '{self.name}': input 'weights' must have shape ({cloud[0]},), "
                                  f"one per particle. Got {weights}.")
        return {**self.outputs, "rul_samples": Signal(shape=(self.n_samples,), unit="s")}

    def reset(self, ctx: Context) -> None:
        batch = ctx.batch
        self._p = self.model.batch_params(batch)
        self._tick = ctx.dt
        self._step = ctx.dt if self.dt is None else float(self.dt)
        self._levels = (self.quantiles[0], 0.5, self.quantiles[1])
        self.samples_ = np.full((batch, self.n_samples), np.inf)  # times of event at the last prediction
        self.summary_ = np.full((batch, 3), np.inf)  # their lower quantile, median, upper quantile
        self.p_event_ = np.zeros(batch)
        self.since_ = np.full(batch, -1)  # ticks since the last prediction; -1: none yet
        self.count_ = np.zeros(batch, dtype=int)  # predictions made: the seed of the next one
        self.armed_ = np.full(batch, not self.armed)

    def _predict(self, rows: np.ndarray, inp, t: float, rng) -> Prognosis:
        """The prediction of assets ``rows`` from this tick's posterior."""
        n_x = self.model.n_x
        if self.posterior == "gaussian":
            mean = inp.x_hat[rows] if not self.estimate else np.concatenate([inp.x_hat[rows], inp.params[rows]], 1)
            z = samples_from_gaussian(mean, inp.cov[rows], self.n_samples, rng)
        else:
            z = samples_from_particles(inp.particles[rows], inp.weights[rows], self.n_samples, rng)
        params = {name: value[rows] for name, value in self._p.items()}
        params.update(zip(self.estimate, np.moveaxis(z[:, :, n_x:], 2, 0), strict=True))
        return predict_rul(
            self.model, z[:, :, :n_x], params, dt=self._step, horizon=self.horizon, variable=self.variable,
            threshold=self.threshold, direction=self.direction, future_input=self.future_input,
            process_noise=self.process_noise, rng=rng, levels=self._levels, t0=t,
        )

    def output(self, t, inp, out):
        armed = self.armed_ | raised(inp.alarm) if self.armed else self.armed_
        due = armed & ((self.since_ < 0) | (self.since_ >= self.period))
        samples, summary, p_event = self.samples_, self.summary_, self.p_event_
        if due.any():
            samples, summary, p_event = samples.copy(), summary.copy(), p_event.copy()
            for count in np.unique(self.count_[due]):
                rows = np.flatnonzero(due & (self.count_ == count))
                result = self._predict(rows, inp, t, np.random.default_rng([self.seed, int(count)]))
                samples[rows] = result.samples
                summary[rows] = np.column_stack([result.quantiles[:, 0], result.median, result.quantiles[:, 2]])
                p_event[rows] = result.p_event
        self._next = due, samples, summary, p_event  # committed by update
        elapsed = np.where(due, 0, np.maximum(self.since_, 0)) * self._tick
        aged = np.maximum(samples - elapsed[:, None], 0.0)
        lower, median, upper = np.maximum(summary - elapsed[:, None], 0.0).T
        out.rul_samples[...] = aged
        out.rul[...] = median
        out.rul_lower[...] = lower
        out.rul_upper[...] = upper
        out.rul_median[...] = median
        out.rul_mean[...] = aged.mean(1)
        out.p_event[...] = p_event

    def update(self, t, inp):
        due, samples, summary, p_event = self._next
        if self.armed:
            self.armed_ |= raised(inp.alarm)
        if due.any():
            self.samples_[...] = samples
            self.summary_[...] = summary
            self.p_event_[...] = p_event
        self.count_ += due
        self.since_[...] = np.where(due, 1, np.where(self.since_ >= 0, self.since_ + 1, -1))
