"""Learner: a surrogate ODE model of a physics block, a graph or recorded data, in one call."""

import re
from typing import Any

import numpy as np

import twingraph as tg
from blocks.physics.ode import ODEModel

from .data import prepare_ode_data_from_timeseries
from .neural_ode import NeuralODE
from .symbolic import SymbolicODE, train_symbolic_ode
from .training import train_neural_ode

METHODS = ("neural_ode", "symbolic")


class Learner:
    """Learn a continuous-time model ``dx/dt = f(x, u)`` that can stand in for physics.

    :meth:`learn` samples a physics block or a graph (``dynamics=``), or takes
    recorded data (``data=``), builds derivative targets and trains a
    :class:`~blocks.ml.NeuralODE` or a :class:`~blocks.ml.SymbolicODE` with
    the existing trainers. The result is an ODE model: it goes into a graph,
    a composition or an EKF wherever the physics model went.

    Parameters
    ----------
    method : {"neural_ode", "symbolic"}
        The model learned: a network (:func:`~blocks.ml.train_neural_ode`) or
        formulas (:func:`~blocks.ml.train_symbolic_ode`).
    model_options : dict or None
        Constructor arguments of the learned model (``hidden``, ``integrator``,
        ``substeps``, ``outputs`` ...); states and inputs come from the data.
    train_options : dict or None
        Keyword arguments of the trainer (``epochs``, ``lr`` ...; ``generations``,
        ``population_size`` ...).
    seed : int
        Seed of the sampled initial states and inputs, and default seed of the
        model and the trainer.

    Attributes
    ----------
    data_ : tuple of ndarray
        ``(X, y)``, the rows ``[x, u]`` and targets ``dx/dt`` the last call trained on.
    history_ : dict
        What the trainer returned (loss history, or programs and formulas).

    Notes
    -----
    Sampling a block runs ``trajectories`` assets from initial states drawn
    uniformly in ``x0_range`` under inputs drawn uniformly in ``u_range`` and
    held for ``hold`` steps; the targets are the block's own derivatives
    ``f(x_k, u_k)`` at every sample. A graph is simulated the same way (every
    ODE block's ``x0`` drawn, every ``Input`` fed) and its state is the
    concatenation of its ODE blocks' states; the targets are central
    differences, without the samples whose difference spans an input change.
    Recorded data gives central differences at every sample.
    """

    def __init__(self, method: str = "neural_ode", model_options: dict[str, Any] | None = None,
                 train_options: dict[str, Any] | None = None, seed: int = 0) -> None:
        self.method = method
        self.model_options = model_options
        self.train_options = train_options
        self.seed = seed

    def learn(self, dynamics: ODEModel | tg.Graph | None = None, data: tuple | None = None, *,
              states: tuple[str, ...] | None = None, trajectories: int = 16, steps: int = 200, dt: float = 0.05,
              x0_range=(-1.0, 1.0), u_range=(-1.0, 1.0), hold: int = 10, name: str | None = None) -> ODEModel:
        """Train a model of ``dynamics`` (a physics block or a graph) or of ``data`` and return it.

        Parameters
        ----------
        dynamics : ODEModel or Graph or None
            What to imitate, sampled as in the Notes of :class:`Learner`.
        data : tuple or None
            ``(t, x)`` or ``(t, x, u)``: times ``(T,)`` [s], states ``(T, n_x)`` or
            ``(T, B, n_x)``, inputs ``(T, n_u)`` or ``(T, B, n_u)``.
        states : tuple of str or None
            Names of the learned states; None: the block's states, ``"<block>_<state>"``
            for a graph, ``x0, x1, ...`` for data. The inputs are named ``u0, u1, ...``.
        trajectories, steps : int
            Assets sampled and steps per trajectory (``dynamics`` only).
        dt : float
            Sample step [s] for a block; a graph samples at its own ``dt``.
        x0_range, u_range : tuple
            ``(low, high)`` of the initial states and the inputs, scalars or one value per state / input.
        hold : int
            Steps each sampled input value is held.
        name : str or None
            Name of the learned block.
        """
        if self.method not in METHODS:
            raise ValueError(f"The 'method' parameter of Learner must be one of {list(METHODS)}. "
                             f"Got {self.method!r} instead.")
        if (dynamics is None) == (data is None):
            raise ValueError("Learner.learn takes either dynamics= (a physics block or a graph) or data= "
                             "((t, x) or (t, x, u)), not both or neither.")
        rng = np.random.default_rng(self.seed)
        sampling = dict(rng=rng, trajectories=trajectories, steps=steps, x0_range=x0_range, u_range=u_range,
                        hold=hold)
        if isinstance(dynamics, ODEModel):
            X, y, default_states, n_u = _sample_block(dynamics, dt=dt, **sampling)
        elif isinstance(dynamics, tg.Graph):
            X, y, default_states, n_u = _sample_graph(dynamics, **sampling)
        elif dynamics is not None:
            raise ValueError(f"Learner.learn samples an ODE model block or a Graph. Got {dynamics!r} instead.")
        else:
            t, x, *u = data
            X, y = prepare_ode_data_from_timeseries(t, x, u[0] if u else None)
            n_x = y.shape[1]
            n_u = X.shape[1] - n_x
            default_states = tuple(f"x{i}" for i in range(n_x))
        self.data_ = (X, y)
        return self._train(X, y, tuple(states or default_states), n_u, name)

    def _train(self, X: np.ndarray, y: np.ndarray, states: tuple[str, ...], n_u: int, name: str | None) -> ODEModel:
        model_options = dict(self.model_options or {})
        train_options = {"seed": self.seed, **(self.train_options or {})}
        if self.method == "neural_ode":
            model = NeuralODE(states=states, n_inputs=n_u, **{"seed": self.seed, **model_options}, name=name)
            self.history_ = train_neural_ode(model, X, y, **train_options)
        else:
            model = SymbolicODE(states=states, formulas=("0.0",) * len(states),
                                input_names=tuple(f"u{j}" for j in range(n_u)), **model_options, name=name)
            self.history_ = train_symbolic_ode(model, X, y, **train_options)
        return model


def _ranges(value_range, size: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    low, high = (np.broadcast_to(np.asarray(v, dtype=float), (size,)) for v in value_range)
    if not np.all(low <= high):
        raise ValueError(f"The {what} range must have low <= high. Got {value_range!r} instead.")
    return low, high


def _held_inputs(rng: np.random.Generator, length: int, batch: int, u_range, hold: int, size: int) -> np.ndarray:
    """Inputs ``(length, batch, size)`` drawn uniformly in ``u_range`` and held for ``hold`` steps."""
    if hold < 1:
        raise ValueError(f"The inputs must be held for hold >= 1 steps. Got {hold!r} instead.")
    low, high = _ranges(u_range, size, "input")
    values = rng.uniform(low, high, (-(-length // hold), batch, size))
    return np.repeat(values, hold, axis=0)[:length]


def _sample_block(model: ODEModel, *, rng, trajectories: int, steps: int, dt: float, x0_range, u_range, hold: int):
    """Trajectories of a physics block and its exact derivatives: ``X (N, n_x + n_u)``, ``y (N, n_x)``."""
    model.check_params()
    low, high = _ranges(x0_range, model.n_x, "initial state")
    x = np.empty((steps + 1, trajectories, model.n_x))
    x[0] = rng.uniform(low, high, (trajectories, model.n_x))
    u = _held_inputs(rng, steps + 1, trajectories, u_range, hold, model.n_u)
    p = model.batch_params(trajectories)
    f = np.empty_like(x)
    for k in range(steps + 1):
        f[k] = model.derivative(x[k], u[k], k * dt, p)
        if k < steps:
            x[k + 1] = model.advance(x[k], u[k], k * dt, dt, p)
    X = np.concatenate([x, u], axis=2).reshape(-1, model.n_x + model.n_u)
    return X, f.reshape(-1, model.n_x), tuple(model.states), model.n_u


def _sample_graph(graph: tg.Graph, *, rng, trajectories: int, steps: int, x0_range, u_range, hold: int):
    """Trajectories of a graph's ODE states under random inputs, and central-difference derivatives."""
    sim = tg.Simulator(graph, batch=trajectories)
    odes = [(name, block) for name, block in sim.blocks.items() if isinstance(block, ODEModel)]
    if not odes:
        raise ValueError(f"Graph '{graph.name}' has no ODE model block whose state could be learned.")
    low, high = _ranges(x0_range, sum(block.n_x for _, block in odes), "initial state")
    start = 0
    for _, block in odes:  # the simulator's own copies of the blocks: the graph is left as it was
        block.x0 = rng.uniform(low[start:start + block.n_x], high[start:start + block.n_x],
                               (trajectories, block.n_x))
        start += block.n_x
    sim.reset()
    length = steps + 1
    inputs = {name: _held_inputs(rng, length, trajectories, u_range, hold, int(np.prod(signal.shape)))
              .reshape(length, trajectories, *signal.shape) for name, signal in sim.inputs.items()}
    history = sim.run(inputs=inputs or None, steps=length)
    x = np.concatenate([history[f"{name}.x"].reshape(length, trajectories, -1) for name, _ in odes], axis=2)
    columns = [inputs[name].reshape(length, trajectories, -1) for name in sim.inputs]
    u = np.concatenate(columns, axis=2) if columns else np.zeros((length, trajectories, 0))
    X, y = prepare_ode_data_from_timeseries(np.arange(length) * sim.dt, x, u)
    k = np.arange(length)
    steady = (k > 0) & (k < length - 1)
    if u.shape[2]:
        steady &= k % hold != 0  # x[k-1] -> x[k] -> x[k+1] all under the input u[k]
    if not steady.any():
        raise ValueError(f"Sampling graph '{graph.name}' leaves no sample between input changes: "
                         f"use hold >= 2 and steps >= 3. Got hold={hold}, steps={steps}.")
    rows = np.repeat(steady, trajectories)
    names = tuple(re.sub(r"\W", "_", f"{name}_{state}") for name, block in odes for state in block.states)
    return X[rows], y[rows], names, u.shape[2]
