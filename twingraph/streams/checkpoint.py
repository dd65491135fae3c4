"""Checkpoints and the journal of a twin service: what a restart resumes from.

A checkpoint folder holds numbered checkpoints ``checkpoint-00000007.tgc`` and,
beside each, the journal of the records polled after it,
``journal-00000007.jsonl``. A checkpoint is written atomically (a temporary
file, flushed and fsynced, then ``os.replace``) and checksummed::

    twingraph.checkpoint 1 <sha256 of the rest> <bytes of JSON> <bytes of NPZ>\\n
    <JSON document><NPZ of its large arrays>

The document is encoded as graph files encode a simulator snapshot
(:mod:`twingraph.serialize`: tagged JSON, arrays of more than
``INLINE_MAX`` elements in the NPZ, read with ``allow_pickle=False``); nothing
is pickled. On start the newest checkpoint that reads back whole wins; a torn
or corrupt one is skipped with one log message, and the journals from the
chosen checkpoint on are replayed in order (a later journal continues an
earlier one). A journal line is one poll: its records and the source position
after them; a torn last line (a crash mid-write) is ignored. The last
:data:`KEEP` checkpoints and their journals are kept.

Journal lines are flushed to the operating system before the source is told
to acknowledge the records, so a crashed process loses nothing; a power cut
may lose the lines written since the last checkpoint (checkpoints are fsynced).
"""

import base64
import hashlib
import io
import json
import logging
import math
import os
import re
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TwinGraphError
from ..serialize import _Decoder, _Encoder
from .records import Record

logger = logging.getLogger("twingraph.streams")

FORMAT = "twingraph.checkpoint"
VERSION = 1
KEEP = 3  # checkpoints kept, with their journals
_NAME = re.compile(r"checkpoint-(\d{8})\.tgc")


class _Embedded(_Decoder):
    """A decoder whose ``__npz__`` arrays come from the checkpoint file itself."""

    def __init__(self, source: str, directory: Path, arrays: dict[str, np.ndarray]) -> None:
        super().__init__(source, directory, "embedded")
        self.embedded = arrays

    def sidecar(self, where: str) -> dict[str, np.ndarray]:
        return self.embedded


def encode(document: Mapping[str, Any]) -> bytes:
    """The bytes of a checkpoint file holding ``document``.

    ``document["snapshot"]`` is a simulator snapshot, the other entries plain
    data (dicts with string keys, lists, numbers, strings, arrays).
    """
    sidecar: dict[str, np.ndarray] = {}
    encoder = _Encoder(sidecar)
    body = {
        k: encoder.state(v) if k == "snapshot" else encoder.value(v, k, f"checkpoint entry '{k}'")
        for k, v in document.items()
    }
    text = json.dumps(body, separators=(",", ":"), allow_nan=False).encode("utf-8")
    arrays = io.BytesIO()
    if sidecar:
        np.savez(arrays, **sidecar)
    npz = arrays.getvalue()
    digest = hashlib.sha256(text + npz).hexdigest()
    return f"{FORMAT} {VERSION} {digest} {len(text)} {len(npz)}\n".encode("ascii") + text + npz


def decode(data: bytes, source: str) -> dict[str, Any]:
    """The document of a checkpoint file's bytes; ValueError saying why it is not whole."""
    head, newline, rest = data.partition(b"\n")
    if data.startswith(FORMAT.encode()) and not newline:
        raise ValueError("the header is incomplete (torn)")
    parts = head.decode("ascii", "replace").split(" ")
    if len(parts) != 5 or parts[0] != FORMAT or parts[1] != str(VERSION):
        raise ValueError("not a twingraph checkpoint of version 1")
    digest, n_text, n_npz = parts[2], int(parts[3]), int(parts[4])
    if len(rest) != n_text + n_npz:
        raise ValueError(f"{len(rest)} bytes after the header, expected {n_text + n_npz} (torn)")
    if hashlib.sha256(rest).hexdigest() != digest:
        raise ValueError("checksum mismatch (corrupt)")
    body = json.loads(rest[:n_text])
    arrays = {}
    if n_npz:
        with np.load(io.BytesIO(rest[n_text:]), allow_pickle=False) as loaded:
            arrays = {k: loaded[k] for k in loaded.files}
    decoder = _Embedded(source, Path(source).parent, arrays)
    return {k: decoder.state(v) if k == "snapshot" else decoder.value(v, f"$.{k}") for k, v in body.items()}


def _pack(value: Any) -> Any:
    """A raw record value as JSON: ``["b", base64]`` for bytes, ``["j", value]`` for JSON-able data."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return ["b", base64.b64encode(bytes(value)).decode("ascii")]
    if isinstance(value, (np.ndarray, np.generic)):
        value = value.tolist()
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return ["x"]
    return ["j", value]


class _Opaque:
    """A value the journal could not hold as JSON; the assembler rejects it as a wrong type, as live."""


def _unpack(packed: list) -> Any:
    if packed[0] == "b":
        return base64.b64decode(packed[1])
    return packed[1] if packed[0] == "j" else _Opaque()


def _time(stamp: Any) -> Any:
    if stamp is None or (isinstance(stamp, (int, float)) and not isinstance(stamp, bool) and math.isfinite(stamp)):
        return stamp
    return _pack(stamp)


def _untime(stamp: Any) -> Any:
    return _unpack(stamp) if isinstance(stamp, list) else stamp


class Journal:
    """The records polled since a checkpoint, one JSON line per poll, appended and flushed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = open(path, "ab")  # noqa: SIM115 - open for the service's lifetime, closed by close()

    def append(self, records: Sequence[Record], position: Any) -> None:
        """Write the records of one poll and the source position after them; flush to the operating system."""
        rows = [[_time(r.time), str(r.asset), {str(k): _pack(v) for k, v in _items(r.values)}] for r in records]
        line = json.dumps({"p": position, "r": rows}, separators=(",", ":"))
        self._file.write(line.encode("utf-8") + b"\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _items(values: Any) -> list:
    return list(values.items()) if isinstance(values, Mapping) else []


def read_journal(path: Path) -> Iterator[tuple[list[Record], Any]]:
    """The polls of a journal: ``(records, position)``; stops at a torn line with one message."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    for number, line in enumerate(data.splitlines(), 1):
        try:
            entry = json.loads(line)
            records = [Record(_untime(t), a, {k: _unpack(v) for k, v in values.items()}) for t, a, values in entry["r"]]
        except (ValueError, KeyError, TypeError, IndexError):
            logger.warning(
                "journal %s: line %d is torn or corrupt; it and the lines after it are ignored", path, number
            )
            return
        yield records, entry["p"]


class CheckpointStore:
    """The checkpoints and journals in one folder (created if missing).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     store = CheckpointStore(folder)
    ...     n = store.write({"tick": 3})
    ...     store.latest()
    (0, {'tick': 3})
    """

    def __init__(self, folder: str | os.PathLike, keep: int = KEEP) -> None:
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TwinGraphError(f"Cannot use the checkpoint folder '{self.folder}': {exc}") from exc
        self.keep = keep
        self.journal: Journal | None = None

    def numbers(self) -> list[int]:
        """The numbers of the checkpoint files present, oldest first."""
        found = (_NAME.fullmatch(p.name) for p in self.folder.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def path(self, n: int) -> Path:
        return self.folder / f"checkpoint-{n:08d}.tgc"

    def journal_path(self, n: int) -> Path:
        return self.folder / f"journal-{n:08d}.jsonl"

    def latest(self) -> tuple[int, dict[str, Any]] | None:
        """The newest checkpoint that reads back whole, ``(number, document)``; None when there is none."""
        for n in reversed(self.numbers()):
            path = self.path(n)
            try:
                return n, decode(path.read_bytes(), str(path))
            except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, EOFError) as exc:
                logger.warning("checkpoint %s skipped: %s", path, exc)
        return None

    def polls_after(self, n: int) -> Iterator[tuple[list[Record], Any]]:
        """The polls journaled after checkpoint ``n``: its journal, then those of any later checkpoints."""
        for m in sorted({n, *(k for k in self.journal_numbers() if k > n)}):
            yield from read_journal(self.journal_path(m))

    def journal_numbers(self) -> list[int]:
        found = (re.fullmatch(r"journal-(\d{8})\.jsonl", p.name) for p in self.folder.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def write(self, document: Mapping[str, Any]) -> int:
        """Write the next checkpoint atomically, start its (empty) journal, drop old ones; return its number."""
        numbers = sorted({*self.numbers(), *self.journal_numbers()})
        n = numbers[-1] + 1 if numbers else 0
        data = encode(document)
        path, temp = self.path(n), self.folder / f".checkpoint-{n:08d}.tmp"
        with open(temp, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
        _sync_folder(self.folder)
        if self.journal is not None:
            self.journal.close()
        self.journal = Journal(self.journal_path(n))
        for old in self.numbers()[: -self.keep]:
            self.path(old).unlink(missing_ok=True)
        oldest = self.numbers()[0]
        for old in self.journal_numbers():
            if old < oldest:
                self.journal_path(old).unlink(missing_ok=True)
        return n

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()
            self.journal = None


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where the system allows opening folders)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
