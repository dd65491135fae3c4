"""CoSimModel: a co-simulation FMU of the pump (pythonfmu) under the EKF and UKF gives the native PumpLike's estimates;
``twingraph run --trust`` runs a saved graph with an FMU."""

import copy
import shutil
import zipfile

import numpy as np
import pandas as pd
import pytest

import twingraph as tg
from blocks.estimation import EKF, UKF
from blocks.fmi import FMU, CoSimModel, examples, trust
from blocks.physics import PumpLike
from twingraph import cli

from .conftest import _require_fmi
from .test_model import DT, TICKS, estimate

STATES = ("omega", "q")


@pytest.fixture(scope="module")
def pump_fmu(tmp_path_factory):
    """``Pump.fmu`` (co-simulation, pythonfmu, one RK4 step per doStep), trusted: this test built it."""
    _require_fmi()
    path = examples.pump(tmp_path_factory.mktemp("cosim_pump"))
    trust(str(path))
    return path


def test_the_interface_comes_from_the_description_and_the_states_param(pump_fmu):
    model = CoSimModel(str(pump_fmu), states=STATES, name="pump")
    assert model.states == STATES
    assert (model.n_inputs, model.n_outputs) == (1, 1)
    assert model.parameters == PumpLike.parameters
    assert model.get_params()["states"] == STATES
    np.testing.assert_array_equal(model.initial_state(2), np.zeros((2, 2)))


def test_one_step_is_the_native_rk4_step_for_every_row(pump_fmu):
    """The slave's RK4 is PumpLike's arithmetic: rows given in any order step exactly alike."""
    model, native = CoSimModel(str(pump_fmu), states=STATES, name="pump"), PumpLike()
    x = np.array([[10.0, 1e-4], [150.0, 6e-4], [0.0, 0.0]])
    u = np.array([[12.0], [10.0], [14.0]])
    p = native.batch_params(3)
    p["efficiency"] = np.array([0.7, 1.0, 0.85])
    p["inertia"] = np.array([1e-3, 2e-3, 1e-3])  # a fixed parameter, set per row before initialisation
    expected = native.advance(x, u, 0.35, DT, p)
    np.testing.assert_array_equal(model.advance(x, u, 0.35, DT, p), expected)
    backwards = {name: value[::-1] for name, value in p.items()}
    np.testing.assert_array_equal(model.advance(x[::-1], u[::-1], 0.35, DT, backwards), expected[::-1])
    np.testing.assert_array_equal(model.observe(x, u, p), native.observe(x, u, p))


def filter_params(**extra) -> dict:
    return dict(estimate=("efficiency",), q=0.0, q_params=1e-8, r=1e-12, p0=0.0, p0_params=0.1, **extra)


def test_an_ekf_on_the_fmu_estimates_as_on_the_native_pump(pump_fmu):
    """Same estimates as the native EKF: the transition is the same to the last bit (the test above), so
    the filters differ only in F = ∂x⁺/∂z. On the FMU, F comes from central differences of advance (it
    has no analytic Jacobian); the native EKF carries PumpLike's analytic tangent through RK4. Their
    difference is the differencing error, O(h²) truncation + O(eps/h) rounding with h = eps^(1/3) (1 + |z|),
    about 1e-10 relative, which moves the estimates by far less than the 1e-9 asked here (measured:
    6e-13). Against the native EKF with jacobian="fd", the same differences of the same numbers: 1e-12
    (measured: 1e-13)."""
    on_fmu = estimate(EKF(model=CoSimModel(str(pump_fmu), states=STATES, name="pump"), name="f", **filter_params()))
    native = estimate(EKF(model=PumpLike(), name="f", **filter_params()))
    native_fd = estimate(EKF(model=PumpLike(), name="f", **filter_params(jacobian="fd")))
    estimates = np.asarray(on_fmu["f.params"])[:, :, 0]
    np.testing.assert_allclose(estimates, np.asarray(native["f.params"])[:, :, 0], rtol=0, atol=1e-9)
    np.testing.assert_allclose(estimates, np.asarray(native_fd["f.params"])[:, :, 0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(estimates[-1], [0.7, 0.85], atol=1e-3)
    assert len(estimates) == TICKS


def test_a_ukf_on_the_fmu_estimates_as_on_the_native_pump(pump_fmu):
    """The UKF needs only the transition and h, both the native numbers exactly: the same estimates to 1e-12."""
    params = filter_params()
    params.update(q=1e-12, p0=1e-10)  # the UKF's Cholesky factor needs P > 0
    on_fmu = estimate(UKF(model=CoSimModel(str(pump_fmu), states=STATES, name="pump"), name="f", **params))
    native = estimate(UKF(model=PumpLike(), name="f", **params))
    np.testing.assert_allclose(np.asarray(on_fmu["f.params"]), np.asarray(native["f.params"]), rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(on_fmu["f.params"])[-1, :, 0], [0.7, 0.85], atol=1e-3)


def test_an_fmu_without_get_and_set_state_is_refused_at_validate(stateless_fmu):
    ekf = EKF(model=CoSimModel(str(stateless_fmu), states=("s", "v"), name="msd"), name="f")
    with pytest.raises(tg.ParamError, match=r"The 'path' parameter of CoSimModel 'msd' must be an FMU that declares "
                                            r"canGetAndSetFMUstate"):
        ekf.check_params()


def test_a_state_fmi_does_not_let_be_set_is_refused_naming_the_variable(msd_fmu):
    """The mass-spring-damper's s and v are outputs computed at initialisation (initial not given: calculated)."""
    model = CoSimModel(str(msd_fmu), states=("s", "v"), name="msd")
    with pytest.raises(tg.ParamError, match=r"The 'states' parameter of CoSimModel 'msd' must be names of variables "
                                            r"that FMI lets be set before initialisation.*'s' is output"):
        model.check_params()
    with pytest.raises(tg.ParamError, match=r"'states' parameter of CoSimModel 'msd' must be the names .* declares "
                                            r"no continuous states"):
        CoSimModel(str(msd_fmu), name="msd").check_params()


def test_copies_share_no_instance_and_a_graph_round_trips(pump_fmu, tmp_path):
    model = CoSimModel(str(pump_fmu), states=list(STATES), start={"efficiency": 0.9}, name="pump")
    p = model.batch_params(1)
    x, u = np.array([[50.0, 2e-4]]), np.array([[12.0]])
    stepped = model.advance(x, u, 0.0, DT, p)
    clone = copy.deepcopy(model)
    assert "_instances" not in vars(clone)
    np.testing.assert_array_equal(clone.advance(x, u, 0.0, DT, p), stepped)

    shutil.copy(pump_fmu, tmp_path / "Pump.fmu")
    g = tg.Graph("pump", dt=DT)
    pump = g.add(CoSimModel(str(tmp_path / "Pump.fmu"), states=STATES, start={"efficiency": 0.9}, name="pump"))
    g.connect(g.add(tg.Input("u", shape=(1,))).out.value, pump.inp.u)
    g.save(tmp_path / "g.json")
    text = (tmp_path / "g.json").read_text().replace(str(tmp_path / "Pump.fmu"), "Pump.fmu")
    (tmp_path / "g.json").write_text(text)
    loaded = tg.load(tmp_path / "g.json").blocks["pump"]
    assert tuple(loaded.get_params()["states"]) == STATES
    np.testing.assert_array_equal(loaded.advance(x, u, 0.0, DT, p), stepped)


def test_twingraph_run_needs_trust_for_an_fmu_and_runs_with_it(msd_fmu, tmp_path, capsys):
    fmu = tmp_path / "plant.fmu"  # other bytes than any file trusted in this process: a zip comment
    shutil.copy(msd_fmu, fmu)
    with zipfile.ZipFile(fmu, "a") as archive:
        archive.comment = b"twingraph run --trust"
    graph = tg.Graph("msd", dt=0.01)
    force = graph.add(tg.Input("F", shape=()))
    plant = graph.add(FMU(path=str(fmu), start={"s0": 1.0}, name="plant"))
    graph.connect(force.out.value, plant.inp.force)
    graph.save(tmp_path / "g.json")
    text = (tmp_path / "g.json").read_text().replace(str(fmu), "plant.fmu")
    (tmp_path / "g.json").write_text(text)
    forces = np.sin(np.arange(50) * 0.01)
    pd.DataFrame({"time": np.arange(50) * 0.01, "F": forces}).to_csv(tmp_path / "data.csv", index=False)
    command = ["run", str(tmp_path / "g.json"), "--inputs", str(tmp_path / "data.csv"), "--out",
               str(tmp_path / "out.csv")]

    assert cli.main(command) == 1
    error = capsys.readouterr().err
    assert "FMU 'plant' would run the native code of" in error and str(fmu) in error and "--trust" in error

    assert cli.main([*command, "--trust", str(fmu)]) == 0
    written = pd.read_csv(tmp_path / "out.csv")
    history = tg.Simulator(tg.load(tmp_path / "g.json")).run({"F": forces[:, None]})
    np.testing.assert_array_equal(written["plant.s"], np.asarray(history["plant.s"]).ravel())
    assert written["plant.s"].iloc[0] == 1.0 and written["plant.s"].nunique() == 50

    assert cli.main([*command, "--trust", str(tmp_path / "data.csv")]) == 1
    assert "Cannot trust" in capsys.readouterr().err
