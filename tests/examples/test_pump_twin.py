"""The README's demo: the pump twin alarms after each onset, tracks the efficiency and bands the true RUL."""

import contextlib
import io

import numpy as np
import pytest

from .scripts import load_example

example = load_example("pump_twin", "run_pump_twin")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The script as a user runs it (four pumps, seed 0): its output folder, what it printed and its summary."""
    out = tmp_path_factory.mktemp("pump_twin")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        rows = example.main(["--out", str(out)])
    return out, printed.getvalue(), rows


def test_injected_profile_and_true_rul():
    t = np.array([0.0, 100.0, 250.0, 400.0, 500.0])
    eta = example.efficiency(t, [100.0], [400.0])[:, 0]
    np.testing.assert_allclose(eta, [1.0, 1.0, 0.8, 0.6, 0.6 - 0.4 / 3])
    np.testing.assert_allclose(example.true_rul(t, [400.0])[:, 0], [400.0, 300.0, 150.0, 0.0, 0.0])


def test_alarm_after_the_onset_and_within_thirty_seconds(run):
    # The detecting filter lags a decline of 1e-3 /s by about 5 s: a flow bias near one standard deviation of
    # the meter, which the CUSUM (k = 0.5, h = 12) adds up in a few seconds more. Before the onset the
    # residual is white and the in-control run length of the CUSUM is far beyond the 2,800 ticks watched.
    _, _, rows = run
    assert len(rows) == 4
    for row in rows:
        assert row["onset"] < row["alarm"] <= row["onset"] + 30.0


def test_final_efficiency_estimate_close_to_the_truth(run):
    # The tracking filter lags the decline by about 1 s (0.0016 at most) and scatters by sd ~0.003.
    _, _, rows = run
    for row in rows:
        assert row["efficiency_est"] == pytest.approx(row["efficiency"], abs=0.012)


def test_rul_band_holds_the_truth_most_of_the_time_after_the_alarm(run):
    _, _, rows = run
    assert all(row["coverage"] > 0.5 for row in rows)
    assert np.mean([row["coverage"] for row in rows]) > 0.75
    points = [point for row in rows for point in row["rul_points"]]
    assert len(points) == 12 and sum(point["inside"] for point in points) >= 9
    assert all(abs(point["rul"] - point["rul_true"]) < 10.0 for point in points)


def test_main_prints_the_detection_and_writes_the_figure(run):
    out, printed, _ = run
    assert "pump 0: degradation starts at 100 s, failure at 400 s (truth)" in printed
    assert printed.count("alarm at") == 4 and "the 95 % band holds the true RUL" in printed
    assert (out / "pump_twin.png").stat().st_size > 10_000

