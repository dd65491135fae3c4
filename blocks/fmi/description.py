"""What an FMU declares, read from its ``modelDescription.xml`` without running anything.

An FMU (Functional Mock-up Unit) is a zip archive holding ``modelDescription.xml``
and native binaries. :func:`read_description` opens the archive with
:mod:`zipfile`, reads that one member (at most :data:`MAX_BYTES`) and parses
it; no binary is loaded, no other member is extracted. The XML must be UTF-8
(as the FMI standard requires) and may not hold a document type declaration,
which is where entity definitions (and their expansion attacks) live.

FMI 2.0 and FMI 3.0 descriptions are read; an FMU of another FMI version is
refused with a :class:`DescriptionError` saying so. Each variable keeps the
type name of its version (FMI 2.0 ``Real``, FMI 3.0 ``Float64``, ...).

Examples
--------
>>> import io, zipfile
>>> xml = '''<fmiModelDescription fmiVersion="2.0" modelName="Lag" guid="{1}">
...   <CoSimulation modelIdentifier="Lag" canGetAndSetFMUstate="true" canSerializeFMUstate="true"/>
...   <UnitDefinitions><Unit name="s"/></UnitDefinitions>
...   <TypeDefinitions><SimpleType name="Time"><Real unit="s"/></SimpleType></TypeDefinitions>
...   <ModelVariables>
...     <ScalarVariable name="tau" valueReference="0" causality="parameter" variability="fixed">
...       <Real declaredType="Time" start="0.5"/></ScalarVariable>
...     <ScalarVariable name="u" valueReference="1" causality="input"><Real start="0"/></ScalarVariable>
...     <ScalarVariable name="y" valueReference="2" causality="output"><Real/></ScalarVariable>
...   </ModelVariables>
... </fmiModelDescription>'''
>>> archive = io.BytesIO()
>>> with zipfile.ZipFile(archive, "w") as fmu:
...     fmu.writestr("modelDescription.xml", xml)
>>> md = read_description(archive)
>>> md.fmi_version, md.co_simulation.model_identifier, md.co_simulation.can_serialize_state
('2.0', 'Lag', True)
>>> md.variables["tau"].unit, md.variables["tau"].start, [v.name for v in md.with_causality("input")]
('s', 0.5, ['u'])
"""

import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from os import PathLike
from typing import IO, Any

MEMBER = "modelDescription.xml"
MAX_BYTES = 256 * 2**20  # largest modelDescription.xml read [bytes]; large Modelica models reach tens of MB
TYPES = ("Real", "Integer", "Boolean", "String", "Enumeration")
TYPES3 = ("Float32", "Float64", "Int8", "UInt8", "Int16", "UInt16", "Int32", "UInt32", "Int64", "UInt64", "Boolean",
          "String", "Binary", "Enumeration", "Clock")  # the variable elements of an FMI 3.0 description


class DescriptionError(ValueError):
    """A file is not an FMU whose description this module reads; the message says why."""


@dataclass(frozen=True)
class Variable:
    """One variable of a description: an FMI 2.0 ``ScalarVariable`` or an FMI 3.0 ``Float64``, ``Int32``, ... element.

    Parameters
    ----------
    name : str
        Variable name (``"body.s"``, ``"der(x)"``).
    value_reference : int
        The handle used to get and set it.
    type : str
        Its FMI type: one of :data:`TYPES` (FMI 2.0) or :data:`TYPES3` (FMI 3.0).
    causality : str
        ``"parameter"``, ``"calculatedParameter"``, ``"input"``, ``"output"``,
        ``"local"``, ``"independent"`` or (FMI 3.0) ``"structuralParameter"``.
    variability : str
        ``"constant"``, ``"fixed"``, ``"tunable"``, ``"discrete"`` or ``"continuous"``.
    initial : str or None
        ``"exact"``, ``"approx"``, ``"calculated"`` or None (not given).
    start : float, int, bool, str, tuple or None
        Start value, converted to the variable's type (a tuple for an array).
    unit : str or None
        Its unit, from its own ``unit`` attribute or its declared type.
    derivative : str or None
        For the derivative of a continuous state, the name of that state.
    description : str
        Its description text.
    array : bool
        FMI 3.0: whether the variable is an array (it has ``Dimension`` elements).
    """

    name: str
    value_reference: int
    type: str
    causality: str = "local"
    variability: str = "continuous"
    initial: str | None = None
    start: Any = None
    unit: str | None = None
    derivative: str | None = None
    description: str = ""
    array: bool = False


@dataclass(frozen=True)
class Interface:
    """A ``CoSimulation`` or ``ModelExchange`` element: how the binary is named and what it can do."""

    model_identifier: str
    can_get_and_set_state: bool = False
    can_serialize_state: bool = False
    only_one_instance_per_process: bool = False
    variable_step_size: bool = False
    provides_directional_derivative: bool = False


@dataclass(frozen=True)
class Description:
    """An FMU's model description (FMI 2.0 or 3.0).

    Attributes
    ----------
    fmi_version : str
        ``"2.0"``, or the FMI 3.0 version the file names (``"3.0"``, ``"3.0.1"``, ...).
    model_name, guid : str
        The model's name and the GUID (FMI 3.0: instantiation token) the binary
        checks at instantiation.
    co_simulation, model_exchange : Interface or None
        The interfaces the FMU implements (None when absent).
    variables : dict of str to Variable
        Every scalar variable by name, in the file's order.
    number_of_event_indicators : int
        For model exchange.
    """

    fmi_version: str
    model_name: str
    guid: str
    co_simulation: Interface | None
    model_exchange: Interface | None
    variables: dict[str, Variable] = field(default_factory=dict)
    number_of_event_indicators: int = 0

    def with_causality(self, causality: str) -> list[Variable]:
        """The variables of ``causality`` (``"input"``, ``"output"``, ``"parameter"``, ...) in file order."""
        return [v for v in self.variables.values() if v.causality == causality]

    @property
    def states(self) -> list[str]:
        """Names of the continuous states (variables whose derivative the description lists), in order."""
        return [v.derivative for v in self.variables.values() if v.derivative is not None]


def _flag(element: ET.Element, name: str) -> bool:
    return element.get(name, "false") == "true"


def _interface(element: ET.Element | None, fmi3: bool) -> Interface | None:
    if element is None:
        return None
    state = "State" if fmi3 else "state"  # FMI 3.0 spells canGetAndSetFMUState, canSerializeFMUState
    return Interface(
        model_identifier=element.get("modelIdentifier", ""),
        can_get_and_set_state=_flag(element, f"canGetAndSetFMU{state}"),
        can_serialize_state=_flag(element, f"canSerializeFMU{state}"),
        only_one_instance_per_process=_flag(element, "canBeInstantiatedOnlyOncePerProcess"),
        variable_step_size=_flag(element, "canHandleVariableCommunicationStepSize"),
        provides_directional_derivative=_flag(
            element, "providesDirectionalDerivatives" if fmi3 else "providesDirectionalDerivative"
        ),
    )


def _typed(kind: str, text: str | None) -> Any:
    """The start value ``text`` of an FMI ``kind`` variable as a Python value."""
    if text is None or kind in ("String", "Binary", "Clock"):
        return text
    if kind in ("Real", "Float32", "Float64"):
        return float(text)
    if kind == "Boolean":
        if text not in ("true", "false", "1", "0"):
            raise ValueError(f"{text!r} is not a Boolean")
        return text in ("true", "1")
    return int(text)


def _declared_units(root: ET.Element) -> dict[str, str]:
    """Unit of each type definition that declares one (FMI 2.0 ``SimpleType``, FMI 3.0 ``Float64Type``), by name."""
    units = {}
    for simple in root.iterfind("TypeDefinitions/SimpleType"):
        real = simple.find("Real")
        if real is not None and real.get("unit"):
            units[simple.get("name", "")] = real.get("unit")
    for typedef in root.iterfind("TypeDefinitions/*"):
        if typedef.tag in ("Float32Type", "Float64Type") and typedef.get("unit"):
            units[typedef.get("name", "")] = typedef.get("unit")
    return units


def _variables(root: ET.Element) -> Iterator[Variable]:
    declared = _declared_units(root)
    scalars = root.findall("ModelVariables/ScalarVariable")
    for scalar in scalars:
        typed = next((child for child in scalar if child.tag in TYPES), None)
        name = scalar.get("name")
        if typed is None or name is None:
            raise DescriptionError(f"the variable {name!r} has no name or no type ({'/'.join(TYPES)})")
        try:
            value_reference = int(scalar.get("valueReference", ""))
            start = _typed(typed.tag, typed.get("start"))
            derivative = typed.get("derivative")
            state = None if derivative is None else scalars[int(derivative) - 1].get("name")
        except (ValueError, IndexError) as exc:
            raise DescriptionError(f"the variable {name!r} is malformed: {exc}") from None
        yield Variable(
            name=name,
            value_reference=value_reference,
            type=typed.tag,
            causality=scalar.get("causality", "local"),
            variability=scalar.get("variability", "continuous"),
            initial=scalar.get("initial"),
            start=start,
            unit=typed.get("unit") or declared.get(typed.get("declaredType", "")),
            derivative=state,
            description=scalar.get("description", ""),
        )


def _variables3(root: ET.Element) -> Iterator[Variable]:
    declared = _declared_units(root)
    elements = list(root.iterfind("ModelVariables/*"))
    names = {element.get("valueReference"): element.get("name") for element in elements}
    for element in elements:
        name = element.get("name")
        if element.tag not in TYPES3:
            raise DescriptionError(f"an FMI 3.0 description cannot hold the variable element <{element.tag[:40]}>")
        if name is None:
            raise DescriptionError(f"a <{element.tag}> variable has no name")
        array = element.find("Dimension") is not None
        try:
            value_reference = int(element.get("valueReference", ""))
            text = element.get("start")
            start = tuple(_typed(element.tag, t) for t in text.split()) if array and text else _typed(element.tag, text)
            derivative = element.get("derivative")
            state = None if derivative is None else names[derivative]
        except (ValueError, KeyError) as exc:
            raise DescriptionError(f"the variable {name!r} is malformed: {exc}") from None
        yield Variable(
            name=name,
            value_reference=value_reference,
            type=element.tag,
            causality=element.get("causality", "local"),
            variability=element.get("variability", "continuous"),
            initial=element.get("initial"),
            start=start,
            unit=element.get("unit") or declared.get(element.get("declaredType", "")),
            derivative=state,
            description=element.get("description", ""),
            array=array,
        )


def parse_description(xml: bytes) -> Description:
    """The :class:`Description` in the text of a ``modelDescription.xml``.

    Raises
    ------
    DescriptionError
        When the text is not UTF-8, declares a document type, is not XML,
        or is not an FMI 2.0 or 3.0 model description.
    """
    try:
        text = xml.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DescriptionError(f"{MEMBER} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if "<!DOCTYPE" in text:
        raise DescriptionError(f"{MEMBER} declares a document type (<!DOCTYPE>), which FMUs never need")
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise DescriptionError(f"{MEMBER} is not valid XML: {exc}") from None
    version = root.get("fmiVersion")
    if root.tag != "fmiModelDescription" or version is None:
        raise DescriptionError(f"{MEMBER} is not an FMI model description")
    fmi3 = version == "3.0" or version.startswith("3.0.")
    if version != "2.0" and not fmi3:
        raise DescriptionError(f"it is an FMI {version[:20]} FMU; FMI 2.0 and 3.0 FMUs are read")
    variables = {v.name: v for v in (_variables3(root) if fmi3 else _variables(root))}
    try:
        indicators = len(root.findall("ModelStructure/EventIndicator")) if fmi3 else int(
            root.get("numberOfEventIndicators", "0"))
    except ValueError as exc:
        raise DescriptionError(f"numberOfEventIndicators is malformed: {exc}") from None
    return Description(
        fmi_version=version,
        model_name=root.get("modelName", ""),
        guid=root.get("instantiationToken" if fmi3 else "guid", ""),
        co_simulation=_interface(root.find("CoSimulation"), fmi3),
        model_exchange=_interface(root.find("ModelExchange"), fmi3),
        variables=variables,
        number_of_event_indicators=indicators,
    )


def read_description(fmu: str | PathLike | IO[bytes]) -> Description:
    """The :class:`Description` of the FMU archive ``fmu`` (a path or a binary file), running nothing.

    Raises
    ------
    DescriptionError
        When ``fmu`` cannot be read, is not a zip archive, has no
        ``modelDescription.xml`` (or one over :data:`MAX_BYTES`), or the
        description is refused by :func:`parse_description`.
    """
    try:
        with zipfile.ZipFile(fmu) as archive:
            info = archive.getinfo(MEMBER)
            if info.file_size > MAX_BYTES:
                raise DescriptionError(f"its {MEMBER} is larger than {MAX_BYTES} bytes")
            with archive.open(info) as member:
                xml = member.read(MAX_BYTES + 1)
    except KeyError:
        raise DescriptionError(f"the archive holds no {MEMBER}") from None
    except (OSError, zipfile.BadZipFile, RuntimeError, ValueError) as exc:
        if isinstance(exc, DescriptionError):
            raise
        raise DescriptionError(f"it cannot be read as an FMU archive: {exc}") from None
    if len(xml) > MAX_BYTES:  # a member whose header understates its size
        raise DescriptionError(f"its {MEMBER} is larger than {MAX_BYTES} bytes")
    return parse_description(xml)
