"""The ingest agents: raw input topics to ``events.located`` and ``events.deadletter``.

The agent bodies only move records: :class:`~streams.ingest.pipeline.Ingest` decides. Both are
kept at concurrency 1: with more, Faust can commit past an in-flight message (faust-streaming
issue 606); ingest scales with partitions and worker processes instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import faust
from faust.types import TP, EventT

from streams.exceptions import Rejected
from streams.failstop import fail_stop
from streams.ingest.decode import FORMAT_HEADER, Format
from streams.ingest.pipeline import Record, dead_letter_message
from streams.ingest.recovery import recover
from streams.produce import send_batched
from streams.registry import parse_registration

if TYPE_CHECKING:
    from streams.app import CityOpsApp

__all__ = ["input_formats", "register_ingest"]


def input_formats(app: CityOpsApp) -> dict[str, Format]:
    """Return the producer format of each input topic."""
    settings = app.cityops_settings
    return {
        settings.topic("sensor_readings"): Format.SENSOR,
        settings.topic("video_events"): Format.VIDEO,
        settings.topic("frigate_events"): Format.FRIGATE,
        settings.topic("deepstream_events"): Format.DEEPSTREAM,
    }


def register_ingest(app: CityOpsApp) -> None:
    """Register the ``ingest_events`` and ``check_registrations`` agents on ``app``."""
    settings = app.cityops_settings
    located_topic = settings.topic("events_located")
    dead_topic = settings.topic("events_deadletter")
    sources = app.topic(*input_formats(app))

    # Closed from a revocation until recovery after the next assignment is done. Faust resumes
    # fetching before it sends on_partitions_assigned, so pausing alone would let a batch of a
    # new partition through before ingest knows what it wrote before.
    recovered = asyncio.Event()

    @app.agent(sources, name="ingest_events", concurrency=1)
    async def ingest_events(stream: faust.StreamT[bytes]) -> None:
        # take_events is Faust's (since 0.10) but missing from its StreamT protocol.
        batches = stream.take_events(  # type: ignore[attr-defined]
            settings.ingest_batch_size, within=settings.ingest_batch_wait_s
        )
        with fail_stop("ingest"):
            async for events in batches:
                if not recovered.is_set():
                    await recovered.wait()
                result = app.ingest.process(_records(events), datetime.now(UTC))
                await send_batched(app, located_topic, result.located)
                await send_batched(app, dead_topic, result.dead_letters)

    @app.agent(
        app.topic(settings.topic("devices_registry")), name="check_registrations", concurrency=1
    )
    async def check_registrations(stream: faust.StreamT[bytes]) -> None:
        # Every worker reads the whole registry (streams.registry) and skips invalid records;
        # this agent sees each record once, so the dead letter is written once.
        with fail_stop("registry check"):
            async for event in stream.events():
                message = event.message
                try:
                    parse_registration(message.key, message.value)
                except Rejected as exc:
                    record = Record(
                        message.topic, message.partition, message.offset, message.key, message.value
                    )
                    letter = dead_letter_message(record, exc, datetime.now(UTC).isoformat())
                    await send_batched(app, dead_topic, [letter])
                    app.metrics.registry_rejected.inc()

    # Faust's signal protocol wants a ``signal`` keyword in the signature; it passes it in
    # ``**_`` like any other.
    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def hold_ingest(sender: faust.App, revoked: set[TP], **_: object) -> None:
        recovered.clear()

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def recover_outputs(sender: faust.App, assigned: set[TP], **_: object) -> None:
        if any(tp.topic in app.ingest.formats for tp in assigned):
            await asyncio.to_thread(recover, settings, app.ingest, datetime.now(UTC).timestamp())
        recovered.set()


def _records(events: Sequence[EventT[bytes]]) -> list[Record]:
    records = []
    for event in events:
        message = event.message
        records.append(
            Record(
                message.topic,
                message.partition,
                message.offset,
                message.key,
                message.value,
                _header(message.headers) if message.headers else None,
            )
        )
    return records


def _header(headers: Iterable[tuple[str, bytes]] | Mapping[str, bytes]) -> bytes | None:
    items = headers.items() if isinstance(headers, Mapping) else headers
    for name, value in items:
        if name == FORMAT_HEADER:
            return value
    return None
