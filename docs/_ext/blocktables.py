"""Tables of the block reference, computed from the code: which blocks exist, their ports and params.

Nothing here is typed by hand. The block library is imported and the
registry (:func:`twingraph.block_types`) says which block types exist; each
block is built as the library's factory table (:data:`blocks.catalog.EXAMPLES`) says and
its ports are read from ``input_signals()`` and ``output_signals()``; its
params come from the ``__init__`` signature. The docstring's ``Ports`` section
(``name (in) : text`` entries) only adds the descriptions.

The Sphinx extension :mod:`blockref` renders these tables; ``tests/test_docs.py``
checks them without Sphinx.
"""

import importlib
import inspect
import pkgutil
import re
import sys
from dataclasses import dataclass
from functools import cache

import twingraph as tg

LIBRARY = "blocks"
OPTIONAL = {"torch", "gplearn", "dask", "distributed"}  # extras a library module may need
SECTION_RULE = re.compile(r"^-{3,}\s*$")
PORT_ENTRY = re.compile(r"^(?P<names>[A-Za-z_][\w ,.…]*?)\s*\((?P<direction>in|out)\)\s*:\s*(?P<text>.*)$")
MAX_DEFAULT = 40  # characters of a default value shown in the params table


@cache
def import_library() -> None:
    """Import every module of the block library, so that every block type is registered."""
    package = importlib.import_module(LIBRARY)
    for module in pkgutil.walk_packages(package.__path__, f"{LIBRARY}."):
        try:
            importlib.import_module(module.name)
        except ModuleNotFoundError as exc:
            if exc.name is None or exc.name.split(".")[0] not in OPTIONAL:
                raise


def families() -> list[str]:
    """The block families: the subpackages of the library (``"blocks.math"``, ...)."""
    package = importlib.import_module(LIBRARY)
    return [f"{LIBRARY}.{m.name}" for m in pkgutil.iter_modules(package.__path__) if m.ispkg]


def library_blocks() -> dict[str, type[tg.Block]]:
    """Public block types of twingraph and the library by type name, sorted.

    A public block is registered, defined in ``twingraph`` or ``blocks``, and
    reachable as an attribute of its module (which leaves out classes defined
    inside doctests and tests).
    """
    import_library()
    found = {}
    for name, cls in tg.block_types().items():
        module = sys.modules.get(cls.__module__)
        in_library = cls.__module__.split(".")[0] in ("twingraph", LIBRARY)
        if not in_library or getattr(module, cls.__qualname__, None) is not cls:
            continue
        found[name] = cls
    return dict(sorted(found.items()))


def family_of(cls: type[tg.Block]) -> str | None:
    """The family package (``"blocks.math"``) that documents ``cls``.

    A library block belongs to the family its module is in; an engine block
    (``twingraph.Input``) to the family that exports it.
    """
    for family in families():
        if cls.__module__ == family or cls.__module__.startswith(family + "."):
            return family
    for family in families():
        if getattr(importlib.import_module(family), cls.__name__, None) is cls:
            return family
    return None


def public_path(cls: type[tg.Block], family: str) -> str:
    """The import path users write: ``twingraph.Input``, ``blocks.physics.PumpLike`` when the family exports it."""
    if getattr(tg, cls.__name__, None) is cls:
        return f"twingraph.{cls.__name__}"
    if getattr(importlib.import_module(family), cls.__name__, None) is cls:
        return f"{family}.{cls.__name__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def constructor_call(cls: type[tg.Block]) -> str:
    """How the reference builds its example of ``cls``: the call in the library's factory table."""
    from blocks.catalog import EXAMPLES

    return EXAMPLES[cls.type_name].call


def example_block(cls: type[tg.Block]) -> tg.Block:
    """An instance of ``cls`` as the library's factory table (:data:`blocks.catalog.EXAMPLES`) builds it."""
    from blocks.catalog import example_block

    return example_block(cls.type_name)


@dataclass(frozen=True)
class PortRow:
    """One port of a block as the reference lists it."""

    name: str
    direction: str  # "in" or "out"
    signal: tg.Signal | None  # None: not declared with the example's params
    description: str = ""


def declared_ports(block: tg.Block) -> list[PortRow]:
    """The block's input then output ports, from its declared signals."""
    inputs = block.input_signals()
    outputs = block.output_signals(inputs)
    return [PortRow(n, "in", s) for n, s in inputs.items()] + [PortRow(n, "out", s) for n, s in outputs.items()]


def param_defaults(cls: type[tg.Block]) -> list[tuple[str, str]]:
    """``(param, default text)`` for each constructor argument except ``name``."""
    rows = []
    for p in inspect.signature(cls.__init__).parameters.values():
        if p.name in ("self", "name") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.default is p.empty:
            rows.append((p.name, "required"))
            continue
        text = " ".join(repr(p.default).split())
        rows.append((p.name, text if len(text) <= MAX_DEFAULT else text[: MAX_DEFAULT - 1] + "…"))
    return rows


def describe_field(value, field: str) -> str:
    """Text of a signal field for the table: ``"inferred"`` where it is None."""
    if value is None:
        return "*inferred*"
    if field == "shape":
        return "scalar" if value == () else f"``{value}``"
    if field == "unit":
        return "dimensionless" if value == "" else f"``{value}``"
    return f"``{value}``"


def section_bounds(lines: list[str], title: str) -> tuple[int, int] | None:
    """``(start, end)`` line indices of the numpy-style section ``title`` (header included)."""
    start = None
    for i in range(len(lines) - 1):
        if SECTION_RULE.match(lines[i + 1]) and lines[i].strip():
            if start is not None:
                return start, i
            if lines[i].strip() == title:
                start = i
    return None if start is None else (start, len(lines))


def parse_ports_section(body: list[str]) -> tuple[list[tuple[list[str], str, str]], list[str]]:
    """Entries ``(names, direction, text)`` of a Ports section body, and its free text lines."""
    entries: list[tuple[list[str], str, str]] = []
    free: list[str] = []
    for line in body:
        if not line.strip():
            continue
        match = PORT_ENTRY.match(line)
        if match:
            names = [n.strip() for n in match["names"].split(",") if n.strip()]
            entries.append((names, match["direction"], match["text"].strip()))
        elif line[:1].isspace() and entries:
            names, direction, text = entries[-1]
            entries[-1] = (names, direction, f"{text} {line.strip()}")
        else:
            free.append(line.strip())
    return entries, free


def _matches(pattern: str, port: str) -> bool:
    """Whether a documented port name covers ``port``: ``u1 ... un`` covers ``u1``, ``u2``, ..."""
    if "..." in pattern or "…" in pattern:
        stem = re.sub(r"\d+$", "", re.split(r"\s*(?:\.\.\.|…)\s*", pattern)[0])
        return re.fullmatch(rf"{re.escape(stem)}\d+", port) is not None
    return pattern == port


def merge_ports(declared: list[PortRow], entries: list[tuple[list[str], str, str]]) -> list[PortRow]:
    """Declared ports with their documented descriptions, then documented ports absent with these params."""
    rows, used = [], set()
    for row in declared:
        text = ""
        for i, (names, direction, description) in enumerate(entries):
            if direction == row.direction and any(_matches(n, row.name) for n in names):
                text = description
                used.add(i)
                break
        rows.append(PortRow(row.name, row.direction, row.signal, text))
    for i, (names, direction, description) in enumerate(entries):
        if i not in used:
            rows.append(PortRow(", ".join(names), direction, None, description))
    return rows


def rst_table(header: list[str], rows: list[list[str]], widths: list[int]) -> list[str]:
    lines = [".. list-table::", "   :header-rows: 1", f"   :widths: {' '.join(map(str, widths))}",
             "   :class: blockref-table", ""]
    for row in [header, *rows]:
        lines.append(f"   * - {row[0] or ' '}")
        lines.extend(f"     - {cell or ' '}" for cell in row[1:])
    return [*lines, ""]


def ports_table(rows: list[PortRow], with_signals: bool) -> list[str]:
    """RST list-table of ports: name, direction, (shape, dtype, unit,) description."""
    if not with_signals:
        return rst_table(["Port", "Dir", "Description"], [[f"``{r.name}``", r.direction, r.description] for r in rows],
                      [15, 6, 79])
    body = []
    for r in rows:
        if r.signal is None:
            signal_cells = ["—", "—", "—"]
            description = f"*Absent with these params.* {r.description}".strip()
            name = r.name
        else:
            signal_cells = [describe_field(getattr(r.signal, f), f) for f in ("shape", "dtype", "unit")]
            description, name = r.description, f"``{r.name}``"
        body.append([name, r.direction, *signal_cells, description])
    return rst_table(["Port", "Dir", "Shape", "Dtype", "Unit", "Description"], body, [14, 5, 11, 9, 11, 50])


def block_sections(cls: type[tg.Block], body: list[str]) -> list[str]:
    """The generated ``Ports`` and ``Defaults`` sections of a block from its Ports section body."""
    entries, free = parse_ports_section(body)
    block = example_block(cls)
    call = constructor_call(cls)
    rows = merge_ports(declared_ports(block), entries)
    lines = ["Ports", "-----", f"Signals as declared by ``{call}``; *inferred* fields take the shape, dtype or unit "
             "of what is connected. Values are arrays ``(B, *shape)`` for a batch of ``B`` assets.", ""]
    lines += ports_table(rows, with_signals=True)
    if free:
        lines += [" ".join(free), ""]
    defaults = param_defaults(cls)
    if defaults:
        lines += ["Defaults", "--------"]
        lines += rst_table(["Param", "Default"], [[f"``{p}``", f"``{d}``" if d != "required" else "*required*"]
                                               for p, d in defaults], [30, 70])
    return lines
