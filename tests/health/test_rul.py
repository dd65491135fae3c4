"""RUL on synthetic health indicators with a known failure time."""

import numpy as np
import pytest

import twingraph as tg
from blocks.health import RUL

DT = 0.5


def rul_history(block: RUL, hi: np.ndarray) -> tg.History:
    g = tg.Graph("life", dt=DT)
    g.add(block)
    feed = g.add(tg.Input("h", shape=()))
    g.connect(feed.out.value, f"{block.name}.hi")
    return tg.Simulator(g, batch=hi.shape[1]).run(inputs={"h": hi})


def test_linear_trend_with_noise_predicts_the_failure_time():
    t = np.arange(400) * DT  # failure at t = 250 s
    rng = np.random.default_rng(0)
    hi = (1.0 - t / 250.0)[:, None] + 0.01 * rng.normal(size=(400, 50))
    hist = rul_history(RUL(window=100, model="linear", name="rul"), hi)
    k = 300  # t = 150 s: true RUL 100 s
    error = hist["rul.rul"][k] - 100.0
    assert abs(error.mean()) < 1.0 and error.std() < 3.0
    covered = (hist["rul.rul_lower"][k] <= 100.0) & (hist["rul.rul_upper"][k] >= 100.0)
    assert covered.mean() > 0.85


def test_exponential_trend_and_best_model():
    t = np.arange(300) * DT
    hi = 1.0 - 0.05 * np.exp(t / 50.0)  # reaches 0 at t = 50 ln 20 ≈ 149.8 s
    failure = 50.0 * np.log(20.0)
    for model in ("exponential", "best"):
        hist = rul_history(RUL(window=40, model=model, name="rul"), hi[:, None])
        np.testing.assert_allclose(hist["rul.rul"][200], failure - t[200], rtol=1e-9)
    linear = rul_history(RUL(window=40, model="linear", name="rul"), hi[:, None])
    assert linear["rul.rul"][200] > failure - t[200] + 5.0  # a line underestimates the acceleration


def test_flat_rising_and_failed_indicators():
    steps = 50
    hi = np.stack([np.full(steps, 0.7), np.linspace(0.5, 0.9, steps), np.linspace(0.2, -0.1, steps)], axis=1)
    hist = rul_history(RUL(window=20, name="rul"), hi)
    assert np.isinf(hist["rul.rul"][-1, :2]).all() and hist["rul.rul"][-1, 2] == 0.0
    assert np.isinf(hist["rul.rul"][:9]).all()  # fewer than min_samples = 10
    assert np.isfinite(hist["rul.rul"][9:, 2]).all()


def test_a_flat_noisy_indicator_predicts_no_failure():
    """A slope that is only noise gives inf, not a crossing far in the future."""
    rng = np.random.default_rng(2)
    hi = 0.7 + 0.01 * rng.normal(size=(300, 200))
    rul = rul_history(RUL(window=100, name="rul"), hi)["rul.rul"][100:]
    assert np.isinf(rul).mean() > 0.95  # a chance slope passes z = 1.96 in about 2.5 % of the fits
    exact = rul_history(RUL(window=100, name="rul"), np.full((300, 3), 0.7))["rul.rul"]
    assert np.isinf(exact).all()  # rounding-level slopes of an exactly flat indicator


def test_horizon_caps_what_is_reported():
    rng = np.random.default_rng(2)
    hi = 0.7 + 0.01 * rng.normal(size=(300, 200))
    hist = rul_history(RUL(window=100, horizon=100.0, name="rul"), hi)
    rul, upper = hist["rul.rul"], hist["rul.rul_upper"]
    assert np.isinf(rul[100:]).all()  # chance crossings lie well beyond 100 s (the window spans 50 s)
    assert np.isinf(upper[np.isinf(rul)]).all()
    t = np.arange(400) * DT  # clean line: failure at t = 250 s, true RUL at tick k is 250 - k DT
    clean = (1.0 - t / 250.0)[:, None]
    for horizon in (np.inf, 200.25):  # between ticks: no rounding at the edge
        hist = rul_history(RUL(window=100, horizon=horizon, name="rul"), clean)
        expected = np.where(250.0 - t <= horizon, 250.0 - t, np.inf)[9:]
        np.testing.assert_allclose(hist["rul.rul"][9:], expected, rtol=1e-9)
        np.testing.assert_allclose(hist["rul.rul_upper"][9:], expected, rtol=1e-6)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"window": 2}, "The 'window' parameter of RUL 'rul' must be an int >= 3 [ticks]. Got 2."),
        (
            {"model": "weibull"},
            "The 'model' parameter of RUL 'rul' must be one of ['linear', 'exponential', 'best']. Got 'weibull'.",
        ),
        ({"threshold": 1.0}, "The 'threshold' parameter of RUL 'rul' must be a number < 1. Got 1.0."),
        ({"confidence": 1}, "The 'confidence' parameter of RUL 'rul' must be a number in (0, 1). Got 1."),
        ({"min_samples": 200}, "The 'min_samples' parameter of RUL 'rul' must be an int in [3, 100] [ticks]."),
        ({"horizon": 0.0}, "The 'horizon' parameter of RUL 'rul' must be a number > 0. Got 0.0."),
        ({"horizon": "long"}, "The 'horizon' parameter of RUL 'rul' must be a number > 0. Got 'long'."),
        ({"unit": None}, "The 'unit' parameter of RUL 'rul' must be a time unit such as 's' or 'cycle'. Got None."),
    ],
)
def test_bad_params_are_refused_when_the_graph_is_validated(params, message):
    g = tg.Graph("life", dt=DT)
    g.connect(g.add(tg.Input("h", shape=())).out.value, g.add(RUL(name="rul", **params)).inp.hi)
    with pytest.raises(tg.ParamError) as error:
        g.validate()
    assert message in str(error.value)


def test_band_covers_the_truth_with_serially_correlated_noise():
    """A filtered HI has AR(1)-like errors; the band allows for them (95 % nominal coverage)."""
    steps, assets, phi = 400, 400, 0.9
    rng = np.random.default_rng(1)
    noise = np.zeros((steps, assets))
    for k in range(1, steps):
        noise[k] = phi * noise[k - 1] + 0.01 * np.sqrt(1 - phi**2) * rng.normal(size=assets)
    t = np.arange(steps) * DT  # failure at t = 250 s
    hist = rul_history(RUL(window=100, model="linear", name="rul"), (1.0 - t / 250.0)[:, None] + noise)
    k = 300  # true RUL 100 s
    covered = (hist["rul.rul_lower"][k] <= 100.0) & (hist["rul.rul_upper"][k] >= 100.0)
    assert covered.mean() > 0.75  # 0.82 measured; white-noise variances covered 0.36


def test_rul_is_in_the_time_unit_given():
    g = tg.Graph("engine", dt=1.0)
    g.connect(g.add(tg.Input("h", shape=())).out.value, g.add(RUL(window=20, unit="cycle", name="rul")).inp.hi)
    hist = tg.Simulator(g).run(inputs={"h": 1.0 - 0.01 * np.arange(21)})
    assert {s.unit for s in tg.Simulator(g).plan.outputs["rul"].values()} == {"cycle"}
    assert hist["rul.rul"][-1] == pytest.approx(80.0, rel=1e-9)
