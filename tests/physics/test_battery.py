"""The equivalent-circuit battery against its equations, analytic limits and NASA ProgPy's BatteryCircuit."""

import numpy as np
import pytest

import twingraph as tg
from blocks.physics import BatteryCircuit
from blocks.sources import Input


def current(t: float) -> float:
    """A piecewise-constant discharge current [A] that ends the discharge before 3,000 s."""
    return 2.0 if t < 600 else 1.0 if t < 900 else 4.0 if t < 1500 else 2.0 if t < 2400 else 3.0


def discharge(battery: BatteryCircuit, u: np.ndarray, dt: float, batch: int = 1) -> tg.History:
    """Run ``battery`` (named 'battery') fed from an Input 'u' with the rows of ``u`` (T, 1) or (T, B, 1)."""
    g = tg.Graph("discharge", dt=dt)
    source = g.add(Input("u", shape=(1,), unit="A"))
    g.add(battery)
    g.connect(source.out.value, battery.inp.u)
    return tg.Simulator(g, batch=batch).run(inputs={"u": u})


def test_open_circuit_voltage_at_rest_is_charge_over_capacitance():
    cell = BatteryCircuit()
    p = cell.batch_params(3)
    qb = np.array([7856.3254, 6000.0, 3000.0])
    x = np.stack([np.full(3, 292.1), qb, np.zeros(3), np.zeros(3)], axis=1)
    soc = 1 - (7856.3254 - qb) / 7777.0
    c_b = -230.0 * soc**3 + 1.2 * soc**2 + 2079.9 * soc + 27.055726
    v = cell.observe(x, np.zeros((3, 1)), p)[:, 1]
    np.testing.assert_allclose(v, qb / c_b, rtol=1e-14)
    assert v[0] == pytest.approx(4.183, abs=5e-7)  # ProgPy's nominal V0 when full


def test_charge_drains_at_the_load_plus_the_parasitic_current():
    # Euler: q_b(k+1) = q_b(k) - dt (i_k + v_k / r_p), exactly.
    dt, r_p = 0.5, 1e4
    u = np.array([[current(k * dt * 5)] for k in range(2000)])
    hist = discharge(BatteryCircuit(r_p=r_p, integrator="euler", name="battery"), u, dt)
    qb, v = hist["battery.x"][:, 1], hist["battery.y"][:, 1]
    drained = dt * np.cumsum(u[:-1, 0] + v[:-1] / r_p)
    np.testing.assert_allclose(qb[0] - qb[1:], drained, rtol=1e-12)


def test_rc_pairs_settle_at_ohmic_drops_under_a_constant_current():
    cell = BatteryCircuit(substeps=10, name="battery")
    hist = discharge(cell, np.full((300, 1), 2.0), dt=1.0)  # 24 time constants of the slower pair
    x = hist["battery.x"][-1:]
    p = cell.batch_params(1)
    soc = cell.state_of_charge(x, p)
    r_cp = p["r_cp0"] + p["r_cp1"] * np.exp(p["r_cp2"] * (1 - soc))
    i_b = 2.0 + hist["battery.y"][-1, 1] / p["r_p"]
    np.testing.assert_allclose(x[0, 2] / p["c_cp"], r_cp * i_b, rtol=1e-3)
    np.testing.assert_allclose(x[0, 3] / p["c_s"], p["r_s"] * i_b, rtol=1e-3)


def test_temperature_relaxes_to_ambient_at_rest():
    # With no current only the parasitic ~0.4 mA flows: T_b - t_a = (T_0 - t_a) exp(-h_a t / j_t).
    cell = BatteryCircuit(x0=(310.0, 7856.3254, 0.0, 0.0), substeps=4, name="battery")
    hist = discharge(cell, np.zeros((2000, 1)), dt=1.0)
    expected = 292.1 + (310.0 - 292.1) * np.exp(-0.5 * hist.time / 800.0)
    np.testing.assert_allclose(hist["battery.y"][:, 0], expected, rtol=0, atol=1e-6)


def test_end_of_discharge_per_asset_threshold():
    cell = BatteryCircuit(v_eod=[3.0, 3.5], name="battery")
    hist = discharge(cell, np.full((4000, 2, 1), 2.0), dt=1.0, batch=2)
    v = hist["battery.y"][:, :, 1]
    eod = np.stack([cell.end_of_discharge(x, cell.batch_params(2)) for x in hist["battery.x"]])
    np.testing.assert_array_equal(eod, v < [3.0, 3.5])
    first = np.argmax(eod, axis=0)
    assert eod.any(axis=0).all() and first[1] < first[0]
    assert np.all(np.diff(v[: first[0], 0]) < 0)  # a constant current discharges monotonically


@pytest.mark.parametrize(
    ("params", "param", "expected"),
    [
        ({"q_max": -1.0}, "q_max", "> 0"),
        ({"c_s": "large"}, "c_s", "> 0"),
        ({"h_a": -0.5}, "h_a", ">= 0"),
        ({"r_cp1": [1e-17, -1.0]}, "r_cp1", ">= 0"),
    ],
)
def test_invalid_params_are_refused_at_validate(params, param, expected):
    g = tg.Graph("cell", dt=1.0)
    g.add(BatteryCircuit(**params, name="battery"))
    with pytest.raises(tg.ParamError, match=rf"'{param}' parameter of BatteryCircuit 'battery' must be .*{expected}"):
        g.validate()


def test_same_trajectory_and_end_of_discharge_as_progpy():
    # Same equations, same explicit Euler step of dt: the two agree to rounding (the sums are
    # ordered differently), not to a discretisation error. ProgPy holds over each step the load
    # at its midpoint, which is the profile's value over that step.
    models = pytest.importorskip("progpy.models")
    dt = 1.0
    reference = models.BatteryCircuit()
    result = reference.simulate_to_threshold(
        lambda t, x=None: reference.InputContainer({"i": current(t)}), dt=dt, save_freq=dt
    )
    z = np.array([[z["t"], z["v"]] for z in result.outputs])
    u = np.array([[current((k + 0.5) * dt)] for k in range(len(z))])
    cell = BatteryCircuit(integrator="euler", name="battery")
    hist = discharge(cell, u, dt)
    np.testing.assert_allclose(hist["battery.y"], z, rtol=1e-12)
    eod = cell.end_of_discharge(hist["battery.x"], cell.batch_params(1))
    assert eod[-1] and not eod[:-1].any()
    assert hist.time[-1] == result.times[-1] == 2996.0
