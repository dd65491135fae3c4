"""The particle filter block: state and parameter estimation by a weighted cloud of samples."""

import numpy as np

from twingraph import Context, Signal
from twingraph.errors import check_array, check_choice, check_number, invalid_param

from ..physics.ode import ODEModel
from .filter import ModelFilter

RESAMPLING = ("systematic", "residual")


def systematic(weights, u) -> np.ndarray:
    """Copies of each particle under systematic resampling, ``(N, ...)`` ints that sum to N along axis 0.

    ``weights (N, ...)`` are normalised along axis 0; ``u`` in ``[0, 1)`` is
    the offset of the N evenly spaced positions ``(j + u) / N`` (one per
    column, broadcast against ``weights.shape[1:]``). Particle ``i`` gets as
    many copies as positions in ``[C_{i-1}, C_i)``, ``C`` the cumulative
    weights: ``⌈N C_i - u⌉ - ⌈N C_{i-1} - u⌉``, which is ``⌊N w_i⌋`` or
    ``⌈N w_i⌉``, and ``N w_i`` on average over a uniform ``u``.

    Examples
    --------
    >>> systematic(np.array([0.5, 0.3, 0.2]), 0.5)
    array([1, 1, 1])
    >>> systematic(np.array([0.5, 0.3, 0.2]), 0.1)
    array([2, 1, 0])
    """
    weights = np.asarray(weights, dtype=float)
    n = len(weights)
    cumulative = np.cumsum(weights, axis=0)
    cumulative[-1] = 1.0  # rounding must not lose the last position
    edges = np.ceil(n * cumulative - u)
    return np.diff(edges, axis=0, prepend=0.0).astype(int)


def residual(weights, u) -> np.ndarray:
    """Copies of each particle under residual resampling, ``(N, ...)`` ints that sum to N along axis 0.

    Particle ``i`` keeps ``⌊N w_i⌋`` copies; the ``R = N - Σ ⌊N w_i⌋`` others
    are drawn independently with probabilities proportional to the residues
    ``N w_i - ⌊N w_i⌋`` (multinomially), by inverting their cumulative sum at
    the first ``R`` of the uniforms ``u (N, ...)`` in ``[0, 1)`` (broadcast
    against ``weights``). Each particle gets ``N w_i`` copies on average.

    Examples
    --------
    ``N w = (1.5, 0.9, 0.6)`` keeps ``(1, 0, 0)``; the residues ``(0.5, 0.9, 0.6) / 2``
    place the two draws 0.9 and 0.1 on the last and first particles:

    >>> residual(np.array([0.5, 0.3, 0.2]), np.array([0.9, 0.1, 0.5]))
    array([2, 0, 1])
    """
    weights = np.asarray(weights, dtype=float)
    n = len(weights)
    columns = weights.reshape(n, -1)
    counts = np.floor(n * columns)
    residue = n * columns - counts
    rest = n - counts.sum(axis=0)  # R per column
    cumulative = np.cumsum(residue, axis=0) / np.maximum(rest, 1.0)
    cumulative[-1] = 1.0
    m = columns.shape[1]
    offset = np.arange(m)
    uniforms = np.broadcast_to(u, weights.shape).reshape(n, m)
    found = np.searchsorted((cumulative + offset).T.ravel(), (uniforms + offset).T.ravel(), side="right")
    drawn = np.minimum(found.reshape(m, n) - n * offset[:, None], n - 1)  # (m, N): column, draw
    taken = np.arange(n) < rest[:, None]  # the first R draws of each column
    extra = np.bincount((drawn + n * offset[:, None])[taken], minlength=n * m).reshape(m, n).T
    return (counts + extra).astype(int).reshape(weights.shape)


def weighted_quantiles(values: np.ndarray, weights: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Quantiles of weighted samples along axis 0: ``(n_q, ...)`` from ``values (N, ...)`` and ``weights (N, ...)``.

    The quantile at level ``p`` is the smallest sample whose cumulative weight
    (samples in increasing order) reaches ``p``: the inverse of the weighted
    empirical distribution function. ``weights`` broadcast against ``values``
    and are normalised along axis 0.

    Examples
    --------
    >>> weighted_quantiles(np.array([3.0, 1.0, 2.0]), np.array([0.2, 0.5, 0.3]), np.array([0.5, 0.6, 1.0]))
    array([1., 2., 3.])
    """
    weights = np.broadcast_to(weights, values.shape)
    return np.quantile(values, levels, axis=0, weights=weights, method="inverted_cdf")


class ParticleFilter(ModelFilter):
    """Particle filter over an :class:`~blocks.physics.ode.ODEModel`, with parameter estimation.

    Same model, parameters and tick as :class:`~blocks.estimation.EKF` and
    :class:`~blocks.estimation.UKF`, but the posterior of ``[x, params]`` is
    a cloud of N weighted samples (particles) per asset, so it may be skewed
    or have several modes: the model is neither linearised nor assumed to
    keep a Gaussian posterior. Besides the mean and variances the block
    publishes standard deviations, chosen quantiles and the cloud itself.

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
        Initial state variance [state unit²]: the initial cloud is Gaussian around the initial estimate.
    p0_params : float or array_like
        Initial variance of the estimated parameters [param unit²].
    x0 : array_like or None
        Initial state estimate ``(n_x,)`` or ``(B, n_x)``; ``None`` uses the model's ``x0``.
        The parameters start at the model's values.
    n_particles : int
        Particles per asset, N ≥ 1; the Monte Carlo error of the estimates falls as ``1/√N``.
    resampling : {"systematic", "residual"}
        How the cloud is resampled (:func:`systematic`, :func:`residual`).
    ess_threshold : float
        Resample when the effective sample size falls below ``ess_threshold · N``, in [0, 1] [-];
        0 never resamples, 1 resamples every tick.
    jitter : float
        Roughening constant K ≥ 0 [-] of the estimated parameters after resampling (0: none).
    seed : int
        Seed of the random number generator, ≥ 0; the same seed gives the same run.
    quantiles : sequence of float
        Levels in [0, 1] of the published quantiles.
    name : str or None
        Block name.

    Ports
    -----
    u (in) : model input, shape ``(n_u,)``; absent when the model has no input.
    y (in) : measurement, shape ``(n_y,)``; a NaN element is a missing measurement,
        ±inf stops the run with a SimulationError.
    x_hat (out) : posterior mean of the state, shape ``(n_x,)``.
    params (out) : posterior mean of the estimated parameters, shape ``(n_est,)``; absent when
        ``estimate`` is empty.
    P (out) : posterior variances of ``[x, params]``, shape ``(n_x + n_est,)``.
    innovation (out) : ``ν = y - ŷ⁻``, the measurement minus its prediction (the prior cloud's mean),
        shape ``(n_y,)``; 0 for missing elements.
    S (out) : diagonal of the covariance of the predicted measurement, ``R`` included, shape ``(n_y,)``.
    nis (out) : normalised innovation squared ``νᵀ S⁻¹ ν``, shape ``()`` [-]; close to χ² with as many
        degrees of freedom as measured elements when the filter is consistent.
    std (out) : posterior standard deviations of ``[x, params]``, shape ``(n_x + n_est,)``.
    quantiles (out) : posterior quantiles of ``[x, params]`` at the ``quantiles`` levels, one row per
        level, shape ``(n_q, n_x + n_est)``.
    particles (out) : the posterior cloud ``[x, params]``, shape ``(N, n_x + n_est)``.
    weights (out) : the particles' normalised weights, shape ``(N,)``.

    Notes
    -----
    State ``z = [x, θ]`` of size ``n``, θ the estimated parameters (random
    walks), carried by particles ``z_i`` with normalised weights ``w_i``. At
    tick ``k`` the block receives ``u_k`` and ``y_k``, weighs the prior cloud
    by the likelihood of ``y_k`` (phase 1, so the block is direct
    feedthrough) and outputs the posterior; phase 2 resamples where the
    weights have degenerated and predicts to ``k + 1`` (the bootstrap filter)::

        Y_i = h(x_i, u_k, θ_i)
        ŷ⁻ = Σ w_i Y_i,   ν = y_k - ŷ⁻,   S = Σ w_i (Y_i - ŷ⁻)(Y_i - ŷ⁻)ᵀ + R,   NIS = νᵀ S⁻¹ ν
        log w_i ← log w_i - ½ Σ_j (y_kj - Y_ij)² / R_jj,   then minus log Σ_i exp(log w_i)
        ẑ = Σ w_i z_i,   P_j = Σ w_i (z_ij - ẑ_j)²,   std_j = √P_j
        quantile at p: the smallest z_ij whose cumulative weight (in increasing order) reaches p
        ESS = 1 / Σ w_i²;   where ESS < ess_threshold · N: resample (w_i = 1/N), then roughen θ:
            θ_ij ← θ_ij + K E_j N^(-1/n_est) ε_ij,   E_j = max_i θ_ij - min_i θ_ij
        x_i ← advance(x_i, u_k, t_k, dt, θ_i) + √q ε_i,   θ_i ← θ_i + √q_params ε'_i

    with ``ε`` standard normal. The weights are kept as logarithms and
    normalised by the log-sum-exp: the likelihoods of a sharp measurement
    underflow to 0 as numbers, their logarithms do not. The innovation is
    the mean innovation under the prior weights and ``S`` the spread of the
    predicted measurement plus the noise, so that ``ν`` and ``S`` mean what
    they mean for the Kalman filters. A missing element of ``y`` (NaN)
    leaves the likelihood, its innovation is 0 and its ``S`` is ``R_jj``; a
    tick without any measurement only predicts. The posterior summaries are
    taken before resampling, which would only add noise to them. Resampling
    only when the effective sample size drops keeps the cloud diverse;
    roughening (Gordon et al.'s jitter, with their ``K = 0.2`` by default)
    keeps resampled parameters, which have no process noise of their own
    when ``q_params`` is 0, from collapsing onto a few values. All ``N B``
    particles go through ``advance`` and ``observe`` in one call.

    Random numbers come from a generator seeded in :meth:`reset` and held in
    the state (``rng_``), so a snapshot resumes exactly. Every tick draws the
    same amount, ``N (n + n_est)`` normals and ``N`` uniforms, shared by all
    assets (common random numbers): each asset's filter is exact in
    distribution and a batch gives every asset exactly what it gets alone,
    but the Monte Carlo errors of different assets are correlated.

    References
    ----------
    Gordon, N. J., Salmond, D. J. and Smith, A. F. M. (1993). Novel approach to
    nonlinear/non-Gaussian Bayesian state estimation. *IEE Proceedings F* 140(2), 107–113.

    Kitagawa, G. (1996). Monte Carlo filter and smoother for non-Gaussian
    nonlinear state space models. *J. Comput. Graph. Stat.* 5(1), 1–25.

    Liu, J. S. and Chen, R. (1998). Sequential Monte Carlo methods for dynamic
    systems. *J. Am. Stat. Assoc.* 93(443), 1032–1044.

    Douc, R., Cappé, O. and Moulines, E. (2005). Comparison of resampling
    schemes for particle filtering. *ISPA 2005*, 64–69.

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
    >>> pf = g.add(ParticleFilter(model=model, estimate=("efficiency",), q=[1e-6, 1e-14], q_params=0.0,
    ...                           r=1e-10, p0=0.0, p0_params=0.1, n_particles=500, name="pf"))
    >>> g.connect(u.out.value, pf.inp.u)
    >>> g.connect(y.out.value, pf.inp.y)
    >>> rng = np.random.default_rng(0)
    >>> x, p = truth.initial_state(1), truth.batch_params(1)
    >>> sim = tg.Simulator(g)
    >>> for k in range(200):
    ...     v = np.full((1, 1), 12.0)
    ...     flow = truth.observe(x, v, p) + 1e-5 * rng.normal()
    ...     out = sim.step(u=v, y=flow)
    ...     x = truth.advance(x, v, k * 0.05, 0.05, p)
    >>> round(float(out["pf.params"][0]), 2), out["pf.quantiles"].shape
    (0.8, (3, 3))
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
        n_particles: int = 1000,
        resampling: str = "systematic",
        ess_threshold: float = 0.5,
        jitter: float = 0.2,
        seed: int = 0,
        quantiles: tuple[float, ...] = (0.05, 0.5, 0.95),
        *,
        name: str | None = None,
    ) -> None:
        super().__init__(model, estimate, q, q_params, r, p0, p0_params, x0, name=name)
        self.n_particles = n_particles
        self.resampling = resampling
        self.ess_threshold = ess_threshold
        self.jitter = jitter
        self.seed = seed
        self.quantiles = quantiles

    def check_params(self) -> None:
        super().check_params()
        check_number(self, "n_particles", 1, integer=True)
        check_choice(self, "resampling", RESAMPLING)
        check_number(self, "ess_threshold", 0, 1)
        check_number(self, "jitter", 0)
        check_number(self, "seed", 0, integer=True)
        levels = check_array(self, "quantiles")
        if levels.ndim != 1 or not levels.size or not np.all((levels >= 0) & (levels <= 1)):
            raise invalid_param(self, "quantiles", "a non-empty sequence of levels in [0, 1]", self.quantiles)

    def output_signals(self, inputs):
        ports = super().output_signals(inputs)
        n = self.model.n_x + len(self.estimate)
        ports["std"] = Signal(shape=(n,))
        ports["quantiles"] = Signal(shape=(len(self.quantiles), n))
        ports["particles"] = Signal(shape=(self.n_particles, n))
        ports["weights"] = Signal(shape=(self.n_particles,), unit="")
        return ports

    def reset(self, ctx: Context) -> None:
        """The generator ``rng_``, the prior cloud ``particles_ (N, B, n)`` and its ``log_weights_ (N, B)``."""
        super().reset(ctx)
        n = self.n_particles
        self.rng_ = np.random.default_rng(self.seed)
        self.particles_ = self._z0 + np.sqrt(self._p0) * self.rng_.standard_normal((n, 1, self._n_a))
        self.log_weights_ = np.full((n, self._batch), -np.log(n))
        self._log_posterior = self.log_weights_.copy()
        self._levels = np.asarray(self.quantiles, dtype=float)
        n_e = self._n_a - self._n_x
        self._roughening = self.jitter * n ** (-1 / n_e) if n_e else 0.0

    def _arguments(self, z: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """The model's ``x``, ``u`` and ``p`` for every particle of ``z (N, B, n)`` at once."""
        flat = z.reshape(-1, self._n_a)
        return flat[:, : self._n_x], np.tile(u, (len(z), 1)), self._params(flat[:, self._n_x :].T)

    def output(self, t, inp, out):
        u = inp.u if self._has_input else self._no_input
        z, log_w, R = self.particles_, self.log_weights_, self._R
        measured = self._measured(inp.y, t)
        Y = self._model.observe(*self._arguments(z, u)).reshape(len(z), self._batch, -1)
        w = np.exp(log_w)
        y_hat = np.einsum("nb,nbj->bj", w, Y)
        dY = (Y - y_hat) * measured  # a missing element: no spread, so S_jj = R_jj
        S = np.einsum("nb,nbi,nbj->bij", w, dY, dY) + np.diag(R)
        nu = np.where(measured, inp.y - y_hat, 0.0)
        nis = np.einsum("bi,bi->b", nu, np.linalg.solve(S, nu[:, :, None])[:, :, 0])
        log_w = log_w - 0.5 * np.sum(np.where(measured, inp.y - Y, 0.0) ** 2 / R, axis=2)
        top = log_w.max(axis=0)
        log_w -= top + np.log(np.sum(np.exp(log_w - top), axis=0))  # the log-sum-exp: no underflow
        self._log_posterior = log_w
        w = np.exp(log_w)
        z_hat = np.einsum("nb,nbi->bi", w, z)
        var = np.einsum("nb,nbi->bi", w, (z - z_hat) ** 2)
        self._publish(out, z_hat, var, nu, np.diagonal(S, axis1=1, axis2=2), nis)
        out.std[...] = np.sqrt(var)
        out.quantiles[...] = weighted_quantiles(z, w[:, :, None], self._levels).transpose(1, 0, 2)
        out.particles[...] = z.transpose(1, 0, 2)
        out.weights[...] = w.T

    def update(self, t, inp):
        u = inp.u if self._has_input else self._no_input
        z, log_w, n, n_x = self.particles_, self._log_posterior, self.n_particles, self._n_x
        normal = self.rng_.standard_normal((n, 2 * self._n_a - n_x))  # process noise, then roughening
        uniform = self.rng_.random((n, 1))
        w = np.exp(log_w)
        resample = 1.0 / np.sum(w**2, axis=0) < self.ess_threshold * n
        if resample.any():
            if self.resampling == "systematic":
                counts = systematic(w[:, resample], uniform[0])
            else:
                counts = residual(w[:, resample], uniform)
            k = counts.shape[1]
            ancestors = np.repeat(np.tile(np.arange(n), k), counts.T.ravel()).reshape(k, n).T
            z[:, resample] = z[ancestors, np.flatnonzero(resample)]
            log_w[:, resample] = -np.log(n)
            theta = z[:, resample, n_x:]
            spread = theta.max(axis=0) - theta.min(axis=0)
            z[:, resample, n_x:] = theta + self._roughening * spread * normal[:, None, self._n_a :]
        x, us, p = self._arguments(z, u)
        z[:, :, :n_x] = self._model.advance(x, us, t, self._dt, p).reshape(n, self._batch, n_x)
        z += np.sqrt(self._q) * normal[:, None, : self._n_a]
        self.log_weights_[...] = log_w
