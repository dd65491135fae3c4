"""Export a twin's graph file as an FMI 2.0 co-simulation FMU that any FMI tool can run.

::

    twingraph export-fmu twin.json -o twin.fmu

or :func:`export_fmu` from Python. The FMU is built with pythonfmu: it holds
the graph file (and its ``.npz`` sidecar) in ``resources/`` and the slave
``blocks/fmi/slaves/twingraph_twin.py``, which runs the graph with
:class:`twingraph.Simulator`. pythonfmu's binary runs the slave in Python:
the interpreter of the process that loads the FMU when that is Python (fmpy),
else the Python installation it finds. That Python must have twingraph, and
the block packages the graph uses, installed.
"""

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import twingraph as tg
from twingraph import TwinGraphError
from twingraph._optional import require
from twingraph.serialize import local_file

from .examples import SLAVES

SLAVE = SLAVES / "twingraph_twin.py"  # the pythonfmu slave that runs the graph
GRAPH = "twin.json"  # the graph file's name inside the FMU's resources/ (the slave reads it)


def export_fmu(graph_path: str | PathLike, out_path: str | PathLike) -> Path:
    """Build the co-simulation FMU of the graph file ``graph_path`` at ``out_path``; return its path.

    The FMU's inputs are the graph's top-level ``Input`` blocks and its
    outputs its ``Output`` blocks, one scalar variable per element, named
    like history columns (``u``, ``u[0]``, ``u[0,1]``) and carrying their
    units; float signals are Real variables, ints Integer, bools Boolean.
    The default experiment's step size is the graph's ``dt``.

    Parameters
    ----------
    graph_path : path
        A graph file saved by :meth:`Graph.save <twingraph.Graph.save>`,
        possibly with a simulator state (``Graph.save(path, state=...)``,
        batch 1): the FMU then starts from that state.
    out_path : path
        The ``.fmu`` file to write.

    Returns
    -------
    Path
        ``out_path``.

    Raises
    ------
    TwinGraphError
        When the graph does not load (:class:`~twingraph.LoadError`), holds a
        saved state of more than one asset, or names files that the FMU does
        not carry (an ``FMU`` block's ``path``).

    Notes
    -----
    ``doStep(t, h)`` with ``h`` a multiple ``n`` of ``dt`` runs ``n`` ticks
    of :meth:`Simulator.step <twingraph.Simulator.step>` with the inputs
    set before it held, and sets the outputs to those of the last tick: after
    a step of one ``dt``, the outputs are exactly the Simulator's outputs for
    the inputs given at its start. Before the first step the outputs are
    zero, and the twin's clock starts at 0 whatever the experiment's start
    time. A step that is not a multiple of ``dt`` fails (``fmi2Error``).
    Running the FMU imports twingraph and the block packages its graph
    needs, and runs the graph's blocks.
    """
    builder = require("pythonfmu.builder", "fmi", "exporting FMUs").FmuBuilder
    graph_path, out_path = Path(graph_path), Path(out_path)
    tg.load(graph_path)  # the graph validates where it is
    state = tg.load_state(graph_path)
    if state is not None and state["batch"] != 1:
        raise TwinGraphError(
            f"Cannot export '{graph_path}': its saved state is of {state['batch']} assets; an FMU is one asset. "
            f"Save the graph with the state of a batch of 1."
        )
    with tempfile.TemporaryDirectory(prefix="twingraph-export-") as folder:
        resources = Path(folder)
        shutil.copyfile(graph_path, resources / GRAPH)
        arrays = json.loads(graph_path.read_text(encoding="utf-8")).get("arrays")
        if arrays is not None:
            (resources / arrays).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(local_file(graph_path.parent, arrays), resources / arrays)
        try:
            tg.load(resources / GRAPH)
        except TwinGraphError as exc:
            raise TwinGraphError(
                f"Cannot export '{graph_path}': the graph names files other than its .npz sidecar, which the FMU "
                f"does not carry: {exc}"
            ) from exc
        added = str(SLAVE.parent) not in sys.path  # the builder imports the slave from its folder
        try:
            return Path(builder.build_FMU(SLAVE, dest=out_path, project_files=sorted(resources.iterdir())))
        finally:
            if added and str(SLAVE.parent) in sys.path:
                sys.path.remove(str(SLAVE.parent))


def command(argv: Sequence[str]) -> str:
    """``twingraph export-fmu GRAPH -o OUT``: export the graph file as a co-simulation FMU; return the message."""
    parser = argparse.ArgumentParser(
        prog="twingraph export-fmu",
        description="Export a graph file as an FMI 2.0 co-simulation FMU (built with pythonfmu). The FMU runs "
        "where its Python has twingraph installed.",
    )
    parser.add_argument("graph", help="graph file (JSON) saved by Graph.save")
    parser.add_argument("-o", "--output", required=True, help="FMU file to write, e.g. twin.fmu")
    args = parser.parse_args(argv)
    return f"wrote {export_fmu(args.graph, args.output)}"
