"""Trainers: derivative targets, trajectory matching through RK4, one-step transitions, residuals.

Every trainer shares one loop (:func:`fit`): Adam on mini-batches in a fixed
order (``seed``), a held-out validation split, early stopping that restores
the best weights, a tqdm progress bar and a returned loss history. Losses are
mean squared errors in normalised units, so states of different size weigh
alike. Normalisation statistics are set from the training data and stored
with the model (its weights).
"""

import sys

import numpy as np
from tqdm.auto import tqdm

from blocks.physics.integrators import FIXED_STEP

from .data import _series, compute_dx_dt_central, split_indices, trajectory_windows
from .nets import to_tensor, torch_module


def fit(model, loss, n_rows: int, *, epochs: int, batch_size: int, lr: float, validation: float, patience: int,
        seed: int, progress: bool | None, desc: str, weight_decay: float = 0.0) -> dict[str, list]:
    """Minimise ``loss(rows)`` (a torch scalar for a tensor of row indices) over the model's network.

    Parameters
    ----------
    model : TorchModel
        The block whose :meth:`network` is trained in place.
    loss : callable
        ``loss(rows) -> torch scalar``, the mean loss over the given rows.
    n_rows : int
        Number of training rows (samples, windows or transitions).
    epochs, batch_size, lr, weight_decay : int, int, float, float
        Adam on shuffled mini-batches.
    validation : float
        Fraction of rows held out; 0 trains on every row and stops on the training loss.
    patience : int
        Epochs without a better validation loss before stopping; the best weights are restored.
    seed : int
        Seed of the split, the shuffling and torch.
    progress : bool or None
        Show a tqdm bar; None shows it when stderr is a terminal.
    desc : str
        Label of the progress bar.

    Returns
    -------
    dict
        ``{"epoch": [...], "train_loss": [...], "val_loss": [...], "best_epoch": int}``.
    """
    torch = torch_module()
    if patience < 1 or epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs, batch_size and patience must be >= 1. Got {epochs}, {batch_size}, {patience}.")
    torch.manual_seed(seed)
    net = model.network()
    train, val = (torch.from_numpy(i) for i in split_indices(n_rows, validation, seed))
    optimizer = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    history = {"epoch": [], "train_loss": [], "val_loss": [], "best_epoch": 0}
    best, best_state, waited = np.inf, None, 0
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(range(1, epochs + 1), desc=desc, disable=not show, leave=False)
    for epoch in bar:
        net.train()
        order = train[torch.randperm(len(train), generator=generator)]
        total = 0.0
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            optimizer.zero_grad()
            value = loss(rows)
            value.backward()
            optimizer.step()
            total += float(value.detach()) * len(rows)
        train_loss = total / len(order)
        with torch.no_grad():
            val_loss = float(loss(val)) if len(val) else train_loss
        history["epoch"].append(epoch)
        history["train_loss"].append(train_loss)
        history["val_loss"].append(val_loss)
        bar.set_postfix(train=f"{train_loss:.3g}", val=f"{val_loss:.3g}")
        if val_loss < best:
            best, waited, history["best_epoch"] = val_loss, 0, epoch
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            waited += 1
            if waited >= patience:
                break
    bar.close()
    net.load_state_dict(best_state)
    net.eval()
    return history


def _options(epochs, batch_size, lr, validation, patience, seed, progress, weight_decay=0.0):
    return dict(epochs=epochs, batch_size=batch_size, lr=lr, validation=validation, patience=patience, seed=seed,
                progress=progress, weight_decay=weight_decay)


def train_neural_ode(model, X, y, *, epochs: int = 500, batch_size: int = 256, lr: float = 3e-3,
                     validation: float = 0.2, patience: int = 50, seed: int = 0, progress: bool | None = None,
                     weight_decay: float = 0.0, normalize: bool = True) -> dict[str, list]:
    """Fit a :class:`~blocks.ml.NeuralODE` to derivative targets: ``net(x, u, t) ≈ dx/dt``.

    Parameters
    ----------
    model : NeuralODE
        Trained in place.
    X : array_like, shape (N, n_x + n_u (+ 1))
        Rows ``[x, u(, t)]`` as :func:`~blocks.ml.prepare_ode_data_from_timeseries` makes them.
    y : array_like, shape (N, n_x)
        Targets ``dx/dt``.
    normalize : bool
        Set the normalisation statistics from ``X`` and ``y`` first (False keeps them, to fine-tune).
    epochs, batch_size, lr, validation, patience, seed, progress, weight_decay
        As for :func:`fit`.

    Returns
    -------
    dict
        The loss history (:func:`fit`).
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    if X.ndim != 2 or X.shape[1] != model.net_inputs or y.shape != (len(X), model.n_x):
        raise ValueError(f"{type(model).__name__} '{model.name}' trains on X of shape (N, {model.net_inputs}) and y "
                         f"of shape (N, {model.n_x}). Got {X.shape} and {y.shape} instead.")
    if normalize:
        model.set_normalization(X, y)
    Xt, yt = to_tensor(X), to_tensor(y)
    out_scale = to_tensor(model.normalization["out_scale"])

    def loss(rows):
        error = (model.net_forward(Xt[rows]) - yt[rows]) / out_scale
        return (error**2).mean()

    return fit(model, loss, len(X), desc="neural ODE (derivatives)",
               **_options(epochs, batch_size, lr, validation, patience, seed, progress, weight_decay))


def train_neural_ode_trajectory(model, t, x, u=None, *, horizon: int = 10, epochs: int = 200, batch_size: int = 128,
                                lr: float = 1e-3, validation: float = 0.2, patience: int = 30, seed: int = 0,
                                progress: bool | None = None, weight_decay: float = 0.0,
                                normalize: bool = False) -> dict[str, list]:
    """Fit a :class:`~blocks.ml.NeuralODE` by matching short trajectories: backpropagation through RK4.

    Every window of ``horizon + 1`` samples is rolled out from its first state
    with the model's fixed-step integrator (``"rk4"`` or ``"euler"``, with its
    ``substeps``), inputs held over each sample step, and compared with the
    recorded states. Usually run after :func:`train_neural_ode` to fine-tune
    (``normalize=False`` keeps its statistics).

    Parameters
    ----------
    model : NeuralODE
        Trained in place.
    t : array_like, shape (T,)
        Uniformly spaced sample times [s].
    x : array_like, shape (T, n_x) or (T, B, n_x)
        Recorded states.
    u : array_like, shape (T, n_u) or (T, B, n_u), or None
        Recorded inputs (``u[k]`` held from ``t[k]`` to ``t[k+1]``).
    horizon : int
        Steps per window.
    normalize : bool
        Set the statistics from the data first (states, inputs and central-difference derivatives).
    epochs, batch_size, lr, validation, patience, seed, progress, weight_decay
        As for :func:`fit`.
    """
    torch = torch_module()
    t, x, u = _series(t, x, u)
    steps = np.diff(t)
    if not np.allclose(steps, steps[0], rtol=1e-6, atol=0.0):
        raise ValueError("Trajectory matching needs uniformly spaced samples.")
    step = FIXED_STEP.get(model.integrator)
    if step is None:
        raise ValueError(f"Trajectory matching needs a fixed-step integrator ('rk4' or 'euler'); "
                         f"{type(model).__name__} '{model.name}' has integrator={model.integrator!r}.")
    if normalize:
        rows = [x.reshape(-1, x.shape[2]), u.reshape(x.shape[0] * x.shape[1], u.shape[2])]
        if model.time_input:
            rows.append(np.broadcast_to(t[:, None, None], (*x.shape[:2], 1)).reshape(-1, 1))
        model.set_normalization(np.concatenate(rows, axis=1), compute_dx_dt_central(t, x).reshape(-1, x.shape[2]))
    xw, uw = trajectory_windows(x, u, horizon)
    t0 = np.tile(t[:-horizon, None], (1, x.shape[1])).reshape(-1)
    xw, uw, t0 = to_tensor(xw), to_tensor(uw), to_tensor(t0)
    dt = float(steps[0])
    x_scale = to_tensor(model.normalization["in_scale"][:model.n_x])

    def loss(rows):
        state, s = xw[rows, 0], t0[rows]
        error = 0.0
        for k in range(horizon):
            state = step(model.rhs, state, uw[rows, k], s + k * dt, dt, model.substeps)
            error = error + (((state - xw[rows, k + 1]) / x_scale) ** 2).mean()
        return error / horizon

    with torch.enable_grad():
        return fit(model, loss, len(xw), desc="neural ODE (trajectories)",
                   **_options(epochs, batch_size, lr, validation, patience, seed, progress, weight_decay))


def train_dynamics(model, data, *, dt: float, epochs: int = 500, batch_size: int = 256, lr: float = 3e-3,
                   validation: float = 0.2, patience: int = 50, seed: int = 0, progress: bool | None = None,
                   weight_decay: float = 0.0) -> dict[str, list]:
    """Fit a :class:`~blocks.ml.NeuralDynamics` to transitions ``x_{k+1} = F(x_k, u_k)`` over a step ``dt``.

    Parameters
    ----------
    model : NeuralDynamics
        Trained in place; its ``dt`` param is set to ``dt`` (the step it now represents).
    data : tuple of array_like
        ``(states (N, n_x), inputs (N, n_u) or None, next_states (N, n_x))``, as
        :func:`~blocks.ml.prepare_dynamics_data` makes them.
    dt : float
        The step between ``states`` and ``next_states`` [s].
    epochs, batch_size, lr, validation, patience, seed, progress, weight_decay
        As for :func:`fit`.
    """
    states, inputs, next_states = data
    states = np.asarray(states, dtype=float)
    next_states = np.asarray(next_states, dtype=float)
    inputs = np.zeros((len(states), 0)) if inputs is None else np.asarray(inputs, dtype=float).reshape(len(states), -1)
    X = np.concatenate([states, inputs], axis=1)
    if X.shape[1] != model.net_inputs or next_states.shape != states.shape or states.shape[1] != model.n_states:
        raise ValueError(f"{type(model).__name__} '{model.name}' trains on states and next_states of shape "
                         f"(N, {model.n_states}) and inputs of shape (N, {model.n_inputs}). Got {states.shape}, "
                         f"{inputs.shape} and {next_states.shape} instead.")
    if not dt > 0:
        raise ValueError(f"dt must be > 0 [s]. Got {dt!r} instead.")
    model.dt = float(dt)
    delta = next_states - states
    model.set_normalization(X, delta)
    Xt, dt_ = to_tensor(X), to_tensor(delta)
    out_scale = to_tensor(model.normalization["out_scale"])

    def loss(rows):
        error = (model.net_forward(Xt[rows]) - dt_[rows]) / out_scale
        return (error**2).mean()

    return fit(model, loss, len(X), desc="neural dynamics",
               **_options(epochs, batch_size, lr, validation, patience, seed, progress, weight_decay))


def train_residual(model, t, x, u=None, y=None, *, epochs: int = 500, batch_size: int = 256, lr: float = 3e-3,
                   validation: float = 0.2, patience: int = 50, seed: int = 0, progress: bool | None = None,
                   weight_decay: float = 0.0) -> dict[str, list]:
    """Fit a :class:`~blocks.ml.TorchResidual` to what its physics model misses in recorded data.

    With ``target="derivative"`` the residual learns ``dx/dt - f(x, u, t, p)``
    (``dx/dt`` by central differences of ``x``); with ``target="output"`` it
    learns ``y - h(x, u, p)`` from the measured outputs ``y``.

    Parameters
    ----------
    model : TorchResidual
        Trained in place; the physics model's params are those of its parameters.
    t : array_like, shape (T,)
        Sample times [s].
    x : array_like, shape (T, n_x) or (T, B, n_x)
        Recorded states.
    u : array_like or None
        Recorded inputs.
    y : array_like, shape (T, n_y) or (T, B, n_y), or None
        Measured outputs, required for ``target="output"``.
    epochs, batch_size, lr, validation, patience, seed, progress, weight_decay
        As for :func:`fit`.
    """
    t, x, u = _series(t, x, u)
    T, B, n_x = x.shape
    physics = model.physics
    p = physics.batch_params(B)
    if model.target == "derivative":
        f = np.stack([physics.derivative(x[k], u[k], t[k], p) for k in range(T)])
        target = (compute_dx_dt_central(t, x) - f).reshape(T * B, n_x)
    else:
        if y is None:
            raise ValueError(f"TorchResidual '{model.name}' with target='output' trains on measured outputs y.")
        h = np.stack([physics.observe(x[k], u[k], p) for k in range(T)])
        target = (np.asarray(y, dtype=float).reshape(h.shape) - h).reshape(T * B, -1)
    xs, us = x.reshape(T * B, n_x), u.reshape(T * B, u.shape[2])
    X = np.concatenate([xs, us], axis=1)
    model.set_normalization(X, target)
    Xt, yt = to_tensor(X), to_tensor(target)
    out_scale = to_tensor(model.normalization["out_scale"])

    def loss(rows):
        error = (model.net_forward(Xt[rows]) - yt[rows]) / out_scale
        return (error**2).mean()

    return fit(model, loss, len(X), desc="residual",
               **_options(epochs, batch_size, lr, validation, patience, seed, progress, weight_decay))
