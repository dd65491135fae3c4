"""A twin exported as a co-simulation FMU (pythonfmu) and run through fmpy gives the Simulator's outputs."""

import importlib.metadata

import numpy as np
import pytest

import twingraph as tg
from blocks.anomaly import Threshold
from blocks.discrete import Integrator
from blocks.estimation import EKF
from blocks.fmi.export import export_fmu
from blocks.math import Gain
from blocks.physics import PumpLike
from blocks.sources import Input
from twingraph import cli

fmpy = pytest.importorskip("fmpy")
pytest.importorskip("pythonfmu")


def gain_integrator() -> tg.Graph:
    """``y = 2 u``, ``z = ∫ y``: a vector input with a unit, two vector outputs."""
    g = tg.Graph("gain_integrator", dt=0.1)
    g.add(Input("u", shape=(2,), unit="V"))
    g.add(Gain(k=2.0, name="k"))
    g.add(Integrator(k=0.5, name="i"))
    g.add(tg.Output("y"))
    g.add(tg.Output("z"))
    for src, dst in [("u.value", "k.u"), ("k.y", "i.u"), ("k.y", "y.u"), ("i.y", "z.u")]:
        g.connect(src, dst)
    return g


def pump_twin() -> tg.Graph:
    """An EKF estimating a pump's efficiency, and an alarm on its NIS: Real and Boolean outputs."""
    g = tg.Graph("pump_twin", dt=0.05)
    g.add(Input("u", shape=(1,), unit="V"))
    g.add(Input("y", shape=(1,), unit="m3/s"))
    g.add(EKF(model=PumpLike(), estimate=("efficiency",), q=1e-8, q_params=1e-6, r=1e-10, p0=1e-6, p0_params=0.1,
              name="ekf"))
    g.add(Threshold(upper=0.02, name="alarm"))
    g.add(tg.Output("efficiency"))
    g.add(tg.Output("x_hat"))
    g.add(tg.Output("nis"))
    g.add(tg.Output("alarm_on"))
    for src, dst in [("u.value", "ekf.u"), ("y.value", "ekf.y"), ("ekf.params", "efficiency.u"),
                     ("ekf.x_hat", "x_hat.u"), ("ekf.nis", "nis.u"), ("ekf.nis", "alarm.u"),
                     ("alarm.alarm", "alarm_on.u")]:
        g.connect(src, dst)
    return g


def pump_data(ticks: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Voltages and noisy flows of a pump of efficiency 0.8, ``(ticks, 1)`` each."""
    truth = PumpLike(efficiency=0.8)
    rng = np.random.default_rng(seed)
    x, p = truth.initial_state(1), truth.batch_params(1)
    u = 12.0 + 2.0 * np.sin(0.2 * np.arange(ticks))[:, None]
    y = np.empty_like(u)
    for k in range(ticks):
        y[k] = truth.observe(x, u[k : k + 1], p)[0] + 1e-5 * rng.normal()
        x = truth.advance(x, u[k : k + 1], k * 0.05, 0.05, p)
    return {"u": u, "y": y}


class Slave:
    """The exported FMU driven by hand through fmpy, as an FMI master does: set inputs, doStep, get outputs."""

    def __init__(self, path):
        self.md = fmpy.read_model_description(str(path))
        self.refs = {v.name: v.valueReference for v in self.md.modelVariables}
        self.kinds = {v.name: v.type for v in self.md.modelVariables}
        self.fmu = fmpy.fmi2.FMU2Slave(guid=self.md.guid, unzipDirectory=fmpy.extract(str(path)),
                                       modelIdentifier=self.md.coSimulation.modelIdentifier, instanceName="twin")
        self.fmu.instantiate()
        self.fmu.setupExperiment(startTime=0.0)
        self.fmu.enterInitializationMode()
        self.fmu.exitInitializationMode()
        self.time = 0.0

    def step(self, h: float, **inputs) -> dict[str, np.ndarray]:
        for name, value in inputs.items():
            columns = tg.history.element_columns(name, np.shape(value))
            self.fmu.setReal([self.refs[c] for c in columns], list(np.ravel(value)))
        self.fmu.doStep(self.time, h)
        self.time += h
        outputs = {}
        for v in self.md.modelVariables:
            if v.causality == "output":
                read = self.fmu.getBoolean if v.type == "Boolean" else self.fmu.getReal
                outputs[v.name] = read([v.valueReference])[0]
        return outputs

    def close(self):
        self.fmu.terminate()
        self.fmu.freeInstance()


def expected(sim: tg.Simulator, graph: tg.Graph, **inputs) -> dict[str, float]:
    """The Simulator's outputs of one tick by FMU variable name (``Output`` block name and element)."""
    values = sim.step(**inputs)
    columns = {}
    for name, block in graph.blocks.items():
        if isinstance(block, tg.Output):
            src, port = sim.plan.sources[(name, "u")]
            value = np.asarray(values[f"{src}.{port}"])
            columns.update(zip(tg.history.element_columns(name, value.shape), value.ravel().tolist()))
    return columns


def test_the_model_description_lists_inputs_and_outputs_with_units(tmp_path):
    gain_integrator().save(tmp_path / "g.json")
    md = fmpy.read_model_description(str(export_fmu(tmp_path / "g.json", tmp_path / "g.fmu")))
    variables = {v.name: (v.causality, v.type, v.unit) for v in md.modelVariables}
    assert variables == {"u[0]": ("input", "Real", "V"), "u[1]": ("input", "Real", "V"),
                         "y[0]": ("output", "Real", "V"), "y[1]": ("output", "Real", "V"),
                         "z[0]": ("output", "Real", "s*V"), "z[1]": ("output", "Real", "s*V")}
    assert md.defaultExperiment.stepSize == "0.1"
    assert md.coSimulation is not None and md.modelExchange is None


@pytest.mark.parametrize(("build", "ticks"), [(gain_integrator, 30), (pump_twin, 120)])
def test_the_exported_fmu_gives_the_simulators_outputs(tmp_path, build, ticks):
    """Acceptance: run through fmpy, the FMU's outputs equal the Simulator's to 1e-12."""
    graph = build()
    graph.save(tmp_path / "twin.json")
    slave = Slave(export_fmu(tmp_path / "twin.json", tmp_path / "twin.fmu"))
    sim = tg.Simulator(tg.load(tmp_path / "twin.json"))
    data = pump_data(ticks) if build is pump_twin else {"u": np.random.default_rng(1).normal(size=(ticks, 2))}
    worst, alarms = 0.0, 0
    for k in range(ticks):
        inputs = {name: values[k] for name, values in data.items()}
        want = expected(sim, graph, **inputs)
        got = slave.step(graph.dt, **inputs)
        assert got.keys() == want.keys()
        worst = max(worst, max(abs(got[c] - want[c]) for c in want))
        alarms += bool(want.get("alarm_on", False))
    slave.close()
    assert worst <= 1e-12
    if build is pump_twin:  # the twin did its work, and the Boolean output took both values
        assert abs(want["efficiency[0]"] - 0.8) < 0.05
        assert 0 < alarms < ticks


def test_fmpy_simulate_fmu_runs_the_twin(tmp_path):
    """Any FMI master: fmpy's own simulation loop; its outputs at t_k + dt are the Simulator's at tick k."""
    graph = gain_integrator()
    graph.save(tmp_path / "g.json")
    u = np.random.default_rng(2).normal(size=(20, 2))
    table = np.zeros(21, dtype=[("time", float), ("u[0]", float), ("u[1]", float)])
    table["time"] = 0.1 * np.arange(21)
    table["u[0]"][:20], table["u[1]"][:20] = u.T
    result = fmpy.simulate_fmu(str(export_fmu(tmp_path / "g.json", tmp_path / "g.fmu")), stop_time=2.0,
                               input=table, output=["y[0]", "z[1]"])
    history = tg.Simulator(graph).run(inputs={"u": u})
    np.testing.assert_allclose(result["y[0]"][1:], history["k.y"][:, 0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(result["z[1]"][1:], history["i.y"][:, 1], rtol=0, atol=1e-12)


def test_a_saved_state_is_where_the_fmu_starts(tmp_path):
    graph = gain_integrator()
    sim = tg.Simulator(graph)
    sim.run(inputs={"u": np.ones((5, 2))})
    graph.save(tmp_path / "g.json", state=sim.snapshot())
    slave = Slave(export_fmu(tmp_path / "g.json", tmp_path / "g.fmu"))
    got = slave.step(0.1, u=np.array([1.0, -1.0]))
    slave.close()
    want = sim.step(u=np.array([1.0, -1.0]))["i.y"]
    assert (got["z[0]"], got["z[1]"]) == (want[0], want[1]) == (0.5, 0.5)  # ∫ 2 u dt / 2 over five ticks


def test_a_step_that_is_not_a_multiple_of_dt_fails(tmp_path):
    gain_integrator().save(tmp_path / "g.json")
    slave = Slave(export_fmu(tmp_path / "g.json", tmp_path / "g.fmu"))
    with pytest.raises(fmpy.fmi1.FMICallException):
        slave.step(0.15, u=np.zeros(2))
    assert slave.step(0.3, u=np.ones(2))["z[0]"] == 0.2  # three ticks: the outputs of the third, after two
    slave.close()


def test_a_state_of_several_assets_is_refused(tmp_path):
    graph = gain_integrator()
    graph.save(tmp_path / "g.json", state=tg.Simulator(graph, batch=2).snapshot())
    with pytest.raises(tg.TwinGraphError, match=r"its saved state is of 2 assets; an FMU is one asset"):
        export_fmu(tmp_path / "g.json", tmp_path / "g.fmu")


def test_a_graph_naming_other_files_is_refused(tmp_path, monkeypatch):
    from blocks.fmi import FMU, examples

    examples.mass_spring_damper(tmp_path)
    monkeypatch.chdir(tmp_path)
    g = tg.Graph("msd", dt=0.1)
    g.add(Input("force", shape=()))
    g.add(FMU("MassSpringDamper.fmu", name="plant"))
    g.add(tg.Output("s"))
    g.connect("force.value", "plant.force")
    g.connect("plant.s", "s.u")
    g.save(tmp_path / "msd.json")
    loaded = tg.load(tmp_path / "msd.json")  # the FMU beside the graph file is found
    assert isinstance(loaded.blocks["plant"], FMU)
    with pytest.raises(tg.TwinGraphError, match=r"the graph names files other than its .npz sidecar"):
        export_fmu(tmp_path / "msd.json", tmp_path / "twin.fmu")


def test_twingraph_export_fmu_runs_the_plugin_command(tmp_path, monkeypatch, capsys):
    """The CLI finds 'export-fmu' through the entry-point group 'twingraph.commands', as pyproject.toml declares."""
    entry = importlib.metadata.EntryPoint("export-fmu", "blocks.fmi.export:command", cli.COMMANDS)
    monkeypatch.setattr(cli, "entry_points", lambda group: [entry] if group == cli.COMMANDS else [])
    gain_integrator().save(tmp_path / "g.json")
    assert cli.main(["export-fmu", str(tmp_path / "g.json"), "-o", str(tmp_path / "g.fmu")]) == 0
    assert capsys.readouterr().out == f"wrote {tmp_path / 'g.fmu'}\n"
    assert fmpy.read_model_description(str(tmp_path / "g.fmu")).coSimulation is not None
    assert cli.main(["export-fmu", str(tmp_path / "missing.json"), "-o", str(tmp_path / "m.fmu")]) == 1
    assert "twingraph export-fmu: error: Cannot read graph file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "export-fmu" in capsys.readouterr().out
