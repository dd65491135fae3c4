"""A real mosquitto broker on a free localhost port, and the plain paho clients the stream tests talk to it with."""

import getpass
import json
import shutil
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import numpy as np

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
WAIT = 10.0  # longest wait for a broker, a connection or a message [s]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mosquitto:
    """A mosquitto process with its own config and persistence folder under ``folder``; :meth:`stop` kills it."""

    def __init__(self, folder: Path, port: int | None = None):
        self.folder = Path(folder)
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.process: subprocess.Popen | None = None

    def start(self) -> "Mosquitto":
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / "mosquitto.conf"
        config.write_text(
            f"listener {self.port} {self.host}\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {self.folder}/\n"
            "max_queued_messages 2000000\n"
            "max_queued_bytes 0\n"
            "max_inflight_messages 0\n"
            f"user {getpass.getuser()}\n"  # as root, stay root (the folder is ours), instead of user 'mosquitto'
        )
        self.log = open(self.folder / "mosquitto.log", "ab")  # noqa: SIM115 - closed by stop()
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(config)], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + WAIT
        while True:
            try:
                socket.create_connection((self.host, self.port), timeout=0.5).close()
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    text = (self.folder / "mosquitto.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"mosquitto did not start on port {self.port}:\n{text}") from None
                time.sleep(0.02)

    def url(self, template: str, **query) -> str:
        """``mqtt://127.0.0.1:PORT/TEMPLATE?key=value...``."""
        tail = "&".join(f"{k}={v}" for k, v in query.items())
        return f"mqtt://{self.host}:{self.port}/{template}" + (f"?{tail}" if tail else "")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(WAIT)
        if self.process is not None:
            self.log.close()
        self.process = None


def sensor_messages(data: dict[str, np.ndarray], assets: list[str], dt: float, template: str, ticks=None):
    """``data[port]`` ``(steps, assets, *shape)`` as ``(topic, {"time", "value"} payload)``, tick by tick."""
    steps = len(next(iter(data.values())))
    for k in range(steps) if ticks is None else ticks:
        for port, values in data.items():
            for asset, row in zip(assets, values[k].tolist()):
                yield template.format(asset=asset, port=port), json.dumps({"time": k * dt, "value": row}).encode()


def _client(client_id: str = "", **kw):
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, **kw)
    client.max_inflight_messages_set(0)
    client.max_queued_messages_set(0)
    return client


class Collector:
    """A paho subscriber keeping every message received on ``topic`` (a filter with ``+``/``#``)."""

    def __init__(self, broker: Mosquitto, topic: str, qos: int = 1):
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Condition()
        subscribed = threading.Event()
        self.client = _client()
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.on_connect = lambda client, *args: client.subscribe(topic, qos)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        if not subscribed.wait(WAIT):
            raise TimeoutError(f"no subscription to {topic!r} on port {broker.port}")

    def _on_message(self, client, userdata, message) -> None:
        with self._lock:
            self.messages.append((message.topic, message.payload))
            self._lock.notify_all()

    def wait_for(self, n: int, timeout: float = WAIT, done=None) -> list[tuple[str, bytes]]:
        """The messages once there are ``n`` (or ``done(messages)`` holds); TimeoutError after ``timeout`` [s]."""
        with self._lock:
            ok = self._lock.wait_for(lambda: (done(self.messages) if done else len(self.messages) >= n), timeout)
            if not ok:
                raise TimeoutError(f"received {len(self.messages)} messages, waited for {n}")
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Publisher:
    """A paho publisher; :meth:`sensors` sends a fleet's recording message by message."""

    def __init__(self, broker: Mosquitto, qos: int = 1):
        self.qos = qos
        connected = threading.Event()
        self.client = _client()
        self.client.on_connect = lambda *args: connected.set()
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        if not connected.wait(WAIT):
            raise TimeoutError(f"no connection to port {broker.port}")
        self.last = None

    def send(self, topic: str, payload: bytes | str) -> None:
        self.last = self.client.publish(topic, payload, qos=self.qos)

    def sensors(self, data: dict[str, np.ndarray], assets: list[str], dt: float, template: str, ticks=None) -> int:
        """Publish :func:`sensor_messages` one by one; how many."""
        count = 0
        for topic, payload in sensor_messages(data, assets, dt, template, ticks):
            self.send(topic, payload)
            count += 1
        return count

    def flush(self, timeout: float = WAIT) -> None:
        """Wait until the broker acknowledged the last message (QoS 1) or it was written (QoS 0)."""
        if self.last is not None:
            self.last.wait_for_publish(timeout)
        deadline = time.monotonic() + timeout
        while self.client.want_write() and time.monotonic() < deadline:
            time.sleep(0.005)

    def close(self) -> None:
        self.flush()
        self.client.disconnect()
        self.client.loop_stop()


class RawPublisher:
    """A minimal MQTT 3.1.1 publisher on a plain socket, for volume: PUBLISH packets written in large batches.

    paho's ``publish`` costs about 70 µs a message on a busy machine, more than
    the service it feeds; this one about 2 µs. QoS 1 messages are counted as
    acknowledged when the broker's PUBACKs come back (:meth:`flush` waits for all).
    """

    def __init__(self, broker: Mosquitto, qos: int = 1, client_id: str = "raw-publisher"):
        self.qos, self.sent, self.acked, self._mid = qos, 0, 0, 0
        self.sock = socket.create_connection((broker.host, broker.port), timeout=WAIT)
        name = client_id.encode()
        body = b"\x00\x04MQTT\x04\x02" + struct.pack("!H", 60) + struct.pack("!H", len(name)) + name
        self.sock.sendall(_packet(0x10, body))
        if self.sock.recv(4)[:2] != b"\x20\x02":
            raise RuntimeError("no CONNACK from the broker")
        self._acked = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        pending = b""
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except OSError:
                return
            if not data:
                return
            pending += data
            whole = len(pending) - len(pending) % 4  # the broker sends nothing but 4-byte PUBACKs here
            with self._acked:
                self.acked += whole // 4
                self._acked.notify_all()
            pending = pending[whole:]

    def publish(self, messages, batch: int = 2000) -> int:
        """Publish ``(topic, payload)`` pairs in writes of ``batch`` messages; how many."""
        flags, chunk, count = 0x30 | (self.qos << 1), [], 0
        for topic, payload in messages:
            name = topic.encode()
            head = struct.pack("!H", len(name)) + name
            if self.qos:
                self._mid = self._mid % 65535 + 1
                head += struct.pack("!H", self._mid)
            chunk.append(_packet(flags, head + payload))
            count += 1
            if len(chunk) >= batch:
                self.sock.sendall(b"".join(chunk))
                chunk = []
        if chunk:
            self.sock.sendall(b"".join(chunk))
        self.sent += count
        return count

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until the broker acknowledged every QoS 1 message."""
        if self.qos:
            with self._acked:
                if not self._acked.wait_for(lambda: self.acked >= self.sent, timeout):
                    raise TimeoutError(f"{self.sent - self.acked} of {self.sent} messages not acknowledged")

    def close(self) -> None:
        self.flush()
        self.sock.sendall(b"\xe0\x00")
        self.sock.close()


def _packet(flags: int, body: bytes) -> bytes:
    n, head = len(body), bytearray((flags,))
    while True:
        n, byte = n >> 7, n & 127
        head.append(byte | 128 if n else byte)
        if not n:
            return bytes(head) + body


class RawSubscriber:
    """A minimal MQTT 3.1.1 subscriber on a plain socket, reading PUBLISH packets in bulk (QoS 1 ones acknowledged).

    :meth:`receive` hands each message to ``on_message(topic, payload)``; for
    volume measurements where paho's reader (about 25 µs a message) would be
    the bottleneck.
    """

    def __init__(self, host: str, port: int, topic: str, qos: int = 0, client_id: str = "raw-subscriber"):
        self.sock = socket.create_connection((host, port), timeout=WAIT)
        name, filt = client_id.encode(), topic.encode()
        self.sock.sendall(_packet(0x10, b"\x00\x04MQTT\x04\x02" + struct.pack("!HH", 60, len(name)) + name))
        self.sock.sendall(_packet(0x82, struct.pack("!HH", 1, len(filt)) + filt + bytes((qos,))))
        self._raw = b""
        self.connected = self.subscribed = False
        while not self.subscribed:
            self.receive(lambda topic, payload: None)

    def receive(self, on_message) -> int:
        """Read what the socket has (waiting up to its timeout); hand over every whole message; how many."""
        data = self.sock.recv(1 << 20)
        if not data:
            raise ConnectionError("the broker closed the connection")
        buf, i, n, acks, count = self._raw + data, 0, 0, [], 0
        n = len(buf)
        while n - i >= 2:
            length, shift, j = 0, 0, i + 1
            while j < n:
                byte = buf[j]
                j += 1
                length |= (byte & 127) << shift
                shift += 7
                if not byte & 128:
                    break
            else:
                break
            if j + length > n:
                break
            command = buf[i]
            if command & 0xF0 == 0x30:
                size = (buf[j] << 8) | buf[j + 1]
                p = j + 2 + size
                if command & 6:
                    acks.append(b"\x40\x02" + buf[p:p + 2])
                    p += 2
                on_message(buf[j + 2:j + 2 + size], buf[p:j + length])
                count += 1
            elif command == 0x90:
                self.subscribed = True
            i = j + length
        self._raw = buf[i:]
        if acks:
            self.sock.sendall(b"".join(acks))
        return count

    def close(self) -> None:
        self.sock.sendall(b"\xe0\x00")
        self.sock.close()
