"""A learned correction of a physics model: its state derivative or its output plus a network."""

import numpy as np

from blocks.physics.ode import ODEModel, checked_model
from twingraph.errors import check_choice, invalid_param

from .nets import TorchModel, check_architecture, mlp, to_tensor, torch_module

TARGETS = ("derivative", "output")


class TorchResidual(TorchModel, ODEModel):
    """A physics model corrected by a network, on its state derivative or on its output.

    The block is itself an ODE model with the physics model's states,
    parameters, ports and integrator, so it goes wherever the physics model
    goes: a graph, a :class:`~blocks.physics.SeriesModel` or
    :class:`~blocks.physics.ParallelModel`, or an estimator (EKF), which then
    estimates the physics parameters of the corrected model. Train it with
    :func:`~blocks.ml.train_residual`.

    Parameters
    ----------
    model : ODEModel
        The physics model (``None`` until set: the graph does not validate without one).
    target : {"derivative", "output"}
        Where the correction is added.
    net : torch.nn.Module or None
        A float64 network of your own, ``(B, n_x + n_u) -> (B, n_x or n_y)``
        on normalised inputs; None builds an MLP from ``hidden``, ``activation``
        and ``seed`` whose last layer starts at zero (no correction before
        training). A graph holding a user network runs, but does not save:
        code is never saved; use the built-in MLP for a saveable model.
    hidden : tuple of int
        Hidden layer widths of the built-in MLP.
    activation : {"tanh", "relu", "silu", "gelu", "softplus", "elu"}
        Its activation.
    seed : int
        Seed of its initial weights.
    name : str or None
        Block name.

    Ports
    -----
    As the physics model: ``u`` (in) when it has inputs, ``y`` and ``x`` (out).

    Notes
    -----
    With ``r(x, u) = net(([x, u] - in_mean) / in_scale) * out_scale + out_mean``::

        target="derivative":  ẋ = f(x, u, t, p) + r(x, u),   y = h(x, u, p)
        target="output":      ẋ = f(x, u, t, p),             y = h(x, u, p) + r(x, u)

    :meth:`jacobian` adds the autodiff Jacobian of ``r`` to the physics
    model's analytic one (None, finite differences, when the physics model has
    none).
    """

    def __init__(self, model=None, target="derivative", net=None, hidden=(32, 32), activation="tanh", seed=0, *,
                 name=None):
        super(ODEModel, self).__init__(name=name)
        self.model = model
        self.target = target
        self.net = net
        self.hidden = hidden
        self.activation = activation
        self.seed = seed

    @property
    def physics(self) -> ODEModel:
        """``model``, or the ParamError saying that it must be an ODEModel block."""
        return checked_model(self)

    states = property(lambda self: self.physics.states)
    state_units = property(lambda self: self.physics.state_units)
    n_inputs = property(lambda self: self.physics.n_u)
    input_unit = property(lambda self: self.physics.input_unit)
    n_outputs = property(lambda self: self.physics.n_y)
    output_unit = property(lambda self: self.physics.y_unit)
    parameters = property(lambda self: self.physics.parameters)
    positive = property(lambda self: self.physics.positive)
    x0 = property(lambda self: self.physics.x0)
    integrator = property(lambda self: self.physics.integrator)
    substeps = property(lambda self: self.physics.substeps)
    method = property(lambda self: self.physics.method)
    rtol = property(lambda self: self.physics.rtol)
    atol = property(lambda self: self.physics.atol)

    @property
    def direct_feedthrough(self) -> bool:
        return self.physics.direct_feedthrough or (self.target == "output" and self.physics.n_u > 0)

    def parameter_values(self):
        return self.physics.parameter_values()

    def initial_state(self, batch):
        return self.physics.initial_state(batch)

    @property
    def net_inputs(self) -> int:
        return self.physics.n_x + self.physics.n_u

    @property
    def net_outputs(self) -> int:
        return self.physics.n_x if self.target == "derivative" else self.physics.n_y

    def check_params(self) -> None:
        self.physics.check_params()
        check_choice(self, "target", TARGETS)
        if self.net is None:
            check_architecture(self)
            return
        torch = torch_module()
        if not isinstance(self.net, torch.nn.Module) or any(w.dtype != torch.float64 for w in self.net.parameters()):
            raise invalid_param(self, "net", "a float64 torch.nn.Module (call .double() on it) or None", self.net)

    def build_network(self):
        self.check_params()
        if self.net is None:
            return mlp(self.net_inputs, self.net_outputs, tuple(self.hidden), self.activation, self.seed,
                       zero_last=True)
        return self.net

    def correction(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        """``r(x, u)``, shape ``(B, n_x)`` or ``(B, n_y)``."""
        torch = torch_module()
        with torch.no_grad():
            return self.net_forward(torch.cat([to_tensor(x), to_tensor(u)], dim=1)).numpy()

    def derivative(self, x, u, t, p):
        dx = self.physics.derivative(x, u, t, p)
        return dx + self.correction(x, u) if self.target == "derivative" else dx

    def observe(self, x, u, p):
        y = self.physics.observe(x, u, p)
        return y + self.correction(x, u) if self.target == "output" else y

    def jacobian(self, x, u, t, p):
        physics = self.physics.jacobian(x, u, t, p)
        if physics is None or self.target == "output":
            return physics
        torch = torch_module()
        self.network()  # built here, not inside vmap, which refuses the random initial weights

        def one(xi, ui):
            return self.net_forward(torch.cat([xi, ui])[None])[0]

        return physics + torch.func.vmap(torch.func.jacrev(one))(to_tensor(x), to_tensor(u)).detach().numpy()
