"""The ``twingraph`` command: check, draw, run and describe saved graph files.

::

    twingraph validate g.json
    twingraph render g.json -o g.svg
    twingraph run g.json --inputs data.csv --out history.csv [--steps N] [--batch B] [--trust FILE ...]
    twingraph info g.json
    twingraph serve g.json --source URL --sink URL --assets a,b,c --checkpoint DIR

Installed packages add subcommands through the entry-point group
:data:`COMMANDS` (the ``blocks`` library adds ``twingraph export-fmu``); the
engine names none of them and imports one only when its subcommand runs.

Input CSV files have a ``time`` column (and an ``asset`` column for a batch of
several assets) and one column per ``Input`` element, named like history
columns: ``u`` for a scalar, ``u[0]``, ``u[1]`` for a vector. Errors print one
message to stderr and exit with status 1.

``serve`` runs the twin as a service (:class:`twingraph.streams.TwinService`)
until its source ends or SIGTERM/SIGINT arrives; either way it checkpoints,
prints its counters and exits with status 0. Started again on the same
checkpoint folder, it resumes where it stopped.
"""

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

import numpy as np
import pandas as pd

from . import __version__
from .boundary import Output
from .errors import TwinGraphError
from .graph import Graph
from .scheduler import compile_graph
from .serialize import load, load_state
from .simulator import Simulator
from .trust import trust_file

COMMANDS = "twingraph.commands"  # entry points: name -> run(argv: list[str]) -> str, the message to print
BUILT_IN = ("validate", "render", "run", "info", "serve")  # subcommands that no package can replace


def _subsystems(graph: Graph) -> int:
    return sum(1 + _subsystems(node) for node in graph.blocks.values() if isinstance(node, Graph))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _short(value) -> str:
    """One-line text of a param value, at most 40 characters."""
    if isinstance(value, np.ndarray):
        return f"array{value.shape}"
    if isinstance(value, pd.DataFrame):
        return f"DataFrame({value.shape[0]} rows: {', '.join(map(str, value.columns))})"
    text = " ".join(repr(value).split())
    return text if len(text) <= 40 else text[:39] + "…"


def _validate(args: argparse.Namespace) -> str:
    graph = load(args.graph)
    plan = compile_graph(graph)
    outputs = [name for name, node in graph.blocks.items() if isinstance(node, Output)]
    return (
        f"ok: graph '{graph.name}' (dt = {graph.dt:g} s): {_count(len(plan.blocks), 'block')}, "
        f"{_count(_subsystems(graph), 'subsystem')}, {_count(len(plan.sources), 'connection')}; "
        f"inputs {sorted(plan.feeds)}, outputs {outputs}"
    )


def _render(args: argparse.Namespace) -> str:
    graph = load(args.graph, validate=False)
    path = graph.render(args.output, format=args.format)
    return f"wrote {path}"


def _read_inputs(path: str) -> pd.DataFrame:
    frame = pd.read_csv(path)
    if "time" not in frame.columns:
        raise TwinGraphError(f"The inputs file '{path}' needs a 'time' column. Its columns are {list(frame.columns)}.")
    return frame.set_index(["time", "asset"] if "asset" in frame.columns else "time")


def _run(args: argparse.Namespace) -> str:
    graph = load(args.graph)
    frame = None if args.inputs is None else _read_inputs(args.inputs)
    state = None if args.no_state else load_state(args.graph)
    batch = args.batch
    if batch is None and state is not None:
        batch = state["batch"]
    if batch is None and frame is not None and isinstance(frame.index, pd.MultiIndex):
        batch = frame.index.get_level_values("asset").nunique()
    for path in args.trust or ():  # native code the graph runs (an FMU): trusted here, never by the graph file
        trust_file(path)
    sim = Simulator(graph, batch=batch or 1, progress=False)
    if state is not None:
        sim.restore(state)
    history = sim.run(inputs=frame, steps=args.steps)
    history.to_csv(args.out)
    start = "the saved state" if state is not None else "reset"
    return f"ran {len(history)} ticks of '{graph.name}' (batch {sim.batch}, from {start}); wrote {args.out}"


def _info(args: argparse.Namespace) -> str:
    graph = load(args.graph)
    plan = compile_graph(graph)
    lines = [
        f"graph '{graph.name}': dt = {graph.dt:g} s, {_count(len(plan.blocks), 'block')}, "
        f"{_count(_subsystems(graph), 'subsystem')}",
        f"inputs: {', '.join(f'{n} {s.describe()}' for n, s in plan.feeds.items()) or 'none'}",
        "",
        "blocks, in execution order:",
    ]
    for i, name in enumerate(plan.order, 1):
        block = plan.blocks[name]
        params = ", ".join(f"{k}={_short(v)}" for k, v in block.get_params().items())
        lines.append(f"{i:3d}. {name} [{type(block).type_name}] {params}".rstrip())
        for port, signal in plan.inputs[name].items():
            src = plan.sources.get((name, port))
            source = f"  <- {src[0]}.{src[1]}" if src else ""
            lines.append(f"       in  {port}: {signal.describe()}{source}")
        for port, signal in plan.outputs[name].items():
            lines.append(f"       out {port}: {signal.describe()}")
    return "\n".join(lines)


def _names(text: str, what: str) -> list[str]:
    """Comma-separated names, or ``@file`` with one name a line."""
    if text.startswith("@"):
        with open(text[1:], encoding="utf-8") as file:
            names = [line.strip() for line in file if line.strip()]
    else:
        names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise TwinGraphError(f"--{what} names nothing. Got {text!r}.")
    return names


def _fills(items: list[str]) -> dict[str, str]:
    fills = {}
    for item in (part for text in items for part in text.split(",") if part):
        port, sep, choice = item.partition("=")
        if not sep:
            raise TwinGraphError(f"--fill takes PORT=hold or PORT=nan. Got {item!r}.")
        fills[port.strip()] = choice.strip()
    return fills


def _serve(args: argparse.Namespace) -> str:
    from .streams import TwinService, open_sink, open_source

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    options = {}
    if args.mapping is not None:
        with open(args.mapping, encoding="utf-8") as file:
            options["mapping"] = json.load(file)
    graph = load(args.graph)
    service = TwinService(
        graph,
        open_source(args.source, **options),
        [open_sink(url) for url in args.sink],
        assets=_names(args.assets, "assets"),
        checkpoint_dir=args.checkpoint,
        checkpoint_every=args.checkpoint_every,
        outputs=None if args.outputs is None else _names(args.outputs, "outputs"),
        fill=_fills(args.fill),
        clock=args.clock,
        lateness=args.lateness,
        log_every=args.log_every,
        early=args.early,
    )
    try:
        counters = service.run(max_ticks=args.max_ticks)
    finally:
        service.close()
    return f"served '{graph.name}' to tick {service.simulator.tick}; counters {json.dumps(counters.as_dict())}"


def _plugin_commands() -> dict:
    """The subcommands that installed packages declare under :data:`COMMANDS`, by name, not yet imported."""
    return {entry.name: entry for entry in entry_points(group=COMMANDS) if entry.name not in BUILT_IN}


def _parser(plugins: dict) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="twingraph", description="Check, draw, run and describe twingraph graph files (JSON)."
    )
    parser.add_argument("--version", action="version", version=f"twingraph {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser("validate", help="load a graph file and check the graph")
    validate.set_defaults(handler=_validate)

    render = commands.add_parser("render", help="draw a graph file as SVG, PNG or PDF (needs graphviz)")
    render.add_argument("-o", "--output", required=True, help="picture file, e.g. g.svg")
    render.add_argument("--format", choices=["svg", "png", "pdf"], help="default: from the output suffix")
    render.set_defaults(handler=_render)

    run = commands.add_parser("run", help="simulate a graph file over recorded inputs, write the history CSV")
    run.add_argument("--inputs", help="CSV with a 'time' column (and 'asset') and one column per input element")
    run.add_argument("--out", required=True, help="history CSV to write")
    run.add_argument("--steps", type=int, help="ticks to run (default: the rows of --inputs)")
    run.add_argument("--batch", type=int, help="assets per tick (default: from the saved state or the 'asset' column)")
    run.add_argument("--no-state", action="store_true", help="start from reset even if the file holds a saved state")
    run.add_argument("--trust", action="append", metavar="FILE",
                     help="let the graph run the native code of FILE (an .fmu); repeat for several files")
    run.set_defaults(handler=_run)

    info = commands.add_parser("info", help="list blocks, ports with their signals, and the execution order")
    info.set_defaults(handler=_info)

    serve = commands.add_parser("serve", help="run the twin as a live service: records in, results out, checkpoints")
    serve.add_argument(
        "--source",
        required=True,
        help="data.csv[?speed=X], data.parquet, mqtt://HOST:PORT/TEMPLATE or opc.tcp://HOST:PORT",
    )
    serve.add_argument("--sink", action="append", default=[], help="results: .csv, .parquet or mqtt:// (repeatable)")
    serve.add_argument("--assets", required=True, help="asset names in batch order: a,b,c or @file (one a line)")
    serve.add_argument("--checkpoint", help="checkpoint folder: resume from it, write to it")
    serve.add_argument("--checkpoint-every", type=int, default=100, help="ticks between checkpoints (default 100)")
    serve.add_argument(
        "--outputs", help="ports to publish: block.port or Output names, comma-separated (default: every Output block)"
    )
    serve.add_argument(
        "--clock",
        choices=["source", "wall"],
        default="source",
        help="close ticks by the records' times (default) or by the wall clock",
    )
    serve.add_argument("--fill", action="append", default=[], help="PORT=hold or PORT=nan for ticks without a value")
    serve.add_argument("--early", action="store_true",
                       help="step a tick once every asset has every input for it (no wait for the next tick)")
    serve.add_argument("--lateness", type=float, default=0.0, help="how long a tick waits for late values [s]")
    serve.add_argument("--log-every", type=float, default=10.0, help="seconds between counter log lines")
    serve.add_argument("--mapping", help="JSON file of OPC UA node ids to asset and port")
    serve.add_argument("--max-ticks", type=int, help="stop after this many ticks")
    serve.set_defaults(handler=_serve)

    for command in (validate, render, run, info, serve):
        command.add_argument("graph", help="graph file (JSON) saved by Graph.save")
    for name, entry in plugins.items():  # listed in the help; main() hands them their arguments
        commands.add_parser(name, help=f"from {entry.value.split(':')[0]}; see twingraph {name} --help")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    plugins = _plugin_commands()
    args = None if argv and argv[0] in plugins else _parser(plugins).parse_args(argv)
    command = argv[0] if args is None else args.command
    try:
        print(plugins[command].load()(argv[1:]) if args is None else args.handler(args))
    except (TwinGraphError, OSError, ValueError, ImportError) as exc:  # bad files, data or setup: no traceback
        print(f"twingraph {command}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
