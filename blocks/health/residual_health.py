"""Health from residual statistics: how much wider the innovations are than the filter expects."""

import numpy as np

from twingraph import Block, Context, Signal
from twingraph.errors import check_number, invalid_param


class ResidualHealth(Block):
    """Health indicator from the windowed mean square of a normalised residual.

    A consistent filter's normalised residual (:class:`~blocks.estimation.Residual`,
    ``ν / √S``) has unit variance. When the asset drifts away from its model
    (wear, a fault, a sensor going bad) the innovations grow beyond what the
    filter predicts, and their mean square, the *variance ratio*, grows above 1.
    The indicator maps that ratio linearly from ``nominal`` (health 1) to
    ``failed`` (health 0).

    Parameters
    ----------
    window : int
        Number of most recent ticks averaged, ≥ 1.
    nominal : float
        Variance ratio of a healthy asset [-], ≥ 0; health 1 at or below it.
    failed : float
        Variance ratio at failure [-], > ``nominal``; health 0 at or above it
        (4: innovations twice as wide as expected).
    min_samples : int
        Residual elements needed in the window before a first indicator (NaN until then), ≥ 1.
    name : str or None
        Block name.

    Ports
    -----
    residual (in) : normalised residual ``ν / √S``, any shape (``(n_y,)``) [-]; NaN or
        infinite elements are skipped.
    variance_ratio (out) : mean of ``residual²`` over the window, shape ``()`` [-]; NaN
        before ``min_samples`` elements.
    hi (out) : health indicator, shape ``()`` [-], in [0, 1]; NaN when ``variance_ratio`` is.

    Notes
    -----
    With ``r_{j,i}`` the finite elements of the residual at the last ``window``
    ticks ``j`` (the current one included) and ``N`` their number::

        ρ = Σ r_{j,i}² / N                                 variance ratio
        hi = clip((failed - ρ) / (failed - nominal), 0, 1)

    For a consistent filter the residuals are white and standard normal, so
    ``N ρ ~ χ²(N)``: ``ρ`` has mean 1 and standard deviation ``√(2 / N)``, and
    with probability ``1 - p``, ``hi ≥ 1 - (χ²_{1-p}(N) / N - 1) / (failed - nominal)``
    (window 100, one residual: 0.88 at p = 1 %, with the defaults). A residual
    whose variance is ``σ²`` times the filter's gives ``ρ → σ²`` and
    ``hi → (failed - σ²) / (failed - nominal)``. A missing measurement, which
    :class:`~blocks.estimation.Residual` reports as 0, counts as a sample of 0:
    feed NaN instead when dropouts are frequent.

    Examples
    --------
    Innovations twice as wide as the filter expects (σ² = 4) sit half-way from nominal to a
    failure set at 7:

    >>> import twingraph as tg
    >>> g = tg.Graph("health", dt=1.0)
    >>> r = g.add(tg.Input("r", shape=(1,)))
    >>> hi = g.add(ResidualHealth(window=4, failed=7.0, min_samples=2, name="hi"))
    >>> g.connect(r.out.value, hi.inp.residual)
    >>> hist = tg.Simulator(g).run(inputs={"r": [[2.0], [-2.0], [np.nan], [2.0], [-2.0], [2.0]]})
    >>> hist["hi.variance_ratio"], hist["hi.hi"]
    (array([nan,  4.,  4.,  4.,  4.,  4.]), array([nan, 0.5, 0.5, 0.5, 0.5, 0.5]))
    """

    inputs = {"residual": Signal(unit="")}
    outputs = {"variance_ratio": Signal(shape=(), unit=""), "hi": Signal(shape=(), unit="")}

    def __init__(self, window=100, nominal=1.0, failed=4.0, min_samples=10, *, name=None):
        super().__init__(name=name)
        self.window = window
        self.nominal = nominal
        self.failed = failed
        self.min_samples = min_samples

    def check_params(self) -> None:
        check_number(self, "window", low=1, integer=True, unit="ticks")
        check_number(self, "nominal", low=0)
        check_number(self, "failed")
        if not self.failed > self.nominal:
            raise invalid_param(self, "failed", f"> nominal ({float(self.nominal)})", float(self.failed))
        check_number(self, "min_samples", low=1, integer=True)

    def output_signals(self, inputs):
        return dict(self.outputs)

    def reset(self, ctx: Context) -> None:
        self.squares_ = np.zeros((ctx.batch, self.window))  # Σ r² per tick, a ring buffer
        self.counts_ = np.zeros((ctx.batch, self.window), dtype=int)  # finite elements per tick
        self.head_ = 0  # the slot of the oldest tick, overwritten by the current one

    @staticmethod
    def _tick(residual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sum of squares and number of finite elements per asset of one tick's residual."""
        r = residual.reshape(len(residual), -1)
        finite = np.isfinite(r)
        return np.square(np.where(finite, r, 0.0)).sum(axis=1), finite.sum(axis=1)

    def output(self, t, inp, out):
        squares, counts = self._tick(inp.residual)
        total = self.squares_.sum(axis=1) - self.squares_[:, self.head_] + squares
        n = self.counts_.sum(axis=1) - self.counts_[:, self.head_] + counts
        ratio = np.divide(total, n, out=np.full(len(n), np.nan), where=n >= self.min_samples)
        out.variance_ratio[...] = ratio
        out.hi[...] = np.clip((self.failed - ratio) / (self.failed - self.nominal), 0.0, 1.0)

    def update(self, t, inp):
        self.squares_[:, self.head_], self.counts_[:, self.head_] = self._tick(inp.residual)
        self.head_ = (self.head_ + 1) % self.window
