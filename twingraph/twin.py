"""TwinSystem: the standard twin graph (estimator, anomaly detector, health, RUL) behind one object."""

from dataclasses import dataclass
from typing import Any

import numpy as np

from .graph import Graph
from .simulator import Simulator


@dataclass(frozen=True)
class TwinResult:
    """One tick of a :class:`TwinSystem`; a field is ``None`` when its block is absent."""

    state: np.ndarray
    params: np.ndarray | None
    anomaly: np.ndarray | None
    alarm: np.ndarray | None
    health_indicator: np.ndarray | None
    rul: np.ndarray | None


class TwinSystem:
    """A twin without wiring: builds ``y, u → estimator → residual → anomaly``, ``params → health → rul``.

    Parameters
    ----------
    physics : ODEModel
        The process model.
    estimator : Block or None
        A filter with ports ``u``, ``y`` → ``x_hat``, ``params``, ``innovation``;
        ``None``: ``EKF(model=physics)`` (state only).
    anomaly : Block or None
        Detector (ports ``x`` → ``score``, ``alarm``) fed the estimator's innovation
        normalised by its covariance, ``ν / √S`` [-], through a
        :class:`~blocks.estimation.Residual` block named ``residual``; an estimator
        without an ``S`` port feeds its raw ``innovation``.
    health : Block or None
        Health indicator fed the estimator's ``params`` (port ``params`` → ``hi``).
    rul : Block or None
        Remaining useful life fed ``hi`` (port ``hi`` → ``rul``); needs ``health``.
        The blocks are renamed after their role (``estimator``, ``residual``, ``anomaly``, ``health``, ``rul``).
    dt : float
        Tick [s].
    batch : int
        Number of assets.

    Examples
    --------
    >>> from blocks.physics import PumpLike
    >>> from blocks.estimation import EKF
    >>> from blocks.anomaly import CUSUM
    >>> from blocks.health import ParameterHealth, RUL
    >>> pump = PumpLike()
    >>> twin = TwinSystem(physics=pump,
    ...                   estimator=EKF(model=pump, estimate=("efficiency",), q=0.0, q_params=1e-6,
    ...                                 r=1e-12, p0=0.0, p0_params=0.1),
    ...                   anomaly=CUSUM(k=1.0, h=8.0), health=ParameterHealth(nominal=1.0, failed=0.6),
    ...                   rul=RUL(window=50), dt=0.05)
    >>> twin.initialize(x0=[0.0, 0.0])
    >>> truth, p = PumpLike(efficiency=0.8), PumpLike(efficiency=0.8).batch_params(1)
    >>> x = truth.initial_state(1)
    >>> for k in range(200):
    ...     result = twin.step(u=12.0, measurement=truth.observe(x, None, p)[0])
    ...     x = truth.advance(x, np.full((1, 1), 12.0), 0.0, 0.05, p)
    >>> round(float(result.params[0]), 3), round(float(result.health_indicator), 2), sorted(twin.graph.blocks)
    (0.8, 0.5, ['anomaly', 'estimator', 'health', 'residual', 'rul', 'u', 'y'])

    The detector sees the innovation in standard deviations (the filter's ``S``), not in m³/s:

    >>> residual = twin.history["residual.residual"]
    >>> round(float(np.abs(residual).max()), 2), bool(twin.history["anomaly.alarm"].any())
    (0.58, False)
    """

    def __init__(self, physics, estimator=None, anomaly=None, health=None, rul=None, dt=1.0, batch=1) -> None:
        from blocks.estimation import EKF, Residual
        from blocks.sources import Input

        if rul is not None and health is None:
            raise ValueError("The 'rul' parameter of TwinSystem needs 'health' (RUL is fed the health indicator).")
        self.dt, self.batch = dt, batch
        g = self.graph = Graph("twin", dt=dt)
        estimator = EKF(model=physics) if estimator is None else estimator
        estimator.name = "estimator"  # the facade names its blocks by role
        g.add(estimator)
        self._has_input = physics.n_u > 0
        if self._has_input:
            g.connect(g.add(Input("u", shape=(physics.n_u,), unit=physics.input_unit)).out.value, "estimator.u")
        g.connect(g.add(Input("y", shape=(physics.n_y,), unit=physics.y_unit)).out.value, "estimator.y")
        detected = "estimator.innovation"
        if anomaly is not None and "S" in [port.name for port in estimator.out]:
            g.add(Residual(name="residual"))
            g.connect("estimator.innovation", "residual.innovation")
            g.connect("estimator.S", "residual.S")
            detected = "residual.residual"
        for role, block, source, port in (
            ("anomaly", anomaly, detected, "x"),
            ("health", health, "estimator.params", "params"),
            ("rul", rul, "health.hi", "hi"),
        ):
            if block is not None:
                block.name = role
                g.add(block)
                g.connect(source, f"{role}.{port}")
        self._roles = {role for role, block in (("anomaly", anomaly), ("health", health), ("rul", rul)) if block}
        self.sim: Simulator | None = None

    def initialize(self, x0=None) -> None:
        """Start (or restart) at tick 0; ``x0`` overrides the estimator's initial state ``(n_x,)`` or ``(B, n_x)``."""
        self.sim = Simulator(self.graph, batch=self.batch)
        if x0 is not None:
            estimator = self.sim.blocks["estimator"]
            n_x = estimator.process.n_x
            estimator.z_[:, :n_x] = np.broadcast_to(np.asarray(x0, dtype=float), (self.batch, n_x))

    @property
    def history(self):
        """The :class:`~twingraph.History` of every port since :meth:`initialize`."""
        return None if self.sim is None else self.sim.history

    def step(self, u: Any = None, measurement: Any = None) -> TwinResult:
        """One tick with input ``u`` and measurement ``y`` (NaN: missing); returns the tick's estimates."""
        if self.sim is None:
            self.initialize()
        feeds = {"y": measurement, **({"u": u} if self._has_input else {})}
        out = self.sim.step(**feeds)
        params = out["estimator.params"] if "estimator.params" in self.sim.history.ports else None

        def get(role, port):
            return out[f"{role}.{port}"] if role in self._roles else None

        return TwinResult(
            out["estimator.x_hat"], params, get("anomaly", "score"), get("anomaly", "alarm"),
            get("health", "hi"), get("rul", "rul"),
        )
