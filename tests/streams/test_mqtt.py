"""The MQTT source and sink against a real mosquitto broker, and the pump twin served through it."""

import json
import math
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from twingraph.streams import TwinService
from twingraph.streams.mqtt import MQTTSink, MQTTSource, TopicTemplate, sink_from_url, source_from_url

from . import pumps
from .brokers import WAIT, Collector, Publisher, RawPublisher, sensor_messages

SENSORS = "plant/{asset}/{port}"


def poll_until(source: MQTTSource, n: int, timeout: float = WAIT) -> list:
    records, deadline = [], time.monotonic() + timeout
    while len(records) < n and time.monotonic() < deadline:
        records += source.poll(0.05)
    return records


def small_fleet(pumps_: int, duration: float) -> tuple[list[str], dict[str, np.ndarray]]:
    """Pumps whose degradation starts early enough to alarm and arm the RUL within ``duration`` [s]."""
    onset = np.linspace(4.0, 12.0, pumps_).tolist()
    failure = np.linspace(35.0, 60.0, pumps_).tolist()
    return pumps.assets(pumps_), pumps.example.record(onset, failure, seed=5, duration=duration)


def documents(messages: list[tuple[str, bytes]], assets: list[str], ticks: int) -> dict[str, np.ndarray]:
    """Per-asset JSON documents as arrays ``(ticks, assets, 1)`` per port; the newest message of a tick wins."""
    index = {a: i for i, a in enumerate(assets)}
    out = {port: np.full((ticks, len(assets), 1), -1.0) for port in pumps.OUTPUTS}
    for topic, payload in messages:
        doc = json.loads(payload)
        if doc["tick"] >= ticks:
            continue
        for port, value in doc["values"].items():
            value = value if isinstance(value, list) else [value]
            out[port][doc["tick"], index[topic.rsplit("/", 1)[1]]] = [math.nan if v is None else float(v)
                                                                     for v in value]
    return out


def first_alarms(results: dict[str, np.ndarray]) -> list[int]:
    """The tick of each pump's first alarm (-1: none)."""
    return [int(np.argmax(a)) if a.any() else -1 for a in results["cusum.alarm"][:, :, 0].T]


def test_topic_template_subscribes_with_wildcards_and_parses_back():
    t = TopicTemplate("site/{asset}-unit/{port}")
    assert t.subscription == "site/+/+"
    assert t.parse("site/p1-unit/y") == ("p1", "y")
    assert t.parse("site/p1/y") is None
    assert t.parse("other/p1-unit/y") is None
    with pytest.raises(ValueError, match="'{asset}' and '{port}' once each"):
        TopicTemplate("plant/{asset}")
    with pytest.raises(ValueError, match=r"no '\+' or '#'"):
        TopicTemplate("plant/+/{asset}/{port}")


def test_urls_give_the_options_and_name_what_is_wrong():
    source = source_from_url("mqtt://user:pw@10.0.0.2:1884/a/{asset}/{port}?qos=0&client_id=svc&version=5",
                             keepalive=5.0)
    assert (source.host, source.port, source.template, source.qos, source.client_id, source.version,
            source.username, source.password, source.keepalive) == (
        "10.0.0.2", 1884, "a/{asset}/{port}", 0, "svc", "5", "user", "pw", 5.0)
    assert sink_from_url("mqtt://h/twin/{asset}?retain=true&qos=1").retain is True
    secure = sink_from_url("mqtts://h/twin/{asset}")
    assert (secure.tls, secure.port) == (True, 8883)
    with pytest.raises(ValueError, match="Unknown option 'qso'"):
        source_from_url("mqtt://h/p/{asset}/{port}?qso=1")
    with pytest.raises(ValueError, match="'qos' in the MQTT source URL .* must be int. Got 'high'"):
        source_from_url("mqtt://h/p/{asset}/{port}?qos=high")
    with pytest.raises(ValueError, match="mqtt://HOST:PORT/TEMPLATE"):
        source_from_url("mqtt://h")


def test_unreachable_broker_is_a_clear_error():
    from .brokers import free_port

    port = free_port()
    with pytest.raises(ConnectionError, match=f"Cannot connect the MQTT source .* 127.0.0.1:{port}"):
        MQTTSource("127.0.0.1", port, connect_timeout=2.0).open()


@pytest.mark.parametrize("version", ["3.1.1", "5"])
def test_persistent_session_delivers_what_was_sent_while_closed_and_what_was_not_acknowledged(mosquitto, version):
    source = MQTTSource(mosquitto.host, mosquitto.port, SENSORS, client_id="persist", version=version)
    source.open()
    publisher = Publisher(mosquitto)
    for i in range(300):
        publisher.send(f"plant/p{i % 3}/y", str(i))
    publisher.flush()
    first = poll_until(source, 300)
    assert [(r.asset, r.values) for r in first[:2]] == [("p0", {"y": b"0"}), ("p1", {"y": b"1"})]
    assert len(first) == 300 and all(r.time is None for r in first)
    source.commit()
    for i in range(300, 400):  # polled, never acknowledged: the broker sends them again
        publisher.send(f"plant/p{i % 3}/u", str(i))
    publisher.flush()
    assert len(poll_until(source, 100)) == 100
    source.close()
    for i in range(400, 450):  # sent while the service is down
        publisher.send(f"plant/p{i % 3}/u", str(i))
    publisher.close()
    source.open()
    again = poll_until(source, 150)
    source.commit()
    source.close()
    assert sorted(int(next(iter(r.values.values()))) for r in again) == list(range(300, 450))


def test_sink_publishes_full_precision_and_names_nan_and_inf(mosquitto):
    collector = Collector(mosquitto, "twin/#")
    values = {"x": np.array([[0.1, np.inf], [np.nan, 1 / 3]]), "alarm": np.array([True, False]),
              "n": np.array([3, 4])}
    for template, qos in (("twin/{asset}/{port}", 1), ("twin/{asset}", 0)):
        sink = MQTTSink(mosquitto.host, mosquitto.port, template, qos=qos)
        sink.write(7, 1.75, ["a", "b"], values)
        sink.close()
    got = dict(collector.wait_for(8))
    collector.close()
    assert json.loads(got["twin/b/x"]) == {"tick": 7, "time": 1.75, "value": [None, 1 / 3]}
    assert json.loads(got["twin/a"]) == {"tick": 7, "time": 1.75, "values": {"x": [0.1, "inf"], "alarm": True,
                                                                             "n": 3}}
    with pytest.raises(ValueError, match="asset 'a/b'"):
        MQTTSink(mosquitto.host, mosquitto.port).write(0, 0.0, ["a/b"], {"x": np.zeros(1)})


def serve_in_thread(service: TwinService, ticks: int) -> threading.Thread:
    thread = threading.Thread(target=service.run, kwargs={"max_ticks": ticks, "timeout": 60.0}, daemon=True)
    thread.start()
    return thread


def test_fleet_of_100_pumps_through_the_broker_equals_offline(mosquitto):
    ticks = 120
    assets, data = small_fleet(100, duration=(ticks + 1) * pumps.example.DT)
    expected = pumps.offline({k: v[:ticks] for k, v in data.items()})
    session = MQTTSource(mosquitto.host, mosquitto.port, SENSORS, client_id="fleet")
    session.open()  # the broker keeps the session's subscription: nothing published from now on is lost
    session.close()
    collector = Collector(mosquitto, "twin/#")
    service = TwinService(pumps.example.build_twin(),
                          source_from_url(mosquitto.url(SENSORS, qos=1, client_id="fleet")),
                          [sink_from_url(mosquitto.url("twin/{asset}"))], assets=assets, outputs=pumps.OUTPUTS)
    thread = serve_in_thread(service, ticks)
    publisher = RawPublisher(mosquitto)
    sent = publisher.publish(sensor_messages(data, assets, pumps.example.DT, SENSORS), batch=200)
    publisher.close()
    thread.join(60.0)
    assert not thread.is_alive()
    service.close()
    served = documents(collector.wait_for(ticks * len(assets), timeout=30.0), assets, ticks)
    collector.close()
    pumps.same(served, expected)
    assert first_alarms(served) == first_alarms(expected)
    assert min(first_alarms(expected)) > 0 and np.isfinite(expected["rul.rul"][-1]).all()
    counters = service.counters
    assert (counters.ticks, counters.used, counters.messages) == (ticks, sent, sent)


def hostile_messages(assets: list[str], rng: np.random.Generator, n: int = 1000) -> tuple[list, dict[str, int]]:
    """``n`` bad messages ``(topic, payload)`` aimed at the fleet, and how many of each kind the service must count."""
    kinds = [
        ("malformed", lambda a: (f"plant/{a}/y", b"{not json")),
        ("malformed", lambda a: (f"plant/{a}/y", b"1e999")),  # inf
        ("malformed", lambda a: (f"plant/{a}/u", b'{"time": 1.0, "value": Infinity}')),
        ("malformed", lambda a: (f"plant/{a}/y", b"[1.0, 2.0]")),  # the port holds one value
        ("malformed", lambda a: (f"plant/{a}/y", b"[[1.0]]")),
        ("malformed", lambda a: (f"plant/{a}/u", b"7" * 70_000)),  # over max_bytes
        ("malformed", lambda a: (f"plant/{a}/u", b"\xff\xfe\x00")),  # not UTF-8
        ("malformed", lambda a: (f"plant/{a}/y", b'"3.2"')),
        ("malformed", lambda a: (f"plant/{a}/y", b'{"reading": 3.2}')),
        ("malformed", lambda a: (f"plant/{a}/y", b'{"time": "noon", "value": 3.2}')),
        ("unknown", lambda a: (f"plant/ghost-{a}/y", b"1.0")),
        ("unknown", lambda a: (f"plant/{a}/pressure", b"1.0")),
    ]
    messages, counts = [], {"malformed": 0, "unknown": 0}
    for j in range(n):
        kind, make = kinds[j % len(kinds)]
        messages.append(make(assets[rng.integers(len(assets))]))
        counts[kind] += 1
    return messages, counts


def test_1000_hostile_payloads_are_counted_and_change_nothing(mosquitto):
    ticks = 80
    assets, data = small_fleet(10, duration=(ticks + 1) * pumps.example.DT)
    expected = pumps.offline({k: v[:ticks] for k, v in data.items()})
    healthy = list(sensor_messages(data, assets, pumps.example.DT, SENSORS))
    rng = np.random.default_rng(0)
    bad, counts = hostile_messages(assets, rng)
    mixed = list(healthy)
    for message, at in zip(bad, np.sort(rng.integers(0, len(healthy) - 20 * len(assets), len(bad)))[::-1]):
        mixed.insert(int(at), message)  # spread over the stream, none after the last ticks' values
    session = MQTTSource(mosquitto.host, mosquitto.port, SENSORS, client_id="hostile")
    session.open()
    session.close()
    collector = Collector(mosquitto, "twin/#")
    service = TwinService(pumps.example.build_twin(),
                          source_from_url(mosquitto.url(SENSORS, client_id="hostile")),
                          [sink_from_url(mosquitto.url("twin/{asset}"))], assets=assets, outputs=pumps.OUTPUTS)
    publisher = RawPublisher(mosquitto)
    publisher.publish(mixed, batch=100)
    publisher.close()
    service.run(max_ticks=ticks, timeout=60.0)
    service.close()
    pumps.same(documents(collector.wait_for(ticks * len(assets)), assets, ticks), expected)
    collector.close()
    c = service.counters
    assert (c.ticks, c.malformed, c.unknown, c.used, c.late, c.duplicate) == (
        ticks, counts["malformed"], counts["unknown"], len(healthy), 0, 0)
    assert sum(c.reasons.values()) == len(bad)


def serve_process(graph, mosquitto, assets_file, checkpoint, client_id: str, template: str = SENSORS,
                  results: str = "twin/{asset}") -> subprocess.Popen:
    """``twingraph serve`` as a user starts it, sensors from and results to the broker, checkpointing."""
    command = [sys.executable, "-m", "twingraph.cli", "serve", str(graph),
               "--source", mosquitto.url(template, qos=1, client_id=client_id),
               "--sink", mosquitto.url(results), "--assets", f"@{assets_file}", "--checkpoint", str(checkpoint),
               "--checkpoint-every", "10", "--outputs", ",".join(pumps.OUTPUTS), "--log-every", "1"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def paced(publisher: RawPublisher, messages: list, per_tick: int, pause: float) -> threading.Thread:
    """Publish ``messages`` a tick (``per_tick`` messages) at a time, ``pause`` [s] apart, in a thread."""
    def run():
        for start in range(0, len(messages), per_tick):
            publisher.publish(messages[start:start + per_tick])
            time.sleep(pause)
        publisher.flush()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def latest(collector: Collector, assets: list[str], ticks: int, timeout: float) -> dict[str, np.ndarray]:
    """Results of every tick below ``ticks`` once all arrived (ticks stepped twice after a restart: the newest)."""
    wanted = {(a, k) for a in assets for k in range(ticks)}

    def seen(messages):
        return wanted <= {(t.rsplit("/", 1)[1], json.loads(p)["tick"]) for t, p in messages}

    return documents(collector.wait_for(0, timeout=timeout, done=seen), assets, ticks)


def test_kill_9_mid_run_then_restart_gives_the_uninterrupted_results(mosquitto, tmp_path):
    ticks = 80
    assets, data = small_fleet(5, duration=(ticks + 1) * pumps.example.DT)
    expected = pumps.offline({k: v[:ticks] for k, v in data.items()})
    graph = tmp_path / "twin.json"
    pumps.example.build_twin().save(graph)
    (tmp_path / "assets.txt").write_text("\n".join(assets))
    session = MQTTSource(mosquitto.host, mosquitto.port, SENSORS, client_id="svc")
    session.open()
    session.close()
    collector = Collector(mosquitto, "twin/#")
    args = (graph, mosquitto, tmp_path / "assets.txt", tmp_path / "checkpoints", "svc")
    service = serve_process(*args)
    publisher = RawPublisher(mosquitto)
    messages, per_tick = list(sensor_messages(data, assets, pumps.example.DT, SENSORS)), 2 * len(assets)
    publisher.publish(messages[:30 * per_tick])
    collector.wait_for(25 * len(assets), timeout=30.0)  # the service is past tick 25
    flow = paced(publisher, messages[30 * per_tick:], per_tick, 0.05)
    time.sleep(0.2)
    service.send_signal(signal.SIGKILL)
    assert service.wait(WAIT) == -signal.SIGKILL
    time.sleep(0.5)  # the publisher goes on; the broker queues for the session
    assert flow.is_alive()
    service = serve_process(*args)
    try:
        served = latest(collector, assets, ticks, timeout=40.0)
        flow.join(WAIT)
    finally:
        service.send_signal(signal.SIGTERM)
        err = service.communicate(timeout=3 * WAIT)[1]
    collector.close()
    publisher.close()
    assert service.returncode == 0, err[-2000:]
    assert "resumed from checkpoint" in err
    pumps.same(served, expected)


def test_live_twin_example_prints_each_pumps_alarm_after_its_onset_and_its_rul(mosquitto, tmp_path, capsys):
    from tests.examples.scripts import load_example

    example = load_example("live_twin", "run_live_twin")
    result = example.main(["--pumps", "3", "--duration", "70", "--speed", "35", "--broker",
                           f"mqtt://{mosquitto.host}:{mosquitto.port}", "--out", str(tmp_path / "checkpoints")])
    printed = capsys.readouterr().out
    assert set(result["alarms"]) == set(result["onset"])
    assert all(result["onset"][p] < t < result["onset"][p] + 10.0 for p, t in result["alarms"].items())
    assert "pump00: RUL" in printed and "served 280 ticks" in printed
    c = result["counters"]
    assert 280 * 3 * 2 <= c.used <= 281 * 3 * 2 and (c.late, c.malformed, c.unknown) == (0, 0, 0)
