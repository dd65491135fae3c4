"""The particle filter: the Kalman filter's posterior on a linear-Gaussian model, a nonlinear model, resampling."""

import numpy as np
import pytest

import twingraph as tg
from blocks.estimation import EKF, UKF, ParticleFilter
from blocks.estimation.particle import residual, systematic, weighted_quantiles
from blocks.physics import FunctionODE, PumpLike
from blocks.sources import Input

from .problems import DT, filter_graph


def random_walk() -> FunctionODE:
    """``x_{k+1} = x_k`` (Euler of ``ẋ = 0``, exact), measured directly: with noise, the textbook Kalman filter."""
    return FunctionODE(lambda x, u, t, p: 0.0 * x, states=("x",), integrator="euler", name="walk")


def growth() -> FunctionODE:
    """The univariate nonstationary growth model, one tick a step: a bimodal posterior (``y`` sees only ``x²``)."""

    def f(x, u, t, p):  # Euler over DT lands exactly on the map x/2 + 25 x / (1 + x²) + 8 cos(1.2 k)
        return (x / 2 + 25 * x / (1 + x**2) + 8 * np.cos(1.2 * t / DT) - x) / DT

    return FunctionODE(f, h=lambda x, u, p: x**2 / 20, states=("x",), n_outputs=1, integrator="euler", x0=0.1,
                       name="growth")


def simulate(model, steps: int, batch: int, q: float, r: float, seed: int):
    """True states ``(T, B, n_x)`` and their measurements ``(T, B, n_y)``, with process noise of variance q."""
    rng = np.random.default_rng(seed)
    x, p, none = model.initial_state(batch), model.batch_params(batch), np.zeros((batch, 0))
    xs, ys = [], []
    for k in range(steps):
        xs.append(x)
        ys.append(model.observe(x, none, p) + np.sqrt(r) * rng.normal(size=(batch, model.n_y)))
        x = model.advance(x, none, k * DT, DT, p) + np.sqrt(q) * rng.normal(size=x.shape)
    return np.array(xs), np.array(ys)


def history(block: tg.Block, y: np.ndarray, **inputs) -> tg.History:
    return tg.Simulator(filter_graph(block), batch=y.shape[1]).run(inputs={"y": y, **inputs})


@pytest.mark.parametrize("resampling", ["systematic", "residual"])
def test_linear_gaussian_posterior_is_the_kalman_filters(resampling):
    """Mean and variance within 2 % of the Kalman filter's over 500 steps with 5,000 particles.

    "Within 2 %" is taken over the run: the mean error averages at most 2 % of
    the Kalman filter's standard deviation, ``mean_k |m_pf - m_kf| / sd_kf ≤
    0.02``, and the variance ratio averages within 2 % of 1. A bound per step
    would sit at the Monte Carlo floor itself: the mean of 5,000 independent
    draws from the exact posterior is off by 1.4 % of a standard deviation
    (rms), their variance by 2 %. With 500 particles the error is √10 larger.
    """
    q, r = 0.1, 1.0
    _, y = simulate(random_walk(), 500, 1, q, r, seed=3)
    kf = history(EKF(model=random_walk(), q=q, r=r, p0=1.0, name="f"), y)
    pf = {n: history(ParticleFilter(model=random_walk(), q=q, r=r, p0=1.0, n_particles=n, resampling=resampling,
                                    name="f"), y) for n in (500, 5000)}
    errors = {n: np.mean(np.abs(h["f.x_hat"] - kf["f.x_hat"]) / np.sqrt(kf["f.P"])) for n, h in pf.items()}
    ratio = pf[5000]["f.P"] / kf["f.P"]
    assert errors[5000] <= 0.02
    assert abs(np.mean(ratio) - 1) <= 0.02
    assert ratio.min() > 0.7 and ratio.max() < 1.5  # and no step far off
    assert errors[500] / errors[5000] > 2.5  # the error falls as 1/√N
    np.testing.assert_allclose(pf[5000]["f.std"], np.sqrt(pf[5000]["f.P"]))


def test_pf_beats_the_ekf_and_the_ukf_on_the_growth_model():
    """RMSE over 100 steps of 8 trajectories: literature values ~5 (PF), ~20 (EKF) for this model."""
    q, r = 10.0, 1.0
    x, y = simulate(growth(), 100, 8, q, r, seed=1)
    rmse = {}
    for kind, extra in ((EKF, {}), (UKF, {}), (ParticleFilter, {"n_particles": 1000})):
        estimate = history(kind(model=growth(), q=q, r=r, p0=1.0, name="f", **extra), y)["f.x_hat"]
        rmse[kind.__name__] = np.sqrt(np.mean((estimate - x) ** 2, axis=(0, 2)))
    assert np.all(rmse["ParticleFilter"] < rmse["EKF"] / 2)
    assert np.mean(rmse["ParticleFilter"]) < 0.75 * np.mean(rmse["UKF"])
    assert 3.0 < np.mean(rmse["ParticleFilter"]) < 6.5


def exact_efficiency_posterior(eta: np.ndarray, u: np.ndarray, y: np.ndarray, prior: tuple[float, float], r: float):
    """Posterior mean and standard deviation of η per asset, on a grid: the flow is deterministic given η."""
    grid = np.linspace(0.5, 1.0, 2001)
    model = PumpLike(efficiency=grid)
    x, p = model.initial_state(len(grid)), model.batch_params(len(grid))
    log_post = np.broadcast_to(-0.5 * (grid - prior[0]) ** 2 / prior[1], (len(eta), len(grid))).copy()
    for k in range(len(y)):
        u_k = np.full((len(grid), 1), u[k, 0, 0])
        log_post -= 0.5 * (y[k][:, None] - model.observe(x, u_k, p)[:, 0]) ** 2 / r
        x = model.advance(x, u_k, k * DT, DT, p)
    w = np.exp(log_post - log_post.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    mean = w @ grid
    return mean, np.sqrt(np.sum(w * (grid - mean[:, None]) ** 2, axis=1))


def test_jitter_estimates_a_worn_pumps_efficiency_with_a_diverse_cloud():
    eta, r, prior = np.array([0.8, 0.7]), 1e-10, (1.0, 0.04)
    truth = PumpLike(efficiency=eta)
    x, p = truth.initial_state(2), truth.batch_params(2)
    u = np.full((300, 2, 1), 12.0)
    rng, y = np.random.default_rng(5), np.empty((300, 2, 1))
    for k in range(300):
        y[k] = truth.observe(x, u[k], p) + np.sqrt(r) * rng.normal(size=(2, 1))
        x = truth.advance(x, u[k], k * DT, DT, p)
    mean, sd = exact_efficiency_posterior(eta, u, y[:, :, 0], prior, r)
    clouds = {}
    for jitter in (0.2, 0.0):
        pf = ParticleFilter(model=PumpLike(), estimate=("efficiency",), q=0.0, q_params=0.0, r=r, p0=0.0,
                            p0_params=prior[1], n_particles=1000, jitter=jitter, name="f")
        hist = history(pf, y, u=u)
        clouds[jitter] = hist["f.particles"][-1, :, :, 2]
        if jitter:
            assert np.all(np.abs(hist["f.params"][-1, :, 0] - mean) < 2 * sd)  # sd ≈ 6e-4
            assert np.all(np.abs(hist["f.params"][-1, :, 0] - eta) < 0.003)
            assert np.all(hist["f.quantiles"][-1, :, 0, 2] < hist["f.quantiles"][-1, :, 2, 2])
    assert all(len(np.unique(cloud)) == 1000 for cloud in clouds[0.2])
    assert all(len(np.unique(cloud)) < 30 for cloud in clouds[0.0])  # without jitter: a few values left


def resample(counts: np.ndarray) -> None:
    """Checks shared by both schemes: whole copies that sum to N."""
    assert counts.dtype.kind == "i" and np.all(counts >= 0)
    assert np.all(counts.sum(axis=0) == len(counts))


def test_systematic_resampling_is_unbiased_with_floor_or_ceiling_copies():
    w = np.random.default_rng(0).dirichlet(np.full(10, 0.5))
    n, draws = len(w), 100_000
    u = (np.arange(draws) + 0.5) / draws  # the offset over a fine grid: the average is the expectation
    counts = systematic(np.broadcast_to(w[:, None], (n, draws)), u)
    resample(counts)
    assert np.all((counts == np.floor(n * w)[:, None]) | (counts == np.ceil(n * w)[:, None]))
    np.testing.assert_allclose(counts.mean(axis=1), n * w, atol=n / draws)


def test_residual_resampling_is_unbiased_and_keeps_the_integer_parts():
    w = np.random.default_rng(1).dirichlet(np.full(10, 0.5))
    n, draws = len(w), 40_000
    counts = residual(np.broadcast_to(w[:, None], (n, draws)), np.random.default_rng(2).random((n, draws)))
    resample(counts)
    assert np.all(counts >= np.floor(n * w)[:, None])
    standard_error = counts.std(axis=1) / np.sqrt(draws)
    assert np.all(np.abs(counts.mean(axis=1) - n * w) <= 4 * standard_error + 1e-12)


def test_weighted_quantiles_invert_the_weighted_distribution_function():
    rng = np.random.default_rng(3)
    values, weights, levels = rng.normal(size=(50, 3)), rng.random((50, 3)), np.array([0.0, 0.05, 0.5, 0.95, 1.0])
    weights /= weights.sum(axis=0)
    ours = weighted_quantiles(values, weights, levels)
    for j in range(3):
        numpy = np.quantile(values[:, j], levels, weights=weights[:, j], method="inverted_cdf")
        np.testing.assert_array_equal(ours[:, j], numpy)


def pump_graph(**params) -> tuple[tg.Graph, dict[str, np.ndarray]]:
    """A PF estimating a pump's efficiency, and 30 ticks of inputs for 2 assets (flows of a worn pump)."""
    pf = ParticleFilter(model=PumpLike(name="pump"), estimate=("efficiency",), q=[1e-2, 1e-12], r=1e-8,
                        p0_params=0.02, n_particles=64, name="f", **params)
    rng = np.random.default_rng(6)
    inputs = {"u": np.full((30, 2, 1), 12.0), "y": 0.8e-3 * (1 - np.exp(-np.arange(30) / 10))[:, None, None]
              + 1e-4 * rng.normal(size=(30, 2, 1))}
    return filter_graph(pf), inputs


@pytest.mark.parametrize("resampling", ["systematic", "residual"])
def test_snapshot_restore_through_a_file_resumes_exactly(resampling, tmp_path):
    graph, inputs = pump_graph(resampling=resampling, ess_threshold=0.9)
    sim = tg.Simulator(graph, batch=2)
    full = sim.run(inputs=inputs)
    sim.reset()
    sim.run(inputs={k: v[:15] for k, v in inputs.items()})
    graph.save(tmp_path / "pf.json", state=sim.snapshot())
    resumed = tg.Simulator(tg.load(tmp_path / "pf.json"), batch=2)
    resumed.restore(tg.load_state(tmp_path / "pf.json"))
    rest = resumed.run(inputs={k: v[15:] for k, v in inputs.items()})
    assert len(np.unique(full["f.weights"][15:].round(12), axis=2)) > 1  # the weights were reset on resampling
    for port in ("f.x_hat", "f.params", "f.particles", "f.weights", "f.quantiles", "f.nis"):
        np.testing.assert_array_equal(rest[port], full[port][15:], err_msg=port)


def test_the_seed_decides_the_run():
    runs = []
    for seed in (0, 0, 1):
        graph, inputs = pump_graph(seed=seed)
        runs.append(tg.Simulator(graph, batch=2).run(inputs=inputs)["f.particles"])
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_nan_is_predict_only_and_inf_an_error_naming_block_and_port():
    sensor = FunctionODE(  # reads u, NaN included; ±inf where |u| > 1000
        lambda x, u, t, p: 0.0 * x, h=lambda x, u, p: np.where(np.abs(u) > 1e3, np.copysign(np.inf, u), u),
        n_inputs=1, n_outputs=1, direct_feedthrough=True, name="sensor",
    )
    decay = FunctionODE(lambda x, u, t, p: -x, states=("a",), name="decay")
    g = tg.Graph("g", dt=DT)
    g.connect(g.add(Input("u", shape=(1,))).out.value, g.add(sensor).inp.u)
    g.connect(sensor.out.y, g.add(ParticleFilter(model=decay, r=0.1, n_particles=100, ess_threshold=0.0,
                                                 name="f")).inp.y)
    sim = tg.Simulator(g, batch=2)
    sim.step(u=[[1.0], [1.0]])
    prior = np.exp(sim.blocks["f"].log_weights_.T)
    out = sim.step(u=[[1.0], [np.nan]])
    np.testing.assert_array_equal(out["f.weights"][1], prior[1])  # no likelihood: the prior weights
    assert not np.array_equal(out["f.weights"][0], prior[0])
    assert out["f.innovation"][1, 0] == 0.0 and out["f.nis"][1] == 0.0 and out["f.S"][1, 0] == 0.1
    for value, shown in ((1e6, "inf"), (-1e6, "-inf")):
        with pytest.raises(tg.SimulationError, match=(
            rf"^ParticleFilter 'f': input 'y' is {shown} at t = 0.1 s \(asset 1, element 0\)\. "
            r"A measurement must be finite, or NaN where it is missing\.$")):
            sim.step(u=[[1.0], [value]])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n_particles": 0}, r"The 'n_particles' parameter of ParticleFilter 'f' must be an int >= 1\. Got 0\."),
        ({"n_particles": 10.0}, r"The 'n_particles' parameter of ParticleFilter 'f' must be an int >= 1\. Got 10\.0\."),
        ({"resampling": "multinomial"}, r"The 'resampling' parameter of ParticleFilter 'f' must be one of "
                                        r"\['systematic', 'residual'\]\. Got 'multinomial'\."),
        ({"ess_threshold": 1.5}, r"The 'ess_threshold' parameter of ParticleFilter 'f' must be a number in "),
        ({"jitter": -0.1}, r"The 'jitter' parameter of ParticleFilter 'f' must be a number >= 0\. Got -0\.1\."),
        ({"seed": "abc"}, r"The 'seed' parameter of ParticleFilter 'f' must be an int >= 0\. Got 'abc'\."),
        ({"quantiles": (0.5, 1.5)}, r"The 'quantiles' parameter of ParticleFilter 'f' must be a non-empty sequence "
                                    r"of levels in \[0, 1\]\. Got \(0\.5, 1\.5\)\."),
        ({"quantiles": ()}, r"The 'quantiles' parameter of ParticleFilter 'f' must be a non-empty sequence"),
        ({"r": 0.0}, r"The 'r' parameter of ParticleFilter 'f' must be a variance > 0, or 1 of them"),
        ({"model": None}, r"The 'model' parameter of ParticleFilter 'f' must be an ODEModel block\. Got None\."),
    ],
)
def test_bad_params_are_named_at_validate(params, message):
    block = ParticleFilter(**{"model": PumpLike(name="pump"), **params}, name="f")
    g = tg.Graph("g", dt=DT)
    g.add(block)
    with pytest.raises(tg.ParamError, match=message):
        block.check_params()
    with pytest.raises(tg.ParamError):
        g.validate()
