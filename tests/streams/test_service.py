"""The service: resumes from checkpoints exactly, stops from any thread, grows its fleet, keeps the wall clock."""

import logging
import threading
import time

import numpy as np
import pytest

import twingraph as tg
from twingraph import TwinGraphError
from twingraph.streams import CheckpointStore, MemorySink, Record, ReplaySource, Source, TwinService

from . import pumps

PUMPS = 20


def service(folder, sink, pumps_=PUMPS, grown_at=None, until=None, **kw) -> TwinService:
    """The pump twin over the first ``pumps_`` pumps (or, from tick ``grown_at`` on, over all of them)."""
    frame = pumps.long_frame(pumps.recording(PUMPS))
    keep = frame["asset"].isin(pumps.assets(pumps_))
    if until is not None:
        keep &= frame["time"] < until * pumps.example.DT
    if grown_at is not None:  # the rows the smaller fleet replayed, then every pump: positions still match
        keep |= frame["time"] >= grown_at * pumps.example.DT
        pumps_ = PUMPS
    frame = frame[keep]
    return TwinService(
        pumps.example.build_twin(),
        ReplaySource(frame),
        [sink],
        assets=pumps.assets(pumps_),
        checkpoint_dir=folder,
        checkpoint_every=25,
        outputs=pumps.OUTPUTS,
        **kw,
    )


def outputs_by_tick(*sinks: MemorySink) -> dict[str, np.ndarray]:
    """The outputs of every tick, the last write of a tick winning (outputs are written at least once)."""
    ticks = {}
    for sink in sinks:
        for tick, values in zip(sink.ticks, sink.values):
            ticks[tick] = values
    assert sorted(ticks) == list(range(len(ticks)))
    return {port: np.stack([ticks[k][port] for k in range(len(ticks))]) for port in pumps.OUTPUTS}


def test_a_run_stopped_at_max_ticks_resumes_from_the_checkpoint_exactly(tmp_path):
    first, second = MemorySink(), MemorySink()
    counters = service(tmp_path, first).run(max_ticks=110)
    assert counters.ticks == 110
    resumed = service(tmp_path, second)
    counters = resumed.run()
    assert second.ticks[0] == 110 and counters.ticks == pumps.recording(PUMPS)["u"].shape[0]
    assert counters.messages == counters.used == 2 * PUMPS * counters.ticks
    pumps.same(outputs_by_tick(first, second), pumps.expected(PUMPS))


def test_stop_from_another_thread_checkpoints_and_a_new_service_finishes_identically(tmp_path):
    first, second = MemorySink(), MemorySink()
    running = service(tmp_path, first)
    thread = threading.Thread(target=running.run)
    thread.start()
    while running.counters.ticks < 60:  # the counters are live
        time.sleep(0.01)
    running.stop()
    thread.join(10)
    assert not thread.is_alive()
    stopped_at = running.simulator.tick
    assert 60 <= stopped_at < pumps.recording(PUMPS)["u"].shape[0]
    service(tmp_path, second).run()
    assert second.ticks[0] <= stopped_at
    pumps.same(outputs_by_tick(first, second), pumps.expected(PUMPS))


@pytest.mark.parametrize("damage", ["torn", "corrupt"])
def test_a_damaged_newest_checkpoint_is_skipped_with_one_message(tmp_path, caplog, damage):
    first, second = MemorySink(), MemorySink()
    service(tmp_path, first).run(max_ticks=90)
    store = CheckpointStore(tmp_path)
    newest = store.path(store.numbers()[-1])
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2] if damage == "torn" else data[:-100] + bytes(100))
    with caplog.at_level(logging.WARNING, logger="twingraph.streams"):
        service(tmp_path, second).run()
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 1 and newest.name in skipped[0]
    pumps.same(outputs_by_tick(first, second), pumps.expected(PUMPS))


def test_a_fleet_grows_by_restarting_with_more_assets(tmp_path):
    first, second = MemorySink(), MemorySink()
    service(tmp_path, first, pumps_=10, until=100).run()  # replay positions are rows: the first 100 ticks
    service(tmp_path, second, pumps_=10, grown_at=100).run()
    expected = pumps.expected(PUMPS)
    served = second.arrays()
    assert second.ticks[0] == 100
    for port in pumps.OUTPUTS:  # the first ten continue where they were
        old = np.concatenate([np.stack([v[port] for v in first.values]), served[port][:, :10]])
        np.testing.assert_allclose(old.reshape(expected[port][:, :10].shape), expected[port][:, :10], atol=1e-12)
    fresh = tg.Simulator(pumps.example.build_twin(), batch=10, log=pumps.OUTPUTS)
    fresh.tick = 100  # the new ten start from the initial state at tick 100
    data = pumps.recording(PUMPS)
    history = fresh.run(inputs={k: v[100:, 10:] for k, v in data.items()})
    for port in pumps.OUTPUTS:
        np.testing.assert_allclose(served[port][:, 10:].reshape(history[port].shape), history[port], atol=1e-12)


class Queue(Source):
    """A live source of untimed records handed in by the test, as a subscriber would be."""

    def __init__(self) -> None:
        self.items: list[Record] = []
        self.lock = threading.Lock()

    def open(self, position=None) -> None:
        pass

    def poll(self, timeout: float) -> list[Record]:
        time.sleep(min(timeout, 0.005))
        with self.lock:
            items, self.items = self.items, []
        return items


class Slow(tg.Block, type_name="tests.streams.Slow"):
    inputs = {"u": tg.Signal(shape=())}
    outputs = {"y": tg.Signal(shape=())}

    def __init__(self, pause: float = 0.0, *, name=None) -> None:
        super().__init__(name=name)
        self.pause = pause

    def output(self, t, inp, out) -> None:
        if t >= 0.2:
            time.sleep(self.pause)
        out.y[...] = inp.u


def echo(pause: float = 0.0) -> tg.Graph:
    g = tg.Graph("echo", dt=0.05)
    g.connect(g.add(tg.Input("u")).out.value, g.add(Slow(pause, name="slow")).inp.u)
    g.connect("slow.y", g.add(tg.Output("y")).inp.u)
    return g


def test_the_wall_clock_steps_ticks_in_time_and_stamps_untimed_records():
    source, sink = Queue(), MemorySink()
    running = TwinService(echo(), source, [sink], assets=["a"], clock="wall", fill={"u": "hold"})
    thread = threading.Thread(target=running.run, kwargs={"timeout": 0.6})
    thread.start()
    time.sleep(0.12)
    with source.lock:
        source.items.append(Record(None, "a", {"u": b"2.5"}))
    thread.join(5)
    ticks = len(sink.ticks)
    assert 8 <= ticks <= 13  # 0.6 s at dt = 0.05 s
    y = np.concatenate(sink.arrays()["y"])
    first = int(np.argmax(y == 2.5))
    assert first >= 1 and np.isnan(y[:first]).all() and (y[first:] == 2.5).all()
    assert running.counters.used == 1 and running.counters.overruns == 0


def test_ticks_slower_than_dt_count_overruns_and_warn(caplog):
    with caplog.at_level(logging.WARNING, logger="twingraph.streams"):
        running = TwinService(echo(pause=0.08), Queue(), [MemorySink()], assets=["a"], clock="wall")
        counters = running.run(timeout=0.6)
    assert counters.overruns >= 2 and counters.overruns <= counters.ticks
    assert any(r.getMessage().startswith("overrun: tick 4 took") for r in caplog.records)


def test_outputs_default_to_the_output_blocks_and_bad_settings_are_refused():
    assert TwinService(echo(), Queue(), assets=["a"]).outputs == {"y": "slow.y"}
    twin = pumps.example.build_twin()
    with pytest.raises(TwinGraphError, match="has no Output block"):
        TwinService(twin, Queue(), [MemorySink()], assets=["a"])
    with pytest.raises(TwinGraphError, match="Cannot publish 'rul.nope'"):
        TwinService(twin, Queue(), assets=["a"], outputs=["rul.nope"])
    with pytest.raises(TwinGraphError, match="needs 'assets'"):
        TwinService(twin, Queue())
    with pytest.raises(TwinGraphError, match="'clock' parameter"):
        TwinService(twin, Queue(), assets=["a"], clock="gps")
    with pytest.raises(TwinGraphError, match="unique"):
        TwinService(twin, Queue(), assets=["a", "a"])


def test_a_checkpoint_of_another_graph_is_refused(tmp_path):
    TwinService(echo(), Queue(), assets=["a"], checkpoint_dir=tmp_path).run(timeout=0.05)
    with pytest.raises(TwinGraphError, match="belongs to graph 'echo'"):
        service(tmp_path, MemorySink()).run()
