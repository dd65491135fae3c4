"""The Graph: blocks wired output-to-input, with a fixed tick ``dt``.

A Graph can itself be added to another graph as a subsystem: its ``Input``
blocks become the subsystem's input ports and its ``Output`` blocks its output
ports. Simulation flattens the hierarchy, so a subsystem costs nothing per tick.
"""

from typing import Union

from . import units
from .block import Block, check_name
from .boundary import Input, Output
from .errors import WiringError, check_number
from .signals import Port, PortNamespace, Signal

Node = Union[Block, "Graph"]
PortRef = Port | str


class Graph:
    """A block diagram.

    Parameters
    ----------
    name : str
        Graph name; the block name when used as a subsystem.
    dt : float
        Tick length [s]; every block steps once per tick.

    Examples
    --------
    >>> from twingraph import Graph, Input, Output
    >>> g = Graph("demo", dt=0.1)
    >>> u = g.add(Input("u"))
    >>> y = g.add(Output("y"))
    >>> g.connect(u.out.value, "y.u")
    >>> g.connections
    [('u.value', 'y.u')]
    """

    def __init__(self, name: str = "graph", dt: float = 1.0) -> None:
        self.name = check_name(name, "graph")
        check_number(self, "dt", 0.0, low_open=True, unit="s", value=dt)
        self.dt = float(dt)
        self._nodes: dict[str, Node] = {}
        self._sources: dict[tuple[str, str], tuple[str, str]] = {}

    @property
    def blocks(self) -> dict[str, Node]:
        """The blocks and subsystems of this graph by name, in insertion order."""
        return dict(self._nodes)

    @property
    def connections(self) -> list[tuple[str, str]]:
        """``("block.output", "block.input")`` pairs in the order they were made."""
        return [(f"{a}.{p}", f"{b}.{q}") for (b, q), (a, p) in self._sources.items()]

    def add(self, node: Node) -> Node:
        """Add a block or a subsystem graph and return it (named after its type if unnamed)."""
        if not isinstance(node, (Block, Graph)):
            raise WiringError(f"Graph '{self.name}' can only add blocks and graphs. Got {node!r} instead.")
        if node is self:
            raise WiringError(f"Graph '{self.name}' cannot contain itself.")
        if node.name is None:
            base = type(node).__name__.lower()
            node.name = next(n for n in (base, *(f"{base}_{i}" for i in range(1, 10**6))) if n not in self._nodes)
        if node.name in self._nodes:
            raise WiringError(f"Graph '{self.name}' already has a block named '{node.name}'.")
        self._nodes[node.name] = node
        return node

    def connect(self, src: PortRef, dst: PortRef) -> None:
        """Wire output ``src`` to input ``dst``: port objects (``a.out.y``) or ``"block.port"`` strings.

        An input takes exactly one source; an output may feed many inputs. Known
        shapes and dtypes must be equal, known units must parse and mean the same
        (a different scale, ``mm`` into ``m``, is refused with the Gain to insert).
        """
        src_port = self._port(src, "out")
        dst_port = self._port(dst, "in")
        key = (dst_port.owner.name, dst_port.name)
        if key in self._sources:
            a, p = self._sources[key]
            raise WiringError(f"Input '{dst_port.path}' is already connected to '{a}.{p}'.")
        src_sig, dst_sig = src_port.signal, dst_port.signal
        for port, signal in ((src_port, src_sig), (dst_port, dst_sig)):
            bad_unit = units.problem(signal.unit, port.path)
            if bad_unit:
                raise WiringError(bad_unit)
        reason = src_sig.mismatch(dst_sig)
        if reason:
            raise WiringError(
                f"Cannot connect '{src_port.path}' ({src_sig.describe()}) to '{dst_port.path}' "
                f"(expects {dst_sig.describe()}): {reason}."
            )
        self._sources[key] = (src_port.owner.name, src_port.name)

    def _port(self, ref: PortRef, direction: str) -> Port:
        kind = "output" if direction == "out" else "input"
        if isinstance(ref, str):
            block, sep, port = ref.rpartition(".")
            if not sep or block not in self._nodes:
                raise WiringError(
                    f"Graph '{self.name}' has no {kind} '{ref}': write 'block.port' with a block from "
                    f"{list(self._nodes)}."
                )
            owner = self._nodes[block]
            return (owner.out if direction == "out" else owner.inp)[port]
        if not isinstance(ref, Port):
            raise WiringError(f"Expected a port or a 'block.port' string. Got {ref!r} instead.")
        if self._nodes.get(ref.owner.name) is not ref.owner:
            raise WiringError(f"Block '{ref.owner.name}' is not in graph '{self.name}'; add it first.")
        if ref.direction != direction:
            raise WiringError(f"'{ref.path}' is not an {kind} port.")
        return ref

    @property
    def inp(self) -> PortNamespace:
        """The subsystem's input ports (its ``Input`` blocks)."""
        return PortNamespace(self, "in")

    @property
    def out(self) -> PortNamespace:
        """The subsystem's output ports (its ``Output`` blocks)."""
        return PortNamespace(self, "out")

    def input_signals(self) -> dict[str, Signal]:
        """Signals of the subsystem's input ports, from its ``Input`` blocks."""
        return {
            n: b.output_signals({})["value"] for n, b in self._nodes.items() if isinstance(b, Input)
        }

    def output_signals(self, inputs: dict[str, Signal] | None = None) -> dict[str, Signal]:
        """Signals of the subsystem's output ports: what feeds each ``Output`` block, where known."""
        signals = {}
        for name, block in self._nodes.items():
            if isinstance(block, Output):
                declared = block.input_signals()["u"]
                source = self._sources.get((name, "u"))
                if source is not None:
                    declared = declared.merge(self._port(f"{source[0]}.{source[1]}", "out").signal)
                signals[name] = declared
        return signals

    def validate(self) -> None:
        """Check the whole graph; raise ValidationError listing every problem found.

        Checks: every input connected, shapes/dtypes/units consistent after
        inference, no algebraic loop (a cycle of direct-feedthrough blocks).
        """
        from .scheduler import compile_graph  # the scheduler builds on Graph, so import late

        compile_graph(self)

    def to_dict(self, state: dict | None = None) -> dict:
        """This graph as a graph file document, arrays inline; see :mod:`twingraph.serialize`."""
        from .serialize import to_dict

        return to_dict(self, state)

    def save(self, path, state: dict | None = None) -> None:
        """Write this graph to a JSON file (large arrays to ``.npz`` beside it), with an optional
        :meth:`Simulator.snapshot() <twingraph.Simulator.snapshot>` as ``state``."""
        from .serialize import save

        save(self, path, state)

    def to_dot(self) -> str:
        """DOT source text of this graph (needs no graphviz program)."""
        from .render import to_dot

        return to_dot(self)

    def render(self, path, format: str | None = None):
        """Draw this graph to ``path`` as SVG, PNG or PDF (needs graphviz ``dot``); return the path."""
        from .render import render

        return render(self, path, format)

    def _repr_svg_(self) -> str | None:
        """Notebook display: the picture as SVG (None without the graphviz ``dot`` program)."""
        from .render import svg

        return svg(self)

    def __repr__(self) -> str:
        return f"Graph({self.name!r}, dt={self.dt}, blocks={list(self._nodes)})"

