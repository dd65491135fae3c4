"""The live pump twin behind a real mosquitto broker: sensor messages per second through it, and result latency.

Run: ``python benchmarks/bench_streams.py [--fleets 1,100,1000] [--seconds S] [--messages N] [--qos 0,1]``.
Prints one table. Needs the ``mosquitto`` binary (started here on a free
localhost port) and ``pip install 'twingraph[streams]'``.

Each row is one run. A load generator process publishes the pump fleet's
sensors (``examples/pump_twin``: voltage ``u`` and flow ``y`` of every pump,
one MQTT message each, ``{"time": t, "value": [x]}`` on
``plant/<pump>/<port>``), either a tick every 0.1 s ("10 Hz") or all of
them as fast as it can ("flat out"). The service, :class:`TwinService` with
the MQTT source and sink in this process, steps the twin over the fleet
(``early=True``: a tick as soon as every pump's two values are in) and
publishes one JSON document per pump and tick (``twin/<pump>``: efficiency,
alarm, RUL). A listener process receives the documents.

- ``msg/s``: sensor messages published divided by the time from the first
  one's publication to the last result's arrival.
- latency: for every pump and tick, arrival of its result minus the moment
  the tick's messages were handed to the socket (p50, p99) [ms]; flat out it
  is mostly the wait in the queue.
- ``ceiling``: the same load straight to a listener subscribed to the sensor
  topics, no twin between: the broker's own throughput and latency on this
  machine (the publisher and the listener are the same programs as above).

QoS: the publisher, the service's subscription and its results all at the
same QoS; at QoS 1 the service acknowledges messages after it has them.
The load generator and listener are minimal MQTT clients on plain sockets
(paho's publish costs more per message than the service under test).
"""

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

from twingraph.streams import TwinService
from twingraph.streams.mqtt import MQTTSink, MQTTSource

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the stream tests' broker and raw clients, the example
from tests.examples.scripts import load_example
from tests.streams.brokers import Mosquitto, RawPublisher, RawSubscriber

example = load_example("pump_twin", "run_pump_twin")
OUTPUTS = ["track.params", "cusum.alarm", "rul.rul"]
TIMEOUT = 120.0  # longest wait for one run [s]


def sensors(pumps: int, ticks: int) -> list[list[tuple[str, bytes]]]:
    """Per tick, the messages of every pump's ``u`` and ``y``."""
    onset = np.linspace(20.0, 60.0, pumps).tolist()
    failure = np.linspace(200.0, 300.0, pumps).tolist()
    data = example.record(onset, failure, seed=1, duration=ticks * example.DT)
    names = [f"pump{i:04d}" for i in range(pumps)]
    return [[(f"plant/{name}/{port}", json.dumps({"time": k * example.DT, "value": data[port][k, i].tolist()}).encode())
             for port in ("u", "y") for i, name in enumerate(names)] for k in range(ticks)]


def publish(port: int, qos: int, pumps: int, ticks: int, rate: float | None, go, out) -> None:
    """Load generator (a process): wait for ``go``, publish tick by tick, send back each tick's hand-over time."""
    messages = sensors(pumps, ticks)
    broker = Mosquitto.__new__(Mosquitto)
    broker.host, broker.port = "127.0.0.1", port
    publisher = RawPublisher(broker, qos=qos, client_id="bench-load")
    go.wait(TIMEOUT)
    start, sent = time.monotonic(), []
    for k, tick in enumerate(messages):
        if rate is not None:
            time.sleep(max(0.0, start + k / rate - time.monotonic()))
        sent.append(time.monotonic())
        publisher.publish(tick, batch=len(tick))
    publisher.flush(TIMEOUT)
    publisher.close()
    out.send(sent)


def listen(port: int, qos: int, topic: str, expected: int, ready, out) -> None:
    """Listener (a process): receive ``expected`` messages, send back ``(tick, arrival)`` of each."""
    subscriber = RawSubscriber("127.0.0.1", port, topic, qos=qos, client_id=f"bench-listen-{topic[:4]}")
    subscriber.sock.settimeout(TIMEOUT)
    ticks, arrivals = [], []

    def take(topic, payload):
        ticks.append(payload)

    ready.set()
    count = 0
    while count < expected:
        got = subscriber.receive(take)
        now = time.monotonic()
        arrivals.extend([now] * got)
        count += got
    subscriber.close()
    step = example.DT
    ticks = [json.loads(p)["tick"] if p.startswith(b'{"tick"') else round(json.loads(p)["time"] / step)
             for p in ticks]
    out.send((ticks, arrivals))


def run(port: int, pumps: int, ticks: int, rate: float | None, qos: int, twin: bool) -> dict:
    """One row: start the listener, the service (``twin``) and the load; measure."""
    ctx = mp.get_context("fork")
    ready, go = ctx.Event(), ctx.Event()
    (listen_in, listen_out), (load_in, load_out) = ctx.Pipe(False), ctx.Pipe(False)
    expected = pumps * ticks if twin else 2 * pumps * ticks
    listener = ctx.Process(target=listen, args=(port, qos, "twin/#" if twin else "plant/#", expected, ready,
                                                listen_out))
    load = ctx.Process(target=publish, args=(port, qos, pumps, ticks, rate, go, load_out))
    listener.start()
    load.start()
    ready.wait(TIMEOUT)
    thread = None
    if twin:
        source = MQTTSource("127.0.0.1", port, "plant/{asset}/{port}", qos=qos, client_id=f"bench-{pumps}-{qos}",
                            clean=True)
        sink = MQTTSink("127.0.0.1", port, "twin/{asset}", qos=qos)
        service = TwinService(example.build_twin(), source, [sink], assets=[f"pump{i:04d}" for i in range(pumps)],
                              outputs=OUTPUTS, early=True, log_every=3600.0)
        thread = threading.Thread(target=service.run, kwargs={"max_ticks": ticks, "timeout": TIMEOUT})
        thread.start()
        deadline = time.monotonic() + TIMEOUT
        while not source.subscribed and time.monotonic() < deadline:
            time.sleep(0.01)
    go.set()
    sent = load_in.recv() if load_in.poll(TIMEOUT) else None
    got = listen_in.recv() if listen_in.poll(TIMEOUT) else None
    if thread is not None:
        thread.join(TIMEOUT)
        service.close()
    for process in (listener, load):
        process.join(5.0)
        if process.is_alive():
            process.kill()
    if sent is None or got is None:
        raise RuntimeError(f"run of {pumps} pumps, qos {qos}, twin {twin} did not finish in {TIMEOUT:g} s")
    tick_of, arrival = np.asarray(got[0]), np.asarray(got[1])
    latency = (arrival - np.asarray(sent)[tick_of]) * 1e3
    return {"msg/s": 2 * pumps * ticks / (arrival.max() - sent[0]), "p50": np.percentile(latency, 50),
            "p99": np.percentile(latency, 99)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fleets", default="1,100,1000", help="fleet sizes, comma-separated")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of a 10 Hz run [s]")
    parser.add_argument("--messages", type=int, default=100_000, help="sensor messages of a flat-out run")
    parser.add_argument("--qos", default="0,1", help="QoS levels, comma-separated")
    args = parser.parse_args(argv)
    broker = Mosquitto(Path(f"/tmp/bench_streams_{time.time_ns()}")).start()
    rows = []
    try:
        for pumps in (int(x) for x in args.fleets.split(",")):
            for rate in (10.0, None):
                ticks = round(args.seconds * rate) if rate else min(2000, max(50, args.messages // (2 * pumps)))
                for qos in (int(x) for x in args.qos.split(",")):
                    twin = run(broker.port, pumps, ticks, rate, qos, twin=True)
                    ceiling = run(broker.port, pumps, ticks, rate, qos, twin=False)
                    rows.append((pumps, "10 Hz" if rate else "flat out", qos, 2 * pumps * ticks, twin, ceiling))
    finally:
        broker.stop()
    print(f"{'pumps':>6} {'load':>9} {'QoS':>3} {'messages':>9} | {'service msg/s':>13} {'p50 ms':>7} "
          f"{'p99 ms':>7} | {'ceiling msg/s':>13} {'p50 ms':>7} {'p99 ms':>7}")
    for pumps, load, qos, n, twin, ceiling in rows:
        print(f"{pumps:>6} {load:>9} {qos:>3} {n:>9} | {twin['msg/s']:>13,.0f} {twin['p50']:>7.1f} "
              f"{twin['p99']:>7.1f} | {ceiling['msg/s']:>13,.0f} {ceiling['p50']:>7.1f} {ceiling['p99']:>7.1f}")
    print(f"(median of the rows' service throughput: {statistics.median(r[4]['msg/s'] for r in rows):,.0f} msg/s)")


if __name__ == "__main__":
    main()
