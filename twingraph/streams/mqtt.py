"""MQTT transport (paho-mqtt 2.x): a subscriber :class:`MQTTSource` and a publisher :class:`MQTTSink`.

Topics follow a template: ``plant/{asset}/{port}`` subscribes to
``plant/+/+`` and reads asset and port back from each topic; a sink template
``twin/{asset}/{port}`` publishes one message per asset and output port,
``twin/{asset}`` one JSON document per asset and tick.

The source keeps a persistent session (a fixed client id, MQTT 3.1.1
``clean_session=False`` or MQTT 5 ``clean_start=False`` with a session
expiry), subscribes at QoS 1 and acknowledges messages by hand in
:meth:`MQTTSource.commit`, which the service calls once the records are in its
journal: messages published while the service is down, or polled but not yet
journaled when it died, are delivered again when it reconnects.

Speed: paho reads a packet with three ``recv`` calls after a ``select``
(about 25 µs a message in CPython), and ``publish`` wakes its network thread
for every message. So the client here reads its socket in large chunks and
takes QoS 0 and 1 PUBLISH packets out of the stream itself, leaving every
other packet (CONNACK, SUBACK, PINGRESP, QoS 2 flows) to paho; acknowledgements
and QoS 0 publications go out as one write per batch. This uses two paho 2.x
internals (``Client._create_socket``, ``Client._packet_queue``); a TLS or
websocket connection takes paho's plain path.
"""

import functools
import hashlib
import json
import logging
import math
import re
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import numpy as np

from .._optional import require
from .records import Record, Sink, Source

log = logging.getLogger("twingraph.streams")

PUBLISH, PUBACK = 0x30, 0x40
DEFAULT_PORT, TLS_PORT = 1883, 8883
_PLACEHOLDER = re.compile(r"\{(asset|port)\}")


class TopicTemplate:
    """A topic template such as ``plant/{asset}/{port}``: its subscription, and topics parsed back or formatted.

    A placeholder fills one topic level, alone or with literal text around it
    (``site1/pump-{asset}/{port}``); ``+`` and ``#`` are not allowed in the
    template because the placeholders stand for them.

    Examples
    --------
    >>> t = TopicTemplate("plant/{asset}/{port}")
    >>> t.subscription
    'plant/+/+'
    >>> t.parse("plant/p7/y")
    ('p7', 'y')
    >>> t.format("p7", "u")
    'plant/p7/u'
    """

    def __init__(self, template: str, need_port: bool = True):
        self.template = template
        if not template or "+" in template or "#" in template:
            raise ValueError(f"The MQTT topic template must be non-empty and hold no '+' or '#'. Got {template!r}.")
        names = _PLACEHOLDER.findall(template)
        required = ("asset", "port") if need_port else ("asset",)
        if any(names.count(name) != 1 for name in required) or len(names) != len(set(names)):
            what = "'{asset}' and '{port}'" if need_port else "'{asset}' (and '{port}' at most once)"
            raise ValueError(f"The MQTT topic template must hold {what} once each. Got {template!r}.")
        if "{" in _PLACEHOLDER.sub("", template) or "}" in _PLACEHOLDER.sub("", template):
            raise ValueError(f"The MQTT topic template has a placeholder other than {{asset}} and {{port}}: "
                             f"{template!r}.")
        self.has_port = "port" in names
        levels = template.split("/")
        self.subscription = "/".join("+" if _PLACEHOLDER.search(level) else level for level in levels)
        parts = _PLACEHOLDER.split(template)  # literal, name, literal, name, literal
        pattern = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)" for i, part in enumerate(parts))
        self._regex = re.compile(pattern + r"\Z")
        self._parsed: dict[bytes, tuple[str, str] | None] = {}

    def parse(self, topic: str | bytes) -> tuple[str, str] | None:
        """``(asset, port)`` of ``topic``, or ``None`` where it does not fit the template."""
        key = topic if isinstance(topic, bytes) else topic.encode()
        try:
            return self._parsed[key]
        except KeyError:
            pass
        try:
            match = self._regex.match(key.decode("utf-8"))
        except UnicodeDecodeError:
            match = None
        found = (match["asset"], match["port"] if self.has_port else "") if match else None
        if len(self._parsed) >= 1 << 16:  # topics from a hostile publisher must not grow the cache for ever
            self._parsed.clear()
        self._parsed[key] = found
        return found

    def format(self, asset: str, port: str = "") -> str:
        """The topic of ``asset`` (and ``port``, where the template has one)."""
        return self.template.replace("{asset}", asset).replace("{port}", port)


def _paho():
    return require("paho.mqtt.client", extra="streams", purpose="the MQTT source and sink")


class _SplitSocket:
    """A TCP socket read in large chunks, from which QoS 0/1 PUBLISH packets go to ``deliver``; paho reads the rest."""

    def __init__(self, sock: socket.socket, deliver, mqtt5: bool):
        self._sock, self._deliver, self._mqtt5 = sock, deliver, mqtt5
        self._raw = bytearray()  # bytes not yet split into packets
        self._out = bytearray()  # whole packets for paho
        self._pos = 0

    def recv(self, bufsize: int) -> bytes:
        while self._pos >= len(self._out):
            data = self._sock.recv(1 << 18)  # BlockingIOError when empty: paho waits in select
            if not data:
                return b""
            self._out, self._pos = bytearray(), 0
            self._split(data)
        end = self._pos + bufsize
        chunk = bytes(self._out[self._pos:end])
        self._pos = min(end, len(self._out))
        return chunk

    def pending(self) -> int:
        """Bytes paho may read without waiting (paho skips ``select`` while there are some)."""
        return len(self._out) - self._pos

    def _split(self, data: bytes) -> None:
        self._raw += data
        buf, i, n = self._raw, 0, len(self._raw)
        deliver = self._deliver
        while n - i >= 2:
            length, shift, j, complete = 0, 0, i + 1, False
            while j < n and j - i <= 4:
                byte = buf[j]
                j += 1
                length |= (byte & 127) << shift
                shift += 7
                if not byte & 128:
                    complete = True
                    break
            if not complete or j + length > n:
                break  # an incomplete packet: wait for more
            start, end = j, j + length
            command = buf[i]
            qos = (command >> 1) & 3
            if command & 0xF0 == PUBLISH and qos < 2:
                size = (buf[start] << 8) | buf[start + 1]
                topic = bytes(buf[start + 2:start + 2 + size])
                p, mid = start + 2 + size, 0
                if qos:
                    mid = (buf[p] << 8) | buf[p + 1]
                    p += 2
                if self._mqtt5:
                    props, shift = 0, 0
                    while True:
                        byte = buf[p]
                        p += 1
                        props |= (byte & 127) << shift
                        shift += 7
                        if not byte & 128:
                            break
                    p += props
                deliver(topic, bytes(buf[p:end]), mid, qos)
            else:
                self._out += buf[i:end]
            i = end
        del buf[:i]

    def __getattr__(self, name: str):
        return getattr(self._sock, name)


@functools.cache
def _client_class():
    mqtt = _paho()

    class Client(mqtt.Client):
        """paho's client, reading PUBLISH packets through :class:`_SplitSocket` and writing batches in one go."""

        deliver = None  # set by the source: (topic, payload, mid, qos) -> None

        def _create_socket(self):
            sock = super()._create_socket()
            if self.deliver is None or type(sock) is not socket.socket:  # TLS and websockets: paho's own path
                return sock
            return _SplitSocket(sock, self.deliver, self._protocol == mqtt.MQTTv5)

        def send_raw(self, command: int, data: bytes) -> bool:
            """Queue ``data`` (whole packets of type ``command``) for one write; False when not connected."""
            if not self.is_connected() or not data:
                return False
            self._packet_queue(command, data, 0, 0, mqtt.MQTTMessageInfo(0))
            return True

    return Client


def _connect_args(mqtt, version: str, clean: bool, session_expiry: float):
    """Client and connect keyword arguments of a protocol version and a session choice."""
    if version == "5":
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 0 if clean else int(session_expiry)
        return {"protocol": mqtt.MQTTv5}, {"clean_start": clean, "properties": props}
    if version == "3.1.1":
        return {"protocol": mqtt.MQTTv311, "clean_session": clean}, {}
    raise ValueError(f"The 'version' parameter of the MQTT transport must be '3.1.1' or '5'. Got {version!r}.")


def _connect(client, host: str, port: int, keepalive: float, connect_kw: dict, timeout: float, ready: threading.Event,
             what: str) -> None:
    """Connect and start paho's network thread; wait until ``ready`` (set by the connect callbacks)."""
    client.reconnect_delay_set(min_delay=1, max_delay=5)
    try:
        client.connect(host, port, keepalive=round(keepalive), **connect_kw)
    except OSError as exc:
        raise ConnectionError(f"Cannot connect the MQTT {what} to the broker at {host}:{port}: {exc}") from exc
    client.loop_start()
    if not ready.wait(timeout):
        client.loop_stop()
        raise ConnectionError(f"The MQTT broker at {host}:{port} did not accept the {what} within {timeout:g} s")


def _drain(client, timeout: float) -> bool:
    """Wait until paho has written every queued packet; False after ``timeout`` [s]."""
    deadline = time.monotonic() + timeout
    while client.want_write():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


class MQTTSource(Source):
    """Records from MQTT messages on the topics of a template, acknowledged after the service journaled them.

    Parameters
    ----------
    host : str
        Broker host name or address.
    port : int
        Broker TCP port.
    template : str
        Topic template with ``{asset}`` and ``{port}``, each one topic level
        (or part of one); the subscription has ``+`` in their place.
    qos : int
        Subscription QoS: 0 (no acknowledgement, no persistent queue), 1
        (default: at least once) or 2.
    client_id : str or None
        Fixed client id of the persistent session; default
        ``twingraph-<hash of host, port and template>``, so a restarted service
        finds its session. Two processes must not share one.
    version : str
        MQTT protocol version, ``"3.1.1"`` or ``"5"``.
    clean : bool
        Start without a persistent session (messages sent while the service is
        down are lost).
    session_expiry : float
        How long the broker keeps the session of a disconnected service [s]
        (MQTT 5; an MQTT 3.1.1 session lasts until the broker drops it).
    keepalive : float
        Keepalive interval [s].
    connect_timeout : float
        How long :meth:`open` waits for the subscription to be accepted [s].
    username, password : str or None
        Broker credentials.
    tls : bool
        Connect over TLS, checking the broker's certificate against the
        system's certificate authorities (``mqtts://`` URLs).

    Notes
    -----
    A record is one message: ``Record(None, asset, {port: payload bytes})``;
    the payload is decoded by the service's tick assembler (a number, an
    array, ``null`` or ``{"time": t, "value": v}``, whose time is the
    record's). MQTT carries no timestamp, so a message without a time is
    stamped with its arrival (``clock="wall"``). A topic that fits the
    subscription but not the template (``pump-{asset}`` receiving ``valve3``)
    becomes a record of the asset named by the whole topic, which the service
    counts as unknown. With ``qos=1`` the broker redelivers every message not
    acknowledged when the connection dropped; the assembler absorbs the
    duplicates. The broker's own limits decide what happens to a long outage:
    mosquitto keeps ``max_queued_messages`` per session (default 1000) and
    drops the rest, so set it to what an outage of the longest expected
    downtime produces, and ``max_inflight_messages 0`` so that acknowledging
    in batches does not throttle delivery.
    """

    def __init__(self, host: str = "localhost", port: int = DEFAULT_PORT, template: str = "plant/{asset}/{port}",
                 qos: int = 1, client_id: str | None = None, version: str = "3.1.1", clean: bool = False,
                 session_expiry: float = 86400.0, keepalive: float = 30.0, connect_timeout: float = 10.0,
                 username: str | None = None, password: str | None = None, tls: bool = False):
        self.host = host
        self.port = port
        self.template = template
        self.qos = qos
        self.client_id = client_id
        self.version = version
        self.clean = clean
        self.session_expiry = session_expiry
        self.keepalive = keepalive
        self.connect_timeout = connect_timeout
        self.username = username
        self.password = password
        self.tls = tls

    @property
    def session_id(self) -> str:
        """The client id used: ``client_id`` or the default derived from host, port and template."""
        if self.client_id:
            return self.client_id
        digest = hashlib.sha1(f"{self.host}:{self.port}/{self.template}".encode()).hexdigest()[:12]
        return f"twingraph-{digest}"

    @property
    def subscribed(self) -> bool:
        """True once :meth:`open` has the broker's confirmation of the subscription."""
        return hasattr(self, "client_") and self._subscribed.is_set()

    def open(self, position: Any = None) -> None:
        """Connect, subscribe and wait until the broker confirmed the subscription; ``position`` is not used."""
        if self.qos not in (0, 1, 2):
            raise ValueError(f"The 'qos' parameter of MQTTSource must be 0, 1 or 2. Got {self.qos!r}.")
        mqtt = _paho()
        self.topics_ = TopicTemplate(self.template)
        self._queue: deque = deque()
        self._ready = threading.Event()
        self._subscribed = threading.Event()
        self._barrier = threading.Event()
        self._polled: list[tuple[int, int]] = []  # (mid, qos) returned by poll, to acknowledge at commit
        client_kw, connect_kw = _connect_args(mqtt, self.version, self.clean, self.session_expiry)
        client = self.client_ = _client_class()(mqtt.CallbackAPIVersion.VERSION2, client_id=self.session_id,
                                                manual_ack=True, **client_kw)
        client.deliver = self._deliver
        client.on_message = self._on_message
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_unsubscribe = lambda *args: self._barrier.set()
        if self.username is not None:
            client.username_pw_set(self.username, self.password)
        if self.tls:
            client.tls_set()
        _connect(client, self.host, self.port, self.keepalive, connect_kw, self.connect_timeout, self._subscribed,
                 f"source (client id {self.session_id!r})")

    def _on_connect(self, client, userdata, flags, reason, properties) -> None:
        if reason.is_failure:
            log.warning("MQTT source: the broker at %s:%s refused the connection: %s", self.host, self.port, reason)
            return
        client.subscribe(self.topics_.subscription, qos=self.qos)

    def _on_subscribe(self, client, userdata, mid, reasons, properties) -> None:
        if any(reason.is_failure for reason in reasons):
            log.warning("MQTT source: the broker refused the subscription %r: %s", self.topics_.subscription,
                        reasons)
            return
        self._subscribed.set()

    def _on_disconnect(self, client, userdata, flags, reason, properties) -> None:
        if reason.is_failure:
            log.warning("MQTT source: lost the broker at %s:%s (%s); reconnecting", self.host, self.port, reason)

    def _deliver(self, topic: bytes, payload: bytes, mid: int, qos: int) -> None:
        found = self.topics_.parse(topic)
        if found is None:
            found = (topic.decode("utf-8", "replace"), "")
        self._queue.append((Record(None, found[0], {found[1]: payload}), mid, qos))
        self._ready.set()

    def _on_message(self, client, userdata, message) -> None:
        self._deliver(message.topic.encode(), message.payload, message.mid, message.qos)

    def poll(self, timeout: float) -> list[Record]:
        """The messages received so far, waiting at most ``timeout`` [s] for the first one."""
        queue = self._queue
        if not queue:
            self._ready.wait(timeout)
        self._ready.clear()
        records, polled, pop = [], self._polled, queue.popleft
        for _ in range(len(queue)):
            record, mid, qos = pop()
            records.append(record)
            if qos:
                polled.append((mid, qos))
        return records

    def commit(self) -> None:
        """Acknowledge to the broker every QoS 1/2 message returned by :meth:`poll` so far."""
        polled, self._polled = self._polled, []
        once = [mid for mid, qos in polled if qos == 1]
        if once:
            self.client_.send_raw(PUBACK, b"".join(struct.pack("!BBH", PUBACK, 2, mid) for mid in once))
        for mid, qos in polled:
            if qos == 2:
                self.client_.ack(mid, qos)

    def close(self) -> None:
        """Disconnect; the broker keeps the session (and queues messages) unless ``clean``."""
        client = getattr(self, "client_", None)
        if client is None:
            return
        if self._polled:
            log.info("MQTT source: closing with %d messages not acknowledged; the broker will send them again",
                     len(self._polled))
        if client.is_connected():
            # The broker answers packets in order: its UNSUBACK (of a topic never subscribed) confirms that it
            # has taken the acknowledgements sent before, which a quick close could otherwise lose.
            self._barrier.clear()
            client.unsubscribe(f"{self.topics_.subscription}/twingraph-barrier")
            self._barrier.wait(self.connect_timeout)
        client.disconnect()
        client.loop_stop()
        del self.client_


def encode_value(value: Any) -> Any:
    """A value of one asset as JSON-able Python: NaN → ``None``, ±inf → ``"inf"``/``"-inf"``, arrays → lists.

    Floats stay Python floats, which :mod:`json` writes with the shortest
    representation that reads back to the same number (full precision).

    Examples
    --------
    >>> import numpy as np
    >>> encode_value(np.array([0.1, np.nan, -np.inf]))
    [0.1, None, '-inf']
    >>> encode_value(np.True_)
    True
    """
    plain = value.tolist() if isinstance(value, np.ndarray | np.generic) else value
    return _finite(plain)


def _finite(plain: Any) -> Any:
    if isinstance(plain, float):
        if math.isfinite(plain):
            return plain
        return None if math.isnan(plain) else ("inf" if plain > 0 else "-inf")
    if isinstance(plain, list):
        return [_finite(item) for item in plain]
    return plain


_NONFINITE = {"nan": "null", "inf": '"inf"', "-inf": '"-inf"'}  # repr of a float that is not finite → JSON


def _texts(array: np.ndarray) -> list[str]:
    """The JSON text of each asset's value, row ``i`` of ``array`` ``(B, *shape)``: what :func:`encode_value` gives.

    Written element by element with ``repr`` (the JSON of a float), which is
    several times faster than a ``json.dumps`` per asset for a large fleet.

    >>> _texts(np.array([[0.5, np.nan], [np.inf, 2.0]]))
    ['[0.5, null]', '["inf", 2.0]']
    """
    if array.ndim > 2 or array.dtype.kind not in "biuf":
        return [json.dumps(encode_value(row)) for row in array]
    flat = array.reshape(-1)
    kind = array.dtype.kind
    if kind == "b":
        items = ["true" if x else "false" for x in flat.tolist()]
    elif kind == "f":
        items = list(map(repr, flat.tolist()))
        for k in np.flatnonzero(~np.isfinite(flat)).tolist():
            items[k] = _NONFINITE[items[k]]
    else:
        items = list(map(str, flat.tolist()))
    if array.ndim == 1:
        return items
    n = array.shape[1]
    if n == 1:
        return [f"[{item}]" for item in items]
    return ["[" + ", ".join(items[i:i + n]) + "]" for i in range(0, len(items), n)]


def _publish_packet(topic: bytes, payload: bytes, retain: bool) -> bytes:
    body = len(topic).to_bytes(2, "big") + topic + payload
    n, header = len(body), bytearray((PUBLISH | retain,))
    while True:
        n, byte = n >> 7, n & 127
        header.append(byte | 128 if n else byte)
        if not n:
            return bytes(header) + body


class MQTTSink(Sink):
    """Each tick's results published to MQTT: one message per asset and port, or one JSON document per asset.

    Parameters
    ----------
    host : str
        Broker host name or address.
    port : int
        Broker TCP port.
    template : str
        ``twin/{asset}/{port}``: a message ``{"tick": k, "time": t, "value": v}``
        per asset and output port; ``twin/{asset}`` (no ``{port}``): one
        document ``{"tick": k, "time": t, "values": {port: v, ...}}`` per asset.
    qos : int
        Publication QoS (0, 1 or 2); QoS 0 messages of one tick go out in one write.
    retain : bool
        Ask the broker to keep the newest message of each topic for new subscribers.
    client_id : str or None
        Client id; default: one chosen by the broker.
    version : str
        MQTT protocol version, ``"3.1.1"`` or ``"5"``.
    keepalive, connect_timeout : float
        Keepalive interval and connection wait [s].
    username, password : str or None
        Broker credentials.
    tls : bool
        Connect over TLS (``mqtts://`` URLs).

    Notes
    -----
    Values are JSON with full precision (Python's shortest round-trip float
    representation, so a subscriber reads back the very same doubles). JSON
    has no NaN or infinity: NaN (missing) is written ``null``, +inf and -inf
    as the strings ``"inf"`` and ``"-inf"`` (``float()`` reads them back); an
    RUL block reports ``"inf"`` until its alarm arms it. Booleans are
    ``true``/``false``, vector ports lists. The sink connects on the first
    :meth:`write`; results of a tick when the broker is unreachable are
    dropped with a warning (QoS 0) or queued by paho until it reconnects.
    """

    def __init__(self, host: str = "localhost", port: int = DEFAULT_PORT, template: str = "twin/{asset}/{port}",
                 qos: int = 0, retain: bool = False, client_id: str | None = None, version: str = "3.1.1",
                 keepalive: float = 30.0, connect_timeout: float = 10.0, username: str | None = None,
                 password: str | None = None, tls: bool = False):
        self.host = host
        self.port = port
        self.template = template
        self.qos = qos
        self.retain = retain
        self.client_id = client_id
        self.version = version
        self.keepalive = keepalive
        self.connect_timeout = connect_timeout
        self.username = username
        self.password = password
        self.tls = tls

    def open(self) -> None:
        """Connect to the broker (done by the first :meth:`write` where not called before)."""
        if self.qos not in (0, 1, 2):
            raise ValueError(f"The 'qos' parameter of MQTTSink must be 0, 1 or 2. Got {self.qos!r}.")
        mqtt = _paho()
        self.topics_ = TopicTemplate(self.template, need_port=False)
        self._topic_cache: dict[tuple[str, str], bytes] = {}
        self._dropped = 0
        connected = threading.Event()
        client_kw, connect_kw = _connect_args(mqtt, self.version, True, 0.0)
        client = self.client_ = _client_class()(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id or "",
                                                **client_kw)
        client.max_inflight_messages_set(0)
        client.max_queued_messages_set(0)
        client.on_connect = lambda client, userdata, flags, reason, properties: (
            reason.is_failure or connected.set())
        if self.username is not None:
            client.username_pw_set(self.username, self.password)
        if self.tls:
            client.tls_set()
        _connect(client, self.host, self.port, self.keepalive, connect_kw, self.connect_timeout, connected, "sink")

    def _topic(self, asset: str, port: str) -> bytes:
        try:
            return self._topic_cache[asset, port]
        except KeyError:
            pass
        if any(c in asset for c in "/+#") or any(c in port for c in "+#"):
            raise ValueError(f"Cannot publish results of asset {asset!r}, port {port!r} on MQTT: names in a topic "
                             "may not hold '/', '+' or '#'.")
        topic = self._topic_cache[asset, port] = self.topics_.format(asset, port).encode()
        return topic

    def write(self, tick: int, time: float, assets: Sequence[str], values: Mapping[str, np.ndarray]) -> None:
        """Publish tick ``tick`` (at ``time`` [s]) of every asset."""
        if not hasattr(self, "client_"):
            self.open()
        head = f'{{"tick":{int(tick)},"time":{json.dumps(float(time))},'
        texts = {port: _texts(np.asarray(array)) for port, array in values.items()}
        if self.topics_.has_port:
            messages = [(self._topic(asset, port), f'{head}"value":{text}}}'.encode())
                        for port, column in texts.items() for asset, text in zip(assets, column)]
        else:
            keys = [json.dumps(port) + ":" for port in texts]
            columns = list(texts.values())
            messages = [(self._topic(asset, ""),
                         (head + '"values":{' + ",".join(key + column[i] for key, column in zip(keys, columns))
                          + "}}").encode())
                        for i, asset in enumerate(assets)]
        self._send(messages)

    def _send(self, messages: list[tuple[bytes, bytes]]) -> None:
        client = self.client_
        if self.qos == 0:
            data = b"".join(_publish_packet(topic, payload, self.retain) for topic, payload in messages)
            if not client.send_raw(PUBLISH, data):
                self._dropped += len(messages)
                log.warning("MQTT sink: not connected to %s:%s; dropped %d messages (%d so far)", self.host,
                            self.port, len(messages), self._dropped)
            return
        for topic, payload in messages:
            self._last_info = client.publish(topic.decode(), payload, qos=self.qos, retain=self.retain)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued message is written (and, QoS 1/2, acknowledged); False on timeout [s]."""
        client = getattr(self, "client_", None)
        if client is None:
            return True
        deadline = time.monotonic() + timeout
        if not _drain(client, timeout):
            return False
        info = getattr(self, "_last_info", None)
        if info is not None:
            info.wait_for_publish(max(deadline - time.monotonic(), 0.0))
            return info.is_published()
        return True

    def close(self) -> None:
        """Send what is queued, then disconnect."""
        if hasattr(self, "client_"):
            self.flush()
            self.client_.disconnect()
            self.client_.loop_stop()
            del self.client_


_SOURCE_KEYS = {"qos": int, "client_id": str, "version": str, "clean": "bool", "session_expiry": float,
                "keepalive": float, "connect_timeout": float}
_SINK_KEYS = {"qos": int, "retain": "bool", "client_id": str, "version": str, "keepalive": float,
              "connect_timeout": float}


def _parse_url(url: str, keys: Mapping[str, Any], what: str) -> dict[str, Any]:
    """Constructor arguments from ``mqtt[s]://[user:password@]HOST[:PORT]/TEMPLATE?key=value&...``."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ValueError(f"An MQTT {what} URL starts with 'mqtt://' (or 'mqtts://' for TLS). Got {url!r}.")
    template = unquote(parts.path[1:])
    if not parts.hostname or not template:
        raise ValueError(f"An MQTT {what} URL is mqtt://HOST:PORT/TEMPLATE (for example "
                         f"mqtt://localhost:1883/plant/{{asset}}/{{port}}?qos=1). Got {url!r}.")
    tls = parts.scheme == "mqtts"
    kwargs: dict[str, Any] = {"host": parts.hostname, "port": parts.port or (TLS_PORT if tls else DEFAULT_PORT),
                              "template": template, "tls": tls}
    if parts.username is not None:
        kwargs["username"], kwargs["password"] = unquote(parts.username), unquote(parts.password or "")
    for key, text in parse_qsl(parts.query, keep_blank_values=True):
        kind = keys.get(key)
        if kind is None:
            raise ValueError(f"Unknown option {key!r} in the MQTT {what} URL {url!r}; valid: {', '.join(keys)}.")
        try:
            if kind == "bool":
                if text.lower() not in ("1", "0", "true", "false", "yes", "no"):
                    raise ValueError(text)
                kwargs[key] = text.lower() in ("1", "true", "yes")
            else:
                kwargs[key] = kind(text)
        except ValueError:
            raise ValueError(f"The option {key!r} in the MQTT {what} URL {url!r} must be "
                             f"{'a boolean' if kind == 'bool' else kind.__name__}. Got {text!r}.") from None
    return kwargs


def source_from_url(url: str, **kw: Any) -> MQTTSource:
    """An :class:`MQTTSource` from ``mqtt://HOST:PORT/TEMPLATE?qos=1&client_id=...``; ``kw`` override the URL.

    Options: ``qos``, ``client_id``, ``version`` (3.1.1 or 5), ``clean``,
    ``session_expiry`` [s], ``keepalive`` [s], ``connect_timeout`` [s];
    credentials as ``mqtt://user:password@host``; ``mqtts://`` for TLS
    (default port 8883).

    Examples
    --------
    >>> s = source_from_url("mqtt://127.0.0.1:1884/plant/{asset}/{port}?qos=1&client_id=svc-a")
    >>> s.host, s.port, s.template, s.qos, s.client_id
    ('127.0.0.1', 1884, 'plant/{asset}/{port}', 1, 'svc-a')
    """
    return MQTTSource(**{**_parse_url(url, _SOURCE_KEYS, "source"), **kw})


def sink_from_url(url: str, **kw: Any) -> MQTTSink:
    """An :class:`MQTTSink` from ``mqtt://HOST:PORT/TEMPLATE?qos=0&retain=false``; ``kw`` override the URL.

    Examples
    --------
    >>> s = sink_from_url("mqtt://localhost/twin/{asset}")
    >>> s.port, s.template, s.qos
    (1883, 'twin/{asset}', 0)
    """
    return MQTTSink(**{**_parse_url(url, _SINK_KEYS, "sink"), **kw})
