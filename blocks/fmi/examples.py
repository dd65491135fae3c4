"""Co-simulation FMUs made with pythonfmu at run time, for the examples, docs, tests and benchmarks.

pythonfmu packs a Python class and its prebuilt FMI binary into an ``.fmu``;
no compiler is needed. Building imports and instantiates the class once, to
write its model description.
"""

from pathlib import Path

from twingraph._optional import require

SLAVES = Path(__file__).parent / "slaves"  # the pythonfmu slave scripts shipped with the library


def build_fmu(script: str | Path, folder: str | Path) -> Path:
    """Build the co-simulation FMU of the pythonfmu slave class in ``script`` into ``folder``; return its path.

    The FMU declares ``canGetAndSetFMUstate`` and ``canSerializeFMUstate``
    (pythonfmu serialises every registered variable), so graphs running it
    can be snapshot. The file is named after the class (``MassSpringDamper.fmu``).
    """
    builder = require("pythonfmu.builder", "fmi", "building FMUs").FmuBuilder
    return Path(builder.build_FMU(script, dest=folder, canGetAndSetFMUstate=True, canSerializeFMUstate=True))


def mass_spring_damper(folder: str | Path) -> Path:
    """Build ``MassSpringDamper.fmu`` into ``folder`` (``slaves/mass_spring_damper.py``); return its path.

    Input ``force``, outputs ``s`` and ``v``, parameters ``mass``, ``damping``,
    ``stiffness``, ``s0``, ``v0``: the model of :class:`blocks.physics.MassSpringDamper`,
    one RK4 step per ``doStep``.
    """
    return build_fmu(SLAVES / "mass_spring_damper.py", folder)


def pump(folder: str | Path) -> Path:
    """Build ``Pump.fmu`` into ``folder`` (``slaves/pump.py``); return its path.

    Input ``voltage``, states ``omega`` and ``q`` (settable before
    initialisation), output ``flow``, the parameters of
    :class:`blocks.physics.PumpLike`: that model, one RK4 step per ``doStep``,
    for :class:`blocks.fmi.CoSimModel`.
    """
    return build_fmu(SLAVES / "pump.py", folder)
