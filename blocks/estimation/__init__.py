"""Estimation: Kalman and particle filters around ODE models and the residuals they publish."""

from .ekf import EKF
from .particle import ParticleFilter
from .residuals import Residual
from .ukf import UKF

__all__ = ["EKF", "UKF", "ParticleFilter", "Residual"]
