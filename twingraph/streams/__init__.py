"""Live twins: sensor records in, per-tick results out, checkpointed so that a restart resumes.

A :class:`Source` yields :class:`Record` objects (a time, an asset, raw values
per ``Input`` port); the :class:`TickAssembler` decodes and checks them and
sorts them into ticks; the :class:`TwinService` steps the twin batched over
its assets and hands each tick's outputs to every :class:`Sink`, keeping
checkpoints and a journal so that a restart resumes where it stopped.
:func:`open_source` and :func:`open_sink` make sources and sinks from URLs
(files for replay and results, ``mqtt://`` and ``opc.tcp://`` for live data).
"""

from .assembly import TickAssembler
from .checkpoint import CheckpointStore
from .records import Counters, Record, Sink, Source
from .replay import ReplaySource
from .service import TwinService
from .sinks import CSVSink, MemorySink, ParquetSink
from .urls import open_sink, open_source

__all__ = [
    "CSVSink",
    "CheckpointStore",
    "Counters",
    "MemorySink",
    "ParquetSink",
    "Record",
    "ReplaySource",
    "Sink",
    "Source",
    "TickAssembler",
    "TwinService",
    "open_sink",
    "open_source",
]
