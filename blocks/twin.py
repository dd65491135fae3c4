"""TwinSystem: the standard twin graph (estimator, anomaly detector, health, RUL) behind one object."""

from dataclasses import dataclass
from typing import Any

import numpy as np

from twingraph import Block, Graph, Input, SimulationError, Simulator
from twingraph.errors import check_number, invalid_param

from .estimation import EKF, Residual
from .physics.ode import ODEModel, checked_model

MAX_LEN = 10_000  # ticks of history a twin keeps by default (a ring buffer)


@dataclass(frozen=True)
class TwinResult:
    """One tick of a :class:`TwinSystem`; a field is ``None`` when its block (or port) is absent.

    Attributes
    ----------
    state : ndarray
        Estimated state ``x_hat``, shape ``(B, n_x)`` (``(n_x,)`` for one asset).
    params, params_std : ndarray or None
        Estimated parameters and their standard deviations, ``√`` of the
        filter's ``P`` diagonal for those parameters, shape ``(B, n_est)``.
    anomaly, alarm : ndarray or None
        The detector's ``score`` and ``alarm``.
    health_indicator : ndarray or None
        ``hi`` in [0, 1].
    rul, rul_lower, rul_upper : ndarray or None
        Remaining useful life and its band [s].
    """

    state: np.ndarray
    params: np.ndarray | None
    params_std: np.ndarray | None
    anomaly: np.ndarray | None
    alarm: np.ndarray | None
    health_indicator: np.ndarray | None
    rul: np.ndarray | None
    rul_lower: np.ndarray | None
    rul_upper: np.ndarray | None


class _Described(str):
    """Text shown as is (unquoted) where an error message quotes what was given."""

    def __repr__(self) -> str:
        return str(self)


def _describe(block: Block) -> str:
    return type(block).__name__ + ("" if block.name is None else f" '{block.name}'")


class TwinSystem:
    """A twin without wiring: ``u, y → estimator``, its innovation ``→ anomaly``, ``params → health → rul``.

    The facade composes the model, builds the graph (``twin.graph``, an
    ordinary :class:`~twingraph.Graph`: it can be saved, drawn, extended) and
    steps it one measurement at a time. Blocks in the graph are named after
    their role: ``u``, ``y`` (inputs), ``estimator``, ``normalized``,
    ``anomaly``, ``health``, ``rul``.

    Parameters
    ----------
    physics : ODEModel
        The process model (named ``physics`` if unnamed).
    residual : ODEModel or None
        A learned correction of ``physics`` (e.g. a
        :class:`~blocks.ml.TorchResidual`) with a ``model`` param: ``None``
        there is set to ``physics``. The twin's model is then ``residual``
        (physics + ML; named ``residual`` if unnamed), else ``physics``.
    estimator : Block or None
        A filter with ports ``u``, ``y`` → ``x_hat``, ``params``, ``P``,
        ``innovation``, ``S`` (e.g. :class:`~blocks.estimation.EKF`); its
        ``model`` param must be the twin's model, or ``None``, which is set to
        the twin's model. ``None``: ``EKF(model=<twin's model>)``, estimating
        the state only.
    anomaly : Block or None
        Detector (port ``u`` → ``score`` and/or ``alarm``) fed the innovation
        normalised by its covariance, ``ν / √S`` [-], through a
        :class:`~blocks.estimation.Residual` block named ``normalized``; an
        estimator without an ``S`` port feeds its raw ``innovation``.
    health : Block or None
        Health indicator fed the estimator's ``params`` (port ``params`` → ``hi``).
    rul : Block or None
        Remaining useful life fed ``hi`` (port ``hi`` → ``rul``, ``rul_lower``,
        ``rul_upper``); needs ``health``. When the trend never reaches the
        threshold, ``rul`` is what the block reports for that case, passed
        through (:class:`~blocks.health.RUL`: ``inf``, also for a crossing
        beyond its ``horizon`` param).
    dt : float
        Tick [s], finite and > 0.
    batch : int
        Number of assets B, >= 1.
    log : "all", sequence of str or None
        Ports kept in ``twin.history`` (``"block.port"``); ``None`` keeps none.
    max_len : int or None
        Ticks of history kept: the last ``max_len`` (a ring buffer, so a twin
        stepped for ever holds flat memory); ``None`` keeps every tick, so
        memory grows with the run.
    name : str
        Name of the graph; the error messages name the twin by it.

    Examples
    --------
    An EKF tracks a pump's efficiency; the health indicator maps it to [0, 1]:

    >>> from blocks.physics import PumpLike
    >>> from blocks.estimation import EKF
    >>> from blocks.anomaly import CUSUM
    >>> from blocks.health import ParameterHealth, RUL
    >>> twin = TwinSystem(physics=PumpLike(name="pump"),
    ...                   estimator=EKF(estimate=("efficiency",), q=0.0, q_params=1e-6,
    ...                                 r=1e-12, p0=0.0, p0_params=0.1),
    ...                   anomaly=CUSUM(k=1.0, h=8.0), health=ParameterHealth(nominal=1.0, failed=0.6),
    ...                   rul=RUL(window=50), dt=0.05)
    >>> twin.initialize(x0=[0.0, 0.0])
    >>> truth = PumpLike(efficiency=0.8)
    >>> x, p = truth.initial_state(1), truth.batch_params(1)
    >>> for k in range(200):
    ...     result = twin.step(u=12.0, measurement=truth.observe(x, None, p)[0])
    ...     x = truth.advance(x, np.full((1, 1), 12.0), 0.0, 0.05, p)
    >>> round(float(result.params[0]), 3), round(float(result.health_indicator), 2), sorted(twin.graph.blocks)
    (0.8, 0.5, ['anomaly', 'estimator', 'health', 'normalized', 'rul', 'u', 'y'])
    >>> round(float(result.params_std[0]), 4), float(result.rul)  # a constant health indicator never fails
    (0.0022, inf)

    The detector sees the innovation in standard deviations (the filter's ``S``), not in m³/s:

    >>> residual = twin.history["normalized.residual"]
    >>> round(float(np.abs(residual).max()), 2), bool(twin.history["anomaly.alarm"].any())
    (0.58, False)
    """

    def __init__(self, physics, residual=None, estimator=None, anomaly=None, health=None, rul=None, dt=1.0,
                 batch=1, log="all", max_len=MAX_LEN, *, name="twin") -> None:
        self.name = name
        self.batch, self.log, self.max_len = batch, log, max_len
        check_number(self, "batch", low=1, integer=True)
        if max_len is not None:
            check_number(self, "max_len", low=1, integer=True)
        model = self._compose(physics, residual)
        estimator = self._estimator(model, estimator)
        for role, block in (("anomaly", anomaly), ("health", health), ("rul", rul)):
            if block is not None and not isinstance(block, Block):
                raise invalid_param(self, role, "a Block or None", block)
        if rul is not None and health is None:
            raise invalid_param(self, "rul", "None when 'health' is None (RUL is fed the health indicator)", rul)
        produced = {f"estimator.{port.name}" for port in estimator.out}
        if health is not None and "estimator.params" not in produced:
            raise invalid_param(self, "health", "None when the estimator has no 'params' port (estimate=...)", health)

        g = self.graph = Graph(name, dt=dt)
        self.dt = g.dt
        g.add(estimator)
        self._has_input = model.n_u > 0
        if self._has_input:
            g.connect(g.add(Input("u", shape=(model.n_u,), unit=model.input_unit)).out.value, "estimator.u")
        g.connect(g.add(Input("y", shape=(model.n_y,), unit=model.y_unit)).out.value, "estimator.y")
        detected = "estimator.innovation"
        if anomaly is not None and "estimator.S" in produced:
            g.add(Residual(name="normalized"))
            g.connect("estimator.innovation", "normalized.innovation")
            g.connect("estimator.S", "normalized.S")
            detected = "normalized.residual"
        for role, block, source, port in (
            ("anomaly", anomaly, detected, "u"),
            ("health", health, "estimator.params", "params"),
            ("rul", rul, "health.hi", "hi"),
        ):
            if block is not None:
                block.name = role
                g.add(block)
                g.connect(source, f"{role}.{port}")
                produced |= {f"{role}.{p.name}" for p in block.out}
        self.estimator = estimator
        # the ports read each tick, in the order of TwinResult's fields (P standing in for params_std); None: absent
        paths = ("estimator.x_hat", "estimator.params", "estimator.P", "anomaly.score", "anomaly.alarm", "health.hi",
                 "rul.rul", "rul.rul_lower", "rul.rul_upper")
        self._paths = [path if path in produced else None for path in paths]
        if self._paths[1] is None:
            self._paths[2] = None
        self.sim: Simulator | None = None

    def _compose(self, physics, residual) -> ODEModel:
        """The twin's model: ``residual`` built on ``physics``, or ``physics`` alone."""
        checked_model(self, "physics", physics)
        physics.name = physics.name or "physics"
        if residual is None:
            return physics
        if not isinstance(residual, ODEModel) or "model" not in residual.get_params():
            raise invalid_param(self, "residual", "an ODEModel correcting a 'model' param (e.g. TorchResidual) "
                                "or None", residual)
        residual.name = residual.name or "residual"
        if residual.model is None:
            residual.model = physics
        elif residual.model is not physics:
            raise invalid_param(self, "residual", f"built on the twin's physics {_describe(physics)} "
                                "(or have model=None)",
                                _Described(f"{_describe(residual)} on {_describe(residual.model)}"))
        return residual

    def _estimator(self, model: ODEModel, estimator) -> Block:
        """``estimator`` running ``model`` (set when its ``model`` is None), or ``EKF(model=model)``."""
        if estimator is None:
            return EKF(model=model, name="estimator")
        if not isinstance(estimator, Block):
            raise invalid_param(self, "estimator", "a Block (a filter such as EKF) or None", estimator)
        estimator.name = "estimator"
        if "model" in estimator.get_params():
            if estimator.model is None:
                estimator.model = model
            elif estimator.model is not model:
                raise invalid_param(self, "estimator", f"built on the twin's model {_describe(model)} "
                                    "(or have model=None)",
                                    _Described(f"{_describe(estimator)} on {_describe(estimator.model)}"))
        return estimator

    def initialize(self, x0=None) -> None:
        """Start (or restart) at tick 0.

        Parameters
        ----------
        x0 : array_like or None
            The estimator's initial state, ``(n_x,)`` or ``(B, n_x)``, set as its
            ``x0`` param (so ``twin.graph`` keeps it); ``None`` keeps that param.
        """
        if x0 is not None:
            if "x0" not in self.estimator.get_params():
                raise invalid_param(self, "estimator", "a filter with an 'x0' param to take initialize(x0=...)",
                                    self.estimator)
            self.estimator.x0 = x0
        self.sim = Simulator(self.graph, batch=self.batch, log=self.log, max_len=self.max_len)

    @property
    def history(self):
        """The :class:`~twingraph.History` of the logged ports since :meth:`initialize` (last ``max_len`` ticks)."""
        return None if self.sim is None else self.sim.history

    def step(self, u: Any = None, measurement: Any = None) -> TwinResult:
        """One tick with input ``u`` and measurement ``y`` (NaN: missing); returns the tick's estimates."""
        if self.sim is None:
            self.initialize()
        if (u is not None) != self._has_input:
            needs = "an input u every step" if self._has_input else "no input u (its model has none)"
            raise SimulationError(f"TwinSystem '{self.name}' takes {needs}. Got u={u!r:.80}.")
        out = self.sim.step(y=measurement, u=u) if self._has_input else self.sim.step(y=measurement)
        state, params, variances, *detected = [None if path is None else out[path] for path in self._paths]
        params_std = None if variances is None else np.sqrt(variances[..., -params.shape[-1] :])  # P ends with params
        return TwinResult(state, params, params_std, *detected)
