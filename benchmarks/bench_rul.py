"""The RUL block alone: microseconds per tick, and per asset-tick, at B = 1 and B = 10,000.

Run: ``python benchmarks/bench_rul.py [--ticks N] [--threads]``. The block's
``output`` and ``update`` are called directly, as the engine calls them, on a
noisy linear health indicator with 5 % missing samples, so that only the block
is timed; each figure is the best of 40 rounds. Set ``OMP_NUM_THREADS=1`` (the default here, unless ``--threads``) to
time it on one core.
"""

import argparse
import os
import sys

if "--threads" not in sys.argv:
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import time

import numpy as np

from blocks.health import RUL
from twingraph.block import Buffers, Context

DT = 0.5


def indicator(ticks: int, batch: int, seed: int = 0) -> np.ndarray:
    """Health falling from 1 by 0.002 per tick, noise 0.01, 5 % of the samples missing."""
    rng = np.random.default_rng(seed)
    hi = (1.0 - 0.002 * np.arange(ticks))[:, None] + 0.01 * rng.normal(size=(ticks, batch))
    hi[rng.random(hi.shape) < 0.05] = np.nan
    return hi


def time_block(block: RUL, hi: np.ndarray, warmup: int, rounds: int = 40) -> float:
    """Time per tick [s] of ``output`` + ``update``: the best of ``rounds`` rounds after ``warmup`` ticks.

    The best round is the one least disturbed by other processes (as ``timeit`` reports).
    """
    ticks, batch = hi.shape
    block.check_params()
    inputs = block.input_signals()
    outputs = block.output_signals(inputs)
    block.reset(Context(batch=batch, dt=DT, inputs=inputs, outputs=outputs))
    inp = Buffers(block.name, {"hi": np.empty(batch)})
    out = Buffers(block.name, {port: np.empty(batch) for port in outputs})
    rounds = min(rounds, ticks - warmup)
    per_round = (ticks - warmup) // rounds
    marks = set(range(warmup, ticks + 1, per_round))
    times = []
    for k in range(warmup + rounds * per_round + 1):
        if k in marks:
            times.append(time.perf_counter())
        if k == warmup + rounds * per_round:
            break
        inp.hi[...] = hi[k]
        block.output(k * DT, inp, out)
        block.update(k * DT, inp)
    return float(np.min(np.diff(times))) / per_round


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=2000, help="ticks timed at B = 1 (B = 10,000 runs a tenth)")
    parser.add_argument("--threads", action="store_true", help="leave OMP_NUM_THREADS as set")
    args = parser.parse_args()
    print(f"RUL block alone, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print(f"{'model':<12}{'window':>7}{'B':>8}{'us/tick':>12}{'us/asset-tick':>15}")
    for model in ("linear", "best"):
        for window in (50, 100):
            for batch, ticks in ((1, args.ticks), (10_000, args.ticks // 10)):
                hi = indicator(window + ticks, batch)
                per_tick = time_block(RUL(window=window, model=model, name="rul"), hi, warmup=window)
                print(f"{model:<12}{window:>7}{batch:>8}{per_tick * 1e6:>12.1f}{per_tick * 1e6 / batch:>15.3f}")


if __name__ == "__main__":
    main()
