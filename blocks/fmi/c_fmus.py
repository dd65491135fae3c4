"""Model-exchange FMUs compiled from C at run time, with the FMI 2.0 headers that fmpy ships (needs a C compiler).

pythonfmu builds co-simulation FMUs only; a model-exchange FMU is native code
that computes derivatives. :func:`pump` compiles one of
:class:`~blocks.physics.PumpLike`, for the examples, docs, tests and
benchmarks of :class:`~blocks.fmi.FMUModel`. Its C code computes::

    i = (V - K ω) / R
    J ω̇ = K i - b ω - c_T ω |ω|
    τ_q q̇ = η c_Q ω - q

with states ``omega``, ``q``, input ``voltage``, output ``flow = q``, the
efficiency η a tunable parameter and the other constants fixed parameters.
It keeps the FMI 2.0 state machine as strictly as a real FMU: a fixed
parameter can be set only before initialisation, a tunable one not in
Continuous-Time Mode, the derivatives never.
"""

import shutil
import subprocess
import zipfile
from pathlib import Path

from twingraph._optional import require

GUID = "{6b0c1f7e-3f0e-4d8e-9b51-2f0a7c3e9d41}"
MODEL_IDENTIFIER = "pump_me"

# name, causality, variability, initial, unit, start; the value references are the positions
VARIABLES = (
    ("omega", "local", "continuous", "exact", "rad/s", 0.0),
    ("q", "local", "continuous", "exact", "m3/s", 0.0),
    ("der(omega)", "local", "continuous", "calculated", "rad/s2", None),
    ("der(q)", "local", "continuous", "calculated", "m3/s2", None),
    ("voltage", "input", "continuous", None, "V", 0.0),
    ("flow", "output", "continuous", "calculated", "m3/s", None),
    ("efficiency", "parameter", "tunable", "exact", None, 1.0),
    ("friction", "parameter", "fixed", "exact", "N.m.s/rad", 1e-4),
    ("inertia", "parameter", "fixed", "exact", "kg.m2", 1e-3),
    ("motor_constant", "parameter", "fixed", "exact", "N.m/A", 0.05),
    ("resistance", "parameter", "fixed", "exact", "Ohm", 1.0),
    ("load_coefficient", "parameter", "fixed", "exact", "N.m.s2/rad2", 2.5e-6),
    ("flow_coefficient", "parameter", "fixed", "exact", "m3/rad", 5e-6),
    ("flow_time_constant", "parameter", "fixed", "exact", "s", 0.5),
)

PUMP_C = r"""
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fmi2Functions.h"

#define GUID "@GUID@"
enum { OMEGA, Q, DER_OMEGA, DER_Q, VOLTAGE, FLOW, EFFICIENCY, FRICTION, INERTIA, MOTOR_CONSTANT, RESISTANCE,
       LOAD_COEFFICIENT, FLOW_COEFFICIENT, FLOW_TIME_CONSTANT, N_REALS };
static const fmi2Real START[N_REALS] = {@START@};
typedef enum { INSTANTIATED, INITIALIZATION, EVENT, CONTINUOUS, TERMINATED } Mode;
typedef struct {
    fmi2Real r[N_REALS];
    fmi2Real time;
    Mode mode;
    fmi2CallbackFunctions cb;
    char name[256];
} Pump;

static fmi2Status fail(Pump *p, const char *what) {
    if (p->cb.logger) p->cb.logger(p->cb.componentEnvironment, p->name, fmi2Error, "logStatusError", "%s", what);
    return fmi2Error;
}

static void compute(Pump *p) {
    fmi2Real *r = p->r;
    fmi2Real omega = r[OMEGA];
    fmi2Real i = (r[VOLTAGE] - r[MOTOR_CONSTANT] * omega) / r[RESISTANCE];
    r[DER_OMEGA] = (r[MOTOR_CONSTANT] * i - r[FRICTION] * omega - r[LOAD_COEFFICIENT] * omega * fabs(omega))
                   / r[INERTIA];
    r[DER_Q] = (r[EFFICIENCY] * r[FLOW_COEFFICIENT] * omega - r[Q]) / r[FLOW_TIME_CONSTANT];
    r[FLOW] = r[Q];
}

const char *fmi2GetTypesPlatform(void) { return fmi2TypesPlatform; }
const char *fmi2GetVersion(void) { return fmi2Version; }
fmi2Status fmi2SetDebugLogging(fmi2Component c, fmi2Boolean on, size_t n, const fmi2String categories[]) {
    return fmi2OK;
}

fmi2Component fmi2Instantiate(fmi2String name, fmi2Type type, fmi2String guid, fmi2String resources,
                              const fmi2CallbackFunctions *cb, fmi2Boolean visible, fmi2Boolean logging) {
    if (type != fmi2ModelExchange || strcmp(guid, GUID) != 0) return NULL;
    Pump *p = calloc(1, sizeof(Pump));
    if (!p) return NULL;
    memcpy(p->r, START, sizeof(START));
    p->cb = *cb;
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->mode = INSTANTIATED;
    return p;
}

void fmi2FreeInstance(fmi2Component c) { free(c); }

fmi2Status fmi2SetupExperiment(fmi2Component c, fmi2Boolean tolDefined, fmi2Real tol, fmi2Real start,
                               fmi2Boolean stopDefined, fmi2Real stop) {
    Pump *p = c;
    if (p->mode != INSTANTIATED) return fail(p, "fmi2SetupExperiment: not in Instantiated state");
    p->time = start;
    return fmi2OK;
}

fmi2Status fmi2EnterInitializationMode(fmi2Component c) {
    Pump *p = c;
    if (p->mode != INSTANTIATED) return fail(p, "fmi2EnterInitializationMode: not in Instantiated state");
    p->mode = INITIALIZATION;
    return fmi2OK;
}

fmi2Status fmi2ExitInitializationMode(fmi2Component c) {
    Pump *p = c;
    if (p->mode != INITIALIZATION) return fail(p, "fmi2ExitInitializationMode: not in Initialization Mode");
    p->mode = EVENT;
    return fmi2OK;
}

fmi2Status fmi2Terminate(fmi2Component c) { ((Pump *)c)->mode = TERMINATED; return fmi2OK; }

fmi2Status fmi2Reset(fmi2Component c) {
    Pump *p = c;
    memcpy(p->r, START, sizeof(START));
    p->time = 0.0;
    p->mode = INSTANTIATED;
    return fmi2OK;
}

fmi2Status fmi2GetReal(fmi2Component c, const fmi2ValueReference vr[], size_t n, fmi2Real value[]) {
    Pump *p = c;
    compute(p);
    for (size_t k = 0; k < n; k++) {
        if (vr[k] >= N_REALS) return fail(p, "fmi2GetReal: unknown value reference");
        value[k] = p->r[vr[k]];
    }
    return fmi2OK;
}

fmi2Status fmi2SetReal(fmi2Component c, const fmi2ValueReference vr[], size_t n, const fmi2Real value[]) {
    Pump *p = c;
    int before_init = p->mode == INSTANTIATED || p->mode == INITIALIZATION;
    for (size_t k = 0; k < n; k++) {
        fmi2ValueReference v = vr[k];
        if (v >= N_REALS || v == DER_OMEGA || v == DER_Q || v == FLOW)
            return fail(p, "fmi2SetReal: not a settable variable");
        if ((v == OMEGA || v == Q || v > EFFICIENCY) && !before_init)
            return fail(p, "fmi2SetReal: a state start value or fixed parameter after initialization");
        if (v == EFFICIENCY && p->mode == CONTINUOUS)
            return fail(p, "fmi2SetReal: a tunable parameter in Continuous-Time Mode");
        if (p->mode == TERMINATED) return fail(p, "fmi2SetReal: terminated");
        p->r[v] = value[k];
    }
    return fmi2OK;
}

fmi2Status fmi2GetInteger(fmi2Component c, const fmi2ValueReference vr[], size_t n, fmi2Integer v[]) {
    return n ? fail(c, "no Integer variables") : fmi2OK;
}
fmi2Status fmi2GetBoolean(fmi2Component c, const fmi2ValueReference vr[], size_t n, fmi2Boolean v[]) {
    return n ? fail(c, "no Boolean variables") : fmi2OK;
}
fmi2Status fmi2GetString(fmi2Component c, const fmi2ValueReference vr[], size_t n, fmi2String v[]) {
    return n ? fail(c, "no String variables") : fmi2OK;
}
fmi2Status fmi2SetInteger(fmi2Component c, const fmi2ValueReference vr[], size_t n, const fmi2Integer v[]) {
    return n ? fail(c, "no Integer variables") : fmi2OK;
}
fmi2Status fmi2SetBoolean(fmi2Component c, const fmi2ValueReference vr[], size_t n, const fmi2Boolean v[]) {
    return n ? fail(c, "no Boolean variables") : fmi2OK;
}
fmi2Status fmi2SetString(fmi2Component c, const fmi2ValueReference vr[], size_t n, const fmi2String v[]) {
    return n ? fail(c, "no String variables") : fmi2OK;
}

fmi2Status fmi2GetFMUstate(fmi2Component c, fmi2FMUstate *s) { return fail(c, "no FMU state"); }
fmi2Status fmi2SetFMUstate(fmi2Component c, fmi2FMUstate s) { return fail(c, "no FMU state"); }
fmi2Status fmi2FreeFMUstate(fmi2Component c, fmi2FMUstate *s) { return fail(c, "no FMU state"); }
fmi2Status fmi2SerializedFMUstateSize(fmi2Component c, fmi2FMUstate s, size_t *n) { return fail(c, "no FMU state"); }
fmi2Status fmi2SerializeFMUstate(fmi2Component c, fmi2FMUstate s, fmi2Byte b[], size_t n) {
    return fail(c, "no FMU state");
}
fmi2Status fmi2DeSerializeFMUstate(fmi2Component c, const fmi2Byte b[], size_t n, fmi2FMUstate *s) {
    return fail(c, "no FMU state");
}
fmi2Status fmi2GetDirectionalDerivative(fmi2Component c, const fmi2ValueReference u[], size_t nu,
                                        const fmi2ValueReference z[], size_t nz, const fmi2Real dz[],
                                        fmi2Real du[]) {
    return fail(c, "no directional derivatives");
}

fmi2Status fmi2EnterEventMode(fmi2Component c) {
    Pump *p = c;
    if (p->mode != CONTINUOUS && p->mode != EVENT) return fail(p, "fmi2EnterEventMode: wrong state");
    p->mode = EVENT;
    return fmi2OK;
}

fmi2Status fmi2NewDiscreteStates(fmi2Component c, fmi2EventInfo *info) {
    Pump *p = c;
    if (p->mode != EVENT) return fail(p, "fmi2NewDiscreteStates: not in Event Mode");
    memset(info, 0, sizeof(*info));
    return fmi2OK;
}

fmi2Status fmi2EnterContinuousTimeMode(fmi2Component c) {
    Pump *p = c;
    if (p->mode != EVENT) return fail(p, "fmi2EnterContinuousTimeMode: not in Event Mode");
    p->mode = CONTINUOUS;
    return fmi2OK;
}

fmi2Status fmi2CompletedIntegratorStep(fmi2Component c, fmi2Boolean noSetPrior, fmi2Boolean *enterEventMode,
                                       fmi2Boolean *terminate) {
    *enterEventMode = fmi2False;
    *terminate = fmi2False;
    return fmi2OK;
}

fmi2Status fmi2SetTime(fmi2Component c, fmi2Real time) { ((Pump *)c)->time = time; return fmi2OK; }

fmi2Status fmi2SetContinuousStates(fmi2Component c, const fmi2Real x[], size_t nx) {
    Pump *p = c;
    if (nx != 2) return fail(p, "fmi2SetContinuousStates: nx must be 2");
    if (p->mode != CONTINUOUS && p->mode != EVENT) return fail(p, "fmi2SetContinuousStates: wrong state");
    p->r[OMEGA] = x[0];
    p->r[Q] = x[1];
    return fmi2OK;
}

fmi2Status fmi2GetDerivatives(fmi2Component c, fmi2Real dx[], size_t nx) {
    Pump *p = c;
    if (nx != 2) return fail(p, "fmi2GetDerivatives: nx must be 2");
    compute(p);
    dx[0] = p->r[DER_OMEGA];
    dx[1] = p->r[DER_Q];
    return fmi2OK;
}

fmi2Status fmi2GetEventIndicators(fmi2Component c, fmi2Real z[], size_t nz) {
    return nz ? fail(c, "no event indicators") : fmi2OK;
}

fmi2Status fmi2GetContinuousStates(fmi2Component c, fmi2Real x[], size_t nx) {
    Pump *p = c;
    if (nx != 2) return fail(p, "fmi2GetContinuousStates: nx must be 2");
    x[0] = p->r[OMEGA];
    x[1] = p->r[Q];
    return fmi2OK;
}

fmi2Status fmi2GetNominalsOfContinuousStates(fmi2Component c, fmi2Real x[], size_t nx) {
    for (size_t k = 0; k < nx; k++) x[k] = 1.0;
    return fmi2OK;
}
"""


def model_description() -> str:
    """The ``modelDescription.xml`` of the pump FMU."""
    index = {v[0]: i + 1 for i, v in enumerate(VARIABLES)}  # 1-based, as ModelStructure counts
    units = sorted({unit for *_, unit, _ in VARIABLES if unit})
    rows = []
    for vr, (name, causality, variability, initial, unit, start) in enumerate(VARIABLES):
        attributes = f'name="{name}" valueReference="{vr}" causality="{causality}" variability="{variability}"'
        if initial is not None:
            attributes += f' initial="{initial}"'
        real = "" if unit is None else f' unit="{unit}"'
        if name.startswith("der("):
            real += f' derivative="{index[name[4:-1]]}"'
        if start is not None:
            real += f' start="{start!r}"'
        rows.append(f"    <ScalarVariable {attributes}><Real{real}/></ScalarVariable>")
    return "\n".join([
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<fmiModelDescription fmiVersion="2.0" modelName="Pump" guid="{GUID}" numberOfEventIndicators="0" '
        'variableNamingConvention="structured">',
        f'  <ModelExchange modelIdentifier="{MODEL_IDENTIFIER}"/>',
        "  <UnitDefinitions>",
        *(f'    <Unit name="{unit}"/>' for unit in units),
        "  </UnitDefinitions>",
        "  <ModelVariables>",
        *rows,
        "  </ModelVariables>",
        "  <ModelStructure>",
        f'    <Outputs><Unknown index="{index["flow"]}" dependencies="{index["q"]}"/></Outputs>',
        "    <Derivatives>",
        f'      <Unknown index="{index["der(omega)"]}" dependencies="{index["omega"]} {index["voltage"]}"/>',
        f'      <Unknown index="{index["der(q)"]}" dependencies="{index["omega"]} {index["q"]}"/>',
        "    </Derivatives>",
        "    <InitialUnknowns>",
        *(f'      <Unknown index="{index[n]}"/>' for n in ("der(omega)", "der(q)", "flow")),
        "    </InitialUnknowns>",
        "  </ModelStructure>",
        "</fmiModelDescription>",
        "",
    ])


def c_compiler() -> str | None:
    """The C compiler on PATH (``cc`` or ``gcc``), or None."""
    return shutil.which("cc") or shutil.which("gcc")


def pump(folder: str | Path) -> Path:
    """Compile the pump into ``folder/pump_me.fmu``; return its path.

    Raises
    ------
    OSError
        When there is no C compiler on PATH.
    """
    fmpy = require("fmpy", "fmi", "building FMUs")
    compiler = c_compiler()
    if compiler is None:
        raise OSError("Building a model-exchange FMU compiles C: no C compiler (cc or gcc) is on PATH.")
    folder = Path(folder)
    headers = Path(fmpy.__file__).parent / "c-code"
    starts = ", ".join("0.0" if start is None else repr(start) for *_, start in VARIABLES)
    source = folder / "pump_me.c"
    source.write_text(PUMP_C.replace("@GUID@", GUID).replace("@START@", starts))
    library = folder / f"{MODEL_IDENTIFIER}{fmpy.sharedLibraryExtension}"
    compiled = subprocess.run(
        [compiler, "-shared", "-fPIC", "-O2", "-ffp-contract=off", f"-I{headers}", str(source), "-o", str(library),
         "-lm"],
        capture_output=True, text=True,
    )
    if compiled.returncode:
        raise OSError(f"{compiler} could not compile {source}: {compiled.stderr.strip()[-2000:]}")
    fmu = folder / "pump_me.fmu"
    with zipfile.ZipFile(fmu, "w") as archive:
        archive.writestr("modelDescription.xml", model_description())
        archive.write(library, f"binaries/{fmpy.platform}/{library.name}")
    return fmu
