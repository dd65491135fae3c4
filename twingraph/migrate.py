"""Graph files of older format versions, brought to the current one on load.

Version 2 gave the library's ports one vocabulary (``docs/concepts/vocabulary.md``):
the NIS is ``nis`` on the filters and on ``Residual``, and detectors take their
signal on ``u``. A version-1 document is migrated by renaming those ports in
its connections, by block type (:data:`RENAMED_PORTS`). Migration works on the
document alone, type names included: it imports no block. It runs before the
schema check, so it leaves anything malformed as it is, for the check to report.

Examples
--------
>>> v1 = {"version": 1, "blocks": [{"type": "EMA", "name": "ema"}], "connections": [["y.value", "ema.x"]]}
>>> UPGRADES[1](v1)["connections"]
[['y.value', 'ema.u']]
"""

from collections.abc import Callable
from typing import Any

RENAMED_PORTS: dict[str, dict[str, dict[str, str]]] = {  # version 1 to 2: type -> "in"/"out" -> old -> new
    "EKF": {"out": {"normalized_innovation": "nis"}},
    "UKF": {"out": {"normalized_innovation": "nis"}},
    "Residual": {"out": {"chi2": "nis"}},
    "EMA": {"in": {"x": "u"}},
    "CUSUM": {"in": {"x": "u"}},
    "Threshold": {"in": {"x": "u"}},
    "WindowRUL": {"in": {"x": "u"}},
}


def _port(ref: Any, types: dict[str, str], side: str) -> Any:
    """``"block.port"`` with the port renamed for the block's type; anything else unchanged."""
    if not isinstance(ref, str) or "." not in ref:
        return ref
    block, port = ref.split(".", 1)
    renamed = RENAMED_PORTS.get(types.get(block), {}).get(side, {})
    return f"{block}.{renamed.get(port, port)}"


def _rename_ports(graph: Any) -> Any:
    """A copy of the graph (or subsystem) ``graph`` with its connections' ports renamed."""
    if not isinstance(graph, dict):
        return graph
    graph = dict(graph)
    blocks = graph.get("blocks") if isinstance(graph.get("blocks"), list) else []
    if blocks:
        graph["blocks"] = [_rename_ports(b) if isinstance(b, dict) and b.get("type") == "Graph" else b for b in blocks]
    types = {
        b["name"]: b["type"]
        for b in blocks
        if isinstance(b, dict) and isinstance(b.get("name"), str) and isinstance(b.get("type"), str)
    }
    if isinstance(graph.get("connections"), list):
        graph["connections"] = [
            [_port(c[0], types, "out"), _port(c[1], types, "in"), *c[2:]] if isinstance(c, list) and len(c) >= 2 else c
            for c in graph["connections"]
        ]
    return graph


def _from_version_1(document: dict[str, Any]) -> dict[str, Any]:
    """The version-2 document of a version-1 ``document`` (which is not changed)."""
    return {**_rename_ports(document), "version": 2}


UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _from_version_1}
"""Per old format version, the function that brings a document to the next version."""
