"""Measure ingest on the real broker, next to a plain aiokafka consume→produce loop.

Run ``python -m streams.ingest.bench [--events N] [--json PATH]`` (``make bench-ingest``). It
uses the configured broker, or starts a local one in a temporary directory, and:

1. registers a fleet of devices spread over every county and puts ``N`` sensor readings on
   ``sensor.readings`` (1 % duplicates, 1 % invalid), before anything consumes them;
2. **baseline**: a plain aiokafka loop reads them and writes each to another topic unchanged,
   with the same batching and acks as the worker's producer;
3. **ingest**: one ``cityops worker`` process reads the same backlog, validates, deduplicates,
   locates and writes them;
4. **latency**: with the worker running, a producer sends readings at a steady rate stamped
   with the time of sending; observed → located is read from the located events;
5. **with detection**: the same backlog under a fresh topic prefix, read by one worker running
   ingest and detection (steps 3 and 4 run it with ``CITYOPS_DETECTION_ENABLED=false``), until
   detection has applied every located event (its ``cityops_detection_events_total``).

Throughput is records read per second between the first and the last output record (record
timestamps), so start-up does not count. The figures that matter are the ratios to the baseline:
all run on the same machine and broker in the same minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

import geo
from schemas import Datum, Device, DeviceType, Position, SensorKind
from streams.broker.local import LocalBroker
from streams.ports import free_port
from streams.settings import Settings
from streams.topics import aiokafka_config, ensure_topics, partitions_of

__all__ = ["main"]

_KINDS = [SensorKind.WATER_LEVEL, SensorKind.PM25, SensorKind.NOISE, SensorKind.COMBUSTIBLE_GAS]
_UNITS = {
    SensorKind.WATER_LEVEL: "m",
    SensorKind.PM25: "ug/m3",
    SensorKind.NOISE: "dB(A)",
    SensorKind.COMBUSTIBLE_GAS: "%LEL",
}


def fleet(hierarchy: geo.Hierarchy, count: int, rng: random.Random) -> list[Device]:
    """``count`` fixed sensors, each at a point inside a random grid cell."""
    cells = hierarchy.table("cell")
    picks = rng.sample(range(len(cells.codes)), k=min(count, len(cells.codes)))
    devices = []
    for n in range(count):
        point = cells.geometries[picks[n % len(picks)]].representative_point()
        kind = _KINDS[n % len(_KINDS)]
        devices.append(
            Device(
                device_id=f"bench-{n:05d}",
                device_type=DeviceType.SENSOR,
                kind=kind,
                position=Position(lon=point.x, lat=point.y, datum=Datum(hierarchy.datum.value)),
                department="水务",
                expected_interval_s=60,
            )
        )
    return devices


def readings(
    devices: list[Device], count: int, rng: random.Random, tag: str
) -> tuple[list[tuple[bytes, bytes]], int]:
    """Return ``count`` raw readings and how many should be located.

    98 % are valid, 1 % duplicates, 1 % invalid.
    Values wander around each kind's usual level; one device in a hundred reads above its
    alarm level, so detection raises and updates incidents as well as checking thresholds.
    """
    records: list[tuple[bytes, bytes]] = []
    valid = 0
    for n in range(count):
        index = n % len(devices)
        device = devices[index]
        roll = rng.random()
        if roll < 0.01 and records:
            records.append(records[-1])  # a producer retry
            continue
        if roll < 0.02:
            records.append((device.device_id.encode(), b'{"event_id": "truncated'))
            continue
        value = _value(device, rng, alarm=index % 100 == 0)
        records.append((device.device_id.encode(), _reading(device, f"{tag}-{n}", value)))
        valid += 1
    return records, valid


# Usual level, spread, and a level above the lowest alarm of the shipped Heyuan rules.
_LEVELS = {
    SensorKind.WATER_LEVEL: (1.5, 0.3, 3.5),
    SensorKind.PM25: (40.0, 10.0, 130.0),
    SensorKind.NOISE: (55.0, 5.0, 80.0),
    SensorKind.COMBUSTIBLE_GAS: (2.0, 0.5, 15.0),
}


def _value(device: Device, rng: random.Random, *, alarm: bool) -> float:
    if device.kind is None:
        raise ValueError(f"{device.device_id} is not a sensor")
    usual, spread, high = _LEVELS[device.kind]
    return round(max(0.0, (high if alarm else usual) + rng.gauss(0, spread)), 2)


def _reading(device: Device, event_id: str, value: float) -> bytes:
    if device.kind is None:
        raise ValueError(f"{device.device_id} is not a sensor")
    return orjson.dumps(
        {
            "event_id": event_id,
            "device_id": device.device_id,
            "kind": device.kind.value,
            "value": value,
            "unit": _UNITS[device.kind],
            "observed_at": datetime.now(UTC).isoformat(),
        }
    )


async def _produce(settings: Settings, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(
        **aiokafka_config(settings), acks="all", linger_ms=5, max_batch_size=256 * 1024
    )
    await producer.start()
    try:
        for key, value in records:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


async def _baseline(settings: Settings, source: str, target: str, count: int) -> None:
    """Read ``count`` records of ``source`` and write each to ``target``.

    The floor of any Python consume→produce stage.
    """
    consumer = AIOKafkaConsumer(
        **aiokafka_config(settings),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = AIOKafkaProducer(**aiokafka_config(settings), acks="all")
    await consumer.start()
    await producer.start()
    try:
        consumer.assign([TopicPartition(source, p) for p in partitions_of(settings, source)])
        done = 0
        while done < count:
            batches = await consumer.getmany(timeout_ms=500, max_records=2_000)
            for records in batches.values():
                for record in records:
                    await producer.send(target, record.value, key=record.key)
                done += len(records)
        await producer.flush()
    finally:
        await consumer.stop()
        await producer.stop()


async def _span(
    settings: Settings, topic: str, expected: int, wait_s: float
) -> tuple[float, list[bytes]]:
    """Return the seconds between the first and last record of ``topic``, and the values.

    Waits until the topic holds ``expected`` records.
    """
    values, stamps = await _read(settings, topic, expected, wait_s)
    return (max(stamps) - min(stamps)) / 1000, values


async def _read(
    settings: Settings, topic: str, expected: int, wait_s: float
) -> tuple[list[bytes], list[int]]:
    """Return the values and timestamps (ms) of ``topic``, once it holds ``expected``."""
    consumer = AIOKafkaConsumer(
        **aiokafka_config(settings),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    values: list[bytes] = []
    stamps: list[int] = []
    try:
        consumer.assign([TopicPartition(topic, p) for p in partitions_of(settings, topic)])
        deadline = time.monotonic() + wait_s
        while len(values) < expected:
            if time.monotonic() > deadline:
                raise SystemExit(f"{topic}: {len(values)} of {expected} records after {wait_s} s")
            for records in (await consumer.getmany(timeout_ms=500)).values():
                values.extend(record.value or b"" for record in records)
                stamps.extend(record.timestamp for record in records)
    finally:
        await consumer.stop()
    return values, stamps


def _percentiles(values: list[float]) -> dict[str, float]:
    array = np.array(values)
    return {f"p{q}": float(np.percentile(array, q)) for q in (50, 90, 95, 99)} | {
        "max": float(array.max())
    }


def main() -> None:
    """Run the benchmark, print its numbers and write them as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="backlog size")
    parser.add_argument("--devices", type=int, default=3_000)
    parser.add_argument("--rate", type=int, default=2_000, help="latency phase, events/s")
    parser.add_argument("--seconds", type=int, default=15, help="latency phase length")
    parser.add_argument("--json", type=Path, default=Path("bench-results/ingest.json"))
    parser.add_argument(
        "--profile", type=Path, help="write cProfiles of the workers here (.ingest/.detect.prof)"
    )
    args = parser.parse_args()
    rng = random.Random(20261203)  # noqa: S311 - reproducible data, not secrets
    base = Settings()
    with tempfile.TemporaryDirectory(prefix="cityops-bench-") as tmp:
        broker = None
        if base.embedded_broker:
            ports = [free_port() for _ in range(2)]
            base = base.model_copy(
                update={
                    "data_dir": Path(tmp) / "data",
                    "local_broker_port": ports[0],
                    "local_controller_port": ports[1],
                }
            )
            broker = LocalBroker(base)
            broker.start()
        try:
            result = asyncio.run(_run(args, base, rng, Path(tmp)))
        finally:
            if broker is not None:
                broker.stop()
    result["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")


async def _run(
    args: argparse.Namespace, base: Settings, rng: random.Random, tmp: Path
) -> dict[str, Any]:
    hierarchy = geo.load_heyuan()
    devices = fleet(hierarchy, args.devices, rng)
    backlog, valid = readings(devices, args.events, rng, "backlog")
    settings = await _stage(base, tmp / "ingest", devices, backlog)
    source = settings.topic("sensor_readings")
    print(f"backlog: {len(backlog)} readings ({valid} valid) on {source}", flush=True)

    baseline_topic = settings.topic_prefix + "bench.baseline"
    await asyncio.to_thread(_create, settings, baseline_topic)
    await _baseline(settings, source, baseline_topic, len(backlog))
    span, _ = await _span(settings, baseline_topic, len(backlog), wait_s=600)
    baseline_eps = len(backlog) / span
    print(f"baseline aiokafka consume→produce: {baseline_eps:,.0f} records/s", flush=True)

    located_topic = settings.topic("events_located")
    with _worker(settings, args, tmp, "ingest", detection=False) as worker:
        span, _ = await _span(settings, located_topic, valid, wait_s=900)
        ingest_eps = len(backlog) / span
        print(
            f"ingest alone (one worker): {ingest_eps:,.0f} records/s "
            f"= {ingest_eps / baseline_eps:.2f} of baseline",
            flush=True,
        )
        latency = await _latency(settings, devices, args.rate, args.seconds, valid)
        print(
            f"latency observed→located at {args.rate:,} events/s: "
            + " ".join(f"{k}={v * 1000:.0f}ms" for k, v in latency.items()),
            flush=True,
        )
        rss = _peak_rss_mib(worker.pid)
        print(f"worker peak RSS: {rss:.0f} MiB", flush=True)

    settings = await _stage(base, tmp / "detect", devices, backlog)
    with _worker(settings, args, tmp, "detect", detection=True) as worker:
        done_at = await _detected(settings.web_port, valid, wait_s=900)
        first = await _first_stamp(settings, settings.topic("events_located"), valid)
        detect_eps = len(backlog) / (done_at - first)
        print(
            f"ingest + detection (one worker): {detect_eps:,.0f} records/s "
            f"= {detect_eps / baseline_eps:.2f} of baseline, "
            f"{detect_eps / ingest_eps:.2f} of ingest alone",
            flush=True,
        )
        detect_rss = _peak_rss_mib(worker.pid)
        incidents = await _count(settings, settings.topic("incidents_updates"))
        print(f"worker peak RSS: {detect_rss:.0f} MiB; {incidents} incident updates", flush=True)
    return {
        "benchmark": "ingest",
        "events": len(backlog),
        "valid": valid,
        "devices": len(devices),
        "baseline_records_per_s": baseline_eps,
        "ingest_records_per_s": ingest_eps,
        "ratio": ingest_eps / baseline_eps,
        "latency_rate_per_s": args.rate,
        "latency_s": latency,
        "worker_peak_rss_mib": rss,
        "with_detection": {
            "records_per_s": detect_eps,
            "ratio_to_baseline": detect_eps / baseline_eps,
            "ratio_to_ingest_alone": detect_eps / ingest_eps,
            "worker_peak_rss_mib": detect_rss,
            "incident_updates": incidents,
        },
        "batch_size": settings.ingest_batch_size,
        "detect_batch_size": settings.detect_batch_size,
    }


async def _stage(
    base: Settings, data_dir: Path, devices: list[Device], backlog: list[tuple[bytes, bytes]]
) -> Settings:
    """Create a fresh set of topics, register ``devices`` and put ``backlog`` on the input."""
    run = uuid.uuid4().hex[:8]
    settings = base.model_copy(
        update={
            "topic_prefix": f"bench-{run}.",
            "app_id": f"bench-{run}",
            "web_port": free_port(),
            "store": "memory",
            "data_dir": data_dir,
        }
    )
    await asyncio.to_thread(ensure_topics, settings)
    await _produce(
        settings,
        settings.topic("devices_registry"),
        [(d.device_id.encode(), d.model_dump_json().encode()) for d in devices],
    )
    await _produce(settings, settings.topic("sensor_readings"), backlog)
    return settings


@contextlib.contextmanager
def _worker(
    settings: Settings, args: argparse.Namespace, tmp: Path, name: str, *, detection: bool
) -> Iterator[subprocess.Popen[bytes]]:
    """Run one ``cityops worker``; keep its log beside the JSON."""
    env = {**os.environ, **_env(settings), "CITYOPS_DETECTION_ENABLED": str(detection).lower()}
    log_path = tmp / f"{name}.log"
    profile = []
    if args.profile:
        profile = ["-m", "cProfile", "-o", str(args.profile.with_suffix(f".{name}.prof"))]
    with log_path.open("wb") as log:
        worker = subprocess.Popen(  # noqa: S603 - fixed argument list
            [sys.executable, *profile, "-m", "streams.cli", "worker"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield worker
        finally:
            worker.send_signal(signal.SIGINT)
            worker.wait(timeout=90)
            log_copy = args.json.with_suffix(f".{name}.log")
            log_copy.parent.mkdir(parents=True, exist_ok=True)
            log_copy.write_bytes(log_path.read_bytes())


async def _detected(port: int, expected: int, wait_s: float) -> float:
    """Return the wall-clock time at which detection had taken ``expected`` located events."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            taken = await asyncio.to_thread(_detection_events, port)
        except OSError:  # not up yet
            taken = 0
        if taken >= expected:
            return time.time()
        if time.monotonic() > deadline:
            raise SystemExit(f"detection took {taken:.0f} of {expected} events in {wait_s} s")
        # A scrape costs the worker tens of milliseconds: poll gently, at ±0.5 s resolution.
        await asyncio.sleep(0.5)


def _detection_events(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "cityops_detection_events_total"
    )


async def _first_stamp(settings: Settings, topic: str, expected: int) -> float:
    """Return the earliest record timestamp of ``topic`` (seconds since the epoch)."""
    _, stamps = await _read(settings, topic, expected, wait_s=120)
    return min(stamps) / 1000


async def _count(settings: Settings, topic: str) -> int:
    """Return how many records ``topic`` holds."""
    consumer = AIOKafkaConsumer(**aiokafka_config(settings), group_id=None)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in partitions_of(settings, topic)]
        return sum((await consumer.end_offsets(parts)).values())
    finally:
        await consumer.stop()


async def _latency(
    settings: Settings, devices: list[Device], rate: int, seconds: int, already: int
) -> dict[str, float]:
    producer = AIOKafkaProducer(**aiokafka_config(settings), acks="all", linger_ms=1)
    await producer.start()
    source = settings.topic("sensor_readings")
    sent = 0
    try:
        start = time.monotonic()
        while sent < rate * seconds:
            due = int((time.monotonic() - start) * rate)
            for _ in range(max(0, min(due, rate * seconds) - sent)):
                device = devices[sent % len(devices)]
                usual = _LEVELS[device.kind][0] if device.kind else 0.0
                await producer.send(
                    source, _reading(device, f"live-{sent}", usual), key=device.device_id.encode()
                )
                sent += 1
            await asyncio.sleep(0.005)
        await producer.flush()
    finally:
        await producer.stop()
    _, values = await _span(settings, settings.topic("events_located"), already + sent, 120)
    latencies = []
    for record in values:
        document = orjson.loads(record)
        if document["event"]["event_id"].startswith("live-"):
            observed = datetime.fromisoformat(document["event"]["observed_at"])
            located = datetime.fromisoformat(document["ingested_at"])
            latencies.append((located - observed).total_seconds())
    return _percentiles(latencies)


def _env(settings: Settings) -> dict[str, str]:
    env = {
        "CITYOPS_TOPIC_PREFIX": settings.topic_prefix,
        "CITYOPS_APP_ID": settings.app_id,
        "CITYOPS_WEB_PORT": str(settings.web_port),
        "CITYOPS_STORE": settings.store,
        "CITYOPS_DATA_DIR": str(settings.data_dir),
    }
    if settings.embedded_broker:
        env["CITYOPS_BROKER_URL"] = f"kafka://127.0.0.1:{settings.local_broker_port}"
    return env


def _create(settings: Settings, topic: str) -> None:
    from kafka.admin import NewTopic  # noqa: PLC0415

    from streams.topics import admin_client  # noqa: PLC0415

    admin = admin_client(settings)
    try:
        admin.create_topics(
            [NewTopic(topic, settings.topic_partitions, settings.topic_replication_factor)]
        )
    finally:
        admin.close()


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


if __name__ == "__main__":
    main()
