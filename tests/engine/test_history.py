"""History: what is logged, how it reads back, bounded memory."""

import numpy as np
import pandas as pd
import pytest

import twingraph as tg
from blocks.discrete import Integrator
from blocks.sources import Constant, Input

from .graphs import closed_loop


def counter(dt: float = 0.5) -> tg.Graph:
    """y_k = k, plus a 2x2 matrix constant and a boolean input to cover shapes and dtypes."""
    g = tg.Graph("count", dt=dt)
    one = g.add(Constant(value=1.0, name="one"))
    n = g.add(Integrator(name="n", k=1 / dt))
    g.add(Constant(value=[[1.0, 2.0], [3.0, 4.0]], name="m"))
    g.add(Input("flag", dtype="bool"))
    g.connect(one.out.y, n.inp.u)
    return g


def test_values_read_back_in_order_with_time():
    sim = tg.Simulator(counter())
    hist = sim.run(inputs={"flag": np.arange(6) % 2 == 0})
    np.testing.assert_array_equal(hist["n.y"], np.arange(6.0))
    np.testing.assert_array_equal(hist.time, np.arange(6) * 0.5)
    assert hist["m.y"].shape == (6, 2, 2) and hist["m.y"][3, 1, 0] == 3.0
    assert hist["flag.value"].dtype == bool and list(hist["flag.value"][:3]) == [True, False, True]
    assert len(hist) == 6


def test_ring_buffer_keeps_the_last_ticks():
    sim = tg.Simulator(counter(), max_len=4)
    for k in range(11):
        sim.step(flag=k % 3 == 0)
    hist = sim.history
    assert len(hist) == 4
    np.testing.assert_array_equal(hist["n.y"], [7.0, 8.0, 9.0, 10.0])
    np.testing.assert_array_equal(hist.ticks, [7, 8, 9, 10])
    assert hist._buffers["float64"].shape[0] == 4  # memory stays bounded
    with pytest.raises(ValueError, match="'max_len' parameter of History must be an int >= 1"):
        tg.Simulator(counter(), max_len=0)


def test_growing_buffer_survives_many_online_steps():
    sim = tg.Simulator(closed_loop())
    for _ in range(2500):
        sim.step()
    batch = tg.Simulator(closed_loop()).run(steps=2500)
    np.testing.assert_array_equal(sim.history["integ.y"], batch["integ.y"])


def test_to_pandas_names_columns_per_element():
    frame = tg.Simulator(counter()).run(inputs={"flag": np.ones(3, bool)}).to_pandas()
    assert list(frame.columns) == ["one.y", "n.y", "m.y[0,0]", "m.y[0,1]", "m.y[1,0]", "m.y[1,1]", "flag.value"]
    assert frame.index.name == "time"
    assert frame.loc[1.0, "n.y"] == 2.0 and frame["flag.value"].dtype == bool


def test_to_pandas_with_a_batch_has_a_time_asset_index(tmp_path):
    sim = tg.Simulator(closed_loop(), batch=3, log=["integ.y", "err.y"])
    hist = sim.run(steps=4)
    frame = hist.to_pandas()
    assert frame.index.names == ["time", "asset"]
    assert frame.shape == (12, 2)
    np.testing.assert_array_equal(frame.xs(2, level="asset")["integ.y"], hist["integ.y"][:, 2])
    hist.to_csv(tmp_path / "h.csv")
    back = pd.read_csv(tmp_path / "h.csv", index_col=["time", "asset"])
    np.testing.assert_allclose(back.to_numpy(), frame.to_numpy(), rtol=1e-15)


def test_logging_chosen_ports_only_and_none():
    hist = tg.Simulator(closed_loop(), log="integ.y").run(steps=3)
    assert hist.ports == ["integ.y"]
    with pytest.raises(KeyError, match="Port 'gain.y' was not logged"):
        hist["gain.y"]
    quiet = tg.Simulator(closed_loop(), log=None)
    assert len(quiet.run(steps=3)) == 0
    assert float(quiet.step()["integ.y"]) == pytest.approx(closed_loop_value(3))


def closed_loop_value(n: int, dt: float = 0.01, k: float = 3.0, r: float = 2.0) -> float:
    return r * (1 - (1 - k * dt) ** n)


def test_to_numpy_gives_every_port():
    hist = tg.Simulator(closed_loop()).run(steps=5)
    arrays = hist.to_numpy()
    assert set(arrays) == set(hist.ports)
    np.testing.assert_allclose(arrays["integ.y"], [closed_loop_value(n) for n in range(5)], atol=1e-15)
