"""The health side of the turbofan twin: healthy-behaviour residuals, damage model, filter fit, OOD flag (seconds)."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import twingraph as tg
from blocks.anomaly import SubspaceDistance
from blocks.anomaly.ood import smoothed
from blocks.health import ExponentialDegradation, MonteCarloRUL, predict_rul
from blocks.ml.healthy import HealthyBehaviour, first_cycles, fit_healthy_behaviour
from blocks.physics.ode import ODEModel
from tests.datasets.synthetic import write_synthetic_cmapss
from twingraph.datasets.cmapss import load_cmapss

sys.path.insert(0, str(Path(__file__).parents[2] / "examples" / "turbofan_engine_degradation"))
import health_model as hm


def _six_conditions(n: int, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Settings in C-MAPSS's six conditions, sensors whose level depends on the condition, and the condition."""
    centres = np.array([[0.0, 0.0, 100.0], [10.0, 0.25, 100.0], [20.0, 0.7, 100.0], [25.0, 0.62, 60.0],
                        [35.0, 0.84, 100.0], [42.0, 0.84, 100.0]])
    j = rng.integers(0, 6, n)
    settings = centres[j] + rng.normal(0.0, [0.002, 0.0003, 0.0], (n, 3))
    sensors = 100.0 * (j[:, None] + 1) + rng.normal(0.0, 1.0 + j[:, None], (n, 4))
    return settings, sensors, j


def test_healthy_behaviour_finds_six_conditions_and_normalises_each():
    rng = np.random.default_rng(0)
    settings, sensors, _ = _six_conditions(3000, rng)
    block = fit_healthy_behaviour(settings, sensors)
    assert len(block.weights()["centres"]) == 6
    z = block.residuals(*_six_conditions(3000, rng)[:2])
    assert np.allclose(z.mean(axis=0), 0.0, atol=0.1) and np.allclose(z.std(axis=0), 1.0, atol=0.1)


def test_the_block_stepped_cycle_by_cycle_equals_the_offline_residuals():
    rng = np.random.default_rng(1)
    settings, sensors, _ = _six_conditions(600, rng)
    block = fit_healthy_behaviour(settings, sensors, name="healthy")
    units = [(settings[:40], sensors[:40]), (settings[40:65], sensors[40:65])]  # two units, right-aligned
    g = tg.Graph("t", dt=1.0)
    g.add(tg.Input("settings", shape=(3,)))
    g.add(tg.Input("sensors", shape=(4,)))
    g.add(tg.Input("valid", dtype="bool"))
    g.add(block)
    for port in ("settings", "sensors", "valid"):
        g.connect(f"{port}.value", f"healthy.{port}")
    s, valid = hm.right_aligned([u[0] for u in units])
    x, _ = hm.right_aligned([u[1] for u in units])
    x[0, 1, 2] = np.nan  # a NaN sensor reads out as NaN
    z = tg.Simulator(g, batch=2).run(inputs={"settings": s, "sensors": x, "valid": valid})["healthy.z"]
    assert np.isnan(z[~valid]).all()
    for b, (su, _) in enumerate(units):
        np.testing.assert_array_equal(z[valid[:, b], b], block.residuals(su, x[valid[:, b], b]))


def test_healthy_behaviour_round_trips_through_save_and_load(tmp_path):
    rng = np.random.default_rng(2)
    settings, sensors, _ = _six_conditions(600, rng)
    g = tg.Graph("t", dt=1.0)
    g.add(tg.Input("settings", shape=(3,)))
    g.add(tg.Input("sensors", shape=(4,)))
    g.add(tg.Input("valid", dtype="bool"))
    g.add(fit_healthy_behaviour(settings, sensors, name="healthy"))
    for port in ("settings", "sensors", "valid"):
        g.connect(f"{port}.value", f"healthy.{port}")
    g.save(tmp_path / "g.json")
    loaded = tg.load(tmp_path / "g.json")
    inputs = {"settings": settings[:10, None], "sensors": sensors[:10, None], "valid": np.ones((10, 1), bool)}
    np.testing.assert_array_equal(tg.Simulator(g).run(inputs=inputs)["healthy.z"],
                                  tg.Simulator(loaded).run(inputs=inputs)["healthy.z"])
    assert isinstance(loaded.blocks.get("healthy"), HealthyBehaviour)


@pytest.mark.parametrize(("block", "param"), [
    (ExponentialDegradation(loading=(1.0, 2.0), intercept=(0.0,), name="deg"), "intercept"),
    (ExponentialDegradation(offset=-1.0, name="deg"), "offset"),
    (SubspaceDistance(persistence=0, name="ood"), "persistence"),
    (SubspaceDistance(threshold=-1.0, name="ood"), "threshold"),
])
def test_bad_params_name_the_block_and_param(block, param):
    g = tg.Graph("t", dt=1.0)
    g.add(tg.Input("u", shape=(len(getattr(block, "loading", (1.0, 1.0))),)))
    g.add(block)
    g.connect("u.value", f"{block.name}.u")
    with pytest.raises(tg.ParamError, match=rf"'{param}' parameter of {type(block).__name__} '{block.name}'"):
        g.validate()


def test_the_damage_model_grows_as_its_closed_form():
    model = ExponentialDegradation(loading=(1.0,), intercept=(0.0,), log_rate=np.log(0.02), offset=0.1, substeps=4)
    x = model.rollout(np.array([[0.2]]), np.zeros((50, 1, 1)), dt=1.0)[:, 0, 0]
    np.testing.assert_allclose(x, 0.3 * np.exp(0.02 * np.arange(51)) - 0.1, rtol=1e-7)
    assert model.time_to(1.0, 0.2, np.log(0.02)) == pytest.approx(np.log(1.1 / 0.3) / 0.02)
    frozen = model.rollout(np.array([[0.2]]), np.full((5, 1, 1), np.nan), dt=1.0)[:, 0, 0]
    np.testing.assert_array_equal(frozen, 0.2)  # no cycle, no damage


@pytest.mark.parametrize(("variable", "threshold", "direction"), [
    ("d", 1.0, "above"), ("y[1]", -1.5, "below"), ("y[0]", 0.3, "above"), ("d", -0.02, "below"),
    ("log_rate", -3.0, "above"),
])
def test_the_closed_form_time_of_event_is_the_integrated_one_within_a_tick(monkeypatch, variable, threshold,
                                                                             direction):
    model = ExponentialDegradation(loading=(1.0, -2.0), intercept=(0.0, 0.5), offset=0.05, substeps=4)
    rng = np.random.default_rng(0)
    d = rng.uniform(-0.1, 1.2, (3, 40, 1))
    theta = np.log(rng.uniform(0.005, 0.05, (3, 40)))
    u = [(0.0, 0.0), (np.nan, np.nan)]  # running, and no cycles: no damage
    options = {"dt": 1.0, "horizon": 150.0, "variable": variable, "threshold": threshold, "direction": direction}
    exact = [predict_rul(model, d, {"log_rate": theta}, future_input=v, **options).samples for v in u]
    monkeypatch.setattr(ExponentialDegradation, "event_time", ODEModel.event_time)  # no closed form: integrate
    integrated = [predict_rul(model, d, {"log_rate": theta}, future_input=v, **options).samples for v in u]
    for a, b in zip(exact, integrated, strict=True):
        np.testing.assert_array_equal(np.isinf(a), np.isinf(b))
        finite = np.isfinite(a)
        assert np.abs(a[finite] - b[finite]).max(initial=0.0) < 1.0
    assert (exact[1][np.isfinite(exact[1])] == 0).all()  # no cycles: only what has already happened


def test_monte_carlo_rul_with_the_closed_form_matches_the_integrated_path(monkeypatch):
    model = ExponentialDegradation(loading=(1.0,), intercept=(0.0,), offset=0.05, substeps=4)
    g = tg.Graph("mc", dt=1.0)
    for name, shape in (("x", (1,)), ("theta", (1,)), ("cov", (2, 2))):
        g.add(tg.Input(name, shape=shape))
    g.add(MonteCarloRUL(model=model, estimate=("log_rate",), variable="d", threshold=1.0, direction="above",
                        horizon=300.0, n_samples=100, period=3, future_input=(0.0,), name="mc"))
    for port, feed in (("x_hat", "x"), ("params", "theta"), ("cov", "cov")):
        g.connect(f"{feed}.value", f"mc.{port}")
    ticks, batch = 8, 4
    d = np.linspace(0.0, 0.8, ticks * batch).reshape(ticks, batch, 1)
    inputs = {"x": d, "theta": np.full((ticks, batch, 1), np.log(0.02)),
              "cov": np.tile(np.diag([0.01, 0.04]), (ticks, batch, 1, 1))}
    ports = ["mc.rul", "mc.rul_lower", "mc.rul_upper", "mc.rul_mean", "mc.rul_samples"]
    exact = tg.Simulator(g, batch=batch, log=ports).run(inputs=inputs)
    monkeypatch.setattr(ExponentialDegradation, "event_time", ODEModel.event_time)
    integrated = tg.Simulator(g, batch=batch, log=ports).run(inputs=inputs)
    for port in ports:
        a, b = exact[port], integrated[port]
        np.testing.assert_array_equal(np.isinf(a), np.isinf(b))
        assert np.abs(a[np.isfinite(a)] - b[np.isfinite(a)]).max() < 1.0, port
    assert np.isfinite(exact["mc.rul"]).all()


def _synthetic_fleet(tmp_path, units=12, seed=0) -> pd.DataFrame:
    write_synthetic_cmapss(tmp_path, units=units, seed=seed)
    return load_cmapss("FD001", tmp_path).train


def test_the_fit_recovers_the_damage_direction_and_failure_level(tmp_path):
    frame = _synthetic_fleet(tmp_path)
    pieces = hm.fit_health_twin(frame)
    loading = np.asarray(pieces.model.loading)
    wear = np.linspace(-1.0, 1.0, 21)[[int(s[2:]) - 1 for s in hm.SENSORS]]  # the synthetic sensors' wear pattern
    truth = wear / pieces.healthy.weights()["sd"][0]  # in units of the healthy spread
    assert np.corrcoef(loading, truth)[0, 1] > 0.99
    assert pieces.d_fail == pytest.approx(1.0, abs=0.1)
    # the synthetic wear exp(3 t / life) - 1 is exponential at 3 / life per cycle: life 120 .. 260
    assert np.exp(pieces.model.log_rate) == pytest.approx(3.0 / 190, rel=0.5)


def test_the_twin_tracks_damage_and_detects_it_before_failure(tmp_path):
    frame = _synthetic_fleet(tmp_path)
    pieces = hm.fit_health_twin(frame, units=range(1, 10))
    out = hm.run_health(pieces, frame[frame["unit"] >= 10], n_samples=20, period=10)
    for hi, rul, alarm in zip(out["hi"], out["rul"], out["detect"], strict=True):
        assert hi[:20].mean() > 0.8 and hi[-1] < 0.3
        assert np.isfinite(rul).all() and rul[-1] < 30
        assert alarm.any() and not alarm[:10].any()  # the synthetic wear is already visible by cycle 30
    assert not any(o[-1] for o in out["ood"])


def test_the_ood_flag_is_raised_off_the_fleet_subspace_only(tmp_path):
    frame = _synthetic_fleet(tmp_path)
    pieces = hm.fit_health_twin(frame)
    odd = frame[frame["unit"] == 1].copy()
    wear = np.linspace(0.0, 1.0, len(odd)) ** 2
    odd[hm.SENSORS] += np.outer(wear, np.where(np.arange(len(hm.SENSORS)) % 2, 3.0, -3.0))  # a new fault pattern
    odd["unit"] = 99
    out = hm.run_health(pieces, pd.concat([frame[frame["unit"] <= 3], odd]), n_samples=10, period=50)
    assert [bool(o[-1]) for o in out["ood"]] == [False, False, False, True]


def test_the_ood_subspace_spans_the_fleets_two_wear_modes_and_its_threshold_spares_held_out_units():
    rng = np.random.default_rng(3)
    modes = np.linalg.qr(rng.normal(size=(6, 3)))[0].T  # two wear directions of the fleet, and a third, new one
    def unit(mix, life):
        wear = np.exp(3.0 * np.arange(life) / life) - 1.0
        return np.outer(wear, mix) + rng.normal(0.0, 1.0, (life, 6))
    fleet = [unit(rng.uniform(0.5, 1.5) * modes[0] + rng.uniform(-1.0, 1.0) * modes[1], int(rng.integers(120, 200)))
             for _ in range(40)]
    model, threshold = hm.fit_ood(fleet, alpha=0.1, persistence=5)
    basis = model["basis"]
    assert basis.shape == (6, 2) and np.allclose(np.linalg.norm(modes[:2] @ basis, axis=1), 1.0, atol=0.02)
    ood = SubspaceDistance(alpha=0.1, threshold=threshold, persistence=5)
    ood.set_model(**model)
    def flagged(u):
        return hm.held_level(smoothed(ood.squared_distance(u), 0.1), 5) > threshold
    new = [unit(modes[0] + modes[1], 150) for _ in range(5)]
    assert not any(flagged(u) for u in new)  # the fleet's wear, unseen units: not flagged
    assert all(flagged(unit(modes[0] + 0.5 * modes[2], 150)) for _ in range(5))  # a new wear direction: flagged


def test_first_cycles_marks_each_units_start():
    np.testing.assert_array_equal(first_cycles(np.array([3, 3, 3, 5, 5, 7]), 2), [1, 1, 0, 1, 1, 1])
