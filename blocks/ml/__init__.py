"""Machine learning blocks: neural ODEs, learned discrete dynamics, residual corrections, windowed RUL.

Importing this package registers its block types and does not need torch; torch
is imported when a network is built (``pip install 'twingraph[ml]'``).
"""

from .data import compute_dx_dt_central, prepare_dynamics_data, prepare_ode_data_from_timeseries
from .dynamics import NeuralDynamics
from .nets import default_dynamics_net
from .neural_ode import NeuralODE
from .residual import TorchResidual
from .training import train_dynamics, train_neural_ode, train_neural_ode_trajectory, train_residual
from .window_rul import WindowRUL

__all__ = [
    "NeuralDynamics",
    "NeuralODE",
    "TorchResidual",
    "WindowRUL",
    "compute_dx_dt_central",
    "default_dynamics_net",
    "prepare_dynamics_data",
    "prepare_ode_data_from_timeseries",
    "train_dynamics",
    "train_neural_ode",
    "train_neural_ode_trajectory",
    "train_residual",
]
