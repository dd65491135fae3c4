"""FMUs made at test time with pythonfmu: the mass-spring-damper of the library and a marker-writing one."""

import textwrap

import pytest

from blocks import fmi

NEEDS = "building and running FMUs needs pythonfmu and fmpy: pip install 'twingraph[fmi]'"


def _require_fmi() -> None:
    pytest.importorskip("pythonfmu", reason=NEEDS)
    pytest.importorskip("fmpy", reason=NEEDS)


@pytest.fixture(scope="session")
def msd_fmu(tmp_path_factory):
    """``MassSpringDamper.fmu`` (state serialisation on), trusted."""
    _require_fmi()
    path = fmi.examples.mass_spring_damper(tmp_path_factory.mktemp("msd"))
    fmi.trust(str(path))
    return path


@pytest.fixture(scope="session")
def stateless_fmu(tmp_path_factory):
    """The mass-spring-damper built without state serialisation, trusted."""
    _require_fmi()
    from pythonfmu.builder import FmuBuilder

    folder = tmp_path_factory.mktemp("stateless")
    path = FmuBuilder.build_FMU(fmi.examples.SLAVES / "mass_spring_damper.py", dest=folder / "Stateless.fmu")
    fmi.trust(str(path))
    return path


@pytest.fixture(scope="session")
def marker_fmu(tmp_path_factory):
    """An FMU (not trusted) whose instantiation writes the file ``marker``; returns ``(fmu, marker)``."""
    _require_fmi()
    folder = tmp_path_factory.mktemp("marker")
    marker = folder / "marker"
    script = folder / "marker_slave.py"
    script.write_text(textwrap.dedent(f'''
        from pathlib import Path
        from pythonfmu import Fmi2Causality, Fmi2Slave, Real

        class MarkerSlave(Fmi2Slave):
            def __init__(self, **kwargs):
                super().__init__(**kwargs)
                Path({str(marker)!r}).write_text("instantiated")
                self.u, self.y = 0.0, 0.0
                self.register_variable(Real("u", causality=Fmi2Causality.input))
                self.register_variable(Real("y", causality=Fmi2Causality.output))

            def do_step(self, current_time, step_size):
                self.y = self.u
                return True
    '''))
    path = fmi.examples.build_fmu(script, folder / "fmu")
    marker.unlink()  # building instantiates the class once, to write the description
    return path, marker
