"""Fusion of a model-based and a data-driven remaining useful life, with calibrated intervals.

:class:`FusedRUL` is the block; :func:`fit_fusion` learns its weights and
:func:`fit_intervals` its interval offsets, both from cross-validated
predictions on training assets (never from the assets it will be scored on).
"""

from collections.abc import Sequence

import numpy as np

from twingraph import Block, Context, Signal
from twingraph.errors import check_array, check_number, invalid_param

LEVELS = tuple(round(q, 2) for q in np.linspace(0.05, 0.95, 19))  # quantile levels fitted by default [-]
EDGES = (25.0, 50.0, 75.0, 100.0, 115.0)  # default bin edges of the fused RUL for the intervals [time unit]


def fusion_features(rul_data: np.ndarray, rul_model: np.ndarray, cap: float) -> np.ndarray:
    """Features ``(..., 3)`` of the fusion: ``1``, the data-driven RUL and the model-based RUL, clipped to ``[0, cap]``.

    A model-based RUL that is ``inf`` (no failure within its horizon) or NaN (no estimate yet)
    counts as ``cap``: the asset looks healthy to the model.

    >>> fusion_features(np.array([40.0, 200.0]), np.array([np.inf, 30.0]), 125.0)
    array([[  1.,  40., 125.],
           [  1., 125.,  30.]])
    """
    rul_model = np.where(np.isfinite(rul_model), rul_model, cap)
    return np.stack([np.ones_like(rul_data), np.clip(rul_data, 0.0, cap), np.clip(rul_model, 0.0, cap)], axis=-1)


class FusedRUL(Block):
    """Remaining useful life fused from a model-based and a data-driven estimate, with a calibrated interval.

    Parameters
    ----------
    coef : tuple of 3 float
        Fusion weights on ``(1, rul_data, rul_model)`` (see :func:`fusion_features`); the
        default ``(0, 1, 0)`` passes the data-driven RUL through. Learned by :func:`fit_fusion`.
    cap : float
        Largest RUL reported [time unit], > 0.
    edges : tuple of float
        Increasing edges [time unit] that split the fused RUL into ``len(edges) + 1`` bins,
        each with its own interval offsets.
    levels : tuple of float
        Increasing quantile levels in (0, 1) of the offsets; the first and the last bound the
        interval (``(0.05, ..., 0.95)``: a nominal 90 % interval).
    offsets : tuple of tuples of float
        Per bin, per level, the quantile of ``true - rul`` [time unit], non-decreasing along
        the levels, shape ``(len(edges) + 1, len(levels))``; learned by :func:`fit_intervals`.
        ``None``: zero (the interval is the point, until calibrated).
    unit : str
        The graph's time unit, in which the RUL is given.
    name : str or None
        Block name.

    Ports
    -----
    rul_data (in) : data-driven RUL [unit], shape ``()`` (e.g. ``WindowRUL.rul``); NaN: no output.
    rul_model (in) : model-based RUL, shape ``()``, in the graph's time unit whatever its port's unit says
        (``MonteCarloRUL`` labels its times ``s``); ``inf`` or NaN count as ``cap``.
    rul (out) : fused RUL [unit], shape ``()``, in ``[0, cap]``.
    rul_lower, rul_upper (out) : the interval [unit], shape ``()``, the fused RUL plus the
        offsets of the first and last level in its bin (the lower clipped at 0).

    Notes
    -----
    With ``phi = (1, clip(r_data, 0, cap), clip(r_model, 0, cap))`` and ``b`` the bin of ``rul``::

        rul       = clip(coef . phi, 0, cap)
        Q_q       = rul + offsets[b, q]            predictive quantile at level q
        rul_lower = max(Q_first, 0),  rul_upper = Q_last

    Conformal in spirit: the offsets are empirical quantiles of the errors of cross-validated
    predictions at the same predicted level, so the interval holds its nominal share on new
    assets as far as they resemble the training fleet (an out-of-distribution flag says when
    they do not).

    Examples
    --------
    >>> import twingraph as tg
    >>> g = tg.Graph("fuse", dt=1.0)
    >>> d = g.add(tg.Input("d", shape=()))
    >>> m = g.add(tg.Input("m", shape=()))
    >>> fuse = g.add(FusedRUL(coef=(0.0, 0.5, 0.5), edges=(50.0,), levels=(0.05, 0.95),
    ...                       offsets=((-10.0, 5.0), (-20.0, 15.0)), unit="cycle", name="fuse"))
    >>> g.connect(d.out.value, fuse.inp.rul_data)
    >>> g.connect(m.out.value, fuse.inp.rul_model)
    >>> h = tg.Simulator(g, batch=2).run(inputs={"d": [[20.0, 100.0]], "m": [[40.0, np.nan]]})
    >>> h["fuse.rul"], h["fuse.rul_lower"], h["fuse.rul_upper"]
    (array([[ 30. , 112.5]]), array([[20. , 92.5]]), array([[ 35. , 127.5]]))
    """

    outputs = {"rul": Signal(shape=(), unit="s"), "rul_lower": Signal(shape=(), unit="s"),
               "rul_upper": Signal(shape=(), unit="s")}

    def __init__(self, coef: Sequence[float] = (0.0, 1.0, 0.0), cap: float = 125.0, edges: Sequence[float] = (),
                 levels: Sequence[float] = (0.05, 0.95), offsets: Sequence[Sequence[float]] | None = None,
                 unit: str = "cycle", *, name: str | None = None):
        super().__init__(name=name)
        self.coef = coef
        self.cap = cap
        self.edges = edges
        self.levels = levels
        self.offsets = offsets
        self.unit = unit

    def check_params(self) -> None:
        coef = check_array(self, "coef")
        if coef.shape != (3,):
            raise invalid_param(self, "coef", "3 weights on (1, rul_data, rul_model)", self.coef)
        check_number(self, "cap", low=0, low_open=True, unit=self.unit)
        edges = check_array(self, "edges").reshape(-1)
        if np.any(np.diff(edges) <= 0):
            raise invalid_param(self, "edges", f"increasing bin edges [{self.unit}]", self.edges)
        levels = check_array(self, "levels").reshape(-1)
        if levels.size < 2 or np.any(np.diff(levels) <= 0) or levels[0] <= 0 or levels[-1] >= 1:
            raise invalid_param(self, "levels", "at least 2 increasing quantile levels in (0, 1)", self.levels)
        if self.offsets is not None:
            offsets = check_array(self, "offsets")
            shape = (edges.size + 1, levels.size)
            if offsets.shape != shape or np.any(np.diff(offsets, axis=1) < 0):
                raise invalid_param(self, "offsets", f"None or an array {shape} (bins x levels) non-decreasing "
                                    f"along the levels [{self.unit}]", self.offsets)
        if not (isinstance(self.unit, str) and self.unit):
            raise invalid_param(self, "unit", "a time unit such as 's' or 'cycle'", self.unit)

    def input_signals(self):
        # rul_model takes its unit from the connection: MonteCarloRUL labels its times 's' whatever the tick
        return {"rul_data": Signal(shape=(), unit=self.unit), "rul_model": Signal(shape=(), unit=None)}

    def output_signals(self, inputs):
        self.check_params()
        return {port: Signal(shape=(), unit=self.unit) for port in self.outputs}

    def reset(self, ctx: Context) -> None:
        self._arrays()

    def _arrays(self) -> None:
        """The params as arrays (``_coef``, ``_edges``, ``_offsets``), checked."""
        self.check_params()
        self._coef = np.asarray(self.coef, dtype=float)
        self._edges = np.asarray(self.edges, dtype=float).reshape(-1)
        n_levels = len(self.levels)
        self._offsets = (np.zeros((self._edges.size + 1, n_levels)) if self.offsets is None
                         else np.asarray(self.offsets, dtype=float))

    def predict(self, rul_data: np.ndarray, rul_model: np.ndarray) -> np.ndarray:
        """Fused RUL ``(...)`` [unit] of the two estimates (NaN where ``rul_data`` is NaN)."""
        self._arrays()
        rul = np.clip(fusion_features(rul_data, rul_model, self.cap) @ self._coef, 0.0, self.cap)
        return np.where(np.isnan(rul_data), np.nan, rul)

    def quantiles(self, rul: np.ndarray) -> np.ndarray:
        """Predictive quantiles ``(..., len(levels))`` [unit] around fused RUL ``rul`` (not clipped)."""
        self._arrays()
        return rul[..., None] + self._offsets[np.searchsorted(self._edges, np.nan_to_num(rul), side="right")]

    def output(self, t, inp, out):
        rul = np.clip(fusion_features(inp.rul_data, inp.rul_model, self.cap) @ self._coef, 0.0, self.cap)
        rul = np.where(np.isnan(inp.rul_data), np.nan, rul)
        bounds = self._offsets[np.searchsorted(self._edges, np.nan_to_num(rul), side="right")][:, [0, -1]]
        out.rul[...] = rul
        out.rul_lower[...] = np.maximum(rul + bounds[:, 0], 0.0)
        out.rul_upper[...] = rul + bounds[:, 1]


def fit_fusion(rul_data: np.ndarray, rul_model: np.ndarray, true: np.ndarray, weight: np.ndarray | None = None,
               cap: float = 125.0) -> tuple[float, float, float]:
    """Fusion weights ``coef`` by weighted least squares of the capped true RUL on :func:`fusion_features`.

    Parameters
    ----------
    rul_data, rul_model : arrays ``(N,)``
        Cross-validated predictions of the two estimates [time unit].
    true : array ``(N,)``
        True RUL [time unit]; clipped to ``cap``.
    weight : array ``(N,)`` or None
        Row weights (e.g. ``1 / cuts`` so that each asset counts equally); None: equal.
    cap : float
        The RUL cap [time unit].

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> true = rng.uniform(0.0, 125.0, 500)
    >>> data, model = true + rng.normal(0.0, 10.0, 500), true + rng.normal(0.0, 20.0, 500)
    >>> np.round(fit_fusion(data, model, true), 1)  # about 4:1, the inverse variances
    array([2.4, 0.8, 0.2])
    """
    x = fusion_features(np.asarray(rul_data, float), np.asarray(rul_model, float), cap)
    w = np.sqrt(np.ones(len(x)) if weight is None else np.asarray(weight, float))
    y = np.minimum(np.asarray(true, float), cap)
    return tuple(float(c) for c in np.linalg.lstsq(x * w[:, None], y * w, rcond=None)[0])


def weighted_quantile(values: np.ndarray, weight: np.ndarray, levels: Sequence[float]) -> np.ndarray:
    """Quantiles of ``values`` with row weights at ``levels``: the inverse of the weighted empirical CDF.

    >>> weighted_quantile(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 1.0, 1.0, 5.0]), [0.1, 0.5])
    array([1., 4.])
    """
    order = np.argsort(values)
    cdf = np.cumsum(weight[order]) / np.sum(weight)
    return values[order][np.minimum(np.searchsorted(cdf, np.asarray(levels) - 1e-12), len(values) - 1)]


def fit_intervals(rul: np.ndarray, true: np.ndarray, weight: np.ndarray | None = None,
                  edges: Sequence[float] = EDGES, levels: Sequence[float] = LEVELS,
                  cap: float = 125.0) -> tuple[tuple[float, ...], ...]:
    """Interval offsets of :class:`FusedRUL`: per bin of predicted RUL, weighted quantiles of ``true - rul``.

    Parameters
    ----------
    rul : array ``(N,)``
        Cross-validated fused RUL [time unit].
    true : array ``(N,)``
        True RUL [time unit]; clipped to ``cap`` (the scored quantity).
    weight : array ``(N,)`` or None
        Row weights, e.g. the probability of each cut under the test protocol; None: equal.
    edges, levels : tuples of float
        As :class:`FusedRUL`'s parameters.
    cap : float
        The RUL cap [time unit].

    Returns
    -------
    tuple of tuples
        ``(len(edges) + 1, len(levels))``, the block's ``offsets``. A bin with fewer than
        ``2 / min(levels[0], 1 - levels[-1])`` rows takes the offsets of all rows pooled.

    Notes
    -----
    Split-conformal with a finite-sample correction: the outer levels are pushed out to
    ``(1 + 1/n)`` times their distance from 1/2 (capped inside (0, 1)) for a bin of ``n`` rows
    (``n`` the effective count ``(Σw)² / Σw²``, rows of one asset being weighted together).
    """
    rul, true = np.asarray(rul, float), np.minimum(np.asarray(true, float), cap)
    weight = np.ones(len(rul)) if weight is None else np.asarray(weight, float)
    levels = np.asarray(levels, float)
    residual = true - rul
    which = np.searchsorted(np.asarray(edges, float), rul, side="right")
    minimum = 2.0 / min(levels[0], 1.0 - levels[-1])

    def offsets(rows: np.ndarray) -> np.ndarray:
        w = weight[rows]
        n = np.sum(w) ** 2 / np.sum(w**2)
        wider = np.clip(0.5 + (levels - 0.5) * (1.0 + 1.0 / n), 1e-6, 1.0 - 1e-6)
        return weighted_quantile(residual[rows], w, wider)

    pooled = offsets(np.arange(len(rul)))
    table = []
    for b in range(len(edges) + 1):
        rows = np.flatnonzero(which == b)
        enough = rows.size and np.sum(weight[rows]) ** 2 / np.sum(weight[rows] ** 2) >= minimum
        table.append(offsets(rows) if enough else pooled)
    return tuple(tuple(float(v) for v in np.maximum.accumulate(row)) for row in table)


__all__ = ["EDGES", "LEVELS", "FusedRUL", "fit_fusion", "fit_intervals", "fusion_features", "weighted_quantile"]
