"""Monte Carlo time of event against closed forms, the block's timing and arming, and the armed window RUL."""

import numpy as np
import pytest
from scipy import integrate, stats

import twingraph as tg
from blocks.estimation import EKF, UKF
from blocks.health import (
    RUL,
    MonteCarloRUL,
    predict_rul,
    predict_rul_unscented,
    samples_from_gaussian,
    samples_from_particles,
    summarize,
)
from blocks.physics import FunctionODE, PumpLike

MU, SIGMA = 0.01, 0.001  # wear rate a ~ N(MU, SIGMA²) [1/s]: a > 0 but with probability Φ(-10)


def wear(x, u, t, p):
    """``ẋ = -a``: linear wear at rate ``a``."""
    return -p["a"][:, None]


def wear_model(**kwargs) -> FunctionODE:
    return FunctionODE(wear, params={"a": MU}, x0=1.0, **kwargs)


def exact_quantile(q, distance=1.0, mu=MU, sigma=SIGMA):
    """Quantile ``q`` of ``T = distance / a``: ``T`` falls as ``a`` rises, so it is ``distance / a_{1-q}``."""
    return distance / stats.norm.ppf(1 - np.asarray(q), mu, sigma)


def exact_mean(distance=1.0, mu=MU, sigma=SIGMA):
    return integrate.quad(lambda a: distance / a * stats.norm.pdf(a, mu, sigma), 0.0, mu + 12 * sigma)[0]


def gaussian_posterior(batch=1, n_samples=2000, seed=0, x0=1.0, mu=MU, sigma=SIGMA):
    """Samples of ``[x, a]`` from the Gaussian posterior ``x = x0`` exactly, ``a ~ N(mu, sigma²)``."""
    mean = np.column_stack([np.broadcast_to(x0, batch), np.broadcast_to(mu, batch)])
    cov = np.zeros((batch, 2, 2))
    cov[:, 1, 1] = np.broadcast_to(sigma, batch) ** 2
    z = samples_from_gaussian(mean, cov, n_samples, np.random.default_rng(seed))
    return z[:, :, :1], {"a": z[:, :, 1]}


def test_time_of_event_of_gaussian_wear_matches_the_closed_form():
    states, params = gaussian_posterior()
    result = predict_rul(wear_model(), states, params, dt=3.0, horizon=400.0, variable="x", threshold=0.0)
    np.testing.assert_allclose(result.samples, 1.0 / params["a"], rtol=1e-9)  # interpolation is exact for a line
    np.testing.assert_allclose(result.quantiles[0], exact_quantile([0.05, 0.5, 0.95]), rtol=0.03)
    np.testing.assert_allclose(result.mean[0], exact_mean(), rtol=0.03)
    assert result.p_event[0] == 1.0


def test_the_block_reproduces_the_closed_form_from_a_filters_gaussian():
    graph = tg.Graph("wear", dt=1.0)
    feeds = {port: graph.add(tg.Input(port, shape=shape)) for port, shape in
             (("x_hat", (1,)), ("params", (1,)), ("cov", (2, 2)))}
    mc = graph.add(MonteCarloRUL(model=wear_model(), estimate=("a",), variable="x", horizon=400.0, dt=2.5,
                                 n_samples=2000, quantiles=(0.05, 0.95), name="mc"))
    for port, feed in feeds.items():
        graph.connect(feed.out.value, mc.inp[port])
    hist = tg.Simulator(graph).run(inputs={"x_hat": [[1.0]], "params": [[MU]], "cov": [np.diag([0.0, SIGMA**2])]})
    lower, median, upper = exact_quantile([0.05, 0.5, 0.95])
    for port, expected in (("rul_lower", lower), ("rul_median", median), ("rul", median), ("rul_upper", upper),
                           ("rul_mean", exact_mean())):
        np.testing.assert_allclose(hist[f"mc.{port}"][0], expected, rtol=0.03, err_msg=port)
    assert hist["mc.rul_samples"].shape == (1, 2000) and hist["mc.p_event"][0] == 1.0


def test_unscented_variant_matches_the_moments_of_the_closed_form():
    mean = np.array([[1.0, MU], [2.0, 2 * MU], [np.nan, MU]])
    cov = np.stack([np.diag([0.0, SIGMA**2]), np.diag([0.0, 4 * SIGMA**2]), np.diag([0.0, SIGMA**2])])
    expected, sd = predict_rul_unscented(wear_model(), mean, cov, ("a",), dt=3.0, horizon=500.0, variable="x",
                                         threshold=0.0)
    second = integrate.quad(lambda a: a**-2 * stats.norm.pdf(a, MU, SIGMA), 0.0, MU + 12 * SIGMA)[0]
    np.testing.assert_allclose(expected[:2], exact_mean(), rtol=1e-3)  # 2 / a' with a' ~ N(2 MU, (2 SIGMA)²) is 1 / a
    np.testing.assert_allclose(sd[:2], np.sqrt(second - exact_mean() ** 2), rtol=0.01)
    assert np.isnan(expected[2])


def test_process_noise_gives_the_inverse_gaussian_first_passage_time():
    # x' = -a + Brownian noise of rate q from 1 to 0: T ~ IG(mean 1/a, shape 1/q)
    a, q, n = 0.01, 1e-4, 4000
    model = wear_model()
    result = predict_rul(model, np.ones((1, n, 1)), {"a": np.full((1, 1), a)}, dt=0.5, horizon=400.0,
                         variable="x", threshold=0.0, process_noise=q, rng=1, levels=(0.05, 0.5, 0.95))
    mean, shape = 1.0 / a, 1.0 / q
    exact = stats.invgauss(mean / shape, scale=shape)
    np.testing.assert_allclose(result.quantiles[0], exact.ppf([0.05, 0.5, 0.95]), rtol=0.03)
    np.testing.assert_allclose(result.mean[0], exact.mean(), rtol=0.02)
    np.testing.assert_allclose(result.samples.std(), exact.std(), rtol=0.08)


def test_assets_get_their_own_answers_independent_of_the_batch():
    x0, mu, sigma = np.array([1.0, 2.0, 0.5]), np.array([0.01, 0.02, 0.005]), np.array([1e-3, 1e-3, 5e-4])
    states, params = gaussian_posterior(3, 2000, 0, x0, mu, sigma)
    together = predict_rul(wear_model(), states, params, dt=2.0, horizon=400.0, variable="x", threshold=0.0)
    for b in range(3):
        exact = exact_quantile([0.05, 0.5, 0.95], x0[b], mu[b], sigma[b])
        np.testing.assert_allclose(together.quantiles[b], exact, rtol=0.03)
        np.testing.assert_allclose(together.mean[b], exact_mean(x0[b], mu[b], sigma[b]), rtol=0.03)
        alone = predict_rul(wear_model(), *gaussian_posterior(1, 2000, 0, x0[b], mu[b], sigma[b]), dt=2.0,
                            horizon=400.0, variable="x", threshold=0.0)
        np.testing.assert_allclose(together.samples[b], alone.samples[0], rtol=1e-12)


def test_censored_samples_are_inf_and_set_the_quantiles_beyond_the_horizon():
    states, params = gaussian_posterior()
    result = predict_rul(wear_model(), states, params, dt=1.0, horizon=100.0, variable="x", threshold=0.0)
    beyond = params["a"][0] < 0.01
    assert np.isinf(result.samples[0, beyond]).all() and np.isfinite(result.samples[0, ~beyond]).all()
    assert result.p_event[0] == pytest.approx(1 - beyond.mean())
    assert np.isinf(result.mean[0]) and np.isinf(result.quantiles[0, 2]) and result.quantiles[0, 0] < 100.0


def test_weighted_summary_is_the_inverse_of_the_weighted_cdf():
    p = summarize([[4.0, 1.0, 3.0, 2.0]], [[0.4, 0.1, 0.3, 0.2]], levels=(0.05, 0.25, 0.5, 0.95))
    # cumulative weight over sorted times 1, 2, 3, 4: 0.1, 0.3, 0.6, 1.0
    np.testing.assert_array_equal(p.quantiles, [[1.0, 2.0, 3.0, 4.0]])
    assert p.median[0] == 3.0 and p.mean[0] == pytest.approx(3.0) and p.p_event[0] == 1.0
    assert np.isnan(summarize([[1.0, np.nan]]).median[0])


def test_systematic_resampling_draws_each_particle_floor_or_ceil_of_its_share():
    rng = np.random.default_rng(3)
    weights = rng.random((4, 50))
    weights /= weights.sum(1, keepdims=True)
    particles = np.broadcast_to(np.arange(50.0)[None, :, None], (4, 50, 1))
    drawn = samples_from_particles(particles, weights, 1000, rng)[:, :, 0].astype(int)
    counts = np.stack([np.bincount(row, minlength=50) for row in drawn])
    assert np.all(counts >= np.floor(1000 * weights) - 1e-9) and np.all(counts <= np.ceil(1000 * weights) + 1e-9)
    assert np.isnan(samples_from_particles(particles[:1], [np.full(50, np.nan)], 10, rng)).all()


def test_gaussian_samples_handle_zero_variance_rounding_and_invalid_covariances():
    rng = np.random.default_rng(0)
    a = np.array([[1.0, 0.999999999999], [0.999999999999, 1.0]]) * 1e-6  # rank one up to rounding
    cov = np.stack([np.diag([0.0, 4.0]), a @ np.diag([1.0, 1.0 + 1e-15]), np.diag([1.0, -1.0]),
                    np.full((2, 2), np.nan), [[1.0, 2.0], [2.0, 1.0]]])
    z = samples_from_gaussian(np.ones((5, 2)), cov, 20000, rng)
    assert np.all(z[0, :, 0] == 1.0) and z[0, :, 1].std() == pytest.approx(2.0, rel=0.02)
    np.testing.assert_allclose(np.cov(z[1].T), a, rtol=0.03)
    assert np.isnan(z[2:]).all()  # a negative variance, NaN, an indefinite matrix


def test_event_functions_outputs_and_direction():
    states, params = np.ones((1, 5, 1)), {"a": np.linspace(0.008, 0.012, 5)[None]}
    exact = 0.5 / params["a"][0]
    common = dict(dt=4.0, horizon=200.0)
    by_margin = predict_rul(wear_model(), states, params, event=lambda x, p: x[:, 0] - 0.5, **common)
    np.testing.assert_allclose(by_margin.samples[0], exact, rtol=1e-9)
    by_flag = predict_rul(wear_model(), states, params, event=lambda x, p: x[:, 0] <= 0.5, **common)
    assert np.all(np.abs(by_flag.samples[0] - exact) <= 2.0)  # the middle of the step that crosses
    rising = predict_rul(wear_model(), -states, {"a": -params["a"]}, variable="y[0]", threshold=-0.5,
                         direction="above", **common)
    np.testing.assert_allclose(rising.samples[0], exact, rtol=1e-9)
    already = predict_rul(wear_model(), states * 0.4, params, variable="x", threshold=0.5, **common)
    assert np.all(already.samples == 0.0)


def test_future_input_profiles_drive_the_prediction():
    # ẋ = -u: under u = 0.01 then 0.02 after 50 s, x = 1 reaches 0 at 50 + 0.5 / 0.02 = 75 s
    model = FunctionODE(lambda x, u, t, p: -u, n_inputs=1, x0=1.0)
    steps = np.where(np.arange(100) < 50, 0.01, 0.02)[:, None]
    for profile in (steps, lambda tau: [0.01 if tau < 50 else 0.02]):
        result = predict_rul(model, np.ones((2, 3, 1)), dt=1.0, horizon=200.0, variable="x", threshold=0.0,
                             future_input=profile)
        np.testing.assert_allclose(result.samples, 75.0, rtol=1e-9)
    with pytest.raises(ValueError, match="future_input"):
        predict_rul(model, np.ones((1, 3, 1)), dt=1.0, horizon=10.0, variable="x", threshold=0.0)


def test_function_argument_errors():
    model = wear_model()
    with pytest.raises(ValueError, match="variable"):
        predict_rul(model, np.ones((1, 2, 1)), dt=1.0, horizon=10.0, variable="z", threshold=0.0)
    with pytest.raises(ValueError, match="either variable and threshold, or event"):
        predict_rul(model, np.ones((1, 2, 1)), dt=1.0, horizon=10.0)
    with pytest.raises(ValueError, match=r"shape \(B, S, 1\)"):
        predict_rul(model, np.ones((2, 1)), dt=1.0, horizon=10.0, variable="x", threshold=0.0)
    with pytest.raises(ValueError, match="direction must be one of"):
        predict_rul(model, np.ones((1, 2, 1)), dt=1.0, horizon=10.0, variable="x", threshold=0.0, direction="up")
    with pytest.raises(ValueError, match="not parameters"):
        predict_rul(model, np.ones((1, 2, 1)), {"b": 1.0}, dt=1.0, horizon=10.0, variable="x", threshold=0.0)


def block_graph(batch_inputs, **params):
    """A MonteCarloRUL on the wear model fed from Inputs; ``batch_inputs`` per port ``(T, B, ...)``."""
    graph = tg.Graph("wear", dt=1.0)
    block = MonteCarloRUL(model=wear_model(), estimate=("a",), variable="x", horizon=300.0, n_samples=200,
                          name="mc", **params)
    graph.add(block)
    for port, values in batch_inputs.items():
        feed = graph.add(tg.Input(port, shape=np.shape(values)[2:], dtype=np.asarray(values).dtype.name))
        graph.connect(feed.out.value, block.inp[port])
    return graph


def wear_inputs(ticks, batch, x0=1.0, alarm=None):
    inputs = {
        "x_hat": np.full((ticks, batch, 1), x0),
        "params": np.full((ticks, batch, 1), MU),
        "cov": np.broadcast_to(np.diag([0.0, SIGMA**2]), (ticks, batch, 2, 2)).copy(),
    }
    if alarm is not None:
        inputs["alarm"] = alarm
    return inputs


def test_predictions_every_period_are_aged_in_between_and_floored_at_zero():
    inputs = wear_inputs(12, 2, x0=np.array([1.0, 0.02])[None, :, None])
    hist = tg.Simulator(block_graph(inputs, period=5), batch=2).run(inputs=inputs)
    rul = hist["mc.rul"]
    for start in (0, 5, 10):
        stop = min(start + 5, 12)
        np.testing.assert_allclose(rul[start:stop, 0], rul[start, 0] - np.arange(stop - start), rtol=1e-12)
        assert rul[start, 0] != rul[start - 1, 0] + 1 or start == 0  # a fresh prediction, new random numbers
    assert rul[0, 1] == pytest.approx(2.0, rel=0.2) and np.all(rul[3:5, 1] == 0.0)  # 2 s left: aged to 0
    samples = hist["mc.rul_samples"]
    np.testing.assert_allclose(samples[3, 0], np.maximum(samples[0, 0] - 3.0, 0.0))
    np.testing.assert_allclose(hist["mc.rul_mean"][3], samples[3].mean(1))


def test_armed_block_waits_for_its_alarm_and_latches():
    alarm = np.zeros((10, 2, 1), dtype=bool)[:, :, 0]
    alarm[3, 0] = alarm[6, 1] = True  # one tick each: the block stays armed
    inputs = wear_inputs(10, 2, alarm=alarm)
    graph = block_graph(inputs, period=100, armed=True)
    sim = tg.Simulator(graph, batch=2)
    hist = sim.run(inputs=inputs)
    rul, p_event = hist["mc.rul"], hist["mc.p_event"]
    assert np.isinf(rul[:3, 0]).all() and np.isinf(rul[:6, 1]).all() and np.all(p_event[:3] == 0.0)
    assert np.isinf(hist["mc.rul_samples"][:3]).all()
    np.testing.assert_allclose(rul[3:, 0], rul[3, 0] - np.arange(7), rtol=1e-12)
    np.testing.assert_allclose(rul[6:, 1], rul[6, 1] - np.arange(4), rtol=1e-12)
    assert rul[3, 0] == pytest.approx(100.0, rel=0.05) and rul[6, 1] == rul[3, 0]  # the same draws: j = 0
    assert list(sim.snapshot()["blocks"]["mc"]["count_"]) == [1, 1]


def test_snapshot_restore_resumes_exactly():
    alarm = np.arange(20)[:, None] >= np.array([2, 7])[None]
    inputs = wear_inputs(20, 2, alarm=alarm)
    inputs["x_hat"] = inputs["x_hat"] - 0.01 * np.arange(20)[:, None, None]
    graph = block_graph(inputs, period=3, armed=True, process_noise=1e-5)
    sim = tg.Simulator(graph, batch=2)
    sim.run(inputs={k: v[:9] for k, v in inputs.items()})
    state = sim.snapshot()
    history = sim.run(inputs={k: v[9:] for k, v in inputs.items()})
    first = {port: np.array(history[port]) for port in history.ports}
    resumed = tg.Simulator(graph, batch=2)
    resumed.restore(state)
    again = resumed.run(inputs={k: v[9:] for k, v in inputs.items()})
    for port in ("mc.rul", "mc.rul_samples", "mc.rul_mean", "mc.p_event"):
        np.testing.assert_array_equal(first[port][-11:], again[port][-11:], err_msg=port)


def test_a_nan_posterior_gives_nan_until_the_next_valid_prediction():
    inputs = wear_inputs(6, 2)
    inputs["x_hat"][2:4, 0] = np.nan
    hist = tg.Simulator(block_graph(inputs, period=2), batch=2).run(inputs=inputs)
    for port in ("rul", "rul_lower", "rul_upper", "rul_mean", "rul_median", "p_event"):
        values = hist[f"mc.{port}"]
        assert np.isnan(values[2:4, 0]).all() and np.isfinite(values[:2, 0]).all(), port
        assert np.isfinite(values[4:, 0]).all() and np.isfinite(values[:, 1]).all(), port


def test_particle_posterior_is_resampled_by_weight():
    rng = np.random.default_rng(5)
    n = 400
    a = rng.normal(MU, SIGMA, n)
    weights = stats.norm.pdf(a, MU + SIGMA, SIGMA) / stats.norm.pdf(a, MU, SIGMA)  # reweighted to N(MU + SIGMA)
    particles = np.column_stack([np.ones(n), a])[None, None]
    inputs = {"particles": particles, "weights": (weights / weights.sum())[None, None]}
    graph = block_graph(inputs, posterior="particles")
    hist = tg.Simulator(graph).run(inputs=inputs)
    exact = exact_quantile([0.05, 0.95], mu=MU + SIGMA)
    np.testing.assert_allclose([hist["mc.rul_lower"][0], hist["mc.rul_upper"][0]], exact, rtol=0.03)


def test_block_param_and_wiring_errors_name_the_block_and_param():
    cases = [
        (dict(model=None, variable="x"), "'model' parameter of MonteCarloRUL 'mc'"),
        (dict(model=wear_model(), variable="speed"), "'variable' parameter of MonteCarloRUL 'mc'"),
        (dict(model=wear_model(), variable="x", quantiles=(0.9, 0.1)), "'quantiles' parameter"),
        (dict(model=wear_model(), variable="x", process_noise=[1.0, 2.0]), "'process_noise' parameter"),
        (dict(model=PumpLike(), variable="omega"), "'future_input' parameter of MonteCarloRUL 'mc'"),
        (dict(model=wear_model(), variable="x", future_input=1.0), "'future_input' parameter"),
        (dict(model=wear_model(), variable="x", estimate=("b",)), "'estimate' parameter"),
        (dict(model=wear_model(), variable="x", armed=1), "'armed' parameter"),
    ]
    for params, message in cases:
        graph = tg.Graph("g", dt=1.0)
        graph.add(MonteCarloRUL(name="mc", **params))
        with pytest.raises(tg.ParamError, match=message):
            graph.validate()
    graph = tg.Graph("g", dt=1.0)
    block = graph.add(MonteCarloRUL(model=wear_model(), estimate=("a",), variable="x", posterior="particles",
                                    name="mc"))
    graph.connect(graph.add(tg.Input("p", shape=(10, 3))).out.value, block.inp.particles)
    graph.connect(graph.add(tg.Input("w", shape=(10,))).out.value, block.inp.weights)
    with pytest.raises(tg.ValidationError, match="input 'particles' must have shape"):
        graph.validate()


@pytest.mark.parametrize("filter_type", [EKF, UKF])
def test_kalman_filters_publish_the_full_covariance_for_the_prediction(filter_type):
    pump = PumpLike()
    graph = tg.Graph("pump", dt=0.05)
    u, y = graph.add(tg.Input("u", shape=(1,))), graph.add(tg.Input("y", shape=(1,)))
    kf = graph.add(filter_type(model=pump, estimate=("efficiency",), q=1e-8, q_params=1e-6, r=1e-12, name="kf"))
    mc = graph.add(MonteCarloRUL(model=pump, estimate=("efficiency",), variable="efficiency", threshold=0.6,
                                 horizon=1.0, n_samples=50, future_input=12.0, name="mc"))
    graph.connect(u.out.value, kf.inp.u)
    graph.connect(y.out.value, kf.inp.y)
    for port in ("x_hat", "params", "cov"):
        graph.connect(kf.out[port], mc.inp[port])
    hist = tg.Simulator(graph, batch=2).run(inputs={"u": np.full((20, 2, 1), 12.0),
                                                     "y": np.full((20, 2, 1), 5e-4)})
    cov = hist["kf.cov"]
    assert cov.shape == (20, 2, 3, 3)
    np.testing.assert_array_equal(np.diagonal(cov, axis1=2, axis2=3), hist["kf.P"])
    np.testing.assert_allclose(cov, cov.transpose(0, 1, 3, 2), rtol=1e-12, atol=1e-300)
    assert np.all((hist["mc.p_event"] >= 0) & (hist["mc.p_event"] <= 1))


def step_fault_health(dt=0.25, seed=0):
    """The online-degradation scenario's health: slow wear, a step at 250 s, fast wear to 0 at 610 s."""
    t = np.arange(0.0, 640.0, dt)
    efficiency = np.where(t < 250.0, 1.0 - 1e-4 * t, 0.8 * 0.975 - 5e-4 * (t - 250.0))
    hi = (efficiency - 0.6) / 0.4 + 0.005 * np.random.default_rng(seed).normal(size=t.shape)
    return t, hi, 610.0 - t


def test_armed_window_rul_restarts_at_the_alarm_and_follows_the_truth():
    t, hi, truth = step_fault_health()
    alarm = t >= 250.25  # the CUSUM fires one tick after the step
    results = {}
    for armed in (False, True):
        graph = tg.Graph("life", dt=0.25)
        rul = graph.add(RUL(window=400, armed=armed, name="rul"))
        graph.connect(graph.add(tg.Input("hi", shape=())).out.value, rul.inp.hi)
        inputs = {"hi": hi}
        if armed:
            graph.connect(graph.add(tg.Input("alarm", shape=(), dtype="bool")).out.value, rul.inp.alarm)
            inputs["alarm"] = alarm
        results[armed] = tg.Simulator(graph).run(inputs=inputs)["rul.rul"]
    across = (t > 250.0) & (t < 350.0)  # the unarmed window holds the step: about 30 s where the truth is 350 s
    assert results[False][across].min() < 35.0
    at = np.searchsorted(t, [300.0, 400.0, 500.0])
    np.testing.assert_allclose(results[True][at], truth[at], rtol=0.03)
    assert np.isinf(results[True][t < 250.25]).all()
    after = (t > 300.0) & (t < 600.0)  # 50 s of samples after the alarm on: within 5 % (+ 1 s) throughout
    assert np.all(np.abs(results[True][after] - truth[after]) < 0.05 * truth[after] + 1.0)
