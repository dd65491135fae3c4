"""The online degradation example meets the acceptance numbers of its issue over ten seeds."""

import numpy as np
import pandas as pd
import pytest

from .scripts import load_example, run_main

example = load_example("online_degradation", "run_online_degradation")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The script as a user runs it (ten seeds): its output folder and what it printed."""
    out = tmp_path_factory.mktemp("online_degradation")
    return out, run_main(example, out)


@pytest.fixture(scope="module")
def summary(run):
    out, _ = run
    return example.summarize(pd.read_csv(out / "ticks.csv"))


def test_true_rul_follows_the_injected_profile():
    t_f = example.failure_time()
    assert example.efficiency(t_f) == pytest.approx(example.ETA_FAILED)
    assert t_f == pytest.approx(example.T0 + (0.8 * (1.0 - 1e-4 * example.T0) - 0.6) / 5e-4)
    assert example.efficiency(example.T0) == pytest.approx(0.8 * example.efficiency(example.T0 - 1e-9))
    np.testing.assert_allclose(example.true_rul([t_f - 100.0, t_f + 5.0]), [100.0, 0.0])


def test_efficiency_settles_within_two_percent(summary):
    per_seed, _ = summary
    assert (per_seed["max_error_settled"] < example.TOLERANCE).all()
    assert (per_seed["settling_s"] < example.SETTLE_BY).all()


def test_no_false_alarm_before_t0_over_ten_seeds(summary):
    per_seed, _ = summary
    assert len(per_seed) == 10 and per_seed["false_alarms"].sum() == 0


def test_fault_detected_within_two_ticks(summary):
    # One tick after t0 the flow has lost 0.2 (1 - exp(-dt / tau_q)) = 7.9 % of itself, >= 0.058 L/s at
    # 9 V: about 12 sigma of the 0.005 L/s meter, above k + h = 9 unless the noise takes 3 sigma off it;
    # after two ticks the loss is 12.6 %, 19 sigma. So every seed alarms on the first or second tick.
    per_seed, _ = summary
    assert per_seed["delay_s"].notna().all()
    assert (per_seed["delay_ticks"] >= 1).all() and (per_seed["delay_s"] <= 2 * example.DT).all()


def test_rul_error_at_three_points(summary):
    # The random-walk EKF lags the wear ramp by dt (1 - K) / K ≈ 5 s (K ≈ 0.05 for q_params = 1e-7 and
    # the meter's noise), which the RUL inherits as a bias; the line fitted over a 100 s window of
    # estimates scatters by about 4 s at a true RUL of 150 s. 15 s is the lag plus 2.5 such sd.
    _, rul = summary
    assert sorted(rul["rul_true"].round(6).unique()) == [50.0, 100.0, 150.0]
    assert len(rul) == 30 and (rul["error"].abs() < 15.0).all()


def test_main_prints_the_numbers_and_writes_the_csv_and_the_figure(run):
    out, printed = run
    assert "false alarms before t0 = 250 s: 0 alarm ticks over 10 seeds" in printed
    ticks = pd.read_csv(out / "ticks.csv")
    assert len(ticks) == 10 * round(example.DURATION / example.DT)
    assert {"efficiency_est", "efficiency_sd", "residual", "alarm", "hi", "rul", "rul_true"} <= set(ticks)
    assert (out / "online_degradation.png").stat().st_size > 10_000
