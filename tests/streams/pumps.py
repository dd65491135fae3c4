"""The pump twin of examples/pump_twin and its recorded fleet data, shared by the stream tests."""

from functools import cache

import numpy as np
import pandas as pd

import twingraph as tg
from tests.examples.scripts import load_example

example = load_example("pump_twin", "run_pump_twin")
OUTPUTS = ["track.params", "cusum.alarm", "rul.rul", "rul.rul_lower", "rul.rul_upper"]


def fleet(pumps: int) -> tuple[list[float], list[float]]:
    """Onset and failure times [s] of ``pumps`` pumps, spread over the example's range."""
    onset = np.linspace(20.0, 50.0, pumps).tolist()
    failure = np.linspace(150.0, 250.0, pumps).tolist()
    return onset, failure


@cache
def recording(pumps: int = 20, duration: float = 80.0, seed: int = 3) -> dict[str, np.ndarray]:
    """The example's data: ``u`` [V] and ``y`` [m3/s], each ``(steps, pumps, 1)``."""
    onset, failure = fleet(pumps)
    return example.record(onset, failure, seed, duration=duration)


def assets(pumps: int) -> list[str]:
    return [f"pump{i:02d}" for i in range(pumps)]


def long_frame(data: dict[str, np.ndarray]) -> pd.DataFrame:
    """The recording in long format: one row per tick and pump, columns time, asset, u, y."""
    steps, pumps, _ = data["u"].shape
    time = np.repeat(np.arange(steps) * example.DT, pumps)
    names = np.tile(assets(pumps), steps)
    return pd.DataFrame({"time": time, "asset": names, "u": data["u"].ravel(), "y": data["y"].ravel()})


@cache
def expected(pumps: int = 20) -> dict[str, np.ndarray]:
    """:func:`offline` outputs of the default :func:`recording` (computed once)."""
    return offline(recording(pumps))


def offline(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The outputs of ``Simulator.run`` over the whole recording, each ``(steps, pumps, *shape)``."""
    pumps = data["u"].shape[1]
    history = tg.Simulator(example.build_twin(), batch=pumps, log=OUTPUTS).run(inputs=data, progress=False)
    return {port: np.reshape(history[port], (len(history), pumps, -1)) for port in OUTPUTS}


def same(served: dict[str, np.ndarray], expected: dict[str, np.ndarray], ticks=slice(None)) -> None:
    """Every output equal to 1e-12 (inf where the RUL is not armed, alarms exactly)."""
    for port in OUTPUTS:
        a = np.reshape(served[port], expected[port][ticks].shape)
        np.testing.assert_allclose(a, expected[port][ticks], rtol=0, atol=1e-12, err_msg=port)
