"""Live twin: a pump fleet publishes its sensors over MQTT, the twin service follows it, alarms and RUL come back.

Four parts, each what it would be in a plant, on one machine:

- a broker: a mosquitto started here on a free localhost port (or yours, ``--broker mqtt://HOST:PORT``);
- the fleet: simulated pumps (``examples/pump_twin``) whose wear starts at
  staggered times, publishing voltage and flow every tick as
  ``plant/<pump>/u`` and ``plant/<pump>/y`` (``{"time": t, "value": [x]}``),
  sped up ``--speed`` times;
- the service: :class:`twingraph.streams.TwinService` with the pump twin,
  subscribed to ``plant/{asset}/{port}`` (QoS 1, a persistent session,
  checkpoints in ``--out``), publishing each pump's efficiency, alarm and RUL
  per tick as one JSON document on ``twin/<pump>``;
- an operator's subscriber: prints each pump's first alarm, then its RUL
  every ``--report-every`` seconds of pump time.

Run: ``python examples/live_twin/run_live_twin.py [--pumps N] [--duration S] [--speed X] [--broker URL] [--out DIR]``.
The same service from a shell: ``twingraph serve twin.json --source
"mqtt://HOST:PORT/plant/{asset}/{port}?qos=1&client_id=svc" --sink "mqtt://HOST:PORT/twin/{asset}" --assets
@pumps.txt --checkpoint DIR --outputs track.params,cusum.alarm,rul.rul --early``.
"""

import argparse
import getpass
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import paho.mqtt.client as mqtt

from twingraph.streams import TwinService
from twingraph.streams.mqtt import MQTTSink, MQTTSource

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pump_twin"))
from run_pump_twin import DT, build_twin, record

OUTPUTS = ["track.params", "cusum.alarm", "rul.rul", "rul.rul_lower", "rul.rul_upper"]
WAIT = 10.0  # longest wait for the broker or a connection [s]


def start_mosquitto(folder: Path) -> tuple[subprocess.Popen, int]:
    """A mosquitto on a free 127.0.0.1 port, keeping sessions in ``folder``; the process and the port."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        raise SystemExit("mosquitto is not installed (apt-get install mosquitto), or pass --broker mqtt://HOST:PORT")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = folder / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
                      f"persistence_location {folder}/\nmax_queued_messages 1000000\nmax_inflight_messages 0\n"
                      f"user {getpass.getuser()}\n")
    broker = subprocess.Popen([binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + WAIT
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return broker, port
        except OSError:
            if broker.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"mosquitto did not start on port {port}") from None
            time.sleep(0.05)


def connected_client(host: str, port: int) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.max_inflight_messages_set(0)
    client.connect(host, port)
    client.loop_start()
    return client


def fleet(host: str, port: int, pumps: list[str], data: dict, speed: float, stop: threading.Event) -> None:
    """The pumps: each tick, every pump's voltage and flow as QoS 1 messages, ``speed`` times faster than real."""
    client = connected_client(host, port)
    start = time.monotonic()
    for k in range(len(data["u"])):
        time.sleep(max(0.0, start + k * DT / speed - time.monotonic()))
        if stop.is_set():
            break
        for port_name in ("u", "y"):
            for i, pump in enumerate(pumps):
                payload = json.dumps({"time": k * DT, "value": data[port_name][k, i].tolist()})
                info = client.publish(f"plant/{pump}/{port_name}", payload, qos=1)
    info.wait_for_publish(WAIT)
    client.disconnect()
    client.loop_stop()


class Operator:
    """Subscribes to ``twin/#``: prints each pump's first alarm, then its RUL every ``every`` [s] of pump time."""

    def __init__(self, host: str, port: int, every: float):
        self.every, self.alarms, self.reported, self.lines = every, {}, {}, []
        self.lock = threading.Lock()
        subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_message = self.on_message
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.on_connect = lambda client, *args: client.subscribe("twin/#", qos=0)
        self.client.connect(host, port)
        self.client.loop_start()
        subscribed.wait(WAIT)

    def on_message(self, client, userdata, message) -> None:
        doc = json.loads(message.payload)
        pump, t, values = message.topic.rsplit("/", 1)[1], doc["time"], doc["values"]
        with self.lock:
            alarm = values["cusum.alarm"]  # one flag per pump: [true] or [false]
            if alarm[0] and pump not in self.alarms:
                self.alarms[pump] = t
                self.say(f"t = {t:6.1f} s  {pump}: ALARM (efficiency estimate {values['track.params'][0]:.3f})")
            rul = values["rul.rul"]
            if pump in self.alarms and rul != "inf" and t - self.reported.get(pump, -np.inf) >= self.every:
                self.reported[pump] = t
                band = float(values["rul.rul_lower"]), float(values["rul.rul_upper"])
                self.say(f"t = {t:6.1f} s  {pump}: RUL {float(rul):6.1f} s  "
                         f"(95 % band {band[0]:.1f} .. {band[1]:.1f} s)")

    def say(self, line: str) -> None:
        self.lines.append(line)
        print(line, flush=True)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pumps", type=int, default=6, help="pumps in the fleet")
    parser.add_argument("--duration", type=float, default=150.0, help="pump time to run [s]")
    parser.add_argument("--speed", type=float, default=10.0, help="pump seconds per wall-clock second")
    parser.add_argument("--report-every", type=float, default=25.0, help="pump seconds between RUL lines of a pump")
    parser.add_argument("--broker", help="mqtt://HOST:PORT of a running broker (default: start mosquitto here)")
    parser.add_argument("--out", type=Path, default=None, help="checkpoint folder (default: a temporary one)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the voltages and the flow noise")
    args = parser.parse_args(argv)

    pumps = [f"pump{i:02d}" for i in range(args.pumps)]
    onset = np.linspace(10.0, 40.0, args.pumps).tolist()
    failure = np.linspace(120.0, 200.0, args.pumps).tolist()
    data = record(onset, failure, args.seed, duration=args.duration + DT)  # one tick more: it closes the last
    with tempfile.TemporaryDirectory() as scratch:
        broker = None
        if args.broker:
            url = urlsplit(args.broker)
            host, port = url.hostname, url.port or 1883
        else:
            broker, port = start_mosquitto(Path(scratch))
            host = "127.0.0.1"
        try:
            print(f"broker mqtt://{host}:{port}; {args.pumps} pumps, wear starting at "
                  f"{', '.join(f'{t:.0f}' for t in onset)} s; {args.duration:.0f} s of pump time at {args.speed:g}x")
            operator = Operator(host, port, args.report_every)
            source = MQTTSource(host, port, "plant/{asset}/{port}", qos=1, client_id="live-twin-example")
            service = TwinService(build_twin(), source, [MQTTSink(host, port, "twin/{asset}")], assets=pumps,
                                  checkpoint_dir=args.out or Path(scratch) / "checkpoints", outputs=OUTPUTS,
                                  early=True, log_every=3600.0)
            ticks = round(args.duration / DT)
            serving = threading.Thread(target=service.run, kwargs={"max_ticks": ticks,
                                                                   "timeout": args.duration / args.speed + 60.0})
            serving.start()
            while not source.subscribed and serving.is_alive():
                time.sleep(0.01)
            stop = threading.Event()
            sensors = threading.Thread(target=fleet, args=(host, port, pumps, data, args.speed, stop))
            sensors.start()
            serving.join()
            stop.set()
            sensors.join()
            service.close()
            time.sleep(0.2)  # the last results on their way to the operator
            operator.close()
        finally:
            if broker is not None:
                broker.kill()
                broker.wait()
    c = service.counters
    print(f"served {c.ticks} ticks: {c.used} sensor values used, {c.late} late, {c.malformed} malformed, "
          f"{c.unknown} unknown")
    return {"alarms": operator.alarms, "lines": operator.lines, "counters": c, "onset": dict(zip(pumps, onset))}


if __name__ == "__main__":
    main()
