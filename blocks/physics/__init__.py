"""Physics: ODE models, integrators, a model library, composition and larger simulations."""

from .battery import BatteryCircuit
from .compose import ParallelModel, SeriesModel
from .library import DoubleIntegrator, FirstOrderLag, HarmonicOscillator, MassSpringDamper, PumpLike, TankLevel
from .ode import FunctionODE, ODEModel
from .plotting import animate_profile, plot_phase_portrait, plot_state_vs_time, trajectory
from .systems import OscillatorChain, Pendulum, ThermalNetwork

__all__ = [
    "BatteryCircuit",
    "DoubleIntegrator",
    "FirstOrderLag",
    "FunctionODE",
    "HarmonicOscillator",
    "MassSpringDamper",
    "ODEModel",
    "OscillatorChain",
    "ParallelModel",
    "Pendulum",
    "PumpLike",
    "SeriesModel",
    "TankLevel",
    "ThermalNetwork",
    "animate_profile",
    "plot_phase_portrait",
    "plot_state_vs_time",
    "trajectory",
]
