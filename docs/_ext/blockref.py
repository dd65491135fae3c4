"""Sphinx extension: the block reference, generated from the code (tables in :mod:`blocktables`).

Directives:

``.. blockfamily:: blocks.math``
    A section per block of the family: its ``autoclass``, whose ``Ports``
    section becomes a table of the declared signals, followed by a
    ``Defaults`` table of its params.
``.. blockindex::``
    One table of every block: family, ports, summary.

The families are the subpackages of ``blocks``. A registered block that no
``blockfamily`` directive documents is a build warning, so a new family fails
a ``-W`` build until it has a page.
"""

import inspect

from blocktables import (
    LIBRARY,
    PortRow,
    block_sections,
    declared_ports,
    example_block,
    families,
    family_of,
    library_blocks,
    parse_ports_section,
    ports_table,
    public_path,
    rst_table,
    section_bounds,
)
from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

import twingraph as tg

logger = logging.getLogger(__name__)


def process_docstring(app: Sphinx, what: str, name: str, obj, options, lines: list[str]) -> None:
    """Replace a class's ``Ports`` section with a table; for a registered block, from its declared signals."""
    if what != "class" or not isinstance(obj, type):
        return
    bounds = section_bounds(lines, "Ports")
    is_block = issubclass(obj, tg.Block) and obj in library_blocks().values()
    if bounds is None and not is_block:
        return
    if bounds is None:
        later = [section_bounds(lines, t) for t in ("Notes", "References", "Examples")]
        at = min((b[0] for b in later if b is not None), default=len(lines))
        bounds, body = (at, at), []
    else:
        body = lines[bounds[0] + 2 : bounds[1]]
    if is_block:
        try:
            new = block_sections(obj, body)
        except Exception as exc:  # a block the reference cannot build: say how to fix it
            logger.warning(
                f"blockref: cannot list the ports of block '{obj.type_name}' ({exc}); give it working defaults "
                f"or add its example to EXAMPLES in blocks/catalog.py",
                location=name,
            )
            return
    else:
        entries, free = parse_ports_section(body)
        rows = [PortRow(", ".join(n), d, None, t) for n, d, t in entries]
        new = ["Ports", "-----", *ports_table(rows, with_signals=False), *([" ".join(free), ""] if free else [])]
    lines[bounds[0] : bounds[1]] = [*new, ""]


class BlockFamily(SphinxDirective):
    """``.. blockfamily:: blocks.math``: a section per block of the family, with autoclass and tables."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        family = self.arguments[0]
        if family not in families():
            raise self.error(f"blockfamily: '{family}' is not a block family; the families are {families()}.")
        documented = self.env.domaindata.setdefault("blockref", {}).setdefault("documented", {})
        rst = []
        for type_name, cls in library_blocks().items():
            if family_of(cls) != family:
                continue
            documented[type_name] = self.env.docname
            rst += [f".. _block-{type_name}:", "", type_name, "-" * len(type_name), "",
                    f".. autoclass:: {public_path(cls, family)}", "   :members:", "   :show-inheritance:", ""]
        node = nodes.container()
        nested_parse_with_titles(self.state, StringList(rst, source=self.env.docname), node)
        return node.children


class BlockIndex(SphinxDirective):
    """``.. blockindex::``: one table of every block type, by family, with its ports."""

    def run(self) -> list[nodes.Node]:
        rows = []
        for type_name, cls in library_blocks().items():
            family = family_of(cls) or "(no family)"
            try:
                ports = declared_ports(example_block(cls))
            except Exception:  # reported where the block is documented; here the cells stay empty
                ports = []
            ins = ", ".join(f"``{p.name}``" for p in ports if p.direction == "in") or "—"
            outs = ", ".join(f"``{p.name}``" for p in ports if p.direction == "out") or "—"
            summary = (inspect.getdoc(cls) or "").split("\n")[0]
            short = family.split(".")[-1]
            page = f":doc:`{short} </blocks/{short}>`" if family.startswith(LIBRARY) else family
            rows.append((family, type_name, [f":ref:`{type_name} <block-{type_name}>`", page, ins, outs, summary]))
        table = [row for _, _, row in sorted(rows)]
        rst = rst_table(["Block", "Family", "Inputs", "Outputs", "Summary"], table, [16, 10, 12, 18, 44])
        node = nodes.container()
        self.state.nested_parse(StringList(rst, source=self.env.docname), self.content_offset, node)
        return node.children


def purge(app: Sphinx, env, docname: str) -> None:
    documented = env.domaindata.get("blockref", {}).get("documented", {})
    for type_name in [t for t, d in documented.items() if d == docname]:
        del documented[type_name]


def merge(app: Sphinx, env, docnames, other) -> None:
    env.domaindata.setdefault("blockref", {}).setdefault("documented", {}).update(
        other.domaindata.get("blockref", {}).get("documented", {})
    )


def check_coverage(app: Sphinx, env) -> None:
    """Warn for every registered block that no family page documents."""
    documented = env.domaindata.get("blockref", {}).get("documented", {})
    for type_name, cls in library_blocks().items():
        if type_name not in documented:
            family = family_of(cls) or cls.__module__
            logger.warning(
                f"blockref: block '{type_name}' ({cls.__module__}) is on no page: add a page "
                f"docs/blocks/{family.split('.')[-1]}.rst with '.. blockfamily:: {family}' to docs/blocks/index.rst"
            )


def setup(app: Sphinx) -> dict:
    app.add_directive("blockfamily", BlockFamily)
    app.add_directive("blockindex", BlockIndex)
    app.connect("autodoc-process-docstring", process_docstring, priority=400)  # before napoleon (500)
    app.connect("env-purge-doc", purge)
    app.connect("env-merge-info", merge)
    app.connect("env-check-consistency", check_coverage)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
