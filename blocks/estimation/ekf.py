"""The extended Kalman filter block: state and parameter estimation around an ODE model."""

import numpy as np
from scipy.linalg import expm

from twingraph import Context
from twingraph.errors import check_choice, invalid_param

from ..physics.integrators import FIXED_STEP
from ..physics.ode import ODEModel
from .filter import KalmanFilter

JACOBIANS = ("auto", "analytic", "fd")
FD_STEP = np.finfo(float).eps ** (1 / 3)  # central differences: truncation O(h²) balances rounding O(eps / h)
SMALL = 6  # matrices with fewer rows are multiplied by einsum along the batch, larger ones by BLAS


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``a @ b`` for stacks of matrices with the batch last: ``(n, k, B) @ (k, m, B) -> (n, m, B)``.

    Small matrices go through ``einsum``, which runs along the contiguous batch
    axis; from ``SMALL`` rows on, BLAS products per asset are faster.

    Examples
    --------
    >>> a = np.arange(8.0).reshape(2, 2, 2)
    >>> bool(np.allclose(matmul(a, a)[:, :, 1], a[:, :, 1] @ a[:, :, 1]))
    True
    """
    if len(a) < SMALL:
        return np.einsum("ikb,kjb->ijb", a, b, out=out)
    if out is None:
        return np.matmul(a.transpose(2, 0, 1), b.transpose(2, 0, 1)).transpose(1, 2, 0)
    np.matmul(a.transpose(2, 0, 1), b.transpose(2, 0, 1), out=out.transpose(2, 0, 1))
    return out


def diagonal_view(a: np.ndarray) -> np.ndarray:
    """The diagonals of a C-contiguous stack ``(n, n, B)`` as a writable ``(n, B)`` view.

    Examples
    --------
    >>> a = np.zeros((2, 2, 3))
    >>> diagonal_view(a)[...] = 1.0
    >>> a[:, :, 0]
    array([[1., 0.],
           [0., 1.]])
    """
    if not a.flags.c_contiguous:
        raise ValueError(f"diagonal_view needs a C-contiguous stack; got strides {a.strides}.")
    return a.reshape(len(a) ** 2, -1)[:: len(a) + 1]


def sandwich(a: np.ndarray, p: np.ndarray, out: np.ndarray, work: np.ndarray) -> np.ndarray:
    """``a p aᵀ`` into ``out`` for stacks of matrices with the batch last, ``(n, n, B)``; ``work`` holds ``a p``."""
    return matmul(matmul(a, p, out=work), a.transpose(1, 0, 2), out=out)


class EKF(KalmanFilter):
    """Extended Kalman filter over an :class:`~blocks.physics.ode.ODEModel`, with parameter estimation.

    The filter estimates the model's state and, optionally, named physical
    parameters appended to it as random walks (state augmentation). It calls
    the model's pure functions (:meth:`~blocks.physics.ode.ODEModel.advance`,
    :meth:`~blocks.physics.ode.ODEModel.observe`,
    :meth:`~blocks.physics.ode.ODEModel.jacobian`) with its own arrays; the
    model block itself is never stepped or reset by the filter.

    Parameters
    ----------
    model : ODEModel
        The process model (``None`` until set: the graph does not validate without one).
    estimate : tuple of str
        Names of the model's ``parameters`` to estimate (augmented to the state).
    q : float or array_like
        Process noise variance added to each state per tick [state unit²], one value or ``(n_x,)``.
    q_params : float or array_like
        Random-walk variance of each estimated parameter per tick [param unit²].
    r : float or array_like
        Measurement noise variance [y unit²], one value or ``(n_y,)`` (R is diagonal).
    p0 : float or array_like
        Initial state variance [state unit²].
    p0_params : float or array_like
        Initial variance of the estimated parameters [param unit²].
    x0 : array_like or None
        Initial state estimate ``(n_x,)`` or ``(B, n_x)``; ``None`` uses the model's ``x0``.
        The parameters start at the model's values.
    jacobian : {"auto", "analytic", "fd"}
        How ``F``, the Jacobian of the step, is formed. ``"analytic"`` carries
        the model's :meth:`jacobian` through its integrator (the parameter
        columns from its :meth:`parameter_jacobian`, or from central
        differences of ``f`` where it gives none) and needs a model that
        supplies one; ``"fd"`` uses central finite differences of ``advance``;
        ``"auto"`` picks analytic when the model supplies it.
    name : str or None
        Block name.

    Ports
    -----
    u (in) : model input, shape ``(n_u,)``; absent when the model has no input.
    y (in) : measurement, shape ``(n_y,)``; a NaN element is a missing measurement,
        ±inf stops the run with a SimulationError.
    x_hat (out) : filtered state ``x̂_{k|k}``, shape ``(n_x,)``.
    params (out) : filtered estimated parameters, shape ``(n_est,)``; absent when ``estimate`` is empty.
    P (out) : diagonal of the filtered covariance of ``[x, params]``, shape ``(n_x + n_est,)``.
    innovation (out) : ``ν = y - h(x̂⁻)``, shape ``(n_y,)``; 0 for missing elements.
    S (out) : diagonal of the innovation covariance, shape ``(n_y,)``.
    nis (out) : normalised innovation squared ``νᵀ S⁻¹ ν``, shape ``()`` [-]; χ² with as many degrees
        of freedom as measured elements when the filter is consistent.

    Notes
    -----
    State ``z = [x, θ]``, θ the estimated parameters. At tick ``k`` the block
    receives ``u_k`` and ``y_k``, updates the prior ``z⁻, P⁻`` (phase 1, so
    the block is direct feedthrough) and outputs the posterior; phase 2
    predicts to ``k + 1``::

        H = ∂h/∂z (z⁻, u_k)                     [C 0] for y = C x, else central differences
        ν = y_k - h(z⁻, u_k)
        S = H P⁻ Hᵀ + R                         its diagonal is published
        z, P = z⁻, P⁻, then for each element j of y:
            s = H_j P H_jᵀ + R_jj
            K = P H_jᵀ / s
            ν'_j = ν_j - H_j (z - z⁻)           innovation given the elements before j
            z ← z + K ν'_j
            P ← (I - K H_j) P (I - K H_j)ᵀ + K R_jj Kᵀ    Joseph form
            NIS ← NIS + ν'_j² / s
        z⁻ ← [advance(x, u_k, t_k, dt, θ), θ]
        P⁻ ← F P Fᵀ + Q,   F = ∂z⁻/∂z

    With R diagonal, taking the elements of y one at a time is exactly the
    update with the whole vector (``K = P⁻ Hᵀ S⁻¹``, ``z = z⁻ + K ν``, NIS
    ``νᵀ S⁻¹ ν``), with no matrix to solve. The Joseph form stays symmetric
    positive semi-definite under rounding and for any gain, where
    ``(I - K H) P`` does not; P is symmetrised after each step.

    ``F`` is the derivative of the integrator's step itself. With an analytic
    Jacobian and a fixed-step integrator (RK4, Euler), the tangent
    ``D = ∂x/∂z`` rides along with the state through the same step, each
    stage ``k = f(x, u, t, θ)`` joined by ``∂k = ∂f/∂x D + [0 ∂f/∂θ]``;
    that is exactly the Jacobian of the RK4 (or Euler) map, computed in one
    pass with the state, for a cost that does not grow with copies of the
    batch. Otherwise ``F`` comes from central differences of ``advance``
    (all ``2 (n_x + n_est)`` perturbed copies of the batch in one call), or,
    for ``solve_ivp`` with an analytic Jacobian, ``expm(J dt)`` for the
    state columns and central differences for the parameter columns.

    A missing element of ``y`` (NaN) zeroes its row of ``H`` and its
    innovation: its ``s`` is ``R_jj``, its gain is zero, and the update is
    exactly a predict-only step for that element, per asset, without branching.

    The filter keeps its arrays with the batch last (``z`` as ``(n, B)``,
    ``P`` as ``(n, n, B)``; the ``z_`` and ``P_`` state attributes are the
    same memory seen as ``(B, n)`` and ``(B, n, n)``), so each step is a few
    NumPy operations along contiguous memory for the whole fleet, and the
    same few for one asset; the work arrays are allocated once, in
    :meth:`reset`.

    References
    ----------
    Simon, D. (2006). *Optimal State Estimation*, ch. 13. Wiley.

    Examples
    --------
    Estimate the efficiency of a worn pump (true η = 0.8) from its flow:

    >>> import twingraph as tg
    >>> from blocks.sources import Input
    >>> from blocks.physics import PumpLike
    >>> truth, model = PumpLike(efficiency=0.8), PumpLike()
    >>> g = tg.Graph("pump", dt=0.05)
    >>> u = g.add(Input("u", shape=(1,), unit="V"))
    >>> y = g.add(Input("y", shape=(1,), unit="m3/s"))
    >>> ekf = g.add(EKF(model=model, estimate=("efficiency",), q=0.0, q_params=1e-6, r=1e-12,
    ...                 p0=0.0, p0_params=0.1, name="ekf"))
    >>> g.connect(u.out.value, ekf.inp.u)
    >>> g.connect(y.out.value, ekf.inp.y)
    >>> rng = np.random.default_rng(0)
    >>> x, p = truth.initial_state(1), truth.batch_params(1)
    >>> sim = tg.Simulator(g)
    >>> for k in range(200):
    ...     v = np.full((1, 1), 12.0)
    ...     flow = truth.observe(x, v, p) + 1e-6 * rng.normal()
    ...     out = sim.step(u=v, y=flow)
    ...     x = truth.advance(x, v, k * 0.05, 0.05, p)
    >>> round(float(out["ekf.params"][0]), 2)
    0.8
    """

    def __init__(
        self,
        model: ODEModel | None = None,
        estimate: tuple[str, ...] = (),
        q=1e-6,
        q_params=1e-6,
        r=1e-2,
        p0=1e-2,
        p0_params=1e-2,
        x0=None,
        jacobian: str = "auto",
        *,
        name: str | None = None,
    ) -> None:
        super().__init__(model, estimate, q, q_params, r, p0, p0_params, x0, name=name)
        self.jacobian = jacobian

    def check_params(self) -> None:
        super().check_params()
        check_choice(self, "jacobian", JACOBIANS)
        if self.jacobian == "analytic" and type(self.model).jacobian is ODEModel.jacobian:
            raise invalid_param(self, "jacobian", f"'auto' or 'fd' ({type(self.model).__name__} has no analytic "
                                "Jacobian)", self.jacobian)

    def reset(self, ctx: Context) -> None:
        super().reset(ctx)
        model, batch, n_x, n_a = self._model, ctx.batch, self._n_x, self._n_a
        # batch last in memory: the filter works on _z (n_a, B) and _P (n_a, n_a, B); z_ and P_ become their transposes
        self._z, self._P = self.z_.T.copy(), self.P_.transpose(1, 2, 0).copy()
        self.z_, self.P_ = self._z.T, self._P.transpose(2, 0, 1)
        self._z_post, self._P_post = self._z.copy(), self._P.copy()
        self._eye = np.eye(n_a)[:, :, None]
        x0, theta0, u0 = self.z_[:, :n_x], self._z[n_x:], np.zeros((batch, model.n_u))
        self._analytic = self.jacobian != "fd" and model.jacobian(x0, u0, 0.0, self._params(theta0)) is not None
        if self.jacobian == "analytic" and not self._analytic:  # a model whose jacobian returns None
            raise invalid_param(self, "jacobian", f"'auto' or 'fd' ({type(model).__name__} '{model.name}' gives no "
                                "analytic Jacobian)", self.jacobian)
        self._tangent = self._analytic and model.integrator in FIXED_STEP
        self._first_transition = n_x if self._analytic else 0  # F's columns from finite differences of advance
        self._F = np.zeros((n_a, n_a, batch))  # ∂z⁻/∂z; the parameter rows stay [0 I]
        self._F[n_x:, n_x:] = self._eye[n_x:, n_x:]
        # the state and its tangent D = ∂x/∂z, stacked (n_x + n_x n_a, B); D starts at [I 0]
        self._w = np.zeros((n_x + n_x * n_a, batch))
        self._w[n_x:].reshape(n_x, n_a, batch)[...] = self._eye[:n_x]
        c = model.observation_matrix()
        self._C = None if c is None else np.concatenate([c, np.zeros((model.n_y, n_a - n_x))], axis=1)[:, :, None]
        # memory reused every tick, so that a large batch allocates (and page-faults) little
        self._copies = {}  # the finite-difference copies (zs, us) by number of columns
        self._W1, self._W2 = np.empty((2, n_a, n_a, batch))
        self._H = np.empty((model.n_y, n_a, batch))

    def _differentiate(self, fun, z: np.ndarray, u: np.ndarray, first: int):
        """``fun`` at ``z (n, B)`` and its central-difference Jacobian over columns ``first:``, in one batched call.

        ``fun(zs, us)`` takes the ``1 + 2m`` copies of the batch side by side, ``zs (n, (1 + 2m) B)``
        and ``us ((1 + 2m) B, n_u)``, and returns ``((1 + 2m) B, n_out)``. Returns the value
        ``(n_out, B)`` and the Jacobian ``(n_out, m, B)``.
        """
        n, batch = z.shape
        m = n - first
        if m not in self._copies:
            self._copies[m] = np.empty((n, 1 + 2 * m, batch)), np.empty((u.shape[1], 1 + 2 * m, batch))
        zs, us = self._copies[m]
        h = FD_STEP * (1.0 + np.abs(z[first:]))  # (m, B)
        zs[...] = z[:, None]
        for i in range(m):  # copy 1 + i moves column first + i up by h, copy 1 + m + i down
            zs[first + i, 1 + i] += h[i]
            zs[first + i, 1 + m + i] -= h[i]
        us[:, 0] = u.T  # u is a strided view of the port memory: read it once
        us[:, 1:] = us[:, :1]
        values = fun(zs.reshape(n, -1), us.reshape(len(us), zs.shape[1] * batch).T)
        values = values.T.reshape(-1, 1 + 2 * m, batch)
        return values[:, 0].copy(), (values[:, 1 : 1 + m] - values[:, 1 + m :]) / (2 * h)

    def _observation(self, z: np.ndarray, u: np.ndarray, measured: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``h(z⁻) (n_y, B)`` and ``H (n_y, n, B)``, its rows zero where not ``measured``: ``[C 0]``, or differences."""
        model, n_x = self._model, self._n_x
        if self._C is None:
            def observe(zs, us):
                return model.observe(zs[:n_x].T, us, self._params(zs[n_x:]))

            hz, H = self._differentiate(observe, z, u, 0)
            H *= measured[:, None]
            return hz, H
        return model.observe(z[:n_x].T, u, self._params(z[n_x:])).T, np.multiply(self._C, measured[:, None],
                                                                               out=self._H)

    def _parameter_jacobian(self, x: np.ndarray, u: np.ndarray, t: float, p: dict) -> np.ndarray:
        """``∂f/∂θ`` at ``x (B, n_x)``, batch last ``(n_x, n_est, B)``: the model's, or central differences of ``f``."""
        jac = self._model.parameter_jacobian(x, u, t, p, self.estimate)
        if jac is not None:
            return jac.transpose(1, 2, 0)
        n_e, batch = len(self.estimate), len(x)
        theta = np.stack([p[name] for name in self.estimate])  # (n_e, B)
        h = FD_STEP * (1.0 + np.abs(theta))
        shifted = np.repeat(theta[:, None], 2 * n_e, axis=1)  # copy i moves θ_i up by h, copy n_e + i down
        for i in range(n_e):
            shifted[i, i] += h[i]
            shifted[i, n_e + i] -= h[i]
        copies = (2 * n_e, 1)
        rates = self._model.derivative(np.tile(x, copies), np.tile(u, copies), t,
                                       self._params(shifted.reshape(n_e, -1))).reshape(2 * n_e, batch, -1)
        return ((rates[:n_e] - rates[n_e:]) / (2 * h[:, :, None])).transpose(2, 0, 1)

    def _tangent_step(self, z: np.ndarray, u: np.ndarray, t: float) -> np.ndarray:
        """``x⁺ (n_x, B)`` by the model's integrator, with ``F[:n_x] = ∂x⁺/∂z`` from the tangent carried along."""
        model, n_x, n_a = self._model, self._n_x, self._n_a
        p = self._params(z[n_x:])

        def f(w, us, s):  # the stacked state [x, D]: its rate [f, ∂f/∂x D + [0 ∂f/∂θ]]
            x, D = w[:n_x].T, w[n_x:].reshape(n_x, n_a, -1)
            rate = np.empty_like(w)
            rate[:n_x] = model.derivative(x, us, s, p).T
            dD = rate[n_x:].reshape(n_x, n_a, -1)
            matmul(np.ascontiguousarray(model.jacobian(x, us, s, p).transpose(1, 2, 0)), D, out=dD)
            if n_a > n_x:
                dD[:, n_x:] += self._parameter_jacobian(x, us, s, p)
            return rate

        self._w[:n_x] = z[:n_x]
        w = FIXED_STEP[model.integrator](f, self._w, u, t, self._dt, model.substeps)
        self._F[:n_x] = w[n_x:].reshape(n_x, n_a, -1)
        return w[:n_x]

    def _transition(self, z: np.ndarray, u: np.ndarray, t: float) -> np.ndarray:
        """``x⁺ (n_x, B)`` from the posterior ``z``, with ``F``'s state rows filled in."""
        if self._tangent:
            return self._tangent_step(z, u, t)
        model, n_x, first = self._model, self._n_x, self._first_transition

        def step(zs, us):
            return model.advance(zs[:n_x].T, us, t, self._dt, self._params(zs[n_x:]))

        x_next, self._F[:n_x, first:] = self._differentiate(step, z, u, first)
        if self._analytic:  # solve_ivp: the flow of the Jacobian frozen at the start of the tick
            jac = model.jacobian(z[:n_x].T, u, t, self._params(z[n_x:]))
            self._F[:n_x, :n_x] = expm(jac * self._dt).transpose(1, 2, 0)
        return x_next

    def output(self, t, inp, out):
        u = inp.u if self._has_input else self._no_input
        z, P = self._z, self._P
        measured = self._measured(inp.y, t).T
        hz, H = self._observation(z, u, measured)
        nu = np.subtract(inp.y.T, hz, out=np.zeros_like(hz), where=measured)
        S = np.einsum("jkb,klb,jlb->jb", H, P, H) + self._R[:, None]
        z, nis, IKH, work = self._z_post, np.zeros(z.shape[1]), self._W2, self._W1
        z[...] = self._z
        for j, (h, r) in enumerate(zip(H, self._R, strict=True)):  # one element at a time: exact for diagonal R
            PHt = np.einsum("ikb,kb->ib", P, h)
            s = np.einsum("kb,kb->b", h, PHt) + r
            K = PHt / s
            nu_j = nu[j] if j == 0 else nu[j] - np.einsum("kb,kb->b", h, z - self._z)  # given elements < j
            z += K * nu_j
            np.subtract(self._eye, np.multiply(K[:, None], h[None], out=IKH), out=IKH)
            P = sandwich(IKH, P, out=self._P_post, work=work)
            P += np.multiply(r * K[:, None], K[None], out=work)  # + K R_jj Kᵀ
            nis += nu_j**2 / s
        np.add(P, P.transpose(1, 0, 2), out=work)
        np.divide(work, 2, out=self._P_post)
        self._publish_gaussian(out, z.T, self._P_post.transpose(2, 0, 1), nu.T, S.T, nis)

    def update(self, t, inp):
        u = inp.u if self._has_input else self._no_input
        z, n_x = self._z_post, self._n_x
        x_next = self._transition(z, u, t)
        P = sandwich(self._F, self._P_post, out=self._W2, work=self._W1)
        diagonal_view(P)[...] += self._q[:, None]
        self._z[:n_x] = x_next
        self._z[n_x:] = z[n_x:]
        np.add(P, P.transpose(1, 0, 2), out=self._P)
        self._P /= 2
