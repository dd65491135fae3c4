"""Fixtures of the stream tests: a real mosquitto broker on a free localhost port."""

import pytest

from .brokers import MOSQUITTO, Mosquitto


@pytest.fixture
def mosquitto(tmp_path):
    """A mosquitto broker for one test (persistent sessions kept in a temporary folder), killed at teardown."""
    pytest.importorskip("paho.mqtt.client", reason="paho-mqtt is not installed (pip install 'twingraph[streams]')")
    if MOSQUITTO is None:
        pytest.skip("the mosquitto broker is not installed (apt-get install mosquitto; .ci/run installs it)")
    broker = Mosquitto(tmp_path / "mosquitto").start()
    yield broker
    broker.stop()
