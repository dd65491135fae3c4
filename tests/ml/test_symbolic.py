"""SymbolicODE: recovering an oscillator's equations, formulas as params, saving and loading without gplearn."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import twingraph as tg
from blocks.estimation import EKF
from blocks.ml import SymbolicODE, prepare_ode_data_from_timeseries, train_symbolic_ode
from blocks.ml.expression import parse
from blocks.ml.symbolic import _formula, expand, sparse_least_squares
from blocks.physics import MassSpringDamper

ROOT = Path(__file__).resolve().parents[2]
DT = 0.05
K, C = 4.0, 0.4  # stiffness [N/m] and damping [N s/m] of a 1 kg oscillator: dv/dt = -K x - C v
SMALL = dict(population_size=300, generations=8)  # a small, seeded search: a few seconds per state


def oscillator_data(batch=8, steps=201, seed=0):
    """Free trajectories of the damped oscillator from random initial states: t (T,), x (T, B, 2)."""
    truth = MassSpringDamper(mass=1.0, damping=C, stiffness=K)
    rng = np.random.default_rng(seed)
    t = np.arange(steps) * DT
    x = np.empty((steps, batch, 2))
    x[0] = rng.uniform(-2, 2, (batch, 2))
    p = truth.batch_params(batch)
    for k in range(steps - 1):
        x[k + 1] = truth.advance(x[k], np.zeros((batch, 1)), t[k], DT, p)
    return t, x


@pytest.fixture(scope="module")
def learned():
    pytest.importorskip("gplearn")
    t, x = oscillator_data()
    model = SymbolicODE(states=("x", "v"), formulas=("0", "0"), name="sym")
    report = train_symbolic_ode(model, *prepare_ode_data_from_timeseries(t, x), **SMALL)
    return model, report


def test_recovers_the_damped_oscillator_within_five_percent(learned):
    model, report = learned
    dx, dv = model.equations()
    print(dx, dv, sep="\n")
    one = re.fullmatch(r"dx/dt = (\S+)\*v", dx)
    pair = re.fullmatch(r"dv/dt = (\S+)\*x - (\S+)\*v", dv)
    assert one and pair, (dx, dv)
    assert float(one[1]) == pytest.approx(1.0, rel=0.05)
    assert float(pair[1]) == pytest.approx(-K, rel=0.05)
    assert float(pair[2]) == pytest.approx(C, rel=0.05)
    jac = model.jacobian(np.random.default_rng(1).normal(size=(5, 2)), np.zeros((5, 0)), 0.0, {})
    np.testing.assert_allclose(jac, np.broadcast_to([[0.0, 1.0], [-K, -C]], (5, 2, 2)), rtol=0.01, atol=1e-12)
    assert min(report["r2"]) > 0.9999
    assert len(report["programs"]) == 2 and report["formulas"] == list(model.formulas)


def test_the_search_finds_a_nonlinear_term():
    """A pendulum: the sin(θ) term must come from the search, the refit then gives its coefficient."""
    pytest.importorskip("gplearn")
    truth = SymbolicODE(states=("th", "w"), formulas=("w", "-9.81*sin(th) - 0.1*w"))
    rng = np.random.default_rng(0)
    x = np.empty((101, 8, 2))
    x[0] = np.stack([rng.uniform(-2.5, 2.5, 8), rng.uniform(-2.0, 2.0, 8)], axis=1)
    for k in range(100):
        x[k + 1] = truth.advance(x[k], np.zeros((8, 0)), k * DT, DT, {})
    model = SymbolicODE(states=("th", "w"), formulas=("0", "0"))
    train_symbolic_ode(model, *prepare_ode_data_from_timeseries(np.arange(101) * DT, x),
                       function_set=("add", "sub", "mul", "sin"), **SMALL)
    print(model.equations())
    pair = re.fullmatch(r"dw/dt = (\S+)\*w - (\S+)\*sin\(th\)", model.equations()[1])
    assert pair, model.equations()
    assert float(pair[1]) == pytest.approx(-0.1, rel=0.05)
    assert float(pair[2]) == pytest.approx(9.81, rel=0.05)


def test_the_search_is_deterministic():
    pytest.importorskip("gplearn")
    X, y = prepare_ode_data_from_timeseries(*oscillator_data(batch=2, steps=101))
    runs = [SymbolicODE(states=("x", "v"), formulas=("0", "0")) for _ in range(2)]
    reports = [train_symbolic_ode(model, X, y, population_size=100, generations=3) for model in runs]
    assert runs[0].formulas == runs[1].formulas
    assert reports[0]["programs"] == reports[1]["programs"]


def learned_twin(model) -> tg.Graph:
    g = tg.Graph("twin", dt=DT)
    g.add(tg.Input("u", shape=(1,)))
    g.add(SymbolicODE(states=("x", "v"), formulas=(model.formulas[0], model.formulas[1] + " + F"),
                      input_names=("F",), outputs=("x", "F*v"), x0=[1.0, 0.0], name="sym"))
    g.connect("u.value", "sym.u")
    return g


def test_saved_formulas_are_text_and_load_with_identical_outputs(learned, tmp_path):
    g = learned_twin(learned[0])
    inputs = {"u": np.random.default_rng(2).normal(size=(40, 1, 1))}
    before = tg.Simulator(g).run(inputs=inputs, steps=40)
    g.save(tmp_path / "twin.json")
    params = json.loads((tmp_path / "twin.json").read_text())["blocks"][1]["params"]
    assert params["formulas"] == {"__tuple__": list(g.blocks["sym"].formulas)}
    assert not (tmp_path / "twin.npz").exists()  # nothing but text
    after = tg.Simulator(tg.load(tmp_path / "twin.json")).run(inputs=inputs, steps=40)
    for port in ("sym.x", "sym.y"):
        np.testing.assert_array_equal(before[port], after[port])
    assert not np.allclose(before["sym.x"][-1], before["sym.x"][0])


def test_loading_needs_no_gplearn(learned, tmp_path):
    g = learned_twin(learned[0])
    g.save(tmp_path / "twin.json")
    u = np.sin(np.arange(30) * DT)[:, None, None]
    expected = tg.Simulator(g).run(inputs={"u": u}, steps=30)["sym.x"]
    code = (
        "import sys, json, numpy as np\n"
        "sys.modules['gplearn'] = None  # any import of gplearn now fails\n"
        "import twingraph as tg\n"
        f"g = tg.load({str(tmp_path / 'twin.json')!r})\n"
        "u = np.sin(np.arange(30) * 0.05)[:, None, None]\n"
        "x = tg.Simulator(g).run(inputs={'u': u}, steps=30)['sym.x']\n"
        "print(json.dumps(x.tolist()))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(np.array(json.loads(result.stdout)), expected)


def test_a_file_with_code_in_a_formula_is_refused_and_runs_nothing(tmp_path):
    g = tg.Graph("twin", dt=DT)
    g.add(SymbolicODE(name="sym"))
    doc = g.to_dict()
    marker = tmp_path / "hacked"
    doc["blocks"][0]["params"]["formulas"] = {"__tuple__": ["v", f"__import__('os').system('touch {marker}')"]}
    with pytest.raises(tg.TwinGraphError, match=r"'formulas' parameter of SymbolicODE 'sym'.*unexpected character"):
        tg.from_dict(doc)
    assert not marker.exists()


@pytest.mark.parametrize("params, message", [
    (dict(formulas=("v",)), r"must be a sequence of 2 formulas \(one per state \['x', 'v'\]\) as text"),
    (dict(formulas=("v", "-x - y")), r"bad formula at index 1: .*unknown name 'y' at position 5"),
    (dict(formulas="v"), "as text"),
    (dict(states=("x", "sin")), "'states' parameter .* distinct names"),
    (dict(states=("x", "x")), "'states' parameter"),
    (dict(input_names=("v",)), "'input_names' parameter .* names other than the states"),
    (dict(outputs=()), "'outputs' parameter .* None or at least one formula"),
    (dict(outputs=("2*",)), r"'outputs' parameter .* bad formula at index 0"),
    (dict(states=3), "'states' parameter .* distinct names"),
    (dict(states=("x\n", "v")), "'states' parameter .* distinct names"),
    (dict(formulas=("v", "-x ^^ 2")), r"bad formula at index 1: .*invalid syntax at position 4, found '\^'"),
    (dict(formulas=("v", "x.real")), r"bad formula at index 1: .*'x.real' at position 0 is not a number"),
    (dict(substeps=0), "'substeps' parameter of SymbolicODE 'm' must be an int >= 1. Got 0."),
    (dict(x0=[1.0, 2.0, 3.0]), "'x0' parameter of SymbolicODE 'm' must be a number, one number per state"),
])
def test_bad_params_are_clear_errors(params, message):
    with pytest.raises(tg.ParamError, match=message) as info:
        SymbolicODE(**params, name="m").check_params()
    assert "of SymbolicODE 'm'" in str(info.value)


def test_outputs_inputs_and_symbolic_jacobian():
    model = SymbolicODE(states=("th", "w"), formulas=("w", "-9.81*sin(th) - 0.1*w + tau"), input_names=("tau",),
                        outputs=("th", "w*tau"))
    assert model.n_u == 1 and model.n_y == 2 and model.direct_feedthrough
    x, u = np.array([[0.3, -0.2], [1.2, 0.5]]), np.array([[0.5], [-1.0]])
    np.testing.assert_allclose(model.derivative(x, u, 0.0, {}),
                               np.stack([x[:, 1], -9.81 * np.sin(x[:, 0]) - 0.1 * x[:, 1] + u[:, 0]], axis=1))
    np.testing.assert_allclose(model.observe(x, u, {}), np.stack([x[:, 0], x[:, 1] * u[:, 0]], axis=1))
    jac = model.jacobian(x, u, 0.0, {})
    np.testing.assert_allclose(jac[:, 1, 0], -9.81 * np.cos(x[:, 0]))
    np.testing.assert_allclose(jac[:, :, 1], [[1.0, -0.1], [1.0, -0.1]])
    assert not SymbolicODE(outputs=("x",)).direct_feedthrough
    assert SymbolicODE(formulas=("v", "-abs(x)")).jacobian(x, np.zeros((2, 0)), 0.0, {}) is None


def test_ekf_tracks_an_oscillator_through_its_learned_formulas(learned):
    model, _ = learned
    twin = SymbolicODE(states=model.states, formulas=model.formulas, outputs=("x",), name="twin")
    truth = MassSpringDamper(mass=1.0, damping=C, stiffness=K)
    steps, noise = 200, 0.05
    x = [np.array([[1.5, -0.5]])]
    for k in range(steps - 1):
        x.append(truth.advance(x[-1], np.zeros((1, 1)), k * DT, DT, truth.batch_params(1)))
    x = np.concatenate(x)
    y = x[:, :1] + np.random.default_rng(3).normal(scale=noise, size=(steps, 1))
    g = tg.Graph("tracking", dt=DT)
    g.add(tg.Input("y", shape=(1,)))
    g.add(EKF(model=twin, q=1e-6, r=noise**2, p0=1.0, x0=[0.0, 0.0], name="ekf"))
    g.connect("y.value", "ekf.y")
    estimate = tg.Simulator(g).run(inputs={"y": y}, steps=steps)["ekf.x_hat"]
    rmse = np.sqrt(((estimate[50:] - x[50:]) ** 2).mean(axis=0))
    assert np.all(rmse < 0.5 * noise), rmse  # the velocity, never measured, too


def test_expansion_multiplies_out_and_merges_like_terms():
    terms = expand(parse("mul(add(x, 1), sub(x, v)) + x/2 - 2^2*v + div(v, 0.0001) + sin(x)*x"))
    assert {key: c for key, (c, _) in terms.items()} == {
        ("x", "x"): 1.0, ("v", "x"): -1.0, ("x",): 1.5, ("v",): -5.0, (): 1.0, ("sin(x)", "x"): 1.0}
    coefficients = np.array([c for c, _ in terms.values()])
    assert _formula(coefficients, terms, ("x", "v")) == "1.5*x - 5.0*v + 1.0*x^2 - 1.0*x*v + 1.0*x*sin(x) + 1.0"
    assert len(expand(parse("*".join(["(x + v + 1)"] * 6)))) == 28  # every monomial of degree <= 6 in x, v
    assert len(expand(parse("*".join(["(x + v + u + 1)"] * 5)))) == 56
    assert len(expand(parse("*".join(["(x + v + u + 1)"] * 6)))) == 1  # 84 > MAX_TERMS: kept whole


def test_sparse_least_squares_drops_small_terms_and_refits():
    x = np.linspace(-2.0, 2.0, 101)
    wiggle = 1e-3 * np.cos(3 * x)
    columns = np.stack([x, x**3, np.ones_like(x), np.zeros_like(x), np.cos(x), np.cos(x) + wiggle], axis=1)
    target = 2.0 * x - 0.5 * x**3 + 1e-4 + 0.1 * wiggle
    full = np.linalg.lstsq(columns, target, rcond=None)[0]
    np.testing.assert_allclose(full[4:], [-0.1, 0.1], rtol=1e-6)  # the cos pair cancels: 5 % of the RMS each
    coefficients = sparse_least_squares(columns, target, 0.01)  # ... and carries 0.01 %: both go
    np.testing.assert_allclose(coefficients, [2.0, -0.5, 0.0, 0.0, 0.0, 0.0], atol=1e-9)
    for order in ([5, 4, 3, 2, 1, 0], [4, 0, 5, 2, 1, 3]):  # no tie: the result does not hang on the order
        again = np.empty(6)
        again[order] = sparse_least_squares(columns[:, order], target, 0.01)
        np.testing.assert_allclose(again, coefficients, atol=1e-9)
    np.testing.assert_array_equal(sparse_least_squares(columns, np.zeros_like(x), 0.01), np.zeros(6))


def test_sparse_least_squares_with_exactly_collinear_columns_fits_as_well():
    """x, x + 0.2 sin(x) and sin(x) are collinear: which goes first is rounding, the fit is the same."""
    x = np.linspace(-2.0, 2.0, 101)
    columns = np.stack([x, x**3, np.ones_like(x), x + 0.2 * np.sin(x), np.sin(x)], axis=1)
    target = 2.0 * x - 0.5 * x**3 + 1e-4
    coefficients = sparse_least_squares(columns, target, 0.01)
    np.testing.assert_allclose(columns @ coefficients, 2.0 * x - 0.5 * x**3, atol=1e-9)
    np.testing.assert_allclose(coefficients[1:3], [-0.5, 0.0], atol=1e-9)
    tied = coefficients[[0, 3, 4]]
    assert np.count_nonzero(tied) < 3, coefficients  # at least one of the tied terms is dropped


def test_training_errors_are_clear(monkeypatch):
    model = SymbolicODE(name="m")
    with pytest.raises(ValueError, match=r"X of shape \(N, 2\) \(columns \['x', 'v'\]\)"):
        train_symbolic_ode(model, np.zeros((10, 3)), np.zeros((10, 2)))
    with pytest.raises(ValueError, match="function_set must hold functions from"):
        train_symbolic_ode(model, np.zeros((10, 2)), np.zeros((10, 2)), function_set=("add", "log"))
    monkeypatch.setitem(sys.modules, "gplearn.genetic", None)
    with pytest.raises(ImportError, match=r"pip install 'twingraph\[symbolic\]'"):
        train_symbolic_ode(model, np.zeros((10, 2)), np.zeros((10, 2)))
