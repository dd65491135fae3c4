"""Prognostic metrics against hand-computed values, properscoring's CRPS and ProgPy's own metrics."""

import numpy as np
import pytest

from blocks.health import metrics


def test_point_errors_by_hand():
    pred, true = np.array([10.0, 25.0, 40.0]), np.array([20.0, 20.0, 40.0])
    assert metrics.rmse(pred, true) == pytest.approx(np.sqrt((100 + 25 + 0) / 3))
    assert metrics.mae(pred, true) == pytest.approx(5.0)
    # d = -10 (early): e^(10/13) - 1; d = +5 (late): e^(1/2) - 1; d = 0: 0
    assert metrics.phm08_score(pred, true) == pytest.approx(np.exp(10 / 13) - 1 + np.exp(0.5) - 1)


def test_late_predictions_cost_more_than_early_ones():
    assert metrics.phm08_score([30.0], [20.0]) > metrics.phm08_score([10.0], [20.0]) > 0


def test_relative_accuracy_and_its_mean():
    np.testing.assert_allclose(metrics.relative_accuracy([80.0, 55.0], [100.0, 50.0]), [0.8, 0.9])
    assert metrics.cumulative_relative_accuracy([80.0, 55.0], [100.0, 50.0]) == pytest.approx(0.85)


def test_alpha_lambda_points_and_samples():
    inside = metrics.alpha_lambda([80.0, 79.0, 120.0], [100.0] * 3, alpha=0.2)
    np.testing.assert_array_equal(inside, [True, False, True])
    samples = np.array([[81.0, 90.0, 110.0, 130.0], [50.0, 60.0, 99.0, 101.0]])
    np.testing.assert_array_equal(metrics.alpha_lambda(samples, [100.0, 100.0], alpha=0.2, beta=0.75), [True, False])


def test_prognostic_horizon_needs_predictions_to_stay_in_the_band():
    times = np.array([0.0, 20.0, 40.0, 60.0, 80.0])
    true = 100.0 - times
    pred = true + np.array([30.0, 5.0, 25.0, 5.0, 2.0])  # in the ±10 band at 20, out at 40, in from 60 on
    assert metrics.prognostic_horizon(times, pred, true, eol=100.0, alpha=0.1) == 40.0
    assert metrics.prognostic_horizon(times, true, true, eol=100.0) == 100.0
    assert metrics.prognostic_horizon(times, true + 50.0, true, eol=100.0) == 0.0


def test_interval_coverage_and_width():
    lower, upper = np.array([0.0, 1.0, 2.0, 3.0]), np.array([2.0, 2.0, 4.0, 5.0])
    assert metrics.interval_coverage(lower, upper, [2.0, 3.0, 2.0, 6.0]) == 0.5  # bounds are inside
    assert metrics.interval_width(lower, upper) == pytest.approx(7.0 / 4.0)


def test_crps_closed_form_by_hand_and_for_a_single_sample():
    # samples {0, 1, 3}, y = 1: E|X - y| = (1 + 0 + 2)/3; E|X - X'| = (2/9)(1 + 3 + 2) = 4/3
    assert metrics.crps([0.0, 3.0, 1.0], 1.0) == pytest.approx(1.0 - 2.0 / 3.0)
    np.testing.assert_allclose(metrics.crps([[4.0], [-1.0]], [1.0, 1.0]), [3.0, 2.0])


def test_crps_matches_properscoring():
    properscoring = pytest.importorskip("properscoring")
    rng = np.random.default_rng(1)
    samples, observed = rng.gamma(2.0, 10.0, (20, 300)), rng.gamma(2.0, 10.0, 20)
    expected = properscoring.crps_ensemble(observed, samples)
    np.testing.assert_allclose(metrics.crps(samples, observed), expected, rtol=1e-12)


def test_crps_of_a_gaussian_ensemble_approaches_the_closed_form():
    from scipy.stats import norm

    z = norm.ppf((np.arange(20_000) + 0.5) / 20_000)  # a quasi-random N(0, 1) ensemble
    y = 0.7
    exact = y * (2 * norm.cdf(y) - 1) + 2 * norm.pdf(y) - 1 / np.sqrt(np.pi)
    assert metrics.crps(z, y) == pytest.approx(exact, rel=1e-4)


def test_health_indicator_quality_by_hand():
    his = [np.array([1.0, 0.9, 0.95, 0.6, 0.2]), np.array([1.0, 0.7, 0.4, 0.2])]
    assert metrics.monotonicity(his) == pytest.approx((2 / 4 + 3 / 3) / 2)
    line = [np.linspace(1.0, 0.0, n) for n in (10, 25, 40)]
    assert metrics.trendability(line) == pytest.approx(1.0)
    assert metrics.prognosability(line) == pytest.approx(1.0)  # every unit fails at 0
    spread = [np.linspace(1.0, end, 30) for end in (0.0, 0.2, 0.4)]
    assert metrics.prognosability(spread) == pytest.approx(np.exp(-np.std([0.0, 0.2, 0.4]) / 0.8))


def test_trendability_is_low_for_opposite_trends():
    assert metrics.trendability([np.linspace(0, 1, 50), np.sin(np.linspace(0, np.pi, 50))]) < 0.1


@pytest.fixture
def progpy_profile():
    """A ProgPy time-of-event profile of sample sets, and the same predictions as arrays."""
    pytest.importorskip("progpy")
    from progpy.predictors import ToEPredictionProfile
    from progpy.uncertain_data import UnweightedSamples

    rng = np.random.default_rng(3)
    times = np.array([0.0, 10.0, 20.0, 30.0, 40.0])
    toe = 100.0 + rng.normal(0.0, 1.0, len(times))[:, None] * 6 + rng.normal(0.0, 4.0, (len(times), 200))
    profile = ToEPredictionProfile()
    for t, samples in zip(times, toe):
        profile.add_prediction(t, UnweightedSamples([{"EOD": v} for v in samples]))
    return profile, times, toe


def test_cumulative_relative_accuracy_matches_progpy(progpy_profile):
    import progpy.metrics

    profile, _, toe = progpy_profile
    expected = progpy.metrics.cumulative_relative_accuracy(profile, {"EOD": 103.0})["EOD"]
    assert metrics.cumulative_relative_accuracy(toe.mean(axis=1), np.full(len(toe), 103.0)) == pytest.approx(expected)


def test_monotonicity_matches_progpy(progpy_profile):
    import progpy.metrics

    profile, times, toe = progpy_profile
    expected = progpy.metrics.monotonicity(profile)["EOD"]
    assert metrics.monotonicity([toe.mean(axis=1) - times]) == pytest.approx(expected)


@pytest.mark.parametrize(("alpha", "met"), [(0.02, False), (0.03, False), (0.05, True), (0.2, True)])
def test_alpha_lambda_matches_progpy(progpy_profile, alpha, met):
    import progpy.metrics

    profile, times, toe = progpy_profile
    k = 2  # lambda = times[2]: ProgPy evaluates the first prediction at or after it
    expected = progpy.metrics.alpha_lambda(profile, {"EOD": 101.0}, lambda_value=times[k], alpha=alpha, beta=0.5)
    mine = metrics.alpha_lambda(toe[k] - times[k], 101.0 - times[k], alpha=alpha, beta=0.5)
    assert bool(mine) == bool(expected["EOD"]) == met
