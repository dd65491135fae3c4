"""Pump twin: four pumps wear out; one twin graph tracks their efficiency, raises the alarm and predicts their life.

The data are generated here (no download). Four simulated pumps (``PumpLike``)
run healthy at efficiency 1.0 until their degradation starts, each at its own
onset time, and then lose efficiency linearly, crossing the failure value 0.6
at a known time. Their motor voltage steps between 9 and 12 V every 20 s
and their flow is measured with Gaussian noise. The twin is one graph, wired
port by port and run over the four pumps as a batch::

    u [V], y [m3/s] → detect: EKF(PumpLike, efficiency, slow) → residual: Residual (ν / √S) → cusum: CUSUM
                    → track: EKF(PumpLike, efficiency, fast) → health: ParameterHealth → rul: RUL (with its band)

Two filters on the same model, because one cannot do both jobs: a filter that
follows the wear closely leaves no trace of it in its residual, and one slow
enough to leave a trace lags the wear and makes the RUL late (see
``build_twin``).

The script prints, per pump, when the degradation started and when the alarm
came, the estimated efficiency against the truth at the end, and the RUL error
(and whether the band holds the truth) at a few times after the alarm; it saves
the figure ``pump_twin.png``. Time is compressed: wear of months in minutes.

Run: ``python examples/pump_twin/run_pump_twin.py [--out DIR] [--seed N] [--pumps N] [--no-plot]``.
"""

import argparse
from pathlib import Path

import numpy as np

import twingraph as tg
from blocks.anomaly import CUSUM
from blocks.estimation import EKF, Residual
from blocks.health import RUL, ParameterHealth
from blocks.physics import PumpLike

DT = 0.25  # tick [s]
DURATION = 600.0  # simulated pump time [s]
ETA_NEW = 1.0  # efficiency of a healthy pump [-]: health 1
ETA_FAILED = 0.6  # efficiency at failure [-]: health 0
ONSET = (100.0, 150.0, 200.0, 250.0)  # when each pump's degradation starts [s]
FAILURE = (400.0, 480.0, 450.0, 640.0)  # when each pump's efficiency reaches ETA_FAILED [s]
FLOW_NOISE = 5e-6  # flow meter standard deviation [m3/s]: 0.5 % of full flow
VOLTAGE_RANGE = (9.0, 12.0)  # motor voltage levels, drawn uniformly [V]
VOLTAGE_HOLD = 20.0  # time between voltage changes [s]
Q_DETECT = 1e-7  # random-walk variance of the detecting filter's efficiency per tick [-]
Q_TRACK = 1e-5  # random-walk variance of the tracking filter's efficiency per tick [-]
CUSUM_K, CUSUM_H = 0.5, 12.0  # allowance and threshold on the normalised residual [-]
RUL_WINDOW = 100.0  # span of health history the RUL trend is fitted on [s]
REPORT_AFTER = (100.0, 150.0, 200.0)  # the RUL is reported this long after each pump's alarm [s]
LOGGED = ["track.params", "track.P", "cusum.score", "cusum.alarm", "health.hi", "rul.rul", "rul.rul_lower",
          "rul.rul_upper"]


def efficiency(t, onset, failure) -> np.ndarray:
    """The true efficiency [-], ``(len(t), pumps)``: ``ETA_NEW`` until the onset, then linear down to failure."""
    t = np.asarray(t, dtype=float)[:, None]
    onset, failure = np.asarray(onset, dtype=float), np.asarray(failure, dtype=float)
    worn = (ETA_NEW - ETA_FAILED) * np.clip(t - onset, 0.0, None) / (failure - onset)
    return ETA_NEW - worn


def true_rul(t, failure) -> np.ndarray:
    """The true remaining useful life [s], ``(len(t), pumps)``: time left until failure, 0 after it."""
    return np.maximum(np.asarray(failure, dtype=float) - np.asarray(t, dtype=float)[:, None], 0.0)


def record(onset, failure, seed: int, duration: float = DURATION) -> dict[str, np.ndarray]:
    """Simulate the pumps and their flow meters: ``u`` [V] and ``y`` [m3/s], each ``(steps, pumps, 1)``.

    The truth is ``PumpLike`` integrated tick by tick with each pump's
    efficiency of that tick; pump ``i`` draws its voltage levels and noise
    from the seed ``[seed, i]``, so its data do not depend on the fleet's size.
    """
    steps, pumps = round(duration / DT), len(onset)
    rngs = [np.random.default_rng([seed, i]) for i in range(pumps)]
    hold = round(VOLTAGE_HOLD / DT)
    levels = np.stack([rng.uniform(*VOLTAGE_RANGE, size=-(-steps // hold)) for rng in rngs], axis=1)
    volts = np.repeat(levels, hold, axis=0)[:steps, :, None]
    noise = np.stack([rng.normal(0.0, FLOW_NOISE, (steps, 1)) for rng in rngs], axis=1)
    eta = efficiency(np.arange(steps) * DT, onset, failure)
    truth = PumpLike()
    x, p = truth.initial_state(pumps), truth.batch_params(pumps)
    flow = np.empty((steps, pumps, 1))
    for k in range(steps):
        p["efficiency"] = eta[k]
        flow[k] = truth.observe(x, volts[k], p)
        x = truth.advance(x, volts[k], k * DT, DT, p)
    return {"u": volts, "y": flow + noise}


def build_twin() -> tg.Graph:
    """The twin graph, wired port by port.

    Both filters run the nominal pump (the truth's own equations, so no state
    noise) and estimate its efficiency as a random walk; they differ in how fast
    it may walk. The detecting filter's is slow (``Q_DETECT``): it learns a
    steady efficiency, but once the efficiency declines its estimate lags by
    about 5 s, the flow comes out below its prediction by about one standard
    deviation, and the CUSUM on the normalised residual adds that up to an
    alarm. The tracking filter's is fast (``Q_TRACK``): it lags the decline by
    about 1 s, so the health indicator and the RUL are nearly unbiased, but its
    residual stays white. Feeding the RUL from the slow filter instead makes it
    late by the 5 s lag, more than the width of its band.
    """
    g = tg.Graph("pump_twin", dt=DT)
    u = g.add(tg.Input("u", shape=(1,), unit="V"))
    y = g.add(tg.Input("y", shape=(1,), unit="m3/s"))
    filters = {}
    for name, q_params in (("detect", Q_DETECT), ("track", Q_TRACK)):
        ekf = filters[name] = g.add(EKF(model=PumpLike(), estimate=("efficiency",), q=0.0, q_params=q_params,
                                        r=FLOW_NOISE**2, p0=0.0, p0_params=1e-4, name=name))
        g.connect(u.out.value, ekf.inp.u)
        g.connect(y.out.value, ekf.inp.y)
    residual = g.add(Residual(name="residual"))
    cusum = g.add(CUSUM(k=CUSUM_K, h=CUSUM_H, restart="never", name="cusum"))
    health = g.add(ParameterHealth(param="efficiency", nominal=ETA_NEW, failed=ETA_FAILED, name="health"))
    rul = g.add(RUL(window=round(RUL_WINDOW / DT), threshold=0.0, model="linear", min_samples=40, armed=True,
                    name="rul"))
    g.connect(filters["detect"].out.innovation, residual.inp.innovation)
    g.connect(filters["detect"].out.S, residual.inp.S)
    g.connect(residual.out.residual, cusum.inp.u)
    g.connect(filters["track"].out.params, health.inp.params)
    g.connect(health.out.hi, rul.inp.hi)
    g.connect(cusum.out.alarm, rul.inp.alarm)  # the trend is fitted from the alarm on
    return g


def summarize(history: tg.History, onset, failure) -> list[dict]:
    """Per pump: onset and alarm times, final efficiency against truth, and the RUL against truth after the alarm.

    ``coverage`` is the fraction of ticks, from one RUL window after the alarm
    (when the window holds only the decline) until the failure, at which the
    RUL band holds the true RUL; ``rul_points`` the RUL at ``REPORT_AFTER``.
    """
    time = history.time
    steps, pumps = len(time), len(onset)
    alarm = np.reshape(history["cusum.alarm"], (steps, pumps))
    estimate = np.reshape(history["track.params"], (steps, pumps))
    truth = efficiency(time, onset, failure)
    rul_true = true_rul(time, failure)
    rul, lower, upper = (np.reshape(history[f"rul.{port}"], (steps, pumps))
                         for port in ("rul", "rul_lower", "rul_upper"))
    inside = (lower <= rul_true) & (rul_true <= upper)
    rows = []
    for i in range(pumps):
        first = np.flatnonzero(alarm[:, i])
        row = {"pump": i, "onset": onset[i], "failure": failure[i], "alarm": np.nan, "efficiency": truth[-1, i],
               "efficiency_est": estimate[-1, i], "coverage": np.nan, "rul_points": []}
        if len(first):
            row["alarm"] = time[first[0]]
            judged = (time >= row["alarm"] + RUL_WINDOW) & (rul_true[:, i] > 0)
            row["coverage"] = inside[judged, i].mean() if judged.any() else np.nan
            for after in REPORT_AFTER:
                k = first[0] + round(after / DT)
                if k < steps and rul_true[k, i] > 0:
                    row["rul_points"].append({"time": time[k], "rul_true": rul_true[k, i], "rul": rul[k, i],
                                              "inside": bool(inside[k, i])})
        rows.append(row)
    return rows


def report(rows: list[dict], now: float) -> None:
    """Print, per pump, the detection and the estimates against the truth."""
    for row in rows:
        print(f"pump {row['pump']}: degradation starts at {row['onset']:.0f} s, failure at {row['failure']:.0f} s "
              "(truth)")
        if np.isnan(row["alarm"]):
            print("  no alarm")
            continue
        print(f"  alarm at {row['alarm']:.2f} s: {row['alarm'] - row['onset']:.2f} s after the onset")
        error = (row["efficiency_est"] - row["efficiency"]) / row["efficiency"]
        print(f"  efficiency at t = {now:.2f} s: estimate {row['efficiency_est']:.4f}, truth "
              f"{row['efficiency']:.4f} ({error:+.2%})")
        for point in row["rul_points"]:
            print(f"  RUL at t = {point['time']:.0f} s ({point['time'] - row['alarm']:.0f} s after the alarm): "
                  f"{point['rul']:.1f} s, truth {point['rul_true']:.1f} s, "
                  f"error {point['rul'] - point['rul_true']:+.1f} s, "
                  f"truth {'inside' if point['inside'] else 'outside'} the 95 % band")
        print(f"  the 95 % band holds the true RUL at {row['coverage']:.0%} of the ticks from "
              f"{RUL_WINDOW:.0f} s after the alarm to the failure")


def plot(history: tg.History, onset, failure, rows: list[dict], path: Path) -> None:
    """Efficiency with ±2σ, CUSUM score with the alarms, health indicator and RUL band, each against the truth."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    time, pumps = history.time, len(onset)

    def column(port):
        return np.reshape(history[port], (len(time), pumps, -1))[:, :, 0]

    estimate = column("track.params")
    sd = np.sqrt(np.reshape(history["track.P"], (len(time), pumps, -1))[:, :, -1])  # P: the states, then η
    truth = efficiency(time, onset, failure)
    hi_true = np.clip((truth - ETA_FAILED) / (ETA_NEW - ETA_FAILED), 0.0, 1.0)
    score = column("cusum.score")
    rul, lower, upper = (column(f"rul.{port}") for port in ("rul", "rul_lower", "rul_upper"))
    rul_true = true_rul(time, failure)
    colors = plt.cm.tab10(np.arange(pumps))
    fig, axes = plt.subplots(4, 1, figsize=(10, 13), sharex=True)
    for i, row in enumerate(rows):
        color = colors[i]
        axes[0].fill_between(time, estimate[:, i] - 2 * sd[:, i], estimate[:, i] + 2 * sd[:, i], color=color,
                             alpha=0.3, lw=0)
        axes[0].plot(time, estimate[:, i], color=color, lw=1, label=f"pump {i}")
        axes[1].plot(time, score[:, i], color=color, lw=1)
        axes[1].axvline(row["onset"], color=color, ls="--", lw=1)
        axes[2].plot(time, column("health.hi")[:, i], color=color, lw=1)
        axes[3].fill_between(time, lower[:, i], upper[:, i], color=color, alpha=0.3, lw=0)
        axes[3].plot(time, rul[:, i], color=color, lw=1)
        axes[3].plot(time, rul_true[:, i], color=color, ls="--", lw=1)
        for ax in axes:
            ax.axvline(row["alarm"], color=color, lw=0.8, alpha=0.6)
    axes[0].plot(time, truth, "k--", lw=0.8)
    axes[0].axhline(ETA_FAILED, color="r", ls=":", lw=1)
    axes[0].set(ylabel="efficiency η [-]",
                title=f"efficiency: tracking EKF's estimate ±2σ (colour), truth (black dashed), failure at "
                      f"{ETA_FAILED:g} (red)")
    axes[0].legend(loc="lower left", ncol=pumps)
    axes[1].axhline(CUSUM_H, color="r", ls=":", lw=1)
    axes[1].set(ylabel="CUSUM score [-]", yscale="symlog", ylim=(0, None),
                title=f"alarm: CUSUM of the detecting EKF's normalised residual, threshold h = {CUSUM_H:g} (red);\n"
                      "degradation onset (dashed), first alarm (solid, on every panel)")
    axes[2].plot(time, hi_true, "k--", lw=0.8)
    axes[2].set(ylabel="health indicator [-]", ylim=(-0.05, 1.05),
                title="health indicator from the tracked efficiency (colour), truth (black dashed)")
    axes[3].set(xlabel="time [s]", ylabel="RUL [s]", ylim=(0, 1.1 * max(failure)),
                title="remaining useful life: twin with its 95 % band (colour), truth (dashed);\n"
                      "armed by the alarm: no RUL (inf) before it")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/pump_twin"), help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="seed of the voltages and the flow noise")
    parser.add_argument("--pumps", type=int, default=len(ONSET), choices=range(1, len(ONSET) + 1),
                        help="how many of the four pumps to run")
    parser.add_argument("--no-plot", action="store_true", help="skip the figure")
    args = parser.parse_args(argv)

    onset, failure = ONSET[: args.pumps], FAILURE[: args.pumps]
    data = record(onset, failure, args.seed)
    graph = build_twin()
    history = tg.Simulator(graph, batch=args.pumps, log=LOGGED).run(inputs=data, progress=False)
    rows = summarize(history, onset, failure)
    report(rows, history.time[-1])
    if not args.no_plot:
        args.out.mkdir(parents=True, exist_ok=True)
        plot(history, onset, failure, rows, args.out / "pump_twin.png")
        print(f"saved {args.out / 'pump_twin.png'}")
    return rows


if __name__ == "__main__":
    main()
