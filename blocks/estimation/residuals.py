"""Residuals: a filter's innovation normalised by its covariance, ready for detectors and health."""

import numpy as np

from twingraph import Block, Signal, WiringError


class Residual(Block):
    """The innovation divided by its standard deviation, and the sum of its squares (the NIS).

    The difference between what a filter measures and what it predicted,
    ``ν = y - ŷ⁻`` (the ``innovation`` port of :class:`~blocks.estimation.EKF`
    or :class:`~blocks.estimation.UKF`), is expressed in units of its own
    predicted spread, the diagonal of the innovation covariance ``S``. A
    consistent filter then gives a residual of zero mean and unit variance
    whatever the sensor's unit, so one detector threshold suits every channel.

    Parameters
    ----------
    name : str or None
        Block name.

    Ports
    -----
    innovation (in) : ``ν``, shape ``(n_y,)`` [y unit].
    S (in) : diagonal of the innovation covariance, shape ``(n_y,)`` [y unit²].
    residual (out) : ``ν / √S`` per element, shape ``(n_y,)`` [-]; NaN where ``S`` is
        not > 0 or either input is NaN.
    nis (out) : normalised innovation squared ``Σ ν² / S`` over the elements, shape ``()`` [-];
        NaN when any element is.

    Notes
    -----
    ::

        r_i = ν_i / √S_ii
        NIS = Σ_i r_i²

    For a consistent filter ``r_i ~ N(0, 1)`` and the NIS follows a chi-square law
    with ``n_y`` degrees of freedom (mean ``n_y``). This NIS uses the diagonal
    of ``S`` only: it equals the filter's ``nis``, ``νᵀ S⁻¹ ν``, when ``n_y = 1`` or the
    innovations are uncorrelated, and otherwise ignores their correlation.

    A missing measurement, published by the filters as ``ν = 0`` with
    ``S = R``, gives ``r = 0`` and adds 0 to the NIS: no evidence either way.
    ``S ≤ 0`` or NaN (a filter that lost its covariance) gives NaN, which
    the detectors in :mod:`blocks.anomaly` count as 0, rather than a warning
    or an infinite score; ``S = inf`` (no information) gives ``r = 0``.

    Examples
    --------
    >>> import twingraph as tg
    >>> g = tg.Graph("residuals", dt=1.0)
    >>> nu = g.add(tg.Input("nu", shape=(3,), unit="m"))
    >>> s = g.add(tg.Input("s", shape=(3,)))
    >>> res = g.add(Residual(name="res"))
    >>> g.connect(nu.out.value, res.inp.innovation)
    >>> g.connect(s.out.value, res.inp.S)
    >>> out = tg.Simulator(g, batch=2).step(nu=[[2.0, -3.0, 0.0], [1.0, 1.0, 1.0]],
    ...                                     s=[[4.0, 9.0, 0.5], [1.0, 0.0, 1.0]])
    >>> out["res.residual"], out["res.nis"]
    (array([[ 1., -1.,  0.],
           [ 1., nan,  1.]]), array([ 2., nan]))
    """

    inputs = {"innovation": Signal(), "S": Signal()}
    outputs = {"residual": Signal(unit=""), "nis": Signal(shape=(), unit="")}

    def __init__(self, *, name: str | None = None) -> None:
        super().__init__(name=name)

    def output_signals(self, inputs):
        nu, s = inputs.get("innovation", Signal()), inputs.get("S", Signal())
        if nu.shape is not None and s.shape is not None and nu.shape != s.shape:
            raise WiringError(
                f"Block '{self.name}': 'innovation' ({nu.describe()}) and 'S' ({s.describe()}) "
                f"must have the same shape."
            )
        shape = nu.shape if nu.shape is not None else s.shape
        return {"residual": Signal(shape=shape, unit=""), "nis": Signal(shape=(), unit="")}

    def output(self, t, inp, out):
        nu, S = inp.innovation, inp.S
        with np.errstate(invalid="ignore"):  # S ≤ 0 or NaN, and inf / inf, give NaN quietly
            r = nu / np.sqrt(np.where(S > 0, S, np.nan))
        out.residual[...] = r
        out.nis[...] = np.square(r).reshape(len(r), -1).sum(axis=1)
