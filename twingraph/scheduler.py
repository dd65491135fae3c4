"""Compilation of a graph into a flat, ordered, fully typed plan.

Three steps, done once before a simulation:

1. **Flatten** subsystems: a subsystem's ``Input``/``Output`` blocks are
   aliases, so every connection ends up between two real blocks, named
   ``"sub/block"``.
2. **Infer** unknown signal fields by propagating known ones along connections
   until nothing changes, checking every connection on the way.
3. **Order** blocks for phase 1: block B depends on block A when A feeds B and B
   has direct feedthrough. A cycle in that dependency graph is an algebraic loop.
"""

from dataclasses import dataclass

import networkx as nx

from . import units
from .block import Block
from .boundary import Input, Output
from .errors import ParamError, TwinGraphError, ValidationError, WiringError
from .graph import Graph
from .signals import Signal

PortKey = tuple[str, str]  # (flat block name, port name)


@dataclass(frozen=True)
class Plan:
    """A compiled graph: flat blocks, their sources, resolved signals and phase-1 order."""

    name: str
    dt: float
    blocks: dict[str, Block]
    sources: dict[PortKey, PortKey]
    inputs: dict[str, dict[str, Signal]]
    outputs: dict[str, dict[str, Signal]]
    order: list[str]

    @property
    def feeds(self) -> dict[str, Signal]:
        """Top-level ``Input`` blocks (fed from outside) and their signals."""
        return {n: self.outputs[n]["value"] for n, b in self.blocks.items() if isinstance(b, Input)}


class _Flattener:
    """Collect the real blocks and connections of a graph hierarchy."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        self.blocks: dict[str, Block] = {}
        self.edges: list[tuple[object, PortKey]] = []  # (source ref, destination port)
        self.aliases: dict[str, object] = {}  # boundary name -> source ref

    def collect(self, graph: Graph, prefix: str = "", top: bool = True) -> None:
        for name, node in graph.blocks.items():
            flat = prefix + name
            if isinstance(node, Graph):
                if node.dt != graph.dt:
                    self.problems.append(
                        f"Subsystem '{flat}' has dt={node.dt} but its parent '{graph.name}' has dt={graph.dt}."
                    )
                self.collect(node, flat + "/", top=False)
            elif top or not isinstance(node, (Input, Output)):
                self.blocks[flat] = node
        nodes = graph.blocks
        for src_text, dst_text in graph.connections:
            a, pa = src_text.rsplit(".", 1)
            b, pb = dst_text.rsplit(".", 1)
            if isinstance(nodes[a], Graph):
                src = ("alias", f"{prefix}{a}/{pa}")
            elif not top and isinstance(nodes[a], Input):
                src = ("alias", prefix + a)
            else:
                src = ("port", (prefix + a, pa))
            if isinstance(nodes[b], Graph):
                self.aliases[f"{prefix}{b}/{pb}"] = src
            elif not top and isinstance(nodes[b], Output):
                self.aliases[prefix + b] = src
            else:
                self.edges.append((src, (prefix + b, pb)))

    def resolve(self, ref) -> PortKey | None:
        seen = set()
        while ref[0] == "alias":
            name = ref[1]
            if name in seen or name not in self.aliases:
                block, _, port = name.rpartition("/")
                self.problems.append(f"Port '{port}' of subsystem '{block}' is not connected.")
                return None
            seen.add(name)
            ref = self.aliases[name]
        return ref[1]


def _infer(blocks, sources, problems):
    """Propagate signals along connections until fixed; record mismatches as problems."""
    inputs = {n: b.input_signals() for n, b in blocks.items()}
    feeding: dict[str, list[tuple[str, PortKey]]] = {n: [] for n in blocks}
    for (dst, port), src in sources.items():
        feeding[dst].append((port, src))
    outputs: dict[str, dict[str, Signal]] = {}
    changed = True
    while changed:
        changed = False
        for name, block in blocks.items():
            for port, (a, p) in feeding[name]:
                if a in outputs:
                    merged = inputs[name][port].merge(outputs[a][p])
                    changed |= merged != inputs[name][port]
                    inputs[name][port] = merged
            try:
                new = block.output_signals(inputs[name])
            except WiringError as exc:
                problems.append(str(exc))
                return inputs, outputs
            changed |= new != outputs.get(name)
            outputs[name] = new
    bad_units = set()  # each bad unit text once, at the first port that declares it
    for name, block in blocks.items():
        for port, signal in [*block.input_signals().items(), *outputs[name].items()]:
            bad_unit = None if signal.unit in bad_units else units.problem(signal.unit, f"{name}.{port}")
            if bad_unit:
                bad_units.add(signal.unit)
                problems.append(bad_unit)
    for (dst, port), (a, p) in sources.items():
        declared = blocks[dst].input_signals()[port]
        reason = outputs[a][p].mismatch(declared)
        if reason:
            problems.append(
                f"Cannot connect '{a}.{p}' ({outputs[a][p].describe()}) to '{dst}.{port}' "
                f"(expects {declared.describe()}): {reason}."
            )
    for name, signals in outputs.items():
        for port, signal in signals.items():
            if not signal.resolved:
                problems.append(
                    f"Cannot infer the shape or dtype of '{name}.{port}' ({signal.describe()}): "
                    f"connect its inputs or give the shape explicitly."
                )
    return inputs, outputs


def _order(blocks, sources, problems) -> list[str]:
    deps = nx.DiGraph()
    deps.add_nodes_from(blocks)
    for (dst, _), (src, _) in sources.items():
        if blocks[dst].direct_feedthrough:
            deps.add_edge(src, dst)
    loops = [
        c
        for c in nx.strongly_connected_components(deps)
        if len(c) > 1 or any(deps.has_edge(n, n) for n in c)
    ]
    for component in loops:
        cycle = [u for u, _ in nx.find_cycle(deps.subgraph(component))]
        path = " -> ".join(f"'{n}'" for n in cycle + cycle[:1])
        problems.append(
            f"Algebraic loop through blocks {path}: every block in it has direct feedthrough. "
            f"Break it with a stateful block (UnitDelay, Integrator, an ODE)."
        )
    if loops:
        return []
    rank = {n: i for i, n in enumerate(blocks)}
    return list(nx.lexicographical_topological_sort(deps, key=rank.__getitem__))


def _check_params(blocks: dict[str, Block], graph: Graph) -> None:
    """Call every block's ``check_params``; raise one ParamError listing every bad param."""
    problems = []
    for block in blocks.values():
        try:
            block.check_params()
        except TwinGraphError as exc:
            problems.append(str(exc))
    if problems:
        listing = "\n".join(f"  - {p}" for p in problems)
        raise ParamError(f"Graph '{graph.name}' has invalid params:\n{listing}")


def compile_graph(graph: Graph) -> Plan:
    """Check params, flatten, type-check and order ``graph``.

    Raises ParamError listing every invalid param, else ValidationError listing
    every wiring problem.
    """
    problems: list[str] = []
    flat = _Flattener(problems)
    flat.collect(graph)
    _check_params(flat.blocks, graph)
    sources: dict[PortKey, PortKey] = {}
    for ref, dst in flat.edges:
        src = flat.resolve(ref)
        if src is not None:
            sources[dst] = src
    for name, block in flat.blocks.items():
        if isinstance(block, Input):
            continue
        for port in block.input_signals():
            if (name, port) not in sources:
                problems.append(f"Input '{name}.{port}' is not connected.")
    if not problems:
        inputs, outputs = _infer(flat.blocks, sources, problems)
    if not problems:
        order = _order(flat.blocks, sources, problems)
    if problems:
        listing = "\n".join(f"  - {p}" for p in problems)
        raise ValidationError(f"Graph '{graph.name}' is not valid:\n{listing}")
    return Plan(graph.name, graph.dt, flat.blocks, sources, inputs, outputs, order)
