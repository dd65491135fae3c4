"""Sources and sinks named by URL, as ``twingraph serve --source URL --sink URL`` takes them.

==========================================  ==============================================
``data.csv``, ``data.parquet``              replay (source) or appended rows (sink)
``data.csv?speed=2``                        replay paced at twice real time
``mqtt://HOST:PORT/plant/{asset}/{port}``   MQTT (:mod:`twingraph.streams.mqtt`)
``opc.tcp://HOST:PORT/path``                OPC UA, with a node mapping (:mod:`twingraph.streams.opcua`)
==========================================  ==============================================

The MQTT and OPC UA modules are imported only when such a URL is opened, so
their client libraries are needed only then.
"""

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from ..errors import TwinGraphError, quote
from .records import Sink, Source
from .replay import ReplaySource
from .sinks import CSVSink, ParquetSink

FILES = (".csv", ".parquet")


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""


def _file(url: str) -> tuple[Path, dict[str, str]]:
    """The path and query options of a file URL (``file://`` optional, ``?key=value`` options)."""
    text = url[len("file://") :] if url.startswith("file://") else url
    path, _, query = text.partition("?")
    options = {k: v[-1] for k, v in parse_qs(query, strict_parsing=False).items()}
    if Path(path).suffix not in FILES:
        raise TwinGraphError(
            f"Cannot open {quote(url)}: a file must end in {' or '.join(FILES)}; live data come from "
            f"mqtt://HOST:PORT/TEMPLATE or opc.tcp://HOST:PORT URLs."
        )
    return Path(path), options


def open_source(url: str, **options: Any) -> Source:
    """A source from its URL; ``options`` go to the transport (e.g. ``mapping`` for OPC UA).

    Examples
    --------
    >>> open_source("recording.txt")
    Traceback (most recent call last):
    ...
    twingraph.errors.TwinGraphError: Cannot open 'recording.txt': a file must end in .csv or .parquet; \
live data come from mqtt://HOST:PORT/TEMPLATE or opc.tcp://HOST:PORT URLs.
    """
    scheme = _scheme(url)
    if scheme in ("mqtt", "mqtts"):
        from . import mqtt

        return mqtt.source_from_url(url, **options)
    if scheme == "opc.tcp":
        from . import opcua

        if "mapping" not in options:
            raise TwinGraphError(
                f"Cannot open {quote(url)}: an OPC UA source needs a mapping of node ids to asset and port."
            )
        return opcua.source_from_url(url, options["mapping"])
    if scheme not in ("", "file"):
        raise TwinGraphError(
            f"Cannot open {quote(url)}: unknown scheme {quote(scheme)}; use a .csv/.parquet file, "
            f"mqtt:// or opc.tcp://."
        )
    path, query = _file(url)
    speed = query.pop("speed", None)
    if query:
        raise TwinGraphError(f"Cannot open {quote(url)}: a replay takes only the option 'speed'. Got {sorted(query)}.")
    try:
        speed = None if speed is None else float(speed)
    except ValueError:
        raise TwinGraphError(f"Cannot open {quote(url)}: 'speed' must be a number. Got {quote(speed)}.") from None
    return ReplaySource(path, speed=speed)


def open_sink(url: str) -> Sink:
    """A sink from its URL: ``mqtt://HOST:PORT/twin/{asset}/{port}``, or a .csv or .parquet path."""
    scheme = _scheme(url)
    if scheme in ("mqtt", "mqtts"):
        from . import mqtt

        return mqtt.sink_from_url(url)
    if scheme not in ("", "file"):
        raise TwinGraphError(
            f"Cannot open {quote(url)}: unknown scheme {quote(scheme)} for a sink; use a .csv/.parquet file or mqtt://."
        )
    path, query = _file(url)
    if query:
        raise TwinGraphError(f"Cannot open {quote(url)}: a file sink takes no options. Got {sorted(query)}.")
    return CSVSink(path) if path.suffix == ".csv" else ParquetSink(path)
