"""Checkpoint files and the journal: atomic, checksummed, no pickle, torn pieces skipped."""

import logging

import numpy as np
import pytest

import twingraph as tg
from twingraph.streams import CheckpointStore, Record
from twingraph.streams.checkpoint import KEEP, decode, encode, read_journal

from . import pumps


def snapshot(tick: int = 7) -> dict:
    sim = tg.Simulator(pumps.example.build_twin(), batch=3, log=None)
    data = pumps.recording(3, duration=5.0)
    sim.run(inputs={k: v[:tick] for k, v in data.items()})
    return sim.snapshot()


def same_state(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_state(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same_state(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    return a == b or (a != a and b != b)


def test_a_checkpoint_round_trips_the_simulator_state_and_plain_data_exactly():
    document = {
        "snapshot": snapshot(),
        "position": 12,
        "assembler": {"held": {"u": np.full((3, 1), np.nan)}, "big": np.arange(5000.0) / 3},
    }
    data = encode(document)
    assert b"pickle" not in data and data.startswith(b"twingraph.checkpoint 1 ")
    back = decode(data, "mem")
    assert same_state(back, document)


def test_a_restored_snapshot_continues_exactly():
    data = pumps.recording(3, duration=5.0)
    straight = tg.Simulator(pumps.example.build_twin(), batch=3, log=["track.params"]).run(inputs=data)
    resumed = tg.Simulator(pumps.example.build_twin(), batch=3, log=["track.params"])
    resumed.restore(decode(encode({"snapshot": snapshot(7)}), "mem")["snapshot"])
    rest = resumed.run(inputs={k: v[7:] for k, v in data.items()})
    np.testing.assert_array_equal(rest["track.params"], straight["track.params"][7:])


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: d[:-10], "torn"),
        (lambda d: d[: len(d) // 2], "torn"),
        (lambda d: d[:60] + bytes([d[60] ^ 1]) + d[61:], "checksum"),
        (lambda d: b"", "not a twingraph checkpoint"),
        (lambda d: b"twingraph.checkpoint 1 00 x 2\n{}", "invalid literal"),
    ],
)
def test_the_newest_whole_checkpoint_wins_and_a_damaged_one_is_skipped_once(tmp_path, caplog, damage, message):
    store = CheckpointStore(tmp_path)
    store.write({"tick": 1})
    n = store.write({"tick": 2})
    store.path(n).write_bytes(damage(store.path(n).read_bytes()))
    with caplog.at_level(logging.WARNING, logger="twingraph.streams"):
        assert store.latest() == (n - 1, {"tick": 1})
    assert len(caplog.records) == 1 and message in caplog.records[0].getMessage()


def test_old_checkpoints_and_journals_are_dropped_and_no_temporary_file_is_left(tmp_path):
    store = CheckpointStore(tmp_path)
    for k in range(KEEP + 3):
        store.write({"k": k})
        store.journal.append([Record(float(k), "a", {"u": k})], k)
    store.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    kept = range(3, KEEP + 3)
    assert names == sorted([f"checkpoint-{k:08d}.tgc" for k in kept] + [f"journal-{k:08d}.jsonl" for k in kept])
    assert [pos for _, pos in store.polls_after(kept[0])] == list(kept)


def test_the_journal_keeps_raw_values_and_stops_at_a_torn_line(tmp_path, caplog):
    store = CheckpointStore(tmp_path)
    store.write({})
    records = [
        Record(0.5, "a", {"u": b"\xff\x00raw", "v": [1.0, float("nan")], "w": np.float64(2.0)}),
        Record(None, "b", {"u": '{"value": 1}', "x": object()}),
    ]
    store.journal.append(records[:1], {"offset": 1})
    store.journal.append(records[1:], {"offset": 2})
    store.close()
    path = store.journal_path(0)
    polls = list(read_journal(path))
    assert [p for _, p in polls] == [{"offset": 1}, {"offset": 2}]
    first = polls[0][0][0]
    assert first.values["u"] == b"\xff\x00raw" and first.values["w"] == 2.0 and np.isnan(first.values["v"][1])
    second = polls[1][0][0]
    assert second.time is None and second.values["u"] == '{"value": 1}'
    assert type(second.values["x"]).__name__ == "_Opaque"
    path.write_bytes(path.read_bytes()[:-7])  # a crash in the middle of the last line
    with caplog.at_level(logging.WARNING, logger="twingraph.streams"):
        assert [p for _, p in read_journal(path)] == [{"offset": 1}]
    assert len(caplog.records) == 1 and "line 2 is torn" in caplog.records[0].getMessage()
