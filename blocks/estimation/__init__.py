"""Estimation: Kalman filters around ODE models and the residuals they publish."""

from .ekf import EKF
from .residuals import Residual
from .ukf import UKF

__all__ = ["EKF", "UKF", "Residual"]
