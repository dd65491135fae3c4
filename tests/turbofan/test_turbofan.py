"""The turbofan twin: WindowRUL block, training, the graph run over a fleet, metrics, the example and its notebook."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

import twingraph as tg
from blocks.ml.window_rul import (
    IDENTITY_CALIBRATION,
    WindowRUL,
    calibration_features,
    exponential_smoothing,
    fit_calibration,
    sliding_windows,
    train_window_rul,
)
from tests.datasets.synthetic import write_synthetic_cmapss
from twingraph import WiringError
from twingraph.datasets import load_cmapss

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "turbofan_engine_degradation"
sys.path.insert(0, str(EXAMPLE))

import run_turbofan  # noqa: E402
from health_model import unit_frames  # noqa: E402
from turbofan_twin import SENSORS, cut_weights, life_targets, load_twin, right_aligned  # noqa: E402


def rmse(pred, true) -> float:
    return float(np.sqrt(np.mean((np.asarray(pred, float) - np.asarray(true, float)) ** 2)))


def run_window(model: WindowRUL, x: list[np.ndarray]) -> dict:
    """A graph of the block alone over units ``x`` (right-aligned): ``(T, B)`` RUL and HI, valid mask."""
    u, valid = right_aligned(x)
    g = tg.Graph("window", dt=1.0)
    g.add(tg.Input("u", shape=(x[0].shape[1],)))
    g.add(tg.Input("valid", dtype="bool"))
    g.add(model)
    g.connect("u.value", f"{model.name}.u")
    g.connect("valid.value", f"{model.name}.valid")
    hist = tg.Simulator(g, batch=len(x), log=[f"{model.name}.rul", f"{model.name}.hi"]).run(
        inputs={"u": u, "valid": valid})
    return {"rul": hist[f"{model.name}.rul"].reshape(valid.shape), "hi": hist[f"{model.name}.hi"].reshape(valid.shape),
            "valid": valid}


def test_sliding_windows_pad_with_the_first_cycle():
    x = np.arange(8.0).reshape(4, 2)
    w = sliding_windows(x, 3)
    assert w.shape == (4, 3, 2)
    np.testing.assert_array_equal(w[0], [[0, 1], [0, 1], [0, 1]])
    np.testing.assert_array_equal(w[3], x[1:4])


def test_exponential_smoothing_of_a_step_matches_the_closed_form():
    alpha = 0.25
    z = np.column_stack([np.r_[0.0, np.ones(6)], np.full(7, 3.0)])
    s = exponential_smoothing(z, alpha)
    np.testing.assert_allclose(s[:, 0], 1.0 - (1.0 - alpha) ** np.arange(7))  # s_k = 1 - (1 - alpha)^k
    np.testing.assert_allclose(s[:, 1], 3.0)  # a constant stays put from s_0 = z_0


def test_bad_alpha_is_rejected_naming_the_parameter():
    with pytest.raises(tg.ParamError, match=r"The 'alpha' parameter of WindowRUL 'rul' must be a number in \(0, 1\]"):
        WindowRUL(alpha=0.0, name="rul").build(3)


def test_untrained_calibration_is_the_identity_clipped_to_the_cap():
    model = WindowRUL(cap=125.0)
    model.build(3)
    raw = np.array([-5.0, 0.0, 60.0, 124.9, 140.0])
    np.testing.assert_allclose(model.calibrate(raw, np.arange(1, 6)), [0.0, 0.0, 60.0, 124.9, 125.0])


def test_calibration_fit_recovers_known_coefficients():
    rng = np.random.default_rng(0)
    rul = [rng.uniform(0, 130, n) for n in (150, 220, 300)]  # ages 1..T cover every age knot
    coef = rng.normal(size=IDENTITY_CALIBRATION.size)
    targets = [calibration_features(r, np.arange(1, len(r) + 1), 125.0) @ coef for r in rul]
    np.testing.assert_allclose(fit_calibration(rul, targets, 125.0), coef, rtol=1e-8, atol=1e-8)


def test_calibration_corrects_an_age_dependent_bias():
    # raw RUL early by (100 - age) / 10 cycles while young, late when old (within [0, cap]): the fit removes it
    ages = [np.arange(1, n + 1) for n in (120, 125)]
    true = [n - a for n, a in zip((120, 125), ages)]
    raw = [t + (a - 100.0) / 10.0 for t, a in zip(true, ages)]
    c = fit_calibration(raw, true, 125.0)
    for r, a, t in zip(raw, ages, true):
        fixed = calibration_features(r, a, 125.0) @ c
        assert rmse(fixed, t) < 0.2 * rmse(r, t)


def test_more_members_than_units_is_rejected():
    x = [np.ones((5, 3)), np.ones((4, 3))]
    y = [np.arange(5.0)[::-1], np.arange(4.0)[::-1]]
    with pytest.raises(ValueError, match="needs at least 3 units. Got 2"):
        train_window_rul(WindowRUL(window=3, n_models=3), x, y, epochs=1, progress=False)


def test_a_bad_sample_fraction_is_rejected():
    x = [np.ones((5, 3)), np.ones((4, 3))]
    y = [np.arange(5.0)[::-1], np.arange(4.0)[::-1]]
    with pytest.raises(ValueError, match=r"'sample_fraction' parameter of train_window_rul must be in \(0, 1\]"):
        train_window_rul(WindowRUL(window=3), x, y, epochs=1, sample_fraction=0.0, progress=False)


@pytest.mark.parametrize("bad", [np.nan, -1.0])
def test_bad_targets_are_rejected_before_training(bad):
    x = [np.ones((5, 3)), np.ones((4, 3))]
    y = [np.arange(5.0)[::-1], np.r_[3.0, bad, 1.0, 0.0]]
    with pytest.raises(ValueError, match="finite targets >= 0"):
        train_window_rul(WindowRUL(window=3), x, y, epochs=1, progress=False)


def test_right_aligned_masks_units_of_different_lengths():
    sensors, valid = right_aligned([np.ones((3, 2)), 2 * np.ones((5, 2))])
    assert sensors.shape == (5, 2, 2) and valid.shape == (5, 2)
    np.testing.assert_array_equal(valid[:, 0], [False, False, True, True, True])
    assert valid[:, 1].all() and np.all(sensors[2:, 0] == 1) and np.all(sensors[:2, 0] == 0)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cmapss")
    true_rul = write_synthetic_cmapss(folder, units=8, seed=1)
    data = load_cmapss("FD001", folder)
    return data, true_rul, unit_frames(data.train)[2], unit_frames(data.test)[2]


@pytest.fixture(scope="module")
def trained(synthetic):
    _, _, x, _ = synthetic  # small configuration (seconds): 2 members, 15 epochs
    model = WindowRUL(window=10, alpha=0.5, channels=(8, 16), hidden=16, n_models=2, name="rul")
    curves = train_window_rul(model, x, [life_targets(len(a), 135.0) for a in x], epochs=15, lr=3e-3,
                              batch_size=128, progress=False)
    return model, curves


def test_training_lowers_the_error(trained):
    _, curves = trained
    for curve in curves["train_rmse"]:
        assert len(curve) == 15 and curve[-1] < 0.5 * curve[0]


def test_cross_fitting_calibrates_an_ensemble_and_returns_out_of_fold_predictions(synthetic, trained):
    model, curves = trained  # 2 members, each trained on half of the units
    assert not np.allclose(model.weights()["calibration"], IDENTITY_CALIBRATION)
    _, _, x, _ = synthetic
    assert sorted(np.unique(curves["fold"])) == [0, 1]
    for a, fold, oof in zip(x, curves["fold"], curves["oof_rul"]):
        member = [model._nets[fold]]  # the member that did not train on this unit
        np.testing.assert_allclose(oof, model.calibrate(model.predict_windows(model.unit_windows(a), member),
                                                        np.arange(1, len(a) + 1)))
    single = WindowRUL(window=10, alpha=0.5, channels=(4,), hidden=8, n_models=1)
    train_window_rul(single, x, [life_targets(len(a), 135.0) for a in x], epochs=1, progress=False)
    np.testing.assert_array_equal(single.weights()["calibration"], IDENTITY_CALIBRATION)


def test_training_repeats_exactly_with_the_same_seed(synthetic):
    _, _, x, _ = synthetic
    y = [np.minimum(np.arange(len(a))[::-1], 125.0) for a in x]
    weights = []
    for _ in range(2):
        model = WindowRUL(window=10, channels=(4,), hidden=8, n_models=2, seed=3)
        train_window_rul(model, x, y, epochs=2, batch_size=64, sample_fraction=0.5, progress=False)
        weights.append(model.weights())
    for key, value in weights[0].items():
        np.testing.assert_array_equal(value, weights[1][key])


def test_online_block_matches_the_offline_windows(synthetic, trained):
    _, _, _, x = synthetic
    model, _ = trained
    result = run_window(model, x)
    for b, a in enumerate(x):
        np.testing.assert_allclose(result["rul"][result["valid"][:, b], b], model.predict_unit(a), rtol=1e-6,
                                   atol=1e-6)


def test_block_runs_the_fleet_cycle_by_cycle(synthetic, trained):
    _, true_rul, _, x = synthetic
    model, _ = trained
    result = run_window(model, x)
    t_max, units = result["valid"].shape
    assert units == 8 and result["rul"].shape == (t_max, 8) and result["hi"].shape == (t_max, 8)
    assert np.all(np.isnan(result["rul"][~result["valid"]]))  # nothing before a unit's data starts
    assert np.all(np.isfinite(result["rul"][result["valid"]]))
    hi = result["hi"][result["valid"]]
    assert np.all((hi >= 0) & (hi <= 1))
    slopes = [np.polyfit(np.arange(v.sum()), result["rul"][v, b], 1)[0] for b, v in enumerate(result["valid"].T)]
    assert np.mean(slopes) < -0.3  # RUL falls as the synthetic engines wear
    last = result["rul"][-1]
    true = np.minimum([true_rul[u] for u in sorted(true_rul)], 125)
    assert rmse(last, true) < rmse(np.full(8, np.mean(true)), true)  # better than a constant guess


def test_weights_without_the_statistics_are_rejected_naming_the_block(trained):
    model, _ = trained
    old_format = {("x_min" if k == "x_mean" else k): v for k, v in model.weights().items()}
    with pytest.raises(WiringError, match="Block 'rul': weights must hold the sensor statistics 'x_mean'"):
        WindowRUL(name="rul").load_weights(old_format)


def test_weights_round_trip_gives_the_same_predictions(synthetic, trained):
    _, _, _, x = synthetic
    model, _ = trained
    copy = WindowRUL(window=10, alpha=0.5, channels=(8, 16), hidden=16, n_models=2, name="rul")
    copy.load_weights(model.weights())
    np.testing.assert_array_equal(run_window(copy, x)["rul"], run_window(model, x)["rul"])


@pytest.mark.parametrize("length", [128, 362])
def test_cut_weights_are_a_distribution_over_test_like_cuts(length):
    w = cut_weights(length)
    assert w.shape == (length,) and w.sum() == pytest.approx(1.0) and np.all(w >= 0)
    assert w[-2] > 0 and w[-1] == 0  # at least one cycle is left to run
    cuts = np.arange(1, length + 1)
    assert np.all(w[cuts < min(20, length - 1)] == 0)  # no cut shorter than the shortest test unit
    assert np.sum(w * cuts) == pytest.approx(0.625 * length, rel=0.05)  # f uniform on [0.25, 1]


TINY = ["--models", "2", "--epochs", "2", "--window", "10", "--channels", "4,8", "--mc-samples", "10"]  # seconds


@pytest.fixture(scope="module")
def example_run(tmp_path_factory):
    """The example on synthetic files (never the real test files: they are for final reporting only)."""
    root = tmp_path_factory.mktemp("example")
    write_synthetic_cmapss(root / "data", units=8, seed=2)
    metrics = run_turbofan.main(["--data", str(root / "data"), "--out", str(root / "out"), *TINY])
    return root, metrics


def test_example_trains_scores_and_saves_the_twin(example_run):
    root, metrics = example_run
    for key in ("rmse", "phm08", "coverage", "width", "alpha_lambda", "crps"):
        assert np.isfinite(metrics["FD001"][key]) and np.isfinite(metrics["cross-fitted CV"][key])
    table = (root / "out" / "predictions_FD001.csv").read_text().splitlines()
    assert len(table) == metrics["FD001"]["units"] + 1 == 9 and len(SENSORS) == 14
    assert (root / "out" / "twin_FD001.json").is_file() and (root / "out" / "metrics_FD001.csv").is_file()
    assert len((root / "out" / "test_scorings.csv").read_text().splitlines()) == 1  # every scoring is counted


def test_saved_twin_gives_the_same_numbers_in_a_fresh_process(example_run):
    root, _ = example_run
    command = [sys.executable, str(EXAMPLE / "run_turbofan.py"), "--twin", str(root / "out" / "twin_FD001.json"),
               "--test", str(root / "data" / "test_FD001.txt"), "--rul", str(root / "data" / "RUL_FD001.txt"),
               "--out", str(root / "again")]
    subprocess.run(command, check=True, capture_output=True, cwd=EXAMPLE.parents[1])
    again = (root / "again" / "predictions_test_FD001.csv").read_text().splitlines()
    assert again == (root / "out" / "predictions_FD001.csv").read_text().splitlines()


def test_a_test_file_cut_from_training_units_evaluates_by_path(example_run, tmp_path):
    root, _ = example_run
    frame = load_cmapss("FD001", root / "data").train
    run_turbofan.write_cut(frame, tmp_path / "test_cut.txt", tmp_path / "RUL_cut.txt", seed=1)
    rul = np.loadtxt(tmp_path / "RUL_cut.txt")
    assert len(rul) == 8 and np.all(rul >= 1)
    metrics = run_turbofan.main(["--twin", str(root / "out" / "twin_FD001.json"), "--test",
                                 str(tmp_path / "test_cut.txt"), "--rul", str(tmp_path / "RUL_cut.txt"),
                                 "--out", str(tmp_path / "out")])
    assert np.isfinite(metrics["test_cut"]["rmse"])


def test_load_twin_rejects_a_graph_without_the_twin_blocks(tmp_path):
    g = tg.Graph("other")
    g.add(tg.Input("sensors", shape=(14,)))
    g.save(tmp_path / "other.json")
    with pytest.raises(tg.LoadError, match="not a turbofan twin"):
        load_twin(tmp_path / "other.json")


def test_example_cross_validation_uses_only_the_train_file(tmp_path):
    folder = tmp_path / "data"
    write_synthetic_cmapss(folder, units=8)
    (folder / "test_FD001.txt").unlink()
    metrics = run_turbofan.main(["--data", str(folder), "--cv", "2", "--out", str(tmp_path / "out"), *TINY])
    assert metrics["cv"]["units"] == 8 and np.isfinite(metrics["cv"]["rmse"]) and np.isfinite(metrics["cv"]["crps"])
    assert 0 <= metrics["cv"]["coverage"] <= 1


def test_notebook_executes(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    folder = tmp_path / "data"
    write_synthetic_cmapss(folder, units=5)
    notebook = nbformat.read(EXAMPLE / "turbofan.ipynb", as_version=4)
    env = {"TWINGRAPH_CMAPSS_DIR": str(folder), "MPLBACKEND": "Agg"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        nbclient.NotebookClient(notebook, timeout=120, resources={"metadata": {"path": str(EXAMPLE)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k)
            else:
                os.environ[k] = v
    outputs = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "RMSE" in outputs
