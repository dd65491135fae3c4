"""ParameterHealth: the linear map, clipping, index by name, a worn-above-nominal parameter, errors."""

import numpy as np
import pytest

import twingraph as tg
from blocks.health import ParameterHealth


def health(block: ParameterHealth, params: np.ndarray) -> np.ndarray:
    g = tg.Graph("h", dt=1.0)
    g.add(block)
    feed = g.add(tg.Input("p", shape=params.shape[2:]))
    g.connect(feed.out.value, f"{block.name}.params")
    return tg.Simulator(g, batch=params.shape[1]).run(inputs={"p": params})[f"{block.name}.hi"]


def test_linear_between_nominal_and_failed_and_clipped():
    eta = np.array([[[1.2], [1.0], [0.9], [0.7], [0.6], [0.3]]])
    np.testing.assert_allclose(health(ParameterHealth(name="hi"), eta)[0], [1, 1, 0.75, 0.25, 0, 0])


def test_parameter_rising_towards_failure_and_picked_by_name():
    params = np.array([[[1.0, 0.01], [0.5, 0.02], [0.0, 0.04]]])  # friction doubles at failure
    hi = health(ParameterHealth("friction", 0.01, 0.02, estimated=("efficiency", "friction"), name="hi"), params)
    np.testing.assert_allclose(hi[0], [1.0, 0.0, 0.0])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"estimated": ("friction",)},
            "The 'estimated' parameter of ParameterHealth 'hi' must be None or a tuple of names holding "
            "'efficiency'. Got ('friction',).",
        ),
        (
            {"estimated": "efficiency"},
            "The 'estimated' parameter of ParameterHealth 'hi' must be None or a tuple of names holding "
            "'efficiency'. Got 'efficiency'.",
        ),
        (
            {"nominal": 1.0, "failed": 1.0},
            "The 'failed' parameter of ParameterHealth 'hi' must be different from nominal (1.0). Got 1.0.",
        ),
        ({"failed": "0.6"}, "The 'failed' parameter of ParameterHealth 'hi' must be a number. Got '0.6'."),
        ({"param": 3}, "The 'param' parameter of ParameterHealth 'hi' must be a parameter name (str). Got 3."),
    ],
)
def test_bad_params_are_refused_when_the_graph_is_validated(params, message):
    g = tg.Graph("h", dt=1.0)
    g.add(ParameterHealth(name="hi", **params))
    g.add(tg.Input("p", shape=(1,)))
    with pytest.raises(tg.ParamError) as error:  # at connect: the input shape depends on 'estimated'
        g.connect("p.value", "hi.params")
        g.validate()
    assert message in str(error.value)
