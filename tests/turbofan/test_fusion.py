"""FusedRUL: the fusion of a model-based and a data-driven RUL, its weights and its calibrated intervals."""

import numpy as np
import pytest

import twingraph as tg
from blocks.health.fusion import FusedRUL, fit_fusion, fit_intervals, fusion_features, weighted_quantile


def run(block: FusedRUL, data, model) -> dict:
    g = tg.Graph("fuse", dt=1.0)
    d = g.add(tg.Input("d", shape=()))
    m = g.add(tg.Input("m", shape=()))
    g.add(block)
    g.connect(d.out.value, block.inp.rul_data)
    g.connect(m.out.value, block.inp.rul_model)
    hist = tg.Simulator(g, batch=len(data)).run(inputs={"d": [data], "m": [model]})
    return {port: hist[f"{block.name}.{port}"][0] for port in ("rul", "rul_lower", "rul_upper")}


def test_untrained_block_passes_the_data_driven_rul_through_clipped():
    out = run(FusedRUL(name="fuse"), [-3.0, 40.0, 200.0, np.nan], [10.0, np.nan, 5.0, 5.0])
    np.testing.assert_array_equal(out["rul"], [0.0, 40.0, 125.0, np.nan])
    np.testing.assert_array_equal(out["rul_lower"][:3], out["rul"][:3])  # no offsets yet: the interval is the point


def test_model_rul_without_a_failure_counts_as_healthy():
    features = fusion_features(np.array([50.0, 50.0]), np.array([np.inf, np.nan]), 125.0)
    np.testing.assert_array_equal(features[:, 2], [125.0, 125.0])


def test_fit_recovers_known_weights():
    rng = np.random.default_rng(1)
    data, model = rng.uniform(0, 120, 400), rng.uniform(0, 120, 400)
    true = 5.0 + 0.7 * data + 0.25 * model
    np.testing.assert_allclose(fit_fusion(data, model, true), (5.0, 0.7, 0.25), atol=1e-9)


def test_fit_weights_the_better_estimate_more():
    rng = np.random.default_rng(2)
    true = rng.uniform(0, 125, 4000)
    coef = fit_fusion(true + rng.normal(0, 8, 4000), true + rng.normal(0, 24, 4000), true)
    assert coef[1] > 5 * coef[2] > 0


def test_weighted_quantile_is_the_inverse_weighted_cdf():
    values, weight = np.array([3.0, 1.0, 2.0]), np.array([1.0, 1.0, 2.0])
    np.testing.assert_array_equal(weighted_quantile(values, weight, [0.25, 0.26, 0.75, 0.76]), [1.0, 2.0, 2.0, 3.0])


def test_calibrated_intervals_cover_their_nominal_share_on_new_data():
    rng = np.random.default_rng(3)

    def draw(n):
        pred = rng.uniform(0, 125, n)
        return pred, pred + rng.normal(0, 2 + 0.15 * pred, n)  # the error grows with the predicted RUL

    pred, true = draw(20000)
    offsets = fit_intervals(pred, true, edges=(40.0, 80.0), levels=(0.05, 0.5, 0.95), cap=1e9)
    block = FusedRUL(cap=1e9, edges=(40.0, 80.0), levels=(0.05, 0.5, 0.95), offsets=offsets)
    new_pred, new_true = draw(20000)
    q = block.quantiles(new_pred)
    inside = (q[:, 0] <= new_true) & (new_true <= q[:, -1])
    assert inside.mean() == pytest.approx(0.90, abs=0.01)
    width = q[:, -1] - q[:, 0]
    assert width[new_pred > 80].mean() > 2 * width[new_pred < 40].mean()  # conditioned on the predicted level


def test_bins_short_of_rows_take_the_pooled_offsets():
    pred = np.r_[np.full(200, 10.0), [100.0]]
    true = pred + np.r_[np.linspace(-5, 5, 200), 50.0]
    offsets = fit_intervals(pred, true, edges=(50.0,), levels=(0.05, 0.95))
    assert offsets[1] == pytest.approx(fit_intervals(pred, true, edges=(), levels=(0.05, 0.95))[0])


def test_block_outputs_match_its_quantiles():
    block = FusedRUL(coef=(1.0, 0.6, 0.4), edges=(50.0,), levels=(0.05, 0.5, 0.95),
                     offsets=((-8.0, 0.0, 6.0), (-20.0, 1.0, 12.0)), name="fuse")
    data, model = np.array([20.0, 90.0, 1.0]), np.array([30.0, np.nan, 2.0])
    out = run(block, data, model)
    pred = block.predict(data, model)
    np.testing.assert_allclose(out["rul"], pred)
    q = block.quantiles(pred)
    np.testing.assert_allclose(out["rul_lower"], np.maximum(q[:, 0], 0.0))
    np.testing.assert_allclose(out["rul_upper"], q[:, -1])


@pytest.mark.parametrize(("param", "value", "message"), [
    ("coef", (1.0, 2.0), "3 weights"),
    ("edges", (50.0, 20.0), "increasing bin edges"),
    ("levels", (0.5,), "at least 2 increasing quantile levels"),
    ("offsets", ((0.0, 1.0),), r"array \(2, 2\)"),
])
def test_bad_params_are_rejected_naming_the_parameter(param, value, message):
    params = {"edges": (50.0,), "levels": (0.05, 0.95), "offsets": ((-1.0, 1.0), (-2.0, 2.0)), param: value}
    with pytest.raises(tg.ParamError, match=rf"The '{param}' parameter of FusedRUL 'fuse' must be .*{message}"):
        FusedRUL(**params, name="fuse").check_params()
