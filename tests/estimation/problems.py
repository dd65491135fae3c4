"""Filtering problems shared by the EKF and UKF tests: the graph around a filter, models and simulated data."""

import numpy as np

import twingraph as tg
from blocks.physics import FunctionODE, MassSpringDamper
from blocks.sources import Input

DT = 0.05


def filter_graph(block: tg.Block) -> tg.Graph:
    """``u, y → block`` with the block's own port signals."""
    model = block.model
    g = tg.Graph("filter", dt=DT)
    g.add(block)
    if model.n_u:
        g.connect(g.add(Input("u", shape=(model.n_u,), unit=model.input_unit)).out.value, f"{block.name}.u")
    g.connect(g.add(Input("y", shape=(model.n_y,), unit=model.y_unit)).out.value, f"{block.name}.y")
    return g


def pendulum(g=9.81) -> FunctionODE:
    """A damped, driven pendulum seen through a range-like sensor and a projected rate (both nonlinear)."""

    def f(x, u, t, p):
        return np.stack([x[:, 1], -p["g"] * np.sin(x[:, 0]) - 0.2 * x[:, 1] + u[:, 0]], axis=1)

    def h(x, u, p):
        return np.stack([np.sqrt(1.0 + x[:, 0] ** 2), x[:, 1] * np.cos(x[:, 0])], axis=1)

    return FunctionODE(f, h, states=("theta", "omega"), n_inputs=1, n_outputs=2, params={"g": g})


def missing_measurements() -> tuple[FunctionODE, FunctionODE, np.ndarray]:
    """Measurements with gaps: an undamped pendulum seen in both states, the same seen in the first alone, and ``y``.

    ``y`` is 60 ticks of noise for 3 assets and 2 sensors, NaN where missing:
    asset 1 never measures ``y[1]``, asset 2 loses every sensor at ticks 20 to 29.
    """

    def f(x, u, t, p):
        return np.stack([x[:, 1], -np.sin(x[:, 0])], axis=1)

    # both observe through a function, so that both filters difference h (their H rounds alike)
    both = FunctionODE(f, lambda x, u, p: x, states=("a", "b"), n_outputs=2, substeps=2)
    first = FunctionODE(f, lambda x, u, p: x[:, :1], states=("a", "b"), n_outputs=1, substeps=2)
    y = np.random.default_rng(4).normal(size=(60, 3, 2))
    y[:, 1, 1] = np.nan
    y[20:30, 2, :] = np.nan
    return both, first, y


def simulate_linear(steps: int, batch: int, q: np.ndarray, r: float, seed: int):
    """A mass-spring-damper driven by a known force, with process and measurement noise of known variance."""
    model = MassSpringDamper()
    rng = np.random.default_rng(seed)
    x, p = np.zeros((batch, 2)), model.batch_params(batch)
    u = np.sin(0.3 * np.arange(steps))[:, None, None] * np.ones((1, batch, 1))
    y = np.empty((steps, batch, 1))
    for k in range(steps):
        y[k] = model.observe(x, u[k], p) + np.sqrt(r) * rng.normal(size=(batch, 1))
        x = model.advance(x, u[k], k * DT, DT, p) + np.sqrt(q) * rng.normal(size=(batch, 2))
    return model, u, y
