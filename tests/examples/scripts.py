"""The example scripts as modules, for tests that call their functions and run them as a user does."""

import contextlib
import importlib.util
import io
import sys
from pathlib import Path
from types import ModuleType

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load_example(folder: str, script: str) -> ModuleType:
    """``examples/<folder>/<script>.py`` imported as the module ``script`` (run once, then reused)."""
    if script not in sys.modules:
        spec = importlib.util.spec_from_file_location(script, EXAMPLES / folder / f"{script}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[script] = module  # before running it, as an import does: dataclasses look their module up
        spec.loader.exec_module(module)
    return sys.modules[script]


def run_main(example: ModuleType, out: Path) -> str:
    """``example.main(["--out", out])``, as a user runs the script; what it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        example.main(["--out", str(out)])
    return printed.getvalue()
