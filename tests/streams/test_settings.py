"""Settings: the environment contract of every cityops process."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from streams.settings import ENV_PREFIX, Settings, TopicNames


@pytest.mark.parametrize(
    ("broker_url", "servers"),
    [
        (None, ["127.0.0.1:9092"]),  # unset: the embedded local broker
        ("   ", ["127.0.0.1:9092"]),  # blank counts as unset, as an empty env var would
        ("kafka://k1:9092", ["k1:9092"]),  # Faust's URL form
        ("kafka://k1:9092;k2:9093", ["k1:9092", "k2:9093"]),  # Faust's list separator
        ("k1:9092, k2:9093", ["k1:9092", "k2:9093"]),  # the Kafka tools' list form
    ],
)
def test_bootstrap_servers_accept_both_url_forms(
    broker_url: str | None, servers: list[str]
) -> None:
    settings = Settings(broker_url=broker_url)
    assert settings.bootstrap_servers == servers
    assert settings.embedded_broker is (broker_url is None or not broker_url.strip())
    assert settings.faust_broker_url == "kafka://" + ";".join(servers)


def test_environment_variables_with_prefix_and_nesting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYOPS_TOPICS__VIDEO_EVENTS", "vision.events")
    monkeypatch.setenv("CITYOPS_TOPIC_PREFIX", "heyuan.")
    monkeypatch.setenv("CITYOPS_TOPIC_PARTITIONS", "16")
    settings = Settings()
    assert settings.topic("video_events") == "heyuan.vision.events"
    assert settings.topic("sensor_readings") == "heyuan.sensor.readings"
    assert settings.topic_partitions == 16
    assert len(settings.all_topics()) == len(TopicNames.model_fields)


def test_masked_never_shows_the_secret() -> None:
    settings = Settings(sasl_username="ops", sasl_password="hunter2")  # type: ignore[arg-type]
    shown = settings.masked()
    assert shown["CITYOPS_SASL_PASSWORD"] == "**********"
    assert shown["CITYOPS_SASL_USERNAME"] == "ops"
    assert all("hunter2" not in value for value in shown.values())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("web_port", 0),  # not a port
        ("topic_partitions", 0),  # a topic needs a partition
        ("local_broker_heap_mb", 1024),  # the local broker stays within 512 MB of heap
        ("app_id", "has space"),  # becomes a consumer group and topic names
        ("store", "redis"),  # not a Faust store cityops supports
    ],
)
def test_invalid_values_are_rejected(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        Settings(**{field: value})


def test_every_setting_is_documented_with_its_environment_variable() -> None:
    for name, field in Settings.model_fields.items():
        assert field.description, f"{name} has no docstring"
        if name != "topics":
            assert f"{ENV_PREFIX}{name.upper()}" in field.description, name
    for name, field in TopicNames.model_fields.items():
        assert field.description, name
        assert f"{ENV_PREFIX}TOPICS__{name.upper()}" in field.description.replace("\n", " ")
