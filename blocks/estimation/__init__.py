"""Estimation: Kalman filters around ODE models and the residuals they publish."""

from .ekf import EKF

__all__ = ["EKF"]
