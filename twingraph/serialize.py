"""Graphs as JSON files: :func:`save`, :func:`load`, :func:`to_dict`, :func:`from_dict`.

A graph file is a versioned JSON document::

    {"format": "twingraph.graph", "version": 2, "name": "loop", "dt": 0.1,
     "blocks": [{"type": "Input", "name": "r", "params": {"shape": {"__tuple__": []}, ...}},
                {"type": "Gain", "name": "k", "params": {"k": 2.0, "unit": null}},
                {"type": "Graph", "name": "ctrl", "dt": 0.1, "blocks": [...], "connections": [...]}],
     "connections": [["r.value", "k.u"], ["k.y", "ctrl.e"]],
     "arrays": "loop.npz",
     "state": {"format": "twingraph.snapshot", "tick": 42, ...}}

Blocks are saved by registered type name (:func:`~twingraph.block_types`) and
params (:meth:`~twingraph.Block.get_params`); subsystems nest as ``"Graph"``
entries. Values JSON cannot hold are tagged objects: ``{"__tuple__": [...]}``,
``{"__float__": "nan"}``, ``{"__array__": nested lists, "dtype": "float64",
"shape": [2, 2]}``, ``{"__frame__": {...}}`` (a DataFrame) and ``{"__block__":
{...}}`` (a block given as a param). Arrays of more than :data:`INLINE_MAX`
elements and learned weights (:meth:`~twingraph.Block.weights`) go to the
``.npz`` file named by ``"arrays"``, as ``{"__npz__": key}``.

Loading executes nothing from the file: the document's nesting depth is
limited (:data:`MAX_DEPTH`), a document of an older format version is migrated
(:mod:`twingraph.migrate`), then it is checked against the JSON Schema shipped
in ``twingraph/schema/``; block types are looked up in the registry (loading
the installed block packages, entry points :data:`PLUGINS`, and nothing else,
when a type is unknown), arrays are read with ``np.load(allow_pickle=False)``
from a sidecar that must lie in the graph file's folder (:func:`local_file`).
Every problem is a :class:`~twingraph.LoadError` naming its place in the file,
quoting at most a few hundred characters of the file's text, and no partly
built graph is ever returned.
"""

import contextlib
import difflib
import inspect
import json
import math
import zipfile
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from importlib.metadata import entry_points
from os import PathLike
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pandas as pd

from .block import Block, block_types
from .errors import QUOTE_MAX, LoadError, ParamError, TwinGraphError, cut, quote
from .graph import Graph
from .migrate import UPGRADES
from .simulator import SNAPSHOT_FORMAT

FORMAT = "twingraph.graph"
VERSION = 2
READS = (*sorted(UPGRADES), VERSION)  # the format versions load() reads, older ones migrated
MAX_DEPTH = 64  # levels of nested lists and objects a graph document may hold
INLINE_MAX = 1000  # arrays with more elements are saved in the .npz sidecar
PLUGINS = "twingraph.blocks"  # entry-point group of installed block packages, loaded for unknown types
DTYPES = frozenset(
    ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16", "float32", "float64"]
)
TAGS = frozenset(["__array__", "__npz__", "__tuple__", "__float__", "__frame__", "__block__"])
NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _nonfinite_name(x: float) -> str:
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def _cut(text: str, limit: int = 2 * QUOTE_MAX) -> str:
    """A message that may hold the file's text, cut (by default to twice the quoting limit)."""
    return cut(text, limit)


def local_file(folder: str | PathLike, ref: str) -> Path:
    """The file that a graph file in ``folder`` names by the relative path ``ref``.

    The folder rule: the path is resolved with symlinks followed and must stay
    inside ``folder`` (a link inside it to a file outside is refused), and it
    must not name something other than a file (a folder, a pipe). A missing
    file is returned as is, for the reader to report.

    Raises
    ------
    ValueError
        Saying why ``ref`` breaks the rule.

    Examples
    --------
    >>> local_file("/data/twins", "../secrets.npz")
    Traceback (most recent call last):
    ...
    ValueError: '../secrets.npz' leads to '/data/secrets.npz', outside '/data/twins'
    """
    if Path(ref).is_absolute() or Path(ref).drive:
        raise ValueError(f"{quote(ref)} is an absolute path")
    try:
        root = Path(folder).resolve()
        path = (root / ref).resolve()
        odd = path.exists() and not path.is_file()
    except (OSError, ValueError, RuntimeError) as exc:  # a NUL byte, a name too long, a symlink loop
        raise ValueError(f"{quote(ref)} cannot be resolved: {_cut(str(exc))}") from exc
    if not path.is_relative_to(root):
        raise ValueError(f"{quote(ref)} leads to {quote(str(path))}, outside {quote(str(root))}")
    if odd:
        raise ValueError(f"{quote(ref)} is not a file")
    return path


def _too_deep(data: Any) -> bool:
    """True when ``data`` nests lists and dicts more than :data:`MAX_DEPTH` levels deep."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        for item in value.values() if isinstance(value, dict) else value:
            if isinstance(item, (dict, list)):
                stack.append((item, depth + 1))
    return False


def _owner(data: dict, path: Sequence[str | int]) -> str:
    """The graph, subsystem or block holding the place at JSON ``path`` in the document ``data``."""
    name = data.get("name")
    owner, node, parent_key = f"graph {quote(name)}" if isinstance(name, str) else "the graph", data, None
    for key in path:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(node, dict) and (key == "__block__" or (parent_key == "blocks" and isinstance(key, int))):
            kind = "subsystem" if node.get("type") == "Graph" else "block"
            owner = f"{kind} {quote(node['name'])}" if isinstance(node.get("name"), str) else f"a {kind}"
        parent_key = key
    return owner


class _Encoder:
    """Graph to JSON-ready dict; arrays inline, or into ``sidecar`` when it is given."""

    def __init__(self, sidecar: dict[str, np.ndarray] | None) -> None:
        self.sidecar = sidecar

    def graph(self, graph: Graph, prefix: str = "") -> dict[str, Any]:
        blocks = []
        for name, node in graph.blocks.items():
            if isinstance(node, Graph):
                blocks.append({"type": "Graph", **self.graph(node, f"{prefix}{name}/")})
            else:
                blocks.append(self.block(node, prefix + name))
        return {
            "name": graph.name,
            "dt": graph.dt,
            "blocks": blocks,
            "connections": [list(c) for c in graph.connections],
        }

    def block(self, block: Block, path: str) -> dict[str, Any]:
        cls = type(block)
        type_name = cls.__dict__.get("type_name")
        if type_name is None or block_types().get(type_name) is not cls:
            raise TwinGraphError(
                f"Cannot save block '{path}': its class {cls.__module__}.{cls.__qualname__} is not a "
                f"registered block type (was it defined with abstract=True?)."
            )
        if type_name == "Graph":
            raise TwinGraphError(
                f"Cannot save block '{path}': the type name 'Graph' marks subsystems in graph files; "
                f"define {cls.__qualname__} with a type_name, e.g. type_name='my.Graph'."
            )
        spec = {"type": type_name, "name": block.name}
        spec["params"] = {
            k: self.value(v, f"{path}.{k}", f"param '{k}' of block '{path}'") for k, v in block.get_params().items()
        }
        weights = block.weights()
        if weights:
            spec["weights"] = {
                k: self.array(np.asarray(w), f"{path}/{k}", f"weight '{k}' of block '{path}'", sidecar=True)
                for k, w in weights.items()
            }
        return spec

    def value(self, v: Any, key: str, what: str) -> Any:
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, np.bool_):
            return bool(v)
        if isinstance(v, (int, np.integer)):
            return int(v)
        if isinstance(v, (float, np.floating)):
            return float(v) if math.isfinite(v) else {"__float__": _nonfinite_name(float(v))}
        if isinstance(v, list):
            return [self.value(x, f"{key}.{i}", what) for i, x in enumerate(v)]
        if isinstance(v, tuple):
            return {"__tuple__": [self.value(x, f"{key}.{i}", what) for i, x in enumerate(v)]}
        if isinstance(v, dict):
            if not all(isinstance(k, str) for k in v) or TAGS & v.keys():
                raise TwinGraphError(
                    f"Cannot save the {what}: a dict is saved only with string keys that are not "
                    f"{sorted(TAGS)}. Got keys {list(v)!r:.120} instead."
                )
            return {k: self.value(x, f"{key}.{k}", what) for k, x in v.items()}
        if isinstance(v, np.ndarray):
            return self.array(v, key, what)
        if isinstance(v, pd.DataFrame):
            return self.frame(v, key, what)
        if isinstance(v, Block):
            return {"__block__": self.block(v, key)}
        kind = "a function" if callable(v) else f"a {type(v).__module__}.{type(v).__qualname__}"
        raise TwinGraphError(
            f"Cannot save the {what}: it is {kind} ({v!r:.60}). A graph file holds numbers, strings, bools, "
            f"None, lists, tuples, dicts, NumPy arrays, DataFrames and blocks; code is never saved."
        )

    def array(self, a: np.ndarray, key: str, what: str, sidecar: bool = False) -> dict[str, Any]:
        if a.dtype.name not in DTYPES:
            raise TwinGraphError(
                f"Cannot save the {what}: arrays of dtype {a.dtype.name} cannot be saved. Use one of {sorted(DTYPES)}."
            )
        if self.sidecar is not None and (sidecar or a.size > INLINE_MAX):
            while key in self.sidecar:
                key += "_"
            self.sidecar[key] = a
            return {"__npz__": key}
        data = a
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            data = a.astype(object)
            bad = ~np.isfinite(a)
            data[bad] = [_nonfinite_name(x) for x in a[bad]]
        return {"__array__": data.tolist(), "dtype": a.dtype.name, "shape": list(a.shape)}

    def frame(self, frame: pd.DataFrame, key: str, what: str) -> dict[str, Any]:
        columns = list(frame.columns)
        if not all(isinstance(c, (str, int, np.integer)) and not isinstance(c, (bool, np.bool_)) for c in columns):
            raise TwinGraphError(
                f"Cannot save the {what}: DataFrame columns must be named by strings or ints. "
                f"Got {columns!r:.120} instead."
            )
        return {
            "__frame__": {
                "columns": [c if isinstance(c, str) else int(c) for c in columns],
                "index": self.array(frame.index.to_numpy(), f"{key}.index", f"index of the {what}"),
                "values": [
                    self.array(frame.iloc[:, i].to_numpy(), f"{key}.{i}", f"column {c!r} of the {what}")
                    for i, c in enumerate(columns)
                ],
            }
        }

    def state(self, snapshot: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(snapshot, Mapping) or snapshot.get("format") != SNAPSHOT_FORMAT:
            raise TwinGraphError("The 'state' to save must be the dict made by Simulator.snapshot().")
        return {
            "format": SNAPSHOT_FORMAT,
            "graph": snapshot["graph"],
            "batch": int(snapshot["batch"]),
            "tick": int(snapshot["tick"]),
            "blocks": {
                name: {
                    k: self.value(v, f"state/{name}/{k}", f"state '{k}' of block '{name}'") for k, v in state.items()
                }
                for name, state in snapshot["blocks"].items()
            },
        }


def _load_plugins() -> None:
    """Load the block packages installed as plugins, so that their types register.

    A package declares itself in its ``pyproject.toml`` under the entry-point group
    :data:`PLUGINS` (the ``blocks`` library does); the engine never names one.
    A plugin that fails to import is skipped: its types stay unknown.
    """
    for plugin in entry_points(group=PLUGINS):
        with contextlib.suppress(ImportError):
            plugin.load()


def _params_of(cls: type[Block]) -> list[str] | None:
    """Constructor params of ``cls`` (without ``name``); None when it takes ``**kwargs``."""
    parameters = inspect.signature(cls.__init__).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return None
    return [p.name for p in parameters if p.name not in ("self", "name") and p.kind is not p.VAR_POSITIONAL]


def _numbers(data: Any, kind: str, where: str, fail) -> Any:
    """Check the leaves of an inline array against its dtype kind; turn "nan"/"inf" into floats."""
    if isinstance(data, list):
        return [_numbers(x, kind, where, fail) for x in data]
    if kind == "b" and isinstance(data, bool):
        return data
    if kind in "iu" and isinstance(data, int) and not isinstance(data, bool):
        return data
    if kind == "f" and isinstance(data, (int, float)) and not isinstance(data, bool):
        return data
    if kind == "f" and isinstance(data, str) and data in NONFINITE:
        return NONFINITE[data]
    raise fail(where, f"{data!r:.40} is not a valid element of an array of this dtype.")


class _Decoder:
    """JSON document (already checked against the schema) to Graph; every problem a LoadError."""

    def __init__(self, source: str, directory: Path, arrays: str | None) -> None:
        self.source = source
        self.directory = directory
        self.arrays = arrays
        self._sidecar: dict[str, np.ndarray] | None = None

    def fail(self, where: str, message: str) -> LoadError:
        return LoadError(f"{self.source}: {_cut(where)}: {message}")

    def graph(self, spec: dict, prefix: str, where: str) -> Graph:
        try:
            graph = Graph(spec["name"], dt=spec["dt"])
        except TwinGraphError as exc:  # a bad dt (the name passed the schema): inf from Infinity or 1e400, NaN
            raise self.fail(f"{where}.dt" if isinstance(exc, ParamError) else where, _cut(str(exc))) from exc
        except OverflowError as exc:  # an int dt too large for a float
            raise self.fail(f"{where}.dt", f"the 'dt' of Graph {quote(spec['name'])} is too large: {exc}.") from exc
        for i, node in enumerate(spec["blocks"]):
            here = f"{where}.blocks[{i}]"
            name = prefix + node["name"]
            child = self.graph(node, name + "/", here) if node["type"] == "Graph" else self.block(node, name, here)
            try:
                graph.add(child)
            except TwinGraphError as exc:
                raise self.fail(here, _cut(str(exc))) from exc
        for i, (src, dst) in enumerate(spec["connections"]):
            try:
                graph.connect(src, dst)
            except Exception as exc:  # block code computes port signals from loaded params
                raise self.fail(
                    f"{where}.connections[{i}]", f"cannot connect {quote(src)} to {quote(dst)}: {_cut(str(exc))}"
                ) from exc
        return graph

    def block(self, spec: dict, path: str, where: str) -> Block:
        cls = self.block_type(spec["type"], path, where)
        params = {k: self.value(v, f"{where}.params.{k}") for k, v in spec.get("params", {}).items()}
        known = _params_of(cls)
        unknown = [] if known is None else [k for k in params if k not in known]
        if unknown:
            raise self.fail(
                where,
                f"block {quote(path)} ({cls.type_name}) has no param {quote(unknown[0])}. Its params are {known}.",
            )
        try:
            block = cls(**params, name=spec.get("name"))
            block.locate(self.directory)
        except Exception as exc:  # constructors are block code checking loaded params
            raise self.fail(where, f"cannot build block {quote(path)} ({cls.type_name}): {_cut(str(exc))}") from exc
        weights = {k: self.array(v, f"{where}.weights.{k}") for k, v in spec.get("weights", {}).items()}
        if weights:
            try:
                block.load_weights(weights)
            except Exception as exc:
                raise self.fail(where, f"cannot load the weights of block {quote(path)}: {_cut(str(exc))}") from exc
        return block

    def block_type(self, type_name: str, path: str, where: str) -> type[Block]:
        types = block_types()
        if type_name not in types:
            _load_plugins()
            types = block_types()
        if type_name in types:
            return types[type_name]
        close = difflib.get_close_matches(type_name, types, n=3) if len(type_name) <= QUOTE_MAX else []
        guess = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        package = type_name.split(".")[0] if "." in type_name else None
        hint = (
            f" A type named {quote(type_name)} is registered by importing its package ({quote(package)}): "
            f"import it before loading."
            if package
            else f" Types of installed block packages (entry points '{PLUGINS}') register when loading (done "
            f"here); a type from another package registers when that package is imported: import it before loading."
        )
        raise self.fail(where, f"block {quote(path)} has unknown type {quote(type_name)}.{guess}{hint}")

    def value(self, v: Any, where: str) -> Any:
        if isinstance(v, list):
            return [self.value(x, f"{where}[{i}]") for i, x in enumerate(v)]
        if not isinstance(v, dict):
            return v
        if not TAGS & v.keys():
            return {k: self.value(x, f"{where}.{k}") for k, x in v.items()}
        if "__tuple__" in v:
            return tuple(self.value(x, f"{where}[{i}]") for i, x in enumerate(v["__tuple__"]))
        if "__float__" in v:
            return NONFINITE[v["__float__"]]
        if "__frame__" in v:
            return self.frame(v["__frame__"], where)
        if "__block__" in v:
            return self.block(v["__block__"], where, where)
        return self.array(v, where)

    def array(self, v: dict, where: str) -> np.ndarray:
        if "__npz__" in v:
            return self.npz(v["__npz__"], where)
        dtype, shape = np.dtype(v["dtype"]), tuple(v["shape"])
        data = _numbers(v["__array__"], dtype.kind, f"{where}.__array__", self.fail)
        try:
            array = np.array(data, dtype=dtype)
            if array.size == 0 and math.prod(shape) == 0:
                array = array.reshape(shape)
        except (ValueError, TypeError, OverflowError) as exc:
            raise self.fail(where, f"not an array of {dtype.name} with shape {shape}: {exc}") from exc
        if array.shape != shape:
            raise self.fail(where, f"the values have shape {array.shape} but 'shape' says {shape}.")
        return array

    def npz(self, key: str, where: str) -> np.ndarray:
        arrays = self.sidecar(where)
        if key not in arrays:
            raise self.fail(where, f"no array {quote(key)} in {quote(self.arrays)}.")
        return arrays[key]

    def sidecar(self, where: str) -> dict[str, np.ndarray]:
        if self._sidecar is not None:
            return self._sidecar
        if self.arrays is None:
            raise self.fail(where, "refers to an array in the .npz file, but the document names none in 'arrays'.")
        path = self.file(self.arrays, "$.arrays")
        try:
            loaded = np.load(path, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise self.fail("$.arrays", f"{quote(str(path))} is not an .npz file.")
            with loaded:
                arrays = {k: loaded[k] for k in loaded.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise self.fail("$.arrays", f"cannot read {quote(str(path))}: {_cut(str(exc))}") from exc
        bad = {k: a.dtype.name for k, a in arrays.items() if a.dtype.name not in DTYPES}
        if bad:
            raise self.fail("$.arrays", f"{quote(str(path))} holds arrays of unsupported dtypes {quote(bad)}.")
        self._sidecar = arrays
        return arrays

    def file(self, ref: str, where: str) -> Path:
        """The file named by ``ref``, relative to the graph file, under the folder rule of :func:`local_file`."""
        try:
            return local_file(self.directory, ref)
        except ValueError as exc:
            raise self.fail(where, f"must be a path inside the graph file's folder: {exc}.") from exc

    def frame(self, spec: dict, where: str) -> pd.DataFrame:
        index = self.array(spec["index"], f"{where}.__frame__.index")
        values = [self.array(v, f"{where}.__frame__.values[{i}]") for i, v in enumerate(spec["values"])]
        if len(values) != len(spec["columns"]) or any(v.shape != index.shape for v in values):
            raise self.fail(where, f"a DataFrame needs one 1-D column of {index.shape} values per name in 'columns'.")
        frame = pd.DataFrame(dict(enumerate(values)), index=pd.Index(index))
        frame.columns = spec["columns"]
        return frame

    def state(self, spec: dict) -> dict[str, Any]:
        return {
            "format": SNAPSHOT_FORMAT,
            "graph": spec["graph"],
            "batch": spec["batch"],
            "tick": spec["tick"],
            "blocks": {
                name: {k: self.value(v, f"$.state.blocks.{name}.{k}") for k, v in state.items()}
                for name, state in spec["blocks"].items()
            },
        }


@cache
def _validator() -> jsonschema.protocols.Validator:
    text = resources.files("twingraph").joinpath("schema/graph.schema.json").read_text(encoding="utf-8")
    return jsonschema.Draft202012Validator(json.loads(text))


def schema() -> dict[str, Any]:
    """The JSON Schema of graph files (``twingraph/schema/graph.schema.json``)."""
    return _validator().schema


def _checked(data: Any, source: str) -> dict[str, Any]:
    """``data`` as a valid graph document of the current format version (migrated); else LoadError."""
    if not isinstance(data, dict):
        raise LoadError(f"{source}: $: a graph document is a JSON object. Got {type(data).__name__} instead.")
    if data.get("format") != FORMAT:
        raise LoadError(
            f"{source}: $.format: not a twingraph graph file: 'format' is {quote(data.get('format'))}, "
            f"expected '{FORMAT}'."
        )
    if _too_deep(data):
        raise LoadError(f"{source}: $: the document nests lists and objects more than {MAX_DEPTH} levels deep.")
    version = data.get("version")
    if type(version) is int and version > VERSION:
        raise LoadError(
            f"{source}: $.version: the file has format version {version}; this twingraph reads versions "
            f"{list(READS)}. Upgrade twingraph to load it."
        )
    if type(version) is not int or version not in READS:
        raise LoadError(
            f"{source}: $.version: this twingraph reads format versions {list(READS)}. Got {quote(version)} instead."
        )
    for old in range(version, VERSION):
        data = UPGRADES[old](data)
    try:
        error = jsonschema.exceptions.best_match(_validator().iter_errors(data))
    except (KeyboardInterrupt, SystemExit, MemoryError, GeneratorExit):
        raise
    except BaseException as exc:  # a panic in a validator's compiled core (pyo3_runtime.PanicException)
        raise LoadError(f"{source}: $: the schema check failed on this document: {_cut(repr(exc))}") from exc
    if error is not None:
        shown = repr(error.instance)  # most schema messages start with it
        message = error.message.replace(shown, quote(error.instance), 1) if len(shown) > QUOTE_MAX else error.message
        raise LoadError(f"{source}: {_cut(error.json_path)}: {_cut(message)} (in {_owner(data, error.absolute_path)})")
    return data


def _decode(data: Any, source: str, directory: Path, validate: bool) -> Graph:
    data = _checked(data, source)
    graph = _Decoder(source, directory, data.get("arrays")).graph(data, "", "$")
    if validate:
        try:
            graph.validate()
        except Exception as exc:  # validation runs block code on loaded params
            raise LoadError(f"{source}: {_cut(str(exc), 10 * QUOTE_MAX)}") from exc  # may list several problems
    return graph


def _document(graph: Graph, state: Mapping[str, Any] | None, encoder: _Encoder) -> dict[str, Any]:
    document = {"format": FORMAT, "version": VERSION, **encoder.graph(graph)}
    if state is not None:
        document["state"] = encoder.state(state)
    return document


def to_dict(graph: Graph, state: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The graph file document of ``graph`` as a dict, every array inline.

    ``state`` is an optional :meth:`Simulator.snapshot() <twingraph.Simulator.snapshot>`
    to keep with the graph.
    """
    return _document(graph, state, _Encoder(None))


def from_dict(data: Any, directory: str | PathLike | None = None, validate: bool = True) -> Graph:
    """Build the graph described by a graph file document.

    Parameters
    ----------
    data : dict
        A document as made by :func:`to_dict` or read from a graph file, of a
        format version in :data:`READS` (older ones are migrated, see
        :mod:`twingraph.migrate`; ``data`` itself is not changed).
    directory : path, optional
        Folder against which the document's ``"arrays"`` sidecar is found;
        default the current directory.
    validate : bool
        Validate the built graph (:meth:`Graph.validate`); ``False`` loads graphs
        still being wired.

    Raises
    ------
    LoadError
        For any document that does not describe a valid graph, naming the place.
    """
    return _decode(data, "graph document", Path.cwd() if directory is None else Path(directory), validate)


def _read(path: str | PathLike) -> tuple[Any, str]:
    """Parse the JSON file at ``path``; return the document and the name used in messages."""
    source = str(path)

    def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            raise LoadError(f"{source}: not valid: the key {repeated[0]!r} appears twice in one object.")
        return dict(pairs)

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LoadError(f"Cannot read graph file '{source}': {exc}") from exc
    try:
        return json.loads(text, object_pairs_hook=unique_keys), source
    except LoadError:
        raise
    except json.JSONDecodeError as exc:
        raise LoadError(f"{source}: not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.") from exc
    except (ValueError, RecursionError) as exc:  # an int too long to convert, nesting too deep
        raise LoadError(f"{source}: not JSON: {exc}") from None


def load(path: str | PathLike, validate: bool = True) -> Graph:
    """Load a graph saved with :meth:`Graph.save`; see :func:`from_dict`.

    Examples
    --------
    >>> import tempfile, twingraph as tg
    >>> g = tg.Graph("loop", dt=0.5)
    >>> u = g.add(tg.Input("u"))
    >>> y = g.add(tg.Output("y"))
    >>> g.connect("u.value", "y.u")
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     g.save(f"{folder}/loop.json")
    ...     tg.load(f"{folder}/loop.json").to_dict() == g.to_dict()
    True
    """
    data, source = _read(path)
    return _decode(data, source, Path(path).parent, validate)


def load_state(path: str | PathLike) -> dict[str, Any] | None:
    """The simulator snapshot saved in a graph file (``Graph.save(path, state=...)``), or None.

    Resume with ``sim = Simulator(load(path), batch=...)`` then ``sim.restore(load_state(path))``.
    """
    data, source = _read(path)
    data = _checked(data, source)
    if "state" not in data:
        return None
    return _Decoder(source, Path(path).parent, data.get("arrays")).state(data["state"])


def _format(value: Any, level: int = 0) -> str:
    """JSON text, indented by structure, with short containers and lists of numbers on one line."""
    compact = json.dumps(value, separators=(", ", ": "), allow_nan=False)
    nested = isinstance(value, dict) or (isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value))
    if not nested or not value or len(compact) + 2 * level <= 100:
        return compact
    pad, end = "  " * (level + 1), "  " * level
    if isinstance(value, dict):
        items = [f"{pad}{json.dumps(k)}: {_format(v, level + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{end}}}"
    return "[\n" + ",\n".join(pad + _format(v, level + 1) for v in value) + f"\n{end}]"


def save(graph: Graph, path: str | PathLike, state: Mapping[str, Any] | None = None) -> None:
    """Write ``graph`` (and an optional simulator ``state``) to a JSON graph file.

    Large arrays and learned weights go to ``<stem>.npz`` beside it, referenced
    by name in the JSON.
    """
    path = Path(path)
    sidecar: dict[str, np.ndarray] = {}
    document = _document(graph, state, _Encoder(sidecar))
    if sidecar:
        arrays = path.with_suffix(".npz") if path.suffix != ".npz" else path.with_name(path.name + ".npz")
        document = {**{k: document[k] for k in ("format", "version", "name", "dt")}, "arrays": arrays.name, **document}
        np.savez_compressed(arrays, **sidecar)
    path.write_text(_format(document) + "\n", encoding="utf-8")
