"""Import of optional dependencies with a message that says how to install them."""

import importlib
from types import ModuleType


def require(module: str, extra: str | None = None, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise ImportError naming the ``pip install`` that fixes it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = module.split(".")[0]
        fix = f"pip install 'twingraph[{extra}]'" if extra else f"pip install {package}"
        what = f" for {purpose}" if purpose else ""
        raise ImportError(f"{package} is needed{what}; install it with: {fix}") from exc
