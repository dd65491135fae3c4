"""The pump fleet example: faults found, no false alarm, efficiency and RUL close to the truth, sound ranking."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from .scripts import load_example, run_main

example = load_example("pump_predictive_maintenance", "run_pump_maintenance")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The script as a user runs it (20 pumps, seed 0): its output folder and what it printed."""
    out = tmp_path_factory.mktemp("pump_predictive_maintenance")
    return out, run_main(example, out)


@pytest.fixture(scope="module")
def table(run):
    out, _ = run
    return pd.read_csv(out / "maintenance.csv")


def test_failure_time_is_where_the_profile_crosses_the_failure_efficiency():
    fleet = pd.DataFrame({"pump": [0, 1, 2], "eta_start": [1.0, 0.9, 0.7], "wear": [1e-3, 1e-3, 1e-4],
                          "fault_time": [np.inf, 100.0, 50.0], "drop": [0.0, 0.1, 0.2]})
    t_f = example.failure_time(fleet)
    # no fault: 0.4 / 1e-3; a fault before failure: (0.9 - 0.6 / 0.9) / 1e-3; a fault below failure: at once
    np.testing.assert_allclose(t_f, [400.0, (0.9 - 0.6 / 0.9) / 1e-3, 50.0])
    eta = np.diagonal(example.efficiency(fleet, t_f))
    np.testing.assert_allclose(eta[:2], example.ETA_FAILED)
    assert eta[2] < example.ETA_FAILED < np.diagonal(example.efficiency(fleet, t_f - 1e-6))[2]


def test_every_fault_is_found_and_nothing_else(table):
    # The smallest fault, 5 % at 9 V and efficiency 0.6, removes 0.05 * 0.6 * 0.76 L/s = 23 mL/s = 4.5 sigma
    # of flow once the 0.5 s flow lag has passed; the CUSUM (k = 1, h = 8) then needs about 8 / 3.5 ticks.
    # 2 s (four flow time constants) bounds the delay with room for the noise.
    faulty = table["fault_time"].notna()
    assert faulty.sum() == 8
    delay = table["alarm_time"] - table["fault_time"]
    assert ((delay[faulty] > 0) & (delay[faulty] <= 2.0)).all()
    assert table.loc[~faulty, "alarm_time"].isna().all()


def test_efficiency_estimates_are_within_two_percent(table):
    error = np.abs(table["efficiency_est"] - table["efficiency"]) / table["efficiency"]
    assert (error < 0.02).all()


def test_rul_close_to_the_truth_and_the_ranking_sound(table):
    # The trend is fitted over 100 s of estimates whose noise (sd ~0.002, correlated over ~2 s) gives its slope
    # a relative sd of about 4 % at the wear rates that fail within 600 s; 15 % of the true RUL is 3.5 sd of
    # it, 5 s covers the filter's lag (1.5 s) and the intercept.
    soon = (table["rul_true"] > 0) & (table["rul_true"] <= 600.0)
    assert soon.sum() >= 5
    error = (table["rul"] - table["rul_true"])[soon]
    assert (error.abs() <= 5.0 + 0.15 * table.loc[soon, "rul_true"]).all()
    failed = table["failure_time"] < example.DURATION - example.DT
    assert (table.loc[failed, "action"] == "replace").all() and (table.loc[~failed, "action"] != "replace").all()
    assert spearmanr(table["rul_lower"], table["rul_true"]).statistic > 0.95
    assert list(table["rul_lower"]) == sorted(table["rul_lower"])


def test_rul_fan_is_ordered_and_holds_the_truth_in_most_intervals(run, table):
    # The window fit's band misses the filter's lag and the far extrapolations of slowly wearing pumps (see the
    # README): its 90 % interval holds the truth for about 70 % of the (pump, tick) pairs, its 50 % one for 40 %.
    _, printed = run
    running = table[table["rul_true"] > 0]
    fan = running[["rul_lower", "rul_q25", "rul", "rul_q75", "rul_upper"]].to_numpy()
    assert (fan[:, :-1] <= fan[:, 1:]).all()
    summary = example.summarize(table)
    assert 0.5 < summary["coverage_90"] <= 1.0 and summary["coverage_50"] < summary["coverage_90"]
    assert "the 90 % interval holds the truth for" in printed and "RUL coverage over every (pump, tick)" in printed


def test_coverage_over_time_counts_pairs_up_to_the_failure():
    fleet = pd.DataFrame({"pump": [0, 1], "eta_start": [1.0, 1.0], "wear": [4e-3, 1e-3], "fault_time": [np.inf] * 2,
                          "drop": [0.0, 0.0]})  # pump 0 fails at 100 s, pump 1 at 400 s
    time = np.arange(0.0, 200.0, 50.0)
    truth = example.true_rul(fleet, time)
    np.testing.assert_allclose(truth, [[100.0, 400.0], [50.0, 350.0], [0.0, 300.0], [0.0, 250.0]])
    band = {"rul_lower": truth - 1.0, "rul_upper": truth + 1.0}
    band["rul_upper"][3, 1] = 200.0  # scored from 100 s to the failure: pump 1 at 100 and 150 s, this one a miss

    class History(dict):
        """What coverage_over_time reads of a History: ports by name and the time."""

    history = History({f"{name}.{port}": band[port] for name in example.INTERVALS for port in band})
    history.time = time
    scores = example.coverage_over_time(fleet, history)
    assert scores == dict.fromkeys(example.INTERVALS, 0.5)


def test_main_prints_the_table_and_writes_the_csvs_figure_and_diagram(run, table):
    out, printed = run
    assert "maintenance table at t = 599.75 s" in printed and "faults: 8/8 detected" in printed
    assert len(table) == 20 and {"pump", "action", "efficiency_est", "hi", "rul", "rul_lower", "rul_upper",
                                 "rul_q25", "rul_q75", "alarm_time", "failure_time"} <= set(table)
    history = pd.read_csv(out / "fleet_history.csv")
    assert len(history) == 20 * round(example.DURATION / example.DT)
    assert {"ekf.params[0]", "residual.residual[0]", "cusum.alarm[0]", "health.hi", "rul.rul",
            "rul_iqr.rul_lower"} <= set(history)
    assert (out / "fleet.png").stat().st_size > 10_000
    if example.shutil.which("dot"):
        assert (out / "pump_twin.svg").read_text().lstrip().startswith("<?xml")
