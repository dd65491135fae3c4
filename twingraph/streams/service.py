"""The twin service: a graph stepped over a fleet, fed by a source, publishing to sinks, checkpointed.

Each pass of :meth:`TwinService.run`'s loop polls the source, appends the
records to the journal, then acknowledges them (:meth:`Source.commit`), hands
them to the :class:`~twingraph.streams.assembly.TickAssembler`, and steps every
tick the clock closes: with ``clock="source"`` the newest record time, with
``clock="wall"`` the time since start on the wall clock. Each stepped tick's
outputs go to every sink.

Restarts: with a ``checkpoint_dir``, the service resumes from the newest valid
checkpoint and replays the journal after it (records a crash would otherwise
lose), then reopens the source at the position it had reached. Outputs are
written at least once: ticks stepped again after a crash are written again.
The assets are fixed while it runs; to add assets, restart on the same
checkpoint folder with more names (assets are matched by name: the ones in the
checkpoint continue where they were, the new ones start from the graph's
initial state; see :func:`merge_snapshot`).
"""

import logging
import signal
import threading
import time as _time
from collections.abc import Mapping, Sequence
from os import PathLike
from typing import Any

import numpy as np

from ..boundary import Output
from ..errors import TwinGraphError, quote
from ..graph import Graph
from ..serialize import load
from ..simulator import Simulator
from .assembly import LOG_FIRST, MAX_BYTES, TickAssembler
from .checkpoint import CheckpointStore
from .records import Counters, Record, Sink, Source

logger = logging.getLogger("twingraph.streams")

CLOCKS = ("source", "wall")
POLL_WAIT = 0.05  # longest wait in one poll [s]: how soon stop() and signals are noticed


def default_outputs(simulator: Simulator) -> dict[str, str]:
    """Every top-level ``Output`` block of the simulated graph, by name, with the port that feeds it."""
    plan = simulator.plan
    return {
        name: "{}.{}".format(*plan.sources[(name, "u")])
        for name, block in plan.blocks.items()
        if isinstance(block, Output) and (name, "u") in plan.sources
    }


def _batched(snapshot: Any, one: Any, other: Any, rows: list[int | None], where: str) -> Any:
    """``snapshot``'s state laid out for the new fleet, where ``one`` and ``other`` are fresh states of two sizes."""
    if isinstance(one, dict):
        return {k: _batched(snapshot[k], one[k], other[k], rows, f"{where}.{k}") for k in one}
    if isinstance(one, (list, tuple)) and len(one) == len(other) == len(snapshot):
        return type(one)(
            _batched(s, a, b, rows, f"{where}[{i}]") for i, (s, a, b) in enumerate(zip(snapshot, one, other))
        )
    if isinstance(one, np.ndarray) and one.shape != other.shape:
        axes = [d for d in range(one.ndim) if one.shape[d] != other.shape[d]] if one.ndim == other.ndim else []
        if len(axes) != 1 or np.shape(snapshot) != one.shape:
            raise TwinGraphError(f"Cannot resize the fleet: the state {where} does not have one asset axis.")
        fresh = np.moveaxis(np.array(other), axes[0], 0)
        saved = np.moveaxis(np.asarray(snapshot), axes[0], 0)
        for new, old in enumerate(rows):
            if old is not None:
                fresh[new] = saved[old]
        return np.moveaxis(fresh, 0, axes[0])
    return snapshot


def merge_snapshot(graph: Graph, snapshot: Mapping[str, Any], old: Sequence[str], new: Sequence[str]) -> dict:
    """A snapshot for the fleet ``new`` from one of the fleet ``old``: shared assets keep their state.

    Per-asset state entries are found by comparing fresh snapshots of the two
    fleet sizes: an array with one axis that changes with the fleet holds one
    row per asset on that axis; every other entry is shared and kept as saved.
    """
    fresh = [Simulator(graph, batch=n, log=None).snapshot() for n in (len(old), len(new))]
    if fresh[0]["blocks"].keys() != snapshot["blocks"].keys():
        raise TwinGraphError("The checkpoint does not belong to this graph: its blocks differ.")
    rows = [old.index(a) if a in old else None for a in new]
    blocks = {
        name: _batched(snapshot["blocks"][name], fresh[0]["blocks"][name], fresh[1]["blocks"][name], rows, name)
        for name in snapshot["blocks"]
    }
    return {**fresh[1], "tick": snapshot["tick"], "blocks": blocks}


class TwinService:
    """Runs a twin over a fleet of assets, fed by a source, results to sinks, surviving restarts.

    Parameters
    ----------
    graph : Graph or path
        The twin (or a graph file); its ``Input`` blocks are fed from the source.
    source : Source
        Where the records come from.
    sinks : sequence of Sink
        Where each tick's outputs go.
    assets : sequence of str
        Asset names, in batch order.
    checkpoint_dir : path, optional
        Folder of checkpoints and journal; ``None`` keeps nothing.
    checkpoint_every : int
        Ticks between checkpoints.
    outputs : sequence of str, optional
        Ports sent to the sinks: ``"block.port"`` or the name of an ``Output``
        block; default every top-level ``Output`` block, named by it.
    fill : dict of str to str, optional
        Per Input, ``"hold"`` or ``"nan"`` for a tick without a value.
    clock : "source" or "wall"
        What closes ticks: the records' times, or the wall clock (records
        without a time are stamped with their arrival).
    lateness : float
        How long [s] after its end a tick waits for values.
    log_every : float
        Seconds between log lines of the counters.
    max_bytes : int
        Largest payload [bytes].
    early : bool
        Step a tick as soon as every asset has a value of every Input for it,
        instead of waiting for the clock to pass its end (lower latency when
        every sensor reports every tick); later values for it count ``late``.

    Examples
    --------
    >>> import pandas as pd
    >>> from twingraph import Graph, Input, Output
    >>> from twingraph.streams import MemorySink, ReplaySource
    >>> g = Graph("echo", dt=1.0)
    >>> g.connect(g.add(Input("u")).out.value, g.add(Output("y")).inp.u)
    >>> data = pd.DataFrame({"time": [0.0, 0.0, 1.0], "asset": ["a", "b", "a"], "u": [1.0, 2.0, 3.0]})
    >>> sink = MemorySink()
    >>> service = TwinService(g, ReplaySource(data), [sink], assets=["a", "b"])
    >>> service.run().ticks, sink.arrays()["y"].tolist()
    (2, [[1.0, 2.0], [3.0, nan]])
    """

    def __init__(
        self,
        graph: Graph | str | PathLike,
        source: Source,
        sinks: Sequence[Sink] = (),
        assets: Sequence[str] | None = None,
        checkpoint_dir: str | PathLike | None = None,
        checkpoint_every: int = 100,
        outputs: Sequence[str] | None = None,
        fill: Mapping[str, str] | None = None,
        clock: str = "source",
        lateness: float = 0.0,
        log_every: float = 10.0,
        max_bytes: int = MAX_BYTES,
        early: bool = False,
    ) -> None:
        self.graph = graph if isinstance(graph, Graph) else load(graph)
        if assets is None or isinstance(assets, str) or not all(isinstance(a, str) and a for a in assets) or not assets:
            raise TwinGraphError(
                f"TwinService needs 'assets': a list of asset names (non-empty strings), in batch order. "
                f"Got {quote(assets)}."
            )
        if clock not in CLOCKS:
            raise TwinGraphError(
                f"The 'clock' parameter of TwinService must be one of {list(CLOCKS)}. Got {quote(clock)}."
            )
        if not isinstance(checkpoint_every, int) or checkpoint_every < 1:
            raise TwinGraphError(
                f"The 'checkpoint_every' parameter must be an int >= 1. Got {quote(checkpoint_every)}."
            )
        for name, value in (("lateness", lateness), ("log_every", log_every)):
            if not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
                raise TwinGraphError(
                    f"The '{name}' parameter of TwinService must be a number >= 0. Got {quote(value)}."
                )
        self.source = source
        self.sinks = list(sinks)
        self.assets = list(assets)
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.clock = clock
        self.log_every = float(log_every)
        self.simulator = Simulator(self.graph, batch=len(self.assets), log=None)
        self.dt = self.simulator.dt
        self.outputs = self._outputs(outputs)
        self.counters = Counters()
        self.assembler = TickAssembler(
            self.simulator.inputs,
            self.assets,
            self.dt,
            fill=fill,
            lateness=lateness,
            max_bytes=max_bytes,
            early=early,
            counters=self.counters,
        )
        self._shapes = self._output_shapes()
        self._store: CheckpointStore | None = None
        self._stop = threading.Event()
        self._lock = threading.RLock()
        self._opened = False
        self._closed = False
        self._start = 0.0
        self._since_checkpoint = 0

    def _outputs(self, outputs: Sequence[str] | None) -> dict[str, str]:
        named = default_outputs(self.simulator)
        if outputs is None:
            if self.sinks and not named:
                raise TwinGraphError(
                    f"Graph '{self.graph.name}' has no Output block: name the ports to publish with "
                    f"outputs=['block.port', ...]."
                )
            return named
        if isinstance(outputs, str):
            outputs = [outputs]
        found = {}
        ports = {f"{b}.{p}" for b, outs in self.simulator.plan.outputs.items() for p in outs}
        for item in outputs:
            if item in named:
                found[item] = named[item]
            elif item in ports:
                found[item] = item
            else:
                raise TwinGraphError(
                    f"Cannot publish {quote(item)}: no such Output block or port of graph '{self.graph.name}'. "
                    f"Outputs: {sorted(named)}; ports: {sorted(ports)}."
                )
        return found

    def _output_shapes(self) -> dict[str, tuple[int, ...]]:
        plan = self.simulator.plan
        shapes = {}
        for name, path in self.outputs.items():
            block, port = path.rsplit(".", 1)
            shapes[name] = (len(self.assets), *plan.outputs[block][port].shape)
        return shapes

    def stop(self) -> None:
        """Make :meth:`run` checkpoint and return (from any thread, or a signal handler)."""
        self._stop.set()

    def checkpoint(self) -> int | None:
        """Write a checkpoint now (thread-safe); its number, or None without a checkpoint folder."""
        with self._lock:
            if self._store is None:
                if self.checkpoint_dir is None:
                    return None
                self._store = CheckpointStore(self.checkpoint_dir)
            document = {
                "graph": self.graph.name,
                "dt": self.dt,
                "assets": list(self.assets),
                "snapshot": self.simulator.snapshot(),
                "assembler": self.assembler.state_dict(),
                "position": self.source.position(),
            }
            self._since_checkpoint = 0
            return self._store.write(document)

    def _resume(self) -> Any:
        """Restore the newest checkpoint and replay its journal; the source position to open at."""
        self._store = CheckpointStore(self.checkpoint_dir)
        found = self._store.latest()
        if found is None:
            return None
        n, document = found
        if document.get("graph") != self.graph.name or document.get("dt") != self.dt:
            raise TwinGraphError(
                f"The checkpoint folder '{self.checkpoint_dir}' belongs to graph {quote(document.get('graph'))} "
                f"(dt {document.get('dt')} s), not to '{self.graph.name}' (dt {self.dt} s): use another folder."
            )
        snapshot, saved = document["snapshot"], list(document["assets"])
        if saved != self.assets:
            snapshot = merge_snapshot(self.graph, snapshot, saved, self.assets)
            logger.info(
                "fleet changed from %d to %d assets: %d continue, %d start fresh",
                len(saved),
                len(self.assets),
                len(set(saved) & set(self.assets)),
                len(set(self.assets) - set(saved)),
            )
        self.simulator.restore(snapshot)
        self.assembler.load_state_dict(document["assembler"])
        position, replayed = document["position"], 0
        for records, after in self._store.polls_after(n):
            for record in records:
                self.assembler.add(record)
            self._step(self.assembler.ready(self.assembler.watermark))
            position, replayed = after, replayed + len(records)
        logger.info(
            "resumed from checkpoint %d at tick %d; %d journaled records replayed",
            n,
            self.assembler.next_tick,
            replayed,
        )
        return position

    def _open(self) -> None:
        position = self._resume() if self.checkpoint_dir is not None else None
        self.source.open(position)
        self._opened = True
        if self.checkpoint_dir is not None:
            self.checkpoint()
        self._start = _time.monotonic() - self.assembler.next_tick * self.dt

    def _now(self) -> float:
        """The clock [s] that closes ticks."""
        if self.clock == "wall":
            return _time.monotonic() - self._start
        return self.assembler.watermark

    def _accept(self, records: list[Record]) -> None:
        if self.clock == "wall":
            now = self._now()
            records = [r if r.time is not None else Record(now, r.asset, r.values) for r in records]
        if self._store is not None:
            self._store.journal.append(records, self.source.position())
        self.source.commit()
        for record in records:
            self.assembler.add(record)

    def _step(self, n: int) -> int:
        """Step ``n`` ticks; send their outputs to the sinks."""
        for _ in range(n):
            began = _time.perf_counter()
            tick, inputs = self.assembler.pop()
            if tick != self.simulator.tick:
                raise TwinGraphError(f"Internal: assembler at tick {tick}, simulator at {self.simulator.tick}.")
            values = self.simulator.step(**inputs)
            results = {name: np.reshape(values[path], self._shapes[name]) for name, path in self.outputs.items()}
            for sink in self.sinks:
                sink.write(tick, tick * self.dt, self.assets, results)
            self.counters.ticks += 1
            self._since_checkpoint += 1
            took = _time.perf_counter() - began
            if self.clock == "wall" and took > self.dt:
                self.counters.overruns += 1
                if self.counters.overruns <= LOG_FIRST or self.counters.overruns % 100 == 0:
                    logger.warning(
                        "overrun: tick %d took %.1f ms, longer than dt = %g s (%d overruns so far)",
                        tick,
                        took * 1e3,
                        self.dt,
                        self.counters.overruns,
                    )
        return n

    def run(self, max_ticks: int | None = None, timeout: float | None = None) -> Counters:
        """Serve until the source is exhausted, :meth:`stop` or SIGTERM/SIGINT, ``max_ticks`` or ``timeout`` [s].

        Checkpoints at the end. The source and sinks are closed unless the run
        ended on ``max_ticks`` or ``timeout`` (then ``run`` may be called again).
        """
        handlers = self._install_handlers()
        deadline = None if timeout is None else _time.monotonic() + timeout
        stepped, finished = 0, False
        try:
            if not self._opened:
                with self._lock:
                    self._open()
            last_log = _time.monotonic()
            while not self._stop.is_set():
                if deadline is not None and _time.monotonic() >= deadline:
                    break
                left = None if max_ticks is None else max_ticks - stepped
                if left is not None and left <= 0:
                    break
                with self._lock:
                    if self.source.exhausted:
                        n = self.assembler.pending()
                        take = n if left is None else min(n, left)
                        stepped += self._step(take)
                        if take < n:
                            continue
                        finished = True
                        break
                    records = self.source.poll(self._wait())
                    if records:
                        self._accept(records)
                    n = self.assembler.ready(self._now())
                    stepped += self._step(n if left is None else min(n, left))
                    if self.checkpoint_dir is not None and self._since_checkpoint >= self.checkpoint_every:
                        self.checkpoint()
                if _time.monotonic() - last_log >= self.log_every:
                    last_log = _time.monotonic()
                    self.log_counters()
            finished = finished or self._stop.is_set()
        finally:
            self._restore_handlers(handlers)
            if self._opened and self.checkpoint_dir is not None:
                self.checkpoint()
            if finished:
                self.close()
            self._stop.clear()
        self.log_counters()
        return self.counters

    def _wait(self) -> float:
        if self.clock != "wall":
            return POLL_WAIT
        return min(
            POLL_WAIT, max(0.0, (self.assembler.next_tick + 1) * self.dt + self.assembler.lateness - self._now())
        )

    def log_counters(self) -> None:
        """Log the counters in one line (and the rejects not logged one by one)."""
        c = self.counters
        logger.info(
            "ticks %d, lag %.3f s, values %d: used %d, late %d, duplicate %d, unknown %d, malformed %d; overruns %d",
            c.ticks,
            c.lag,
            c.messages,
            c.used,
            c.late,
            c.duplicate,
            c.unknown,
            c.malformed,
            c.overruns,
        )
        self.assembler.log.summarize()

    def close(self) -> None:
        """Close the source, the sinks and the journal (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self.source.close()
        for sink in self.sinks:
            sink.close()
        if self._store is not None:
            self._store.close()

    def _install_handlers(self) -> dict:
        if threading.current_thread() is not threading.main_thread():
            return {}
        handlers = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            handlers[sig] = signal.signal(sig, lambda *_: self.stop())
        return handlers

    @staticmethod
    def _restore_handlers(handlers: dict) -> None:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)

    def __repr__(self) -> str:
        return (
            f"<TwinService of graph '{self.graph.name}': {len(self.assets)} assets, clock {self.clock}, "
            f"tick {self.simulator.tick}>"
        )
