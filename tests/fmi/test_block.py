"""The FMU block: ports from the model description, the native mass-spring-damper reproduced, state and errors."""

import io
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

import twingraph as tg
from blocks import fmi, physics

DT, STEPS = 0.01, 1000  # 10 s


def description(variables: str, version: str = "2.0", interface: str = '<CoSimulation modelIdentifier="m"/>') -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><fmiModelDescription fmiVersion="{version}" modelName="m" guid="g">'
        f'{interface}<UnitDefinitions><Unit name="N"/></UnitDefinitions>'
        f'<TypeDefinitions><SimpleType name="Force"><Real unit="N"/></SimpleType></TypeDefinitions>'
        f"<ModelVariables>{variables}</ModelVariables></fmiModelDescription>"
    )


UNITS = (
    '<ScalarVariable name="body.F" valueReference="0" causality="input"><Real declaredType="Force" start="0"/>'
    "</ScalarVariable>"
    '<ScalarVariable name="body.s" valueReference="1" causality="output"><Real unit="m"/></ScalarVariable>'
    '<ScalarVariable name="on" valueReference="2" causality="output"><Boolean/></ScalarVariable>'
    '<ScalarVariable name="n" valueReference="3" causality="output"><Integer/></ScalarVariable>'
    '<ScalarVariable name="k" valueReference="4" causality="parameter" variability="fixed"><Real start="4"/>'
    "</ScalarVariable>"
)


def write_fmu(folder: Path, xml: str, name: str = "m.fmu") -> str:
    """An archive holding only ``xml`` as its model description (enough to read ports; it cannot run)."""
    path = folder / name
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("modelDescription.xml", xml)
    return str(path)


def msd_graph(fmu_path: str, start: dict) -> tg.Graph:
    graph = tg.Graph("msd", dt=DT)
    force = graph.add(tg.Input("F", shape=()))
    plant = graph.add(fmi.FMU(path=fmu_path, start=start, name="plant"))
    graph.connect(force.out.value, plant.inp.force)
    return graph


def forces(batch: int) -> np.ndarray:
    t = np.arange(STEPS)[:, None] * DT
    return np.sin((1.0 + np.arange(batch)) * t) + 0.5  # (STEPS, B)


def test_ports_units_and_dtypes_come_from_the_description(tmp_path):
    block = fmi.FMU(path=write_fmu(tmp_path, description(UNITS)), name="plant")
    assert block.input_signals() == {"body_F": tg.Signal(shape=(), dtype="float64", unit="N")}
    assert block.output_signals({}) == {
        "body_s": tg.Signal(shape=(), dtype="float64", unit="m"),
        "on": tg.Signal(shape=(), dtype="bool"),
        "n": tg.Signal(shape=(), dtype="int32"),
    }
    chosen = fmi.FMU(path=block.path, output_names=("k", "body.s"), name="plant")
    assert list(chosen.output_signals({})) == ["k", "body_s"]


def assert_matches_native_msd(graph, batch: int) -> None:
    """Run ``graph(start)``, an FMU mass-spring-damper named 'plant', against the native block at ``batch``."""
    stiffness = [4.0, 5.0, 6.0, 7.0][:batch]
    damping = [0.5, 0.2, 0.8, 0.1][:batch]
    s0 = [1.0, -0.5, 0.0, 2.0][:batch]
    start = {"stiffness": stiffness, "damping": damping, "s0": s0, "mass": 2.0}
    fmu_run = tg.Simulator(graph(start), batch=batch).run({"F": forces(batch)})

    native = tg.Graph("native", dt=DT)
    force = native.add(tg.Input("F", shape=(1,)))
    x0 = np.stack([s0, np.zeros(batch)], axis=1)
    plant = native.add(physics.MassSpringDamper(mass=2.0, damping=damping, stiffness=stiffness, x0=x0, name="plant"))
    native.connect(force.out.value, plant.inp.u)
    native_run = tg.Simulator(native, batch=batch).run({"F": forces(batch)[..., None]})

    x = np.asarray(native_run["plant.x"])
    np.testing.assert_allclose(np.asarray(fmu_run["plant.s"]), x[..., 0], rtol=0, atol=1e-8)
    np.testing.assert_allclose(np.asarray(fmu_run["plant.v"]), x[..., 1], rtol=0, atol=1e-8)
    assert np.ptp(x[..., 0]) > 0.1  # the mass moves


@pytest.mark.parametrize("batch", [1, 4])
def test_the_fmu_matches_the_native_mass_spring_damper(msd_fmu, batch):
    assert_matches_native_msd(lambda start: msd_graph(str(msd_fmu), start), batch)


def test_snapshot_restore_is_exact_through_a_graph_file(msd_fmu):
    folder = msd_fmu.parent
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)  # built in Python, a relative path is relative to the working directory
        graph = msd_graph(msd_fmu.name, {"stiffness": [4.0, 9.0]})
        sim = tg.Simulator(graph, batch=2)
        sim.run({"F": forces(2)[:300]})
        graph.save(folder / "twin.json", state=sim.snapshot())
    uninterrupted = np.array(sim.run({"F": forces(2)[300:600]})["plant.s"][-300:])
    loaded = tg.load(folder / "twin.json")  # loaded, relative to the graph file's folder
    resumed = tg.Simulator(loaded, batch=2)
    resumed.restore(tg.load_state(folder / "twin.json"))
    np.testing.assert_array_equal(np.array(resumed.run({"F": forces(2)[300:600]})["plant.s"]), uninterrupted)


def test_an_fmu_without_state_serialisation_cannot_be_snapshot(stateless_fmu):
    sim = tg.Simulator(msd_graph(str(stateless_fmu), {}), batch=1)
    with pytest.raises(tg.SimulationError, match=r"FMU 'plant' cannot be snapshot or restored: .*canSerializeFMUstate"):
        sim.snapshot()


def test_resets_free_the_previous_instances(msd_fmu):
    def unpacked() -> set[str]:
        return {p.name for p in Path(tempfile.gettempdir()).glob("twingraph-fmu-*")}

    before = unpacked()
    sim = tg.Simulator(msd_graph(str(msd_fmu), {}), batch=3)
    for _ in range(4):
        sim.run({"F": forces(3)[:5]})
        sim.reset()
    assert len(unpacked() - before) == 1  # only the live instances' folder
    sim.blocks["plant"].close()
    assert unpacked() <= before


def test_a_loaded_path_must_stay_in_the_graph_folder(msd_fmu, tmp_path):
    for path in (str(msd_fmu), "../MassSpringDamper.fmu"):
        tg.Graph.save(msd_graph(str(msd_fmu), {}), tmp_path / "g.json")
        text = (tmp_path / "g.json").read_text().replace(str(msd_fmu), path)
        (tmp_path / "g.json").write_text(text)
        with pytest.raises(tg.LoadError, match=r"The 'path' parameter of FMU 'plant' must be a path inside"):
            tg.load(tmp_path / "g.json")


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"path": "missing.fmu"}, "path"),
        ({"path": 3}, "path"),
        ({"start": {"nope": 1.0}}, "start"),
        ({"start": {"k": "stiff"}}, "start"),
        ({"start": {"body.s": 1.0}}, "start"),  # an output without a start value
        ({"input_names": ("body.s",)}, "input_names"),
        ({"output_names": "body.s"}, "output_names"),
    ],
)
def test_bad_params_are_refused_at_validate(tmp_path, params, param):
    graph = tg.Graph("g", dt=0.1)
    graph.add(fmi.FMU(**{"path": write_fmu(tmp_path, description(UNITS)), **params}, name="plant"))
    with pytest.raises(tg.ParamError, match=rf"The '{param}' parameter of FMU 'plant' must be"):
        graph.validate()


@pytest.mark.parametrize(
    ("xml", "reason"),
    [
        (description(UNITS, version="3.0"), "FMI 3.0"),  # FMI 2.0 markup under a 3.0 header
        (description(UNITS, interface='<ModelExchange modelIdentifier="m"/>'), "model exchange only"),
        ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><fmiModelDescription/>', "document type"),
        ("not xml", "not valid XML"),
    ],
)
def test_fmus_it_cannot_run_are_refused_naming_why(tmp_path, xml, reason):
    block = fmi.FMU(path=write_fmu(tmp_path, xml), name="plant")
    with pytest.raises(tg.ParamError, match=rf"The 'path' parameter of FMU 'plant' must be .*{reason}"):
        block.check_params()


def test_a_file_that_is_not_a_zip_is_refused(tmp_path):
    (tmp_path / "x.fmu").write_bytes(b"MZ not a zip")
    with pytest.raises(fmi.DescriptionError, match="cannot be read as an FMU archive"):
        fmi.read_description(tmp_path / "x.fmu")
    with pytest.raises(fmi.DescriptionError, match="no modelDescription.xml"):
        fmi.read_description(io.BytesIO(zipfile_with({"other.txt": "x"})))


def zipfile_with(members: dict[str, str]) -> bytes:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return data.getvalue()


def test_without_fmpy_running_names_the_extra(msd_fmu, monkeypatch):
    monkeypatch.setitem(sys.modules, "fmpy.fmi2", None)  # import fails
    with pytest.raises(ImportError, match=r"twingraph\[fmi\]"):
        tg.Simulator(msd_graph(str(msd_fmu), {}), batch=1)
