"""RUL on synthetic health indicators with a known failure time."""

import numpy as np
import pytest
from scipy.stats import norm

import twingraph as tg
from blocks.health import RUL
from twingraph.block import Buffers, Context

DT = 0.5
Z95 = float(norm.ppf(0.975))


def refit_line(g, w, tau):
    """The block's fit before it kept running sums: weighted least squares over the whole window."""
    s0, s1, s2 = w.sum(1), w @ tau, w @ tau**2
    sy, sty = (w * g).sum(1), (w * g) @ tau
    det = s0 * s2 - s1**2
    b = (s0 * sty - s1 * sy) / det
    a = (s2 * sy - s1 * sty) / det
    resid = w * (g - a[:, None] - b[:, None] * tau)
    sum_sq = (resid**2).sum(1)
    rho = np.clip((resid[:, 1:] * resid[:, :-1]).sum(1) / sum_sq, 0.0, 0.99)
    sigma2 = sum_sq / (s0 - 2) * (1 + rho) / (1 - rho)
    return a, b, sigma2 * s2 / det, sigma2 * s0 / det, -sigma2 * s1 / det


def refit_crossing(g, w, tau_axis, target, toward, z):
    a, b, var_a, var_b, cov_ab = refit_line(g, w, tau_axis)
    tau = (target - a) / b
    sd = np.sqrt(np.maximum(var_a + tau**2 * var_b + 2 * tau * cov_ab, 0.0)) / np.abs(b)
    reached = toward * (a - target) >= 0
    approaching = toward * b > z * np.sqrt(var_b)
    tau = np.where(reached, 0.0, np.where(approaching & np.isfinite(tau), tau, np.inf))
    sd = np.where(np.isfinite(tau) & np.isfinite(sd), sd, 0.0)
    return tau, sd, a, b


def refit_rul(hi, window, threshold=0.0, model="linear", min_samples=10, horizon=np.inf, alarm=None, z=Z95):
    """``rul, rul_lower, rul_upper`` ``(ticks, B)`` of the block as it was: every tick a refit of the window."""
    ticks, batch = hi.shape
    tau_axis = -DT * np.arange(window)[::-1]
    kept = np.full((batch, window), np.nan)
    armed = np.full(batch, alarm is None)
    results = np.empty((3, ticks, batch))
    for k in range(ticks):
        first = np.zeros(batch, bool) if alarm is None else alarm[k] & ~armed
        recent = np.concatenate([kept[:, 1:], hi[k][:, None]], axis=1)
        recent[first, :-1] = np.nan
        w = np.isfinite(recent).astype(float)
        h = np.nan_to_num(recent)
        enough = w.sum(1) >= min_samples
        w = w * enough[:, None] + (~enough)[:, None] * np.r_[np.zeros(window - 3), np.ones(3)]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            fits = {}
            if model in ("linear", "best"):
                tau, sd, a, b = refit_crossing(h, w, tau_axis, threshold, -1.0, z)
                fits["linear"] = tau, sd, (w * (h - a[:, None] - b[:, None] * tau_axis) ** 2).sum(1)
            if model in ("exponential", "best"):
                g = np.log(np.maximum(1.0 - h, 1e-12))
                tau, sd, a, b = refit_crossing(g, w, tau_axis, np.log(1.0 - threshold), 1.0, z)
                pred = 1.0 - np.exp(np.minimum(a[:, None] + b[:, None] * tau_axis, 0.0))
                fits["exponential"] = tau, sd, (w * (h - pred) ** 2).sum(1)
            if model == "best":
                pick = fits["exponential"][2] < fits["linear"][2]
                tau, sd = (np.where(pick, e, l) for e, l in zip(fits["exponential"][:2], fits["linear"][:2]))
            else:
                tau, sd, _ = fits[model]
            live = enough & (armed | first) & (tau <= horizon)
            tau = np.where(live, tau, np.inf)
            upper = tau + z * sd
            results[:, k] = tau, np.maximum(tau - z * sd, 0.0), np.where(upper <= horizon, upper, np.inf)
        kept[first] = np.nan
        armed |= first
        kept[:, :-1] = kept[:, 1:]
        kept[:, -1] = hi[k]
    return results


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


def degrading(ticks, batch, seed, noise=0.01, phi=0.0, gaps=0.05):
    """Health falling from 1 to 0 at t = 250 s, AR(1) noise (``phi``), a fraction ``gaps`` of samples missing."""
    rng = np.random.default_rng(seed)
    t = np.arange(ticks) * DT
    e = np.zeros((ticks, batch))
    for k in range(1, ticks):
        e[k] = phi * e[k - 1] + noise * np.sqrt(1 - phi**2) * rng.normal(size=batch)
    hi = (1.0 - t / 250.0)[:, None] + e
    hi[rng.random(hi.shape) < gaps] = np.nan
    hi[60:90, 0] = np.nan  # a gap longer than the window: the sums restart
    return hi


def assert_same_as_refit(hist, expected, window, name="rul"):
    """``rul`` to 1e-9 relative; a crossing near now and the band's half-width to 1e-9 of the window's span."""
    for port, want in zip(("rul", "rul_lower", "rul_upper"), expected):
        got = hist[f"{name}.{port}"]
        assert (np.isinf(got) == np.isinf(want)).all(), port
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9 * window * DT, err_msg=port)


@pytest.mark.parametrize(
    ("params", "noise", "phi"),
    [
        ({"window": 30}, 0.01, 0.0),
        ({"window": 30, "min_samples": 3}, 0.02, 0.9),  # serially correlated residuals: ρ > 0
        ({"window": 3, "min_samples": 3}, 0.01, 0.0),
        ({"window": 50, "horizon": 120.0, "confidence": 0.8}, 0.01, 0.5),
        ({"window": 30, "model": "exponential", "threshold": 0.2}, 0.005, 0.0),
        ({"window": 40, "model": "best"}, 0.005, 0.7),
    ],
)
def test_running_sums_give_the_refit(params, noise, phi):
    window = params["window"]
    hi = degrading(600, 12, seed=window, noise=noise, phi=phi)
    z = float(norm.ppf((1 + params.get("confidence", 0.95)) / 2))
    hist = rul_history(RUL(name="rul", **params), hi)
    expected = refit_rul(hi, z=z, **{k: v for k, v in params.items() if k != "confidence"})
    assert_same_as_refit(hist, expected, window)


def test_an_exact_line_gives_the_exact_crossing_at_every_tick():
    """The refit found no crossing where its residuals came out exactly 0 (0 / 0); the sums give it."""
    hi = degrading(300, 12, seed=20, noise=0.0)  # 1 - t / 250 with gaps: 0.5 at t = 125 s
    hist = rul_history(RUL(window=20, threshold=0.5, name="rul"), hi)
    t = np.arange(300) * DT
    counts = np.array([np.isfinite(hi[max(k - 19, 0) : k + 1]).sum(0) for k in range(300)])
    expected = np.where(counts >= 10, np.maximum(125.0 - t, 0.0)[:, None], np.inf)
    np.testing.assert_allclose(hist["rul.rul"], expected, rtol=1e-9, atol=1e-9)
    for port in ("rul_lower", "rul_upper"):  # half-widths: square roots of rounding-level variances, ~1e-6 s
        np.testing.assert_allclose(hist[f"rul.{port}"], expected, rtol=1e-6, atol=1e-4)
    assert np.isinf(refit_rul(hi, window=20, threshold=0.5)[0][np.isfinite(expected)]).any()


def test_an_indicator_clipped_at_the_threshold_gives_the_refit():
    """A failed asset's indicator stays at exactly 0: the sums are made exact, the crossing is reached (0)."""
    t = np.arange(300) * DT
    rng = np.random.default_rng(5)
    hi = np.clip((1.0 - t / 100.0)[:, None] + 0.01 * rng.normal(size=(300, 6)), 0.0, 1.0)  # 0 from t ≈ 100 s
    hist = rul_history(RUL(window=40, name="rul"), hi)
    expected = refit_rul(hi, window=40)
    assert_same_as_refit(hist, expected, 40)
    assert (hist["rul.rul_upper"][-50:] == 0.0).all()  # windows of zeros only


def test_armed_restarts_give_the_refit():
    hi = degrading(400, 12, seed=3, noise=0.01, phi=0.8)
    alarm = np.zeros(hi.shape, bool)
    for asset, tick in enumerate([0, 5, 29, 30, 31, 100, 150, 222, 399]):  # the last 3 assets never alarm
        alarm[tick:, asset] = True
    alarm[200:210, 1] = False  # the alarm latches
    for model in ("linear", "best"):
        g = tg.Graph("life", dt=DT)
        rul = g.add(RUL(window=30, model=model, armed=True, name="rul"))
        g.connect(g.add(tg.Input("h", shape=())).out.value, rul.inp.hi)
        g.connect(g.add(tg.Input("alarm", shape=(), dtype="bool")).out.value, rul.inp.alarm)
        hist = tg.Simulator(g, batch=12).run(inputs={"h": hi, "alarm": alarm})
        expected = refit_rul(hi, window=30, model=model, alarm=alarm)
        assert_same_as_refit(hist, expected, 30)
        assert np.isfinite(expected[0][:, :6]).any() and np.isinf(expected[0][:, 9:]).all()


def test_no_drift_over_a_long_run():
    """20,000 ticks of running sums (rebuilt every window) against a refit of the last windows.

    The indicator wanders widely, then, for the last 500 ticks, falls slowly with noise 1e-6: sums that only
    added and dropped would keep the rounding of the wide part, a thousand times the tail's squared residuals.
    """
    ticks, window = 20_000, 50
    rng = np.random.default_rng(4)
    t = np.arange(ticks) * DT
    hi = (1.0 - t / 12_000.0 + 0.1 * np.sin(t / 500.0))[:, None] + 0.01 * rng.normal(size=(ticks, 4))
    hi[-500:] = 0.5 - 2e-6 * t[:500, None] + 1e-6 * rng.normal(size=(500, 4))
    hi[rng.random(hi.shape) < 0.05] = np.nan
    block = RUL(window=window, model="linear", name="rul")
    inputs = block.input_signals()
    block.reset(Context(batch=4, dt=DT, inputs=inputs, outputs=block.output_signals(inputs)))
    inp, out = Buffers("rul", {"hi": np.empty(4)}), Buffers("rul", {p: np.empty(4) for p in block.outputs})
    tail = ticks - 2 * window - 7  # not a multiple of the window: rebuilt within the tail
    got = {p: [] for p in block.outputs}
    for k in range(ticks):
        inp.hi[...] = hi[k]
        block.output(k * DT, inp, out)
        block.update(k * DT, inp)
        for port in got if k >= tail + window else ():
            got[port].append(out[port].copy())
    expected = refit_rul(hi[tail:], window=window, model="linear")[:, window:]
    assert_same_as_refit({f"rul.{p}": np.array(v) for p, v in got.items()}, expected, window)
