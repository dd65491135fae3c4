"""Training data from time series: derivative targets and one-step transitions (NumPy only).

A recorded time series is ``t`` of shape ``(T,)``, states ``x`` of shape
``(T, n_x)`` or ``(T, B, n_x)`` (B trajectories sampled at the same times) and
optional inputs ``u`` of shape ``(T, n_u)`` or ``(T, B, n_u)``.
"""

import numpy as np


def _series(t, x, u=None):
    """``t (T,)``, ``x (T, B, n_x)`` and ``u (T, B, n_u)`` (``n_u = 0`` without inputs), checked."""
    t = np.asarray(t, dtype=float)
    x = np.asarray(x, dtype=float)
    if t.ndim != 1 or len(t) < 3 or not np.all(np.diff(t) > 0):
        raise ValueError(f"t must be increasing times of shape (T,) with T >= 3. Got shape {t.shape} instead.")
    if x.ndim == 2:
        x = x[:, None, :]
    if x.ndim != 3 or len(x) != len(t):
        raise ValueError(f"x must have shape (T, n_x) or (T, B, n_x) with T = {len(t)}. Got {x.shape} instead.")
    if u is None:
        u = np.zeros((*x.shape[:2], 0))
    else:
        u = np.asarray(u, dtype=float)
        if u.ndim == 1:
            u = u[:, None]
        if u.ndim == 2:
            u = u[:, None, :]
        if u.shape[:2] != x.shape[:2]:
            raise ValueError(f"u must have shape (T, n_u) or (T, B, n_u) matching x {x.shape}. Got {u.shape} instead.")
    return t, x, u


def compute_dx_dt_central(t, x) -> np.ndarray:
    """Time derivative of sampled states by central differences, second-order accurate everywhere.

    Parameters
    ----------
    t : array_like, shape (T,)
        Increasing sample times [s], uniformly spaced or not.
    x : array_like, shape (T, ...)
        Samples; the first axis is time.

    Returns
    -------
    ndarray, shape of ``x``
        ``dx/dt``: central differences inside, second-order one-sided
        differences at both ends (:func:`numpy.gradient` with ``edge_order=2``).

    Examples
    --------
    >>> t = np.linspace(0.0, 1.0, 5)
    >>> compute_dx_dt_central(t, t**2)
    array([0. , 0.5, 1. , 1.5, 2. ])
    """
    t = np.asarray(t, dtype=float)
    return np.gradient(np.asarray(x, dtype=float), t, axis=0, edge_order=2)


def prepare_ode_data_from_timeseries(t, x, u=None, *, with_time: bool = False):
    """Rows ``X = [x, u(, t)]`` and derivative targets ``y = dx/dt`` for :func:`~blocks.ml.train_neural_ode`.

    Parameters
    ----------
    t : array_like, shape (T,)
        Sample times [s].
    x : array_like, shape (T, n_x) or (T, B, n_x)
        States; B trajectories sampled at the same times.
    u : array_like, shape (T, n_u) or (T, B, n_u), or None
        Inputs; None for a system without inputs.
    with_time : bool
        Append ``t`` as a last column (for a model with ``time_input=True``).

    Returns
    -------
    X : ndarray, shape (T B, n_x + n_u (+ 1))
    y : ndarray, shape (T B, n_x)

    Examples
    --------
    >>> t = np.linspace(0.0, 2.0, 201)
    >>> X, y = prepare_ode_data_from_timeseries(t, np.stack([np.sin(t), np.cos(t)], axis=1))
    >>> X.shape, y.shape, bool(np.abs(y[:, 0] - X[:, 1]).max() < 1e-3)
    ((201, 2), (201, 2), True)
    """
    t, x, u = _series(t, x, u)
    dx = compute_dx_dt_central(t, x)
    columns = [x, u]
    if with_time:
        columns.append(np.broadcast_to(t[:, None, None], (*x.shape[:2], 1)))
    X = np.concatenate(columns, axis=2)
    return X.reshape(-1, X.shape[2]), dx.reshape(-1, x.shape[2])


def prepare_dynamics_data(t, x, u=None):
    """Transitions ``(states, inputs, next_states)`` and the step ``dt`` for :func:`~blocks.ml.train_dynamics`.

    The samples must be uniformly spaced; ``u[k]`` is the input held from
    ``t[k]`` to ``t[k+1]``.

    Returns
    -------
    (states, inputs, next_states) : ndarrays of shapes (N, n_x), (N, n_u), (N, n_x)
        ``N = (T - 1) B`` transitions.
    dt : float
        The sample step [s].

    Examples
    --------
    >>> (s, u, s1), dt = prepare_dynamics_data(np.arange(4) * 0.5, np.arange(4.0)[:, None])
    >>> s.ravel(), u.shape, s1.ravel(), dt
    (array([0., 1., 2.]), (3, 0), array([1., 2., 3.]), 0.5)
    """
    t, x, u = _series(t, x, u)
    steps = np.diff(t)
    dt = float(steps.mean())
    if not np.allclose(steps, dt, rtol=1e-6, atol=0.0):
        raise ValueError(f"Transitions need uniformly spaced samples; the steps of t range over "
                         f"[{steps.min():g}, {steps.max():g}] s.")
    n = (len(t) - 1) * x.shape[1]
    return (x[:-1].reshape(n, -1), u[:-1].reshape(n, u.shape[2]), x[1:].reshape(n, -1)), dt


def trajectory_windows(x, u, horizon: int):
    """Every window of ``horizon + 1`` consecutive samples: ``x (W, horizon+1, n_x)``, ``u (W, horizon, n_u)``.

    ``x`` is ``(T, B, n_x)`` and ``u`` is ``(T, B, n_u)``; windows start at
    every sample of every trajectory.
    """
    T = x.shape[0]
    if not 1 <= horizon < T:
        raise ValueError(f"The horizon must be between 1 and {T - 1} steps. Got {horizon} instead.")
    starts = np.arange(T - horizon)
    xw = np.stack([x[s:s + horizon + 1] for s in starts])  # (W0, h+1, B, n_x)
    uw = np.stack([u[s:s + horizon] for s in starts])
    n = len(starts) * x.shape[1]
    xw = xw.transpose(0, 2, 1, 3).reshape(n, horizon + 1, x.shape[2])
    uw = uw.transpose(0, 2, 1, 3).reshape(n, horizon, u.shape[2])
    return xw, uw


def split_indices(n: int, validation: float, seed: int):
    """Shuffled train and validation row indices; ``validation`` is the held-out fraction (0 keeps all)."""
    if not 0.0 <= validation < 1.0:
        raise ValueError(f"The validation fraction must be in [0, 1). Got {validation!r} instead.")
    order = np.random.default_rng(seed).permutation(n)
    n_val = round(validation * n)
    if validation > 0 and (n_val == 0 or n_val == n):
        raise ValueError(f"A validation fraction of {validation} leaves no rows on one side of {n} samples.")
    return order[n_val:], order[:n_val]
