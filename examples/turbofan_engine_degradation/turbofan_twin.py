"""The turbofan fleet twin on NASA C-MAPSS: sensors in, a WindowRUL block, RUL and health indicator out.

Every test unit is one asset of the batch. Units of different lengths run in one
simulation right-aligned: a unit's first rows are fed with ``valid = False``
until its data starts, so every unit's last cycle is the last tick.
"""

import numpy as np
import pandas as pd

import twingraph as tg
from blocks.ml.window_rul import WindowRUL, train_window_rul
from twingraph.datasets.cmapss import CMAPSS

SENSORS = ["s_2", "s_3", "s_4", "s_7", "s_8", "s_9", "s_11", "s_12", "s_13", "s_14", "s_15", "s_17", "s_20", "s_21"]
CAP = 125  # the benchmark's RUL cap [cycles]: the block's output range
TRAIN_CAP = 135  # the training targets' cap [cycles], chosen by cross-validation on the train units


def build_twin(model: WindowRUL) -> tg.Graph:
    """The graph: ``sensors`` (14,) and ``valid`` (bool) inputs feeding ``model`` (named ``rul``)."""
    g = tg.Graph("turbofan", dt=1.0)
    sensors = g.add(tg.Input("sensors", shape=(len(SENSORS),)))
    valid = g.add(tg.Input("valid", dtype="bool"))
    g.add(model)
    g.connect(sensors.out.value, model.inp.u)
    g.connect(valid.out.value, model.inp.valid)
    g.validate()
    return g


def load_twin(path) -> WindowRUL:
    """The trained ``WindowRUL`` block of a twin saved by ``build_twin(model).save(path)``."""
    model = tg.load(path).blocks.get("rul")
    if not isinstance(model, WindowRUL):
        raise tg.LoadError(f"{path}: not a turbofan twin (no WindowRUL block named 'rul').")
    return model


def unit_arrays(frame: pd.DataFrame) -> tuple[list[int], list[np.ndarray]]:
    """Per unit (sorted), the ``(T, 14)`` array of the informative sensors."""
    units = sorted(frame["unit"].unique())
    groups = frame.sort_values(["unit", "cycle"]).groupby("unit")
    return units, [groups.get_group(u)[SENSORS].to_numpy(float) for u in units]


def train_model(data: CMAPSS, model: WindowRUL, units: list[int] | None = None, **fit) -> dict:
    """Train ``model`` on the train file (optionally only ``units``), RUL targets capped at ``TRAIN_CAP``."""
    frame = data.train.assign(target=data.train_targets(cap=TRAIN_CAP))
    if units is not None:
        frame = frame[frame["unit"].isin(units)]
    ids, x = unit_arrays(frame)
    y = [frame[frame["unit"] == u].sort_values("cycle")["target"].to_numpy(float) for u in ids]
    return train_window_rul(model, x, y, **fit)


def right_aligned(x: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Stack units ``(T_i, F)`` into ``(T_max, B, F)`` inputs and ``(T_max, B)`` valid masks, right-aligned."""
    t_max = max(len(a) for a in x)
    sensors = np.zeros((t_max, len(x), x[0].shape[1]))
    valid = np.zeros((t_max, len(x)), dtype=bool)
    for b, a in enumerate(x):
        sensors[t_max - len(a):, b] = a
        valid[t_max - len(a):, b] = True
    return sensors, valid


def run_twin(model: WindowRUL, test: pd.DataFrame, progress: bool = False) -> dict:
    """Run the twin over every test unit at once; return units, valid mask and the ``(T, B)`` RUL/HI histories."""
    units, x = unit_arrays(test)
    sensors, valid = right_aligned(x)
    sim = tg.Simulator(build_twin(model), batch=len(units), log=["rul.rul", "rul.hi"], progress=progress)
    hist = sim.run(inputs={"sensors": sensors, "valid": valid})
    # (T, B) even for one unit (the history drops the batch axis when batch == 1)
    return {"units": units, "valid": valid, "rul": hist["rul.rul"].reshape(valid.shape),
            "hi": hist["rul.hi"].reshape(valid.shape),
            "lengths": np.array([len(a) for a in x])}


def phm08_score(pred, true) -> float:
    """PHM08 score: sum of ``exp(-d/13) - 1`` for ``d < 0`` (early) and ``exp(d/10) - 1`` else, ``d = pred - true``."""
    d = np.asarray(pred, float) - np.asarray(true, float)
    return float(np.sum(np.where(d < 0, np.exp(-d / 13.0) - 1.0, np.exp(d / 10.0) - 1.0)))


def rmse(pred, true) -> float:
    """Root mean squared error."""
    d = np.asarray(pred, float) - np.asarray(true, float)
    return float(np.sqrt(np.mean(d**2)))
