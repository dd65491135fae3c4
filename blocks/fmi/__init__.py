"""FMI: Functional Mock-up Units as blocks.

:class:`FMU` runs a co-simulation FMU (FMI 2.0 or 3.0) with fmpy, one instance per
asset; :class:`FMUModel` makes a model-exchange FMU an ODE model that the
estimators run on (:mod:`blocks.fmi.c_fmus` compiles one from C), and
:class:`CoSimModel` a co-simulation FMU, stepped from states set on a
restored FMU state; :mod:`blocks.fmi.export`
exports a twin as a co-simulation FMU
(``twingraph export-fmu``). Loading or validating a graph reads only the FMU's
``modelDescription.xml`` (:mod:`blocks.fmi.description`); running it needs
the file trusted with :func:`trust`. fmpy and pythonfmu come with
``pip install 'twingraph[fmi]'``; this package imports without them.
"""

from twingraph.trust import register_trust

from . import c_fmus, examples
from .block import FMU, UntrustedFMUError, port_name, trust
from .cosim_model import CoSimModel
from .description import Description, DescriptionError, Variable, read_description
from .model import FMUModel

__all__ = ["FMU", "CoSimModel", "Description", "DescriptionError", "FMUModel", "UntrustedFMUError", "Variable",
           "c_fmus", "examples", "port_name", "read_description", "trust"]

register_trust(".fmu", trust)  # twingraph run --trust FILE.fmu
