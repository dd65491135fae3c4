"""Tick assembly: every value counted once, in the right place, by the documented rules."""

import json
import logging

import numpy as np
import pytest

from twingraph import Signal, TwinGraphError
from twingraph.streams import Record, TickAssembler
from twingraph.streams.assembly import LOG_FIRST, RejectLog

INPUTS = {
    "u": Signal(shape=(1,), unit="V"),
    "v": Signal(shape=(2,)),
    "s": Signal(shape=()),
    "on": Signal(shape=(), dtype="bool"),
    "n": Signal(shape=(), dtype="int64"),
}


def assembler(**kw) -> TickAssembler:
    return TickAssembler(INPUTS, ["a", "b"], dt=0.5, **kw)


def counts(a: TickAssembler) -> dict:
    c = a.counters
    return {"used": c.used, "late": c.late, "unknown": c.unknown, "malformed": c.malformed, "duplicate": c.duplicate}


def test_payload_forms_decode_to_the_port_values():
    a = assembler()
    a.add(Record(0.0, "a", {"u": b"3.25", "v": b"[1, 2.5]", "s": "null", "on": b"true", "n": b"7"}))
    a.add(
        Record(
            None,
            "b",
            {
                "u": b'{"time": 0.1, "value": [4.0]}',
                "v": [np.nan, 1.0],
                "s": np.float64(2.0),
                "on": False,
                "n": np.int64(-3),
            },
        )
    )
    assert a.ready(0.5) == 1
    tick, inputs = a.pop()
    assert tick == 0
    np.testing.assert_array_equal(inputs["u"], [[3.25], [4.0]])
    np.testing.assert_array_equal(inputs["v"], [[1.0, 2.5], [np.nan, 1.0]])
    np.testing.assert_array_equal(inputs["s"], [np.nan, 2.0])
    assert inputs["on"].tolist() == [True, False] and inputs["n"].tolist() == [7, -3]
    assert counts(a) == {"used": 10, "late": 0, "unknown": 0, "malformed": 0, "duplicate": 0}


@pytest.mark.parametrize(
    ("port", "raw", "reason"),
    [
        ("u", b"Infinity", "inf"),
        ("u", b"-1e999", "inf"),
        ("v", [1.0, float("-inf")], "inf"),
        ("s", float("inf"), "inf"),
        ("u", b"{bad", "bad JSON"),
        ("u", "3.2.1", "bad JSON"),
        ("u", b"1" * 5000, "bad JSON"),  # an int longer than Python converts
        ("u", b"\xff\xfe", "not UTF-8"),
        ("u", b"[" + b"0," * 40000 + b"0]", "oversized"),
        ("u", "x" * 70000, "oversized"),
        ("u", b'"3.2"', "wrong type"),
        ("u", b"true", "wrong type"),
        ("u", True, "wrong type"),
        ("on", b"1", "wrong type"),
        ("on", b"null", "wrong type"),
        ("n", b"2.5", "wrong type"),
        ("n", b"99999999999999999999999", "wrong type"),
        ("v", b"[1, true]", "wrong type"),
        ("u", object(), "wrong type"),
        ("v", b"[1, 2, 3]", "wrong shape"),
        ("v", b"3.0", "wrong shape"),
        ("v", b"[[1], [2, 3]]", "wrong shape"),
        ("s", b"[1.0]", "wrong shape"),
        ("u", b'{"value": 1, "extra": 2}', "bad object"),
        ("u", b'{"time": 0.1}', "bad object"),
        ("u", b'{"time": "noon", "value": 1}', "bad time"),
        ("u", b'{"time": NaN, "value": 1}', "bad time"),
        ("u", b'{"time": 1e9, "value": 1}', "too far ahead"),
    ],
)
def test_each_malformed_value_is_counted_with_its_reason_and_the_others_kept(port, raw, reason):
    a = assembler()
    a.add(Record(0.0, "a", {port: raw, "n" if port != "n" else "s": 1}))
    assert counts(a) == {"used": 1, "late": 0, "unknown": 0, "malformed": 1, "duplicate": 0}
    assert a.counters.reasons == {reason: 1}
    assert a.counters.messages == 2


def test_nan_is_missing_but_inf_is_malformed():
    a = assembler()
    a.add(Record(0.0, "a", {"u": b"NaN", "s": float("nan")}))
    a.add(Record(0.0, "b", {"u": b"Infinity", "s": float("-inf")}))
    assert counts(a)["used"] == 2 and counts(a)["malformed"] == 2
    _, inputs = a.pop()
    assert np.isnan(inputs["u"]).all() and np.isnan(inputs["s"]).all()


def test_unknown_assets_and_ports_count_once_per_value_and_bad_records_once():
    a = assembler()
    a.add(Record(0.0, "zz", {"u": 1.0, "s": 2.0}))
    a.add(Record(0.0, "a", {"w": 1.0, "u": 2.0}))
    a.add(Record(0.0, "a", {}))
    a.add(Record(0.0, 7, {"u": 1.0}))
    a.add(Record(float("nan"), "a", {"u": 1.0, "s": 1.0}))
    assert counts(a) == {"used": 1, "late": 0, "unknown": 4, "malformed": 3, "duplicate": 0}
    assert a.counters.reasons == {"unknown asset": 3, "unknown port": 1, "bad record": 1, "bad time": 2}


def test_late_values_are_dropped_and_out_of_order_ones_land_in_their_tick():
    a = assembler()
    a.add(Record(0.7, "a", {"s": 2.0}))  # tick 1 first
    a.add(Record(0.2, "a", {"s": 1.0}))  # then tick 0: out of order, still open
    a.add(Record(1.1, "b", {"s": 3.0}))
    assert a.ready(a.watermark) == 2
    np.testing.assert_array_equal([a.pop()[1]["s"] for _ in range(2)], [[1.0, np.nan], [2.0, np.nan]])
    a.add(Record(0.9, "b", {"s": 9.0}))  # tick 1 was stepped
    a.add(Record(-5.0, "b", {"s": 9.0}))
    assert counts(a) == {"used": 3, "late": 2, "unknown": 0, "malformed": 0, "duplicate": 0}
    tick, inputs = a.pop()
    assert tick == 2 and inputs["s"].tolist()[1] == 3.0


def test_lateness_keeps_a_tick_open_longer():
    a = assembler(lateness=0.5)
    a.add(Record(0.1, "a", {"s": 1.0}))
    a.add(Record(0.6, "a", {"s": 2.0}))
    assert a.ready(a.watermark) == 0
    a.add(Record(0.45, "b", {"s": 3.0}))
    a.add(Record(1.0, "a", {"s": 4.0}))
    assert a.ready(a.watermark) == 1
    assert a.pop()[1]["s"].tolist() == [1.0, 3.0]


def test_early_closes_a_tick_once_every_asset_has_every_input_and_not_before():
    inputs = {"u": Signal(shape=(1,)), "y": Signal(shape=())}
    a = TickAssembler(inputs, ["a", "b"], dt=1.0, early=True)
    a.add(Record(0.0, "a", {"u": 1.0, "y": 2.0}))
    a.add(Record(1.0, "a", {"u": 5.0, "y": 6.0}))  # tick 1 of asset a: the clock now closes tick 0 anyway
    a.add(Record(1.5, "b", {"u": 7.0}))
    assert a.ready(a.watermark) == 1
    np.testing.assert_array_equal(a.pop()[1]["y"], [2.0, np.nan])
    a.add(Record(1.5, "b", {"y": 8.0}))  # tick 1 complete now, though the clock has not passed its end
    assert a.ready(a.watermark) == 1
    assert a.pop()[1]["y"].tolist() == [6.0, 8.0]
    a.add(Record(1.9, "b", {"y": 9.0}))  # too late for the tick closed early
    a.add(Record(2.2, "a", {"u": 1.0, "y": 1.0}))
    assert a.ready(a.watermark) == 0 and a.counters.late == 1
    without = TickAssembler(inputs, ["a", "b"], dt=1.0)
    for record in (Record(0.0, "a", {"u": 1.0, "y": 2.0}), Record(0.5, "b", {"u": 1.0, "y": 2.0})):
        without.add(record)
    assert without.ready(without.watermark) == 0


def test_a_second_value_replaces_the_first_when_newer_or_equal_and_counts_duplicate():
    a = assembler()
    a.add(Record(0.2, "a", {"s": 1.0}))
    a.add(Record(0.3, "a", {"s": 2.0}))  # newer: replaces
    a.add(Record(0.1, "a", {"s": 3.0}))  # older: dropped
    a.add(Record(0.3, "a", {"s": 4.0}))  # equal time, later arrival: replaces
    a.add(Record(0.0, "b", {"s": b'{"time": 0.4, "value": 5.0}'}))
    a.add(Record(0.45, "b", {"s": 6.0}))
    assert counts(a) == {"used": 2, "late": 0, "unknown": 0, "malformed": 0, "duplicate": 4}
    assert a.pop()[1]["s"].tolist() == [4.0, 6.0]


def test_times_on_tick_boundaries_belong_to_the_later_tick():
    a = TickAssembler({"s": Signal(shape=())}, ["a"], dt=0.1)
    assert [a.tick_of(k * 0.1) for k in range(50)] == list(range(50))
    assert a.tick_of(0.3 - 1e-12) == 3 and a.tick_of(0.2999) == 2


def test_hold_repeats_the_last_value_and_nan_leaves_the_gap():
    a = assembler(fill={"u": "hold", "s": "nan"})
    a.add(Record(0.0, "a", {"u": 1.0, "s": 1.0, "on": True, "n": 5}))
    a.add(Record(0.5, "a", {"u": float("nan"), "on": False}))  # explicit NaN: that tick only
    steps = [a.pop()[1] for _ in range(3)]
    assert steps[0]["u"][0, 0] == 1.0
    assert np.isnan(steps[1]["u"][0, 0]) and steps[2]["u"][0, 0] == 1.0
    assert np.isnan(steps[0]["u"][1, 0])  # before any value: NaN
    assert steps[0]["s"][0] == 1.0 and np.isnan(steps[1]["s"][0])
    assert [s["on"][0] for s in steps] == [True, False, False]  # bool ports hold by default
    assert [s["n"][0] for s in steps] == [5, 5, 5] and steps[0]["n"][1] == 0


def test_bad_fill_choices_are_refused_with_the_port_named():
    with pytest.raises(TwinGraphError, match="fill of Input 'on' cannot be 'nan'"):
        assembler(fill={"on": "nan"})
    with pytest.raises(TwinGraphError, match=r"must be one of \['hold', 'nan'\]"):
        assembler(fill={"u": "zero"})
    with pytest.raises(TwinGraphError, match=r"'fill' names \['w'\]"):
        assembler(fill={"w": "hold"})


def test_untimed_values_take_the_watermark_and_pending_counts_the_ticks_left():
    a = assembler()
    a.add(Record(None, "a", {"s": 1.0}))  # nothing seen yet: the next tick
    a.add(Record(1.2, "b", {"s": 2.0}))
    a.add(Record(None, "a", {"s": 3.0}))  # the watermark's tick, 2
    assert a.pending() == 3
    values = [a.pop()[1]["s"].tolist() for _ in range(3)]
    assert values[0][0] == 1.0 and values[2] == [3.0, 2.0] and a.pending() == 0


def test_the_state_round_trips_and_resumes_identically():
    a, b = assembler(fill={"u": "hold"}), assembler(fill={"u": "hold"})
    records = [Record(0.5 * k + 0.1 * (k % 3), "ab"[k % 2], {"u": float(k), "v": [k, -k]}) for k in range(12)]
    for r in records[:6]:
        a.add(r)
    a.pop()
    b.load_state_dict(json.loads(json.dumps(a.state_dict(), default=lambda x: x.tolist())))
    for r in records[6:]:
        a.add(r)
        b.add(r)
    for _ in range(a.pending()):
        ta, ia = a.pop()
        tb, ib = b.pop()
        assert ta == tb and all(np.array_equal(ia[p], ib[p], equal_nan=True) for p in ia)
    assert a.counters == b.counters


def test_a_flood_of_rejects_logs_a_few_lines_then_a_summary(caplog):
    a = assembler()
    a.log = RejectLog(every=0.0)
    with caplog.at_level(logging.INFO, logger="twingraph.streams"):
        for k in range(1000):
            a.add(Record(0.0, "a", {"u": b"{oops" + str(k).encode()}))
        a.log.summarize(force=True)
    assert a.counters.malformed == 1000
    lines = [r.getMessage() for r in caplog.records]
    assert sum("bad JSON value of asset 'a', port 'u' dropped" in line for line in lines) == LOG_FIRST
    assert all("\n" not in line for line in lines)
    summarised = sum(int(line.split()[0]) for line in lines if "more values dropped" in line)
    assert summarised == 1000 - LOG_FIRST
