"""The hybrid turbofan twin on NASA C-MAPSS: healthy-behaviour residuals, health filter, data-driven RUL, fusion.

Graph (one per subset; every engine one asset of the batch, dt = 1 cycle)::

    settings, sensors, valid ─ healthy ─ z ─┬─ score/detect, filter/health/mc, ood   (health_model.py)
                                            └─ window (WindowRUL on residual windows)
    mc.rul, window.rul ─ fuse ─ rul, rul_lower, rul_upper                            (FusedRUL)

Units of different lengths run in one simulation right-aligned: a unit's first rows are fed with
``valid = False`` until its data starts, so every unit's last cycle is the last tick.
"""

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from health_model import HealthPieces, add_health_blocks, fit_health_twin, run_health, unit_frames, unit_residuals

import twingraph as tg
from blocks.health.fusion import EDGES, LEVELS, FusedRUL, fit_fusion, fit_intervals
from blocks.health.metrics import alpha_lambda, crps, interval_coverage, interval_width, phm08_score, rmse
from blocks.ml.window_rul import WindowRUL, train_window_rul

SETTINGS = ["setting_1", "setting_2", "setting_3"]
SENSORS = ["s_2", "s_3", "s_4", "s_7", "s_8", "s_9", "s_11", "s_12", "s_13", "s_14", "s_15", "s_17", "s_20", "s_21"]
CAP = 125  # the benchmark's RUL cap [cycles]: the output range
CUT_FRACTIONS = (0.25, 1.0)  # test-like truncation: cut after round(f T) cycles, f uniform in this range [-]
FIRST_CUT = 20  # shortest test-like cut [cycles] (the shortest test unit of FD001-FD003 has 21)


@dataclass
class Config:
    """Hyperparameters of the data-driven RUL (chosen by cross-validation on training units)."""

    window: int = 50
    alpha: float = 0.1
    channels: tuple = (32, 64)
    n_models: int = 4
    epochs: int = 30
    sample_fraction: float = 0.5
    low_rul_weight: float = 3.0
    train_cap: float = 135.0
    mc_samples: int = 100
    mc_period: int = 1
    seed: int = 0


def life_targets(length: int, cap: float) -> np.ndarray:
    """Piecewise-linear RUL target of a run-to-failure unit of ``length`` cycles: ``min(T - k, cap)``, k = 1..T."""
    return np.minimum(np.arange(length)[::-1], cap).astype(float)


def cut_weights(length: int) -> np.ndarray:
    """Probability of each cut ``L = 1 .. T`` of a unit of ``T`` cycles under the test-like truncation.

    ``L = clip(round(f T), FIRST_CUT, T - 1)``, ``f`` uniform on ``CUT_FRACTIONS`` (matched to the
    lengths of the test units of FD001-FD003 against their train units, not to their RUL files).
    """
    lo, hi = CUT_FRACTIONS
    grid = np.linspace(lo, hi, 2001)
    cuts = np.clip(np.round(grid * length).astype(int), min(FIRST_CUT, length - 1), length - 1)
    return np.bincount(cuts - 1, minlength=length) / len(grid)


def build_twin(pieces: HealthPieces, window: WindowRUL, fuse: FusedRUL, mc_samples: int = 100,
               mc_period: int = 1) -> tg.Graph:
    """The twin graph (see the module docstring): the health blocks of ``pieces``, ``window`` and ``fuse``."""
    g = tg.Graph("turbofan", dt=1.0)
    g.add(tg.Input("settings", shape=(len(SETTINGS),)))
    g.add(tg.Input("sensors", shape=(len(SENSORS),)))
    g.add(tg.Input("valid", dtype="bool"))
    ports = add_health_blocks(g, pieces, n_samples=mc_samples, period=mc_period)
    g.add(window)
    g.connect(ports["z"], window.inp.u)
    g.connect("valid.value", window.inp.valid)
    g.add(fuse)
    g.connect(window.out.rul, fuse.inp.rul_data)
    g.connect(ports["rul"], fuse.inp.rul_model)
    g.validate()
    return g


def load_twin(path) -> tg.Graph:
    """A twin saved by ``build_twin(...).save(path)`` (weights load as arrays; nothing in the files is executed)."""
    g = tg.load(path)
    if not all(name in g.blocks for name in ("healthy", "window", "fuse")):
        raise tg.LoadError(f"{path}: not a turbofan twin (it needs the blocks 'healthy', 'window' and 'fuse').")
    return g


def right_aligned(x: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Stack units ``(T_i, F)`` into ``(T_max, B, F)`` inputs and ``(T_max, B)`` valid masks, right-aligned."""
    t_max = max(len(a) for a in x)
    stacked = np.zeros((t_max, len(x), x[0].shape[1]))
    valid = np.zeros((t_max, len(x)), dtype=bool)
    for b, a in enumerate(x):
        stacked[t_max - len(a):, b] = a
        valid[t_max - len(a):, b] = True
    return stacked, valid


OUTPUTS = {"rul": "fuse.rul", "rul_lower": "fuse.rul_lower", "rul_upper": "fuse.rul_upper", "rul_data": "window.rul",
           "rul_model": "mc.rul", "rul_model_lower": "mc.rul_lower", "rul_model_upper": "mc.rul_upper",
           "hi": "health.hi", "alarm": "detect.alarm", "ood": "ood.alarm"}  # the ports run_twin logs


def run_twin(graph: tg.Graph, frame: pd.DataFrame, progress: bool = False) -> dict:
    """Run the twin over every unit of ``frame`` at once: units, valid mask, ``(T, B)`` histories of ``OUTPUTS``."""
    units, settings, sensors = unit_frames(frame)
    settings, valid = right_aligned(settings)
    sensors, _ = right_aligned(sensors)
    sim = tg.Simulator(graph, batch=len(units), log=list(OUTPUTS.values()), progress=progress)
    hist = sim.run(inputs={"settings": settings, "sensors": sensors, "valid": valid})
    # (T, B) even for one unit (the history drops the batch axis when batch == 1)
    result = {key: np.asarray(hist[port], dtype=float).reshape(valid.shape) for key, port in OUTPUTS.items()}
    return {"units": units, "valid": valid, "lengths": valid.sum(axis=0), **result}


def train_twin(frame: pd.DataFrame, config: Config, progress: bool = True) -> tuple[tg.Graph, dict]:
    """Fit every block on the run-to-failure rows ``frame``; return the twin and the cross-fitted training predictions.

    Steps: the health side (``health_model.fit_health_twin``: healthy behaviour on the first cycles,
    detection, damage model and filter, OOD subspace); the ``WindowRUL`` ensemble on windows of the
    residuals ``z``, cross-fitted (member m trains on every fold of units but m); the fusion weights and
    the interval offsets on the out-of-fold RUL of every training cycle beside the Monte Carlo RUL of
    the health graph run over the training units, each cycle weighted by its probability as a
    test-like cut (:func:`cut_weights`), so that each unit counts equally.
    """
    pieces = fit_health_twin(frame, seed=config.seed)
    _, z = unit_residuals(pieces.healthy, frame)
    window = WindowRUL(window=config.window, alpha=config.alpha, channels=tuple(config.channels),
                       n_models=config.n_models, cap=float(CAP), seed=config.seed, name="window")
    curves = train_window_rul(window, z, [life_targets(len(x), config.train_cap) for x in z], epochs=config.epochs,
                              low_rul_weight=config.low_rul_weight, sample_fraction=config.sample_fraction,
                              progress=progress)
    rul_model = run_health(pieces, frame, n_samples=config.mc_samples, period=config.mc_period)["rul"]
    true = np.concatenate([life_targets(len(x), CAP) for x in z])
    weight = np.concatenate([cut_weights(len(x)) for x in z])
    fuse = fit_fuse(np.concatenate(curves["oof_rul"]), np.concatenate(rul_model), true, weight)
    graph = build_twin(pieces, window, fuse, mc_samples=config.mc_samples, mc_period=config.mc_period)
    fold = np.repeat(curves["fold"], [len(x) for x in z])
    cuts = pd.DataFrame({"fold": fold, "weight": weight, "true": true, "rul_data": np.concatenate(curves["oof_rul"]),
                         "rul_model": np.concatenate(rul_model)})
    return graph, {"cuts": cuts, "config": asdict(config)}


def fit_fuse(data: np.ndarray, model: np.ndarray, true: np.ndarray, weight: np.ndarray) -> FusedRUL:
    """The ``fuse`` block fitted on cross-validated rows: fusion weights, then interval offsets of the fused RUL."""
    coef = fit_fusion(data, model, true, weight, cap=CAP)
    fused = FusedRUL(coef=coef, cap=float(CAP)).predict(data, model)
    offsets = fit_intervals(fused, true, weight, edges=EDGES, levels=LEVELS, cap=CAP)
    return FusedRUL(coef=coef, cap=float(CAP), edges=EDGES, levels=LEVELS, offsets=offsets, name="fuse")


def cross_fitted_cuts(cuts: pd.DataFrame) -> pd.DataFrame:
    """The fused RUL, interval and quantiles of every training cycle, the fusion fitted without its fold.

    ``cuts`` (from :func:`train_twin`) holds each cycle's out-of-fold ``WindowRUL`` RUL (its member did
    not train on the unit); here the fusion and interval calibration of fold ``k`` are fitted on the
    other folds too, so the scores are cross-validated end to end (except for the health model,
    fitted on every training unit). Adds columns ``rul``, ``rul_lower``, ``rul_upper``, ``q``.
    """
    cuts = cuts.copy()
    rul, q = np.zeros(len(cuts)), np.zeros((len(cuts), len(LEVELS)))
    for k in np.unique(cuts["fold"]):
        rows = (cuts["fold"] == k).to_numpy()
        other = cuts[~rows]
        fuse = fit_fuse(other["rul_data"].to_numpy(), other["rul_model"].to_numpy(), other["true"].to_numpy(),
                        other["weight"].to_numpy())
        rul[rows] = fuse.predict(cuts["rul_data"].to_numpy()[rows], cuts["rul_model"].to_numpy()[rows])
        q[rows] = fuse.quantiles(rul[rows])
    cuts["rul"], cuts["rul_lower"], cuts["rul_upper"] = rul, np.maximum(q[:, 0], 0.0), q[:, -1]
    cuts["q"] = list(q)
    return cuts


def score(pred, lower, upper, quantiles, true, per_100: bool = False) -> dict:
    """Point, interval and probabilistic metrics of last-cycle predictions against the capped true RUL."""
    true = np.minimum(np.asarray(true, float), CAP)
    pred = np.asarray(pred, float)
    n = len(true)
    return {"units": n, "rmse": rmse(pred, true),
            "phm08": phm08_score(pred, true) * (100.0 / n if per_100 else 1.0),
            "coverage": interval_coverage(lower, upper, true), "width": interval_width(lower, upper),
            "alpha_lambda": float(np.mean(alpha_lambda(pred, true, alpha=0.2))),
            "crps": float(np.mean(crps(quantiles, true)))}


def weighted_scores(cuts: pd.DataFrame) -> dict:
    """The metrics of :func:`~turbofan_twin.score` over cuts weighted by ``weight`` (a unit's weights sum to 1)."""
    w = cuts["weight"].to_numpy()
    n = float(w.sum())
    pred, true = cuts["rul"].to_numpy(), cuts["true"].to_numpy()
    lower, upper = cuts["rul_lower"].to_numpy(), cuts["rul_upper"].to_numpy()
    d = pred - true
    phm = np.where(d < 0, np.expm1(-d / 13.0), np.expm1(d / 10.0))

    def mean(values) -> float:
        return float(np.sum(w * values) / n)

    return {"units": round(n), "rmse": float(np.sqrt(mean(d**2))), "phm08": 100 * mean(phm),
            "coverage": mean((lower <= true) & (true <= upper)), "width": mean(upper - lower),
            "alpha_lambda": mean(alpha_lambda(pred, true, alpha=0.2)),
            "crps": mean(crps(np.stack(cuts["q"].to_numpy()), true))}
