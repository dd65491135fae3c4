"""Scores of residual vectors against a fleet: a linear projection, and a distance off a learned subspace."""

import numpy as np

from twingraph import Block, Context, Signal, WiringError
from twingraph.errors import check_array, check_number, invalid_param


class Projection(Block):
    """A standardised linear score of a vector: ``y = (w · u - offset) / scale``.

    Parameters
    ----------
    coefficients : sequence of float
        ``w``, one per element of ``u``, not all 0.
    offset : float
        Subtracted from ``w · u`` [unit of u].
    scale : float
        Divides the result [unit of u], > 0.
    name : str or None
        Block name.

    Ports
    -----
    u (in) : vector ``(n,)``; NaN in, NaN out.
    y (out) : the score, shape ``()`` [-].

    Examples
    --------
    >>> import twingraph as tg
    >>> g = tg.Graph("score", dt=1.0)
    >>> u = g.add(tg.Input("u", shape=(2,)))
    >>> p = g.add(Projection(coefficients=(1.0, -1.0), offset=1.0, scale=2.0, name="p"))
    >>> g.connect(u.out.value, p.inp.u)
    >>> tg.Simulator(g).run(inputs={"u": [[3.0, 0.0], [1.0, 2.0]]})["p.y"]
    array([ 1., -1.])
    """

    inputs = {"u": Signal()}
    outputs = {"y": Signal(shape=(), unit="")}

    def __init__(self, coefficients=(1.0,), offset=0.0, scale=1.0, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.coefficients = coefficients
        self.offset = offset
        self.scale = scale

    def check_params(self) -> None:
        w = check_array(self, "coefficients")
        if w.ndim != 1 or not w.size or not np.any(w != 0):
            raise invalid_param(self, "coefficients", "a non-empty sequence of numbers, not all 0", self.coefficients)
        check_number(self, "offset")
        check_number(self, "scale", 0, low_open=True)

    def output_signals(self, inputs):
        self.check_params()
        shape = inputs["u"].shape
        if shape is not None and shape != (len(self.coefficients),):
            raise WiringError(f"Block '{self.name}': input 'u' must have shape ({len(self.coefficients)},), one "
                              f"element per coefficient. Got shape {shape}.")
        return dict(self.outputs)

    def reset(self, ctx: Context) -> None:
        self._w = np.asarray(self.coefficients, dtype=float)

    def output(self, t, inp, out):
        out.y[...] = (inp.u @ self._w - self.offset) / self.scale


class SubspaceDistance(Block):
    """Out-of-distribution flag: the smoothed Mahalanobis distance of a vector's part off a learned subspace.

    Parameters
    ----------
    alpha : float
        Exponential smoothing factor of the squared distance, in (0, 1] (1: none).
    threshold : float
        The alarm level of the smoothed squared distance [-], > 0 (e.g. a high quantile over the
        training fleet).
    persistence : int
        Consecutive ticks above ``threshold`` before the alarm is raised, ≥ 1; once raised it stays
        (latched) for the rest of the run.
    name : str or None
        Block name.

    Ports
    -----
    u (in) : vector ``(n,)`` (normalised residuals); a tick with a NaN element leaves the state as it is.
    distance (out) : smoothed squared distance, shape ``()`` [-]; NaN until the first finite ``u``.
    alarm (out) : bool, shape ``()``: the asset left what the fleet showed.

    Notes
    -----
    Learned arrays (:meth:`set_model`; the untrained block has an empty subspace, ``μ = 0`` and
    ``Σ = I``): the basis ``B (n, m)`` of the subspace with ``m ≥ 0`` columns, the mean ``μ (n,)``
    and the covariance ``Σ (n, n)`` of the part off it. Per tick::

        a_k = argmin_a ||u_k - μ - B a||          (least squares; a = 0 when m = 0)
        e_k = u_k - μ - B a_k                     the part off the subspace
        D_k = e_kᵀ Σ⁺ e_k                         Σ⁺ the pseudo-inverse (e lies in a subspace of rank n - m)
        s_k = α D_k + (1 - α) s_{k-1},  s_0 = D_0
        n_k = n_{k-1} + 1 if s_k > threshold else 0,   alarm_k = alarm_{k-1} or n_k ≥ persistence

    Examples
    --------
    >>> import twingraph as tg
    >>> ood = SubspaceDistance(alpha=1.0, threshold=9.0, persistence=2, name="ood")
    >>> ood.set_model(basis=np.array([[1.0], [0.0]]), mean=np.zeros(2), cov=np.eye(2))
    >>> g = tg.Graph("watch", dt=1.0)
    >>> u = g.add(tg.Input("u", shape=(2,)))
    >>> _ = g.add(ood)
    >>> g.connect(u.out.value, ood.inp.u)
    >>> hist = tg.Simulator(g).run(inputs={"u": [[50.0, 0.0], [0.0, 4.0], [0.0, 4.0], [0.0, 0.0]]})
    >>> hist["ood.distance"], hist["ood.alarm"]
    (array([ 0., 16., 16.,  0.]), array([False, False,  True,  True]))
    """

    inputs = {"u": Signal()}
    outputs = {"distance": Signal(shape=(), unit=""), "alarm": Signal(shape=(), dtype="bool", unit="")}

    def __init__(self, alpha=0.1, threshold=10.0, persistence=5, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.alpha = alpha
        self.threshold = threshold
        self.persistence = persistence

    def check_params(self) -> None:
        check_number(self, "alpha", 0, 1, low_open=True)
        check_number(self, "threshold", 0, low_open=True)
        check_number(self, "persistence", 1, integer=True, unit="ticks")

    def output_signals(self, inputs):
        self.check_params()
        shape = inputs["u"].shape
        if shape is not None and len(shape) != 1:
            raise WiringError(f"Block '{self.name}': input 'u' must be a vector (n,). Got shape {shape}.")
        fitted = getattr(self, "_mean", None)
        if shape is not None and fitted is not None and fitted.shape != shape:
            raise WiringError(f"Block '{self.name}': input 'u' must have shape {fitted.shape}, the size it was "
                              f"fitted on. Got shape {shape}.")
        return dict(self.outputs)

    def set_model(self, basis: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> None:
        """Set the learned arrays: ``basis (n, m)``, ``mean (n,)`` and the off-subspace covariance ``cov (n, n)``."""
        basis, mean, cov = (np.asarray(a, dtype=float) for a in (basis, mean, cov))
        n = len(mean)
        if mean.shape != (n,) or basis.ndim != 2 or basis.shape[0] != n or cov.shape != (n, n) or not n:
            raise WiringError(f"Block '{self.name}': the subspace model needs basis (n, m), mean (n,) and cov (n, n). "
                              f"Got {basis.shape}, {mean.shape} and {cov.shape} instead.")
        self._basis, self._mean, self._cov = basis.copy(), mean.copy(), cov.copy()
        self._precision = np.linalg.pinv(cov, hermitian=True)

    def build(self, n: int) -> None:
        """The untrained model for vectors of ``n`` elements unless fitted."""
        if getattr(self, "_mean", None) is None:
            self.set_model(np.zeros((n, 0)), np.zeros(n), np.eye(n))

    def squared_distance(self, u: np.ndarray) -> np.ndarray:
        """``D (N,)`` of vectors ``u (N, n)`` (the offline path; NaN rows give NaN)."""
        u = np.asarray(u, dtype=float)
        self.build(u.shape[1])
        c = u - self._mean
        if self._basis.shape[1]:
            a = np.linalg.lstsq(self._basis, np.nan_to_num(c).T, rcond=None)[0]
            c = c - (self._basis @ a).T
        return np.einsum("ni,ij,nj->n", c, self._precision, c)

    def weights(self) -> dict[str, np.ndarray]:
        if getattr(self, "_mean", None) is None:
            return {}
        return {"basis": self._basis.copy(), "mean": self._mean.copy(), "cov": self._cov.copy()}

    def load_weights(self, weights: dict[str, np.ndarray]) -> None:
        if not weights:
            return
        keys = ["basis", "cov", "mean"]
        if sorted(weights) != keys:
            raise WiringError(f"Block '{self.name}': weights must have keys {keys}. Got {sorted(weights)} instead.")
        self.set_model(weights["basis"], weights["mean"], weights["cov"])

    def reset(self, ctx: Context) -> None:
        n = ctx.inputs["u"].shape[0]
        self.build(n)
        if self._mean.shape != (n,):
            raise WiringError(f"Block '{self.name}': input 'u' must have shape {self._mean.shape}, the size it was "
                              f"fitted on. Got shape ({n},).")
        self.smooth_ = np.full(ctx.batch, np.nan)
        self.count_ = np.zeros(ctx.batch, dtype=int)
        self.alarm_ = np.zeros(ctx.batch, dtype=bool)

    def _next(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        d = self.squared_distance(u)
        seen = np.isfinite(d)
        started = seen & np.isfinite(self.smooth_)
        smooth = np.where(seen, d, self.smooth_)
        smooth[started] = self.alpha * d[started] + (1.0 - self.alpha) * self.smooth_[started]
        count = np.where(seen, np.where(smooth > self.threshold, self.count_ + 1, 0), self.count_)
        return smooth, count, self.alarm_ | (count >= self.persistence)

    def output(self, t, inp, out):
        out.distance[...], _, out.alarm[...] = self._next(inp.u)

    def update(self, t, inp):
        self.smooth_[...], self.count_[...], self.alarm_[...] = self._next(inp.u)


def smoothed(values: np.ndarray, alpha: float) -> np.ndarray:
    """The exponential smoothing of :class:`SubspaceDistance` over one asset's ``(T,)`` values (NaN: held)."""
    out, last = np.full(len(values), np.nan), np.nan
    for k, v in enumerate(values):
        if np.isfinite(v):
            last = v if not np.isfinite(last) else alpha * v + (1.0 - alpha) * last
        out[k] = last
    return out


__all__ = ["Projection", "SubspaceDistance", "smoothed"]
