"""Replaying a recording onto the real broker: every record, in order, at the asked pace."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.exceptions import StreamsError
from streams.settings import Settings
from streams.simulate.records import Outgoing, write_jsonl
from streams.simulate.replay import replay
from streams.topics import ensure_topics
from tests.helpers import consume, end_offsets

pytestmark = pytest.mark.integration

T0 = datetime(2026, 7, 1, 8, tzinfo=UTC)
TOPICS = ["sensor_readings", "video_events", "devices_registry"]


@pytest.fixture
def settings(kafka_bootstrap: str) -> Settings:
    settings = Settings(
        broker_url=f"kafka://{kafka_bootstrap}",
        topic_prefix=f"test-{uuid.uuid4().hex[:8]}.",
        topic_partitions=2,
    )
    ensure_topics(settings, TOPICS)
    return settings


def _reading(device: str, n: int, at: datetime) -> Outgoing:
    value = {
        "event_id": f"{device}-{n}",
        "device_id": device,
        "kind": "water_level",
        "value": 1.0 + n / 100,
        "unit": "m",
        "observed_at": at.isoformat(),
    }
    return Outgoing(at, "sensor.readings", device.encode(), orjson.dumps(value))


def _recording(tmp_path: Path, records: list[Outgoing]) -> Path:
    path = tmp_path / "traffic.jsonl"
    with path.open("wb") as out:
        write_jsonl(records, out)
    return path


def _by_key(records: Sequence[tuple[bytes, bytes | None]]) -> dict[bytes, list[Any]]:
    grouped: dict[bytes, list[Any]] = defaultdict(list)
    for key, value in records:
        grouped[key].append(None if value is None else orjson.loads(value))
    return grouped


def test_replay_sends_every_record_in_order_per_key(
    settings: Settings, kafka_bootstrap: str, tmp_path: Path
) -> None:
    records = [_reading(f"wl-{n % 3}", n, T0 + timedelta(seconds=n)) for n in range(30)] + [
        Outgoing(
            T0,
            "video.events",
            b"cam-1",
            orjson.dumps(
                {
                    "event_id": "cam-1-0",
                    "camera_id": "cam-1",
                    "event_type": "illegal_parking",
                    "confidence": 0.8,
                    "observed_at": T0.isoformat(),
                }
            ),
        ),
        Outgoing(T0, "devices.registry", b"wl-9", b'{"device_id": "wl-9"}'),
        Outgoing(T0, "devices.registry", b"wl-9", None),  # then removed: a tombstone
    ]
    path = _recording(tmp_path, records)
    calls: list[tuple[int, int]] = []

    sent = asyncio.run(
        replay(settings, path, speed=None, progress=lambda *call: calls.append(call))
    )

    assert sent == len(records)
    assert calls[-1] == (len(records), len(records))
    for contract, field in [
        ("sensor.readings", "sensor_readings"),
        ("video.events", "video_events"),
        ("devices.registry", "devices_registry"),
    ]:
        mine = [r for r in records if r.topic == contract]
        expected = _by_key([(r.key, r.value) for r in mine])
        got = consume(kafka_bootstrap, settings.topic(field), len(mine), settle=0.5)
        assert _by_key(got) == expected, contract


def test_replay_at_speed_keeps_the_pace(settings: Settings, tmp_path: Path) -> None:
    # 20 s of event time at 20 times the original pace: about a second.
    records = [_reading("wl-1", n, T0 + timedelta(seconds=n)) for n in range(21)]
    path = _recording(tmp_path, records)
    started = time.monotonic()
    assert asyncio.run(replay(settings, path, speed=20)) == 21
    elapsed = time.monotonic() - started
    assert 0.95 <= elapsed < 10


def test_a_bad_line_fails_before_anything_is_sent(
    settings: Settings, kafka_bootstrap: str, tmp_path: Path
) -> None:
    path = _recording(tmp_path, [_reading("wl-1", n, T0) for n in range(3)])
    with path.open("ab") as out:
        out.write(b'{"at": "2026-07-01T08:00:00+00:00", "topic": "sensor.readings"}\n')
    with pytest.raises(StreamsError, match=r"traffic\.jsonl:4: not a cityops record line"):
        asyncio.run(replay(settings, path, speed=None))
    assert end_offsets(kafka_bootstrap, settings.topic("sensor_readings")) == 0


def test_an_unknown_topic_fails_before_anything_is_sent(
    settings: Settings, kafka_bootstrap: str, tmp_path: Path
) -> None:
    records = [_reading("wl-1", 0, T0), Outgoing(T0, "sensor.raw", b"x", b"{}")]
    path = _recording(tmp_path, records)
    with pytest.raises(StreamsError, match=r"record 2: unknown topic 'sensor\.raw'"):
        asyncio.run(replay(settings, path, speed=None))
    assert end_offsets(kafka_bootstrap, settings.topic("sensor_readings")) == 0


def test_a_bad_speed_is_refused(settings: Settings, tmp_path: Path) -> None:
    path = _recording(tmp_path, [_reading("wl-1", 0, T0)])
    with pytest.raises(StreamsError, match="speed must be positive"):
        asyncio.run(replay(settings, path, speed=0))
