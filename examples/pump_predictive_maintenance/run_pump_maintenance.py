"""Pump predictive maintenance: one twin graph watches a fleet of 20 pumps and ranks them for service.

Each simulated pump (``PumpLike``) starts at its own efficiency, wears at its
own rate, and some suffer a sudden efficiency drop (impeller damage) at a
random time. Their motor voltage steps between 9 and 12 V every 20 s and their
flow is measured with Gaussian noise. The recorded fleet data then runs through
one graph, batched over the pumps and wired block by block::

    u, y → EKF (efficiency) → Residual (ν / √S) → CUSUM        fault alarm
                  params → ParameterHealth → RUL (90 %)        health, remaining life
                                           → RUL (50 %)        its quartiles

The script prints a maintenance table (pumps ranked by the lower end of their
90 % RUL interval) and the coverage of the 90 % and 50 % intervals against the
true RUL, writes the table as ``maintenance.csv``, the twin's per-tick history as
``fleet_history.csv``, a figure ``fleet.png`` (with RUL fan charts) and the graph diagram
``pump_twin.svg`` (when graphviz's ``dot`` is installed). Time is compressed
as in ``examples/online_degradation``: wear of months in ten minutes.

Run: ``python examples/pump_predictive_maintenance/run_pump_maintenance.py [--out DIR] [--seed N] [--pumps N]``.
"""

import argparse
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

import twingraph as tg
from blocks.anomaly import CUSUM
from blocks.estimation import EKF, Residual
from blocks.health import RUL, ParameterHealth
from blocks.health.metrics import interval_coverage
from blocks.physics import PumpLike

DT = 0.25  # tick [s]
DURATION = 600.0  # simulated pump time [s]
ETA_NEW = 1.0  # efficiency of a new pump [-]: health 1
ETA_FAILED = 0.6  # efficiency at failure [-]: health 0
ETA_START = (0.9, 1.0)  # range of the pumps' efficiencies at t = 0 [-]
WEAR = (1e-4, 6e-4)  # range of the wear rates [1/s]
FAULTY = 0.4  # fraction of the pumps with a sudden efficiency drop [-]
FAULT_TIME = (100.0, 400.0)  # range of the fault times [s]
FAULT_DROP = (0.05, 0.20)  # range of the relative efficiency drops [-]
FLOW_NOISE = 5e-6  # flow meter standard deviation [m3/s]: 0.5 % of full flow
VOLTAGE_RANGE = (9.0, 12.0)  # motor voltage levels, drawn uniformly [V]
VOLTAGE_HOLD = 20.0  # time between voltage changes [s]
RUL_WINDOW = 100.0  # span of health history the RUL trend is fitted on [s]
INTERVALS = {"rul": 0.9, "rul_iqr": 0.5}  # RUL block name: coverage of its band (5-95 % and 25-75 % quantiles)
SCORED_FROM = 100.0  # coverage over time is scored from the first full window on [s]
SERVICE_HORIZON = 200.0  # service is planned when the RUL band starts within this time [s]
LOGGED = ["ekf.params", "residual.residual", "cusum.score", "cusum.alarm", "health.hi", "rul.rul",
          "rul.rul_lower", "rul.rul_upper", "rul_iqr.rul_lower", "rul_iqr.rul_upper"]


def make_fleet(pumps: int, seed: int) -> pd.DataFrame:
    """The pumps' hidden truth: start efficiency, wear rate, fault time (``inf``: none) and drop."""
    rng = np.random.default_rng(seed)
    faulty = rng.permutation(pumps) < round(FAULTY * pumps)
    return pd.DataFrame({
        "pump": np.arange(pumps),
        "eta_start": rng.uniform(*ETA_START, pumps),
        "wear": rng.uniform(*WEAR, pumps),
        "fault_time": np.where(faulty, rng.uniform(*FAULT_TIME, pumps), np.inf),
        "drop": np.where(faulty, rng.uniform(*FAULT_DROP, pumps), 0.0),
    })


def efficiency(fleet: pd.DataFrame, t: np.ndarray) -> np.ndarray:
    """True efficiency [-], ``(len(t), pumps)``: linear wear, times ``1 - drop`` from the fault on."""
    t = np.asarray(t, dtype=float)[:, None]
    worn = fleet["eta_start"].to_numpy() - fleet["wear"].to_numpy() * t
    return worn * np.where(t >= fleet["fault_time"].to_numpy(), 1.0 - fleet["drop"].to_numpy(), 1.0)


def failure_time(fleet: pd.DataFrame) -> np.ndarray:
    """Time [s] at which each pump's efficiency reaches ``ETA_FAILED``, from its profile."""
    eta0, wear, fault, drop = (fleet[c].to_numpy() for c in ("eta_start", "wear", "fault_time", "drop"))
    before = (eta0 - ETA_FAILED) / wear
    after = (eta0 - ETA_FAILED / (1.0 - drop)) / wear  # the root of (eta0 - wear t) (1 - drop) = ETA_FAILED
    return np.where(before <= fault, before, np.maximum(after, fault))


def voltage_schedule(rng: np.random.Generator, steps: int) -> np.ndarray:
    """Piecewise-constant motor voltage [V], ``(steps,)``: a new uniform level every ``VOLTAGE_HOLD`` s."""
    hold = round(VOLTAGE_HOLD / DT)
    levels = rng.uniform(*VOLTAGE_RANGE, size=-(-steps // hold))
    return np.repeat(levels, hold)[:steps]


def record_fleet(fleet: pd.DataFrame, seed: int, duration: float = DURATION) -> dict[str, np.ndarray]:
    """Simulate the pumps and their flow meters: ``u`` [V] and ``y`` [m3/s], each ``(steps, pumps, 1)``."""
    steps, pumps = round(duration / DT), len(fleet)
    rng = np.random.default_rng([seed, 1])
    volts = np.stack([voltage_schedule(rng, steps) for _ in range(pumps)], axis=1)[:, :, None]
    eta = efficiency(fleet, np.arange(steps) * DT)
    truth = PumpLike()
    x, p = truth.initial_state(pumps), truth.batch_params(pumps)
    flow = np.empty((steps, pumps, 1))
    for k in range(steps):
        p["efficiency"] = eta[k]
        flow[k] = truth.observe(x, volts[k], p)
        x = truth.advance(x, volts[k], k * DT, DT, p)
    return {"u": volts, "y": flow + rng.normal(0.0, FLOW_NOISE, flow.shape)}


def build_twin() -> tg.Graph:
    """The twin graph, wired port by port.

    The EKF runs the nominal pump (the truth's own equations, so no state
    noise) with the efficiency as a random walk of variance 1e-6 per tick: it
    follows the wear with a lag of about 1.5 s, which keeps the residual's
    bias under 0.2 σ at the fastest wear, well inside the CUSUM allowance k = 1.
    Two RUL blocks fit the same line to the health indicator, one with a 90 %
    band (its 5 and 95 % quantiles), one with a 50 % band (25 and 75 %): the
    fan of the fit's Gaussian RUL distribution around its median ``rul``.
    """
    g = tg.Graph("pump_twin", dt=DT)
    u = g.add(tg.Input("u", shape=(1,), unit="V"))
    y = g.add(tg.Input("y", shape=(1,), unit="m3/s"))
    ekf = g.add(EKF(model=PumpLike(), estimate=("efficiency",), q=0.0, q_params=1e-6, r=FLOW_NOISE**2,
                    p0=0.0, p0_params=0.05**2, name="ekf"))
    residual = g.add(Residual(name="residual"))
    cusum = g.add(CUSUM(k=1.0, h=8.0, name="cusum"))
    health = g.add(ParameterHealth(param="efficiency", nominal=ETA_NEW, failed=ETA_FAILED, name="health"))
    ruls = [g.add(RUL(window=int(RUL_WINDOW / DT), threshold=0.0, model="linear", min_samples=40,
                      confidence=confidence, name=name)) for name, confidence in INTERVALS.items()]
    g.connect(u.out.value, ekf.inp.u)
    g.connect(y.out.value, ekf.inp.y)
    g.connect(ekf.out.innovation, residual.inp.innovation)
    g.connect(ekf.out.S, residual.inp.S)
    g.connect(residual.out.residual, cusum.inp.u)
    g.connect(ekf.out.params, health.inp.params)
    for rul in ruls:
        g.connect(health.out.hi, rul.inp.hi)
    return g


def run_twin(graph: tg.Graph, data: dict[str, np.ndarray], progress: bool = True) -> tg.History:
    """Run the graph over the recorded fleet data, all pumps as one batch."""
    sim = tg.Simulator(graph, batch=data["y"].shape[1], log=LOGGED)
    return sim.run(inputs=data, progress=progress)


def maintenance_table(fleet: pd.DataFrame, history: tg.History) -> pd.DataFrame:
    """Per pump at the last tick: estimates, health, RUL band, first alarm, and the truth beside them."""
    time = history.time
    pumps = len(fleet)
    alarms = np.reshape(history["cusum.alarm"], (len(time), pumps))
    first = np.where(alarms.any(axis=0), time[np.argmax(alarms, axis=0)], np.nan)
    last = {port: np.reshape(history[port][-1], pumps)
            for port in ("ekf.params", "health.hi", "rul.rul", "rul.rul_lower", "rul.rul_upper", "rul_iqr.rul_lower",
                         "rul_iqr.rul_upper")}
    now = time[-1]
    table = pd.DataFrame({
        "pump": fleet["pump"],
        "efficiency": efficiency(fleet, [now])[0],
        "efficiency_est": last["ekf.params"],
        "hi": last["health.hi"],
        "rul": last["rul.rul"],
        "rul_lower": last["rul.rul_lower"],
        "rul_upper": last["rul.rul_upper"],
        "rul_q25": last["rul_iqr.rul_lower"],
        "rul_q75": last["rul_iqr.rul_upper"],
        "rul_true": np.maximum(failure_time(fleet) - now, 0.0),
        "alarm_time": first,
        "fault_time": fleet["fault_time"].replace(np.inf, np.nan),
        "failure_time": failure_time(fleet),
    })
    table.insert(1, "action", np.select(
        [table["hi"] <= 0.0, table["rul_lower"] < SERVICE_HORIZON, table["alarm_time"].notna()],
        ["replace", "plan service", "inspect"], "ok"))
    return table.sort_values(["rul_lower", "hi"]).reset_index(drop=True)


def true_rul(fleet: pd.DataFrame, time: np.ndarray) -> np.ndarray:
    """True remaining useful life [s], ``(len(time), pumps)``: time to each pump's failure, 0 after it."""
    return np.maximum(failure_time(fleet) - np.asarray(time, dtype=float)[:, None], 0.0)


def coverage_over_time(fleet: pd.DataFrame, history: tg.History) -> dict[str, float]:
    """Coverage of each RUL block's band over the (pump, tick) pairs from ``SCORED_FROM`` to the pump's failure.

    A tick without an estimate (band ``[inf, inf]``) counts as a miss.
    """
    time = history.time
    truth = true_rul(fleet, time)
    scored = (time[:, None] >= SCORED_FROM) & (truth > 0)
    return {name: interval_coverage(*(np.reshape(history[f"{name}.{port}"], truth.shape)[scored]
                                      for port in ("rul_lower", "rul_upper")), truth[scored])
            for name in INTERVALS}


def summarize(table: pd.DataFrame) -> dict[str, float]:
    """Fleet figures: fault detection, false alarms, efficiency error and RUL error at the last tick."""
    faulty = table["fault_time"].notna()
    delay = table["alarm_time"] - table["fault_time"]
    early = table["alarm_time"].notna() & ~(table["alarm_time"] >= table["fault_time"])
    running = table["rul_true"] > 0
    error = table["rul"] - table["rul_true"]
    efficiency_error = np.abs(table["efficiency_est"] - table["efficiency"]) / table["efficiency"]
    truth = table["rul_true"][running]
    return {
        "faulty": int(faulty.sum()),
        "detected": int((faulty & (delay >= 0)).sum()),
        "delay_mean_s": float(delay[faulty].mean()),
        "delay_max_s": float(delay[faulty].max()),
        "false_alarms": int(early.sum()),
        "efficiency_error_max": float(efficiency_error.max()),
        "running": int(running.sum()),
        "rul_error_median_rel": float((error.abs() / table["rul_true"])[running].median()),
        "coverage_90": interval_coverage(table["rul_lower"][running], table["rul_upper"][running], truth),
        "coverage_50": interval_coverage(table["rul_q25"][running], table["rul_q75"][running], truth),
    }


def report(table: pd.DataFrame, summary: dict[str, float], over_time: dict[str, float], now: float) -> None:
    """Print the maintenance table, the fleet figures and the coverage of the RUL intervals."""
    print(f"maintenance table at t = {now:.2f} s (ranked by the lower end of the 90 % RUL interval; truth on the "
          "right):")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}",
                          na_rep="-"))
    print(f"faults: {summary['detected']}/{summary['faulty']} detected, delay mean {summary['delay_mean_s']:.2f} s, "
          f"max {summary['delay_max_s']:.2f} s; alarms before a fault or without one: {summary['false_alarms']}")
    print(f"efficiency: max |estimate - truth| / truth at the last tick {summary['efficiency_error_max']:.2%}")
    print(f"RUL of the {summary['running']} pumps still running: median |error| / true RUL "
          f"{summary['rul_error_median_rel']:.1%}; the 90 % interval holds the truth for {summary['coverage_90']:.0%}, "
          f"the 50 % interval for {summary['coverage_50']:.0%}")
    print(f"RUL coverage over every (pump, tick) from t = {SCORED_FROM:.0f} s to the failure: 90 % interval "
          f"{over_time['rul']:.1%}, 50 % interval {over_time['rul_iqr']:.1%}")


def plot(fleet: pd.DataFrame, history: tg.History, table: pd.DataFrame, path: Path) -> None:
    """Efficiency and health over time, alarms against faults, and the final RUL bands against the truth."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    time, pumps = history.time, len(fleet)
    colors = plt.cm.viridis(np.linspace(0, 0.9, pumps))
    fig, axes = plt.subplots(3, 2, figsize=(14, 13))
    ax = axes[0, 0]
    estimate = np.reshape(history["ekf.params"], (len(time), pumps))
    ax.set_prop_cycle(color=colors)
    ax.plot(time, estimate, lw=1)
    ax.plot(time, efficiency(fleet, time), "k--", lw=0.6)
    ax.axhline(ETA_FAILED, color="r", ls=":", lw=1)
    ax.set(xlabel="time [s]", ylabel="efficiency [-]", title="EKF estimate (colour) and truth (dashed)")
    ax = axes[0, 1]
    ax.set_prop_cycle(color=colors)
    ax.plot(time, np.reshape(history["health.hi"], (len(time), pumps)), lw=1)
    ax.set(xlabel="time [s]", ylabel="health indicator [-]", title="health indicator", ylim=(-0.05, 1.05))
    ax = axes[1, 0]
    alarms = np.reshape(history["cusum.alarm"], (len(time), pumps))
    ticks, assets = np.nonzero(alarms)
    ax.plot(time[ticks], assets, "r|", ms=6, label="CUSUM alarm")
    ax.plot(fleet["fault_time"], fleet["pump"], "kx", ms=8, label="injected fault")
    failed = failure_time(fleet)
    ax.plot(np.where(failed <= time[-1], failed, np.nan), fleet["pump"], "ks", mfc="none", label="true failure")
    ax.set(xlabel="time [s]", ylabel="pump", xlim=(0, time[-1]), title="alarms and faults", yticks=range(pumps))
    ax.legend(loc="upper right")
    ax = axes[1, 1]
    rank = np.arange(len(table))
    ax.hlines(rank, table["rul_lower"], table["rul_upper"], color="tab:blue", alpha=0.35, lw=6, label="5-95 %")
    ax.hlines(rank, table["rul_q25"], table["rul_q75"], color="tab:blue", alpha=0.8, lw=6, label="25-75 %")
    ax.plot(table["rul"], rank, "|", color="navy", ms=12, mew=2, label="median")
    ax.plot(table["rul_true"], rank, "kx", label="truth")
    ax.set(xlabel="RUL at the last tick [s]", xscale="symlog", yticks=rank, yticklabels=table["pump"],
           ylabel="pump, by maintenance priority", title="remaining useful life: the fit's distribution")
    ax.invert_yaxis()
    ax.legend(loc="upper right")
    axes[2, 0].remove()
    axes[2, 1].remove()
    ax = fig.add_subplot(3, 1, 3)
    truth = true_rul(fleet, time)
    soonest = int(np.argmin(np.where(truth[-1] > 0, truth[-1], np.inf)))  # the running pump closest to failure
    quantiles = {f"{name}.{port}": np.reshape(history[f"{name}.{port}"], (len(time), pumps))[:, soonest]
                 for name in INTERVALS for port in ("rul_lower", "rul_upper")}
    ax.fill_between(time, quantiles["rul.rul_lower"], quantiles["rul.rul_upper"], color="tab:blue", alpha=0.2, lw=0,
                    label="5-95 %")
    ax.fill_between(time, quantiles["rul_iqr.rul_lower"], quantiles["rul_iqr.rul_upper"], color="tab:blue",
                    alpha=0.4, lw=0, label="25-75 %")
    ax.plot(time, np.reshape(history["rul.rul"], (len(time), pumps))[:, soonest], color="tab:blue", lw=1,
            label="median")
    ax.plot(time, truth[:, soonest], "k--", lw=1, label="truth")
    ax.set(xlabel="time [s]", ylabel="RUL [s]", ylim=(0, 2 * truth[round(SCORED_FROM / DT), soonest]),
           title=f"RUL fan chart of pump {soonest}, the running pump closest to failure")
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/pump_predictive_maintenance"), help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fleet and its sensor noise")
    parser.add_argument("--pumps", type=int, default=20, help="fleet size")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    fleet = make_fleet(args.pumps, args.seed)
    data = record_fleet(fleet, args.seed)
    graph = build_twin()
    graph.validate()
    history = run_twin(graph, data)
    table = maintenance_table(fleet, history)
    report(table, summarize(table), coverage_over_time(fleet, history), history.time[-1])

    table.to_csv(args.out / "maintenance.csv", index=False)
    history.to_csv(args.out / "fleet_history.csv")
    plot(fleet, history, table, args.out / "fleet.png")
    saved = ["maintenance.csv", "fleet_history.csv", "fleet.png"]
    if shutil.which("dot"):
        graph.render(args.out / "pump_twin.svg")
        saved.append("pump_twin.svg")
    print(f"saved {', '.join(saved)} in {args.out}")


if __name__ == "__main__":
    main()
