"""Recover a damped oscillator's equations from time series, then run them as the physics of a twin with an EKF.

Prints the learned equations and their coefficients against the truth, the
held-out rollout error and the EKF's state error; saves ``coefficients.csv``,
``twin.csv``, ``twin.json`` (the twin graph, formulas as text) and
``symbolic_regression.png`` under ``--out``.
"""

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import twingraph as tg
from blocks.estimation import EKF
from blocks.ml import Learner, SymbolicODE, parse
from blocks.ml.symbolic import expand
from blocks.physics import MassSpringDamper

DT = 0.05
MASS, DAMPING, STIFFNESS = 1.0, 0.4, 4.0  # kg, N s/m, N/m
NOISE = 0.05  # position measurement noise sd [m]
TRUE_TERMS = {  # dx/dt = v,  dv/dt = -(k/m) x - (c/m) v + u/m
    ("dx/dt", "v"): 1.0,
    ("dv/dt", "x"): -STIFFNESS / MASS,
    ("dv/dt", "v"): -DAMPING / MASS,
    ("dv/dt", "u0"): 1.0 / MASS,
}


def recorded_data(truth, rng, trajectories=8, steps=200):
    """Trajectories from random initial states under smooth forces of random amplitude and frequency."""
    t = np.arange(steps + 1) * DT
    amplitude, omega, phase = (rng.uniform(lo, hi, trajectories) for lo, hi in ((0.0, 1.0), (0.5, 2.0), (0, 6.3)))
    u = (amplitude * np.sin(omega * t[:, None] + phase))[:, :, None]
    x = truth.rollout(rng.uniform(-2, 2, (trajectories, 2)), u[:-1], DT)
    return t, x, u


def coefficient_table(model):
    """Learned coefficient of every term beside the true one (0 for a term the truth does not have)."""
    rows = []
    for state, formula in zip(model.states, model.formulas, strict=True):
        equation = f"d{state}/dt"
        learned = {" * ".join(key) or "1": c for key, (c, _) in expand(parse(formula)).items()}
        terms = dict.fromkeys([term for (eq, term) in TRUE_TERMS if eq == equation] + list(learned))
        for term in terms:
            true = TRUE_TERMS.get((equation, term), 0.0)
            value = learned.get(term, 0.0)
            error = 100 * abs(value - true) / abs(true) if true else np.nan
            rows.append({"equation": equation, "term": term, "true": true, "learned": value, "error_percent": error})
    return pd.DataFrame(rows)


def twin_graph(model) -> tg.Graph:
    """An EKF whose process model is ``model``, fed the force ``u`` and the measured position ``y``."""
    g = tg.Graph("symbolic_twin", dt=DT)
    g.add(tg.Input("u", shape=(1,), unit="N"))
    g.add(tg.Input("y", shape=(1,)))
    g.add(EKF(model=model, q=1e-6, r=NOISE**2, p0=1.0, x0=[0.0, 0.0], name="ekf"))
    g.connect("u.value", "ekf.u")
    g.connect("y.value", "ekf.y")
    return g



def main(out: Path, generations: int, population: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    truth = MassSpringDamper(mass=MASS, damping=DAMPING, stiffness=STIFFNESS)
    t, x, u = recorded_data(truth, rng)

    start = time.perf_counter()
    learner = Learner(method="symbolic", train_options={"generations": generations, "population_size": population})
    learned = learner.learn(data=(t, x, u), states=("x", "v"), name="learned")
    print(f"search and refit: {time.perf_counter() - start:.1f} s")
    print("gplearn programs:", *learner.history_["programs"], sep="\n  ")
    print("learned equations:", *learned.equations(), sep="\n  ")
    table = coefficient_table(learned)
    table.to_csv(out / "coefficients.csv", index=False)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))

    held = 400  # 20 s held out: a new initial state and a force not seen in training
    u_test = (0.8 * np.sin(0.7 * np.arange(held + 1) * DT))[:, None, None]
    x0 = np.array([[1.5, -0.5]])
    reference = truth.rollout(x0, u_test[:-1], DT)[:, 0]
    rollout = learned.rollout(x0, u_test[:-1], DT)[:, 0]
    error = 100 * np.sqrt(((rollout - reference) ** 2).mean(axis=0)) / np.ptp(reference, axis=0)
    print(f"held-out 20 s rollout RMSE [% of range] (x, v): {np.round(error, 3)}")

    twin_model = SymbolicODE(states=learned.states, formulas=learned.formulas, input_names=learned.input_names,
                             outputs=("x",), name="physics")  # the learned text, measuring the position only
    y = reference[:, :1] + rng.normal(scale=NOISE, size=(held + 1, 1))
    inputs = {"u": u_test, "y": y}
    twin = twin_graph(twin_model)
    twin.save(out / "twin.json")
    estimate = tg.Simulator(tg.load(out / "twin.json")).run(inputs=inputs)["ekf.x_hat"]
    baseline = tg.Simulator(twin_graph(MassSpringDamper(mass=MASS, damping=DAMPING, stiffness=STIFFNESS))).run(
        inputs=inputs)["ekf.x_hat"]
    settled = slice(50, None)  # after 2.5 s

    def rmse(a):
        return np.sqrt(((a[settled] - reference[settled]) ** 2).mean(axis=0))

    print(f"EKF on the learned equations, state RMSE after 2.5 s (x, v): {np.round(rmse(estimate), 4)} "
          f"(position noise sd {NOISE}; velocity never measured)")
    print(f"EKF on the true physics,      state RMSE after 2.5 s (x, v): {np.round(rmse(baseline), 4)}")

    time_axis = np.arange(held + 1) * DT
    pd.DataFrame({
        "time": time_axis, "u": u_test[:, 0, 0], "x_true": reference[:, 0], "v_true": reference[:, 1],
        "y_measured": y[:, 0], "x_rollout": rollout[:, 0], "v_rollout": rollout[:, 1],
        "x_hat": estimate[:, 0], "v_hat": estimate[:, 1], "x_hat_physics": baseline[:, 0],
        "v_hat_physics": baseline[:, 1],
    }).to_csv(out / "twin.csv", index=False)

    fig, axes = plt.subplots(3, 1, sharex=True, figsize=(9, 8))
    axes[0].plot(time_axis, reference[:, 0], "k", label="truth")
    axes[0].plot(time_axis, rollout[:, 0], "--", label="learned equations (open loop)")
    axes[0].set_ylabel("position x [m]")
    axes[0].set_title("\n".join(learned.equations()), fontsize=9)
    axes[1].plot(time_axis, y[:, 0], ".", ms=2, color="0.6", label="measured")
    axes[1].plot(time_axis, reference[:, 0], "k", label="truth")
    axes[1].plot(time_axis, estimate[:, 0], label="EKF on learned equations")
    axes[1].set_ylabel("position x [m]")
    axes[2].plot(time_axis, reference[:, 1], "k", label="truth")
    axes[2].plot(time_axis, estimate[:, 1], label="EKF on learned equations (not measured)")
    axes[2].set_ylabel("velocity v [m/s]")
    axes[2].set_xlabel("time [s]")
    for ax in axes:
        ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "symbolic_regression.png", dpi=120)
    print(f"saved {out / 'symbolic_regression.png'}, {out / 'coefficients.csv'}, {out / 'twin.csv'}, "
          f"{out / 'twin.json'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("out/symbolic_regression"))
    parser.add_argument("--generations", type=int, default=10, help="gplearn generations per state")
    parser.add_argument("--population", type=int, default=500, help="gplearn population size")
    args = parser.parse_args()
    main(args.out, args.generations, args.population)
