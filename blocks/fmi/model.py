"""A model-exchange FMU as an ODE model, so that the EKF, UKF and particle filter run on its physics.

:class:`FMUModel` reads the FMU's interface from its ``modelDescription.xml``
(states, inputs, outputs, parameters) and evaluates ``ẋ = f(x, u, t, p)`` and
``y = h(x, u, p)`` through the FMU's own code (FMI 2.0 model exchange, run
with fmpy), one FMU instance per row of the batch. Everything else, the
integrator included, is :class:`~blocks.physics.ode.ODEModel`'s.
:class:`FMUBackedModel` holds what it shares with
:class:`~blocks.fmi.CoSimModel` (a co-simulation FMU as a model).
"""

import copy
import ctypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from twingraph import SimulationError
from twingraph._optional import require
from twingraph.errors import invalid_param, quote

from ..physics.ode import ODEModel, as_numbers, common_unit
from .block import FMUFile, Unpacked
from .description import Description, DescriptionError, Variable, read_description

_DOUBLE_P = ctypes.POINTER(ctypes.c_double)


@dataclass(frozen=True)
class ModelInterface:
    """What :class:`FMUModel` uses of a model description: value references, names, units, start values."""

    guid: str
    identifier: str
    states: tuple[str, ...]
    state_refs: tuple[int, ...]
    state_units: tuple[str | None, ...]
    state_starts: tuple[float | None, ...]
    inputs: tuple[str, ...]
    input_units: tuple[str | None, ...]
    input_refs: tuple[int, ...]
    outputs: tuple[str, ...]
    output_units: tuple[str | None, ...]
    output_refs: tuple[int, ...]
    feedthrough: bool
    parameters: tuple[str, ...]
    parameter_refs: tuple[int, ...]
    parameter_starts: tuple[float, ...]
    fixed: tuple[bool, ...]


class FMUBackedModel(FMUFile, ODEModel, abstract=True):
    """Base class of the ODE models whose physics an FMU computes: :class:`FMUModel`, :class:`~blocks.fmi.CoSimModel`.

    It reads the interface from the model description once per file version
    (:meth:`_read_interface`, running nothing) and turns it into the
    :class:`~blocks.physics.ode.ODEModel` attributes: ``states``, ``u`` from
    the selected Real inputs, ``y`` from the selected Real outputs, the Real
    parameters (fixed or tunable, with a start value) as ``parameters``,
    overridden by ``start``. It creates the object that runs the FMU
    (``evaluator``, from the trusted file, see :class:`~blocks.fmi.block.Unpacked`)
    on first use and again when a param it depends on changes, never copies
    it with the model, and lets it free its instances when collected.

    A subclass sets ``selections`` (the params naming FMU variables, part of
    the cache keys) and defines :meth:`_read_interface` (usually with
    :meth:`_interface_of`) and :meth:`_evaluator`.
    """

    selections: tuple[str, ...] = ("inputs", "outputs")

    def _interface(self) -> ModelInterface:
        """The interface of the FMU at ``path`` with the selected inputs and outputs (cached per file version)."""
        path = self.file()
        try:
            stat = path.stat()
        except OSError as exc:
            raise invalid_param(self, "path", f"an existing .fmu file ({exc.strerror})", self.path) from None
        key = (str(path), stat.st_mtime_ns, stat.st_size, *self._selection_key())
        cached = self.__dict__.get("_cached_interface")
        if cached is None or cached[0] != key:
            cached = key, self._read_interface(path)
            self._cached_interface = cached
        return cached[1]

    def _read_interface(self, path: Path) -> ModelInterface:
        """The interface of the FMU file ``path``, from its model description (ParamError naming the problem)."""
        raise NotImplementedError

    def _evaluator(self, key: tuple, interface: ModelInterface) -> Any:
        """The object that runs the FMU for this model (its instances made from the trusted file)."""
        raise NotImplementedError

    def _description(self, path: Path, interface: str, expected: str, fmi3: bool) -> Description:
        """The model description of ``path``; ParamError saying ``expected`` unless it is FMI 2.0 (or 3.0 when
        ``fmi3``) and has ``interface`` (``"model_exchange"`` or ``"co_simulation"``)."""
        try:
            description = read_description(path)
        except DescriptionError as exc:
            raise invalid_param(self, "path", f"{expected} ({exc})", self.path) from None
        if description.fmi_version != "2.0" and not fmi3:
            version = description.fmi_version
            raise invalid_param(self, "path", f"{expected} in FMI 2.0 (it is an FMI {version} FMU)", self.path)
        if getattr(description, interface) is None:
            other = "co-simulation" if interface == "model_exchange" else "model exchange"
            raise invalid_param(self, "path", f"{expected} (this one is {other} only)", self.path)
        return description

    def _interface_of(self, description: Description, identifier: str, states: list[Variable]) -> ModelInterface:
        """The interface of ``description`` with ``states``, the selected Real inputs and outputs, Real parameters."""
        variables = description.variables
        kind = "Real" if description.fmi_version == "2.0" else "Float64"
        real = [v for v in variables.values() if v.type == kind and not v.array]
        inputs = self._selected("inputs", [v.name for v in real if v.causality == "input"])
        outputs = self._selected("outputs", [v.name for v in real if v.causality == "output"])
        parameters = [v for v in real if v.causality == "parameter" and v.variability in ("fixed", "tunable")
                      and v.start is not None and v not in states]
        return ModelInterface(
            guid=description.guid,
            identifier=identifier,
            states=tuple(v.name for v in states),
            state_refs=tuple(v.value_reference for v in states),
            state_units=tuple(v.unit for v in states),
            state_starts=tuple(v.start for v in states),
            inputs=tuple(inputs),
            input_units=tuple(variables[name].unit for name in inputs),
            input_refs=tuple(variables[name].value_reference for name in inputs),
            outputs=tuple(outputs),
            output_units=tuple(variables[name].unit for name in outputs),
            output_refs=tuple(variables[name].value_reference for name in outputs),
            feedthrough=bool(inputs and outputs),  # the description's output dependencies are not read
            parameters=tuple(v.name for v in parameters),
            parameter_refs=tuple(v.value_reference for v in parameters),
            parameter_starts=tuple(float(v.start) for v in parameters),
            fixed=tuple(v.variability == "fixed" for v in parameters),
        )

    def _selected(self, param: str, available: list[str]) -> list[str]:
        """The names ``param`` (``inputs`` or ``outputs``) selects among ``available``; all when it is None."""
        value = getattr(self, param)
        if value is None:
            return available
        if not (isinstance(value, (tuple, list)) and all(isinstance(n, str) and n in available for n in value)
                and len(set(value)) == len(value)):
            kind = param[:-1]
            raise invalid_param(self, param, f"None or distinct names of Real {kind}s of the FMU, from {available}",
                                value)
        return list(value)

    @property
    def states(self) -> tuple[str, ...]:
        return self._interface().states

    @property
    def state_units(self) -> tuple[str | None, ...]:
        return self._interface().state_units

    @property
    def n_inputs(self) -> int:
        return len(self._interface().inputs)

    @property
    def input_unit(self) -> str | None:
        return common_unit(self._interface().input_units)

    @property
    def n_outputs(self) -> int | None:
        return len(self._interface().outputs) or None

    @property
    def output_unit(self) -> str | None:
        return common_unit(self._interface().output_units)

    @property
    def parameters(self) -> tuple[str, ...]:
        return self._interface().parameters

    @property
    def direct_feedthrough(self) -> bool:
        return self._interface().feedthrough

    def parameter_values(self) -> dict[str, Any]:
        interface = self._interface()
        values = dict(zip(interface.parameters, interface.parameter_starts, strict=True))
        values.update(self.start or {})
        return values

    def initial_state(self, batch: int) -> np.ndarray:
        """The state at ``t = 0`` for ``batch`` assets: ``x0``, or the states' start values when it is None."""
        if self.x0 is not None:
            return super().initial_state(batch)
        interface = self._interface()
        missing = [name for name, start in zip(interface.states, interface.state_starts) if start is None]
        if missing:
            raise invalid_param(self, "x0", f"an initial state: the FMU gives no start value for {missing}", None)
        return np.tile(np.asarray(interface.state_starts, dtype=float), (batch, 1))

    def check_params(self) -> None:
        """Raise ParamError naming the first invalid param: ``path``, the selections, ``start``, then the
        parameter values and ``x0`` as for :class:`~blocks.physics.ode.ODEModel`."""
        interface = self._interface()
        start = self.start
        if start is not None:
            if not isinstance(start, dict) or not all(name in interface.parameters for name in start):
                expected = f"None or a dict from parameter name to value, names from {list(interface.parameters)}"
                raise invalid_param(self, "start", expected, start)
            for name, value in start.items():
                array = as_numbers(value)
                if array is None or array.ndim > 1 or array.size == 0 or not np.all(np.isfinite(array)):
                    raise invalid_param(self, "start", f"finite numbers, or one per asset, for {quote(name)}", start)
        super().check_params()

    def _selection_key(self) -> tuple:
        return tuple(_frozen(getattr(self, param)) for param in self.selections)

    def _evaluated(self) -> Any:
        """The ``evaluator`` that runs this model's FMU, created on first use (and when its params change)."""
        instances = self.__dict__.get("_instances")
        key = (self.file(), *self._selection_key())
        if instances is None or instances.key != key:
            instances = self._instances = self._evaluator(key, self._interface())
        return instances

    def __deepcopy__(self, memo):
        """A copy that shares no FMU instances (it creates its own on first use)."""
        clone = type(self).__new__(type(self))
        memo[id(self)] = clone
        for key, value in vars(self).items():
            if key != "_instances":
                setattr(clone, key, copy.deepcopy(value, memo))
        return clone

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k != "_instances"}



class FMUModel(FMUBackedModel):
    """An FMI 2.0 model-exchange FMU as an :class:`~blocks.physics.ode.ODEModel`, parameters estimable.

    The states are the FMU's continuous states, ``u`` its Real inputs and
    ``y`` its Real outputs (each in the order of the model description, or
    as selected by ``inputs`` and ``outputs``); the parameters are its Real
    parameters (causality ``parameter``, variability ``fixed`` or
    ``tunable``), so an estimator can augment and estimate them like a native
    model's: ``EKF(model=FMUModel("pump.fmu"), estimate=("efficiency",))``.
    The FMU computes the right-hand side; the integration over each tick is
    the model's ``integrator`` (``"rk4"`` by default), so the FMU of a model
    gives the same numbers as the native model with the same integrator.

    Validating a graph reads the model description only; the FMU's code runs
    when the model is first evaluated (a simulation, an estimator's step).

    Parameters
    ----------
    path : str
        The ``.fmu`` file (FMI 2.0, with model exchange); relative to the
        working directory, or to the graph file for a loaded graph.
    inputs : tuple of str or None
        The Real inputs that make ``u``, in order; ``None``: all of them.
    outputs : tuple of str or None
        The Real outputs that make ``y``, in order; ``None``: all of them
        (``y = x`` when the FMU has none).
    start : dict of str to float or sequence, or None
        Values of FMU parameters, by name: a number or one per asset. The
        others keep the start value of the model description.
    x0 : float, array_like or None
        Initial state as for :class:`~blocks.physics.ode.ODEModel`; ``None``
        takes the states' start values from the model description.
    **kwargs
        ``integrator``, ``substeps``, ``method``, ``rtol``, ``atol``, ``name``
        as for :class:`~blocks.physics.ode.ODEModel`.

    Ports
    -----
    u (in) : the selected inputs, shape ``(n_inputs,)``; absent without inputs.
    y (out) : the selected outputs, shape ``(n_outputs,)``.
    x (out) : the continuous states, shape ``(n_x,)``.

    Notes
    -----
    Each evaluation of ``f`` or ``h`` for a batch of ``R`` rows loops over
    ``R`` FMU instances, created the first time that many rows are asked for
    and kept in Continuous-Time Mode; per row it calls ``fmi2SetTime``,
    ``fmi2SetContinuousStates``, ``fmi2SetReal`` (inputs) and
    ``fmi2GetDerivatives`` (``fmi2GetReal`` of the outputs for ``h``). The
    cost is linear in rows and Python-bound, a few microseconds per call: an
    EKF with ``n`` augmented states evaluates ``(1 + 2n) B`` rows per RK4
    stage, a particle filter ``N B``. A parameter that differs from what an
    instance holds is set as FMI 2.0 asks: a tunable one in Event Mode
    (``fmi2EnterEventMode``, set, event iteration, back to Continuous-Time
    Mode), a fixed one by ``fmi2Reset`` and a new initialisation. The FMU is
    evaluated as a pure function of ``(x, u, t, p)``: state and time events
    (``numberOfEventIndicators > 0``) are not located, and
    ``fmi2CompletedIntegratorStep`` is not called, so use it for FMUs whose
    right-hand side is smooth between ticks. The instances are not copied with
    the block (a copy creates its own) and are freed with it.

    Examples
    --------
    See ``docs/guides/fmi.md``: an EKF estimating the efficiency of a pump
    from its model-exchange FMU.
    """

    def __init__(self, path: str | None = None, inputs=None, outputs=None, start=None, x0=None, **kwargs) -> None:
        super().__init__(x0, **kwargs)
        self.path = path
        self.inputs = inputs
        self.outputs = outputs
        self.start = start
        self._folder: Path | None = None

    def _read_interface(self, path: Path) -> ModelInterface:
        description = self._description(path, "model_exchange", "an FMU that supports model exchange", False)
        states = [description.variables[name] for name in description.states]
        return self._interface_of(description, description.model_exchange.model_identifier, states)

    def check_params(self) -> None:
        if not self._interface().states:
            raise invalid_param(self, "path", "an FMU with continuous states (this one has none)", self.path)
        super().check_params()

    def _evaluator(self, key: tuple, interface: ModelInterface) -> "Instances":
        return Instances(self, key, interface)

    def derivative(self, x, u, t, p):
        return self._evaluated().derivatives(x, u, t, p)

    def observe(self, x, u, p):
        return self._evaluated().outputs(x, u, p)


def _frozen(value: Any) -> Any:
    """``value`` as a hashable cache key (lists as tuples)."""
    return tuple(value) if isinstance(value, list) else value


class Instances:
    """The FMU instances of one :class:`FMUModel`, one per row, each in Continuous-Time Mode.

    Instance ``i`` evaluates row ``i`` of every call; it holds the parameter
    values ``values_[i]`` and receives new ones only when they change.
    """

    def __init__(self, owner: FMUModel, key: tuple, interface: ModelInterface) -> None:
        self.fmi2 = require("fmpy.fmi2", "fmi", "running FMUs")
        self.owner = f"FMUModel '{owner.name}'"
        self.name = owner.name or "fmu"
        self.key = key
        self.interface = interface
        self.unpacked = Unpacked(self.owner, key[0])
        self.fmus = self.unpacked.instances
        self.values = np.zeros((0, len(interface.parameters)))
        self._fixed = np.asarray(interface.fixed, dtype=bool)
        self._param_refs = np.asarray(interface.parameter_refs, dtype=np.uint32)
        self._input_refs = (ctypes.c_uint * len(interface.input_refs))(*interface.input_refs)
        self._output_refs = (ctypes.c_uint * len(interface.output_refs))(*interface.output_refs)

    def derivatives(self, x: np.ndarray, u: np.ndarray, t: float, p: dict[str, np.ndarray]) -> np.ndarray:
        """``ẋ`` for every row: ``x (R, n_x)``, ``u (R, n_u)``, ``p`` of ``(R,)`` arrays."""
        values = self._values(p, len(x))
        x, u = np.ascontiguousarray(x, dtype=float), np.ascontiguousarray(u, dtype=float)
        dx = np.empty_like(x)
        (n_x, x_at, dx_at), (n_u, u_at) = _rows(x, dx), _rows(u)
        self._prepare(values)
        try:
            for i, fmu in enumerate(self.fmus[: len(x)]):
                c = fmu.component
                fmu.fmi2SetTime(c, t)
                fmu.fmi2SetContinuousStates(c, x_at(i), n_x)
                if n_u:
                    fmu.fmi2SetReal(c, self._input_refs, n_u, u_at(i))
                fmu.fmi2GetDerivatives(c, dx_at(i), n_x)
        except Exception as exc:
            raise self._failed(exc, "derivatives", t) from exc
        return dx

    def outputs(self, x: np.ndarray, u: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
        """``y`` for every row (``x`` when the model has no outputs), at the time last given to the instances."""
        if not self._output_refs:
            return x
        values = self._values(p, len(x))
        x, u = np.ascontiguousarray(x, dtype=float), np.ascontiguousarray(u, dtype=float)
        n_y = len(self._output_refs)
        y = np.empty((len(x), n_y))
        (n_x, x_at, y_at), (n_u, u_at) = _rows(x, y), _rows(u)
        self._prepare(values)
        try:
            for i, fmu in enumerate(self.fmus[: len(x)]):
                c = fmu.component
                fmu.fmi2SetContinuousStates(c, x_at(i), n_x)
                if n_u:
                    fmu.fmi2SetReal(c, self._input_refs, n_u, u_at(i))
                fmu.fmi2GetReal(c, self._output_refs, n_y, y_at(i))
        except Exception as exc:
            raise self._failed(exc, "outputs", None) from exc
        return y

    def _values(self, p: dict[str, np.ndarray], rows: int) -> np.ndarray:
        """The parameters ``p`` of ``rows`` rows as one ``(rows, n_p)`` array, in the order of the interface."""
        values = np.empty((rows, len(self.interface.parameters)))
        for j, name in enumerate(self.interface.parameters):
            values[:, j] = p[name]
        return values

    def _failed(self, exc: Exception, what: str, t: float | None) -> SimulationError:
        when = "" if t is None else f" at t = {t:g} s"
        return SimulationError(f"{self.owner}: the FMU failed to compute its {what}{when}: {exc}")

    def _prepare(self, values: np.ndarray) -> None:
        """One instance per row of ``values (R, n_p)``, each holding its row's parameter values."""
        rows = min(len(values), len(self.fmus))
        for i in np.flatnonzero((self.values[:rows] != values[:rows]).any(axis=1)):
            self._set_parameters(i, values[i])
        try:
            while len(self.fmus) < len(values):
                i = len(self.fmus)
                fmu = self.fmi2.FMU2Model(
                    guid=self.interface.guid,
                    modelIdentifier=self.interface.identifier,
                    unzipDirectory=self.unpacked.folder,
                    instanceName=f"{self.name}[{i}]",
                )
                fmu.instantiate()
                self.fmus.append(fmu)
                self._initialize(fmu, values[i])
                self.values = np.concatenate([self.values, values[i : i + 1]])
        except Exception as exc:
            raise SimulationError(f"{self.owner}: cannot create FMU instance {len(self.fmus)}: {exc}") from exc

    def _initialize(self, fmu, values: np.ndarray) -> None:
        """Initialise ``fmu`` (freshly instantiated or reset) with parameter ``values``; end in Continuous-Time Mode."""
        fmu.setupExperiment(startTime=0.0)
        if len(values):
            fmu.setReal(self._param_refs, values)
        fmu.enterInitializationMode()
        fmu.exitInitializationMode()
        self._event_iteration(fmu)
        fmu.enterContinuousTimeMode()

    def _set_parameters(self, i: int, values: np.ndarray) -> None:
        """Give instance ``i`` the parameter ``values`` where they differ from those it holds."""
        fmu, changed = self.fmus[i], self.values[i] != values
        try:
            if changed[self._fixed].any():  # a fixed parameter: only before initialisation
                fmu.reset()
                self._initialize(fmu, values)
            else:  # tunable ones change at an event
                fmu.enterEventMode()
                fmu.setReal(self._param_refs[changed], values[changed])
                self._event_iteration(fmu)
                fmu.enterContinuousTimeMode()
        except Exception as exc:
            raise SimulationError(f"{self.owner}: the FMU refused new parameter values in instance {i}: {exc}") from exc
        self.values[i] = values

    def _event_iteration(self, fmu) -> None:
        """``fmi2NewDiscreteStates`` until the FMU needs no more; SimulationError when it asks to terminate."""
        while True:
            needed, terminate, *_ = fmu.newDiscreteStates()
            if terminate:
                raise SimulationError(f"{self.owner}: the FMU asked to terminate during its event iteration.")
            if not needed:
                return


def _rows(*arrays: np.ndarray):
    """The row length of the first of the C-contiguous float arrays, then for each a function: row ``i`` as a
    ctypes pointer."""

    def pointers(a: np.ndarray):
        base, stride = a.ctypes.data, a.strides[0]
        return lambda i: ctypes.cast(base + i * stride, _DOUBLE_P)

    return (arrays[0].shape[1], *map(pointers, arrays))
