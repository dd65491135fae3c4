"""What every filter over an ODE model shares: params, ports, checks and the initial estimate."""

import numpy as np

from twingraph import Block, Context, Signal, SimulationError, units
from twingraph.errors import check_array, invalid_param

from ..physics.ode import ODEModel, check_estimate, checked_model, common_unit


def diagonal(value, size: int) -> np.ndarray:
    """A scalar or one value per element, as a ``(size,)`` array of variances."""
    return np.broadcast_to(np.asarray(value, dtype=float), (size,)).copy()


class ModelFilter(Block, abstract=True):
    """Base class of the filters over an :class:`~blocks.physics.ode.ODEModel`, with parameter estimation.

    It holds what :class:`~blocks.estimation.EKF`,
    :class:`~blocks.estimation.UKF` and
    :class:`~blocks.estimation.ParticleFilter` have in common: the params
    ``model``, ``estimate``, ``q``, ``q_params``, ``r``, ``p0``,
    ``p0_params`` and ``x0`` (documented on each filter), their checks, the
    ports (inputs ``u``, ``y``; outputs ``x_hat``, ``params``, ``P``,
    ``innovation``, ``S``, ``nis``), the check of the measurement, the
    initial estimate and the model's parameters for many copies of the batch.
    A subclass adds its own params, checks and ports, names in ``positive``
    the variances that must be > 0, lays out its state in :meth:`reset` after
    this one, and implements the update (phase 1, :meth:`output`, publishing
    through :meth:`_publish`) and the prediction (phase 2, :meth:`update`).
    """

    direct_feedthrough = True
    positive: tuple[str, ...] = ("r",)  # the variance params that must be > 0 (the others >= 0)

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

    def check_params(self) -> None:
        model = checked_model(self)
        model.check_params()
        check_estimate(self, model)
        n_x, n_e, n_y = model.n_x, len(self.estimate), model.n_y
        for param, size, per in (
            ("q", n_x, "state"),
            ("q_params", n_e, "estimated parameter"),
            ("r", n_y, "measurement"),
            ("p0", n_x, "state"),
            ("p0_params", n_e, "estimated parameter"),
        ):
            value = check_array(self, param)
            positive = param in self.positive
            if value.ndim > 1 or value.size not in (1, size) or not np.all(value > 0 if positive else value >= 0):
                bound = "> 0" if positive else ">= 0"
                raise invalid_param(self, param, f"a variance {bound}, or {size} of them (one per {per})",
                                    getattr(self, param))
        if self.x0 is not None:
            x0 = check_array(self, "x0")
            if x0.ndim > 2 or (x0.ndim and x0.shape[-1] not in (1, n_x)):
                expected = f"None or an initial state of {n_x} values {list(model.states)}, or (B, {n_x})"
                raise invalid_param(self, "x0", expected, self.x0)

    def input_signals(self) -> dict[str, Signal]:
        model = checked_model(self)
        ports = {"u": Signal(shape=(model.n_u,), unit=model.input_unit)} if model.n_u else {}
        ports["y"] = Signal(shape=(model.n_y,), unit=model.y_unit)
        return ports

    def output_signals(self, inputs):
        self.check_params()
        model = self.model
        n_e = len(self.estimate)
        ports = {"x_hat": Signal(shape=(model.n_x,), unit=common_unit(model.state_units))}
        if n_e:
            ports["params"] = Signal(shape=(n_e,))
        ports["P"] = Signal(shape=(model.n_x + n_e,))
        ports["innovation"] = Signal(shape=(model.n_y,), unit=model.y_unit)
        ports["S"] = Signal(shape=(model.n_y,), unit=units.product([(model.y_unit, 2)]))
        ports["nis"] = Signal(shape=(), unit="")
        return ports

    def reset(self, ctx: Context) -> None:
        """The initial estimate and the constants of every tick.

        ``n = n_x + n_est``; the parameters start at the model's values. Sets
        ``_z0 (B, n)``, the initial mean, ``_p0 (n,)``, its variances, ``_q``,
        the process variances ``(n,)`` (the diagonal of Q), and ``_R``, the
        measurement variances ``(n_y,)``.
        """
        model = self._model = self.model
        batch, n_x, n_e = ctx.batch, model.n_x, len(self.estimate)
        self._batch, self._n_x, self._n_a, self._dt = batch, n_x, n_x + n_e, ctx.dt
        self._p = model.batch_params(batch)
        self._tiled = {}
        if self.x0 is None:
            x0 = model.initial_state(batch)
        else:
            try:
                x0 = np.broadcast_to(np.asarray(self.x0, dtype=float), (batch, n_x))
            except ValueError:
                expected = f"{n_x} values or one row per asset ({batch}, {n_x})"
                raise invalid_param(self, "x0", expected, self.x0) from None
        theta0 = np.stack([self._p[name] for name in self.estimate], axis=1) if n_e else np.zeros((batch, 0))
        self._z0 = np.concatenate([x0, theta0], axis=1)
        self._p0 = np.concatenate([diagonal(self.p0, n_x), diagonal(self.p0_params, n_e)])
        self._q = np.concatenate([diagonal(self.q, n_x), diagonal(self.q_params, n_e)])
        self._R = diagonal(self.r, model.n_y)
        self._has_input = model.n_u > 0
        self._no_input = np.zeros((batch, 0))

    def _measured(self, y: np.ndarray, t: float) -> np.ndarray:
        """Where ``y`` holds a measurement (not NaN); SimulationError naming the block and port ``y`` for ±inf."""
        measured = np.isfinite(y)
        if measured.all():
            return measured
        infinite = np.isinf(y)
        if infinite.any():
            asset, element = (int(i[0]) for i in np.nonzero(infinite))
            raise SimulationError(
                f"{type(self).__name__} '{self.name}': input 'y' is {y[asset, element]} at t = {t:g} s (asset "
                f"{asset}, element {element}). A measurement must be finite, or NaN where it is missing."
            )
        return measured

    def _params(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """The model's parameters for ``c`` copies of the batch side by side, estimated ones ``theta (n_est, c B)``."""
        copies = theta.shape[1] // self._batch
        if copies not in self._tiled:  # the fixed parameters of ``copies`` copies, tiled once
            self._tiled[copies] = {name: np.tile(value, copies) for name, value in self._p.items()}
        p = dict(self._tiled[copies])
        p.update(zip(self.estimate, theta, strict=True))
        return p

    def _publish(self, out, z: np.ndarray, p: np.ndarray, nu: np.ndarray, s: np.ndarray, nis: np.ndarray) -> None:
        """Write the posterior and its diagnostics to the output ports.

        ``z (B, n)`` the posterior mean, ``p (B, n)`` and ``s (B, n_y)`` the
        diagonals of P and S, ``nu (B, n_y)`` the innovation, ``nis (B,)`` the NIS.
        """
        out.x_hat[...] = z[:, : self._n_x]
        if self._n_a > self._n_x:
            out.params[...] = z[:, self._n_x :]
        out.P[...] = p
        out.innovation[...] = nu
        out.S[...] = s
        out.nis[...] = nis


class KalmanFilter(ModelFilter, abstract=True):
    """Base class of the Kalman filters: the estimate is a mean ``z_ (B, n)`` and a covariance ``P_ (B, n, n)``.

    :class:`~blocks.estimation.EKF` and :class:`~blocks.estimation.UKF`
    subclass it; everything else they share is in :class:`ModelFilter`. On
    top of its ports, a Kalman filter outputs ``cov``, the full posterior
    covariance of ``[x, params]``, shape ``(n_x + n_est, n_x + n_est)`` (``P``
    is its diagonal): what :func:`~blocks.health.samples_from_gaussian`
    samples from.
    """

    def output_signals(self, inputs):
        ports = super().output_signals(inputs)
        n = self.model.n_x + len(self.estimate)
        ports["cov"] = Signal(shape=(n, n))
        return ports

    def reset(self, ctx: Context) -> None:
        """The prior ``z_ (B, n)``, ``P_ (B, n, n)`` at the initial values, and the constants of every tick."""
        super().reset(ctx)
        self.z_ = self._z0.copy()
        self.P_ = np.broadcast_to(np.diag(self._p0), (self._batch, self._n_a, self._n_a)).copy()

    def _publish_gaussian(self, out, z: np.ndarray, cov: np.ndarray, nu: np.ndarray, s: np.ndarray,
                          nis: np.ndarray) -> None:
        """:meth:`_publish` from the full posterior covariance ``cov (B, n, n)`` (a view in any memory layout)."""
        out.cov[...] = cov
        self._publish(out, z, np.diagonal(cov, axis1=1, axis2=2), nu, s, nis)
