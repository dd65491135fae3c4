"""A co-simulation FMU as a model for the estimators: one ``doStep`` from a state set on a restored FMU state.

:class:`CoSimModel` gives the EKF, UKF and particle filter the physics of a
co-simulation FMU (FMI 2.0 or 3.0, run with fmpy), parameters estimable like
a native model's. The FMU integrates with its own solver, so the model is a
discrete transition, ``x_{k+1} = F(x_k, u_k, t_k, p)`` over one tick, not an
``ẋ = f``: it has no :meth:`~blocks.physics.ode.ODEModel.derivative`.
"""

from pathlib import Path
from typing import Any

import numpy as np

from twingraph import SimulationError
from twingraph._optional import require
from twingraph.errors import invalid_param, quote

from .block import STATE_CALLS, Unpacked, settable_before_initialization
from .model import FMUBackedModel, ModelInterface


class CoSimModel(FMUBackedModel):
    """A co-simulation FMU (FMI 2.0 or 3.0) as a model an estimator runs on: ``x⁺ = doStep`` from ``x``.

    ``states`` names the FMU variables that hold its state; ``u`` is its Real
    inputs and ``y`` its Real outputs (FMI 3.0: Float64), in the order of the
    model description or as selected; the parameters are its Real parameters
    (fixed or tunable, with a start value), so an estimator augments and
    estimates them like a native model's:
    ``EKF(model=CoSimModel("Pump.fmu", states=("omega", "q")), estimate=("efficiency",))``.

    Parameters
    ----------
    path : str
        The ``.fmu`` file (co-simulation, declaring ``canGetAndSetFMUstate``);
        relative to the working directory, or to the graph file for a loaded graph.
    states : tuple of str or None
        The Real variables that make the state ``x``, in order; ``None``: the
        continuous states the model description declares (its derivatives).
        FMI must let each be set before initialisation: a variable that is not
        constant and has ``initial="exact"`` or ``"approx"`` (or is a
        parameter or an input).
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
    name : str or None
        Block name.

    Ports
    -----
    u (in) : the selected inputs, shape ``(n_inputs,)``; absent without inputs.
    y (out) : the selected outputs, shape ``(n_outputs,)``.
    x (out) : the states, shape ``(n_x,)``.

    Notes
    -----
    One FMU instance is made on first use and its FMU state is taken right
    after instantiation (``fmi2GetFMUstate``, ``fmi3GetFMUState``): the base.
    Each row ``i`` of a call (an asset, a sigma point, a particle, a
    finite-difference copy) then runs from that base::

        fmi2SetFMUstate(base)                  back to Instantiated, no trace of the previous row
        fmi2SetupExperiment(start = t)         (FMI 3.0: the start time comes with the next call)
        set x_i and p_i                         states and parameters, before initialisation
        fmi2EnterInitializationMode
        set u_i                                 inputs
        fmi2ExitInitializationMode
        doStep(t, dt)                           advance:  x⁺_i = the states read after the step
                                                observe:  y_i = the outputs read instead of stepping

    So a state is imposed the way FMI allows for any co-simulation FMU: as
    the start value of a variable set before initialisation. FMI 2.0 and 3.0
    let a variable be set in Instantiated state when it is not constant and
    has ``initial="exact"`` or ``"approx"`` (parameters and inputs aside);
    after initialisation (Step Mode) only inputs and tunable parameters may
    be set, which is why the state is not set on a stepped instance. A C FMU
    that keeps the FMI state machine refuses other variables; pythonfmu sets
    any registered variable that has a setter whatever its causality, so
    declare the state variables of a pythonfmu slave with
    ``initial=Fmi2Initial.exact`` (and compute outputs from the states when
    they are read, or in ``exit_initialization_mode``) and leave
    ``exit_initialization_mode`` without overwriting them. :meth:`check_params`
    refuses a ``states`` variable FMI does not let be set, and an FMU without
    ``canGetAndSetFMUstate``, naming the block and the variable.

    The estimators need only ``advance`` and ``observe`` of it: the EKF takes
    its Jacobian ``F`` by central differences of ``advance`` (this model has no
    analytic Jacobian), the UKF and the particle filter propagate their points
    through ``advance``. With an FMU that integrates like a native model, the
    estimates are the native model's (see ``docs/guides/fmi.md``). ``observe``
    has no time argument: outputs are read at ``t = 0``, for FMUs whose outputs
    do not depend on time directly. Each row costs about ten FMI calls and
    one ``doStep``, Python-bound for a pythonfmu FMU (tens of microseconds); the
    instance is freed with the model and not copied with it.

    Examples
    --------
    See ``docs/guides/fmi.md``: an EKF estimating the efficiency of a pump
    from its co-simulation FMU (:func:`blocks.fmi.examples.pump`).
    """

    selections = ("states", "inputs", "outputs")

    def __init__(self, path: str | None = None, states=None, inputs=None, outputs=None, start=None, x0=None, *,
                 name: str | None = None) -> None:
        super().__init__(x0, name=name)
        self.path = path
        self.states = states
        self.inputs = inputs
        self.outputs = outputs
        self.start = start
        self._folder: Path | None = None

    @property
    def states(self) -> tuple[str, ...]:
        return self._interface().states

    @states.setter
    def states(self, value) -> None:  # the param as given; the property reads the names it resolves to
        self.__dict__["states"] = value

    def get_params(self) -> dict[str, Any]:
        params = super().get_params()
        params["states"] = self.__dict__["states"]  # the param as given, not the names it resolves to
        return params

    def _selection_key(self) -> tuple:
        return tuple(_frozen(self.__dict__[p] if p == "states" else getattr(self, p)) for p in self.selections)

    def _read_interface(self, path: Path) -> ModelInterface:
        description = self._description(path, "co_simulation", "a co-simulation FMU", True)
        interface = description.co_simulation
        if not interface.can_get_and_set_state:
            flag = "canGetAndSetFMUstate" if description.fmi_version == "2.0" else "canGetAndSetFMUState"
            raise invalid_param(self, "path", f"an FMU that declares {flag} (CoSimModel restores an FMU state "
                                "before each step; this one cannot)", self.path)
        variables = description.variables
        kind = "Real" if description.fmi_version == "2.0" else "Float64"
        names = self.__dict__["states"]
        if names is None:
            names = description.states
            if not names:
                raise invalid_param(self, "states", f"the names of the {kind} variables that hold the FMU's state "
                                    "(its description declares no continuous states)", None)
        elif not (isinstance(names, (tuple, list)) and names and all(isinstance(n, str) for n in names)
                  and len(set(names)) == len(names)):
            raise invalid_param(self, "states", f"None or distinct names of {kind} variables of the FMU", names)
        for n in names:
            variable = variables.get(n)
            if variable is None or variable.type != kind or variable.array:
                raise invalid_param(self, "states", f"names of scalar {kind} variables of the FMU ({quote(n)} is "
                                    "not one)", names)
            if not settable_before_initialization(variable):
                raise invalid_param(
                    self, "states", f"names of variables that FMI lets be set before initialisation: not constant, "
                    f"with initial exact or approx ({quote(n)} is {variable.causality}, {variable.variability}, "
                    f"initial {variable.initial or 'not given'})", names,
                )
        return self._interface_of(description, interface.model_identifier, [variables[n] for n in names])

    def _evaluator(self, key: tuple, interface: ModelInterface) -> "Transitions":
        return Transitions(self, key, interface)

    def derivative(self, x, u, t, p):
        raise NotImplementedError(
            f"CoSimModel '{self.name}' has no derivative: its FMU integrates itself, so the model is the transition "
            "over a tick (advance)."
        )

    def advance(self, x, u, t, dt, p):
        return self._evaluated().advance(x, u, t, dt, p)

    def observe(self, x, u, p):
        return self._evaluated().outputs(x, u, p)

    def _check_shapes(self, u: np.ndarray) -> None:
        """Nothing to check: the FMU's arrays have the sizes of the interface."""


def _frozen(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


class Transitions:
    """One instance of a co-simulation FMU and its base FMU state: each row of a call starts from that state.

    ``advance`` and ``outputs`` are pure functions of their arguments, whatever
    rows came before: every row restores the base, sets its states, parameters
    and inputs, initialises, and steps (or reads the outputs).
    """

    def __init__(self, owner: CoSimModel, key: tuple, interface: ModelInterface) -> None:
        self.owner = f"CoSimModel '{owner.name}'"
        self.key = key
        self.interface = interface
        self.unpacked = Unpacked(self.owner, key[0])
        md = self.unpacked.description
        self.fmi3 = md.fmi_version != "2.0"
        fmpy_fmi = require("fmpy.fmi3" if self.fmi3 else "fmpy.fmi2", "fmi", "running FMUs")
        kind = "Float64" if self.fmi3 else "Real"
        get_state, set_state = STATE_CALLS["3" if self.fmi3 else "2"][:2]
        self.slave = (fmpy_fmi.FMU3Slave if self.fmi3 else fmpy_fmi.FMU2Slave)(
            guid=md.guid,
            unzipDirectory=self.unpacked.folder,
            modelIdentifier=md.co_simulation.model_identifier,
            instanceName=owner.name or "fmu",
        )
        try:
            self.slave.instantiate()
            self.unpacked.instances.append(self.slave)
            self.base = getattr(self.slave, get_state)()
        except Exception as exc:
            raise SimulationError(f"{self.owner}: cannot instantiate the FMU and get its state: {exc}") from exc
        self._set_state = getattr(self.slave, set_state)
        self._get, self._set = getattr(self.slave, f"get{kind}"), getattr(self.slave, f"set{kind}")
        self._start_refs = [*interface.state_refs, *interface.parameter_refs]
        self._input_refs, self._state_refs = list(interface.input_refs), list(interface.state_refs)
        self._output_refs = list(interface.output_refs)

    def advance(self, x: np.ndarray, u: np.ndarray, t: float, dt: float, p: dict[str, np.ndarray]) -> np.ndarray:
        """``x⁺ (R, n_x)``: one ``doStep(t, dt)`` for each row of ``x (R, n_x)``, ``u (R, n_u)``, ``p``."""
        starts, inputs = self._rows(x, u, p)
        x_next = np.empty(np.shape(x))
        for i, (start, held) in enumerate(zip(starts, inputs)):
            try:
                self._initialise(start, held, t)
                stepped = self.slave.doStep(t, dt, False)  # False: an earlier FMU state will be set again
                if self.fmi3 and stepped[1]:
                    raise SimulationError("the FMU asked to end the simulation")
                x_next[i] = self._get(self._state_refs)
            except Exception as exc:
                raise SimulationError(f"{self.owner}: the FMU failed to step row {i} at t = {t:g} s: {exc}") from exc
        return x_next

    def outputs(self, x: np.ndarray, u: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
        """``y (R, n_y)``: the outputs once each row is initialised (``x`` when the FMU has no outputs)."""
        if not self._output_refs:
            return x
        starts, inputs = self._rows(x, u, p)
        y = np.empty((len(x), len(self._output_refs)))
        for i, (start, held) in enumerate(zip(starts, inputs)):
            try:
                self._initialise(start, held, 0.0)
                y[i] = self._get(self._output_refs)
            except Exception as exc:
                raise SimulationError(f"{self.owner}: the FMU failed to compute its outputs (row {i}): {exc}") from exc
        return y

    def _rows(self, x: np.ndarray, u: np.ndarray, p: dict[str, np.ndarray]) -> tuple[list, list]:
        """Per row, the start values (states, then parameters) and the inputs, as lists of floats."""
        values = [np.broadcast_to(p[name], (len(x),)) for name in self.interface.parameters]
        starts = np.column_stack([np.asarray(x, dtype=float), *values])
        return starts.tolist(), np.asarray(u, dtype=float).tolist()

    def _initialise(self, start: list, inputs: list, t: float) -> None:
        """Restore the base state, set the start values, initialise at ``t`` with ``inputs``."""
        slave = self.slave
        self._set_state(self.base)
        if not self.fmi3:
            slave.setupExperiment(startTime=t)
        self._set(self._start_refs, start)
        if self.fmi3:
            slave.enterInitializationMode(startTime=t)
        else:
            slave.enterInitializationMode()
        if self._input_refs:
            self._set(self._input_refs, inputs)
        slave.exitInitializationMode()
