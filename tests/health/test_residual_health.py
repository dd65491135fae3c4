"""ResidualHealth: the window statistic, its chi-square law on healthy residuals, inflated variance, NaNs, errors."""

import numpy as np
import pytest
from scipy import integrate
from scipy.stats import binom, chi2

import twingraph as tg
from blocks.estimation import EKF, Residual
from blocks.health import ResidualHealth
from blocks.physics import MassSpringDamper


def run(block: ResidualHealth, residual: np.ndarray) -> tg.History:
    g = tg.Graph("h", dt=1.0)
    g.add(block)
    g.connect(g.add(tg.Input("r", shape=residual.shape[2:])).out.value, f"{block.name}.residual")
    return tg.Simulator(g, batch=residual.shape[1]).run(inputs={"r": residual})


def expected_hi(variance: float, n: int, nominal: float, failed: float) -> float:
    """``E[hi]`` when ``n ρ / σ² ~ χ²(n)``, integrating the clipped map against the chi-square density."""

    def hi(x):
        return np.clip((failed - variance * x / n) / (failed - nominal), 0.0, 1.0) * chi2.pdf(x, n)

    return integrate.quad(hi, *chi2.ppf([1e-15, 1 - 1e-15], n), limit=200)[0]  # the bulk: quad misses a far peak


def test_ratio_is_the_mean_square_over_the_window_skipping_nans():
    rng = np.random.default_rng(0)
    r = rng.normal(size=(40, 3, 2))
    r[rng.random(r.shape) < 0.3] = np.nan
    hist = run(ResidualHealth(window=7, min_samples=5, name="hi"), r)
    for k in range(40):
        recent = r[max(0, k - 6) : k + 1].transpose(1, 0, 2).reshape(3, -1)
        n = np.isfinite(recent).sum(1)
        expected = np.where(n >= 5, np.nansum(recent**2, axis=1) / np.maximum(n, 1), np.nan)
        np.testing.assert_allclose(hist["hi.variance_ratio"][k], expected, rtol=1e-12)
    np.testing.assert_array_equal(hist["hi.hi"], np.clip((4.0 - hist["hi.variance_ratio"]) / 3.0, 0.0, 1.0))
    assert np.isnan(hist["hi.hi"][0]).all()  # 2 elements at most: below min_samples


def test_healthy_white_residuals_stay_near_one_as_chi_square_predicts():
    """2,000 healthy assets, window 100: 100 ρ ~ χ²(100), so hi ≥ 1 - (χ²_0.99(100)/100 - 1)/3 = 0.881 at 99 %."""
    assets, window = 2000, 100
    r = np.random.default_rng(1).normal(size=(window + 20, assets, 1))
    hi = run(ResidualHealth(window=window, name="hi"), r)["hi.hi"][-1]
    bound = 1 - (chi2.ppf(0.99, window) / window - 1) / 3
    assert round(bound, 3) == 0.881
    low, high = binom.ppf([0.001, 0.999], assets, 0.01)  # assets below the 1 % bound: Binomial(2000, 0.01)
    assert low <= np.sum(hi < bound) <= high
    mean = expected_hi(1.0, window, 1.0, 4.0)
    assert round(mean, 4) == 0.9812  # ≈ 1 - E[(ρ - 1)⁺] / 3 = 1 - √(2/100) / √(2π) / 3
    assert abs(hi.mean() - mean) < 3.3 * hi.std() / np.sqrt(assets)  # 99.9 % two-sided


def test_inflated_variance_gives_the_predicted_health():
    """σ² = 2.5 on two channels, window 100: ρ ~ 2.5 χ²(200)/200, hi ≈ (4 - 2.5)/3 = 0.5."""
    assets, window, variance = 2000, 100, 2.5
    r = np.sqrt(variance) * np.random.default_rng(2).normal(size=(window, assets, 2))
    hist = run(ResidualHealth(window=window, name="hi"), r)
    ratio, hi = hist["hi.variance_ratio"][-1], hist["hi.hi"][-1]
    n = 2 * window
    assert abs(ratio.mean() - variance) < 3.3 * variance * np.sqrt(2 / n) / np.sqrt(assets)
    assert abs(ratio.std() / (variance * np.sqrt(2 / n)) - 1) < 3.3 / np.sqrt(2 * (assets - 1))
    mean = expected_hi(variance, n, 1.0, 4.0)
    assert abs(mean - 0.5) < 1e-3  # clipping is negligible this far from 0 and 1
    assert abs(hi.mean() - mean) < 3.3 * hi.std() / np.sqrt(assets)


def test_a_filter_told_the_wrong_noise_loses_health():
    """An EKF assuming r = 1e-3 on a sensor of variance 3e-3: ρ = (H P⁻ Hᵀ + 3r) / (H P⁻ Hᵀ + r), just under 3."""
    model, q, r = MassSpringDamper(), np.array([1e-7, 1e-7]), 1e-3
    steps, assets = 600, 20
    rng = np.random.default_rng(3)
    x, p = np.zeros((assets, 2)), model.batch_params(assets)
    u = np.sin(0.3 * np.arange(steps))[:, None, None] * np.ones((1, assets, 1))
    y = np.empty((steps, assets, 1))
    noisy = np.arange(assets) >= assets // 2  # half the fleet has the noisier sensor
    for k in range(steps):
        sd = np.where(noisy, np.sqrt(3 * r), np.sqrt(r))[:, None]
        y[k] = model.observe(x, u[k], p) + sd * rng.normal(size=(assets, 1))
        x = model.advance(x, u[k], k * 0.05, 0.05, p) + np.sqrt(q) * rng.normal(size=(assets, 2))
    g = tg.Graph("fleet", dt=0.05)
    ekf = g.add(EKF(model=model, q=q, r=r, p0=1e-6, x0=0.0, name="ekf"))
    res = g.add(Residual(name="res"))
    hi = g.add(ResidualHealth(window=500, name="hi"))
    g.connect(g.add(tg.Input("u", shape=(1,), unit="N")).out.value, ekf.inp.u)
    g.connect(g.add(tg.Input("y", shape=(1,), unit="m")).out.value, ekf.inp.y)
    g.connect(ekf.out.innovation, res.inp.innovation)
    g.connect(ekf.out.S, res.inp.S)
    g.connect(res.out.residual, hi.inp.residual)
    hist = tg.Simulator(g, batch=assets).run(inputs={"u": u, "y": y})
    S = hist["ekf.S"][-1, 0, 0]
    healthy_ratio, inflated_ratio = 1.0, (S + 2 * r) / S  # H P⁻ Hᵀ + R_true over H P⁻ Hᵀ + R
    spread = 3.3 * np.sqrt(2 / 500)  # ρ's relative standard deviation, ignoring the filter's small memory
    ratio = hist["hi.variance_ratio"][-1]
    assert np.all(np.abs(ratio[~noisy] / healthy_ratio - 1) < spread)
    assert np.all(np.abs(ratio[noisy] / inflated_ratio - 1) < spread)
    assert np.all(hist["hi.hi"][-1][~noisy] > 0.9) and np.all(hist["hi.hi"][-1][noisy] < 0.5)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"window": 0}, "The 'window' parameter of ResidualHealth 'hi' must be an int >= 1 [ticks]. Got 0."),
        ({"nominal": -1.0}, "The 'nominal' parameter of ResidualHealth 'hi' must be a number >= 0. Got -1.0."),
        ({"nominal": "low"}, "The 'nominal' parameter of ResidualHealth 'hi' must be a number >= 0. Got 'low'."),
        ({"failed": 1.0}, "The 'failed' parameter of ResidualHealth 'hi' must be > nominal (1.0). Got 1.0."),
        ({"failed": np.inf}, "The 'failed' parameter of ResidualHealth 'hi' must be a number, finite. Got inf."),
        ({"min_samples": 2.5}, "The 'min_samples' parameter of ResidualHealth 'hi' must be an int >= 1. Got 2.5."),
    ],
)
def test_bad_params_are_refused_when_the_graph_is_validated(params, message):
    g = tg.Graph("h", dt=1.0)
    g.connect(g.add(tg.Input("r", shape=(1,))).out.value, g.add(ResidualHealth(name="hi", **params)).inp.residual)
    with pytest.raises(tg.ParamError) as error:
        g.validate()
    assert message in str(error.value)
