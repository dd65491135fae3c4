"""The :class:`FMU` block: a co-simulation FMU (FMI 2.0 or 3.0) run with fmpy, one instance per asset.

An FMU is native code. Reading its ports runs nothing (:mod:`blocks.fmi.description`
reads ``modelDescription.xml`` only), so loading and validating a graph that
holds an FMU block never executes the FMU. Running it does: the binary is
loaded when a :class:`~twingraph.Simulator` resets the block, and only when
the FMU file was trusted in this process with :func:`trust`. A graph file
cannot grant that trust; the user running it does.
"""

import contextlib
import copy
import hashlib
import io
import re
import shutil
import tempfile
import weakref
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from twingraph import Block, Context, Signal, SimulationError, TwinGraphError
from twingraph._optional import require
from twingraph.errors import invalid_param, is_number, quote
from twingraph.serialize import local_file

from .description import Description, DescriptionError, Variable, read_description

# By FMI major version, the FMI types the block gets and sets: port dtype (None: a start value only) and the
# fmpy get/set suffix
TYPES = {
    "2": {"Real": ("float64", "Real"), "Integer": ("int32", "Integer"), "Enumeration": ("int32", "Integer"),
          "Boolean": ("bool", "Boolean"), "String": (None, "String")},
    "3": {"Float64": ("float64", "Float64"), "Int32": ("int32", "Int32"), "Boolean": ("bool", "Boolean"),
          "String": (None, "String")},
}
# By FMI major version, fmpy's calls to get, set, free, serialise and deserialise an FMU state
STATE_CALLS = {
    "2": ("getFMUstate", "setFMUstate", "freeFMUstate", "serializeFMUstate", "deSerializeFMUstate"),
    "3": ("getFMUState", "setFMUState", "freeFMUState", "serializeFMUState", "deserializeFMUState"),
}
_PYTHON = {"float64": float, "int32": int, "bool": bool, None: str}
_TRUSTED: set[str] = set()  # SHA-256 digests of the FMU files trusted in this process
_NOT_A_PORT_NAME = re.compile(r"[^A-Za-z0-9_]+")


class UntrustedFMUError(TwinGraphError, PermissionError):
    """An FMU block was asked to run an FMU file that was not trusted in this process (see :func:`trust`)."""


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def trust(path: str) -> str:
    """Allow the FMU file at ``path`` to run in this process; return its SHA-256 digest.

    Trust pins the file's content: an FMU block runs a file whose bytes hash
    to a trusted digest, so a file replaced after ``trust`` is refused again.
    Trust lasts until the process ends and is never saved with a graph.
    """
    digest = _digest(Path(path).read_bytes())
    _TRUSTED.add(digest)
    return digest


def trusted_bytes(owner: str, path: Path) -> bytes:
    """The bytes of the FMU file ``path`` that ``owner`` (e.g. "FMU 'plant'") is about to run, if trusted.

    The bytes are read once, hashed, and returned for unpacking: the bytes that
    run are the bytes trusted. Raises :class:`UntrustedFMUError` otherwise.
    """
    data = path.read_bytes()
    if _digest(data) not in _TRUSTED:
        raise UntrustedFMUError(
            f"{owner} would run the native code of {quote(str(path))}, which was not trusted in this "
            f"process: if you trust that file, call blocks.fmi.trust({quote(str(path))}) first (on the command "
            f"line: twingraph run --trust FILE). Loading and validating a graph never run an FMU."
        )
    return data


def port_name(variable: str) -> str:
    """The port name of an FMU variable: each run of characters other than letters, digits and ``_`` becomes ``_``.

    >>> port_name("body.s"), port_name("der(x)"), port_name("a[2]")
    ('body_s', 'der_x', 'a_2')
    """
    name = _NOT_A_PORT_NAME.sub("_", variable).strip("_")
    return name if name and not name[0].isdigit() else f"v_{name}"


@lru_cache(maxsize=32)
def _cached_description(path: Path, mtime_ns: int, size: int) -> Description:
    return read_description(path)


def _types(md: Description) -> dict[str, tuple[str | None, str]]:
    """Port dtype and fmpy get/set suffix of each FMI type the block handles in ``md``'s FMI version."""
    return TYPES[md.fmi_version[0]]


def _dtype(md: Description, variable: Variable) -> str | None:
    """The port dtype of ``variable``; None where it cannot be a port."""
    return None if variable.array else _types(md).get(variable.type, (None, ""))[0]


def _fits(dtype: str | None, value: Any) -> bool:
    """Whether ``value`` can be set as the value of a variable of port dtype ``dtype`` (None: a String)."""
    if dtype == "float64":
        return is_number(value)
    if dtype == "bool":
        return isinstance(value, (bool, np.bool_))
    if dtype is None:
        return isinstance(value, str)
    return is_number(value) and float(value).is_integer()


def settable_before_initialization(variable: Variable) -> bool:
    """Whether FMI lets a value of ``variable`` be set before initialisation (Instantiated state).

    FMI 2.0 and 3.0 allow it for every variable that is not constant and is a
    parameter or an input, or whose ``initial`` is ``"exact"`` or ``"approx"``
    (a start value that the initialisation keeps, or starts iterating from).
    """
    return variable.variability != "constant" and (
        variable.causality in ("parameter", "input") or variable.initial in ("exact", "approx")
    )


class Unpacked:
    """A trusted FMU file unpacked into a temporary folder, and the FMU instances made from it.

    The one place where FMU code is let in: the file's bytes are read once
    and checked by :func:`trusted_bytes` (``owner``, e.g. ``"FMU 'plant'"``,
    names who runs it in the refusal); its ``description`` is read from the
    same bytes that are unpacked. The user appends each fmpy instance made
    from ``folder`` to ``instances``; :meth:`release`, or the garbage
    collection of this object, terminates and frees them and deletes the folder.
    """

    def __init__(self, owner: str, path: Path) -> None:
        data = trusted_bytes(owner, path)
        self.description = read_description(io.BytesIO(data))
        self.folder = tempfile.mkdtemp(prefix="twingraph-fmu-")
        self.instances: list = []
        self._finalizer = weakref.finalize(self, _release, self.instances, self.folder)
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            archive.extractall(self.folder)

    def release(self) -> None:
        """Terminate and free the instances now and delete the folder (once; later calls do nothing)."""
        self._finalizer()


def _release(instances: list, folder: str) -> None:
    for instance in instances:
        with contextlib.suppress(Exception):  # an instance that failed, or was never initialised, cannot terminate
            instance.terminate()
        instance.freeInstance()
    instances.clear()
    shutil.rmtree(folder, ignore_errors=True)


class FMUFile:
    """The ``path`` param of a block that runs an FMU: resolved in the graph file's folder once loaded.

    The class using it sets ``self._folder = None`` in its constructor.
    """

    path: str
    _folder: Path | None

    def locate(self, folder: Path) -> None:
        """Resolve ``path`` in ``folder``, the folder of the graph file this block was loaded from."""
        self._folder = Path(folder)

    def file(self) -> Path:
        """The FMU file that ``path`` names (relative to the graph file's folder once loaded)."""
        if not isinstance(self.path, str) or not self.path:
            raise invalid_param(self, "path", "the path of an .fmu file, as a str", self.path)
        if self._folder is None:
            return Path(self.path)
        try:
            return local_file(self._folder, self.path)
        except ValueError as exc:
            raise invalid_param(self, "path", f"a path inside the graph file's folder ({exc})", self.path) from None


class FMU(FMUFile, Block):
    """A co-simulation FMU (FMI 2.0 or 3.0) as a block: one FMU instance per asset, advanced by ``doStep``.

    Ports come from the FMU's model description: one scalar port per exposed
    variable, named by :func:`port_name`, with the variable's unit (``None``
    where the FMU declares none) and a dtype from its type (FMI 2.0 Real,
    FMI 3.0 Float64: float64; FMI 2.0 Integer and Enumeration, FMI 3.0 Int32:
    int32; Boolean: bool). FMI 3.0 variables of other types and arrays are not
    ports.

    Parameters
    ----------
    path : str
        The ``.fmu`` file. Built in Python: absolute, or relative to the working
        directory. In a graph file: relative to the graph file's folder and
        inside it (the folder rule of :func:`twingraph.serialize.local_file`).
    input_names : tuple of str or None
        FMU variables of causality input to expose as input ports; ``None``:
        every input variable.
    output_names : tuple of str or None
        FMU variables to expose as output ports (outputs, locals, parameters);
        ``None``: every variable of causality output.
    start : dict of str to value or list, or None
        Start values set in each instance before initialisation, by variable
        name: one value for every asset, or a list of one value per asset.
        Parameters, inputs and variables whose ``initial`` is exact or approx
        may be given.
    name : str or None
        Block name.

    Ports
    -----
    <input> (in) : one per exposed input variable, shape ().
    <output> (out) : one per exposed output variable, shape ().

    Notes
    -----
    Each tick ``k``, at ``t_k = k dt``::

        y_k  = the FMU's outputs at t_k              output: read before doStep
        u_k  set as the FMU's inputs, held            update
        doStep(t_k, dt)                               update: the FMU advances to t_k + dt

    Outputs are the FMU's values at the start of the tick, so the block has no
    direct feedthrough, like an ODE model: an FMU output that depends directly
    on an input shows that input one tick later, and a feedback loop through
    an FMU block never forms an algebraic loop.

    Running is explicit: the block loads the FMU's binary when a simulator
    resets it, and refuses (:class:`UntrustedFMUError`) unless the file was
    trusted in this process with :func:`trust`. Instances are terminated and
    freed on the next reset, by :meth:`close`, or when the block is collected.

    A snapshot holds each instance's serialised FMU state
    (``fmi2SerializeFMUstate``, ``fmi3SerializeFMUState``) as a uint8 array; an
    FMU that does not declare both ``canGetAndSetFMUstate`` and
    ``canSerializeFMUstate`` (FMI 3.0: ``...FMUState``) cannot be
    snapshot or restored, which raises a :class:`~twingraph.SimulationError`
    naming the block.

    Examples
    --------
    Ports are read from the model description, without running the FMU
    (here one made by :func:`blocks.fmi.examples.mass_spring_damper`)::

        plant = FMU(path="MassSpringDamper.fmu", start={"stiffness": [4.0, 5.0]}, name="plant")
        plant.input_signals()    # {'force': Signal(shape=(), dtype='float64')}
        trust("MassSpringDamper.fmu")
        history = tg.Simulator(graph, batch=2).run(inputs)
    """

    direct_feedthrough = False

    def __init__(self, path: str, input_names=None, output_names=None, start=None, *, name: str | None = None):
        super().__init__(name=name)
        self.path = path
        self.input_names = input_names
        self.output_names = output_names
        self.start = start
        self._folder: Path | None = None  # the graph file's folder, once loaded (see locate)
        self._unpacked: Unpacked | None = None

    def description(self) -> Description:
        """The FMU's model description, read without running anything."""
        path = self.file()
        try:
            stat = path.stat()
            return _cached_description(path.resolve(), stat.st_mtime_ns, stat.st_size)
        except (OSError, DescriptionError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            expected = f"an FMI 2.0 or 3.0 co-simulation FMU file ({reason})"
            raise invalid_param(self, "path", expected, self.path) from None

    def _exposed(self, md: Description, param: str) -> list[Variable]:
        """The variables that ``input_names`` or ``output_names`` expose, checked."""
        names = getattr(self, param)
        causality = "input" if param == "input_names" else "output"
        if names is None:
            return [v for v in md.with_causality(causality) if _dtype(md, v)]
        if not isinstance(names, (tuple, list)) or not all(isinstance(n, str) for n in names):
            raise invalid_param(self, param, "a tuple of FMU variable names, or None", names)
        exposed = []
        for n in names:
            variable = md.variables.get(n)
            wrong_causality = causality == "input" and variable is not None and variable.causality != "input"
            if variable is None or not _dtype(md, variable) or wrong_causality:
                kinds = "/".join(t for t, (dtype, _) in _types(md).items() if dtype)
                kind = "input variables" if causality == "input" else f"scalar {kinds} variables"
                choices = [v.name for v in md.variables.values() if _dtype(md, v)][:20]
                raise invalid_param(self, param, f"names of {kind} of the FMU (of {choices})", names)
            exposed.append(variable)
        ports = [port_name(v.name) for v in exposed]
        if len(set(ports)) < len(ports):
            raise invalid_param(self, param, f"names of distinct ports (they map to {ports})", names)
        return exposed

    def _start_values(self, md: Description) -> dict[Variable, list]:
        """The start values by variable, each a list (one value, or one per asset), checked."""
        if self.start is None:
            return {}
        if not isinstance(self.start, dict):
            raise invalid_param(self, "start", "a dict from FMU variable name to value, or None", self.start)
        values = {}
        for n, value in self.start.items():
            variable = md.variables.get(n)
            settable = variable is not None and settable_before_initialization(variable) and (
                variable.type in _types(md) and not variable.array)
            if not settable:
                raise invalid_param(
                    self, "start", f"a dict whose keys name parameters, inputs or variables with a start value "
                    f"(not {quote(n)})", self.start,
                )
            dtype = _types(md)[variable.type][0]
            per_asset = list(value) if isinstance(value, (list, tuple)) else [value]
            if not per_asset or not all(_fits(dtype, v) for v in per_asset):
                raise invalid_param(
                    self, "start", f"a dict giving {quote(n)} a {variable.type} value or a list of one per asset",
                    self.start,
                )
            values[variable] = [_PYTHON[dtype](v) for v in per_asset]
        return values

    def check_params(self) -> None:
        """Read the model description (running nothing) and check every param against it."""
        md = self.description()
        if md.co_simulation is None:
            expected = "a co-simulation FMU (this one implements model exchange only)"
            raise invalid_param(self, "path", expected, self.path)
        self._exposed(md, "input_names")
        self._exposed(md, "output_names")
        self._start_values(md)

    def _signals(self, param: str) -> dict[str, Signal]:
        self.check_params()
        md = self.description()
        return {port_name(v.name): Signal(shape=(), dtype=_dtype(md, v), unit=v.unit) for v in self._exposed(md, param)}

    def input_signals(self) -> dict[str, Signal]:
        return self._signals("input_names")

    def output_signals(self, inputs: dict[str, Signal]) -> dict[str, Signal]:
        return self._signals("output_names")

    def reset(self, ctx: Context) -> None:
        self.close()
        unpacked = self._unpacked = Unpacked(f"FMU '{self.name}'", self.file())
        md = unpacked.description
        fmi3 = md.fmi_version != "2.0"
        fmpy_fmi = require("fmpy.fmi3" if fmi3 else "fmpy.fmi2", "fmi", "running FMUs")
        start = self._start_values(md)
        wrong = {v.name: len(s) for v, s in start.items() if len(s) not in (1, ctx.batch)}
        if wrong:
            raise invalid_param(self, "start", f"one value, or one per asset ({ctx.batch}), for each variable", wrong)
        if md.co_simulation.only_one_instance_per_process and ctx.batch > 1:
            raise SimulationError(f"FMU '{self.name}': the FMU allows one instance per process; run it with batch=1.")
        self._md = md
        self._dt = ctx.dt
        types = _types(md)
        self._inputs = self._grouped(md, self._exposed(md, "input_names"))
        self._outputs = self._grouped(md, self._exposed(md, "output_names"))
        dtypes = {call: dtype for dtype, call in types.values()}
        self._values = {k: np.zeros((ctx.batch, len(refs)), dtype=dtypes[k]) for k, (_, refs) in self._outputs.items()}
        for i in range(ctx.batch):
            slave = (fmpy_fmi.FMU3Slave if fmi3 else fmpy_fmi.FMU2Slave)(
                guid=md.guid,
                unzipDirectory=unpacked.folder,
                modelIdentifier=md.co_simulation.model_identifier,
                instanceName=f"{self.name}[{i}]",
            )
            unpacked.instances.append(slave)
            self._call(f"to instantiate asset {i}", slave.instantiate)
            if not fmi3:
                slave.setupExperiment(startTime=0.0)  # FMI 3.0 takes the start time in enterInitializationMode
            for variable, values in start.items():
                getattr(slave, f"set{types[variable.type][1]}")([variable.value_reference], [values[i % len(values)]])
            self._call(f"to initialise asset {i}", slave.enterInitializationMode)
            self._call(f"to initialise asset {i}", slave.exitInitializationMode)
            self._read(i, slave)
        self._slaves = unpacked.instances

    @staticmethod
    def _grouped(md: Description, variables: list[Variable]) -> dict[str, tuple[list[str], list[int]]]:
        """Ports and value references of ``variables`` by fmpy get/set suffix (``"Real"``, ``"Float64"``, ...)."""
        groups: dict[str, tuple[list[str], list[int]]] = {}
        for v in variables:
            ports, refs = groups.setdefault(_types(md)[v.type][1], ([], []))
            ports.append(port_name(v.name))
            refs.append(v.value_reference)
        return groups

    def _call(self, what: str, function, *args) -> Any:
        try:
            return function(*args)
        except Exception as exc:  # fmpy's FMICallException, or a bare Exception when instantiation fails
            raise SimulationError(f"FMU '{self.name}' failed {what}: {exc}") from exc

    def _read(self, i: int, slave) -> None:
        for kind, (_, refs) in self._outputs.items():
            self._values[kind][i] = getattr(slave, f"get{kind}")(refs)

    def output(self, t, inp, out):
        for kind, (ports, _) in self._outputs.items():
            for j, port in enumerate(ports):
                out[port][...] = self._values[kind][:, j]

    def update(self, t, inp):
        held = [
            (f"set{kind}", refs, np.stack([inp[p] for p in ports], axis=1).tolist())
            for kind, (ports, refs) in self._inputs.items()
        ]
        for i, slave in enumerate(self._slaves):
            for setter, refs, values in held:
                getattr(slave, setter)(refs, values[i])
            stepped = self._call(f"at t = {t:g} s (asset {i})", slave.doStep, t, self._dt)
            if isinstance(stepped, tuple) and stepped[1]:  # FMI 3.0: (event, terminateSimulation, early, time)
                raise SimulationError(f"FMU '{self.name}' asked to end the simulation at t = {t:g} s (asset {i}).")
            self._read(i, slave)

    def close(self) -> None:
        """Terminate and free the FMU instances now (the next reset makes new ones)."""
        if self._unpacked is not None:
            self._unpacked.release()
        self._unpacked = None
        self._slaves = []

    def _state_calls(self) -> tuple[str, ...]:
        """fmpy's names of getFMUstate, setFMUstate, freeFMUstate, serializeFMUstate, deSerializeFMUstate, checked."""
        interface = self._md.co_simulation
        if not (interface.can_get_and_set_state and interface.can_serialize_state):
            raise SimulationError(
                f"FMU '{self.name}' cannot be snapshot or restored: {quote(self.path)} does not declare both "
                f"canGetAndSetFMUstate and canSerializeFMUstate."
            )
        return STATE_CALLS[self._md.fmi_version[0]]

    def state_dict(self) -> dict[str, Any]:
        """Each instance's serialised FMU state: ``{"fmu_state_": [one uint8 array per asset]}``."""
        get, _, free, serialize, _ = self._state_calls()
        states = []
        for slave in self._slaves:
            handle = getattr(slave, get)()
            states.append(np.frombuffer(getattr(slave, serialize)(handle), dtype=np.uint8).copy())
            getattr(slave, free)(handle)
        return {"fmu_state_": states}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        _, set_state, free, _, deserialize = self._state_calls()
        states = state.get("fmu_state_") if isinstance(state, dict) and len(state) == 1 else None
        if not isinstance(states, list) or len(states) != len(self._slaves):
            raise SimulationError(
                f"FMU '{self.name}': its state is {{'fmu_state_': [one uint8 array per asset ({len(self._slaves)})]}}."
            )
        for i, (slave, serialized) in enumerate(zip(self._slaves, states)):
            handle = self._call(f"to restore asset {i}", getattr(slave, deserialize), np.asarray(serialized).tobytes())
            getattr(slave, set_state)(handle)
            getattr(slave, free)(handle)
            self._read(i, slave)

    def __deepcopy__(self, memo: dict) -> "FMU":
        """A copy with the same params and graph folder, not reset: FMU instances are native, never copied."""
        clone = type(self)(**copy.deepcopy(self.get_params(), memo), name=self.name)
        clone._folder = self._folder
        return clone
