"""Prognostic metrics: plain, vectorised functions (not blocks).

Point accuracy (:func:`rmse`, :func:`mae`, :func:`phm08_score`,
:func:`relative_accuracy`, :func:`cumulative_relative_accuracy`), accuracy over
a prediction trajectory (:func:`alpha_lambda`, :func:`prognostic_horizon`),
uncertainty (:func:`interval_coverage`, :func:`interval_width`, :func:`crps`)
and health-indicator quality (:func:`monotonicity`, :func:`trendability`,
:func:`prognosability`). RUL arguments are in any time unit, the same for all
arguments of one call.

References
----------
.. [1] A. Saxena, J. Celaya, B. Saha, S. Saha, K. Goebel, "Metrics for offline
   evaluation of prognostic performance", IJPHM 1(1), 2010.
.. [2] A. Saxena, K. Goebel, D. Simon, N. Eklund, "Damage propagation modeling
   for aircraft engine run-to-failure simulation", PHM 2008 (the PHM08 score).
.. [3] T. Gneiting, A. Raftery, "Strictly proper scoring rules, prediction, and
   estimation", JASA 102(477), 2007 (CRPS).
.. [4] J. Coble, J. W. Hines, "Identifying optimal prognostic parameters from
   data: a genetic algorithms approach", PHM Society conference, 2009.
"""

from collections.abc import Sequence

import numpy as np


def rmse(pred, true) -> float:
    """Root mean squared error, ``sqrt(mean((pred - true)²))``.

    >>> rmse([1.0, 3.0], [2.0, 2.0])
    1.0
    """
    d = np.asarray(pred, dtype=float) - np.asarray(true, dtype=float)
    return float(np.sqrt(np.mean(d**2)))


def mae(pred, true) -> float:
    """Mean absolute error, ``mean(|pred - true|)``.

    >>> mae([1.0, 4.0], [2.0, 2.0])
    1.5
    """
    return float(np.mean(np.abs(np.asarray(pred, dtype=float) - np.asarray(true, dtype=float))))


def phm08_score(pred, true) -> float:
    """PHM08 challenge score [2]_: ``Σ exp(-d/13) - 1`` for early (``d < 0``), ``Σ exp(d/10) - 1`` for late predictions.

    ``d = pred - true`` in cycles; late predictions cost more than early ones.

    >>> round(phm08_score([10.0, 30.0], [23.0, 20.0]), 4)  # 13 early and 10 late: e - 1 each
    3.4366
    """
    d = np.asarray(pred, dtype=float) - np.asarray(true, dtype=float)
    return float(np.sum(np.where(d < 0, np.expm1(-d / 13.0), np.expm1(d / 10.0))))


def relative_accuracy(pred, true) -> np.ndarray:
    """Relative accuracy [1]_, ``RA = 1 - |true - pred| / true``, elementwise.

    >>> relative_accuracy([90.0, 60.0], [100.0, 50.0])
    array([0.9, 0.8])
    """
    true = np.asarray(true, dtype=float)
    return 1.0 - np.abs(true - np.asarray(pred, dtype=float)) / true


def cumulative_relative_accuracy(pred, true) -> float:
    """Cumulative relative accuracy [1]_: the mean of :func:`relative_accuracy` over the predictions of a trajectory.

    >>> round(cumulative_relative_accuracy([90.0, 60.0], [100.0, 50.0]), 12)
    0.85
    """
    return float(np.mean(relative_accuracy(pred, true)))


def alpha_lambda(pred, true, alpha: float = 0.2, beta: float | None = None) -> np.ndarray:
    """α-λ accuracy [1]_: is the prediction within ``±α`` of the true RUL, ``(1 - α) r* ≤ r ≤ (1 + α) r*``?

    Parameters
    ----------
    pred : array_like
        Point predictions of RUL ``(...,)``; or, with ``beta``, samples of the
        predicted RUL distribution on the last axis ``(..., n_samples)``.
    true : array_like
        True RUL ``(...,)`` at the same prediction times (λ).
    alpha : float
        Half-width of the accuracy cone relative to the true RUL.
    beta : float or None
        With samples: the probability mass that must lie inside the cone.

    Returns
    -------
    ndarray of bool, shape ``(...)``.

    Examples
    --------
    >>> alpha_lambda([85.0, 70.0], [100.0, 100.0])
    array([ True, False])
    >>> alpha_lambda([[90.0, 95.0, 130.0, 110.0]], [100.0], beta=0.75)
    array([ True])
    """
    true = np.asarray(true, dtype=float)
    pred = np.asarray(pred, dtype=float)
    if beta is not None:
        true = true[..., None]
    inside = np.abs(pred - true) <= alpha * true
    return inside if beta is None else inside.mean(axis=-1) >= beta


def prognostic_horizon(times, pred, true, eol: float, alpha: float = 0.2) -> float:
    """Prognostic horizon [1]_, ``PH = t_EoL - t_i``.

    ``t_i`` is the first time from which every prediction stays within
    ``±α t_EoL`` of the true RUL.

    Parameters
    ----------
    times : array_like
        Prediction times ``(n,)``, increasing.
    pred, true : array_like
        Predicted and true RUL at those times ``(n,)``.
    eol : float
        True end-of-life time (same unit as ``times``).
    alpha : float
        Half-width of the band, as a fraction of ``eol``.

    Returns
    -------
    float
        The horizon, 0.0 when the last prediction is outside the band.

    Notes
    -----
    ProgPy's ``prognostic_horizon`` takes the first time the criterion is met,
    whether or not later predictions keep meeting it; both agree when, once
    met, the criterion stays met.

    Examples
    --------
    >>> prognostic_horizon([0, 10, 20, 30], [80, 50, 72, 65], [100, 90, 80, 70], eol=100.0, alpha=0.1)
    80.0
    """
    times = np.asarray(times, dtype=float)
    inside = np.abs(np.asarray(pred, dtype=float) - np.asarray(true, dtype=float)) <= alpha * eol
    if not inside[-1]:
        return 0.0
    outside = np.flatnonzero(~inside)
    first = 0 if outside.size == 0 else outside[-1] + 1
    return float(eol - times[first])


def interval_coverage(lower, upper, true) -> float:
    """Fraction of true values inside their intervals ``lower ≤ true ≤ upper``.

    >>> interval_coverage([0.0, 0.0, 5.0], [2.0, 2.0, 6.0], [1.0, 3.0, 5.0])
    0.6666666666666666
    """
    true = np.asarray(true, dtype=float)
    return float(np.mean((np.asarray(lower, dtype=float) <= true) & (true <= np.asarray(upper, dtype=float))))


def interval_width(lower, upper) -> float:
    """Mean width of intervals, ``mean(upper - lower)``.

    >>> interval_width([0.0, 1.0], [2.0, 5.0])
    3.0
    """
    return float(np.mean(np.asarray(upper, dtype=float) - np.asarray(lower, dtype=float)))


def crps(samples, observed) -> np.ndarray:
    """Continuous ranked probability score of an ensemble [3]_, ``E|X - y| - ½ E|X - X'|``, per observation.

    Parameters
    ----------
    samples : array_like
        Samples of each predictive distribution on the last axis ``(..., n)``.
    observed : array_like
        The observed values ``(...)``.

    Notes
    -----
    The closed form for the empirical distribution of ``n`` sorted samples
    ``x₍₁₎ ≤ … ≤ x₍ₙ₎`` (the "fair" form is not used: this is the CRPS of the
    ensemble as a distribution, as in ``properscoring.crps_ensemble``)::

        CRPS = 1/n Σᵢ |xᵢ - y|  -  1/n² Σᵢ (2i - n - 1) x₍ᵢ₎

    computed in O(n log n) by sorting instead of over all n² pairs. Lower is
    better; for a single sample it is the absolute error.

    Examples
    --------
    >>> crps([[0.0, 2.0]], [1.0])
    array([0.5])
    """
    x = np.sort(np.asarray(samples, dtype=float), axis=-1)
    y = np.asarray(observed, dtype=float)[..., None]
    n = x.shape[-1]
    rank = 2.0 * np.arange(1, n + 1) - n - 1
    return np.mean(np.abs(x - y), axis=-1) - (x * rank).sum(axis=-1) / n**2


def monotonicity(indicators: Sequence) -> float:
    """Monotonicity of health indicators [4]_: the mean over trajectories of ``|Σ sign(Δh)| / (n - 1)``, in [0, 1].

    ``indicators`` is a sequence of 1-D trajectories (one per unit, lengths may differ).

    >>> monotonicity([[1.0, 0.9, 0.8, 0.85, 0.7], [1.0, 0.8, 0.6]])
    0.75
    """
    return float(np.mean([abs(np.sign(np.diff(np.asarray(h, dtype=float))).sum()) / (len(h) - 1) for h in indicators]))


def _on_life_fraction(indicators: Sequence, points: int) -> np.ndarray:
    """Each trajectory interpolated onto ``points`` equally spaced fractions of its life, ``(units, points)``."""
    grid = np.linspace(0.0, 1.0, points)
    return np.stack([np.interp(grid, np.linspace(0.0, 1.0, len(h)), np.asarray(h, dtype=float)) for h in indicators])


def trendability(indicators: Sequence, points: int = 100) -> float:
    """Trendability [4]_: the smallest ``|corr|`` between any two trajectories, in [0, 1].

    Trajectories of different lengths are compared over the fraction of life
    (each resampled onto ``points`` equally spaced fractions, linearly).

    >>> round(trendability([[1.0, 0.8, 0.5, 0.1], [1.0, 0.7, 0.4, 0.1], [0.9, 0.9, 0.2, 0.0]], points=4), 4)
    0.9358
    """
    r = np.abs(np.corrcoef(_on_life_fraction(indicators, points)))
    return float(r.min())


def prognosability(indicators: Sequence) -> float:
    """Prognosability [4]_: ``exp(-std(h_fail) / mean(|h_start - h_fail|))``, in (0, 1].

    Near 1 when every unit fails at the same indicator value, relative to how
    far the indicators travel.

    >>> round(prognosability([[1.0, 0.5, 0.0], [1.0, 0.2], [0.9, 0.1]]), 4)
    0.9101
    """
    start = np.array([h[0] for h in indicators], dtype=float)
    end = np.array([h[-1] for h in indicators], dtype=float)
    return float(np.exp(-np.std(end) / np.mean(np.abs(start - end))))
