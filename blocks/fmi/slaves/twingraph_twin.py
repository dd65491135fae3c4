"""A twingraph graph as a pythonfmu co-simulation slave, run by :class:`twingraph.Simulator`.

:func:`blocks.fmi.export.export_fmu` packs this script with a graph file
(``twin.json`` and its ``.npz`` sidecar) into an FMU's ``resources/``. The
graph's top-level ``Input`` blocks are the FMU's inputs and its ``Output``
blocks its outputs, one scalar variable per element, named like history
columns (``u``, ``u[0]``, ``u[0,1]``), with their units. It runs in the
Python that loads the FMU's binary, which must have twingraph installed.
"""

from pathlib import Path
from xml.etree.ElementTree import Element, SubElement

import numpy as np
from pythonfmu import Boolean, DefaultExperiment, Fmi2Causality, Fmi2Slave, Fmi2Variability, Integer, Real
from pythonfmu.enums import Fmi2Status

import twingraph as tg
from twingraph.history import element_columns
from twingraph.scheduler import compile_graph

GRAPH = "twin.json"  # the graph file in resources/
VARIABLES = {"f": Real, "i": Integer, "u": Integer, "b": Boolean}  # FMI variable type by NumPy dtype kind


class TwinGraphTwin(Fmi2Slave):
    """The graph in ``resources/twin.json`` for one asset; ``doStep`` runs its ticks with the inputs held."""

    description = "A twingraph graph run by twingraph.Simulator, one tick of dt per step"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        path = Path(self.resources) / GRAPH
        self.twin_graph = tg.load(path)
        self.twin_state = tg.load_state(path)
        self.twin_simulator = None
        self.modelName = "".join(c if c.isalnum() else "_" for c in f"twin_{self.twin_graph.name}")
        self.default_experiment = DefaultExperiment(start_time=0.0, step_size=self.twin_graph.dt)
        self.twin_units = {}
        plan = compile_graph(self.twin_graph)
        self.twin_inputs = {name: self._register(name, s, Fmi2Causality.input) for name, s in plan.feeds.items()}
        outputs = [name for name, block in self.twin_graph.blocks.items() if isinstance(block, tg.Output)]
        self.twin_outputs = {
            name: self._register(name, plan.inputs[name]["u"], Fmi2Causality.output) for name in outputs
        }

    def _register(self, name, signal, causality):
        """One FMI variable per element of the boundary signal ``name``; return the array holding its value."""
        value = np.zeros(signal.shape, dtype=signal.dtype)
        if value.dtype.kind not in VARIABLES:
            raise TypeError(f"'{name}' carries {value.dtype} values; FMI variables are Real, Integer or Boolean")
        kind = VARIABLES[value.dtype.kind]
        variability = Fmi2Variability.continuous if kind is Real else Fmi2Variability.discrete
        for column, index in zip(element_columns(name, value.shape), np.ndindex(*value.shape)):
            setter = self._setter(value, index) if causality == Fmi2Causality.input else self._read_only(column)
            getter = self._getter(value, index)
            self.register_variable(kind(column, causality=causality, variability=variability, getter=getter,
                                        setter=setter), nested=False)
            if signal.unit:
                self.twin_units[column] = signal.unit
        return value

    @staticmethod
    def _getter(value, index):
        return lambda: value[index].item()

    @staticmethod
    def _setter(value, index):
        def set_value(new):
            value[index] = new

        return set_value

    @staticmethod
    def _read_only(column):
        def refuse(new):
            raise ValueError(f"{column} is an output of the twin; it cannot be set")

        return refuse

    def to_xml(self, model_options=None):
        """The model description, with the unit of each variable and their definitions."""
        root = super().to_xml(model_options or {})
        for scalar in root.iter("ScalarVariable"):
            unit = self.twin_units.get(scalar.get("name"))
            typed = scalar.find("Real")
            if unit and typed is not None:
                typed.set("unit", unit)
        units = sorted(set(self.twin_units.values()))
        if units:
            definitions = Element("UnitDefinitions")
            for unit in units:
                SubElement(definitions, "Unit", name=unit)
            root.insert(list(root).index(root.find("CoSimulation")) + 1, definitions)
        return root

    def exit_initialization_mode(self):
        self.twin_simulator = tg.Simulator(self.twin_graph, log=None, progress=False)
        if self.twin_state is not None:
            self.twin_simulator.restore(self.twin_state)

    def do_step(self, current_time, step_size):
        ticks = step_size / self.twin_graph.dt
        if round(ticks) < 1 or abs(ticks - round(ticks)) > 1e-9 * ticks:
            self.log(f"The step size {step_size:g} s is not a multiple of the twin's dt = {self.twin_graph.dt:g} s.",
                     Fmi2Status.error)
            return False
        sources = self.twin_simulator.plan.sources
        for _ in range(round(ticks)):
            values = self.twin_simulator.step(**self.twin_inputs)
        for name, value in self.twin_outputs.items():
            block, port = sources[(name, "u")]
            value[...] = values[f"{block}.{port}"]
        return True
