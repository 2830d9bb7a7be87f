"""Measure the simulator: building the 2025 fleet, generating its traffic, sending it to Kafka.

Run ``python -m streams.simulate.bench [--sensors 20000 --cameras 13000 --minutes 10]
[--json PATH]``. It uses the configured broker (``CITYOPS_BROKER_URL``) or starts a local one
in a temporary directory, and measures:

1. **fleet build**: :func:`~streams.simulate.fleet.build_fleet` over the Heyuan grid;
2. **generation**: ``--minutes`` of normal-day traffic (:class:`~streams.simulate.background.
   Background`) as fast as possible, a simulated minute at a time, records and JSON included;
3. **end to end**: the same traffic generated again and sent with
   :class:`~streams.simulate.send.Sender` to fresh topics (a unique topic prefix), until the
   broker has acknowledged every record;
4. the fleet's **real-time rate**: events per simulated minute, for the measured window (it
   starts at 08:00 in Heyuan, the morning rush) and on average over a day;
5. the process's **peak RSS**.

The fleet's registrations go to the registry topic first, outside the timings. The topics are
deleted at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import geo
from schemas import Device, DeviceType
from streams.broker.local import LocalBroker
from streams.ports import free_port
from streams.settings import Settings
from streams.simulate.background import Background
from streams.simulate.fleet import build_fleet, registrations
from streams.simulate.send import Sender
from streams.topics import admin_client, ensure_topics

__all__ = ["main"]

_TOPICS = ["sensor_readings", "video_events", "devices_registry"]
# 08:00 in Heyuan on a summer weekday: the morning rush, the busiest cameras of the day.
_START = datetime(2026, 7, 1, 0, 0, tzinfo=UTC)
_CAMERA_EVENTS_PER_HOUR = 2.0


def main() -> None:
    """Run the benchmark, print its numbers and write them as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sensors", type=int, default=20_000)
    parser.add_argument("--cameras", type=int, default=13_000)
    parser.add_argument("--minutes", type=int, default=10, help="simulated minutes of traffic")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=Path("bench-results/simulate.json"))
    parser.add_argument("--keep", action="store_true", help="keep the topics")
    args = parser.parse_args()
    base = Settings()
    with tempfile.TemporaryDirectory(prefix="cityops-bench-simulate-") as tmp:
        broker = None
        if base.embedded_broker:
            base = base.model_copy(
                update={
                    "data_dir": Path(tmp) / "data",
                    "local_broker_port": free_port(),
                    "local_controller_port": free_port(),
                }
            )
            broker = LocalBroker(base)
            broker.start()
        try:
            result = asyncio.run(_run(args, base))
        finally:
            if broker is not None:
                broker.stop()
    result["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_1m": os.getloadavg()[0],
    }
    _print(result)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", "utf-8")
    print(f"wrote {args.json}")


async def _run(args: argparse.Namespace, base: Settings) -> dict[str, Any]:
    hierarchy = geo.load_heyuan()
    started = time.perf_counter()
    fleet = build_fleet(hierarchy, sensors=args.sensors, cameras=args.cameras, seed=args.seed)
    fleet_s = time.perf_counter() - started
    print(f"fleet: {len(fleet):,} devices in {fleet_s:.2f} s", flush=True)

    end = _START + timedelta(minutes=args.minutes)
    started = time.perf_counter()
    background = Background(
        fleet, _START, seed=args.seed, camera_events_per_hour=_CAMERA_EVENTS_PER_HOUR
    )
    generated = 0
    for minute in range(1, args.minutes + 1):
        generated += len(background.until(_START + timedelta(minutes=minute)))
    generation_s = time.perf_counter() - started
    print(f"generation: {generated:,} events in {generation_s:.2f} s", flush=True)

    run = uuid.uuid4().hex[:8]
    settings = base.model_copy(update={"topic_prefix": f"bench-sim-{run}.", "app_id": run})
    await asyncio.to_thread(ensure_topics, settings, _TOPICS)
    try:
        async with Sender(settings) as sender:
            started = time.perf_counter()
            await sender.send(registrations(fleet, _START))
            await sender.flush()
            registry_s = time.perf_counter() - started
            started = time.perf_counter()
            background = Background(
                fleet, _START, seed=args.seed, camera_events_per_hour=_CAMERA_EVENTS_PER_HOUR
            )
            for minute in range(1, args.minutes + 1):
                await sender.send(background.until(_START + timedelta(minutes=minute)))
            await sender.flush()
            end_to_end_s = time.perf_counter() - started
        print(f"end to end: {generated:,} events acked in {end_to_end_s:.2f} s", flush=True)
    finally:
        if not args.keep:
            await asyncio.to_thread(_delete, settings)
    return {
        "benchmark": "simulate",
        "sensors": args.sensors,
        "cameras": args.cameras,
        "simulated_minutes": args.minutes,
        "window": f"{_START.isoformat()} to {end.isoformat()}",
        "events": generated,
        "fleet_build_s": fleet_s,
        "generation_s": generation_s,
        "generation_events_per_s": generated / generation_s,
        "registry_records_per_s": len(fleet) / registry_s,
        "end_to_end_s": end_to_end_s,
        "end_to_end_events_per_s": generated / end_to_end_s,
        "events_per_simulated_minute": generated / args.minutes,
        "events_per_simulated_minute_day_average": _day_average(fleet),
        "topic_partitions": settings.topic_partitions,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _day_average(fleet: list[Device]) -> float:
    """Return the events per minute averaged over a day: sensors on their intervals, cameras."""
    sensors = sum(60 / d.expected_interval_s for d in fleet if d.device_type is DeviceType.SENSOR)
    cameras = sum(d.device_type is DeviceType.CAMERA for d in fleet) * _CAMERA_EVENTS_PER_HOUR / 60
    return sensors + cameras


def _print(result: dict[str, Any]) -> None:
    per_minute = result["events_per_simulated_minute"]
    average = result["events_per_simulated_minute_day_average"]
    rows = [
        ("fleet", f"{result['sensors']:,} sensors + {result['cameras']:,} cameras"),
        ("fleet build", f"{result['fleet_build_s']:.2f} s"),
        (
            "generation alone",
            f"{result['generation_events_per_s']:,.0f} events/s "
            f"({result['events']:,} in {result['generation_s']:.2f} s)",
        ),
        (
            "end to end",
            f"{result['end_to_end_events_per_s']:,.0f} events/s "
            f"(generate + serialize + produce, acked; {result['end_to_end_s']:.2f} s)",
        ),
        (
            "real-time rate",
            f"{per_minute:,.0f} events per simulated minute ({per_minute / 60:,.0f}/s) "
            f"at 08:00; {average:,.0f} ({average / 60:,.0f}/s) on average over a day",
        ),
        ("peak RSS", f"{result['peak_rss_mib']:,.0f} MiB"),
        (
            "machine",
            f"{result['machine']['cpus']} CPUs, load {result['machine']['load_average_1m']:.1f}",
        ),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def _delete(settings: Settings) -> None:
    admin = admin_client(settings)
    try:
        admin.delete_topics([settings.topic(name) for name in _TOPICS])
    finally:
        admin.close()


if __name__ == "__main__":
    main()
