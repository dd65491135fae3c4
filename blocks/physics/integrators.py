"""Stateless integrators: advance ``ẋ = f(x, u, t)`` over one tick, inputs held.

Every integrator takes the right-hand side ``f(x, u, t) -> dx`` with ``x`` of
shape ``(B, n)`` and ``u`` of shape ``(B, n_u)``, and returns the state at
``t + dt`` without keeping anything between calls (as diffrax's solvers do).
The batch of ``B`` assets is integrated at once.

Fixed steps (``substeps`` steps of ``h = dt / substeps`` per tick):

- :func:`euler`, explicit Euler, global error O(h);
- :func:`rk4`, classical Runge-Kutta, global error O(h⁴).

Adaptive or stiff: :func:`solve_ivp_step` hands the whole batch to
:func:`scipy.integrate.solve_ivp` as one flattened system, telling implicit
methods that the Jacobian is block diagonal (assets do not interact).
"""

import numpy as np
from scipy.integrate import solve_ivp
from scipy.sparse import bsr_matrix

from twingraph import SimulationError

INTEGRATORS = ("euler", "rk4", "solve_ivp")
METHODS = ("RK45", "RK23", "DOP853", "Radau", "BDF", "LSODA")
IMPLICIT_METHODS = ("Radau", "BDF", "LSODA")


def euler(f, x, u, t, dt, substeps=1):
    """Explicit Euler: ``x ← x + h f(x, u, t)``, ``substeps`` times with ``h = dt / substeps``.

    Examples
    --------
    >>> import numpy as np
    >>> def decay(x, u, t):
    ...     return -x
    >>> euler(decay, np.ones((1, 1)), np.zeros((1, 0)), 0.0, 1.0, substeps=2)
    array([[0.25]])
    """
    h = dt / substeps
    for i in range(substeps):
        x = x + h * f(x, u, t + i * h)
    return x


def rk4(f, x, u, t, dt, substeps=1):
    """Classical fourth-order Runge-Kutta, ``substeps`` steps of ``h = dt / substeps``.

    Notes
    -----
    One step from ``x`` at time ``s``::

        k1 = f(x, u, s)
        k2 = f(x + h/2 k1, u, s + h/2)
        k3 = f(x + h/2 k2, u, s + h/2)
        k4 = f(x + h k3, u, s + h)
        x ← x + h/6 (k1 + 2 k2 + 2 k3 + k4)

    Examples
    --------
    >>> import numpy as np
    >>> def decay(x, u, t):
    ...     return -x
    >>> x1 = rk4(decay, np.ones((1, 1)), np.zeros((1, 0)), 0.0, 1.0, substeps=10)
    >>> round(float(x1[0, 0]), 7), round(float(np.exp(-1.0)), 7)
    (0.3678798, 0.3678794)
    """
    h = dt / substeps
    for i in range(substeps):
        s = t + i * h
        k = f(x, u, s)  # k1
        total = 1.0 * k  # k1 + 2 k2 + 2 k3 + k4 summed as the stages come (a new numpy or torch array)
        k = f(x + h / 2 * k, u, s + h / 2)  # k2
        total += 2 * k
        k = f(x + h / 2 * k, u, s + h / 2)  # k3
        total += 2 * k
        total += f(x + h * k, u, s + h)  # k4
        x = x + h / 6 * total
    return x


def block_diagonal(blocks: np.ndarray) -> bsr_matrix:
    """The ``(B n, B n)`` sparse matrix with the ``(B, n, n)`` array ``blocks`` on its diagonal."""
    batch, n, _ = blocks.shape
    return bsr_matrix((blocks, np.arange(batch), np.arange(batch + 1)), shape=(batch * n, batch * n))


def solve_ivp_step(f, x, u, t, dt, method="RK45", rtol=1e-6, atol=1e-9, jac=None):
    """Advance one tick with :func:`scipy.integrate.solve_ivp`, the batch as one system.

    Parameters
    ----------
    f : callable
        ``f(x, u, t) -> dx``, all ``(B, n)``.
    x : ndarray, shape (B, n)
        State at ``t``.
    u : ndarray, shape (B, n_u)
        Inputs, held over the tick.
    t, dt : float
        Start and length of the tick [s].
    method : str
        A :func:`~scipy.integrate.solve_ivp` method, one of :data:`METHODS`.
    rtol, atol : float
        Relative and absolute tolerances.
    jac : callable or None
        ``jac(x, u, t) -> (B, n, n)`` (∂f/∂x per asset), or ``None`` where the
        model has no analytic Jacobian (it may also return ``None``).

    Notes
    -----
    The flattened system has a block-diagonal Jacobian, one ``n × n`` block per
    asset. Radau and BDF get it as a sparse matrix (analytic) or as the sparsity
    pattern of their finite differences; LSODA takes a dense or LAPACK-packed
    banded Jacobian instead, so it gets the band ``lband = uband = n - 1`` and
    forms its own finite differences.
    """
    batch, n = x.shape

    def fun(s, z):
        return f(z.reshape(batch, n), u, s).ravel()

    options = {}
    if method == "LSODA":
        options = {"lband": n - 1, "uband": n - 1}
    elif method in IMPLICIT_METHODS:
        if jac is not None and jac(x, u, t) is not None:

            def jacobian(s, z):
                return block_diagonal(jac(z.reshape(batch, n), u, s))

            options = {"jac": jacobian}
        else:
            options = {"jac_sparsity": block_diagonal(np.ones((batch, n, n)))}
    solution = solve_ivp(fun, (t, t + dt), x.ravel(), method=method, rtol=rtol, atol=atol, **options)
    if not solution.success:
        raise SimulationError(f"solve_ivp ({method}) failed over t = [{t:g}, {t + dt:g}] s: {solution.message}")
    return solution.y[:, -1].reshape(batch, n)


FIXED_STEP = {"euler": euler, "rk4": rk4}
