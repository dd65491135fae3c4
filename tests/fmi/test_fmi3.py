"""The FMU block on an FMI 3.0 co-simulation FMU compiled from C at test time with the headers fmpy ships."""

import re
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

import twingraph as tg
from blocks import fmi
from blocks.fmi.c_fmus import c_compiler

from .test_block import DT, assert_matches_native_msd, forces

TOKEN = "{8c4e810f-3df3-4a00-8276-176fa3c9f000}"
IDENTIFIER = "msd3"

# m s'' + c s' + k s = F, one RK4 step per doStep, as blocks/fmi/slaves/mass_spring_damper.py
MSD3_C = r"""
#include <stdlib.h>
#include <string.h>
#include "fmi3Functions.h"

#define TOKEN "@TOKEN@"
enum { TIME, MASS, DAMPING, STIFFNESS, S0, V0, FORCE, S, V, N };
static const fmi3Float64 START[N] = {0.0, 1.0, 0.5, 4.0, 0.0, 0.0, 0.0, 0.0, 0.0};
typedef struct { fmi3Float64 r[N]; int initialized; } Msd;

const char *fmi3GetVersion(void) { return fmi3Version; }
fmi3Status fmi3SetDebugLogging(fmi3Instance c, fmi3Boolean on, size_t n, const fmi3String categories[]) {
    return fmi3OK;
}
fmi3Instance fmi3InstantiateCoSimulation(fmi3String name, fmi3String token, fmi3String resources,
                                         fmi3Boolean visible, fmi3Boolean logging, fmi3Boolean eventModeUsed,
                                         fmi3Boolean earlyReturnAllowed, const fmi3ValueReference required[],
                                         size_t nRequired, fmi3InstanceEnvironment env, fmi3LogMessageCallback log,
                                         fmi3IntermediateUpdateCallback update) {
    if (strcmp(token, TOKEN) != 0 || eventModeUsed) return NULL;
    Msd *m = calloc(1, sizeof(Msd));
    if (m) memcpy(m->r, START, sizeof(START));
    return m;
}
void fmi3FreeInstance(fmi3Instance c) { free(c); }
fmi3Status fmi3EnterInitializationMode(fmi3Instance c, fmi3Boolean tolDefined, fmi3Float64 tol, fmi3Float64 start,
                                       fmi3Boolean stopDefined, fmi3Float64 stop) {
    ((Msd *)c)->r[TIME] = start;
    return fmi3OK;
}
fmi3Status fmi3ExitInitializationMode(fmi3Instance c) {
    Msd *m = c;
    m->r[S] = m->r[S0];
    m->r[V] = m->r[V0];
    m->initialized = 1;
    return fmi3OK;
}
fmi3Status fmi3Terminate(fmi3Instance c) { return fmi3OK; }
fmi3Status fmi3GetFloat64(fmi3Instance c, const fmi3ValueReference vr[], size_t n, fmi3Float64 v[], size_t nv) {
    for (size_t k = 0; k < n; k++) {
        if (vr[k] >= N) return fmi3Error;
        v[k] = ((Msd *)c)->r[vr[k]];
    }
    return fmi3OK;
}
fmi3Status fmi3SetFloat64(fmi3Instance c, const fmi3ValueReference vr[], size_t n, const fmi3Float64 v[],
                          size_t nv) {
    Msd *m = c;
    for (size_t k = 0; k < n; k++) {
        if (vr[k] == TIME || vr[k] >= S || (vr[k] != FORCE && m->initialized)) return fmi3Error;
        m->r[vr[k]] = v[k];
    }
    return fmi3OK;
}

static void derivative(const Msd *m, fmi3Float64 s, fmi3Float64 v, fmi3Float64 d[2]) {
    const fmi3Float64 *r = m->r;
    d[0] = v;
    d[1] = (r[FORCE] - r[DAMPING] * v - r[STIFFNESS] * s) / r[MASS];
}

fmi3Status fmi3DoStep(fmi3Instance c, fmi3Float64 t, fmi3Float64 h, fmi3Boolean noSetPrior,
                      fmi3Boolean *eventNeeded, fmi3Boolean *terminate, fmi3Boolean *early, fmi3Float64 *last) {
    Msd *m = c;
    fmi3Float64 s = m->r[S], v = m->r[V], k1[2], k2[2], k3[2], k4[2];
    derivative(m, s, v, k1);
    derivative(m, s + h / 2 * k1[0], v + h / 2 * k1[1], k2);
    derivative(m, s + h / 2 * k2[0], v + h / 2 * k2[1], k3);
    derivative(m, s + h * k3[0], v + h * k3[1], k4);
    m->r[S] = s + h / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0]);
    m->r[V] = v + h / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1]);
    m->r[TIME] = t + h;
    *eventNeeded = *terminate = *early = fmi3False;
    *last = t + h;
    return fmi3OK;
}

fmi3Status fmi3GetFMUState(fmi3Instance c, fmi3FMUState *state) {
    Msd *copy = malloc(sizeof(Msd));
    if (!copy) return fmi3Error;
    memcpy(copy, c, sizeof(Msd));
    *state = copy;
    return fmi3OK;
}
fmi3Status fmi3SetFMUState(fmi3Instance c, fmi3FMUState state) {
    memcpy(c, state, sizeof(Msd));
    return fmi3OK;
}
fmi3Status fmi3FreeFMUState(fmi3Instance c, fmi3FMUState *state) {
    free(*state);
    *state = NULL;
    return fmi3OK;
}
fmi3Status fmi3SerializedFMUStateSize(fmi3Instance c, fmi3FMUState state, size_t *size) {
    *size = sizeof(Msd);
    return fmi3OK;
}
fmi3Status fmi3SerializeFMUState(fmi3Instance c, fmi3FMUState state, fmi3Byte bytes[], size_t size) {
    if (size != sizeof(Msd)) return fmi3Error;
    memcpy(bytes, state, size);
    return fmi3OK;
}
fmi3Status fmi3DeserializeFMUState(fmi3Instance c, const fmi3Byte bytes[], size_t size, fmi3FMUState *state) {
    if (size != sizeof(Msd)) return fmi3Error;
    Msd *copy = malloc(sizeof(Msd));
    if (!copy) return fmi3Error;
    memcpy(copy, bytes, size);
    *state = copy;
    return fmi3OK;
}
"""

MODEL_DESCRIPTION = f"""<?xml version="1.0" encoding="UTF-8"?>
<fmiModelDescription fmiVersion="3.0" modelName="MassSpringDamper3" instantiationToken="{TOKEN}">
  <CoSimulation modelIdentifier="{IDENTIFIER}" canGetAndSetFMUState="true" canSerializeFMUState="true"
                canHandleVariableCommunicationStepSize="true"/>
  <UnitDefinitions><Unit name="kg"/><Unit name="N"/><Unit name="m"/><Unit name="m/s"/></UnitDefinitions>
  <TypeDefinitions><Float64Type name="Force" unit="N"/></TypeDefinitions>
  <ModelVariables>
    <Float64 name="time" valueReference="0" causality="independent" variability="continuous"/>
    <Float64 name="mass" valueReference="1" causality="parameter" variability="fixed" unit="kg" start="1"/>
    <Float64 name="damping" valueReference="2" causality="parameter" variability="fixed" unit="N.s/m" start="0.5"/>
    <Float64 name="stiffness" valueReference="3" causality="parameter" variability="fixed" unit="N/m" start="4"/>
    <Float64 name="s0" valueReference="4" causality="parameter" variability="fixed" unit="m" start="0"/>
    <Float64 name="v0" valueReference="5" causality="parameter" variability="fixed" unit="m/s" start="0"/>
    <Float64 name="force" valueReference="6" causality="input" declaredType="Force" start="0"/>
    <Float64 name="s" valueReference="7" causality="output" unit="m"/>
    <Float64 name="v" valueReference="8" causality="output" unit="m/s"/>
  </ModelVariables>
  <ModelStructure><Output valueReference="7"/><Output valueReference="8"/></ModelStructure>
</fmiModelDescription>
"""


def build_msd3(folder: Path) -> Path:
    """Compile the FMI 3.0 mass-spring-damper into ``folder/msd3.fmu``.

    fmpy binds every FMI 3.0 function, so those the model does not define are stubs answering fmi3Error.
    """
    fmpy = pytest.importorskip("fmpy", reason="running FMUs needs fmpy: pip install 'twingraph[fmi]'")
    compiler = c_compiler()
    if compiler is None:
        pytest.skip("building an FMI 3.0 FMU compiles C: no C compiler (cc or gcc) is on PATH")
    headers = Path(fmpy.__file__).parent / "c-code"
    declared = re.findall(r"^FMI3_Export fmi3(\w+)TYPE", (headers / "fmi3Functions.h").read_text(), re.M)
    defined = set(re.findall(r"\bfmi3(\w+)\(", MSD3_C))
    (folder / "msd3.c").write_text(MSD3_C.replace("@TOKEN@", TOKEN))
    stubs = "".join(f"int fmi3{n}(void) {{ return 3; }}\n" for n in declared if n not in defined)
    (folder / "stubs.c").write_text(stubs)
    library = folder / f"{IDENTIFIER}{fmpy.sharedLibraryExtension}"
    compiled = subprocess.run(
        [compiler, "-shared", "-fPIC", "-O2", "-ffp-contract=off", f"-I{headers}", str(folder / "msd3.c"),
         str(folder / "stubs.c"), "-o", str(library)],
        capture_output=True, text=True,
    )
    assert compiled.returncode == 0, compiled.stderr
    path = folder / "msd3.fmu"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("modelDescription.xml", MODEL_DESCRIPTION)
        archive.write(library, f"binaries/{fmpy.platform_tuple}/{library.name}")
    return path


@pytest.fixture(scope="module")
def msd3_fmu(tmp_path_factory):
    """The FMI 3.0 mass-spring-damper FMU, trusted."""
    path = build_msd3(tmp_path_factory.mktemp("msd3"))
    fmi.trust(str(path))
    return path


def msd3_graph(fmu_path: str, start: dict) -> tg.Graph:
    graph = tg.Graph("msd3", dt=DT)
    force = graph.add(tg.Input("F", shape=()))
    plant = graph.add(fmi.FMU(path=fmu_path, start=start, name="plant"))
    graph.connect(force.out.value, plant.inp.force)
    return graph


def test_the_description_is_read_with_units_and_declared_types(msd3_fmu):
    md = fmi.read_description(msd3_fmu)
    assert (md.fmi_version, md.guid, md.co_simulation.model_identifier) == ("3.0", TOKEN, IDENTIFIER)
    assert md.co_simulation.can_get_and_set_state and md.co_simulation.can_serialize_state
    assert (md.variables["force"].type, md.variables["force"].unit, md.variables["stiffness"].start) == (
        "Float64", "N", 4.0)
    block = fmi.FMU(path=str(msd3_fmu), name="plant")
    assert block.input_signals() == {"force": tg.Signal(shape=(), dtype="float64", unit="N")}
    assert block.output_signals({}) == {
        "s": tg.Signal(shape=(), dtype="float64", unit="m"),
        "v": tg.Signal(shape=(), dtype="float64", unit="m/s"),
    }


@pytest.mark.parametrize("batch", [1, 4])
def test_the_fmi3_fmu_matches_the_native_mass_spring_damper(msd3_fmu, batch):
    assert_matches_native_msd(lambda start: msd3_graph(str(msd3_fmu), start), batch)


def test_snapshot_restore_is_exact(msd3_fmu):
    sim = tg.Simulator(msd3_graph(str(msd3_fmu), {"stiffness": [4.0, 9.0]}), batch=2)
    sim.run({"F": forces(2)[:300]})
    snapshot = sim.snapshot()
    uninterrupted = np.array(sim.run({"F": forces(2)[300:600]})["plant.s"][-300:])
    resumed = tg.Simulator(msd3_graph(str(msd3_fmu), {"stiffness": [4.0, 9.0]}), batch=2)
    resumed.restore(snapshot)
    np.testing.assert_array_equal(np.array(resumed.run({"F": forces(2)[300:600]})["plant.s"]), uninterrupted)


def test_a_start_value_of_the_wrong_type_is_refused(msd3_fmu):
    with pytest.raises(tg.ParamError, match=r"The 'start' parameter of FMU 'plant' must be .*Float64"):
        msd3_graph(str(msd3_fmu), {"stiffness": True})  # connecting reads the ports, which checks the params


def test_fmu_model_refuses_an_fmi3_fmu(msd3_fmu):
    with pytest.raises(tg.ParamError, match=r"The 'path' parameter of FMUModel 'm' must be .*it is an FMI 3.0 FMU"):
        fmi.FMUModel(path=str(msd3_fmu), name="m").check_params()
