"""A fleet split across two service processes by topic prefix: killing one leaves the other alone; both end right."""

import signal
import time

from twingraph.streams.mqtt import MQTTSource

from . import pumps
from .brokers import WAIT, Collector, RawPublisher, sensor_messages
from .test_mqtt import latest, paced, serve_process, small_fleet


def test_two_partitions_one_killed_and_restarted_both_equal_offline(mosquitto, tmp_path):
    ticks = 80
    names, data = small_fleet(8, duration=(ticks + 1) * pumps.example.DT)
    graph = tmp_path / "twin.json"
    pumps.example.build_twin().save(graph)
    partitions = {}
    for part, rows in (("a", slice(0, 4)), ("b", slice(4, 8))):
        assets = names[rows]
        mine = {port: values[:, rows] for port, values in data.items()}
        (tmp_path / f"assets-{part}.txt").write_text("\n".join(assets))
        template = f"plant/{part}/{{asset}}/{{port}}"
        session = MQTTSource(mosquitto.host, mosquitto.port, template, client_id=f"svc-{part}")
        session.open()
        session.close()
        args = (graph, mosquitto, tmp_path / f"assets-{part}.txt", tmp_path / f"checkpoints-{part}", f"svc-{part}",
                template, f"twin/{part}/{{asset}}")
        partitions[part] = {"assets": assets, "args": args, "template": template,
                            "expected": pumps.offline({k: v[:ticks] for k, v in mine.items()}),
                            "messages": list(sensor_messages(mine, assets, pumps.example.DT, template))}
    collectors = {part: Collector(mosquitto, f"twin/{part}/#") for part in partitions}
    services = {part: serve_process(*p["args"]) for part, p in partitions.items()}
    publishers = {part: RawPublisher(mosquitto, client_id=f"sensors-{part}") for part in partitions}
    per_tick = 2 * 4
    for part, p in partitions.items():
        publishers[part].publish(p["messages"][:30 * per_tick])
    try:
        collectors["a"].wait_for(25 * 4, timeout=30.0)
        flows = [paced(publishers[part], p["messages"][30 * per_tick:], per_tick, 0.05)
                 for part, p in partitions.items()]
        time.sleep(0.2)
        services["a"].send_signal(signal.SIGKILL)
        assert services["a"].wait(WAIT) == -signal.SIGKILL
        time.sleep(0.5)
        assert all(flow.is_alive() for flow in flows)  # sensors keep coming while partition a is down
        services["a"] = serve_process(*partitions["a"]["args"])
        served = {part: latest(collectors[part], p["assets"], ticks, timeout=40.0) for part, p in partitions.items()}
        for flow in flows:
            flow.join(WAIT)
    finally:
        for service in services.values():
            service.send_signal(signal.SIGTERM)
        logs = {part: service.communicate(timeout=3 * WAIT)[1] for part, service in services.items()}
    for part in partitions:
        collectors[part].close()
        publishers[part].close()
        assert services[part].returncode == 0, logs[part][-2000:]
        pumps.same(served[part], partitions[part]["expected"])
    assert "resumed from checkpoint" in logs["a"] and "resumed from checkpoint" not in logs["b"]
