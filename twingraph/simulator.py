"""The Simulator: steps a compiled graph, online or over recorded data.

Each tick ``k`` (time ``t_k = k * dt``):

1. external values are written into the ``Input`` blocks;
2. phase 1: every block computes its outputs, in dependency order;
3. the port values are logged to the :class:`~twingraph.History`;
4. phase 2: every stateful block advances its state to ``t_{k+1}``.
"""

import copy
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .arena import PortValues, layout, readers
from .block import Block, Buffers, Context
from .errors import SimulationError, quote
from .graph import Graph
from .history import History, element_columns
from .scheduler import compile_graph
from .signals import Signal

SNAPSHOT_FORMAT = "twingraph.snapshot"


def _coerce(name: str, value: Any, signal: Signal, lead: tuple[int, ...], batch: int, tick: int) -> np.ndarray:
    """Check ``value`` against ``lead + (B, *shape)``, ``lead + shape`` or a scalar for shape (1,).

    ``lead`` is ``()`` for one tick, ``(T,)`` for ``T`` ticks from ``tick``. NaN
    passes (a missing value); ±inf is refused.
    """
    try:
        array = np.asarray(value, dtype=signal.dtype)
    except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: inf given for an int input
        raise SimulationError(f"Input '{name}' expects {signal.dtype} values. Got {quote(value)} instead.") from exc
    rest = array.shape[len(lead) :]
    if array.shape[: len(lead)] != lead or rest not in {(batch, *signal.shape), signal.shape}:
        if not (signal.shape == (1,) and rest == () and array.shape[: len(lead)] == lead):
            lead_text = "".join(f"{n}, " for n in lead)
            raise SimulationError(
                f"Input '{name}' expects values of shape ({lead_text}{batch}, *{signal.shape}) or "
                f"({lead_text}*{signal.shape}) [{signal.unit or 'no unit'}]. Got shape {array.shape} instead."
            )
        array = array[..., None]
    if array.dtype.kind == "f" and np.isinf(array).any():
        raise SimulationError(_inf_message(name, array, len(lead), len(signal.shape), batch, tick))
    return array


def _inf_message(name: str, array: np.ndarray, lead: int, ndim: int, batch: int, tick: int) -> str:
    """Where the first ±inf of ``array`` (fed to Input ``name`` from ``tick`` on) is, in words."""
    index = tuple(int(i) for i in np.argwhere(np.isinf(array))[0])
    per_asset = array.ndim - lead > ndim
    element = index[lead + per_asset :]
    asset = index[lead] if per_asset else (0 if batch == 1 else None)
    where = [f"element {element[0] if len(element) == 1 else element}"] if element else []
    where.append("every asset" if asset is None else f"asset {asset}")
    return (
        f"Input '{name}' got {array[index]} at tick {tick + (index[0] if lead else 0)} ({' of '.join(where)}); "
        f"NaN marks a missing value, inf is an error."
    )


def _show_progress(progress: bool | None, work: int) -> bool:
    if progress is not None:
        return progress
    return work >= 2_000_000 and sys.stderr.isatty() and not os.environ.get("CI")


class Simulator:
    """Runs a graph for a batch of ``batch`` assets and logs its ports.

    The simulator works on its own copies of the graph's blocks
    (``sim.blocks``), so several simulators of one graph never interfere.

    Parameters
    ----------
    graph : Graph
        The graph to run; it is validated first.
    batch : int
        Number of assets B stepped at once.
    log : "all", sequence of str or None
        Ports to record in the history (``"block.port"``); ``None`` records none.
    max_len : int or None
        Keep only the last ``max_len`` ticks of history (bounded memory).
    progress : bool or None
        Show a tqdm bar in :meth:`run`; ``None`` shows it for long runs on a terminal.

    Examples
    --------
    >>> from twingraph import Graph, Input, Simulator
    >>> from blocks.math import Gain
    >>> g = Graph("double", dt=0.5)
    >>> u = g.add(Input("u"))
    >>> k = g.add(Gain(k=2.0, name="k"))
    >>> g.connect(u.out.value, k.inp.u)
    >>> sim = Simulator(g)
    >>> float(sim.step(u=1.5)["k.y"])
    3.0
    >>> sim.run(inputs={"u": [1.0, 2.0]})["k.y"]  # the history holds the stepped tick too
    array([3., 2., 4.])
    """

    def __init__(
        self,
        graph: Graph,
        batch: int = 1,
        log: str | Sequence[str] | None = "all",
        max_len: int | None = None,
        progress: bool | None = None,
    ) -> None:
        if not isinstance(batch, (int, np.integer)) or batch < 1:
            raise SimulationError(f"The 'batch' parameter of Simulator must be an int >= 1. Got {batch!r} instead.")
        self.graph = graph
        self.plan = compile_graph(graph)
        self.batch = int(batch)
        self.dt = self.plan.dt
        self.progress = progress
        self.max_len = max_len
        self.blocks: dict[str, Block] = copy.deepcopy(self.plan.blocks)
        signals = {f"{n}.{p}": s for n, outs in self.plan.outputs.items() for p, s in outs.items()}
        self._slots, widths = layout(signals)
        self._readers = readers(self._slots, self.batch == 1)
        self._arrays = {d: np.zeros((self.batch, w), dtype=d) for d, w in widths.items()}
        views = {path: slot.of(self._arrays[slot.dtype]) for path, slot in self._slots.items()}
        self._logged = self._select_logged(log, signals)
        feeding: dict[str, dict[str, np.ndarray]] = {name: {} for name in self.plan.order}
        for (dst, port), (src, src_port) in self.plan.sources.items():
            feeding[dst][port] = views[f"{src}.{src_port}"]
        self._buffers = {
            name: (Buffers(name, feeding[name]), Buffers(name, {p: views[f"{name}.{p}"] for p in outs}))
            for name, outs in self.plan.outputs.items()
        }
        self._feeds = {name: views[f"{name}.value"] for name in self.plan.feeds}
        self.reset()

    def _select_logged(self, log, signals: dict[str, Signal]) -> dict[str, Signal]:
        if log is None:
            return {}
        if isinstance(log, str) and log == "all":
            return signals
        if isinstance(log, str):
            log = [log]
        unknown = [p for p in log if p not in signals]
        if unknown:
            raise SimulationError(f"Cannot log {unknown}: no such output ports. Ports are: {list(signals)}")
        return {p: signals[p] for p in log}

    def reset(self) -> None:
        """Back to tick 0: every block reset, an empty history."""
        self.tick = 0
        self._phase1, self._phase2 = [], []
        for name in self.plan.order:
            block = self.blocks[name]
            inp, out = self._buffers[name]
            block.reset(Context(self.batch, self.dt, self.plan.inputs[name], self.plan.outputs[name]))
            if type(block).output is not Block.output:
                self._phase1.append((block.output, inp, out))
            if block.stateful:
                self._phase2.append((block.update, inp))
        self.history = History(self._logged, self._arrays, self._slots, self.batch, self.dt, self.max_len)
        self._record = self.history.record if self._logged else None

    @property
    def time(self) -> float:
        """Time of the next tick [s]."""
        return self.tick * self.dt

    @property
    def inputs(self) -> dict[str, Signal]:
        """The graph's external inputs (top-level ``Input`` blocks) and their signals."""
        return self.plan.feeds

    def _tick(self) -> None:
        t = self.tick * self.dt
        for output, inp, out in self._phase1:
            output(t, inp, out)
        if self._record is not None:
            self._record(self.tick)
        for update, inp in self._phase2:
            update(t, inp)
        self.tick += 1

    def step(self, **inputs: Any) -> PortValues:
        """Advance one tick with a value for every ``Input`` block; return the tick's outputs.

        With ``batch=1`` values may be given and are returned without the batch axis.
        NaN is a valid value (a missing measurement); ±inf is a SimulationError.
        """
        if inputs.keys() != self._feeds.keys():
            self._check_names(inputs)
        for name, value in inputs.items():
            self._feeds[name][...] = _coerce(name, value, self.plan.feeds[name], (), self.batch, self.tick)
        self._tick()
        return PortValues({d: a.copy() for d, a in self._arrays.items()}, self._readers)

    def _check_names(self, names) -> None:
        unknown = sorted(set(names) - set(self._feeds))
        missing = sorted(set(self._feeds) - set(names))
        if unknown or missing:
            parts = [f"unknown {unknown}" if unknown else "", f"missing {missing}" if missing else ""]
            raise SimulationError(
                f"Graph '{self.plan.name}' takes inputs {sorted(self._feeds)}: "
                + ", ".join(p for p in parts if p)
                + "."
            )

    def run(
        self,
        inputs: pd.DataFrame | Mapping[str, Any] | None = None,
        steps: int | None = None,
        progress: bool | None = None,
    ) -> History:
        """Advance ``steps`` ticks over recorded inputs; return the history.

        Parameters
        ----------
        inputs : DataFrame or dict of str to array, optional
            Per ``Input`` block, an array ``(T, B, *shape)`` or ``(T, *shape)`` (same
            for every asset); or a DataFrame whose columns are named like history
            columns (``"u"``, ``"u[0]"``), indexed by time or by ``(time, asset)``.
            NaN marks a missing value; ±inf is a SimulationError.
        steps : int, optional
            Ticks to run; default the length of ``inputs``.
        progress : bool, optional
            Override the simulator's ``progress`` setting for this run.
        """
        data = self._recorded(inputs)
        length = min((len(a) for a in data.values()), default=None)
        if steps is None:
            if length is None:
                raise SimulationError(f"Graph '{self.plan.name}' has no inputs: give the number of steps.")
            steps = length
        if not isinstance(steps, (int, np.integer)) or steps < 0:
            raise SimulationError(f"The 'steps' argument must be an int >= 0. Got {steps!r} instead.")
        if length is not None and steps > length:
            raise SimulationError(f"Cannot run {steps} steps: the inputs hold only {length}.")
        if self._record is not None:
            self.history.reserve(steps)
        feeds = [(self._feeds[n], a) for n, a in data.items()]
        show = _show_progress(self.progress if progress is None else progress, steps * len(self._phase1))
        chunk = max(1, steps // 200) if show else max(1, steps)
        bar = None
        if show:
            from tqdm.auto import tqdm

            bar = tqdm(total=steps, desc=self.plan.name, unit="tick")
        for start in range(0, steps, chunk):
            for k in range(start, min(start + chunk, steps)):
                for buffer, values in feeds:
                    buffer[...] = values[k]
                self._tick()
            if bar is not None:
                bar.update(min(chunk, steps - start))
        if bar is not None:
            bar.close()
        return self.history

    def _recorded(self, inputs) -> dict[str, np.ndarray]:
        if inputs is None:
            self._check_names({})
            return {}
        if isinstance(inputs, pd.DataFrame):
            inputs = self._from_frame(inputs)
        elif not isinstance(inputs, Mapping):
            raise SimulationError(f"Inputs must be a DataFrame or a dict of arrays. Got {type(inputs).__name__}.")
        self._check_names(inputs)
        arrays = {}
        for name, values in inputs.items():
            values = np.asarray(values)
            arrays[name] = _coerce(name, values, self.plan.feeds[name], values.shape[:1], self.batch, self.tick)
        return arrays

    def _from_frame(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        batched = isinstance(frame.index, pd.MultiIndex)
        if batched and frame.index.nlevels != 2:
            raise SimulationError("A DataFrame of inputs is indexed by time or by (time, asset).")
        if batched:
            frame = frame.sort_index()
        arrays = {}
        for name, signal in self.plan.feeds.items():
            columns = element_columns(name, signal.shape)
            absent = [c for c in columns if c not in frame.columns]
            if absent:
                raise SimulationError(f"Input '{name}' needs DataFrame columns {columns}; missing {absent}.")
            values = frame[columns].to_numpy()
            if batched:
                assets = frame.index.get_level_values(1).nunique()
                if len(frame) % assets:
                    raise SimulationError("A (time, asset) DataFrame needs every asset at every time.")
                arrays[name] = values.reshape(len(frame) // assets, assets, *signal.shape)
            else:
                arrays[name] = values.reshape(len(frame), *signal.shape)
        return arrays

    def snapshot(self) -> dict[str, Any]:
        """The full simulation state: tick and every block's state (deep copies)."""
        return {
            "format": SNAPSHOT_FORMAT,
            "graph": self.plan.name,
            "batch": self.batch,
            "tick": self.tick,
            "blocks": {n: b.state_dict() for n, b in self.blocks.items()},
        }

    def restore(self, snapshot: Mapping[str, Any]) -> None:
        """Continue from a :meth:`snapshot` (of this simulator or another of the same graph)."""
        if not isinstance(snapshot, Mapping) or snapshot.get("format") != SNAPSHOT_FORMAT:
            raise SimulationError("Not a twingraph snapshot: expected the dict made by Simulator.snapshot().")
        if snapshot["batch"] != self.batch or set(snapshot["blocks"]) != set(self.blocks):
            raise SimulationError(
                f"Snapshot of graph '{snapshot['graph']}' (batch {snapshot['batch']}, blocks "
                f"{sorted(snapshot['blocks'])}) does not fit graph '{self.plan.name}' (batch {self.batch}, "
                f"blocks {sorted(self.blocks)})."
            )
        for name, state in snapshot["blocks"].items():
            self.blocks[name].load_state_dict(state)
        self.tick = int(snapshot["tick"])

    def __repr__(self) -> str:
        return f"<Simulator of graph '{self.plan.name}': batch {self.batch}, tick {self.tick}, t={self.time:g} s>"
