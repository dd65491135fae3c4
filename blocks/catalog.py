"""One worked example of every library block type: the factory table.

The block reference (``docs/_ext/blocktables.py``) shows each block as its
example builds it, and the conformance tests (``tests/blocks/test_conformance.py``)
build, wire, step, save and reload every registered type from it. A block type
added to the library without an entry here fails those tests, naming this file.

Each :class:`Example` holds the constructor call shown to readers, a function
building the block, a param value that the block's ``check_params`` must refuse
when the graph is validated, and the signals of inputs whose shape the block
leaves to inference.

Examples
--------
>>> example = EXAMPLES["Saturation"]
>>> example.call, example.invalid
('Saturation(lower=-1.0, upper=1.0)', {'upper': -2.0})
>>> example.build()
Saturation(lower=-1.0, upper=1.0, name=None)
"""

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from twingraph import Block, Input, Output, Signal

from . import anomaly, discrete, estimation, fmi, health, math, ml, physics, sources


@dataclass(frozen=True)
class Example:
    """How to build one block type for docs and tests.

    Parameters
    ----------
    call : str
        The constructor call shown to readers.
    build : callable
        Returns a new, unnamed block as ``call`` describes it.
    invalid : dict
        Params that, given to the constructor on top of the example's, the
        block refuses at validate (a :class:`~twingraph.ParamError`); empty
        for a block without params.
    inputs : dict
        Signals fed to inputs whose shape the block infers (default ``(2,)``).
    holds_code : bool
        The block holds a Python function, so it cannot be saved to a file.
    saves : bool
        The example can be saved and loaded from any folder: False for a block
        naming a file by an absolute path (the FMU built at run time), whose
        saving is tested beside it (``tests/fmi``).
    extra : str or None
        The optional package the block needs to run (``"torch"``), if any.
    compiler : bool
        Building the example compiles C (a model-exchange FMU), so it needs a
        C compiler; the conformance tests skip it where there is none.
    batch_rtol : float
        How closely a batch of B assets reproduces B single runs: float64
        blocks agree to rounding; float32 networks do not, since their kernels
        change with the batch size.
    """

    call: str
    build: Callable[[], Block]
    invalid: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Signal] = field(default_factory=dict)
    holds_code: bool = False
    saves: bool = True
    extra: str | None = None
    compiler: bool = False
    batch_rtol: float = 1e-9


def _decay(x, u, t, p):
    """``ẋ = -x``: the right-hand side of the FunctionODE example."""
    return -x


def _pump_filter(cls) -> Callable[[], Block]:
    return lambda: cls(model=physics.PumpLike(), estimate=("efficiency",), r=1e-4)


def _lags(cls) -> Callable[[], Block]:
    return lambda: cls(models=(physics.FirstOrderLag(name="a"), physics.FirstOrderLag(tau=2.0, name="b")))


@cache
def _fmu_folder() -> tempfile.TemporaryDirectory:
    """The folder of the example FMU, removed when the process ends."""
    return tempfile.TemporaryDirectory(prefix="twingraph-catalog-")


@cache
def _example_fmu() -> str:
    """``MassSpringDamper.fmu`` built once per process (pythonfmu) and trusted: this code made it."""
    path = str(fmi.examples.mass_spring_damper(_fmu_folder().name))
    fmi.trust(path)
    return path


@cache
def _example_pump_fmu() -> str:
    """``pump_me.fmu`` (model exchange) compiled from C once per process and trusted: this code made it."""
    path = str(fmi.c_fmus.pump(_fmu_folder().name))
    fmi.trust(path)
    return path


@cache
def _example_cosim_pump_fmu() -> str:
    """``Pump.fmu`` (co-simulation, pythonfmu) built once per process and trusted: this code made it."""
    path = str(fmi.examples.pump(_fmu_folder().name))
    fmi.trust(path)
    return path


EXAMPLES: dict[str, Example] = {
    "Input": Example('Input("u", shape=(2,))', lambda: Input("u", shape=(2,)), {"shape": (0,)}),
    "Output": Example('Output("y")', lambda: Output("y"), {"unit": 3}),
    # sources
    "Constant": Example("Constant(value=1.5)", lambda: sources.Constant(value=1.5), {"value": "abc"}),
    "Step": Example("Step(time=0.3)", lambda: sources.Step(time=0.3), {"time": float("nan")}),
    "Sine": Example("Sine(frequency=2.0)", lambda: sources.Sine(frequency=2.0), {"frequency": "fast"}),
    "DataSource": Example(
        "DataSource(data=[0.0, 1.0, 4.0])",
        lambda: sources.DataSource(data=[0.0, 1.0, 4.0]),
        {"extrapolation": "sideways"},
    ),
    # math and discrete
    "Gain": Example("Gain(k=2.0)", lambda: math.Gain(k=2.0), {"k": "abc"}),
    "Sum": Example('Sum(signs="+-")', lambda: math.Sum(signs="+-"), {"signs": "+*"}),
    "Product": Example('Product(ops="*/")', lambda: math.Product(ops="*/"), {"ops": "*+"}),
    "Saturation": Example("Saturation(lower=-1.0, upper=1.0)", lambda: math.Saturation(), {"upper": -2.0}),
    "UnitDelay": Example("UnitDelay()", lambda: discrete.UnitDelay(), {"initial": "abc"}),
    "Integrator": Example("Integrator(k=0.5)", lambda: discrete.Integrator(k=0.5), {"k": "abc"}),
    # physics
    "FirstOrderLag": Example("FirstOrderLag(tau=0.5)", lambda: physics.FirstOrderLag(tau=0.5), {"tau": 0.0}),
    "DoubleIntegrator": Example("DoubleIntegrator()", lambda: physics.DoubleIntegrator(), {"mass": -1.0}),
    "MassSpringDamper": Example("MassSpringDamper()", lambda: physics.MassSpringDamper(), {"mass": 0.0}),
    "HarmonicOscillator": Example(
        "HarmonicOscillator()", lambda: physics.HarmonicOscillator(), {"integrator": "leapfrog"}
    ),
    "TankLevel": Example("TankLevel()", lambda: physics.TankLevel(), {"area": 0.0}),
    "PumpLike": Example("PumpLike()", lambda: physics.PumpLike(), {"efficiency": "high"}),
    "BatteryCircuit": Example("BatteryCircuit()", lambda: physics.BatteryCircuit(), {"h_a": -0.5}),
    "OscillatorChain": Example(
        "OscillatorChain(n_masses=3)", lambda: physics.OscillatorChain(n_masses=3), {"n_masses": 0}
    ),
    "ThermalNetwork": Example(
        "ThermalNetwork()", lambda: physics.ThermalNetwork(), {"capacitance": (-1.0, 1.0, 1.0)}
    ),
    "Pendulum": Example("Pendulum()", lambda: physics.Pendulum(), {"length": -1.0}),
    "FunctionODE": Example("FunctionODE(f)", lambda: physics.FunctionODE(_decay), {"substeps": 0}, holds_code=True),
    "SeriesModel": Example(
        'SeriesModel(models=(FirstOrderLag(name="a"), FirstOrderLag(tau=2.0, name="b")))',
        _lags(physics.SeriesModel),
        {"models": ()},
    ),
    "ParallelModel": Example(
        'ParallelModel(models=(FirstOrderLag(name="a"), FirstOrderLag(tau=2.0, name="b")))',
        _lags(physics.ParallelModel),
        {"models": ()},
    ),
    "FMU": Example(
        'FMU(path="MassSpringDamper.fmu")',
        lambda: fmi.FMU(path=_example_fmu()),
        {"start": {"mass": "heavy"}},
        saves=False,
        extra="fmpy",
    ),
    "FMUModel": Example(
        'FMUModel(path="pump_me.fmu")',
        lambda: fmi.FMUModel(path=_example_pump_fmu()),
        {"start": {"efficiency": "worn"}},
        saves=False,
        extra="fmpy",
        compiler=True,
    ),
    "CoSimModel": Example(
        'CoSimModel(path="Pump.fmu", states=("omega", "q"))',
        lambda: fmi.CoSimModel(path=_example_cosim_pump_fmu(), states=("omega", "q")),
        {"states": ("voltage_out",)},
        saves=False,
        extra="fmpy",
    ),
    # estimation
    "EKF": Example(
        'EKF(model=PumpLike(), estimate=("efficiency",), r=1e-4)', _pump_filter(estimation.EKF), {"q": "lots"}
    ),
    "UKF": Example(
        'UKF(model=PumpLike(), estimate=("efficiency",), r=1e-4)', _pump_filter(estimation.UKF), {"alpha": 0.0}
    ),
    "ParticleFilter": Example(
        'ParticleFilter(model=PumpLike(), estimate=("efficiency",), r=1e-4, n_particles=50)',
        lambda: estimation.ParticleFilter(model=physics.PumpLike(), estimate=("efficiency",), r=1e-4, n_particles=50),
        {"resampling": "multinomial"},
    ),
    "Residual": Example("Residual()", lambda: estimation.Residual()),
    # anomaly
    "EMA": Example("EMA(alpha=0.2)", lambda: anomaly.EMA(alpha=0.2), {"alpha": 0.0}),
    "CUSUM": Example("CUSUM(k=0.5, h=5.0)", lambda: anomaly.CUSUM(), {"h": -1.0}),
    "Threshold": Example("Threshold(upper=1.0)", lambda: anomaly.Threshold(), {"min_duration": 0}),
    "Projection": Example(
        "Projection(coefficients=(1.0, -1.0), offset=0.5)",
        lambda: anomaly.Projection(coefficients=(1.0, -1.0), offset=0.5),
        {"scale": 0.0},
    ),
    "SubspaceDistance": Example(
        "SubspaceDistance(threshold=3.0, persistence=2)",
        lambda: anomaly.SubspaceDistance(threshold=3.0, persistence=2),
        {"persistence": 0},
        inputs={"u": Signal(shape=(2,))},
    ),
    # health
    "ParameterHealth": Example(
        'ParameterHealth(param="efficiency", nominal=1.0, failed=0.6)',
        lambda: health.ParameterHealth(),
        {"failed": 1.0},
        inputs={"params": Signal(shape=(1,))},
    ),
    "RUL": Example("RUL(window=20, min_samples=5)", lambda: health.RUL(window=20, min_samples=5), {"window": 2}),
    "ResidualHealth": Example("ResidualHealth(window=20)", lambda: health.ResidualHealth(window=20), {"window": 0}),
    "ExponentialDegradation": Example(
        "ExponentialDegradation(loading=(1.0, -0.5), intercept=(0.0, 0.0))",
        lambda: health.ExponentialDegradation(loading=(1.0, -0.5), intercept=(0.0, 0.0)),
        {"offset": 0.0},
    ),
    "FusedRUL": Example(
        "FusedRUL(coef=(0.0, 0.5, 0.5), edges=(50.0,), offsets=((-10.0, 5.0), (-20.0, 15.0)))",
        lambda: health.FusedRUL(coef=(0.0, 0.5, 0.5), edges=(50.0,), offsets=((-10.0, 5.0), (-20.0, 15.0))),
        {"levels": (0.5,)},
    ),
    "MonteCarloRUL": Example(
        'MonteCarloRUL(model=PumpLike(), estimate=("efficiency",), variable="y[0]", threshold=0.5, horizon=2.0, '
        "n_samples=20, period=3, future_input=12.0)",
        lambda: health.MonteCarloRUL(
            model=physics.PumpLike(), estimate=("efficiency",), variable="y[0]", threshold=0.5, horizon=2.0,
            n_samples=20, period=3, future_input=12.0,
        ),
        {"n_samples": 0},
    ),
    # ml (torch-backed blocks need the ML extra)
    "SymbolicODE": Example(
        'SymbolicODE(states=("x", "v"), formulas=("v", "-x"))', lambda: ml.SymbolicODE(), {"formulas": ("v",)}
    ),
    "TorchResidual": Example(
        "TorchResidual(model=MassSpringDamper(), hidden=(8,))",
        lambda: ml.TorchResidual(model=physics.MassSpringDamper(), hidden=(8,)),
        {"target": "acceleration"},
        extra="torch",
    ),
    "NeuralODE": Example(
        "NeuralODE(hidden=(8,))", lambda: ml.NeuralODE(hidden=(8,)), {"activation": "sigmoidal"}, extra="torch"
    ),
    "NeuralDynamics": Example(
        "NeuralDynamics(hidden=(8,))", lambda: ml.NeuralDynamics(hidden=(8,)), {"n_states": 0}, extra="torch"
    ),
    "HealthyBehaviour": Example(
        "HealthyBehaviour()", lambda: ml.HealthyBehaviour(), inputs={"sensors": Signal(shape=(3,))}
    ),
    "WindowRUL": Example(
        "WindowRUL(window=5, channels=(4,), hidden=8)",
        lambda: ml.WindowRUL(window=5, channels=(4,), hidden=8),
        {"window": 0},
        inputs={"u": Signal(shape=(3,))},
        extra="torch",
        batch_rtol=1e-5,
    ),
}


def example_block(type_name: str) -> Block:
    """A new block of the registered type ``type_name``, built as :data:`EXAMPLES` says."""
    if type_name not in EXAMPLES:
        raise KeyError(f"No example of block type '{type_name}': add one to EXAMPLES in {__file__}.")
    return EXAMPLES[type_name].build()
