"""What every Kalman filter block shares: params, ports, checks and the initial estimate."""

import numpy as np

from twingraph import Block, Context, Signal

from ..physics.library import PumpLike
from ..physics.ode import ODEModel, common_unit, invalid_param


def diagonal(value, size: int) -> np.ndarray:
    """A scalar or one value per element, as a ``(size,)`` array of variances."""
    return np.broadcast_to(np.asarray(value, dtype=float), (size,)).copy()


class KalmanFilter(Block, abstract=True):
    """Base class of the Kalman filters over an :class:`~blocks.physics.ode.ODEModel`, with parameter estimation.

    It holds what :class:`~blocks.estimation.EKF` and
    :class:`~blocks.estimation.UKF` have in common: the params ``model``,
    ``estimate``, ``q``, ``q_params``, ``r``, ``p0``, ``p0_params`` and ``x0``
    (documented on each filter), their checks, the ports (inputs ``u``, ``y``;
    outputs ``x_hat``, ``params``, ``P``, ``innovation``, ``S``,
    ``normalized_innovation``) and the initial estimate. A subclass adds its
    own params and checks, lays out its state in :meth:`reset` after this
    one, and implements the update (phase 1, :meth:`output`, publishing
    through :meth:`_publish`) and the prediction (phase 2, :meth:`update`).
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
        n_x, n_e, n_y = model.n_x, len(self.estimate), model.n_y
        for param, size in (("q", n_x), ("q_params", n_e), ("r", n_y), ("p0", n_x), ("p0_params", n_e)):
            value = np.asarray(getattr(self, param), dtype=float)
            if value.ndim > 1 or value.size not in (1, size) or not np.all(value >= 0):
                raise invalid_param(self, param, f"a variance >= 0 or {size} of them", getattr(self, param))

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
        """The prior ``z_ (B, n)``, ``P_ (B, n, n)`` at the initial values, and the constants of every tick.

        ``n = n_x + n_est``; the parameters start at the model's values. Sets
        ``_q``, the process variances ``(n,)`` (the diagonal of Q), and ``_R``,
        the measurement variances ``(n_y,)``.
        """
        self.check_params()
        model = self._model = self.process
        batch, n_x, n_e = ctx.batch, model.n_x, len(self.estimate)
        self._batch, self._n_x, self._n_a, self._dt = batch, n_x, n_x + n_e, ctx.dt
        self._p = model.batch_params(batch)
        self._tiled = {}
        if self.x0 is None:
            x0 = model.initial_state(batch)
        else:
            x0 = np.broadcast_to(np.asarray(self.x0, dtype=float), (batch, n_x))
        theta0 = np.stack([self._p[name] for name in self.estimate], axis=1) if n_e else np.zeros((batch, 0))
        self.z_ = np.concatenate([x0, theta0], axis=1)
        variances = np.concatenate([diagonal(self.p0, n_x), diagonal(self.p0_params, n_e)])
        self.P_ = np.broadcast_to(np.diag(variances), (batch, self._n_a, self._n_a)).copy()
        self._q = np.concatenate([diagonal(self.q, n_x), diagonal(self.q_params, n_e)])
        self._R = diagonal(self.r, model.n_y)
        self._has_input = model.n_u > 0
        self._no_input = np.zeros((batch, 0))

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
        out.normalized_innovation[...] = nis
