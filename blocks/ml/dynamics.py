"""Discrete learned dynamics: ``x_{k+1} = x_k + net(x_k, u_k)``, one network step per tick of ``dt``."""

import numpy as np

from twingraph import Block, Signal
from twingraph.errors import check_array, check_number, invalid_param

from .nets import TorchModel, check_architecture, default_dynamics_net, to_tensor, torch_module


class NeuralDynamics(TorchModel, Block):
    """A discrete-time model learned from transitions: ``x_{k+1} = F(x_k, u_k)`` over a fixed step ``dt``.

    Train it with :func:`~blocks.ml.train_dynamics`; the graph must tick at
    the ``dt`` it was trained for.

    Parameters
    ----------
    n_states : int
        State size ``n_x``.
    n_inputs : int
        Input size ``n_u`` (0: no input port).
    dt : float
        The step the model represents [s]; set by :func:`~blocks.ml.train_dynamics`.
    hidden : tuple of int
        Hidden layer widths (:func:`~blocks.ml.default_dynamics_net`).
    activation : {"tanh", "relu", "silu", "gelu", "softplus", "elu"}
        Activation between layers.
    seed : int
        Seed of the initial weights.
    x0 : float or array_like
        Initial state: a scalar, ``(n_x,)`` or ``(B, n_x)``.
    name : str or None
        Block name.

    Ports
    -----
    u (in) : shape (n_inputs,); absent when ``n_inputs == 0``.
    x (out) : shape (n_states,), the state ``x_k``.

    Notes
    -----
    The network predicts the increment, normalised with statistics stored
    as weights::

        z       = ([x_k, u_k] - in_mean) / in_scale
        x_{k+1} = x_k + net(z) * out_scale + out_mean
    """

    direct_feedthrough = False

    def __init__(self, n_states=2, n_inputs=0, dt=0.1, hidden=(64, 64), activation="tanh", seed=0, x0=0.0, *,
                 name=None):
        super().__init__(name=name)
        self.n_states = n_states
        self.n_inputs = n_inputs
        self.dt = dt
        self.hidden = hidden
        self.activation = activation
        self.seed = seed
        self.x0 = x0

    @property
    def net_inputs(self) -> int:
        return self.n_states + self.n_inputs

    @property
    def net_outputs(self) -> int:
        return self.n_states

    def check_params(self) -> None:
        check_number(self, "n_states", low=1, integer=True)
        check_number(self, "n_inputs", low=0, integer=True)
        check_number(self, "dt", low=0, low_open=True, unit="s")
        check_architecture(self)
        x0 = check_array(self, "x0")
        if x0.ndim > 2 or (x0.ndim and x0.shape[-1] not in (1, self.n_states)):
            expected = f"a number, {self.n_states} values or one row per asset (B, {self.n_states})"
            raise invalid_param(self, "x0", expected, self.x0)

    def build_network(self):
        self.check_params()
        return default_dynamics_net(self.n_states, self.n_inputs, tuple(self.hidden), self.activation, self.seed)

    def input_signals(self):
        self.check_params()
        return {"u": Signal(shape=(self.n_inputs,))} if self.n_inputs else {}

    def output_signals(self, inputs):
        self.check_params()
        return {"x": Signal(shape=(self.n_states,))}

    def step_torch(self, x, u):
        """``x_{k+1}`` from torch tensors ``x (B, n_x)`` and ``u (B, n_u)``."""
        return x + self.net_forward(torch_module().cat([x, u], dim=1))

    def predict(self, x, u=None) -> np.ndarray:
        """One step: ``x_{k+1}`` of shape ``(B, n_x)`` from ``x (B, n_x)`` and ``u (B, n_u)``."""
        torch = torch_module()
        x = np.asarray(x, dtype=float)
        u = np.zeros((len(x), 0)) if u is None else np.asarray(u, dtype=float)
        with torch.no_grad():
            return self.step_torch(to_tensor(x), to_tensor(u)).numpy()

    def rollout(self, x0, u=None, steps: int | None = None) -> np.ndarray:
        """States ``x_0 ... x_K`` of shape ``(K + 1, B, n_x)`` from ``x0 (B, n_x)`` and inputs ``u (K, B, n_u)``."""
        x = np.atleast_2d(np.asarray(x0, dtype=float))
        if u is None:
            if steps is None:
                raise ValueError("Give the inputs u of shape (K, B, n_u) or, without inputs, the number of steps.")
            u = np.zeros((steps, len(x), 0))
        out = [x]
        for u_k in np.asarray(u, dtype=float):
            out.append(self.predict(out[-1], u_k))
        return np.stack(out)

    def reset(self, ctx):
        if not np.isclose(ctx.dt, self.dt, rtol=1e-9, atol=0.0):
            raise invalid_param(self, "dt", f"the graph's dt, {ctx.dt:g} s (the model steps by the dt it was "
                                "trained for)", self.dt)
        try:
            self.x_ = np.broadcast_to(np.asarray(self.x0, dtype=float), (ctx.batch, self.n_states)).copy()
        except ValueError:
            raise invalid_param(self, "x0", f"a scalar, {self.n_states} values or shape ({ctx.batch}, "
                                f"{self.n_states})", self.x0) from None
        self._no_input = np.zeros((ctx.batch, 0))

    def output(self, t, inp, out):
        out.x[...] = self.x_

    def update(self, t, inp):
        u = inp.u if self.n_inputs else self._no_input
        self.x_[...] = self.predict(self.x_, u)
