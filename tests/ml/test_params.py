"""Bad params of the ML blocks: refused when the graph is validated, naming block type, block and param.

Checking params builds no network, so these tests run without torch.
"""

import pytest

import twingraph as tg
from blocks.math import Gain
from blocks.ml import NeuralDynamics, NeuralODE, TorchResidual, WindowRUL
from blocks.physics import MassSpringDamper

MODEL = r"The 'model' parameter of TorchResidual 'm' must be an ODEModel block\. Got "


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: TorchResidual(name="m"), MODEL + r"None\."),
        (lambda: TorchResidual(model=Gain(k=2.0), name="m"), MODEL + r"Gain\(k=2\.0"),
        (lambda: TorchResidual(model=MassSpringDamper(), target="state", name="m"),
         r"The 'target' parameter of TorchResidual 'm' must be one of \['derivative', 'output'\]\. Got 'state'\."),
        (lambda: TorchResidual(model=MassSpringDamper(), hidden="32", name="m"),
         r"The 'hidden' parameter of TorchResidual 'm' must be a sequence of layer widths, ints >= 1\. Got '32'\."),
        (lambda: NeuralODE(states="xy", name="m"),
         r"The 'states' parameter of NeuralODE 'm' must be a non-empty sequence of state names\. Got 'xy'\."),
        (lambda: NeuralODE(n_inputs=-1, name="m"), r"The 'n_inputs' parameter of NeuralODE 'm' must be an int >= 0\."),
        (lambda: NeuralODE(activation="sigmoid", name="m"),
         r"The 'activation' parameter of NeuralODE 'm' must be one of \['tanh', "),
        (lambda: NeuralODE(hidden=(8, 2.5), name="m"), r"The 'hidden' parameter of NeuralODE 'm' must be a sequence"),
        (lambda: NeuralODE(seed=-1, name="m"), r"The 'seed' parameter of NeuralODE 'm' must be an int >= 0\. Got -1\."),
        (lambda: NeuralODE(time_input="yes", name="m"),
         r"The 'time_input' parameter of NeuralODE 'm' must be True or False\. Got 'yes'\."),
        (lambda: NeuralDynamics(n_states=0, name="m"), r"The 'n_states' parameter of NeuralDynamics 'm' must be an"),
        (lambda: NeuralDynamics(dt="0.1", name="m"),
         r"The 'dt' parameter of NeuralDynamics 'm' must be a number > 0 \[s\]\. Got '0\.1'\."),
        (lambda: NeuralDynamics(x0=[1.0, 2.0, 3.0], name="m"),
         r"The 'x0' parameter of NeuralDynamics 'm' must be a number, 2 values or one row per asset \(B, 2\)"),
        (lambda: NeuralDynamics(x0="abc", name="m"), r"The 'x0' parameter of NeuralDynamics 'm' must be a number"),
        (lambda: WindowRUL(window=0, name="m"), r"The 'window' parameter of WindowRUL 'm' must be an int >= 1\."),
        (lambda: WindowRUL(kernel=4, name="m"), r"The 'kernel' parameter of WindowRUL 'm' must be an odd int >= 1"),
        (lambda: WindowRUL(alpha=1.5, name="m"), r"The 'alpha' parameter of WindowRUL 'm' must be a number in \(0, 1"),
        (lambda: WindowRUL(channels=(4, 0), name="m"),
         r"The 'channels' parameter of WindowRUL 'm' must be a sequence of channel counts, ints >= 1\."),
        (lambda: WindowRUL(cap=float("inf"), name="m"), r"The 'cap' parameter of WindowRUL 'm' must be a number > 0"),
        (lambda: WindowRUL(n_models="2", name="m"), r"The 'n_models' parameter of WindowRUL 'm' must be an int >= 1"),
    ],
)
def test_bad_params_are_named_at_validate(make, message):
    g = tg.Graph("g", dt=0.1)
    g.add(make())
    with pytest.raises(tg.ParamError, match=message):
        g.validate()


def test_a_residual_without_a_physics_model_has_no_ports_yet():
    """No hidden default model: the ports say why they cannot be known."""
    residual = TorchResidual(name="m")
    with pytest.raises(tg.ParamError, match=MODEL + r"None\."):
        residual.inp.u  # noqa: B018
