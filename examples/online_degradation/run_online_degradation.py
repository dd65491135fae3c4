"""Online degradation: a pump twin, fed one (u, y) sample at a time, meets a 20 % efficiency fault.

The truth is a ``PumpLike`` pump whose hydraulic efficiency wears slowly,
drops by 20 % at ``t0`` (impeller damage) and then wears five times faster
until it reaches the failure value 0.6. Its flow is measured with Gaussian
noise while the motor voltage steps between 9 and 12 V every 20 s. A
:class:`~blocks.TwinSystem` (EKF estimating the efficiency, normalised
residual into a CUSUM, efficiency into ParameterHealth into a window RUL)
is stepped one sample at a time, ten seeds at once as a
batch of ten assets. Its graph is extended with the prognosis hand-off::

    CUSUM alarm → gate: the flow from 3 s after the alarm on → prognosis: EKF on
    WearingPump (efficiency a state falling at the rate `wear`, estimated)
    → x_hat, params, cov → MonteCarloRUL (armed when the gate opens)

so that the remaining useful life comes as a distribution: samples of the
filter's posterior of efficiency and wear rate, propagated to the failure
efficiency. The script prints the acceptance numbers, the coverage of the
nominal 90 % intervals against the true RUL, their mean width, the CRPS and
the α-λ accuracy, and writes ``ticks.csv`` (one row per tick and seed) and
``online_degradation.png`` (with the RUL fan chart).

Time is compressed: the wear of months happens in ten minutes of pump time so
that the example runs in seconds. On a real clock the wear per tick is far
smaller, which only eases the filter's task (its random walk can be slowed).

Run: ``python examples/online_degradation/run_online_degradation.py [--out DIR] [--seed N] [--seeds N]``.
"""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from blocks import TwinSystem
from blocks.anomaly import CUSUM
from blocks.estimation import EKF
from blocks.health import RUL, MonteCarloRUL, ParameterHealth
from blocks.health.metrics import alpha_lambda, crps, interval_coverage, interval_width
from blocks.physics import FunctionODE, PumpLike
from twingraph import Block, Context, Signal
from twingraph.errors import check_number

DT = 0.25  # tick [s]
DURATION = 640.0  # simulated pump time [s]
T0 = 250.0  # fault time t0 [s]
ETA_NEW = 1.0  # efficiency when new [-]
ETA_FAILED = 0.6  # efficiency at failure [-]: health 0
WEAR_BEFORE = 1e-4  # efficiency lost per second before t0 [1/s]
DROP = 0.20  # relative efficiency drop at t0 [-]
WEAR_AFTER = 5e-4  # efficiency lost per second after t0 [1/s]
FLOW_NOISE = 5e-6  # flow meter standard deviation [m3/s]: 0.005 L/s, 0.5 % of full flow
VOLTAGE_RANGE = (9.0, 12.0)  # motor voltage levels, drawn uniformly [V]
VOLTAGE_HOLD = 20.0  # time between voltage changes [s]
TOLERANCE = 0.02  # acceptance: |estimated - true| / true efficiency after settling [-]
SETTLE_BY = 60.0  # the efficiency error is judged from t0 + SETTLE_BY on [s]
RUL_POINTS = (150.0, 100.0, 50.0)  # true RUL at which the RUL error is reported [s]
RUL_WINDOW = 100.0  # span of health history the RUL trend is fitted on [s]
CUSUM_K, CUSUM_H = 1.0, 8.0  # allowance and threshold on the normalised residual [-]
RESIDUAL_PORT = "normalized.residual"  # the normalised residual ν / √S that TwinSystem feeds the CUSUM
PROGNOSIS_DELAY = 3.0  # the prognosis filter takes the flow from this long after the alarm on [s]: 6 τ_q
WEAR_PRIOR = (1e-4, 1e-3)  # prognosis filter's prior wear rate: mean and standard deviation [1/s]
EFFICIENCY_PRIOR_VAR = 1e-2  # its prior variance of the efficiency at t = 0 [-]
Q_PROGNOSIS = (0.0, 0.0, 0.0)  # its process noise per tick on (ω, q, η) [state unit²]: the simulated wear is a line
N_SAMPLES = 200  # posterior samples propagated per prediction
PREDICT_EVERY = 1.0  # time between Monte Carlo predictions [s]; in between, the last one is aged
PREDICTION_STEP = 5.0  # step of the propagation [s]: the efficiency is linear in time, any step is exact
HORIZON = 2000.0  # a sample that has not failed by then is censored (RUL inf) [s]
FAN = (0.05, 0.25, 0.5, 0.75, 0.95)  # quantile levels of the fan chart; 5-95 % is the nominal 90 % interval
ALPHA = 0.2  # half-width of the α-λ accuracy cone, relative to the true RUL


def efficiency(t: np.ndarray) -> np.ndarray:
    """The injected efficiency profile [-] at times ``t`` [s]: linear wear, a 20 % drop at t0, faster wear."""
    t = np.asarray(t, dtype=float)
    before = ETA_NEW - WEAR_BEFORE * t
    after = (1 - DROP) * (ETA_NEW - WEAR_BEFORE * T0) - WEAR_AFTER * (t - T0)
    return np.where(t < T0, before, after)


def failure_time() -> float:
    """Time [s] at which the efficiency reaches ``ETA_FAILED``, from the profile (the fault makes it > t0)."""
    return T0 + ((1 - DROP) * (ETA_NEW - WEAR_BEFORE * T0) - ETA_FAILED) / WEAR_AFTER


def true_rul(t: np.ndarray) -> np.ndarray:
    """The true remaining useful life [s] at times ``t`` [s]."""
    return np.maximum(failure_time() - np.asarray(t, dtype=float), 0.0)


class WearingPump(PumpLike):
    """``PumpLike`` whose efficiency is a state, falling at the rate ``wear`` [1/s]: ``η̇ = -wear``.

    States ``(ω, q, η)``; the other parameters and equations are ``PumpLike``'s.
    A filter estimating ``wear`` (augmented as a parameter) learns the
    efficiency and its trend together: the posterior a prediction samples.
    """

    states = ("omega", "q", "efficiency")
    state_units = ("rad/s", "m3/s", "")
    parameters = ("wear", *PumpLike.parameters[1:])

    def __init__(self, wear=0.0, x0=(0.0, 0.0, ETA_NEW), **kwargs):
        super().__init__(x0=x0, **kwargs)
        self.wear = wear

    def derivative(self, x, u, t, p):
        dx = np.empty_like(x)
        dx[:, :2] = super().derivative(x[:, :2], u, t, {**p, "efficiency": x[:, 2]})
        dx[:, 2] = -p["wear"]
        return dx

    def observe(self, x, u, p):
        return x[:, 1:2]

    def jacobian(self, x, u, t, p):
        jac = np.zeros((len(x), 3, 3))
        jac[:, :2, :2] = super().jacobian(x[:, :2], u, t, {**p, "efficiency": x[:, 2]})
        jac[:, 1, 2] = p["flow_coefficient"] * x[:, 0] / p["flow_time_constant"]  # ∂q̇/∂η
        return jac


def efficiency_drift() -> FunctionODE:
    """The prediction model: ``WearingPump``'s states and ``wear``, with only ``η̇ = -wear`` propagated.

    The efficiency's path does not depend on the speed or the flow, so the
    prediction holds them (their derivative 0) instead of integrating the
    motor at a fraction of a second; Euler is exact for a constant rate.
    """

    def drift(x, u, t, p):
        dx = np.zeros_like(x)
        dx[:, 2] = -p["wear"]
        return dx

    return FunctionODE(drift, states=WearingPump.states, params={"wear": WEAR_PRIOR[0]}, integrator="euler")


class AfterAlarm(Block):
    """The detection → prognosis gate: a measurement passed on from ``delay`` ticks after an asset's first alarm.

    Parameters
    ----------
    delay : int
        Ticks from the alarm to the first measurement passed on, >= 0.
    name : str or None
        Block name.

    Ports
    -----
    y (in) : measurement, any shape.
    alarm (in) : a detector's alarm, bool, any shape (any element alarms).
    y (out) : ``y`` from ``delay`` ticks after the first alarm on; NaN (missing) before.
    ready (out) : bool, shape ``()``: ``y`` is passed on (latched).
    """

    inputs = {"y": Signal(), "alarm": Signal(dtype="bool")}

    def __init__(self, delay=0, *, name=None):
        super().__init__(name=name)
        self.delay = delay

    def check_params(self) -> None:
        check_number(self, "delay", 0, integer=True, unit="ticks")

    def output_signals(self, inputs):
        self.check_params()
        return {"y": inputs["y"], "ready": Signal(shape=(), dtype="bool", unit="")}

    def reset(self, ctx: Context) -> None:
        self.since_ = np.full(ctx.batch, -1)  # ticks since the first alarm; -1: none yet

    def output(self, t, inp, out):
        alarm = inp.alarm.reshape(len(inp.alarm), -1).any(1)
        self._since = np.where(self.since_ >= 0, self.since_ + 1, np.where(alarm, 0, -1))
        ready = self._since >= self.delay
        out.ready[...] = ready
        out.y[...] = np.where(ready.reshape(-1, *[1] * (inp.y.ndim - 1)), inp.y, np.nan)

    def update(self, t, inp):
        self.since_[...] = self._since


def build_twin(batch: int) -> TwinSystem:
    """The twin: EKF on the nominal pump, CUSUM on its residual, health, window RUL, and the prognosis hand-off.

    The monitoring EKF's model is the truth's own equations, so the state has
    no process noise; the efficiency is a random walk of variance 1e-7 per
    tick. Its steady-state gain K ≈ 0.05 makes the estimate lag the wear by
    about ``dt (1 - K) / K ≈ 5 s`` (0.0026 at 5e-4 /s) with a scatter of sd
    0.001. The window RUL fits a line to the health indicator of the last
    ``RUL_WINDOW``, for comparison. (Arming it with the alarm would restart the
    window on this EKF's 13 s transient after the step, which reads as a steep
    wear: 10-120 s of RUL for a window length where the truth is 250-360 s.)

    The graph is then extended (``twin.graph`` is an ordinary graph): the gate
    passes the flow from ``PROGNOSIS_DELAY`` after the alarm on to a second
    EKF on :class:`WearingPump` (efficiency and wear rate, wide priors, no
    process noise), which until then only predicts. It thus learns the
    efficiency and wear rate of the faulty pump from the faulty pump's data
    alone. The delay is six flow time constants τ_q: the flow at the alarm
    still carries the efficiency before the step, which a model without a
    jump would read as a steep wear; after 6 τ_q, e^-6 = 0.25 % of the step
    is left. ``MonteCarloRUL``, armed when the gate opens, samples that
    filter's Gaussian posterior (``x_hat``, ``params``, ``cov``) every
    ``PREDICT_EVERY`` and propagates each sample to the failure efficiency.
    The process noise of the prediction is the filter's, per second
    (``q / dt``). The history keeps the normalised residual, the RUL samples
    and the prognosis filter's estimates of the whole run.
    """
    ekf = EKF(estimate=("efficiency",), q=0.0, q_params=1e-7, r=FLOW_NOISE**2, p0=0.0, p0_params=1e-4)
    twin = TwinSystem(
        physics=PumpLike(),
        estimator=ekf,
        anomaly=CUSUM(k=CUSUM_K, h=CUSUM_H),
        health=ParameterHealth(param="efficiency", nominal=ETA_NEW, failed=ETA_FAILED),
        rul=RUL(window=round(RUL_WINDOW / DT), threshold=0.0, model="linear", min_samples=40),
        dt=DT,
        batch=batch,
        log=[RESIDUAL_PORT, "gate.ready", "prognosis.x_hat", "prognosis.params", "mc.rul_samples"],
        max_len=None,
    )
    g = twin.graph
    g.add(AfterAlarm(delay=round(PROGNOSIS_DELAY / DT), name="gate"))
    g.add(EKF(model=WearingPump(wear=WEAR_PRIOR[0]), estimate=("wear",), q=Q_PROGNOSIS, q_params=0.0,
              r=FLOW_NOISE**2, p0=[0.0, 0.0, EFFICIENCY_PRIOR_VAR], p0_params=WEAR_PRIOR[1] ** 2, name="prognosis"))
    g.add(MonteCarloRUL(model=efficiency_drift(), estimate=("wear",), variable="efficiency", threshold=ETA_FAILED,
                        horizon=HORIZON, dt=PREDICTION_STEP, n_samples=N_SAMPLES, period=round(PREDICT_EVERY / DT),
                        process_noise=np.divide(Q_PROGNOSIS, DT), quantiles=(FAN[0], FAN[-1]), armed=True,
                        name="mc"))
    for source, target in (("y.value", "gate.y"), ("anomaly.alarm", "gate.alarm"), ("u.value", "prognosis.u"),
                           ("gate.y", "prognosis.y"), ("prognosis.x_hat", "mc.x_hat"),
                           ("prognosis.params", "mc.params"), ("prognosis.cov", "mc.cov"), ("gate.ready", "mc.alarm")):
        g.connect(source, target)
    return twin


def voltage_schedule(rng: np.random.Generator, steps: int) -> np.ndarray:
    """Piecewise-constant motor voltage [V], ``(steps,)``: a new uniform level every ``VOLTAGE_HOLD`` s."""
    hold = round(VOLTAGE_HOLD / DT)
    levels = rng.uniform(*VOLTAGE_RANGE, size=-(-steps // hold))
    return np.repeat(levels, hold)[:steps]


def simulate(seeds: list[int], duration: float = DURATION, progress: bool = True) -> tuple[pd.DataFrame, np.ndarray]:
    """Stream the truth pumps of ``seeds`` through one batched twin, tick by tick.

    Each seed draws its own voltage schedule and flow noise, so a seed's run does
    not depend on the others in the batch. Returns one row per seed and tick,
    and the Monte Carlo RUL samples ``(ticks, seeds, N_SAMPLES)`` [s] (``inf``
    before the first prediction and for a sample that does not fail within
    ``HORIZON``).
    """
    steps, batch = round(duration / DT), len(seeds)
    time = np.arange(steps) * DT
    eta = efficiency(time)
    rngs = [np.random.default_rng(seed) for seed in seeds]
    volts = np.stack([voltage_schedule(rng, steps) for rng in rngs], axis=1)
    noise = np.stack([rng.normal(0.0, FLOW_NOISE, steps) for rng in rngs], axis=1)

    twin = build_twin(batch)
    twin.initialize()
    truth = PumpLike()
    x, p = truth.initial_state(batch), truth.batch_params(batch)
    names = ("flow", "efficiency_est", "efficiency_sd", "cusum_score", "hi", "window_rul", "window_rul_lower",
             "window_rul_upper")
    logged = {name: np.empty((steps, batch)) for name in names}
    alarm = np.zeros((steps, batch), dtype=bool)
    for k in tqdm(range(steps), desc="ticks", disable=not progress):
        u = volts[k, :, None]
        p["efficiency"] = np.full(batch, eta[k])
        y = truth.observe(x, u, p) + noise[k, :, None]
        result = twin.step(u=u, measurement=y)
        logged["flow"][k] = y[:, 0]
        for name, value in (("efficiency_est", result.params), ("efficiency_sd", result.params_std),
                            ("cusum_score", result.anomaly), ("hi", result.health_indicator),
                            ("window_rul", result.rul), ("window_rul_lower", result.rul_lower),
                            ("window_rul_upper", result.rul_upper)):
            logged[name][k] = np.reshape(value, batch)
        alarm[k] = np.reshape(result.alarm, batch)
        x = truth.advance(x, u, time[k], DT, p)

    history = twin.history
    samples = np.reshape(history["mc.rul_samples"], (steps, batch, N_SAMPLES))
    fan = np.quantile(samples, FAN, axis=-1, method="inverted_cdf")  # as MonteCarloRUL's own quantiles
    columns = {
        "voltage": volts,
        "flow": logged["flow"],
        "efficiency_true": eta[:, None],
        "efficiency_est": logged["efficiency_est"],
        "efficiency_sd": logged["efficiency_sd"],
        "residual": np.reshape(history[RESIDUAL_PORT], (steps, batch)),
        "cusum_score": logged["cusum_score"],
        "alarm": alarm,
        "hi": logged["hi"],
        "hi_true": np.clip((eta[:, None] - ETA_FAILED) / (ETA_NEW - ETA_FAILED), 0.0, 1.0),
        "window_rul": logged["window_rul"],
        "window_rul_lower": logged["window_rul_lower"],
        "window_rul_upper": logged["window_rul_upper"],
        "prognosis_ready": np.reshape(history["gate.ready"], (steps, batch)),
        "prognosis_efficiency": np.reshape(history["prognosis.x_hat"], (steps, batch, 3))[:, :, 2],
        "prognosis_wear": np.reshape(history["prognosis.params"], (steps, batch)),
        **{f"rul_q{round(100 * level):02d}": values for level, values in zip(FAN, fan, strict=True)},
        "rul_true": true_rul(time)[:, None],
    }
    frame = pd.DataFrame({"seed": np.repeat(seeds, steps), "time": np.tile(time, batch)})
    for name, values in columns.items():
        frame[name] = np.broadcast_to(values, (steps, batch)).ravel(order="F")
    return frame, samples


def after_alarm(frame: pd.DataFrame) -> np.ndarray:
    """Rows of ``frame`` judged for the RUL: from each seed's first alarm at or after t0 until the true failure."""
    first = frame[frame["alarm"] & (frame["time"] >= T0)].groupby("seed")["time"].min()
    return ((frame["time"] >= frame["seed"].map(first)) & (frame["rul_true"] > 0)).to_numpy()


def rul_scores(frame: pd.DataFrame, samples: np.ndarray | None = None) -> dict[str, float]:
    """Scores of the Monte Carlo RUL over the (seed, tick) pairs from the alarm to the failure.

    Coverage and mean width of the nominal 90 % interval (5-95 % quantiles),
    α-λ accuracy of the median (α = ``ALPHA``), and, given the samples
    ``(ticks, seeds, n)`` in the frame's seed order, the mean CRPS (samples
    censored at the horizon counted at the horizon). Ticks between the alarm
    and the first prediction (``PROGNOSIS_DELAY``) count, with their
    interval ``[inf, inf]``: misses.
    """
    judged = after_alarm(frame)
    rows = frame[judged]
    lower, upper, median, truth = (rows[c].to_numpy() for c in ("rul_q05", "rul_q95", "rul_q50", "rul_true"))
    finite = np.isfinite(upper)
    scores = {
        "pairs": int(judged.sum()),
        "coverage": interval_coverage(lower, upper, truth),
        "width_mean": interval_width(lower[finite], upper[finite]),
        "finite_share": float(finite.mean()),
        "alpha_lambda": float(alpha_lambda(median, truth, alpha=ALPHA).mean()),
    }
    per_seed = [interval_coverage(*(run[c] for c in ("rul_q05", "rul_q95", "rul_true")))
                for _, run in rows.groupby("seed")]
    scores["coverage_min_seed"], scores["coverage_max_seed"] = min(per_seed), max(per_seed)
    if samples is not None:
        seed, tick = np.divmod(np.flatnonzero(judged), samples.shape[0])  # the frame is seed-major
        predicted = np.isfinite(samples[tick, seed]).any(-1)
        censored = np.minimum(samples[tick, seed][predicted], HORIZON)
        scores["crps_mean"] = float(crps(censored, truth[predicted]).mean())
    return scores


def summarize(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The acceptance numbers: per seed (detection, false alarms, efficiency error) and per seed and RUL point."""
    seeds, ruls = [], []
    for seed, run in frame.groupby("seed", sort=False):
        t = run["time"].to_numpy()
        truth = run["efficiency_true"].to_numpy()
        error = np.abs(run["efficiency_est"].to_numpy() - truth) / truth
        after = t >= T0
        unsettled = np.flatnonzero(after & (error > TOLERANCE))
        alarms = run["alarm"].to_numpy()
        detected = np.flatnonzero(after & alarms)
        delay = t[detected[0]] - T0 if len(detected) else np.nan
        seeds.append({
            "seed": seed,
            "false_alarms": int(alarms[~after].sum()),
            "max_score_before_t0": run["cusum_score"].to_numpy()[~after].max(),
            "delay_s": delay,
            "delay_ticks": delay / DT,
            "settling_s": t[unsettled[-1]] + DT - T0 if len(unsettled) else 0.0,
            "max_error_settled": error[t >= T0 + SETTLE_BY].max(),
        })
        for remaining in RUL_POINTS:
            k = int(np.argmin(np.abs(t - (failure_time() - remaining))))
            row = run.iloc[k]
            ruls.append({
                "seed": seed, "time": t[k], "rul_true": row["rul_true"], "rul": row["rul_q50"],
                "error": row["rul_q50"] - row["rul_true"],
                "in_interval": bool(row["rul_q05"] <= row["rul_true"] <= row["rul_q95"]),
                "window_error": row["window_rul"] - row["rul_true"],
                "window_in_band": bool(row["window_rul_lower"] <= row["rul_true"] <= row["window_rul_upper"]),
            })
    return pd.DataFrame(seeds), pd.DataFrame(ruls)


def report(per_seed: pd.DataFrame, rul: pd.DataFrame, scores: dict[str, float]) -> None:
    """Print the per-seed table, the acceptance numbers and the RUL scores."""
    n = len(per_seed)
    print(per_seed.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"efficiency: within {TOLERANCE:.0%} of truth {per_seed['settling_s'].max():.2f} s after t0 at the latest "
          f"(mean {per_seed['settling_s'].mean():.2f} s); max |error| / truth from t0 + {SETTLE_BY:.0f} s on: "
          f"{per_seed['max_error_settled'].max():.2%}")
    print(f"detection delay: mean {per_seed['delay_s'].mean():.2f} s ({per_seed['delay_ticks'].mean():.1f} ticks), "
          f"max {per_seed['delay_s'].max():.2f} s ({per_seed['delay_ticks'].max():.0f} ticks); "
          f"detected in {per_seed['delay_s'].notna().sum()}/{n} seeds")
    print(f"false alarms before t0 = {T0:.0f} s: {per_seed['false_alarms'].sum()} alarm ticks over {n} seeds "
          f"x {round(T0 / DT)} ticks; largest CUSUM score before t0 {per_seed['max_score_before_t0'].max():.2f} "
          f"(threshold h = {CUSUM_H:g})")
    for time, group in rul.groupby("time"):
        sd = group["error"].std(ddof=1) if n > 1 else 0.0
        print(f"RUL at t = {time:.1f} s (true RUL {group['rul_true'].iloc[0]:.0f} s): Monte Carlo median error mean "
              f"{group['error'].mean():+.1f} s, sd {sd:.1f} s, max |error| {group['error'].abs().max():.1f} s, "
              f"90 % interval holds the truth in {group['in_interval'].sum()}/{n} seeds; window fit error mean "
              f"{group['window_error'].mean():+.1f} s, its 95 % band holds it in {group['window_in_band'].sum()}/{n}")
    print(f"Monte Carlo RUL over {scores['pairs']} (seed, tick) pairs from the alarm to the failure: nominal 90 % "
          f"interval coverage {scores['coverage']:.1%} (per seed {scores['coverage_min_seed']:.1%} to "
          f"{scores['coverage_max_seed']:.1%}), mean width {scores['width_mean']:.1f} s (over the "
          f"{scores['finite_share']:.1%} with a finite upper end), mean CRPS {scores['crps_mean']:.2f} s, "
          f"alpha-lambda accuracy (alpha = {ALPHA:g}) of the median {scores['alpha_lambda']:.1%}")


def plot(frame: pd.DataFrame, path: Path) -> None:
    """Efficiency with its ±2σ band, CUSUM score and alarms, health, and the RUL fan chart, for the first seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = frame[frame["seed"] == frame["seed"].iloc[0]]
    t = run["time"]
    fig, axes = plt.subplots(5, 1, figsize=(10, 14), sharex=True)
    ax = axes[0]
    sd = 2 * run["efficiency_sd"]
    ax.fill_between(t, run["efficiency_est"] - sd, run["efficiency_est"] + sd, alpha=0.3, label="EKF ±2σ")
    ax.plot(t, run["efficiency_est"], lw=1, label="EKF estimate")
    ax.plot(t, run["prognosis_efficiency"].where(run["prognosis_ready"]), lw=1, label="prognosis filter")
    ax.plot(t, run["efficiency_true"], "k--", lw=1, label="truth")
    ax.set(ylabel="efficiency [-]", title=f"seed {run['seed'].iloc[0]}: a 20 % efficiency drop at t0 = {T0:.0f} s")
    ax.legend(loc="lower left")
    ax = axes[1]
    error = (run["efficiency_est"] - run["efficiency_true"]) / run["efficiency_true"]
    ax.fill_between(t, error - sd / run["efficiency_true"], error + sd / run["efficiency_true"], alpha=0.3,
                    label="±2σ")
    ax.plot(t, error, lw=1, label="(estimate - truth) / truth")
    for level in (-TOLERANCE, TOLERANCE):
        ax.axhline(level, color="r", ls=":", lw=1)
    ax.set(ylabel="efficiency error [-]", ylim=(-2.5 * TOLERANCE, 2.5 * TOLERANCE))
    ax.legend(loc="lower left")
    ax = axes[2]
    ax.plot(t, run["cusum_score"], lw=1, label="CUSUM score")
    ax.axhline(CUSUM_H, color="r", ls=":", lw=1, label="threshold h")
    alarms = run[run["alarm"]]
    ax.plot(alarms["time"], alarms["cusum_score"], "rv", ms=4, label="alarm")
    ax.set(ylabel="score [-]", yscale="symlog")
    ax.legend(loc="upper left")
    ax = axes[3]
    ax.plot(t, run["hi"], lw=1, label="twin")
    ax.plot(t, run["hi_true"], "k--", lw=1, label="truth")
    ax.set(ylabel="health indicator [-]", ylim=(-0.05, 1.05))
    ax.legend(loc="lower left")
    ax = axes[4]
    fan_chart(ax, t, run)
    ax.plot(t, run["window_rul"], color="tab:orange", lw=1, ls="-.", label="window fit")
    ax.set(xlabel="time [s]", ylabel="RUL [s]", ylim=(0, 1.5 * true_rul(T0)))
    ax.legend(loc="upper right")
    for ax in axes:
        ax.axvline(T0, color="grey", lw=1)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fan_chart(ax, t, run: pd.DataFrame) -> None:
    """The RUL distribution over time: 5-95 % and 25-75 % bands, the median, and the true RUL."""
    ax.fill_between(t, run["rul_q05"], run["rul_q95"], color="tab:blue", alpha=0.2, lw=0, label="5-95 %")
    ax.fill_between(t, run["rul_q25"], run["rul_q75"], color="tab:blue", alpha=0.4, lw=0, label="25-75 %")
    ax.plot(t, run["rul_q50"], color="tab:blue", lw=1, label="median")
    ax.plot(t, run["rul_true"], "k--", lw=1, label="truth")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/online_degradation"), help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument("--seeds", type=int, default=10, help="number of seeds, run as one batch")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    frame, samples = simulate(list(range(args.seed, args.seed + args.seeds)))
    per_seed, rul = summarize(frame)
    report(per_seed, rul, rul_scores(frame, samples))
    csv, png = args.out / "ticks.csv", args.out / "online_degradation.png"
    frame.to_csv(csv, index=False, float_format="%.7g")
    plot(frame, png)
    print(f"saved {csv} and {png}")


if __name__ == "__main__":
    main()
