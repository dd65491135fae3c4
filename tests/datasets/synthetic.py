"""Small synthetic files in the C-MAPSS format, for tests that must not need the real data."""

from pathlib import Path

import numpy as np

from twingraph.datasets import SENSORS

REAL_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "cmapss"


def write_synthetic_cmapss(folder: Path, subset: str = "FD001", units: int = 6, seed: int = 0) -> dict[int, int]:
    """Write train/test/RUL files with exponentially degrading sensors; return each test unit's true RUL."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    true_rul = {}
    for kind in ("train", "test"):
        rows = []
        for unit in range(1, units + 1):
            life = int(rng.integers(120, 260))
            cut = life if kind == "train" else int(rng.integers(30, life - 10))
            if kind == "test":
                true_rul[unit] = life - cut
            cycles = np.arange(1, cut + 1)
            wear = np.exp(3.0 * cycles / life) - 1.0
            settings = rng.normal(0.0, 0.002, size=(cut, 3))
            sensors = 500.0 + np.outer(wear, np.linspace(-1.0, 1.0, len(SENSORS))) + rng.normal(0, 0.1, (cut, 21))
            rows.append(np.column_stack([np.full(cut, unit), cycles, settings, sensors]))
        table = np.vstack(rows)
        fmt = ["%d", "%d"] + ["%.4f"] * 24
        np.savetxt(folder / f"{kind}_{subset}.txt", table, fmt=fmt, delimiter=" ")
    np.savetxt(folder / f"RUL_{subset}.txt", list(true_rul.values()), fmt="%d")
    return true_rul
