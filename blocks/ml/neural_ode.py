"""A neural ODE: an ODE block whose right-hand side is a network, ``dx/dt = net(x, u, t)``."""

import numpy as np

from blocks.physics.ode import ODEModel
from twingraph.errors import check_number, invalid_param

from .nets import TorchModel, check_architecture, mlp, to_tensor, torch_module


class NeuralODE(TorchModel, ODEModel):
    """Continuous-time model learned from data: ``ẋ = net(x, u, t)``, ``y = x``.

    Integrated over each tick by the same integrators as physics models
    (:mod:`blocks.physics.integrators`), so it replaces a physics model
    anywhere one is used, an estimator's model included: :meth:`jacobian`
    gives ``∂f/∂x`` by automatic differentiation. Train it with
    :func:`~blocks.ml.train_neural_ode` (derivative targets) and
    :func:`~blocks.ml.train_neural_ode_trajectory` (trajectory matching).

    Parameters
    ----------
    states : tuple of str
        State names; their number is the state size ``n_x``.
    n_inputs : int
        Size of the input ``u`` (0: no input port).
    hidden : tuple of int
        Hidden layer widths of the network.
    activation : {"tanh", "relu", "silu", "gelu", "softplus", "elu"}
        Activation between layers.
    seed : int
        Seed of the initial weights.
    time_input : bool
        Whether the network also sees the time ``t`` [s] (a non-autonomous system).
    x0, integrator, substeps, method, rtol, atol, name
        As for :class:`~blocks.physics.ode.ODEModel`.

    Ports
    -----
    u (in) : shape (n_inputs,); absent when ``n_inputs == 0``.
    y (out) : shape (n_x,), the state.
    x (out) : shape (n_x,), the state.

    Notes
    -----
    With the normalisation statistics stored as weights::

        z = ([x, u(, t)] - in_mean) / in_scale
        ẋ = net(z) * out_scale + out_mean

    The network is float64, so the block's numbers equal the network's. Its
    weights and statistics are saved beside the graph file
    (:meth:`weights`); a loaded model gives identical outputs.
    """

    def __init__(
        self,
        states=("x0", "x1"),
        n_inputs=0,
        hidden=(64, 64),
        activation="tanh",
        seed=0,
        time_input=False,
        x0=0.0,
        integrator="rk4",
        substeps=1,
        method="RK45",
        rtol=1e-6,
        atol=1e-9,
        *,
        name=None,
    ):
        super().__init__(x0, integrator, substeps, method, rtol, atol, name=name)
        self.states = states
        self.n_inputs = n_inputs
        self.hidden = hidden
        self.activation = activation
        self.seed = seed
        self.time_input = time_input

    @property
    def net_inputs(self) -> int:
        return self.n_x + self.n_inputs + int(bool(self.time_input))

    @property
    def net_outputs(self) -> int:
        return self.n_x

    def build_network(self):
        self.check_params()
        return mlp(self.net_inputs, self.n_x, tuple(self.hidden), self.activation, self.seed)

    def check_params(self) -> None:
        states = self.states
        if not isinstance(states, (tuple, list)) or not states or not all(isinstance(s, str) for s in states):
            raise invalid_param(self, "states", "a non-empty sequence of state names", states)
        super().check_params()
        check_number(self, "n_inputs", low=0, integer=True)
        check_architecture(self)
        if not isinstance(self.time_input, (bool, np.bool_)):
            raise invalid_param(self, "time_input", "True or False", self.time_input)

    def rhs(self, x, u, t):
        """``ẋ = net(x, u, t)`` on torch tensors: ``x (B, n_x)``, ``u (B, n_u)``, ``t`` a float or ``(B,)``."""
        torch = torch_module()
        columns = [x, u]
        if self.time_input:
            columns.append(torch.as_tensor(t, dtype=x.dtype).reshape(-1, 1).expand(len(x), 1))
        return self.net_forward(torch.cat(columns, dim=1))

    def derivative(self, x, u, t, p):
        torch = torch_module()
        with torch.no_grad():
            return self.rhs(to_tensor(x), to_tensor(u), float(t)).numpy()

    def jacobian(self, x, u, t, p):
        """``∂f/∂x``, ``(B, n_x, n_x)``, by reverse-mode autodiff of the network, vectorised over the batch."""
        torch = torch_module()

        def one(xi, ui):
            return self.rhs(xi[None], ui[None], float(t))[0]

        jac = torch.func.vmap(torch.func.jacrev(one))(to_tensor(x), to_tensor(u))
        return jac.detach().numpy()
