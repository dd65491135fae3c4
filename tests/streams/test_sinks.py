"""Sinks keep every value with full precision, appending across restarts."""

import numpy as np
import pandas as pd

from twingraph.streams import CSVSink, MemorySink, ParquetSink, open_sink

ASSETS = ["a", "b"]


def ticks(n: int, start: int = 0):
    """Tick number, time and values with awkward floats: a scalar port and a vector port."""
    rng = np.random.default_rng(start)
    for k in range(start, start + n):
        yield k, 0.1 * k, {"rul.rul": rng.normal(size=2) / 3, "track.params": rng.normal(size=(2, 2)) * 1e-7}


def written(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    frame = frame.sort_values(["tick", "asset"])
    return {
        "rul.rul": frame["rul.rul"].to_numpy().reshape(-1, 2),
        "track.params": frame[["track.params[0]", "track.params[1]"]].to_numpy().reshape(-1, 2, 2),
    }


def expected(n: int) -> dict[str, np.ndarray]:
    values = [v for _, _, v in ticks(n)]
    return {port: np.stack([v[port] for v in values]) for port in values[0]}


def test_the_csv_sink_appends_after_a_restart_with_one_header_and_exact_floats(tmp_path):
    path = tmp_path / "out.csv"
    for part in (range(0, 3), range(3, 5)):
        sink = open_sink(str(path))
        assert isinstance(sink, CSVSink)
        for k, t, values in list(ticks(5))[part.start : part.stop]:
            sink.write(k, t, ASSETS, values)
        sink.close()
    frame = pd.read_csv(path)
    assert list(frame.columns) == ["time", "tick", "asset", "rul.rul", "track.params[0]", "track.params[1]"]
    assert frame["tick"].tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    for port, values in written(frame).items():
        np.testing.assert_array_equal(values, expected(5)[port])  # bit for bit


def test_the_parquet_sink_writes_whole_parts_that_read_back_as_one_table(tmp_path):
    path = tmp_path / "out.parquet"
    sink = ParquetSink(path, every=2)
    for k, t, values in ticks(5):
        sink.write(k, t, ASSETS, values)
    assert len(list(path.glob("*.parquet"))) == 2  # the fifth tick waits for close
    sink.close()
    assert isinstance(open_sink(str(path)), ParquetSink)
    frame = pd.read_parquet(path)
    assert len(frame) == 10 and not list(path.glob(".*"))
    for port, values in written(frame).items():
        np.testing.assert_array_equal(values, expected(5)[port])


def test_the_memory_sink_gives_arrays_and_a_frame():
    sink = MemorySink()
    for k, t, values in ticks(3):
        sink.write(k, t, ASSETS, values)
    assert sink.ticks == [0, 1, 2]
    for port, values in sink.arrays().items():
        np.testing.assert_array_equal(values, expected(3)[port])
    frame = sink.frame()
    assert frame.index.names == ["tick", "asset"] and frame.loc[(2, "b"), "time"] == 0.2
