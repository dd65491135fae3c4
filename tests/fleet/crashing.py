"""A block that kills its worker process the first time it runs (for the fleet tests)."""

import os
from pathlib import Path

import numpy as np

import twingraph as tg


class CrashOnce(tg.Block):
    """Passes ``u`` through; on its first reset ever (marker file absent) ends the process."""

    inputs = {"u": tg.Signal()}
    outputs = {"y": tg.Signal()}

    def __init__(self, marker: str = "", *, name=None):
        super().__init__(name=name)
        self.marker = marker

    def reset(self, ctx):
        if self.marker and not Path(self.marker).exists():
            Path(self.marker).touch()
            os._exit(1)

    def output(self, t, inp, out):
        np.copyto(out.y, inp.u)


class FailForBigBatches(tg.Block):
    """Raises for a batch larger than ``limit`` assets: a shard failure that retries cannot cure."""

    inputs = {"u": tg.Signal()}
    outputs = {"y": tg.Signal()}

    def __init__(self, limit: int = 1, *, name=None):
        super().__init__(name=name)
        self.limit = limit

    def reset(self, ctx):
        if ctx.batch > self.limit:
            raise tg.SimulationError(f"batch {ctx.batch} > {self.limit}")

    def output(self, t, inp, out):
        np.copyto(out.y, inp.u)
