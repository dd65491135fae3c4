"""Trust in files whose native code a block runs (an FMU): the hooks that block packages register.

Loading a graph never runs code from the files it names. A block that runs
native code (``blocks.fmi.FMU``) refuses a file unless the user trusted it in
the process; the engine knows no such block, so a block package registers,
when it is imported, a hook for the files of a suffix
(``register_trust(".fmu", blocks.fmi.trust)``), and ``twingraph run --trust
FILE`` hands each FILE to the hook of its suffix.

Examples
--------
>>> trust_file("plant.unknown")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
twingraph.errors.TwinGraphError: Cannot trust 'plant.unknown': no installed block package runs '.unknown' files ...
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import TwinGraphError, quote
from .serialize import _load_plugins

_HOOKS: dict[str, Callable[[str], Any]] = {}


def register_trust(suffix: str, hook: Callable[[str], Any]) -> None:
    """Let ``trust_file`` hand files ending in ``suffix`` (``".fmu"``) to ``hook(path)``, which trusts them."""
    _HOOKS[suffix.lower()] = hook


def trust_file(path: str) -> None:
    """Trust the file ``path`` in this process, through the hook registered for its suffix.

    The installed block packages are imported first, so that their hooks are
    registered. Raises :class:`~twingraph.TwinGraphError` when no hook takes
    the suffix; the hook's own errors (a missing file: OSError) pass through.
    """
    _load_plugins()
    suffix = Path(path).suffix.lower()
    hook = _HOOKS.get(suffix)
    if hook is None:
        known = ", ".join(sorted(_HOOKS)) or "none"
        raise TwinGraphError(
            f"Cannot trust {quote(path)}: no installed block package runs {quote(suffix or path)} files (it can "
            f"trust {known})."
        )
    hook(path)
