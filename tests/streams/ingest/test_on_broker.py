"""Ingest in a real worker process on the real broker: every record accounted for, also across
a SIGKILL."""

from __future__ import annotations

import signal
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from schemas import DeadLetter, LocatedEvent
from tests.helpers import consume, end_offsets, produce, scrape, start_cli, stop, wait_for_topics
from tests.streams.ingest.samples import (
    DEVICES,
    invalid_readings,
    reading,
    register_devices,
    video,
)
from tests.streams.ingest.test_deepstream import message as deepstream_message
from tests.streams.ingest.test_frigate import message as frigate_message

pytestmark = pytest.mark.integration

Records = list[
    tuple[bytes | None, bytes | None] | tuple[bytes | None, bytes, list[tuple[str, bytes]]]
]


def invalid_video(now: datetime) -> list[tuple[str, tuple[bytes, bytes, list[tuple[str, bytes]]]]]:
    """Invalid video events, each with its reason: (reason, (key, value, headers))."""
    return [
        ("unknown_kind", (b"cam-001", video("v-kind", at=now, event_type="ufo"), [])),
        ("schema_violation", (b"cam-001", video("v-conf", at=now, confidence=1.5), [])),
        ("unsupported_format", (b"cam-001", video("v-format", at=now), [("format", b"hikvision")])),
        ("unknown_device", (b"cam-404", video("v-ghost", at=now, camera_id="cam-404"), [])),
    ]


def producer_formats(now: datetime) -> tuple[Records, Records]:
    """Frigate and DeepStream messages modelled on their documentation, observed ``now``.

    Frigate: one person tracked on a river bank (new, update, end: one event, two duplicates)
    and a false positive. DeepStream: a parked vehicle on its own topic and another on the
    shared video topic with a ``format`` header; 0/0 positions, so the registry places them.
    """
    start = now.timestamp()
    river = {
        "camera": "cam-001",
        "start_time": start,
        "current_zones": ["river_bank"],
        "entered_zones": ["river_bank"],
    }
    frigate: Records = [(None, frigate_message(kind, **river)) for kind in ("new", "update", "end")]
    frigate.append((None, frigate_message("update", **river, id="1.5-ghost", false_positive=True)))
    stamp = now.isoformat().replace("+00:00", "Z")
    parked = {
        "sensor__id": "cam-001",
        "sensor__location": {"lat": 0.0, "lon": 0.0, "alt": 0.0},
        "@timestamp": stamp,
    }
    deepstream: Records = [
        (b"cam-001", deepstream_message(**parked)),
        (
            b"cam-001",
            deepstream_message(**parked, messageid="b2f1c0de-0000-4000-8000-000000000002"),
            [("format", b"deepstream")],
        ),
    ]
    return frigate, deepstream


def outcomes(port: int, prefix: str) -> dict[str, float]:
    samples = scrape(port)
    totals: Counter[str] = Counter()
    for (name, labels), value in samples.items():
        label = dict(labels)
        if name == "cityops_input_events_total" and label["topic"].startswith(prefix):
            totals[label["outcome"]] += value
    return dict(totals)


def wait_for_outcomes(
    port: int, prefix: str, total: int, timeout: float = 60.0
) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    seen: dict[str, float] = {}
    while time.monotonic() < deadline:
        seen = outcomes(port, prefix)
        if sum(seen.values()) >= total:
            return seen
        time.sleep(0.5)
    return seen


def test_every_record_ends_located_dead_lettered_or_counted_as_duplicate(
    broker_env: dict[str, str], kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix = broker_env["CITYOPS_TOPIC_PREFIX"]
    port = int(broker_env["CITYOPS_WEB_PORT"])
    now = datetime.now(UTC)
    valid_readings = [(b"wl-001", reading(f"r-{n}", at=now)) for n in range(150)]
    valid_readings += [(b"wl-002", reading(f"r2-{n}", "wl-002", at=now)) for n in range(50)]
    valid_video = [(b"cam-001", video(f"v-{n}", at=now)) for n in range(40)]
    bad_readings = invalid_readings(now)
    bad_video = invalid_video(now)
    duplicates = valid_readings[:15] + valid_video[:5]
    frigate, deepstream = producer_formats(now)
    expected_reasons = Counter(reason for reason, _ in bad_readings + bad_video)
    expected_reasons["false_positive"] += 1
    expected_reasons["invalid_device"] += 1  # the registry record below, not an input event
    valid_formats, format_duplicates = 3, 2  # see producer_formats

    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = start_cli(["worker"], broker_env, log)
        try:
            wait_for_topics(kafka_bootstrap, [f"{prefix}devices.registry"])
            register_devices(kafka_bootstrap, prefix, port)
            produce(kafka_bootstrap, f"{prefix}devices.registry", [(b"bad-001", b"{}")])
            produce(
                kafka_bootstrap,
                f"{prefix}sensor.readings",
                valid_readings + [(b"k", raw) for _, raw in bad_readings],
            )
            produce(
                kafka_bootstrap,
                f"{prefix}video.events",
                valid_video + [record for _, record in bad_video],
            )
            produce(kafka_bootstrap, f"{prefix}sensor.readings", duplicates[:15])
            produce(kafka_bootstrap, f"{prefix}video.events", duplicates[15:])
            produce(kafka_bootstrap, f"{prefix}video.frigate", frigate)
            produce(kafka_bootstrap, f"{prefix}video.deepstream", deepstream[:1])
            produce(kafka_bootstrap, f"{prefix}video.events", deepstream[1:])
            valid = len(valid_readings) + len(valid_video) + valid_formats
            total = valid + expected_reasons.total() - 1 + len(duplicates) + format_duplicates
            located = consume(kafka_bootstrap, f"{prefix}events.located", expected=valid, settle=2)
            dead = consume(
                kafka_bootstrap,
                f"{prefix}events.deadletter",
                expected=expected_reasons.total(),
                settle=1,
            )
            counted = wait_for_outcomes(port, prefix, total)
            samples = scrape(port)
        finally:
            code = stop(worker, signal.SIGINT)
    output = log_path.read_text()
    assert code == 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]

    events = [LocatedEvent.model_validate_json(value) for _, value in located]
    ids = Counter((event.device_id, event.event.event_id) for event in events)
    assert len(events) == valid
    by_format = Counter(event.event.event_id.split(":")[0] for event in events)
    assert (by_format["frigate"], by_format["deepstream"]) == (1, 2)
    assert max(ids.values()) == 1  # nothing located twice
    assert {key for key, _ in located} == {b"441602", b"441622"}  # keyed by county
    assert all(
        key.decode() == event.location.county
        for (key, _), event in zip(located, events, strict=False)
    )

    letters = [DeadLetter.model_validate_json(value) for _, value in dead]
    assert Counter(letter.reason.value for letter in letters) == expected_reasons

    assert counted == {
        "located": len(events),
        "dead_letter": expected_reasons.total() - 1,
        "duplicate": len(duplicates) + format_duplicates,
    }
    assert samples[("cityops_registry_rejected_total", ())] == 1
    assert samples[("cityops_devices_registered", ())] == len(DEVICES)
    # Faust's own monitor is on the same page.
    assert any(name.startswith("faust_") for name, _ in samples)


def test_a_worker_killed_mid_stream_loses_nothing_and_locates_nothing_twice(
    broker_env: dict[str, str], kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix = broker_env["CITYOPS_TOPIC_PREFIX"]
    port = int(broker_env["CITYOPS_WEB_PORT"])
    # Small batches and frequent commits make the kill land between commits.
    env = {**broker_env, "CITYOPS_INGEST_BATCH_SIZE": "50"}
    now = datetime.now(UTC)
    valid = [
        (f"wl-00{1 + n % 2}".encode(), reading(f"k-{n}", f"wl-00{1 + n % 2}", at=now))
        for n in range(30_000)
    ]
    bad = invalid_readings(now)
    stream = [*valid[:15_000], *((b"k", raw) for _, raw in bad), *valid[15_000:]]

    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        first = start_cli(["worker"], env, log)
        try:
            wait_for_topics(kafka_bootstrap, [f"{prefix}devices.registry"])
            register_devices(kafka_bootstrap, prefix, port)
            produce(kafka_bootstrap, f"{prefix}sensor.readings", stream)
            deadline = time.monotonic() + 120
            while end_offsets(kafka_bootstrap, f"{prefix}events.located") < 10_000:
                assert time.monotonic() < deadline, log_path.read_text()[-3000:]
                time.sleep(0.05)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
        located_at_kill = end_offsets(kafka_bootstrap, f"{prefix}events.located")
        dead_at_kill = end_offsets(kafka_bootstrap, f"{prefix}events.deadletter")

        second = start_cli(["worker"], env, log)
        try:
            located = consume(
                kafka_bootstrap,
                f"{prefix}events.located",
                expected=len(valid),
                timeout=180,
                settle=3,
            )
            dead = consume(
                kafka_bootstrap, f"{prefix}events.deadletter", expected=len(bad), settle=1
            )
            counted = outcomes(port, prefix)
        finally:
            code = stop(second, signal.SIGINT)
    output = log_path.read_text()
    assert code == 0, output[-3000:]
    assert located_at_kill < len(valid), "the kill came after the end: nothing was tested"

    ids = Counter(orjson.loads(value)["event"]["event_id"] for _, value in located)
    lost = sorted(int(i.split("-")[1]) for i in {f"k-{n}" for n in range(len(valid))} - set(ids))
    assert not lost, (len(lost), lost[:3], lost[-3:], located_at_kill, counted, output[-2000:])
    assert max(ids.values()) == 1, [i for i, n in ids.items() if n > 1][:5]  # nothing twice
    reasons = Counter(DeadLetter.model_validate_json(value).reason.value for _, value in dead)
    assert reasons == Counter(reason for reason, _ in bad)
    # The second worker accounts for what it read: it located and dead-lettered exactly what
    # the first had not, and counted as duplicates the redelivered records the first had done.
    assert counted["located"] == len(valid) - located_at_kill
    assert counted["dead_letter"] == len(bad) - dead_at_kill
    assert counted["duplicate"] > 0  # the kill came between commits: something was redelivered
