"""The block contract, checked for every registered library block type.

Each type is built from the factory table (:data:`blocks.catalog.EXAMPLES`),
wired to one ``Input`` per input port and stepped over seeded random inputs.
A new block type joins these tests by registering; without an example in the
table it fails ``test_every_registered_type_has_an_example``.
"""

import importlib
import json
import pkgutil
import subprocess
import sys

import numpy as np
import pytest

import blocks
import twingraph as tg
from blocks.catalog import EXAMPLES
from blocks.fmi.c_fmus import c_compiler
from tests.feeds import random_inputs

STEPS, SPLIT, BATCH = 12, 5, 3


def _library_types() -> list[str]:
    for module in pkgutil.walk_packages(blocks.__path__, "blocks."):
        importlib.import_module(module.name)
    return sorted(t for t, cls in tg.block_types().items() if cls.__module__.split(".")[0] in ("twingraph", "blocks"))


LIBRARY_TYPES = _library_types()
SAVABLE = [t for t in LIBRARY_TYPES if t in EXAMPLES and EXAMPLES[t].saves and not EXAMPLES[t].holds_code]


def build(type_name: str, **overrides) -> tg.Block:
    """The example block of ``type_name`` named 'blk' (an Input keeps its name: it is the feed's name)."""
    example = EXAMPLES[type_name]
    if example.extra:
        pytest.importorskip(example.extra)
    if example.compiler and c_compiler() is None:
        pytest.skip("no C compiler (cc or gcc) on PATH to build the example FMU")
    block = example.build()
    return type(block)(**{**block.get_params(), **overrides}, name=block.name or "blk")


def wrap(block: tg.Block, type_name: str) -> tg.Graph:
    """A graph holding ``block``, each of its inputs fed from a top-level Input named 'in_<port>'."""
    graph = tg.Graph("conformance", dt=0.1)
    graph.add(block)
    given = EXAMPLES[type_name].inputs
    for port, signal in block.input_signals().items():
        signal = given.get(port, signal)
        shape = (2,) if signal.shape is None else signal.shape
        feed = graph.add(tg.Input(f"in_{port}", shape=shape, dtype=signal.dtype or "float64", unit=signal.unit))
        graph.connect(feed.out.value, block.inp[port])
    return graph


def run(sim: tg.Simulator, inputs: dict[str, np.ndarray], ticks: slice = slice(None)) -> dict[str, np.ndarray]:
    """Step ``sim`` over ``inputs[ticks]``; return copies of the history of those ticks by port."""
    part = {name: values[ticks] for name, values in inputs.items()}
    steps = len(range(STEPS)[ticks])
    start = sim.tick
    history = sim.run(inputs=part or None, steps=steps)
    rows = slice(len(history.time) - (sim.tick - start), None)
    return {port: np.array(history[port][rows]) for port in history.ports}


def assert_same(a: dict[str, np.ndarray], b: dict[str, np.ndarray], rtol: float | None = None) -> None:
    """Equal histories: exactly, or to ``rtol`` when given."""
    assert a.keys() == b.keys()
    for port in a:
        if rtol is None:
            np.testing.assert_array_equal(a[port], b[port], err_msg=port)
        else:
            np.testing.assert_allclose(a[port], b[port], rtol=rtol, atol=1e-12, err_msg=port)


def test_every_registered_type_has_an_example():
    missing = [t for t in LIBRARY_TYPES if t not in EXAMPLES]
    assert not missing, f"add examples of {missing} to EXAMPLES in blocks/catalog.py"
    assert not set(EXAMPLES) - set(LIBRARY_TYPES), "EXAMPLES names types that are not registered"


def test_every_type_registers_when_blocks_is_imported():
    """A file naming any library type loads in a fresh process that imports only 'blocks'."""
    code = "import blocks, json, twingraph; print(json.dumps(sorted(twingraph.block_types())))"
    fresh = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    missing = sorted(set(LIBRARY_TYPES) - set(fresh))
    assert not missing, f"block types {missing} do not register on 'import blocks': import them in blocks/__init__.py"


@pytest.mark.parametrize("type_name", LIBRARY_TYPES)
def test_the_example_builds_and_validates(type_name):
    block = build(type_name)
    assert type(block).type_name == type_name
    wrap(block, type_name).validate()


@pytest.mark.parametrize("type_name", LIBRARY_TYPES)
def test_params_round_trip_through_the_constructor(type_name):
    block = build(type_name)
    clone = type(block)(**block.get_params(), name=block.name)
    if EXAMPLES[type_name].holds_code:
        assert clone.get_params() == block.get_params()
    else:
        assert wrap(clone, type_name).to_dict() == wrap(block, type_name).to_dict()


@pytest.mark.parametrize("type_name", SAVABLE)
def test_json_round_trip_gives_the_same_history(type_name, tmp_path):
    graph = wrap(build(type_name), type_name)
    graph.save(tmp_path / "g.json")
    loaded = tg.load(tmp_path / "g.json")
    assert loaded.to_dict() == graph.to_dict()
    assert loaded.to_dot() == graph.to_dot()
    through_text = tg.from_dict(json.loads(json.dumps(graph.to_dict(), allow_nan=False)))
    assert through_text.to_dict() == graph.to_dict()
    sim = tg.Simulator(graph, batch=2)
    inputs = random_inputs(sim, STEPS)
    assert_same(run(sim, inputs), run(tg.Simulator(loaded, batch=2), inputs))


@pytest.mark.parametrize("type_name", [t for t in LIBRARY_TYPES if t in EXAMPLES and EXAMPLES[t].holds_code])
def test_a_block_holding_code_refuses_to_save(type_name, tmp_path):
    graph = wrap(build(type_name), type_name)
    with pytest.raises(tg.TwinGraphError, match=r"Cannot save the param '\w+' of block 'blk': it is a function"):
        graph.save(tmp_path / "g.json")
    assert not (tmp_path / "g.json").exists()


@pytest.mark.parametrize("type_name", LIBRARY_TYPES)
def test_reset_is_idempotent(type_name):
    sim = tg.Simulator(wrap(build(type_name), type_name), batch=2)
    inputs = random_inputs(sim, STEPS)
    first = run(sim, inputs)
    sim.reset()
    assert_same(first, run(sim, inputs))


@pytest.mark.parametrize("type_name", SAVABLE)
def test_snapshot_restore_is_exact_through_a_file(type_name, tmp_path):
    graph = wrap(build(type_name), type_name)
    sim = tg.Simulator(graph, batch=2)
    inputs = random_inputs(sim, STEPS)
    run(sim, inputs, slice(0, SPLIT))
    graph.save(tmp_path / "g.json", state=sim.snapshot())
    uninterrupted = run(sim, inputs, slice(SPLIT, None))
    resumed = tg.Simulator(tg.load(tmp_path / "g.json"), batch=2)
    resumed.restore(tg.load_state(tmp_path / "g.json"))
    assert_same(uninterrupted, run(resumed, inputs, slice(SPLIT, None)))


@pytest.mark.parametrize("type_name", LIBRARY_TYPES)
def test_a_batch_equals_single_runs(type_name):
    graph = wrap(build(type_name), type_name)
    fleet = tg.Simulator(graph, batch=BATCH)
    inputs = random_inputs(fleet, STEPS)
    together = run(fleet, inputs)
    for asset in range(BATCH):
        alone = run(tg.Simulator(graph, batch=1), {n: v[:, asset : asset + 1] for n, v in inputs.items()})
        mine = {p: v[:, asset] for p, v in together.items()}
        theirs = {p: v.reshape(mine[p].shape) for p, v in alone.items()}
        assert_same(mine, theirs, rtol=EXAMPLES[type_name].batch_rtol)


@pytest.mark.parametrize("type_name", LIBRARY_TYPES)
def test_an_invalid_param_is_refused_when_the_graph_is_validated(type_name):
    invalid = EXAMPLES[type_name].invalid
    if not invalid:
        assert not build(type_name).get_params(), f"{type_name} has params: give EXAMPLES an invalid value"
        return
    block = build(type_name, **invalid)  # no work in __init__: nothing is checked yet
    with pytest.raises(tg.ParamError) as error:
        wrap(block, type_name).validate()
    param = next(iter(invalid))
    message = str(error.value)
    assert f"{type(block).__name__} '{block.name}'" in message
    assert f"'{param}' parameter" in message


@pytest.mark.parametrize("type_name", LIBRARY_TYPES)
def test_same_seed_same_output(type_name):
    histories = []
    for _ in range(2):
        sim = tg.Simulator(wrap(build(type_name), type_name), batch=2)
        histories.append(run(sim, random_inputs(sim, STEPS, seed=7)))
    assert_same(*histories)
