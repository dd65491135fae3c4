"""Every port of every library block is listed in the port vocabulary page of the docs."""

import importlib.util
import re
from pathlib import Path

from blocks.catalog import EXAMPLES

PAGE = Path(__file__).parents[2] / "docs" / "concepts" / "vocabulary.md"


def documented_ports() -> set[str]:
    """The port names in the first column of the page's ports table."""
    text = PAGE.read_text(encoding="utf-8")
    table = text[text.index("| Port |") : text.index("## Renamed")]
    rows = [row for row in table.splitlines()[2:] if row.startswith("|")]
    return {name for row in rows for name in re.findall(r"`([^`]+)`", row.split("|")[1])}


def test_every_port_of_every_library_block_is_in_the_vocabulary():
    listed = documented_ports()
    missing = set()
    for type_name, example in EXAMPLES.items():
        if example.extra and importlib.util.find_spec(example.extra) is None:
            continue
        block = example.build()
        if type(block).__module__.startswith("blocks.fmi."):
            continue  # an FMU's ports are named after its variables
        for port in [*block.inp, *block.out]:
            name = "u1" if re.fullmatch(r"u\d+", port.name) else port.name  # u1 ... un of Sum and Product
            if name not in listed:
                missing.add(f"{type_name}.{port.name}")
    assert not missing, f"ports missing from {PAGE.name}: {sorted(missing)}"
