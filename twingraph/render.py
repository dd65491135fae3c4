"""Pictures of graphs (graphviz) and notebook displays of graphs and histories.

A block is a node whose input ports are cells on its left and output ports
cells on its right; connections run port to port, labelled with the signal's
shape and unit where that says more than "scalar". The fill tells how a block
computes (see the legend in every picture): white blocks are stateless, blue
blocks output from their state only (they break algebraic loops), amber blocks
have state and direct feedthrough. ``Input`` and ``Output`` blocks are arrows;
subsystems are clusters.

:func:`to_dot` only writes DOT text; :func:`render` and the notebook display
need the graphviz ``dot`` program.
"""

import html
from pathlib import Path

import graphviz
import networkx as nx
import numpy as np

from .block import Block
from .boundary import Input, Output
from .errors import TwinGraphError
from .graph import Graph
from .scheduler import compile_graph
from .signals import Port, Signal

FORMATS = ("svg", "png", "pdf")
FONT = "Helvetica"
STATELESS = "#ffffff"
STATE_ONLY = "#d6e6f5"  # stateful, no direct feedthrough
STATE_FEEDTHROUGH = "#fbe3b8"  # stateful with direct feedthrough
INPUT_FILL = "#dcefd8"
OUTPUT_FILL = "#f5dcd6"
CLUSTER_FILL = "#f4f4f4"
MAX_PARAMS = 3  # params shown in a block's label
DOT_MISSING = (
    "Rendering needs the graphviz 'dot' program, which is not installed. Install it with "
    "'apt-get install graphviz' (Debian/Ubuntu), 'brew install graphviz' (macOS) or "
    "'conda install graphviz', then try again."
)


def _escape(text: str) -> str:
    """Text for an HTML-like label (quotes may stay: no attribute values are built from names)."""
    return html.escape(text, quote=False)


def _fill(block: Block) -> str:
    if not block.stateful:
        return STATELESS
    return STATE_FEEDTHROUGH if block.direct_feedthrough else STATE_ONLY


def _param_text(value) -> str | None:
    """Short text for a param in a label, or None when it would not fit."""
    if isinstance(value, np.ndarray):
        return f"array{value.shape}"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (bool, int, str, tuple)):
        text = repr(value)
        return text if len(text) <= 16 else None
    return None


def _signal_text(signal: Signal | None) -> str:
    """Edge label: shape unless scalar, dtype unless float64, unit when given."""
    if signal is None:
        return ""
    parts = []
    if signal.shape not in (None, ()):
        parts.append("×".join(map(str, signal.shape)))
    if signal.dtype not in (None, "float64"):
        parts.append(signal.dtype)
    if signal.unit:
        parts.append(f"[{signal.unit}]")
    return " ".join(parts)


def _cell(text: str, port: str | None = None, rowspan: int = 1, align: str = "CENTER") -> str:
    attrs = f' PORT="{_escape(port)}"' if port else ""
    if rowspan > 1:
        attrs += f' ROWSPAN="{rowspan}"'
    return f'<TD{attrs} ALIGN="{align}"><FONT POINT-SIZE="10">{_escape(text)}</FONT></TD>'


def _block_label(block: Block, name: str) -> str:
    """HTML-like table: input ports left, name/type/params in the middle, output ports right."""
    inputs = list(block.input_signals())
    try:
        outputs = list(block.output_signals(block.input_signals()))
    except Exception:  # a block whose output ports need its inputs' signals; drawn without them
        outputs = []
    rows = max(len(inputs), len(outputs), 1)
    params = []
    for key, value in block.get_params().items():
        text = _param_text(value)
        if text is not None and len(params) < MAX_PARAMS:
            params.append(f"{key}={text}")
    kind = _escape(type(block).type_name)
    middle = f'<B>{_escape(name)}</B><BR/><FONT POINT-SIZE="9" COLOR="#555555">{kind}</FONT>'
    if params:
        middle += f'<BR/><FONT POINT-SIZE="8" COLOR="#333333">{_escape(", ".join(params))}</FONT>'
    center = f'<TD ROWSPAN="{rows}" BGCOLOR="{_fill(block)}" CELLPADDING="6">{middle}</TD>'

    def side(ports: list[str], prefix: str, row: int, align: str) -> str:
        if row < len(ports):
            span = rows - row if row == len(ports) - 1 else 1
            return _cell(ports[row], f"{prefix}_{ports[row]}", span, align)
        return ""

    table = []
    for row in range(rows):
        cells = side(inputs, "in", row, "LEFT") + (center if row == 0 else "") + side(outputs, "out", row, "RIGHT")
        table.append(f"<TR>{cells}</TR>")
    return (
        '<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="3" COLOR="#444444">'
        + "".join(table)
        + "</TABLE>>"
    )


def _boundary_label(name: str, signal: Signal | None) -> str:
    detail = _signal_text(signal)
    small = f'<BR/><FONT POINT-SIZE="9" COLOR="#444444">{_escape(detail)}</FONT>' if detail else ""
    return f"<<B>{_escape(name)}</B>{small}>"


def _feedback(graph: Graph) -> set[tuple[str, str]]:
    """Connections that close a loop back to a block added earlier: drawn from below."""
    ends = [(src.rsplit(".", 1)[0], dst.rsplit(".", 1)[0]) for src, dst in graph.connections]
    loops = nx.DiGraph(ends)
    component = {n: i for i, c in enumerate(nx.strongly_connected_components(loops)) for n in c}
    rank = {name: i for i, name in enumerate(graph.blocks)}
    return {
        connection
        for connection, (a, b) in zip(graph.connections, ends, strict=True)
        if component[a] == component[b] and rank[b] <= rank[a]
    }


class _Dot:
    """Builds the DOT text of a graph hierarchy with resolved signals where known."""

    def __init__(self, graph: Graph) -> None:
        try:
            plan = compile_graph(graph)
            self.resolved = plan.outputs
        except Exception:  # an incomplete or invalid graph still renders, with declared signals
            self.resolved = {}

    def signal(self, graph: Graph, prefix: str, name: str, port: str) -> Signal | None:
        """The signal leaving output ``name.port`` of ``graph`` (following subsystem outputs)."""
        node = graph.blocks[name]
        if isinstance(node, Graph):
            for src, dst in node.connections:
                if dst == f"{port}.u":
                    inner, inner_port = src.rsplit(".", 1)
                    return self.signal(node, f"{prefix}{name}/", inner, inner_port)
            return None
        known = self.resolved.get(prefix + name, {})
        if port in known:
            return known[port]
        try:
            return Port(node, port, "out").signal
        except Exception:  # signals that need connected inputs to be known
            return None

    def add(self, dot: graphviz.Digraph, graph: Graph, prefix: str = "") -> None:
        for name, node in graph.blocks.items():
            node_id = prefix + name
            if isinstance(node, Graph):
                with dot.subgraph(name=f"cluster_{node_id}") as cluster:
                    cluster.attr(
                        label=f"<<B>{_escape(name)}</B>>",
                        style="rounded,filled",
                        fillcolor=CLUSTER_FILL,
                        color="#888888",
                        labeljust="l",
                    )
                    self.add(cluster, node, node_id + "/")
            elif isinstance(node, Input):
                signal = self.signal(graph, prefix, name, "value")
                dot.node(node_id, _boundary_label(name, signal), shape="cds", style="filled", fillcolor=INPUT_FILL)
            elif isinstance(node, Output):
                dot.node(node_id, _boundary_label(name, None), shape="cds", style="filled", fillcolor=OUTPUT_FILL)
            else:
                dot.node(node_id, _block_label(node, name), shape="plain")
        feedback = _feedback(graph)
        for src, dst in graph.connections:
            a, pa = src.rsplit(".", 1)
            b, pb = dst.rsplit(".", 1)
            label = _signal_text(self.signal(graph, prefix, a, pa))
            tail, head = ("s", "s") if (src, dst) in feedback else ("e", "w")
            dot.edge(self.tail(graph, prefix, a, pa, tail), self.head(graph, prefix, b, pb, head), label=label or None)

    @staticmethod
    def tail(graph: Graph, prefix: str, name: str, port: str, side: str) -> str:
        """DOT edge tail ``node:port:side`` of output ``name.port``."""
        node = graph.blocks[name]
        if isinstance(node, Graph):
            return f"{prefix}{name}/{port}:{side}"  # the subsystem's Output block
        if isinstance(node, Input):
            return f"{prefix}{name}:{side}"
        return f"{prefix}{name}:out_{port}:{side}"

    @staticmethod
    def head(graph: Graph, prefix: str, name: str, port: str, side: str) -> str:
        """DOT edge head ``node:port:side`` of input ``name.port``."""
        node = graph.blocks[name]
        if isinstance(node, Graph):
            return f"{prefix}{name}/{port}:{side}"  # the subsystem's Input block
        if isinstance(node, Output):
            return f"{prefix}{name}:{side}"
        return f"{prefix}{name}:in_{port}:{side}"


def _title(graph: Graph) -> str:
    swatches = "".join(
        f'<TD BGCOLOR="{color}" BORDER="1" WIDTH="14"> </TD><TD ALIGN="LEFT">'
        f'<FONT POINT-SIZE="9">{text}</FONT></TD><TD WIDTH="8"></TD>'
        for color, text in (
            (STATELESS, "stateless"),
            (STATE_ONLY, "stateful, output from state only"),
            (STATE_FEEDTHROUGH, "stateful, direct feedthrough"),
        )
    )
    return (
        '<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="2">'
        f'<TR><TD COLSPAN="9" ALIGN="LEFT"><B>{_escape(graph.name)}</B>'
        f'<FONT POINT-SIZE="10">   dt = {graph.dt:g} s</FONT></TD></TR>'
        f"<TR>{swatches}</TR></TABLE>>"
    )


def to_dot(graph: Graph) -> str:
    """DOT source text of ``graph``; needs no graphviz program.

    Examples
    --------
    >>> from twingraph import Graph, Input, Output
    >>> g = Graph("demo", dt=0.1)
    >>> u = g.add(Input("u", shape=(2,), unit="V"))
    >>> y = g.add(Output("y"))
    >>> g.connect(u.out.value, y.inp.u)
    >>> print([line.strip() for line in to_dot(g).splitlines() if "->" in line][0])
    u:e -> y:w [label="2 [V]"]
    """
    dot = graphviz.Digraph(
        name=graph.name,
        graph_attr={
            "rankdir": "LR",
            "label": _title(graph),
            "labelloc": "t",
            "labeljust": "l",
            "fontname": FONT,
            "nodesep": "0.3",
            "ranksep": "0.5",
            "newrank": "true",
        },
        node_attr={"fontname": FONT, "fontsize": "11", "margin": "0.08,0.04"},
        edge_attr={"fontname": FONT, "fontsize": "9", "color": "#555555", "arrowsize": "0.7"},
    )
    _Dot(graph).add(dot, graph)
    return dot.source


def _pipe(graph: Graph, format: str) -> bytes:
    try:
        return graphviz.Source(to_dot(graph)).pipe(format=format)
    except graphviz.ExecutableNotFound as exc:
        raise TwinGraphError(DOT_MISSING) from exc


def render(graph: Graph, path, format: str | None = None) -> Path:
    """Draw ``graph`` to ``path`` as SVG, PNG or PDF (default: from the file suffix); return the path."""
    path = Path(path)
    format = (format or path.suffix.lstrip(".")).lower()
    if format not in FORMATS:
        raise TwinGraphError(
            f"The 'format' of Graph.render must be one of {FORMATS} (or a file suffix naming one). "
            f"Got {format!r} for '{path}' instead."
        )
    path.write_bytes(_pipe(graph, format))
    return path


def svg(graph: Graph) -> str | None:
    """SVG text of ``graph`` for notebooks; None when the ``dot`` program is missing."""
    try:
        return _pipe(graph, "svg").decode("utf-8")
    except TwinGraphError:
        return None


def history_html(history, rows: int = 5, columns: int = 12) -> str:
    """A notebook table of the last ``rows`` ticks of a History (at most ``columns`` columns)."""
    frame = history.to_pandas(last=rows)
    table = frame.to_html(max_rows=2 * rows, max_cols=columns, float_format=lambda x: f"{x:.6g}")
    return f"<p>{_escape(repr(history))}; last ticks:</p>{table}"
