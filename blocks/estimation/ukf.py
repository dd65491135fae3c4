"""The unscented Kalman filter block: state and parameter estimation with sigma points, no Jacobians."""

import numpy as np

from twingraph import Context, SimulationError
from twingraph.errors import check_number, invalid_param

from ..physics.ode import ODEModel
from .filter import KalmanFilter


def merwe_weights(n: int, alpha: float, beta: float, kappa: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Mean and covariance weights of Van der Merwe's ``2 n + 1`` scaled sigma points, and their spread ``√(n + λ)``.

    Examples
    --------
    >>> wm, wc, spread = merwe_weights(2, alpha=1.0, beta=2.0, kappa=1.0)
    >>> wm
    array([0.33333333, 0.16666667, 0.16666667, 0.16666667, 0.16666667])
    >>> wc
    array([2.33333333, 0.16666667, 0.16666667, 0.16666667, 0.16666667])
    >>> round(spread**2, 12)
    3.0
    """
    lam = alpha**2 * (n + kappa) - n
    wm = np.full(2 * n + 1, 0.5 / (n + lam))
    wc = wm.copy()
    wm[0] = lam / (n + lam)
    wc[0] = wm[0] + 1.0 - alpha**2 + beta
    return wm, wc, float(np.sqrt(n + lam))


class UKF(KalmanFilter):
    """Unscented Kalman filter over an :class:`~blocks.physics.ode.ODEModel`, with parameter estimation.

    Same model, parameters, ports and tick as :class:`~blocks.estimation.EKF`,
    but the mean and covariance are carried through the model by ``2 n + 1``
    sigma points (Van der Merwe's scaled set) instead of a linearisation: no
    Jacobian is needed, and the estimate is exact to second order in the
    nonlinearity where the EKF's is to first.

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
        Measurement noise variance [y unit²], one value or ``(n_y,)`` (R is diagonal), > 0.
    p0 : float or array_like
        Initial state variance [state unit²], > 0 (the sigma points need P positive definite).
    p0_params : float or array_like
        Initial variance of the estimated parameters [param unit²], > 0.
    x0 : array_like or None
        Initial state estimate ``(n_x,)`` or ``(B, n_x)``; ``None`` uses the model's ``x0``.
        The parameters start at the model's values.
    alpha : float
        Spread of the sigma points around the mean, > 0 [-]; the points lie
        ``α √(n + κ)`` standard deviations out. Small α (1e-3) keeps them local
        but gives the centre point a weight of order ``-1/α²``, which loses
        precision when P spans many orders of magnitude; 1 (the default)
        spreads them as far as the unscaled transform.
    beta : float
        Prior knowledge of the distribution, ≥ 0 [-]; 2 is optimal for a Gaussian.
    kappa : float
        Secondary scaling [-], with ``n + κ > 0``; 0 or ``3 - n`` are usual.
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
    innovation (out) : ``ν = y - ŷ⁻``, shape ``(n_y,)``; 0 for missing elements.
    S (out) : diagonal of the innovation covariance, shape ``(n_y,)``.
    nis (out) : normalised innovation squared ``νᵀ S⁻¹ ν``, shape ``()`` [-]; χ² with as many degrees
        of freedom as measured elements when the filter is consistent.

    Notes
    -----
    State ``z = [x, θ]`` of size ``n``, θ the estimated parameters (random
    walks). Sigma points of a mean ``m`` and covariance ``P`` (Cholesky ``L Lᵀ = P``)::

        λ = α² (n + κ) - n
        χ_0 = m,   χ_i = m + √(n + λ) L_i,   χ_{n+i} = m - √(n + λ) L_i     (L_i the i-th column)
        W^m_0 = λ / (n + λ),   W^c_0 = W^m_0 + 1 - α² + β,   W^m_i = W^c_i = 1 / (2 (n + λ))

    At tick ``k`` the block receives ``u_k`` and ``y_k``, updates the prior
    ``z⁻, P⁻`` (phase 1, so the block is direct feedthrough) and outputs the
    posterior; phase 2 predicts to ``k + 1``::

        χ = sigma points of (z⁻, P⁻),   Y_i = h(χ_i, u_k)
        ŷ⁻ = Σ W^m_i Y_i
        S = Σ W^c_i (Y_i - ŷ⁻)(Y_i - ŷ⁻)ᵀ + R
        C = Σ W^c_i (χ_i - z⁻)(Y_i - ŷ⁻)ᵀ
        K = C S⁻¹                                 solved, never inverted
        ν = y_k - ŷ⁻
        z = z⁻ + K ν
        P = P⁻ - K S Kᵀ
        χ = sigma points of (z, P),   χ⁺_i = [advance(x_i, u_k, t_k, dt, θ_i), θ_i]
        z⁻ ← Σ W^m_i χ⁺_i
        P⁻ ← Σ W^c_i (χ⁺_i - z⁻)(χ⁺_i - z⁻)ᵀ + Q

    The sigma points are redrawn from the prior before the update, so that
    the update sees ``Q`` (as filterpy does). ``P = P⁻ - K S Kᵀ`` has no Joseph
    form without an ``H``; P is symmetrised after each step instead, and a
    P that is no longer positive definite (a diverged filter, or variances
    too small for float64) stops the run with a SimulationError naming the
    block rather than a silent NaN. All ``2 n + 1`` sigma points of the whole
    batch go through ``advance`` and ``observe`` in one call.

    A missing element of ``y`` (NaN) zeroes its deviations ``Y_i - ŷ⁻`` and
    its innovation: its row and column of ``S`` reduce to ``R_ii``, its
    column of ``C`` and so of ``K`` is zero, and the update is exactly a
    predict-only step for that element, per asset, without branching.

    References
    ----------
    Wan, E. A. and van der Merwe, R. (2000). The unscented Kalman filter for
    nonlinear estimation. *IEEE AS-SPCC*, 153–158.

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
    >>> ukf = g.add(UKF(model=model, estimate=("efficiency",), q=[1e-6, 1e-14], q_params=1e-6, r=1e-12,
    ...                 p0=[1e-2, 1e-12], p0_params=0.1, name="ukf"))
    >>> g.connect(u.out.value, ukf.inp.u)
    >>> g.connect(y.out.value, ukf.inp.y)
    >>> rng = np.random.default_rng(0)
    >>> x, p = truth.initial_state(1), truth.batch_params(1)
    >>> sim = tg.Simulator(g)
    >>> for k in range(200):
    ...     v = np.full((1, 1), 12.0)
    ...     flow = truth.observe(x, v, p) + 1e-6 * rng.normal()
    ...     out = sim.step(u=v, y=flow)
    ...     x = truth.advance(x, v, k * 0.05, 0.05, p)
    >>> round(float(out["ukf.params"][0]), 2)
    0.8
    """

    positive = ("r", "p0", "p0_params")  # the sigma points need P and S positive definite

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
        alpha: float = 1.0,
        beta: float = 2.0,
        kappa: float = 0.0,
        *,
        name: str | None = None,
    ) -> None:
        super().__init__(model, estimate, q, q_params, r, p0, p0_params, x0, name=name)
        self.alpha = alpha
        self.beta = beta
        self.kappa = kappa

    def check_params(self) -> None:
        super().check_params()
        check_number(self, "alpha", low=0, low_open=True)
        check_number(self, "beta", low=0)
        check_number(self, "kappa")
        n = self.model.n_x + len(self.estimate)
        if not n + self.kappa > 0:
            raise invalid_param(self, "kappa", f"> -{n} (n + kappa > 0 for n = {n} states and estimated parameters)",
                                self.kappa)

    def reset(self, ctx: Context) -> None:
        super().reset(ctx)
        self._Q = np.diag(self._q)
        self._Wm, self._Wc, self._spread = merwe_weights(self._n_a, self.alpha, self.beta, self.kappa)
        self._z_post, self._P_post = self.z_.copy(), self.P_.copy()

    def _sigma_points(self, z: np.ndarray, P: np.ndarray, t: float, which: str) -> np.ndarray:
        """The ``(2 n + 1, B, n)`` sigma points of means ``z (B, n)`` and covariances ``P (B, n, n)``."""
        try:
            L = np.linalg.cholesky(P)
        except np.linalg.LinAlgError:
            L = None
        if L is None or not np.isfinite(L).all():
            raise self._lost_definiteness(P, t, which)
        offsets = self._spread * L.transpose(2, 0, 1)  # (n, B, n): column i of each L
        return np.concatenate([z[None], z + offsets, z - offsets])

    def _lost_definiteness(self, P: np.ndarray, t: float, which: str) -> SimulationError:
        finite = np.isfinite(P).all(axis=(1, 2))
        smallest = np.full(len(P), -np.inf)  # a non-finite P reports as -inf
        smallest[finite] = np.linalg.eigvalsh(P[finite])[:, 0]
        worst = int(np.argmin(smallest))
        return SimulationError(
            f"UKF '{self.name}': the {which} covariance P is not positive definite at t = {t:g} s "
            f"(asset {worst}: smallest eigenvalue {smallest[worst]:.3g}; {int(np.sum(~(smallest > 0)))} of "
            f"{len(P)} assets with one <= 0 or NaN). The filter diverged or its variances are too small for "
            f"float64: raise q, q_params or r, or lower alpha."
        )

    def _moments(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Weighted mean ``(B, m)`` and deviations ``(2 n + 1, B, m)`` of sigma points ``(2 n + 1, B, m)``."""
        mean = np.einsum("s,sbi->bi", self._Wm, points)
        return mean, points - mean

    def _cross(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``Σ W^c_i a_i b_iᵀ`` per asset, ``(B, m_a, m_b)``, from deviations ``(2 n + 1, B, m)``."""
        return (a * self._Wc[:, None, None]).transpose(1, 2, 0) @ b.transpose(1, 0, 2)

    def _arguments(self, chi: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """The model's ``x``, ``u`` and ``p`` for every sigma point ``chi (2 n + 1, B, n)`` at once."""
        flat = chi.reshape(-1, self._n_a)
        return flat[:, : self._n_x], np.tile(u, (len(chi), 1)), self._params(flat[:, self._n_x :].T)

    def _observe(self, chi: np.ndarray, u: np.ndarray) -> np.ndarray:
        """``h`` of every sigma point ``chi (2 n + 1, B, n)``, in one call: ``(2 n + 1, B, n_y)``."""
        y = self._model.observe(*self._arguments(chi, u))
        return y.reshape(chi.shape[0], chi.shape[1], -1)

    def _advance(self, chi: np.ndarray, u: np.ndarray, t: float) -> np.ndarray:
        """Every sigma point moved to ``t + dt`` in one call, parameters held: ``(2 n + 1, B, n)``."""
        x, us, p = self._arguments(chi, u)
        x_next = self._model.advance(x, us, t, self._dt, p)
        return np.concatenate([x_next.reshape(chi.shape[0], chi.shape[1], -1), chi[:, :, self._n_x :]], axis=2)

    def output(self, t, inp, out):
        u = inp.u if self._has_input else self._no_input
        z, P, R = self.z_, self.P_, self._R
        measured = self._measured(inp.y, t)
        chi = self._sigma_points(z, P, t, "prior")
        y_hat, dY = self._moments(self._observe(chi, u))
        dY = dY * measured  # a missing element: no spread, so S_ii = R_ii and K's column is 0
        S = self._cross(dY, dY) + np.diag(R)
        C = self._cross(chi - z, dY)
        nu = np.where(measured, inp.y - y_hat, 0.0)
        solved = np.linalg.solve(S, np.concatenate([C.transpose(0, 2, 1), nu[:, :, None]], axis=2))
        K, S_inv_nu = solved[:, :, :-1].transpose(0, 2, 1), solved[:, :, -1]  # K = C S⁻¹ and S⁻¹ ν, one solve
        z = z + (K @ nu[:, :, None])[:, :, 0]
        P = P - K @ S @ K.transpose(0, 2, 1)
        self._z_post = z
        self._P_post = (P + P.transpose(0, 2, 1)) / 2
        nis = np.einsum("bi,bi->b", nu, S_inv_nu)
        self._publish_gaussian(out, z, self._P_post, nu, np.diagonal(S, axis1=1, axis2=2), nis)

    def update(self, t, inp):
        u = inp.u if self._has_input else self._no_input
        chi = self._sigma_points(self._z_post, self._P_post, t, "posterior")
        z, dz = self._moments(self._advance(chi, u, t))
        P = self._cross(dz, dz) + self._Q
        self.z_[...] = z
        self.P_[...] = (P + P.transpose(0, 2, 1)) / 2
