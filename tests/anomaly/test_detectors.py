"""EMA, CUSUM and Threshold: hand-computed sequences, batch vectorisation, restart policy, errors."""

import numpy as np
import pytest

import twingraph as tg
from blocks.anomaly import CUSUM, EMA, Threshold


def run(block: tg.Block, u: np.ndarray) -> tg.History:
    g = tg.Graph("detect", dt=1.0)
    g.add(block)
    feed = g.add(tg.Input("u", shape=u.shape[2:]))
    g.connect(feed.out.value, block.inp.u)
    return tg.Simulator(g, batch=u.shape[1]).run(inputs={"u": u})


def test_cusum_matches_a_hand_computed_sequence():
    x = np.array([0.2, 1.0, 1.6, 2.0, -0.4, -1.5, -2.5, -2.0, 0.0, 3.0])
    # k = 0.5:  g⁺ = 0, .5, 1.6, 3.1 -> alarm (> 3), restart; then 0, 0, 0, 0, 0, 2.5
    #           g⁻ = 0, 0, 0, 0, 0 (restarted), 1.0, 3.0, 4.5 -> alarm, restart; 0, 0
    hist = run(CUSUM(k=0.5, h=3.0, name="c"), x[:, None, None])
    np.testing.assert_allclose(hist["c.score"][:, 0], [0, 0.5, 1.6, 3.1, 0, 1.0, 3.0, 4.5, 0, 2.5])
    assert hist["c.alarm"][:, 0].tolist() == [False] * 3 + [True] + [False] * 3 + [True, False, False]


def test_cusum_without_restart_keeps_the_alarm_on():
    hist = run(CUSUM(k=0.5, h=3.0, restart="never", name="c"), np.full((8, 1, 1), 1.5))
    np.testing.assert_allclose(hist["c.score"][:, 0], np.arange(1, 9))
    assert hist["c.alarm"][:, 0].tolist() == [False] * 3 + [True] * 5


def test_detectors_are_elementwise_over_batch_and_shape():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4, 3))
    batched = run(CUSUM(k=0.2, h=1.5, name="c"), x)
    for b in range(4):
        for i in range(3):
            alone = run(CUSUM(k=0.2, h=1.5, name="c"), x[:, b : b + 1, i : i + 1])
            np.testing.assert_array_equal(batched["c.score"][:, b, i], alone["c.score"][:, 0])
    ema = run(EMA(alpha=0.3, name="e"), x)["e.y"]
    expected = x[0].copy()
    for k in range(1, 50):
        expected = 0.3 * x[k] + 0.7 * expected
    np.testing.assert_allclose(ema[-1], expected)


def test_threshold_hysteresis_and_minimum_duration():
    x = np.array([3, 3, 3, 1.5, 1.5, 0.5, 3, 0, 3, 3], dtype=float)
    hist = run(Threshold(upper=2.0, lower=1.0, min_duration=3, name="t"), x[:, None, None])
    assert hist["t.alarm"][:, 0].tolist() == [False, False, True, True, True, False, False, False, False, False]
    plain = run(Threshold(upper=2.0, name="t"), x[:, None, None])
    assert plain["t.alarm"][:, 0].tolist() == (x > 2.0).tolist()


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (CUSUM(h=-1, name="c"), "The 'h' parameter of CUSUM 'c' must be a number > 0. Got -1."),
        (CUSUM(h=np.inf, name="c"), "The 'h' parameter of CUSUM 'c' must be a number > 0, finite. Got inf."),
        (CUSUM(k=-0.1, name="c"), "The 'k' parameter of CUSUM 'c' must be a number >= 0. Got -0.1."),
        (CUSUM(k="0.5", name="c"), "The 'k' parameter of CUSUM 'c' must be a number >= 0. Got '0.5'."),
        (
            CUSUM(restart="sometimes", name="c"),
            "The 'restart' parameter of CUSUM 'c' must be one of ['alarm', 'never']. Got 'sometimes'.",
        ),
        (EMA(alpha=0.0, name="c"), "The 'alpha' parameter of EMA 'c' must be a number in (0, 1]. Got 0.0."),
        (EMA(alpha=None, name="c"), "The 'alpha' parameter of EMA 'c' must be a number in (0, 1]. Got None."),
        (
            Threshold(upper=1.0, lower=2.0, name="c"),
            "The 'lower' parameter of Threshold 'c' must be None or <= upper (1.0). Got 2.0.",
        ),
        (Threshold(upper="high", name="c"), "The 'upper' parameter of Threshold 'c' must be a number. Got 'high'."),
        (
            Threshold(min_duration=1.5, name="c"),
            "The 'min_duration' parameter of Threshold 'c' must be an int >= 1 [ticks]. Got 1.5.",
        ),
    ],
)
def test_bad_params_are_refused_when_the_graph_is_validated(block, message):
    g = tg.Graph("detect", dt=1.0)
    g.add(block)
    g.connect(g.add(tg.Input("u", shape=(1,))).out.value, "c.u")
    with pytest.raises(tg.ParamError) as error:
        g.validate()
    assert message in str(error.value)
