"""The physics side of the turbofan twin: healthy behaviour, detection, a filtered damage state, its RUL, an OOD flag.

:func:`fit_health_twin` learns every piece from run-to-failure training units; :func:`add_health_blocks`
adds them to a graph fed with ``settings``, ``sensors`` and ``valid`` inputs and returns the port names::

    settings, sensors, valid → healthy: HealthyBehaviour → z (S,) normalised residuals
    z → score: Projection (damage seen in z, standardised on healthy cycles) → detect: CUSUM → alarm
    z → filter: EKF on ExponentialDegradation (damage d, log growth rate θ) → x_hat, cov
    x_hat → health: ParameterHealth → hi = clip(1 - d / d_fail, 0, 1)
    x_hat, params, cov → mc: MonteCarloRUL (time until d reaches d_fail) → rul, rul_lower, rul_upper
    z → ood: SubspaceDistance (z off the fleet's degradation subspace, Mahalanobis, smoothed) → alarm (latched)
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from scipy.optimize import least_squares

import twingraph as tg
from blocks.anomaly import CUSUM, Projection, SubspaceDistance
from blocks.anomaly.ood import smoothed
from blocks.estimation import EKF
from blocks.health import ExponentialDegradation, MonteCarloRUL, ParameterHealth
from blocks.ml.healthy import HealthyBehaviour, first_cycles, fit_healthy_behaviour

SETTINGS = ["setting_1", "setting_2", "setting_3"]
SENSORS = ["s_2", "s_3", "s_4", "s_7", "s_8", "s_9", "s_11", "s_12", "s_13", "s_14", "s_15", "s_17", "s_20", "s_21"]
HEALTHY_CYCLES = 30  # the first cycles of each training unit taken as healthy
TAU = 60.0  # damage template exp(-RUL / TAU) [cycles] that defines the damage scale (1 at failure)
OFFSET = 0.05  # growth offset e of the damage model [damage]
TAIL_CYCLES = 20  # the last cycles of each training unit taken as failed (the OOD subspace)
OOD_ENERGY = 0.99  # share of the fleet's healthy-to-failed displacement that the OOD subspace explains


@dataclass
class HealthPieces:
    """What :func:`fit_health_twin` learns; :func:`add_health_blocks` turns it into blocks."""

    healthy: HealthyBehaviour
    model: ExponentialDegradation
    filter: dict
    d_fail: float
    score: dict
    cusum: dict
    ood_model: dict
    ood: dict
    seed: int = 0


def unit_frames(frame: pd.DataFrame) -> tuple[list[int], list[np.ndarray], list[np.ndarray]]:
    """Per unit (sorted): settings ``(T, 3)`` and sensors ``(T, S)`` in cycle order."""
    frame = frame.sort_values(["unit", "cycle"])
    units = sorted(frame["unit"].unique())
    groups = frame.groupby("unit")
    return (units, [groups.get_group(u)[SETTINGS].to_numpy(float) for u in units],
            [groups.get_group(u)[SENSORS].to_numpy(float) for u in units])


def unit_residuals(healthy: HealthyBehaviour, frame: pd.DataFrame) -> tuple[list[int], list[np.ndarray]]:
    """Per unit (sorted), the normalised residuals ``z (T, S)`` of every cycle (the offline path of the block)."""
    units, settings, sensors = unit_frames(frame)
    return units, [healthy.residuals(s, x) for s, x in zip(settings, sensors, strict=True)]


def damage_projection(z: np.ndarray, loading: np.ndarray, intercept: np.ndarray, r: np.ndarray) -> np.ndarray:
    """The weighted least-squares damage of each row of ``z (N, S)``: ``Cᵀ R⁻¹ (z - b) / Cᵀ R⁻¹ C``."""
    w = loading / r
    return (z - intercept) @ w / (loading @ w)


def _fit_unit(d: np.ndarray, offset: float) -> tuple[float, float]:
    """``(d0, θ)`` of ``d(t) = (d0 + e) exp(exp(θ) t) - e`` fitted to one unit's damage ``d (T,)`` (t = 0 .. T-1)."""
    t = np.arange(len(d), dtype=float)

    def residual(p):
        return (p[0] + offset) * np.exp(np.exp(p[1]) * t) - offset - d

    start = np.array([max(np.median(d[:20]), -offset / 2), np.log(3.0 / len(d))])
    fit = least_squares(residual, start, bounds=([-offset + 1e-6, -12.0], [10.0, 0.0]))
    return float(fit.x[0]), float(fit.x[1])


def fit_health_twin(frame: pd.DataFrame, units=None, seed: int = 0, *, tau: float = TAU, offset: float = OFFSET,
                    r_scale: float = 4.0, q: float = 1e-4, q_params: float = 0.0, ood_quantile: float = 1.0,
                    ood_alpha: float = 0.1, ood_persistence: int = 5, ood_energy: float = OOD_ENERGY,
                    cusum_k: float = 1.0,
                    cusum_h: float | None = None) -> HealthPieces:
    """Learn the health side of the twin from run-to-failure rows ``frame`` (C-MAPSS columns), optionally ``units``.

    Parameters
    ----------
    frame : DataFrame
        Training rows: ``unit``, ``cycle``, ``SETTINGS``, ``SENSORS``; each unit runs to failure.
    units : sequence of int or None
        The units to fit on (``None``: all).
    seed : int
        Seed of the Monte Carlo RUL (the fit itself draws no random numbers).
    tau : float
        Time constant [cycles] of the damage template ``exp(-RUL / tau)`` that the residuals are
        regressed on: it fixes the damage scale (1 at failure) and the direction ``C``.
    offset : float
        Growth offset ``e`` of :class:`~blocks.health.ExponentialDegradation` [damage].
    r_scale : float
        Factor on the residual variances used as the filter's measurement variance: the 14
        residuals are correlated (engine-to-engine offsets), a diagonal ``R`` counts them as
        independent; chosen by cross-validation.
    q : float
        Process noise variance of the damage per cycle.
    ood_quantile, ood_alpha, ood_persistence, ood_energy : float, float, int, float
        The OOD flag (:func:`fit_ood`): its threshold is this quantile of the held-out training units'
        scores (1.0: the largest), smoothing factor and persistence of :class:`SubspaceDistance`, and
        the share of the fleet's degradation displacement its subspace explains.
    cusum_k, cusum_h : float, float or None
        CUSUM allowance and threshold on the standardised damage score; ``None``: ``h`` is the
        largest CUSUM statistic of the training units in their first ``HEALTHY_CYCLES`` cycles times 1.5
        (cross-validated: no held-out unit of FD001-FD004 alarms in its first 30 cycles).

    Returns
    -------
    HealthPieces
    """
    if units is not None:
        frame = frame[frame["unit"].isin(list(units))]
    frame = frame.sort_values(["unit", "cycle"])
    healthy_rows = first_cycles(frame["unit"].to_numpy(), HEALTHY_CYCLES)
    healthy = fit_healthy_behaviour(frame[SETTINGS].to_numpy(float), frame[SENSORS].to_numpy(float), healthy_rows,
                                    name="healthy")
    _, z_units = unit_residuals(healthy, frame)
    z = np.vstack(z_units)
    rul = np.concatenate([np.arange(len(u) - 1, -1, -1, dtype=float) for u in z_units])
    template = np.exp(-rul / tau)
    design = np.column_stack([np.ones_like(template), template])
    coef, *_ = np.linalg.lstsq(design, z, rcond=None)
    intercept, loading = coef
    noise = np.var(z - design @ coef, axis=0)
    r = r_scale * noise
    d_units = [damage_projection(u, loading, intercept, noise) for u in z_units]
    fits = np.array([_fit_unit(d, offset) for d in d_units])
    d0, theta = fits[:, 0], fits[:, 1]
    d_end = (d0 + offset) * np.exp(np.exp(theta) * (np.array([len(u) for u in z_units]) - 1)) - offset
    d_fail = float(np.median(d_end))
    model = ExponentialDegradation(loading=tuple(loading.tolist()), intercept=tuple(intercept.tolist()),
                                   log_rate=float(np.mean(theta)), offset=offset, x0=float(np.mean(d0)),
                                   name="degradation")
    filt = {"q": q, "q_params": q_params, "r": tuple(r.tolist()), "p0": float(np.var(d0)),
            "p0_params": float(np.var(theta))}

    d_healthy = np.concatenate([d[:HEALTHY_CYCLES] for d in d_units])
    score = {"coefficients": tuple((loading / noise / (loading @ (loading / noise))).tolist()),
             "offset": float(np.mean(d_healthy) + intercept @ (loading / noise) / (loading @ (loading / noise))),
             "scale": float(np.std(d_healthy))}
    scores = [(d - np.mean(d_healthy)) / score["scale"] for d in d_units]
    if cusum_h is None:
        early = max(_cusum_max(s[:HEALTHY_CYCLES], cusum_k) for s in scores)
        cusum_h = 1.5 * early
    cusum = {"k": cusum_k, "h": float(cusum_h)}

    ood_model, threshold = fit_ood(z_units, energy=ood_energy, alpha=ood_alpha, persistence=ood_persistence,
                                   quantile=ood_quantile)
    ood = {"alpha": ood_alpha, "threshold": threshold, "persistence": ood_persistence}
    return HealthPieces(healthy, model, filt, d_fail, score, cusum, ood_model, ood, seed)


def degradation_subspace(z_units: list[np.ndarray], energy: float = OOD_ENERGY) -> dict[str, np.ndarray]:
    """The fleet's degradation subspace and the covariance off it, the learned arrays of :class:`SubspaceDistance`.

    The basis holds the leading principal directions of the units' displacement from healthy to failed
    (mean ``z`` of the last ``TAIL_CYCLES`` cycles minus that of the first ``HEALTHY_CYCLES``), as many as
    explain ``energy`` of its sum of squares (2 for FD001/FD002: the HPC wear and the core-speed
    spread; 3 for FD003/FD004 with the fan fault); the mean is that of the healthy cycles, the
    covariance that of the part of ``z`` off the subspace over every cycle of life.
    """
    mean = np.mean(np.vstack([u[:HEALTHY_CYCLES] for u in z_units]), axis=0)
    shift = np.array([u[-TAIL_CYCLES:].mean(0) - u[:HEALTHY_CYCLES].mean(0) for u in z_units])
    _, sv, vt = np.linalg.svd(shift, full_matrices=False)
    m = min(int(np.searchsorted(np.cumsum(sv**2) / np.sum(sv**2), energy)) + 1, len(mean) - 1)
    basis = vt[:m].T
    off = (np.vstack(z_units) - mean) @ (np.eye(len(mean)) - basis @ basis.T)
    return {"basis": basis, "mean": mean, "cov": np.cov(off.T)}


def fit_ood(z_units: list[np.ndarray], *, energy: float = OOD_ENERGY, alpha: float = 0.1, persistence: int = 5,
            quantile: float = 1.0, folds: int = 5) -> tuple[dict[str, np.ndarray], float]:
    """The OOD model (:func:`degradation_subspace` of every unit) and its threshold from held-out training units.

    The units are split into ``folds`` (unit ``i`` in fold ``i mod folds``); each fold is scored by the
    subspace of the others: a unit's score is the largest level its smoothed distance stays above for
    ``persistence`` cycles (it alarms at a threshold below it). The threshold is the ``quantile`` of these
    held-out scores (1.0: the largest, so that no held-out training unit would have been flagged).
    """
    fold = np.arange(len(z_units)) % folds
    scores = []
    for k in range(folds):
        probe = SubspaceDistance(alpha=alpha, threshold=1.0, persistence=persistence)
        probe.set_model(**degradation_subspace([u for u, f in zip(z_units, fold, strict=True) if f != k], energy))
        scores += [held_level(smoothed(probe.squared_distance(u), alpha), persistence)
                   for u, f in zip(z_units, fold, strict=True) if f == k]
    return degradation_subspace(z_units, energy), float(np.quantile(scores, quantile))


def held_level(s: np.ndarray, n: int) -> float:
    """The largest level that ``s`` stays above for ``n`` consecutive values (``-inf`` if shorter)."""
    return float(sliding_window_view(s, n).min(axis=1).max()) if len(s) >= n else -np.inf


def _cusum_max(s: np.ndarray, k: float) -> float:
    """The largest two-sided CUSUM statistic of ``s`` (no restart)."""
    high = low = top = 0.0
    for v in s:
        high, low = max(0.0, high + v - k), max(0.0, low - v - k)
        top = max(top, high, low)
    return top


def alarm_cycle(s: np.ndarray, k: float, h: float) -> int | None:
    """The first cycle (1-based) at which the two-sided CUSUM of ``s`` exceeds ``h``; None if it never does."""
    high = low = 0.0
    for i, v in enumerate(s):
        high, low = max(0.0, high + v - k), max(0.0, low - v - k)
        if max(high, low) > h:
            return i + 1
    return None


def add_health_blocks(g: tg.Graph, pieces: HealthPieces, *, settings: str = "settings.value",
                      sensors: str = "sensors.value", valid: str = "valid.value", horizon: float = 400.0,
                      n_samples: int = 200, period: int = 1) -> dict[str, str]:
    """Add the health blocks to ``g``, fed from the ports ``settings``, ``sensors``, ``valid``; return port names.

    The returned dict maps ``z``, ``score``, ``detect`` (CUSUM alarm), ``d`` (filtered damage),
    ``hi``, ``rul``, ``rul_lower``, ``rul_upper`` (Monte Carlo, 5 % and 95 %), ``ood_distance`` and
    ``ood`` (the latched out-of-distribution flag) to ``"block.port"`` names. Times are in cycles.
    """
    healthy = g.add(pieces.healthy)
    score = g.add(Projection(**pieces.score, name="score"))
    detect = g.add(CUSUM(**pieces.cusum, restart="never", name="detect"))
    model = pieces.model
    ekf = g.add(EKF(model=model, estimate=("log_rate",), **pieces.filter, name="filter"))
    health = g.add(ParameterHealth(param="d", nominal=0.0, failed=pieces.d_fail, estimated=("d",), name="health"))
    mc = g.add(MonteCarloRUL(model=model, estimate=("log_rate",), variable="d", threshold=pieces.d_fail,
                             direction="above", horizon=horizon, n_samples=n_samples, period=period,
                             future_input=tuple(np.zeros(model.n_u)), seed=pieces.seed, name="mc"))
    ood = g.add(SubspaceDistance(**pieces.ood, name="ood"))
    ood.set_model(**pieces.ood_model)
    g.connect(settings, healthy.inp.settings)
    g.connect(sensors, healthy.inp.sensors)
    g.connect(valid, healthy.inp.valid)
    for sink in (score.inp.u, ekf.inp.u, ekf.inp.y, ood.inp.u):
        g.connect(healthy.out.z, sink)
    g.connect(score.out.y, detect.inp.u)
    g.connect(ekf.out.x_hat, health.inp.params)
    g.connect(ekf.out.x_hat, mc.inp.x_hat)
    g.connect(ekf.out.params, mc.inp.params)
    g.connect(ekf.out.cov, mc.inp.cov)
    return {"z": "healthy.z", "score": "score.y", "detect": "detect.alarm", "d": "filter.x_hat", "hi": "health.hi",
            "rul": "mc.rul", "rul_lower": "mc.rul_lower", "rul_upper": "mc.rul_upper", "ood_distance": "ood.distance",
            "ood": "ood.alarm"}


def right_aligned(x: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Stack units ``(T_i, F)`` into ``(T_max, B, F)`` and ``(T_max, B)`` valid masks, right-aligned (NaN-free)."""
    t_max = max(len(a) for a in x)
    out = np.zeros((t_max, len(x), x[0].shape[1]))
    valid = np.zeros((t_max, len(x)), dtype=bool)
    for b, a in enumerate(x):
        out[t_max - len(a):, b] = a
        valid[t_max - len(a):, b] = True
    return out, valid


def run_health(pieces: HealthPieces, frame: pd.DataFrame, progress: bool = False, **options) -> dict:
    """Run the health graph over every unit of ``frame`` at once; per unit the ``(T_i,)`` trajectories of each port."""
    units, settings, sensors = unit_frames(frame)
    s, valid = right_aligned(settings)
    x, _ = right_aligned(sensors)
    g = tg.Graph("health", dt=1.0)
    for name, shape in (("settings", (3,)), ("sensors", (len(SENSORS),))):
        g.add(tg.Input(name, shape=shape))
    g.add(tg.Input("valid", dtype="bool"))
    ports = add_health_blocks(g, pieces, **options)
    g.validate()
    sim = tg.Simulator(g, batch=len(units), log=list(ports.values()), progress=progress)
    hist = sim.run(inputs={"settings": s, "sensors": x, "valid": valid})
    out = {"units": units}
    for key, port in ports.items():
        values = np.asarray(hist[port]).reshape(len(valid), len(units), -1)
        out[key] = [values[valid[:, b], b].squeeze(-1) if values.shape[2] == 1 else values[valid[:, b], b]
                    for b in range(len(units))]
    return out


__all__ = ["HealthPieces", "add_health_blocks", "alarm_cycle", "degradation_subspace", "fit_health_twin", "fit_ood",
           "held_level", "run_health", "unit_residuals"]
