"""Learn a damped oscillator three ways (neural ODE, neural dynamics, residual on wrong physics), track it with an EKF.

Prints the acceptance numbers and saves ``trajectories.png`` under ``--out``.
"""

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

import twingraph as tg
from blocks.estimation import EKF
from blocks.ml import (
    NeuralDynamics,
    NeuralODE,
    TorchResidual,
    prepare_dynamics_data,
    prepare_ode_data_from_timeseries,
    train_dynamics,
    train_neural_ode,
    train_neural_ode_trajectory,
    train_residual,
)
from blocks.physics import MassSpringDamper

DT = 0.05


def percent_of_range(estimate, truth):
    return 100 * np.sqrt(((estimate - truth) ** 2).mean(axis=0)) / (truth.max(axis=0) - truth.min(axis=0))


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)  # networks this small train several times faster on one thread than on many
    rng = np.random.default_rng(0)
    truth = MassSpringDamper(mass=1.0, damping=0.4, stiffness=4.0)
    wrong = MassSpringDamper(mass=1.0, damping=0.05, stiffness=4.0)
    steps, batch = 201, 16
    t = np.arange(steps) * DT
    u_free = np.zeros((steps, batch, 1))
    x_free = truth.rollout(rng.uniform(-2, 2, (batch, 2)), u_free[:-1], DT)
    u_forced = rng.normal(size=(steps, batch, 1))
    x_forced = truth.rollout(rng.uniform(-2, 2, (batch, 2)), u_forced[:-1], DT)

    start = time.perf_counter()
    node = NeuralODE(states=("s", "v"), n_inputs=1, hidden=(64, 64), name="node")
    train_neural_ode(node, *prepare_ode_data_from_timeseries(t, x_free, u_free), epochs=300)
    train_neural_ode_trajectory(node, t, x_free, u_free, horizon=10, epochs=15)
    nd = NeuralDynamics(n_states=2, n_inputs=1, hidden=(64, 64), name="nd")
    data, dt = prepare_dynamics_data(t, x_free, u_free)
    train_dynamics(nd, data, dt=dt, epochs=300)
    residual = TorchResidual(model=wrong, name="residual")
    train_residual(residual, t, x_forced, u_forced, epochs=300)
    print(f"training time: {time.perf_counter() - start:.1f} s")

    x0, held = np.array([[1.5, -0.5]]), 200  # held-out initial state, 10 s
    u_zero = np.zeros((held, 1, 1))
    reference = truth.rollout(x0, u_zero, DT)[:, 0]
    node_x = node.rollout(x0, u_zero, DT)[:, 0]
    nd_x = nd.rollout(x0, u_zero)[:, 0]
    print(f"NeuralODE 10 s held-out RMSE [% of range] (s, v): {np.round(percent_of_range(node_x, reference), 3)}")
    print(f"NeuralDynamics 10 s held-out RMSE [% of range] (s, v): {np.round(percent_of_range(nd_x, reference), 3)}")

    u_sine = np.sin(np.arange(held) * DT)[:, None, None]
    forced = truth.rollout(x0, u_sine, DT)[:, 0]
    physics_error = np.sqrt(((wrong.rollout(x0, u_sine, DT)[:, 0] - forced) ** 2).mean())
    corrected_error = np.sqrt(((residual.rollout(x0, u_sine, DT)[:, 0] - forced) ** 2).mean())
    print(f"Residual: physics RMSE {physics_error:.4f}, corrected RMSE {corrected_error:.4f}, "
          f"improvement x{physics_error / corrected_error:.1f}")

    noise = 0.1
    y = reference + rng.normal(scale=noise, size=reference.shape)
    g = tg.Graph("twin", dt=DT)
    g.add(tg.Input("u", shape=(1,)))
    g.add(tg.Input("y", shape=(2,)))
    g.add(EKF(model=node, q=1e-5, r=noise**2, p0=1.0, x0=[0.0, 0.0], jacobian="analytic", name="ekf"))
    g.connect("u.value", "ekf.u")
    g.connect("y.value", "ekf.y")
    estimate = tg.Simulator(g).run(inputs={"u": u_zero[:, :, :], "y": y[:held, None]}, steps=held)["ekf.x_hat"]
    tracking = np.sqrt(((estimate[50:] - reference[50:held]) ** 2).mean())
    print(f"EKF on NeuralODE (autodiff Jacobian): RMSE after 2.5 s {tracking:.4f} (measurement noise sd {noise})")

    time_axis = np.arange(held + 1) * DT
    fig, axes = plt.subplots(2, 1, sharex=True, figsize=(8, 6))
    for i, label in enumerate(("position s [m]", "velocity v [m/s]")):
        axes[i].plot(time_axis, reference[:, i], "k", label="truth")
        axes[i].plot(time_axis, node_x[:, i], "--", label="NeuralODE")
        axes[i].plot(time_axis, nd_x[:, i], ":", label="NeuralDynamics")
        axes[i].plot(time_axis[:held], estimate[:, i], alpha=0.6, label="EKF on NeuralODE")
        axes[i].set_ylabel(label)
    axes[0].legend()
    axes[1].set_xlabel("time [s]")
    fig.savefig(out / "trajectories.png", dpi=120)
    print(f"figure: {out / 'trajectories.png'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("out/neural_dynamics"))
    main(parser.parse_args().out)
