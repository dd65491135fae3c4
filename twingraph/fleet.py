"""Fleets: one graph over N assets, split into shards run in process or on Dask.

Each shard is an independent :class:`~twingraph.Simulator` of the same graph
with a batch of some of the assets. In process, shards run one after the
other; with a ``dask.distributed.Client`` they run as tasks on its workers
(a LocalCluster on one machine, a real cluster unchanged). A task lost with
its worker is re-run elsewhere by Dask (``retries``); a shard that still
fails is reported by id while the other shards' results are kept.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._optional import require
from .errors import SimulationError
from .graph import Graph
from .simulator import Simulator


@dataclass
class ShardResult:
    """What one shard returns: logged port values ``(T, b, *shape)`` and the final snapshot."""

    assets: np.ndarray
    history: dict[str, np.ndarray]
    time: np.ndarray
    snapshot: dict[str, Any]


@dataclass
class FleetResult:
    """Gathered results of :func:`run_fleet`.

    ``history`` maps each logged port to ``(T, N_ok, *shape)`` over the assets of
    the shards that succeeded, listed in ``assets``; ``snapshots`` holds each
    shard's final state by shard id; ``failures`` the error text of each failed shard.
    """

    assets: np.ndarray
    time: np.ndarray
    history: dict[str, np.ndarray]
    snapshots: dict[int, dict[str, Any]]
    failures: dict[int, str] = field(default_factory=dict)

    def __getitem__(self, port: str) -> np.ndarray:
        return self.history[port]


def _run_shard(graph: Graph, assets: np.ndarray, inputs, steps, log) -> ShardResult:
    sim = Simulator(graph, batch=len(assets), log=log, progress=False)
    hist = sim.run(inputs=inputs, steps=steps)
    values = {p: hist[p] if sim.batch > 1 else hist[p][:, None] for p in hist.ports}
    return ShardResult(assets, values, hist.time, sim.snapshot())


def _shard_inputs(inputs: Mapping[str, np.ndarray] | None, assets: np.ndarray):
    if inputs is None:
        return None
    return {name: values[:, assets] for name, values in inputs.items()}


def run_fleet(
    graph: Graph,
    n_assets: int,
    inputs: Mapping[str, Any] | None = None,
    steps: int | None = None,
    shard_size: int = 1000,
    client=None,
    log="all",
    retries: int = 2,
) -> FleetResult:
    """Run ``graph`` for ``n_assets`` assets in shards of at most ``shard_size``.

    Parameters
    ----------
    graph : Graph
        The twin of one asset type; validated once per shard.
    n_assets : int
        Number of assets N.
    inputs : dict of str to array, optional
        Per ``Input`` block, values ``(T, N, *shape)``.
    steps : int, optional
        Ticks to run; default the length of ``inputs``.
    shard_size : int
        Assets per shard (the batch B of each shard's simulator).
    client : dask.distributed.Client, optional
        Run shards as tasks on this client; ``None`` runs them in this process.
    log : "all", sequence of str or None
        Ports to gather (as for :class:`~twingraph.Simulator`).
    retries : int
        Times Dask re-runs a shard whose task failed or whose worker died.

    Returns
    -------
    FleetResult
    """
    for param, value in (("n_assets", n_assets), ("shard_size", shard_size)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise SimulationError(f"The '{param}' parameter of run_fleet must be an int >= 1. Got {value!r} instead.")
    if inputs is not None:
        inputs = {name: np.asarray(values) for name, values in inputs.items()}
        for name, values in inputs.items():
            if values.ndim < 2 or values.shape[1] != n_assets:
                raise SimulationError(
                    f"Input '{name}' of a fleet run needs values (T, N={n_assets}, *shape). Got shape {values.shape}."
                )
    shards = np.array_split(np.arange(n_assets), -(-n_assets // shard_size))
    results: dict[int, ShardResult] = {}
    failures: dict[int, str] = {}
    if client is None:
        for i, assets in enumerate(shards):
            try:
                results[i] = _run_shard(graph, assets, _shard_inputs(inputs, assets), steps, log)
            except Exception as exc:  # a failed shard is reported; the others go on
                failures[i] = f"{type(exc).__name__}: {exc}"
    else:
        require("dask.distributed", "fleet", purpose="running fleets on Dask")
        # a task, not scattered data: if the worker holding it dies, Dask recomputes it instead of
        # cancelling every shard that needs it ("already forgotten")
        graph_future = client.submit(_same, graph, pure=False)
        futures = {
            i: client.submit(
                _run_shard, graph_future, assets, _shard_inputs(inputs, assets), steps, log, retries=retries, pure=False
            )
            for i, assets in enumerate(shards)
        }
        for i, future in futures.items():
            try:
                results[i] = future.result()
            except Exception as exc:  # a failed shard is reported; the others are kept
                failures[i] = f"{type(exc).__name__}: {exc}"
    return _gather(results, failures)


def _same(graph: Graph) -> Graph:
    """The graph itself, as a Dask task the shards depend on."""
    return graph


def _gather(results: dict[int, ShardResult], failures: dict[int, str]) -> FleetResult:
    if not results:
        listing = "; ".join(f"shard {i}: {msg}" for i, msg in failures.items())
        raise SimulationError(f"Every shard of the fleet run failed: {listing}")
    ordered = [results[i] for i in sorted(results)]
    history = {p: np.concatenate([r.history[p] for r in ordered], axis=1) for p in ordered[0].history}
    return FleetResult(
        assets=np.concatenate([r.assets for r in ordered]),
        time=ordered[0].time,
        history=history,
        snapshots={i: results[i].snapshot for i in sorted(results)},
        failures=failures,
    )
