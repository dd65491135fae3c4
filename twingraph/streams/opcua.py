"""OPC UA transport (asyncua): :class:`OPCUASource`, data change notifications of mapped nodes as records.

The client runs its asyncio loop in a background thread; each data change of
a subscribed node becomes ``Record(time, asset, {port: value})`` through the
node's entry in the mapping, and waits in a thread-safe queue for
:meth:`OPCUASource.poll`.

Time: an OPC UA value carries a source timestamp (set by the device or the
server that wrote it) and a server timestamp. The record's time is that
timestamp in seconds since ``epoch`` on the graph's clock: ``time =
(timestamp - epoch).total_seconds()``, so tick ``k`` holds the values stamped
in ``[epoch + k·dt, epoch + (k+1)·dt)``. Give the plant's fixed start of
record as ``epoch`` when the service resumes from checkpoints; the default
is the moment :meth:`OPCUASource.open` connects, which restarts the clock at
every start. ``timestamps="arrival"`` leaves the time empty, for the service
to stamp with the arrival (``clock="wall"``).
"""

import asyncio
import inspect
import logging
import threading
from collections import deque
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from .._optional import require
from .records import Record, Source

log = logging.getLogger("twingraph.streams")

TIMESTAMPS = ("source", "server", "arrival")


def parse_mapping(mapping: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """Node id → ``(asset, port)``, from ``{node_id: [asset, port]}`` or ``{asset: {port: node_id}}``.

    Examples
    --------
    >>> parse_mapping({"ns=2;s=p1.u": ["p1", "u"]})
    {'ns=2;s=p1.u': ('p1', 'u')}
    >>> parse_mapping({"p1": {"u": "ns=2;i=7", "y": "ns=2;i=8"}})
    {'ns=2;i=7': ('p1', 'u'), 'ns=2;i=8': ('p1', 'y')}
    """
    nodes: dict[str, tuple[str, str]] = {}
    if not isinstance(mapping, Mapping) or not mapping:
        raise ValueError(f"The OPC UA mapping must be a non-empty dict: {{node_id: [asset, port]}} or "
                         f"{{asset: {{port: node_id}}}}. Got {mapping!r:.200}.")
    for key, value in mapping.items():
        pairs = ([(node, (key, port)) for port, node in value.items()] if isinstance(value, Mapping)
                 else [(key, tuple(value) if isinstance(value, list | tuple) else value)])
        for node, target in pairs:
            if not (isinstance(node, str) and isinstance(target, tuple) and len(target) == 2
                    and all(isinstance(x, str) and x for x in target)):
                raise ValueError(f"Bad OPC UA mapping entry {key!r}: {value!r:.200}; each node id maps to "
                                 "[asset, port] (two non-empty strings).")
            if node in nodes:
                raise ValueError(f"The OPC UA node {node!r} is mapped twice: to {nodes[node]} and {target}.")
            nodes[node] = target
    return nodes


def as_utc(epoch: datetime | float | str | None) -> datetime | None:
    """``epoch`` as an aware UTC datetime (from a datetime, an ISO 8601 string or Unix seconds); ``None`` stays."""
    if epoch is None or isinstance(epoch, datetime):
        moment = epoch
    elif isinstance(epoch, int | float):
        moment = datetime.fromtimestamp(epoch, tz=timezone.utc)
    elif isinstance(epoch, str):
        moment = datetime.fromisoformat(epoch.replace("Z", "+00:00"))  # Python < 3.11 reads no "Z"
    else:
        raise ValueError(f"The 'epoch' parameter of OPCUASource must be a datetime, an ISO 8601 string or Unix "
                         f"seconds. Got {epoch!r}.")
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)  # OPC UA timestamps are UTC
    return moment


class OPCUASource(Source):
    """Records from data change notifications of OPC UA nodes, each mapped to an asset and an ``Input`` port.

    Parameters
    ----------
    url : str
        Server endpoint, ``opc.tcp://HOST:PORT[/path]``.
    mapping : dict
        ``{node_id: [asset, port]}`` or ``{asset: {port: node_id}}``; node ids
        as OPC UA writes them (``ns=2;s=pump01.flow``, ``ns=2;i=1001``).
    interval : float
        Publishing interval of the subscription [s]: how often the server
        sends the changes it collected.
    queue_size : int
        Values the server keeps per node between two publications (oldest
        dropped beyond): at least the samples of a node per ``interval``.
    timestamps : str
        ``"source"`` (default), ``"server"``: which timestamp of a value is its
        time; ``"arrival"``: none (the service stamps the arrival).
    epoch : datetime, str, float or None
        The moment that is time 0 of the graph's clock; default: when
        :meth:`open` connects.
    timeout : float
        Request and connection timeout [s].

    Notes
    -----
    A notification whose status is not good gives ``None`` (a missing value,
    NaN for the twin). OPC UA keeps no session queue for a client that is
    gone: changes while the service is down are lost (the ticks they belong
    to are filled as configured, or the values counted late). With an
    asyncua that supports it (2.x), the client reconnects and re-creates its
    subscription by itself.
    """

    def __init__(self, url: str, mapping: Mapping[str, Any], interval: float = 0.05, queue_size: int = 1000,
                 timestamps: str = "source", epoch: datetime | float | str | None = None, timeout: float = 10.0):
        self.url = url
        self.mapping = mapping
        self.interval = interval
        self.queue_size = queue_size
        self.timestamps = timestamps
        self.epoch = epoch
        self.timeout = timeout

    def open(self, position: Any = None) -> None:
        """Connect, subscribe to every mapped node and wait until the server accepted them; ``position`` unused."""
        if self.timestamps not in TIMESTAMPS:
            raise ValueError(f"The 'timestamps' parameter of OPCUASource must be one of {list(TIMESTAMPS)}. "
                             f"Got {self.timestamps!r}.")
        asyncua = require("asyncua", extra="streams", purpose="the OPC UA source")
        self.nodes_ = parse_mapping(self.mapping)
        self.epoch_ = as_utc(self.epoch) or datetime.now(timezone.utc)
        self._queue: deque = deque()
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="twingraph-opcua", daemon=True)
        self._thread.start()
        try:
            self._run(self._connect(asyncua), self.timeout + 5.0)
        except BaseException:
            self.close()
            raise

    def _run(self, coroutine, timeout: float):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    async def _connect(self, asyncua) -> None:
        ua = asyncua.ua
        options = {"timeout": self.timeout}
        if "auto_reconnect" in inspect.signature(asyncua.Client).parameters:
            options["auto_reconnect"] = True
        self._client = asyncua.Client(self.url, **options)
        try:
            await self._client.connect()
        except (OSError, asyncio.TimeoutError) as exc:
            raise ConnectionError(f"Cannot connect the OPC UA source to {self.url}: {exc or type(exc).__name__}") \
                from exc
        self._subscription = await self._client.create_subscription(self.interval * 1e3, self)
        self._handles: dict[int, tuple[str, str]] = {}
        requests = []
        trigger = ua.DataChangeFilter(Trigger=ua.DataChangeTrigger.StatusValueTimestamp)  # a repeat counts too
        for handle, (node, target) in enumerate(self.nodes_.items(), start=1):
            item = ua.MonitoredItemCreateRequest()
            item.ItemToMonitor = ua.ReadValueId(NodeId=ua.NodeId.from_string(node),
                                                AttributeId=ua.AttributeIds.Value)
            item.MonitoringMode = ua.MonitoringMode.Reporting
            item.RequestedParameters = ua.MonitoringParameters(ClientHandle=handle, SamplingInterval=0.0,
                                                               QueueSize=self.queue_size, DiscardOldest=True,
                                                               Filter=trigger)
            requests.append(item)
            self._handles[handle] = target
        results = await self._subscription.create_monitored_items(requests)
        bad = [(node, r) for node, r in zip(self.nodes_, results) if isinstance(r, ua.StatusCode)]
        if bad:
            raise ConnectionError(f"The OPC UA server at {self.url} refused {len(bad)} of {len(results)} nodes, "
                                  f"first {bad[0][0]!r}: {bad[0][1].name}")

    def datachange_notification(self, node, val, data) -> None:
        """asyncua's callback (in the loop thread): queue the change as a record."""
        asset, port = self._handles[data.monitored_item.ClientHandle]
        value = data.monitored_item.Value
        good = value.StatusCode is None or value.StatusCode.is_good()
        stamp = None
        if self.timestamps != "arrival":
            moment = value.SourceTimestamp if self.timestamps == "source" else value.ServerTimestamp
            if moment is not None:
                if moment.tzinfo is None:
                    moment = moment.replace(tzinfo=timezone.utc)
                stamp = (moment - self.epoch_).total_seconds()
        self._queue.append(Record(stamp, asset, {port: val if good else None}))
        self._ready.set()

    def status_change_notification(self, status) -> None:
        """asyncua's callback on a subscription status change (the server closed it, a timeout)."""
        log.warning("OPC UA source %s: subscription status %s", self.url, status)

    def poll(self, timeout: float) -> list[Record]:
        """The changes received so far, waiting at most ``timeout`` [s] for the first one."""
        if not self._queue:
            self._ready.wait(timeout)
        self._ready.clear()
        pop = self._queue.popleft
        return [pop() for _ in range(len(self._queue))]

    def close(self) -> None:
        """Delete the subscription, disconnect and stop the loop thread."""
        loop = getattr(self, "_loop", None)
        if loop is None:
            return
        client = getattr(self, "_client", None)
        if client is not None:
            try:
                self._run(client.disconnect(), self.timeout)
            except Exception as exc:  # a server already gone cannot spoil the close
                log.info("OPC UA source %s: disconnect failed (%s)", self.url, exc)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(self.timeout)
        loop.close()
        self._loop = None


_URL_KEYS = {"epoch": str, "timestamps": str, "interval": float, "queue_size": int, "timeout": float}


def source_from_url(url: str, mapping: Mapping[str, Any], **kw: Any) -> OPCUASource:
    """An :class:`OPCUASource` from ``opc.tcp://HOST:PORT[/path][?epoch=...&timestamps=...]`` and a node mapping.

    Query options (taken off the URL before it goes to the server):
    ``epoch`` (ISO 8601), ``timestamps``, ``interval`` [s], ``queue_size``,
    ``timeout`` [s]; ``kw`` override them.

    Examples
    --------
    >>> s = source_from_url("opc.tcp://127.0.0.1:4840/plant?epoch=2026-01-01T00:00:00Z", {"p1": {"u": "ns=2;i=7"}})
    >>> s.url, s.timestamps, s.epoch
    ('opc.tcp://127.0.0.1:4840/plant', 'source', '2026-01-01T00:00:00Z')
    """
    if not url.startswith("opc.tcp://"):
        raise ValueError(f"An OPC UA source URL starts with 'opc.tcp://'. Got {url!r}.")
    parts = urlsplit(url)
    options: dict[str, Any] = {}
    for key, text in parse_qsl(parts.query, keep_blank_values=True):
        if key not in _URL_KEYS:
            raise ValueError(f"Unknown option {key!r} in the OPC UA URL {url!r}; valid: {', '.join(_URL_KEYS)}.")
        try:
            options[key] = _URL_KEYS[key](text)
        except ValueError:
            raise ValueError(f"The option {key!r} in the OPC UA URL {url!r} must be {_URL_KEYS[key].__name__}. "
                             f"Got {text!r}.") from None
    return OPCUASource(urlunsplit(parts._replace(query="")), mapping, **{**options, **kw})
