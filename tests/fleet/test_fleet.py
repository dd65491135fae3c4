"""Fleets: sharded runs equal one big batch, on Dask too, and survive a killed worker."""

import numpy as np
import pytest

import twingraph as tg
from blocks.discrete import Integrator
from blocks.math import Gain, Saturation, Sum
from twingraph.fleet import run_fleet

from .crashing import CrashOnce, FailForBigBatches


def fleet_graph(extra: tg.Block | None = None) -> tg.Graph:
    g = tg.Graph("fleet", dt=0.1)
    u = g.add(tg.Input("u", shape=(2,)))
    err = g.add(Sum(signs="+-", name="err"))
    sat = g.add(Saturation(lower=-0.5, upper=0.5, name="sat"))
    x = g.add(Integrator(k=2.0, name="x"))
    g.connect(u.out.value, err.inp.u1)
    g.connect(x.out.y, err.inp.u2)
    g.connect(err.out.y, sat.inp.u)
    if extra is None:
        g.connect(sat.out.y, x.inp.u)
    else:
        g.add(extra)
        g.connect(sat.out.y, extra.inp.u)
        k = g.add(Gain(k=1.0, name="k"))
        g.connect(extra.out.y, k.inp.u)
        g.connect(k.out.y, x.inp.u)
    return g


def fleet_inputs(n: int, steps: int = 60) -> dict[str, np.ndarray]:
    return {"u": np.random.default_rng(7).normal(size=(steps, n, 2))}


def test_in_process_shards_equal_one_batch():
    inputs = fleet_inputs(23)
    whole = tg.Simulator(fleet_graph(), batch=23).run(inputs=inputs)
    result = run_fleet(fleet_graph(), 23, inputs=inputs, shard_size=5)
    assert len(result.snapshots) == 5 and not result.failures
    np.testing.assert_array_equal(result.assets, np.arange(23))
    for port in whole.ports:
        np.testing.assert_array_equal(result[port], whole[port], err_msg=port)


def test_failed_shard_is_reported_and_the_rest_kept():
    inputs = fleet_inputs(7)
    result = run_fleet(fleet_graph(FailForBigBatches(limit=2, name="guard")), 7, inputs=inputs, shard_size=3)
    # shards of 3, 2, 2 assets: the first fails
    assert set(result.failures) == {0} and "batch 3 > 2" in result.failures[0]
    np.testing.assert_array_equal(result.assets, np.arange(3, 7))
    alone = tg.Simulator(fleet_graph(), batch=4).run(inputs={"u": inputs["u"][:, 3:]})
    np.testing.assert_array_equal(result["x.y"], alone["x.y"])


def test_bad_fleet_arguments():
    with pytest.raises(tg.SimulationError, match=r"needs values \(T, N=5, \*shape\). Got shape \(60, 4, 2\)"):
        run_fleet(fleet_graph(), 5, inputs=fleet_inputs(4))
    with pytest.raises(tg.SimulationError, match="'shard_size' parameter of run_fleet must be an int >= 1"):
        run_fleet(fleet_graph(), 5, inputs=fleet_inputs(5), shard_size=0)


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("dask.distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def test_dask_run_is_identical_to_in_process(client):
    inputs = fleet_inputs(40)
    local = run_fleet(fleet_graph(), 40, inputs=inputs, shard_size=9)
    remote = run_fleet(fleet_graph(), 40, inputs=inputs, shard_size=9, client=client)
    assert not remote.failures
    for port in local.history:
        np.testing.assert_array_equal(remote[port], local[port], err_msg=port)
    for i, snap in local.snapshots.items():
        np.testing.assert_array_equal(remote.snapshots[i]["blocks"]["x"]["x_"], snap["blocks"]["x"]["x_"])


def test_killed_worker_is_survived_by_rerunning_its_shard(client, tmp_path):
    inputs = fleet_inputs(12)
    marker = tmp_path / "crashed"
    graph = fleet_graph(CrashOnce(marker=str(marker), name="crash"))
    result = run_fleet(graph, 12, inputs=inputs, shard_size=4, client=client)
    assert marker.exists()  # a worker really died
    assert not result.failures
    reference = run_fleet(fleet_graph(CrashOnce(name="crash")), 12, inputs=inputs, shard_size=4)
    np.testing.assert_array_equal(result["x.y"], reference["x.y"])
