"""The extended Kalman filter block: state and parameter estimation around an ODE model."""

import numpy as np
from scipy.linalg import expm

from twingraph import Block, Context, Signal

from ..physics.library import PumpLike
from ..physics.ode import ODEModel, common_unit, invalid_param

JACOBIANS = ("auto", "analytic", "fd")
FD_STEP = np.finfo(float).eps ** (1 / 3)  # central differences: truncation O(h²) balances rounding O(eps / h)


def diagonal(value, size: int) -> np.ndarray:
    """A scalar or one value per element, as a ``(size,)`` array of variances."""
    return np.broadcast_to(np.asarray(value, dtype=float), (size,)).copy()


class EKF(Block):
    """Extended Kalman filter over an :class:`~blocks.physics.ode.ODEModel`, with parameter estimation.

    The filter estimates the model's state and, optionally, named physical
    parameters appended to it as random walks (state augmentation). It calls
    the model's pure functions (:meth:`~blocks.physics.ode.ODEModel.advance`,
    :meth:`~blocks.physics.ode.ODEModel.observe`,
    :meth:`~blocks.physics.ode.ODEModel.jacobian`) with its own arrays; the
    model block itself is never stepped or reset by the filter.

    Parameters
    ----------
    model : ODEModel or None
        The process model; ``None`` uses ``PumpLike()``.
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
        ``"analytic"`` discretises the model's :meth:`jacobian` (the parameter
        columns still come from finite differences); ``"fd"`` uses central
        finite differences of ``advance``; ``"auto"`` picks analytic when the
        model supplies it.
    name : str or None
        Block name.

    Ports
    -----
    u (in) : model input, shape ``(n_u,)``; absent when the model has no input.
    y (in) : measurement, shape ``(n_y,)``; a NaN element is a missing measurement.
    x_hat (out) : filtered state ``x̂_{k|k}``, shape ``(n_x,)``.
    params (out) : filtered estimated parameters, shape ``(n_est,)``; absent when ``estimate`` is empty.
    P (out) : diagonal of the filtered covariance of ``[x, params]``, shape ``(n_x + n_est,)``.
    innovation (out) : ``ν = y - h(x̂⁻)``, shape ``(n_y,)``; 0 for missing elements.
    S (out) : diagonal of the innovation covariance, shape ``(n_y,)``.
    normalized_innovation (out) : NIS ``νᵀ S⁻¹ ν``, shape ``()`` [-]; χ² with as many degrees
        of freedom as measured elements when the filter is consistent.

    Notes
    -----
    State ``z = [x, θ]``, θ the estimated parameters. At tick ``k`` the block
    receives ``u_k`` and ``y_k``, updates the prior ``z⁻, P⁻`` (phase 1, so
    the block is direct feedthrough) and outputs the posterior; phase 2
    predicts to ``k + 1``::

        H = ∂h/∂z (z⁻, u_k)                     central finite differences
        ν = y_k - h(z⁻, u_k)
        S = H P⁻ Hᵀ + R
        K = P⁻ Hᵀ S⁻¹                           solved, never inverted
        z = z⁻ + K ν
        P = (I - K H) P⁻ (I - K H)ᵀ + K R Kᵀ    Joseph form
        z⁻ ← [advance(x, u_k, t_k, dt, θ), θ]
        P⁻ ← F P Fᵀ + Q,   F = ∂z⁻/∂z

    The Joseph form stays symmetric positive semi-definite under rounding and
    for any gain, where ``(I - K H) P`` does not; P is symmetrised after each
    step. ``F`` is the Jacobian of the discrete step: by central differences
    of ``advance`` (all ``2 (n_x + n_est)`` perturbed copies of the batch in
    one call), or from the analytic ``J = ∂f/∂x`` discretised consistently
    with the model's integrator: per substep ``h``, ``I + J h + … + (J h)⁴/4!``
    for RK4 (the exact RK4 step of a linear model), ``I + J h`` for Euler,
    ``expm(J dt)`` for ``solve_ivp``.

    A missing element of ``y`` (NaN) zeroes its row of ``H`` and its
    innovation; with R diagonal, its row and column of ``S`` reduce to
    ``R_ii``, its column of ``K`` is zero, and the update is exactly a
    predict-only step for that element, per asset, without branching.

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

    direct_feedthrough = True

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
        super().__init__(name=name)
        self.model = model
        self.estimate = estimate
        self.q = q
        self.q_params = q_params
        self.r = r
        self.p0 = p0
        self.p0_params = p0_params
        self.x0 = x0
        self.jacobian = jacobian

    @property
    def process(self) -> ODEModel:
        """The model the filter runs (``PumpLike()`` when ``model`` is None)."""
        return PumpLike() if self.model is None else self.model

    def check_params(self) -> None:
        """Raise WiringError naming the first invalid param."""
        model = self.process
        if not isinstance(model, ODEModel):
            raise invalid_param(self, "model", "an ODEModel block", model)
        model.check_params()
        unknown = [p for p in self.estimate if p not in model.parameters]
        if isinstance(self.estimate, str) or unknown:
            raise invalid_param(self, "estimate", f"a tuple of names from {list(model.parameters)}", self.estimate)
        if self.jacobian not in JACOBIANS:
            raise invalid_param(self, "jacobian", f"one of {list(JACOBIANS)}", self.jacobian)
        n_x, n_e, n_y = model.n_x, len(self.estimate), model.n_y
        for param, size in (("q", n_x), ("q_params", n_e), ("r", n_y), ("p0", n_x), ("p0_params", n_e)):
            value = np.asarray(getattr(self, param), dtype=float)
            if value.ndim > 1 or value.size not in (1, size) or not np.all(value >= 0):
                raise invalid_param(self, param, f"a variance >= 0 or {size} of them", getattr(self, param))
        if not np.all(np.asarray(self.r, dtype=float) > 0):
            raise invalid_param(self, "r", "> 0 (a measurement variance)", self.r)

    def input_signals(self) -> dict[str, Signal]:
        model = self.process
        ports = {"u": Signal(shape=(model.n_u,), unit=model.input_unit)} if model.n_u else {}
        ports["y"] = Signal(shape=(model.n_y,), unit=model.y_unit)
        return ports

    def output_signals(self, inputs):
        self.check_params()
        model = self.process
        n_e = len(self.estimate)
        ports = {"x_hat": Signal(shape=(model.n_x,), unit=common_unit(model.state_units))}
        if n_e:
            ports["params"] = Signal(shape=(n_e,))
        ports["P"] = Signal(shape=(model.n_x + n_e,))
        ports["innovation"] = Signal(shape=(model.n_y,), unit=model.y_unit)
        ports["S"] = Signal(shape=(model.n_y,))
        ports["normalized_innovation"] = Signal(shape=(), unit="")
        return ports

    def reset(self, ctx: Context) -> None:
        self.check_params()
        model = self._model = self.process
        batch, n_x, n_e = ctx.batch, model.n_x, len(self.estimate)
        self._n_x, self._n_a, self._dt = n_x, n_x + n_e, ctx.dt
        self._p = model.batch_params(batch)
        if self.x0 is None:
            x0 = model.initial_state(batch)
        else:
            x0 = np.broadcast_to(np.asarray(self.x0, dtype=float), (batch, n_x))
        theta0 = np.stack([self._p[name] for name in self.estimate], axis=1) if n_e else np.zeros((batch, 0))
        self.z_ = np.concatenate([x0, theta0], axis=1)
        variances = np.concatenate([diagonal(self.p0, n_x), diagonal(self.p0_params, n_e)])
        self.P_ = np.broadcast_to(np.diag(variances), (batch, self._n_a, self._n_a)).copy()
        self._Q = np.diag(np.concatenate([diagonal(self.q, n_x), diagonal(self.q_params, n_e)]))
        self._R = diagonal(self.r, model.n_y)
        self._I = np.eye(self._n_a)
        self._has_input = model.n_u > 0
        self._no_input = np.zeros((batch, 0))
        u0 = np.zeros((batch, model.n_u))
        self._analytic = self.jacobian == "analytic" or (
            self.jacobian == "auto" and model.jacobian(x0, u0, 0.0, self._params(self.z_)) is not None
        )
        self._transition_columns = np.arange(n_x if self._analytic else 0, self._n_a)
        self._z_post = self.z_.copy()
        self._P_post = self.P_.copy()

    def _params(self, z: np.ndarray) -> dict[str, np.ndarray]:
        """The model's parameter dict for rows of ``z`` (copies of the batch stacked along axis 0)."""
        copies = len(z) // len(self.z_)
        p = {name: np.tile(value, copies) for name, value in self._p.items()}
        for i, name in enumerate(self.estimate):
            p[name] = z[:, self._n_x + i]
        return p

    def _differentiate(self, fun, z: np.ndarray, u: np.ndarray, columns: np.ndarray):
        """``fun(z)`` and its central-difference Jacobian over ``columns``, in one batched call of ``fun``."""
        batch, n = z.shape
        m = len(columns)
        h = FD_STEP * (1.0 + np.abs(z[:, columns]))  # (B, m)
        zs = np.broadcast_to(z, (1 + 2 * m, batch, n)).copy()
        zs[1 + np.arange(m), :, columns] += h.T
        zs[1 + m + np.arange(m), :, columns] -= h.T
        values = fun(zs.reshape(-1, n), np.tile(u, (1 + 2 * m, 1))).reshape(1 + 2 * m, batch, -1)
        jac = (values[1 : 1 + m] - values[1 + m :]) / (2 * h.T[:, :, None])  # (m, B, n_out)
        return values[0], jac.transpose(1, 2, 0)

    def _observe(self, z: np.ndarray, u: np.ndarray) -> np.ndarray:
        return self._model.observe(z[:, : self._n_x], u, self._params(z))

    def _discrete_jacobian(self, z: np.ndarray, u: np.ndarray, t: float) -> np.ndarray:
        """``∂x⁺/∂x`` from the model's analytic ``∂f/∂x``, consistent with its integrator."""
        model = self._model
        jac = model.jacobian(z[:, : self._n_x], u, t, self._params(z))
        if model.integrator == "solve_ivp":
            return expm(jac * self._dt)
        h = self._dt / model.substeps
        a = jac * h
        eye = np.eye(self._n_x)
        step = eye + a
        if model.integrator == "rk4":
            a2 = a @ a
            step = step + a2 / 2 + a2 @ a / 6 + a2 @ a2 / 24
        return np.linalg.matrix_power(step, model.substeps)

    def output(self, t, inp, out):
        u = inp.u if self._has_input else self._no_input
        z, P, R = self.z_, self.P_, self._R
        measured = np.isfinite(inp.y)
        hz, H = self._differentiate(self._observe, z, u, np.arange(self._n_a))
        H = H * measured[:, :, None]
        nu = np.where(measured, inp.y - np.where(measured, hz, 0.0), 0.0)
        PHt = P @ H.transpose(0, 2, 1)
        S = H @ PHt + np.diag(R)
        K = np.linalg.solve(S, PHt.transpose(0, 2, 1)).transpose(0, 2, 1)
        z = z + (K @ nu[:, :, None])[:, :, 0]
        IKH = self._I - K @ H
        P = IKH @ P @ IKH.transpose(0, 2, 1) + (K * R) @ K.transpose(0, 2, 1)
        self._z_post = z
        self._P_post = (P + P.transpose(0, 2, 1)) / 2
        out.x_hat[...] = z[:, : self._n_x]
        if self._n_a > self._n_x:
            out.params[...] = z[:, self._n_x :]
        out.P[...] = np.diagonal(self._P_post, axis1=1, axis2=2)
        out.innovation[...] = nu
        out.S[...] = np.diagonal(S, axis1=1, axis2=2)
        out.normalized_innovation[...] = np.einsum("bi,bi->b", nu, np.linalg.solve(S, nu[:, :, None])[:, :, 0])

    def update(self, t, inp):
        u = inp.u if self._has_input else self._no_input
        z, P, n_x = self._z_post, self._P_post, self._n_x

        def step(zs, us):
            return self._model.advance(zs[:, :n_x], us, t, self._dt, self._params(zs))

        x_next, jac = self._differentiate(step, z, u, self._transition_columns)
        F = np.broadcast_to(self._I, P.shape).copy()
        F[:, :n_x, self._transition_columns] = jac
        if self._analytic:
            F[:, :n_x, :n_x] = self._discrete_jacobian(z, u, t)
        P = F @ P @ F.transpose(0, 2, 1) + self._Q
        self.z_[:, :n_x] = x_next
        self.z_[:, n_x:] = z[:, n_x:]
        self.P_[...] = (P + P.transpose(0, 2, 1)) / 2
