"""The pump twin fed from the variables of an asyncua server running in this process."""

import asyncio
import threading
import time
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from twingraph.streams import MemorySink, TwinService
from twingraph.streams.opcua import OPCUASource, parse_mapping, source_from_url

from . import pumps
from .brokers import WAIT, free_port
from .test_mqtt import small_fleet

asyncua = pytest.importorskip("asyncua", reason="asyncua is not installed (pip install 'twingraph[streams]')")
ua = asyncua.ua

EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)


class Plant:
    """An asyncua server in its own event loop thread, one Double variable per pump and port (``ns;s=pump.port``)."""

    def __init__(self, assets: list[str], ports=("u", "y")):
        self.url = f"opc.tcp://127.0.0.1:{free_port()}/plant"
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.variables = self.call(self._start(assets, ports))

    def call(self, coroutine, timeout: float = 30.0):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    async def _start(self, assets, ports):
        self.server = asyncua.Server()
        await self.server.init()
        self.server.set_endpoint(self.url)
        self.ns = await self.server.register_namespace("urn:twingraph:plant")
        variables = {}
        for asset in assets:
            folder = await self.server.nodes.objects.add_object(self.ns, asset)
            for port in ports:
                node = ua.NodeId(f"{asset}.{port}", self.ns)
                variables[asset, port] = await folder.add_variable(node, port, 0.0, ua.VariantType.Double)
        await self.server.start()
        return variables

    def node_id(self, asset: str, port: str) -> str:
        return self.variables[asset, port].nodeid.to_string()

    async def _write(self, values: dict, stamp: datetime) -> None:
        for (asset, port), value in values.items():
            await self.variables[asset, port].write_value(
                ua.DataValue(ua.Variant(value, ua.VariantType.Double), SourceTimestamp=stamp))

    def write(self, values: dict, stamp: datetime) -> None:
        """Set ``values[(asset, port)]`` with the source timestamp ``stamp``."""
        self.call(self._write(values, stamp))

    def stop(self) -> None:
        self.call(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(WAIT)


def test_mapping_forms_and_errors():
    assert parse_mapping({"p1": {"u": "ns=2;s=a"}, "ns=2;s=b": ["p1", "y"]}) == {
        "ns=2;s=a": ("p1", "u"), "ns=2;s=b": ("p1", "y")}
    with pytest.raises(ValueError, match="mapped twice"):
        parse_mapping({"p1": {"u": "ns=2;s=a"}, "p2": {"u": "ns=2;s=a"}})
    with pytest.raises(ValueError, match=r"maps to \[asset, port\]"):
        parse_mapping({"ns=2;s=a": "p1"})
    with pytest.raises(ValueError, match="starts with 'opc.tcp://'"):
        source_from_url("http://x", {"ns=2;s=a": ["p", "u"]})


def test_pump_twin_fed_from_opcua_variables_equals_offline():
    ticks = 60
    assets, data = small_fleet(4, duration=(ticks + 8) * pumps.example.DT)
    expected = pumps.offline({k: v[:ticks] for k, v in data.items()})
    plant = Plant(assets)
    try:
        mapping = {a: {port: plant.node_id(a, port) for port in ("u", "y")} for a in assets}
        sink = MemorySink()
        service = TwinService(pumps.example.build_twin(), OPCUASource(plant.url, mapping, epoch=EPOCH), [sink],
                              assets=assets, outputs=pumps.OUTPUTS, lateness=1.0)
        thread = threading.Thread(target=service.run, kwargs={"max_ticks": ticks, "timeout": 60.0}, daemon=True)
        thread.start()

        def tick(k):
            values = {(a, port): float(data[port][k, i, 0]) for port in ("u", "y") for i, a in enumerate(assets)}
            plant.write(values, EPOCH + timedelta(seconds=k * pumps.example.DT))

        deadline = time.monotonic() + WAIT
        while service.counters.used == 0:  # tick 0 again until the service's subscription reports it
            assert time.monotonic() < deadline, "no data change reached the service"
            tick(0)
            time.sleep(0.1)
        for k in range(1, len(data["u"])):
            tick(k)
        thread.join(60.0)
        assert not thread.is_alive()
        service.close()
    finally:
        plant.stop()
    served = {port: np.asarray(values) for port, values in sink.arrays().items()}
    pumps.same(served, expected)
    c = service.counters
    assert (c.ticks, c.late, c.unknown, c.malformed) == (ticks, 0, 0, 0)
