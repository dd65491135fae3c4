"""Replay of recorded data through the service gives exactly the offline simulation."""

import time

import numpy as np
import pandas as pd
import pytest

from twingraph import TwinGraphError
from twingraph.streams import MemorySink, Record, ReplaySource, TwinService, open_source

from . import pumps

PUMPS = 20


def serve(source, **kw) -> MemorySink:
    sink = MemorySink()
    service = TwinService(
        pumps.example.build_twin(), source, [sink], assets=pumps.assets(PUMPS), outputs=pumps.OUTPUTS, **kw
    )
    counters = service.run()
    steps = pumps.recording(PUMPS)["u"].shape[0]
    assert counters.ticks == steps and counters.used == 2 * steps * PUMPS and counters.messages == counters.used
    return sink


def test_a_replayed_fleet_gives_the_offline_outputs_and_alarm_ticks():
    expected = pumps.expected(PUMPS)
    sink = serve(ReplaySource(pumps.long_frame(pumps.recording(PUMPS))))
    served = sink.arrays()
    pumps.same(served, expected)
    alarm = np.reshape(served["cusum.alarm"], expected["cusum.alarm"].shape)
    assert alarm.any(axis=0).all()  # every pump alarms within the recording
    np.testing.assert_array_equal(np.argmax(alarm, axis=0), np.argmax(expected["cusum.alarm"], axis=0))
    assert sink.ticks == list(range(len(sink.ticks)))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_replay_from_files_with_element_columns_is_exact(tmp_path, suffix):
    frame = pumps.long_frame(pumps.recording(PUMPS)).rename(columns={"u": "u[0]"}).sample(frac=1.0, random_state=1)
    path = tmp_path / f"fleet{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path, index=False)
    pumps.same(serve(open_source(str(path))).arrays(), pumps.expected(PUMPS))


def test_rows_come_in_time_order_and_element_columns_as_lists():
    frame = pd.DataFrame(
        {
            "time": [0.5, 0.0, 0.5],
            "asset": ["a", "b", "b"],
            "v[1]": [2.0, 4.0, 6.0],
            "v[0]": [1.0, 3.0, 5.0],
            "flag": [True, False, True],
        }
    )
    source = ReplaySource(frame)
    source.open()
    assert source.poll(0.0) == [
        Record(0.0, "b", {"v": [3.0, 4.0], "flag": False}),
        Record(0.5, "a", {"v": [1.0, 2.0], "flag": True}),
        Record(0.5, "b", {"v": [5.0, 6.0], "flag": True}),
    ]
    source.open(position=2)
    assert [r.asset for r in source.poll(0.0)] == ["b"] and source.exhausted


def test_paced_replay_follows_the_wall_clock_times_the_speed():
    frame = pd.DataFrame({"time": np.arange(11) * 0.1, "asset": "a", "u": np.arange(11.0)})
    source = ReplaySource(frame, speed=4.0)  # 1 s of data in 0.25 s
    began = time.monotonic()
    source.open()
    arrivals = []
    while not source.exhausted:
        for record in source.poll(0.05):
            arrivals.append((time.monotonic() - began, record.time))
    assert len(arrivals) == 11
    assert all(wall >= t / 4.0 - 1e-3 for wall, t in arrivals)
    assert 0.24 <= arrivals[-1][0] < 1.0


def test_bad_recordings_are_refused_clearly(tmp_path):
    with pytest.raises(TwinGraphError, match=r"no column \['asset'\]"):
        ReplaySource(pd.DataFrame({"time": [0.0], "u": [1.0]}))
    with pytest.raises(TwinGraphError, match="do not fill a shape"):
        ReplaySource(pd.DataFrame({"time": [0.0], "asset": ["a"], "v[0]": [1.0], "v[2]": [1.0]}))
    with pytest.raises(TwinGraphError, match="speed"):
        ReplaySource(pd.DataFrame({"time": [0.0], "asset": ["a"]}), speed=0)
    with pytest.raises(TwinGraphError, match="must end in .csv or .parquet"):
        open_source(str(tmp_path / "data.json"))
    with pytest.raises(TwinGraphError, match="'speed' must be a number"):
        open_source(str(tmp_path / "data.csv") + "?speed=fast")
