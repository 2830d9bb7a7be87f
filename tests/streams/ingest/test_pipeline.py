"""The ingest pipeline on values: every outcome, deduplication, recovery and the counters."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry

from geo import GridIndex
from schemas import DeadLetter, LocatedEvent
from streams.ingest import Format, Ingest, Limits, Record
from streams.metrics import Metrics
from streams.registry import DeviceRegistry
from tests.streams.ingest.samples import (
    DEVICES,
    LONGCHUAN,
    NOW,
    invalid_readings,
    position,
    reading,
    video,
)

READINGS = "sensor.readings"
VIDEO = "video.events"


@pytest.fixture
def registry() -> DeviceRegistry:
    return DeviceRegistry.from_devices(DEVICES)


@pytest.fixture
def prometheus() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(prometheus: CollectorRegistry) -> Metrics:
    return Metrics.create(prometheus)


@pytest.fixture
def ingest(heyuan_index: GridIndex, registry: DeviceRegistry, metrics: Metrics) -> Ingest:
    return Ingest(
        index=heyuan_index,
        registry=registry,
        formats={READINGS: Format.SENSOR, VIDEO: Format.VIDEO},
        geography=heyuan_index.hierarchy.version,
        limits=Limits(dedup_horizon_s=600),
        metrics=metrics,
    )


class Feed:
    """Numbers records per topic as a partition-0 consumer would see them."""

    def __init__(self) -> None:
        self.offsets: dict[str, int] = {}

    def __call__(
        self,
        value: bytes,
        topic: str = READINGS,
        key: bytes | None = b"k",
        header: bytes | None = None,
    ) -> Record:
        offset = self.offsets.get(topic, 0)
        self.offsets[topic] = offset + 1
        return Record(topic, 0, offset, key, value, header)


def count(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_a_valid_reading_is_located_and_keyed_by_county(ingest: Ingest) -> None:
    feed = Feed()
    result = ingest.process([feed(reading("r1"), key=b"wl-001")], NOW)

    assert result.dead_letters == []
    assert result.duplicates == 0
    (message,) = result.located
    located = LocatedEvent.model_validate_json(message.value)
    assert message.key == b"441602"  # 源城区: events.located is keyed by county
    assert located.location.county == "441602"
    assert located.location.cell.startswith(located.location.village)
    assert located.location.village.startswith(located.location.town)
    assert located.location.city == "441600"
    assert located.position_source == "device"
    assert located.event.event_id == "r1"
    assert located.device_id == "wl-001"
    assert (located.source.topic, located.source.offset) == (READINGS, 0)
    assert located.geography == ingest.geography


def test_an_event_position_wins_over_the_device_and_wgs84_is_converted(ingest: Ingest) -> None:
    feed = Feed()
    record = feed(reading("r1", position=position(LONGCHUAN, "wgs84")))

    (message,) = ingest.process([record], NOW).located

    located = LocatedEvent.model_validate_json(message.value)
    assert located.position_source == "event"
    assert located.location.county == "441622"  # 龙川县, not the gauge's 源城区
    assert located.position.datum == "gcj02"
    # GCJ-02 is offset from WGS-84 by a few hundred metres in China.
    assert 0.001 < abs(located.position.lon - LONGCHUAN[0]) < 0.01


def test_a_video_event_takes_its_cameras_position(ingest: Ingest) -> None:
    (message,) = ingest.process([Feed()(video("v1"), topic=VIDEO)], NOW).located

    located = LocatedEvent.model_validate_json(message.value)
    assert located.event.record == "video_event"
    assert located.device_id == "cam-001"
    assert located.location.county == "441602"


INVALID_READINGS = invalid_readings(NOW)


@pytest.mark.parametrize(
    ("reason", "raw"),
    INVALID_READINGS,
    ids=[f"{reason}-{n}" for n, (reason, _) in enumerate(INVALID_READINGS)],
)
def test_each_invalid_reading_becomes_a_dead_letter_with_its_reason(
    ingest: Ingest, prometheus: CollectorRegistry, reason: str, raw: bytes
) -> None:
    result = ingest.process([Feed()(raw, key=b"key-1")], NOW)

    assert result.located == []
    assert result.duplicates == 0
    (message,) = result.dead_letters
    letter = DeadLetter.model_validate_json(message.value)
    assert letter.reason == reason, letter.message
    assert message.key == b"key-1"
    assert letter.key == b"key-1"
    assert letter.value == raw[:65_536]  # the original bytes, for inspection and replay
    assert (letter.source.topic, letter.source.partition, letter.source.offset) == (READINGS, 0, 0)
    assert letter.message
    assert count(prometheus, "cityops_dead_letters_total", topic=READINGS, reason=reason) == 1


def test_an_unknown_kind_lists_the_known_ones(ingest: Ingest) -> None:
    (message,) = ingest.process([Feed()(reading("r1", kind="radiation"))], NOW).dead_letters

    letter = DeadLetter.model_validate_json(message.value)
    assert letter.reason == "unknown_kind"
    assert letter.event_id == "r1"
    assert "water_level" in letter.message
    assert "pm25" in letter.message


def test_a_schema_violation_names_the_field(ingest: Ingest) -> None:
    (message,) = ingest.process([Feed()(reading("r1", unit="cm"))], NOW).dead_letters

    assert "cm" in DeadLetter.model_validate_json(message.value).message


def test_an_unknown_format_header_is_refused(ingest: Ingest) -> None:
    record = Feed()(video("v1"), topic=VIDEO, header=b"hikvision")

    (message,) = ingest.process([record], NOW).dead_letters

    letter = DeadLetter.model_validate_json(message.value)
    assert letter.reason == "unsupported_format"
    assert "frigate" in letter.message


def test_duplicates_within_and_across_batches_are_counted_not_located(
    ingest: Ingest, prometheus: CollectorRegistry
) -> None:
    feed = Feed()
    first = ingest.process([feed(reading("r1")), feed(reading("r1")), feed(reading("r2"))], NOW)
    later = ingest.process([feed(reading("r1"))], NOW + timedelta(seconds=30))

    assert [len(first.located), first.duplicates] == [2, 1]
    assert [len(later.located), later.duplicates] == [0, 1]
    assert count(prometheus, "cityops_duplicates_total", topic=READINGS) == 2


def test_the_same_event_id_from_two_devices_is_two_events(ingest: Ingest) -> None:
    feed = Feed()
    result = ingest.process([feed(reading("r1")), feed(reading("r1", device_id="wl-002"))], NOW)

    assert len(result.located) == 2


def test_an_id_is_forgotten_after_the_horizon(ingest: Ingest) -> None:
    feed = Feed()
    ingest.process([feed(reading("r1", at=NOW))], NOW)

    later = NOW + timedelta(seconds=2 * 600)
    result = ingest.process([feed(reading("r1", at=NOW))], later)

    assert len(result.located) == 1


def test_a_retry_of_a_dead_lettered_event_is_a_duplicate(ingest: Ingest) -> None:
    feed = Feed()
    first = ingest.process([feed(reading("r1", device_id="ghost-001"))], NOW)
    retry = ingest.process([feed(reading("r1", device_id="ghost-001"))], NOW)

    assert len(first.dead_letters) == 1
    assert retry.duplicates == 1
    assert retry.dead_letters == []


def test_a_malformed_record_delivered_again_to_the_same_worker_is_dead_lettered_once(
    ingest: Ingest,
) -> None:
    # No id to recognise it by: its source offset is remembered instead, for the horizon.
    record = Record(READINGS, 3, 11, b"k", b"{not json")
    first = ingest.process([record], NOW)
    again = ingest.process([record], NOW + timedelta(seconds=5))

    assert (len(first.dead_letters), again.dead_letters, again.duplicates) == (1, [], 1)


def test_recovery_turns_redelivered_records_into_duplicates(
    heyuan_index: GridIndex, registry: DeviceRegistry
) -> None:
    # Before a crash: r1 located, a malformed record dead-lettered, neither committed.
    records = [
        Record(READINGS, 3, 10, b"k", reading("r1")),
        Record(READINGS, 3, 11, b"k", b"{not json"),
    ]
    formats = {READINGS: Format.SENSOR}
    before = Ingest(index=heyuan_index, registry=registry, formats=formats, geography="g")
    written = before.process(records, NOW)
    (located,) = written.located
    (dead,) = written.dead_letters

    after = Ingest(index=heyuan_index, registry=registry, formats=formats, geography="g")
    document = LocatedEvent.model_validate_json(located.value)
    after.remember_located(document.device_id, document.event.event_id, NOW.timestamp())
    letter = DeadLetter.model_validate_json(dead.value)
    after.remember_dead_letter(
        (letter.source.topic, letter.source.partition, letter.source.offset),
        letter.reason,
        letter.device_id,
        letter.event_id,
        NOW.timestamp(),
    )
    redelivered = after.process([*records, Record(READINGS, 3, 12, b"k", reading("r2"))], NOW)

    assert redelivered.duplicates == 2
    assert [
        LocatedEvent.model_validate_json(m.value).event.event_id for m in redelivered.located
    ] == ["r2"]


def test_every_record_is_counted_once_by_outcome(
    ingest: Ingest, prometheus: CollectorRegistry
) -> None:
    feed = Feed()
    records = [feed(raw) for _, raw in INVALID_READINGS]
    records += [feed(reading(f"ok-{n}")) for n in range(5)]
    records += [feed(reading("ok-0")), feed(video("v1"), topic=VIDEO)]

    result = ingest.process(records, NOW)

    outcomes = {
        outcome: count(prometheus, "cityops_input_events_total", topic=topic, outcome=outcome)
        for topic in (READINGS,)
        for outcome in ("located", "dead_letter", "duplicate")
    }
    assert outcomes == {"located": 5, "dead_letter": len(INVALID_READINGS), "duplicate": 1}
    assert count(prometheus, "cityops_input_events_total", topic=VIDEO, outcome="located") == 1
    assert len(result.located) + len(result.dead_letters) + result.duplicates == len(records)
    latency = count(prometheus, "cityops_located_latency_seconds_count", topic=READINGS)
    assert latency == 5


def test_dead_letter_values_are_base64_of_the_original(ingest: Ingest) -> None:
    (message,) = ingest.process([Feed()(b"\x00\x01binary")], NOW).dead_letters

    assert message.value.count(base64.b64encode(b"\x00\x01binary")) == 1
