"""FMUModel: a model-exchange FMU of the pump, compiled from C, gives the native PumpLike's numbers to estimators."""

import copy

import numpy as np
import pytest

import twingraph as tg
from blocks.estimation import EKF, UKF, ParticleFilter
from blocks.fmi import FMUModel, UntrustedFMUError, c_fmus, trust
from blocks.physics import PumpLike
from blocks.sources import Input

pytest.importorskip("fmpy")
pytestmark = pytest.mark.skipif(
    c_fmus.c_compiler() is None, reason="no C compiler (cc or gcc) on PATH to build the model-exchange FMU from C"
)

DT, TICKS = 0.05, 200
TRUE_EFFICIENCY = np.array([0.7, 0.85])  # two worn pumps


@pytest.fixture(scope="module")
def pump_fmu(tmp_path_factory):
    """``pump_me.fmu`` (model exchange, compiled here) and trusted: this test built it."""
    path = c_fmus.pump(tmp_path_factory.mktemp("pump"))
    trust(str(path))
    return path


def measurements(ticks: int = TICKS, seed: int = 0):
    """Voltages and noisy flows of the two worn pumps: ``u (T, 2, 1)`` and ``y (T, 2, 1)``."""
    truth = PumpLike(efficiency=TRUE_EFFICIENCY)
    rng = np.random.default_rng(seed)
    x, p = truth.initial_state(2), truth.batch_params(2)
    u = np.broadcast_to(12.0 + 2.0 * np.sin(0.3 * np.arange(ticks))[:, None, None], (ticks, 2, 1)).copy()
    y = np.empty_like(u)
    for k in range(ticks):
        y[k] = truth.observe(x, u[k], p) + 1e-6 * rng.normal(size=(2, 1))
        x = truth.advance(x, u[k], k * DT, DT, p)
    return u, y


def estimate(filter_block, ticks: int = TICKS) -> tg.History:
    g = tg.Graph("pump", dt=DT)
    g.add(Input("u", shape=(1,), unit="V"))
    g.add(Input("y", shape=(1,), unit="m3/s"))
    g.add(filter_block)
    g.connect("u.value", f"{filter_block.name}.u")
    g.connect("y.value", f"{filter_block.name}.y")
    u, y = measurements(ticks)
    return tg.Simulator(g, batch=2).run(inputs={"u": u, "y": y})


def test_the_interface_comes_from_the_model_description(pump_fmu):
    model = FMUModel(str(pump_fmu), name="pump")
    assert model.states == ("omega", "q")
    assert model.state_units == ("rad/s", "m3/s")
    assert (model.n_inputs, model.input_unit, model.n_outputs, model.output_unit) == (1, "V", 1, "m3/s")
    assert model.parameters == PumpLike.parameters
    assert model.parameter_values()["efficiency"] == 1.0
    np.testing.assert_array_equal(model.initial_state(3), np.zeros((3, 2)))
    assert model.out.y.signal.unit == "m3/s"


def test_derivatives_and_outputs_equal_the_native_pump(pump_fmu):
    rng = np.random.default_rng(1)
    rows = 9
    x = np.column_stack([rng.uniform(-50, 200, rows), rng.uniform(0, 1e-3, rows)])
    u = rng.uniform(0, 24, (rows, 1))
    start = {"efficiency": rng.uniform(0.5, 1.0, rows), "friction": rng.uniform(5e-5, 2e-4, rows)}
    native = PumpLike(**start)
    model = FMUModel(str(pump_fmu), start={k: list(v) for k, v in start.items()}, name="pump")
    p, p_native = model.batch_params(rows), native.batch_params(rows)
    np.testing.assert_array_equal(model.derivative(x, u, 0.3, p), native.derivative(x, u, 0.3, p_native))
    np.testing.assert_array_equal(model.observe(x, u, p), native.observe(x, u, p_native))
    few = model.derivative(x[:3], u[:3], 0.0, {k: v[3:6] for k, v in p.items()})  # rows 0-2 take new parameters
    np.testing.assert_array_equal(few, native.derivative(x[:3], u[:3], 0.0, {k: v[3:6] for k, v in p_native.items()}))
    clone = copy.deepcopy(model)  # a copy makes its own instances
    np.testing.assert_array_equal(clone.advance(x, u, 0.0, DT, p), native.advance(x, u, 0.0, DT, p_native))


@pytest.mark.parametrize("jacobian", ["fd", "auto"])
def test_ekf_on_the_fmu_estimates_the_efficiency_as_on_the_native_pump(pump_fmu, jacobian):
    """Acceptance: same data, estimates within 1e-6 after 200 ticks (the native EKF's Jacobian may be analytic)."""
    settings = dict(estimate=("efficiency",), q=0.0, q_params=1e-6, r=1e-12, p0=0.0, p0_params=0.1, name="ekf")
    on_fmu = estimate(EKF(model=FMUModel(str(pump_fmu)), jacobian="fd", **settings))
    native = estimate(EKF(model=PumpLike(), jacobian=jacobian, **settings))
    efficiency = on_fmu["ekf.params"][-1, :, 0]
    np.testing.assert_allclose(efficiency, native["ekf.params"][-1, :, 0], rtol=0, atol=1e-6)
    np.testing.assert_allclose(efficiency, TRUE_EFFICIENCY, atol=2e-3)
    np.testing.assert_allclose(on_fmu["ekf.x_hat"][-1], native["ekf.x_hat"][-1], rtol=1e-6)


def test_ukf_estimates_a_fixed_parameter_as_on_the_native_pump(pump_fmu):
    """A fixed FMU parameter changes only through fmi2Reset and a new initialisation; the numbers do not show it."""
    settings = dict(estimate=("flow_coefficient",), q=1e-8, q_params=1e-16, r=1e-12, p0=1e-6, p0_params=1e-12,
                    name="ukf")
    on_fmu = estimate(UKF(model=FMUModel(str(pump_fmu), start={"efficiency": 0.8}), **settings), ticks=60)
    native = estimate(UKF(model=PumpLike(efficiency=0.8), **settings), ticks=60)
    np.testing.assert_allclose(on_fmu["ukf.params"], native["ukf.params"], rtol=1e-9)


def test_particle_filter_runs_one_instance_per_particle(pump_fmu):
    settings = dict(estimate=("efficiency",), q=1e-4, q_params=1e-5, r=1e-9, p0=1.0, p0_params=0.02,
                    n_particles=50, seed=3, name="pf")
    on_fmu = estimate(ParticleFilter(model=FMUModel(str(pump_fmu)), **settings), ticks=40)
    native = estimate(ParticleFilter(model=PumpLike(), **settings), ticks=40)
    np.testing.assert_allclose(on_fmu["pf.params"], native["pf.params"], rtol=1e-9)


def test_a_saved_graph_finds_the_fmu_beside_it_and_loading_runs_nothing(pump_fmu, tmp_path, monkeypatch):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "pump.fmu").write_bytes(pump_fmu.read_bytes())
    monkeypatch.chdir(tmp_path)  # a path in a graph built in Python is relative to the working directory
    g = tg.Graph("pump", dt=DT)
    g.add(Input("u", shape=(1,), unit="V"))
    g.add(FMUModel("models/pump.fmu", start={"efficiency": 0.6}, name="pump"))
    g.connect("u.value", "pump.u")
    g.save(tmp_path / "pump.json")
    monkeypatch.chdir(tmp_path / "models")  # in a loaded graph, to the graph file's folder
    loaded = tg.load(tmp_path / "pump.json")  # reads the description only: no instance exists
    assert "_instances" not in vars(loaded.blocks["pump"])
    history = tg.Simulator(loaded).run(inputs={"u": np.full((100, 1), 12.0)})
    native = PumpLike(efficiency=0.6)
    x = native.rollout(native.initial_state(1), np.full((100, 1, 1), 12.0), DT)
    np.testing.assert_array_equal(history["pump.x"], x[:-1, 0])


def test_a_path_outside_the_graph_folder_is_refused_on_load(pump_fmu, tmp_path, monkeypatch):
    (tmp_path / "pump.fmu").write_bytes(pump_fmu.read_bytes())
    (tmp_path / "twin").mkdir()
    monkeypatch.chdir(tmp_path / "twin")
    g = tg.Graph("pump", dt=DT)
    g.add(Input("u", shape=(1,), unit="V"))
    g.add(EKF(model=FMUModel("../pump.fmu", name="m"), estimate=("efficiency",), name="ekf"))
    g.add(Input("y", shape=(1,), unit="m3/s"))
    g.connect("u.value", "ekf.u")
    g.connect("y.value", "ekf.y")
    g.save(tmp_path / "twin" / "g.json")
    with pytest.raises(tg.LoadError, match=r"The 'path' parameter of FMUModel 'm' must be a path inside the graph"):
        tg.load(tmp_path / "twin" / "g.json")


def test_an_untrusted_fmu_does_not_run(pump_fmu, tmp_path):
    copy_path = tmp_path / "other.fmu"
    copy_path.write_bytes(pump_fmu.read_bytes() + b"\0")  # other bytes: not the trusted file
    model = FMUModel(str(copy_path), name="pump")
    model.check_params()  # validating reads the description only
    with pytest.raises(UntrustedFMUError, match=r"FMUModel 'pump' would run the native code of .*other.fmu"):
        model.derivative(np.zeros((1, 2)), np.zeros((1, 1)), 0.0, model.batch_params(1))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"path": "missing.fmu"}, r"The 'path' parameter of FMUModel 'pump' must be an existing .fmu file"),
        ({"path": 3}, r"The 'path' parameter of FMUModel 'pump' must be the path of an .fmu file, as a str. Got 3."),
        ({"inputs": ("current",)}, r"The 'inputs' parameter of FMUModel 'pump' must be None or distinct names of "
                                   r"Real inputs of the FMU, from \['voltage'\]"),
        ({"outputs": ("omega",)}, r"The 'outputs' parameter of FMUModel 'pump' must be .* from \['flow'\]"),
        ({"start": {"speed": 1.0}}, r"The 'start' parameter of FMUModel 'pump' must be None or a dict from "
                                    r"parameter name to value, names from \['efficiency'"),
        ({"start": {"efficiency": "high"}}, r"The 'start' parameter of FMUModel 'pump' must be finite numbers, or one "
                                            r"per asset, for 'efficiency'"),
        ({"x0": [1.0, 2.0, 3.0]}, r"The 'x0' parameter of FMUModel 'pump' must be a number, one number per state "
                                  r"\['omega', 'q'\]"),
        ({"substeps": 0}, r"The 'substeps' parameter of FMUModel 'pump' must be"),
    ],
)
def test_bad_params_are_refused_at_validate(pump_fmu, params, message):
    g = tg.Graph("pump", dt=DT)
    g.add(Input("u", shape=(1,), unit="V"))
    g.add(FMUModel(**{"path": str(pump_fmu), **params}, name="pump"))
    with pytest.raises(tg.ParamError, match=message):
        g.validate()


def test_a_co_simulation_fmu_is_refused(tmp_path):
    pytest.importorskip("pythonfmu")
    from blocks.fmi import examples

    path = examples.mass_spring_damper(tmp_path)
    with pytest.raises(tg.ParamError, match=r"'path' parameter of FMUModel 'm' must be an FMU that supports model "
                                            r"exchange \(this one is co-simulation only\)"):
        FMUModel(str(path), name="m").check_params()
