"""The engine stands alone: no module under twingraph/ imports the block library."""

import ast
import subprocess
import sys
from pathlib import Path

import twingraph

ENGINE = Path(twingraph.__file__).parent
LIBRARY = "blocks"

ENGINE_ONLY_RUN = """
import sys
import twingraph as tg

class Double(tg.Block, type_name="tests.engine.Double"):
    inputs = {"u": tg.Signal(shape=(), unit="m")}
    outputs = {"y": tg.Signal(shape=(), unit="m")}

    def output(self, t, inp, out):
        out.y[...] = 2.0 * inp.u

g = tg.Graph("engine_only", dt=0.5)
g.connect(g.add(tg.Input("u", shape=(), unit="m")).out.value, g.add(Double(name="double")).inp.u)
g.connect("double.y", g.add(tg.Output("y")).inp.u)
g.validate()
g = tg.from_dict(g.to_dict())
sim = tg.Simulator(g, batch=2)
assert sim.step(u=[1.5, -1.0])["double.y"].tolist() == [3.0, -2.0]
assert sim.run(inputs={"u": [[1.0, 2.0]]})["double.y"].tolist() == [[3.0, -2.0], [2.0, 4.0]]
print(sorted(m for m in sys.modules if m == "blocks" or m.startswith("blocks.")))
"""


def is_library(module: str | None) -> bool:
    return module is not None and (module == LIBRARY or module.startswith(LIBRARY + "."))


def imported_modules(tree: ast.Module):
    """``(line, module)`` of every import statement, at module level or inside a function."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.lineno, node.module


def dynamic_imports(tree: ast.Module):
    """``(line, module)`` of ``importlib.import_module(...)`` / ``__import__(...)`` calls whose
    argument is a string, or a name bound to a string at module level."""
    constants = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and node.args):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name not in ("import_module", "__import__"):
            continue
        arg = node.args[0]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            yield node.lineno, arg.value
        elif isinstance(arg, ast.Name) and arg.id in constants:
            yield node.lineno, constants[arg.id]


def offenders(find) -> list[str]:
    return [
        f"{path.relative_to(ENGINE.parent)}:{line} imports {module}"
        for path in sorted(ENGINE.rglob("*.py"))
        for line, module in find(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        if is_library(module)
    ]


def test_importing_and_stepping_an_engine_only_graph_imports_no_block():
    run = subprocess.run([sys.executable, "-c", ENGINE_ONLY_RUN], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_no_engine_module_has_an_import_statement_of_the_library():
    assert offenders(imported_modules) == []


def test_no_engine_module_imports_the_library_by_name_at_run_time():
    assert offenders(dynamic_imports) == []


def test_the_checks_see_imports_inside_functions_and_by_name():
    tree = ast.parse(
        "LIB = 'blocks'\n"
        "def f():\n"
        "    from blocks.estimation import EKF\n"
        "    import blocks.sources as s\n"
        "    importlib.import_module(LIB)\n"
        "from . import blocks_local\n"
    )
    assert list(imported_modules(tree)) == [(3, "blocks.estimation"), (4, "blocks.sources")]
    assert list(dynamic_imports(tree)) == [(5, "blocks")]
    assert not is_library("blocks_extra") and not is_library(None)
