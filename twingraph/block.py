"""The Block base class and the registry of block types.

A block is a small class: declared ports, constructor arguments that are its
params, and a two-phase step. Each tick of a simulation first calls
:meth:`Block.output` on every block in dependency order, then
:meth:`Block.update` on every stateful block::

    y_k     = output(t_k, x_k, u_k)      # phase 1, in topological order
    x_{k+1} = update(t_k, x_k, u_k)      # phase 2, any order

Port values are NumPy arrays of shape ``(B, *signal.shape)``: every block steps
a batch of ``B`` assets at once and is written vectorised over the first axis.
"""

import copy
import inspect
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from . import units
from .errors import WiringError, quote
from .signals import PortNamespace, Signal

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_REGISTRY: dict[str, type["Block"]] = {}


def _with_inherited_params(cls: type) -> inspect.Signature:
    """The signature of ``cls.__init__``, where ``**kwargs`` stands for the base class's keyword params.

    A constructor that ends with ``**kwargs`` hands them to ``super().__init__``:
    the base's named arguments (the solver params every ODE model shares) are
    params of ``cls`` too, keyword-only, so that :meth:`Block.get_params`,
    loading and ``help`` see them and no subclass repeats them.
    """
    signature = inspect.signature(cls.__init__)
    own = list(signature.parameters.values())
    if not own or own[-1].kind is not inspect.Parameter.VAR_KEYWORD:
        return signature
    names = {p.name for p in own}
    inherited = [
        p if p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD) else p.replace(kind=p.KEYWORD_ONLY)
        for p in inspect.signature(super(cls, cls).__init__).parameters.values()
        if p.name not in names and p.kind not in (p.POSITIONAL_ONLY, p.VAR_POSITIONAL)
    ]
    return signature.replace(parameters=own[:-1] + inherited)


def check_name(name: str, what: str = "block") -> str:
    """Return ``name`` if it is a valid block or port name, else raise WiringError."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise WiringError(
            f"A {what} name must start with a letter or '_' and hold only letters, digits, "
            f"'_' and '-'. Got {quote(name)}."
        )
    return name


def block_types() -> dict[str, type["Block"]]:
    """All registered block types by type name (the name saved in JSON files)."""
    return dict(_REGISTRY)


@dataclass(frozen=True)
class Context:
    """What a block learns when a simulation is set up: batch size, tick and port signals."""

    batch: int
    dt: float
    inputs: dict[str, Signal]
    outputs: dict[str, Signal]


class Buffers:
    """The port arrays a block reads (``inp.u``) and writes in place (``out.y[...] = ...``)."""

    def __init__(self, owner: str, arrays: dict[str, np.ndarray]) -> None:
        object.__setattr__(self, "_owner", owner)
        self.__dict__.update(arrays)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.__dict__[name]

    def __setattr__(self, name: str, value) -> None:
        raise AttributeError(
            f"Block '{self._owner}': write port values in place, e.g. out.{name}[...] = value, "
            f"not out.{name} = value."
        )


class Block:
    """Base class of every block.

    Subclasses declare their ports in the class attributes ``inputs`` and
    ``outputs`` (name to :class:`~twingraph.Signal`), or override
    :meth:`input_signals` / :meth:`output_signals` when ports depend on params.
    Constructor arguments are the params: stored under the same names, no work
    in ``__init__``. Runtime state is built in :meth:`reset` in attributes whose
    names end with ``_`` (``self.x_``); those attributes are the block's state
    (:meth:`state_dict`). Constants derived in :meth:`reset` that are not state
    take a leading underscore (``self._terms``).

    Subclasses join the registry of block types (what saved graphs may name)
    under their class name, or ``type_name=...`` given as a class keyword; a
    base class meant only for subclassing passes ``abstract=True``.

    A block whose outputs do not depend on its current inputs (a delay, an ODE
    state) sets ``direct_feedthrough = False``; a feedback loop must pass through
    at least one such block.

    Examples
    --------
    >>> import numpy as np
    >>> class Scale(Block):
    ...     inputs = {"u": Signal()}
    ...     outputs = {"y": Signal()}
    ...     def __init__(self, k=2.0, *, name=None):
    ...         super().__init__(name=name)
    ...         self.k = k
    ...     def output(self, t, inp, out):
    ...         np.multiply(inp.u, self.k, out=out.y)
    >>> Scale(k=3.0, name="s")
    Scale(k=3.0, name='s')
    """

    inputs: ClassVar[dict[str, Signal]] = {}
    outputs: ClassVar[dict[str, Signal]] = {}
    direct_feedthrough: ClassVar[bool] = True

    def __init_subclass__(cls, type_name: str | None = None, abstract: bool = False, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in vars(cls):
            cls.__init__.__signature__ = _with_inherited_params(cls)
        if abstract:  # a base class for other blocks (ODEModel, ...): not a block type of its own
            return
        key = type_name or cls.__qualname__
        known = _REGISTRY.get(key)
        if known is not None and known.__module__ != cls.__module__:
            raise TypeError(
                f"Block type name '{key}' is taken by {known.__module__}.{known.__qualname__}; "
                f"define the class with a type_name, e.g. class {cls.__name__}(Block, type_name='my.{key}')."
            )
        cls.type_name = key
        _REGISTRY[key] = cls

    def __init__(self, *, name: str | None = None) -> None:
        self.name = None if name is None else check_name(name)

    @property
    def inp(self) -> PortNamespace:
        """The input ports, for wiring: ``block.inp.u``."""
        return PortNamespace(self, "in")

    @property
    def out(self) -> PortNamespace:
        """The output ports, for wiring: ``block.out.y``."""
        return PortNamespace(self, "out")

    def input_signals(self) -> dict[str, Signal]:
        """Declared input signals by port name."""
        return dict(self.inputs)

    def output_signals(self, inputs: dict[str, Signal]) -> dict[str, Signal]:
        """Output signals given the (possibly partly unknown) input signals.

        The default fills unknown output fields from the inputs, which must agree.
        """
        known = {}
        for field in ("shape", "dtype", "unit"):
            values = {getattr(s, field) for s in inputs.values()} - {None}
            if field == "unit":  # "m3/s" and "m^3/s" agree
                values = units.distinct(s.unit for s in inputs.values())
            if len(values) > 1 and any(getattr(s, field) is None for s in self.outputs.values()):
                raise WiringError(
                    f"Block '{self.name}' cannot infer its output {field}: its inputs disagree "
                    f"({', '.join(f'{p}: {s.describe()}' for p, s in inputs.items())})."
                )
            known[field] = values.pop() if values else None
        return {p: s.merge(Signal(**known)) for p, s in self.outputs.items()}

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments (except ``name``) as currently set."""
        sig = inspect.signature(type(self).__init__)
        return {
            p.name: getattr(self, p.name)
            for p in sig.parameters.values()
            if p.name not in ("self", "name") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        }

    def check_params(self) -> None:
        """Raise :class:`~twingraph.ParamError` naming the first invalid param (value or type).

        The compiler calls it for every block when a graph is validated, before
        any port signal is inferred; use the checkers of :mod:`twingraph.errors`
        (:func:`~twingraph.errors.check_number`, :func:`~twingraph.errors.invalid_param`).
        Blocks without params need not override.
        """

    def reset(self, ctx: Context) -> None:
        """Build the runtime state for ``ctx.batch`` assets. Stateless blocks need not override."""

    def output(self, t: float, inp: Buffers, out: Buffers) -> None:
        """Phase 1: write every output in place from the state and, if feedthrough, the inputs."""

    def update(self, t: float, inp: Buffers) -> None:
        """Phase 2: advance the state from ``t`` to ``t + dt``. Stateless blocks need not override."""

    def locate(self, folder: Path) -> None:
        """Take the folder of the graph file this block is loaded from (the loader calls it after construction).

        A block whose params name files (an FMU's ``path``) resolves them against
        ``folder``, under the folder rule of :func:`twingraph.serialize.local_file`;
        blocks that name no files need not override.
        """

    def weights(self) -> dict[str, np.ndarray]:
        """Learned arrays that are not params (an ML block's fitted weights), by name.

        Saving a graph writes them to the ``.npz`` file beside the JSON, under
        ``"<block path>/<name>"``; loading builds the block from its params, then
        hands them back to :meth:`load_weights`. Blocks without learned weights
        keep both defaults.
        """
        return {}

    def load_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Take back the arrays :meth:`weights` returned (called after construction on load)."""
        if weights:
            raise WiringError(f"Block '{self.name}' has no learned weights. Got {sorted(weights)} instead.")

    @property
    def stateful(self) -> bool:
        """True when the block overrides :meth:`update`."""
        return type(self).update is not Block.update

    def state_dict(self) -> dict[str, Any]:
        """A deep copy of the runtime state: every attribute whose name ends with ``_``."""
        state = {}
        for key, value in vars(self).items():
            if key.endswith("_") and not key.startswith("_"):
                if isinstance(value, np.random.Generator):
                    value = value.bit_generator.state
                state[key] = copy.deepcopy(value)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state produced by :meth:`state_dict` (after :meth:`reset`)."""
        current = vars(self)
        unknown = [k for k in state if k not in current]
        if unknown:
            raise WiringError(f"Block '{self.name}' has no state named {unknown}; was reset() called?")
        for key, value in state.items():
            if isinstance(current[key], np.random.Generator):
                current[key].bit_generator.state = copy.deepcopy(value)
            elif isinstance(current[key], np.ndarray) and np.shape(value) == current[key].shape:
                current[key][...] = value
            else:
                current[key] = copy.deepcopy(value)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        sep = ", " if params else ""
        return f"{type(self).__name__}({params}{sep}name={self.name!r})"
