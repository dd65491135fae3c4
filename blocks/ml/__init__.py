"""Machine learning blocks: neural ODEs, learned discrete dynamics, residual corrections, symbolic ODEs, windowed RUL,
healthy behaviour.

Importing this package registers its block types and needs neither torch nor
gplearn; torch is imported when a network is built (``pip install
'twingraph[ml]'``), gplearn when formulas are searched (``'twingraph[symbolic]'``).
"""

from .data import compute_dx_dt_central, prepare_dynamics_data, prepare_ode_data_from_timeseries
from .dynamics import NeuralDynamics
from .expression import ExpressionError, parse
from .healthy import HealthyBehaviour, fit_healthy_behaviour
from .learner import Learner
from .nets import default_dynamics_net
from .neural_ode import NeuralODE
from .residual import TorchResidual
from .symbolic import SymbolicODE, train_symbolic_ode
from .training import train_dynamics, train_neural_ode, train_neural_ode_trajectory, train_residual
from .window_rul import WindowRUL

__all__ = [
    "ExpressionError",
    "HealthyBehaviour",
    "Learner",
    "NeuralDynamics",
    "NeuralODE",
    "SymbolicODE",
    "TorchResidual",
    "WindowRUL",
    "compute_dx_dt_central",
    "default_dynamics_net",
    "fit_healthy_behaviour",
    "parse",
    "prepare_dynamics_data",
    "prepare_ode_data_from_timeseries",
    "train_dynamics",
    "train_neural_ode",
    "train_neural_ode_trajectory",
    "train_residual",
    "train_symbolic_ode",
]
