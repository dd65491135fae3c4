"""Simulator: online and batch stepping, batching, snapshots, input checks."""

import numpy as np
import pandas as pd
import pytest

import twingraph as tg
from blocks.discrete import Integrator, UnitDelay
from blocks.math import Gain, Product, Saturation, Sum

from .graphs import closed_loop, plant_loop


def tracking_graph() -> tg.Graph:
    """Two external inputs, a nonlinearity and two states: enough to expose any batch mixing."""
    g = tg.Graph("track", dt=0.02)
    r = g.add(tg.Input("r", shape=(2,), unit="m"))
    w = g.add(tg.Input("w", shape=(2,), unit="m"))
    err = g.add(Sum(signs="+--", name="err"))
    sat = g.add(Saturation(lower=-0.7, upper=0.9, name="sat"))
    sq = g.add(Product(ops="**", name="sq"))
    x = g.add(Integrator(k=4.0, unit="m", name="x"))  # k [1/s]: the integral of m is in m
    d = g.add(UnitDelay(initial=0.1, name="d"))
    g.connect(r.out.value, err.inp.u1)
    g.connect(x.out.y, err.inp.u2)
    g.connect(w.out.value, err.inp.u3)
    g.connect(err.out.y, sat.inp.u)
    g.connect(sat.out.y, sq.inp.u1)
    g.connect(d.out.y, sq.inp.u2)
    g.connect(sat.out.y, x.inp.u)
    g.connect(sq.out.y, d.inp.u)
    return g


def random_inputs(batch: int, steps: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"r": rng.normal(size=(steps, batch, 2)), "w": 0.1 * rng.normal(size=(steps, batch, 2))}


def test_batch_of_64_equals_64_single_runs():
    data = random_inputs(64, 300)
    fleet = tg.Simulator(tracking_graph(), batch=64).run(inputs=data)
    for b in range(64):
        single = tg.Simulator(tracking_graph()).run(inputs={k: v[:, b] for k, v in data.items()})
        for port in single.ports:
            np.testing.assert_array_equal(fleet[port][:, b], single[port], err_msg=f"{port}, asset {b}")


def test_snapshot_restore_in_a_fresh_simulator_resumes_exactly():
    data = random_inputs(3, 1000, seed=1)
    full = tg.Simulator(tracking_graph(), batch=3).run(inputs=data)

    first = tg.Simulator(tracking_graph(), batch=3)
    head = first.run(inputs={k: v[:500] for k, v in data.items()})
    snap = first.snapshot()
    second = tg.Simulator(tracking_graph(), batch=3)
    second.restore(snap)
    tail = second.run(inputs={k: v[500:] for k, v in data.items()})

    np.testing.assert_array_equal(tail.ticks, np.arange(500, 1000))
    for port in full.ports:
        np.testing.assert_array_equal(np.concatenate([head[port], tail[port]]), full[port], err_msg=port)


def test_snapshot_is_a_copy_and_restore_checks_fit():
    sim = tg.Simulator(closed_loop())
    sim.run(steps=10)
    snap = sim.snapshot()
    sim.run(steps=10)
    assert snap["tick"] == 10
    assert snap["blocks"]["integ"]["x_"][0] != sim.blocks["integ"].x_[0]
    with pytest.raises(tg.SimulationError, match="does not fit graph 'track'"):
        tg.Simulator(tracking_graph()).restore(snap)
    with pytest.raises(tg.SimulationError, match="Not a twingraph snapshot"):
        sim.restore({"tick": 3})


def test_simulators_of_one_graph_do_not_share_state():
    g = closed_loop()
    a, b = tg.Simulator(g), tg.Simulator(g)
    a.run(steps=50)
    fresh = b.run(steps=50)
    again = tg.Simulator(g).run(steps=50)
    np.testing.assert_array_equal(fresh["integ.y"], again["integ.y"])


def test_step_accepts_unbatched_values_for_a_single_asset():
    sim = tg.Simulator(tracking_graph())
    out = sim.step(r=[1.0, 2.0], w=np.zeros(2))
    assert out["err.y"].shape == (2,)
    np.testing.assert_array_equal(out["err.y"], [1.0, 2.0])
    assert sim.tick == 1 and sim.time == pytest.approx(0.02)


def test_step_rejects_bad_inputs_with_the_input_named():
    sim = tg.Simulator(tracking_graph(), batch=4)
    with pytest.raises(
        tg.SimulationError,
        match=r"Input 'r' expects values of shape \(4, \*\(2,\)\) or \(\*\(2,\)\) \[m\]. Got shape \(3,\)",
    ):
        sim.step(r=np.zeros(3), w=np.zeros(2))
    with pytest.raises(tg.SimulationError, match=r"missing \['w'\]"):
        sim.step(r=np.zeros(2))
    with pytest.raises(tg.SimulationError, match=r"unknown \['v'\]"):
        sim.step(r=np.zeros(2), w=np.zeros(2), v=1.0)
    with pytest.raises(tg.SimulationError, match="Input 'r' expects float64 values"):
        sim.step(r="abc", w=np.zeros(2))
    assert sim.tick == 0


def test_nan_measurement_propagates_without_crashing():
    sim = tg.Simulator(tracking_graph())
    out = sim.step(r=[np.nan, 1.0], w=[0.0, 0.0])
    assert np.isnan(out["err.y"][0]) and out["err.y"][1] == 1.0


def _measured(shape: tuple = (2,), dtype: str = "float64") -> tg.Graph:
    """A measurement Input straight to an Output: the engine alone, no block code."""
    g = tg.Graph("meas", dt=0.5)
    g.add(tg.Input("y", shape=shape, dtype=dtype, unit="m"))
    g.add(tg.Output("out"))
    g.connect("y.value", "out.u")
    return g


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_an_infinite_measurement_via_step_names_input_tick_element_and_asset(bad):
    sim = tg.Simulator(_measured(), batch=4)
    sim.step(y=np.zeros((4, 2)))
    values = np.zeros((4, 2))
    values[3, 1] = bad
    with pytest.raises(
        tg.SimulationError, match=rf"Input 'y' got {bad} at tick 1 \(element 1 of asset 3\); NaN marks a"
    ):
        sim.step(y=values)
    with pytest.raises(tg.SimulationError, match=rf"Input 'y' got {bad} at tick 1 \(element 0 of every asset\)"):
        sim.step(y=[bad, 0.0])
    assert sim.tick == 1
    single = tg.Simulator(_measured(shape=()))
    with pytest.raises(tg.SimulationError, match=rf"Input 'y' got {bad} at tick 0 \(asset 0\)"):
        single.step(y=bad)


def test_an_infinite_measurement_via_run_names_the_tick():
    sim = tg.Simulator(_measured(), batch=3)
    sim.step(y=np.zeros(2))
    data = np.zeros((20, 3, 2))
    data[12, 2, 0] = np.inf
    data[15, 0, 1] = -np.inf
    with pytest.raises(tg.SimulationError, match=r"Input 'y' got inf at tick 13 \(element 0 of asset 2\)"):
        sim.run({"y": data})
    with pytest.raises(tg.SimulationError, match=r"Input 'y' got inf at tick 13 \(element 0 of every asset\)"):
        sim.run({"y": data[:, 2]})
    frame = pd.DataFrame({"y[0]": data[:, 2, 0], "y[1]": data[:, 2, 1]})
    with pytest.raises(tg.SimulationError, match=r"Input 'y' got inf at tick 13 \(element 0 of every asset\)"):
        sim.run(frame)
    assert sim.tick == 1 and len(sim.history) == 1  # nothing ran


def test_nan_measurements_still_pass_and_inf_in_int_inputs_is_refused():
    sim = tg.Simulator(_measured(), batch=2)
    data = np.full((5, 2, 2), np.nan)
    data[:, 0, 0] = 1.0
    history = sim.run({"y": data})
    np.testing.assert_array_equal(history["y.value"], data)
    assert np.isnan(sim.step(y=[np.nan, 2.0])["y.value"][:, 0]).all()
    counts = tg.Simulator(_measured(dtype="int64"))
    with pytest.raises(tg.SimulationError, match=r"Input 'y' expects int64 values. Got inf instead"):
        counts.step(y=np.inf)


def test_run_from_a_dataframe_equals_run_from_arrays():
    data = random_inputs(1, 50, seed=3)
    frame = pd.DataFrame(
        {"r[0]": data["r"][:, 0, 0], "r[1]": data["r"][:, 0, 1], "w[0]": data["w"][:, 0, 0], "w[1]": data["w"][:, 0, 1]}
    )
    from_frame = tg.Simulator(tracking_graph()).run(inputs=frame)
    from_arrays = tg.Simulator(tracking_graph()).run(inputs={k: v[:, 0] for k, v in data.items()})
    np.testing.assert_array_equal(from_frame["x.y"], from_arrays["x.y"])
    with pytest.raises(tg.SimulationError, match=r"Input 'w' needs DataFrame columns \['w\[0\]', 'w\[1\]'\]"):
        tg.Simulator(tracking_graph()).run(inputs=frame.drop(columns=["w[1]"]))


def test_batched_dataframe_round_trips_through_history():
    data = random_inputs(3, 20, seed=4)
    hist = tg.Simulator(tracking_graph(), batch=3).run(inputs=data)
    frame = hist.to_pandas(["r.value", "w.value"]).rename(columns=lambda c: c.replace(".value", ""))
    again = tg.Simulator(tracking_graph(), batch=3).run(inputs=frame.sample(frac=1.0, random_state=0))
    np.testing.assert_array_equal(again["x.y"], hist["x.y"])


def test_run_checks_steps_and_lengths():
    sim = tg.Simulator(tracking_graph())
    with pytest.raises(tg.SimulationError, match="Cannot run 60 steps: the inputs hold only 50"):
        sim.run(inputs={k: v[:, 0] for k, v in random_inputs(1, 50).items()}, steps=60)
    with pytest.raises(tg.SimulationError, match="has no inputs: give the number of steps"):
        tg.Simulator(closed_loop()).run()


def test_run_continues_where_step_left_off():
    online = tg.Simulator(closed_loop())
    for _ in range(7):
        online.step()
    online.run(steps=13)
    batch = tg.Simulator(closed_loop()).run(steps=20)
    np.testing.assert_array_equal(online.history["integ.y"], batch["integ.y"])
    np.testing.assert_array_equal(online.history.time, batch.time)


def test_reset_starts_over():
    sim = tg.Simulator(plant_loop(True))
    first = sim.run(steps=30)["plant.y"].copy()
    sim.reset()
    np.testing.assert_array_equal(sim.run(steps=30)["plant.y"], first)


def test_block_state_dict_round_trip_and_unknown_state():
    sim = tg.Simulator(tracking_graph(), batch=2)
    sim.run(inputs=random_inputs(2, 10))
    x = sim.blocks["x"]
    state = x.state_dict()
    x.x_ += 1.0
    x.load_state_dict(state)
    np.testing.assert_array_equal(x.x_, state["x_"])
    with pytest.raises(tg.WiringError, match="Block 'x' has no state named \\['y_'\\]"):
        x.load_state_dict({"y_": 1})


def test_bad_simulator_arguments():
    with pytest.raises(tg.SimulationError, match="'batch' parameter of Simulator must be an int >= 1"):
        tg.Simulator(closed_loop(), batch=0)
    with pytest.raises(tg.SimulationError, match=r"Cannot log \['gain.z'\]"):
        tg.Simulator(closed_loop(), log=["gain.z"])


def test_writing_a_port_by_rebinding_is_refused():
    class Rebinder(tg.Block):
        outputs = {"y": tg.Signal(shape=())}

        def output(self, t, inp, out):
            out.y = 1.0

    g = tg.Graph("g")
    g.add(Rebinder(name="bad"))
    with pytest.raises(AttributeError, match=r"Block 'bad': write port values in place, e.g. out.y\[...\] = value"):
        tg.Simulator(g).run(steps=1)


def test_integrator_gain_and_state_are_per_asset():
    g = tg.Graph("g", dt=0.5)
    u = g.add(tg.Input("u"))
    k = g.add(Gain(k=2.0, name="k"))
    i = g.add(Integrator(initial=[1.0, -1.0], name="i"))
    g.connect(u.out.value, k.inp.u)
    g.connect(k.out.y, i.inp.u)
    hist = tg.Simulator(g, batch=2).run(inputs={"u": np.ones((3, 2))})
    np.testing.assert_array_equal(hist["i.y"], [[1.0, -1.0], [2.0, 0.0], [3.0, 1.0]])
