"""The detection agent: ``events.located`` to ``incidents.updates``, state in a Faust table.

:class:`~streams.detect.detector.Detector` decides; this module feeds it a batch at a time,
mirrors its state into the ``detection`` table (changelog-backed, so it survives a killed worker
and moves with its partition), publishes the incidents it changed and dead-letters late and
invalid events.

After each batch, what changed in each county is written into the table's store and sent to
the county's changelog partition in Kafka batches (Faust's own path is one ``send`` per key).
The first record of each write is a journal holding all of it (see :meth:`Detector.changes`).
After a rebalance the state of each newly owned partition is loaded from the table at its first
event, and every incident it holds is published again: an update lost with a killed worker is
re-sent (with the same bytes when it was not lost), and none is raised twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import faust
import faust.streams as faust_streams
import orjson
from aiokafka.structs import RecordMetadata
from faust.types import TP, EventT
from pydantic import ValidationError

from schemas import DeadLetterReason, Incident, LocatedEvent, SensorReading
from streams.detect.border import CityState
from streams.detect.detector import Detector, Outcome
from streams.detect.rules import DEFAULT_RULES, RulesError, digest, parse_rules
from streams.exceptions import Rejected
from streams.failstop import fail_stop
from streams.indicators.agent import share_periodically
from streams.indicators.shares import EventRates, Share, device_shares
from streams.ingest.pipeline import Message, Record, dead_letter_message
from streams.produce import partition_for, send_batched

if TYPE_CHECKING:
    from streams.app import CityOpsApp

__all__ = ["register_border", "register_detection", "rules_path"]

log = logging.getLogger(__name__)

_SEP = "|"
_M = TypeVar("_M", LocatedEvent, Incident)
_WHAT: dict[type[Any], str] = {LocatedEvent: "a located event", Incident: "an incident"}


def rules_path(app: CityOpsApp) -> Path:
    """Return the rules file in force: ``CITYOPS_RULES_FILE``, else the shipped Heyuan rules."""
    return app.cityops_settings.rules_file or DEFAULT_RULES


def register_detection(app: CityOpsApp) -> None:
    """Register the ``detect_incidents`` agent, its table and the rules watcher on ``app``."""
    settings = app.cityops_settings
    located_topic = settings.topic("events_located")
    incidents_topic = settings.topic("incidents_updates")
    border_topic = settings.topic("incidents_border")
    dead_topic = settings.topic("events_deadletter")
    table = app.Table(
        "detection",
        partitions=settings.topic_partitions,
        key_type=bytes,  # bytes: Faust's "raw" codec, so batches written by hand match
        value_type=bytes,
        help="Detection state by county: devices, windows, sightings, incidents.",
    )
    # Partitions of events.located whose state is in the detector. Faust sends the assignment
    # signal after the fetcher has resumed, so a partition is loaded at its first event instead.
    loaded: set[int] = set()
    partitions = list(range(settings.topic_partitions))
    changelog = table.changelog_topic.get_topic_name()

    def persisted(delivered: RecordMetadata) -> None:
        # What Faust does for its own changelog writes: a RocksDB store then recovers from
        # here on instead of from the start (the in-memory store ignores it).
        store: Any = table.data
        store.set_persisted_offset(delivered.topic_partition, delivered.offset)

    @app.agent(app.topic(located_topic), name="detect_incidents", concurrency=1)
    async def detect_incidents(stream: faust.StreamT[bytes]) -> None:
        batches = stream.take_events(  # type: ignore[attr-defined]
            settings.detect_batch_size, within=settings.ingest_batch_wait_s
        )
        with fail_stop("detection"):
            async for events in batches:
                detector = app.detector
                sent: list[Incident] = []
                dead: list[Message] = []
                last_of_county: dict[str, EventT[bytes]] = {}
                towns: Counter[tuple[int, str]] = Counter()
                for event in events:
                    message = event.message
                    if message.partition not in loaded:
                        loaded.add(message.partition)
                        sent += _load(table, detector, message.partition, message.offset)
                    located = _parse(app, event, LocatedEvent, dead)
                    if located is None:
                        continue
                    outcome = detector.apply(located, message.offset)
                    _account(app, located, outcome, event, dead)
                    _time_incidents(app, outcome.incidents)
                    sent += outcome.incidents
                    last_of_county[located.location.county] = event
                    towns[(message.partition, located.location.town)] += 1
                rates.add(towns, time.time())
                for partition, records in _changes(table, detector, last_of_county).items():
                    await send_batched(
                        app, changelog, records, partition=partition, on_delivered=persisted
                    )
                await send_batched(app, incidents_topic, [_incident_message(app, i) for i in sent])
                border = [
                    Message(i.city.encode(), i.model_dump_json().encode())
                    for i in sent
                    if app.border.is_border(i)
                ]
                await send_batched(app, border_topic, border)
                await send_batched(app, dead_topic, dead)

    rates = EventRates()
    _share_devices(app, loaded, rates)

    @app.timer(settings.rules_check_interval_s, name="reload_rules")  # type: ignore[untyped-decorator]
    async def reload_rules() -> None:
        await asyncio.to_thread(check_rules, app)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def drop_detection(sender: faust.App, revoked: set[TP], **_: object) -> None:
        gone = {tp.partition for tp in revoked if tp.topic == located_topic}
        loaded.difference_update(gone)
        rates.drop(gone)
        for county in list(app.detector.counties):
            if partition_for(county.encode(), partitions) in gone:
                app.detector.drop(county)


def _changes(
    table: Any, detector: Detector, last_of_county: dict[str, EventT[bytes]]
) -> dict[int, list[Message]]:
    """Write each county's changes into the table's store; return its changelog records.

    By partition: the county's last event of the batch places them.
    """
    state: dict[int, list[Message]] = {}
    for county, event in last_of_county.items():
        changes = detector.changes(county)
        state.setdefault(event.message.partition, []).extend(_write(table, event, county, changes))
    return state


def _share_devices(app: CityOpsApp, loaded: set[int], rates: EventRates) -> None:
    """Publish the devices online and the event rates of the partitions held, for indicators."""
    partitions = list(range(app.cityops_settings.topic_partitions))
    app.metrics.devices_online.watch(lambda: _devices(app, offline=False))
    app.metrics.devices_offline.watch(lambda: _devices(app, offline=True))

    def shares() -> dict[str, dict[str, Share]]:
        now = time.time()
        detector, city = app.detector, app.escalator.city
        by_partition: dict[int, list[tuple[str, bool]]] = {number: [] for number in loaded}
        for county, state in list(detector.counties.items()):
            number = partition_for(county.encode(), partitions)
            if number in by_partition:
                by_partition[number] += [
                    (dev["cell"], "offline" not in dev)
                    for dev in state.dev.values()
                    if "interval" in dev
                ]
        return {
            f"devices.{number}": device_shares(
                devices,
                city=city,
                events=rates.last_minute(number, now),
            )
            for number, devices in sorted(by_partition.items())
        }

    share_periodically(app, "share_devices", shares)


def register_border(app: CityOpsApp) -> None:
    """Register the ``merge_border`` agent and its table on ``app`` (see ``border.py``)."""
    settings = app.cityops_settings
    incidents_topic = settings.topic("incidents_updates")
    dead_topic = settings.topic("events_deadletter")
    table = app.Table(
        "border",
        partitions=settings.topic_partitions,
        key_type=bytes,
        value_type=bytes,
        help="Border incidents and the city incidents joining them, by city.",
    )
    cities: dict[str, CityState] = {}
    loaded: set[int] = set()
    partitions = list(range(settings.topic_partitions))

    @app.agent(app.topic(settings.topic("incidents_border")), name="merge_border", concurrency=1)
    async def merge_border(stream: faust.StreamT[bytes]) -> None:
        # Few records (revisions of incidents on a county line): one at a time, written to
        # the table the plain Faust way.
        with fail_stop("border merge"):
            async for event in stream.events():
                message = event.message
                if message.partition not in loaded:
                    loaded.add(message.partition)
                    _load_border(table, cities, message.partition, partitions)
                dead: list[Message] = []
                update = _parse(app, event, Incident, dead)
                if update is None:
                    await send_batched(app, dead_topic, dead)
                    continue
                state = cities.setdefault(update.city, CityState())
                joined = app.border.apply(state, update)
                await send_batched(
                    app, incidents_topic, [_incident_message(app, i) for i in joined]
                )
                if state.members[update.incident_id] is update:
                    table[_SEP.join((update.city, "m", update.incident_id)).encode()] = (
                        message.value
                    )
                for incident in joined:
                    key = _SEP.join((incident.city, "c", incident.incident_id)).encode()
                    table[key] = incident.model_dump_json().encode()

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def drop_border(sender: faust.App, revoked: set[TP], **_: object) -> None:
        gone = {tp.partition for tp in revoked if tp.topic == settings.topic("incidents_border")}
        loaded.difference_update(gone)
        for city in [c for c in cities if partition_for(c.encode(), partitions) in gone]:
            del cities[city]


def _load_border(
    table: Any, cities: dict[str, CityState], partition: int, partitions: list[int]
) -> None:
    """Load the border state of every city of ``partition`` from the table."""
    for key, value in list(table.items()):
        city, kind, incident_id = key.decode().split(_SEP, 2)
        if partition_for(city.encode(), partitions) != partition:
            continue
        state = cities.setdefault(city, CityState())
        incident = Incident.model_validate_json(value)
        (state.members if kind == "m" else state.published)[incident_id] = incident
    log.info("border state of partition %d loaded: %d cities", partition, len(cities))


def check_rules(app: CityOpsApp) -> None:
    """Load the rules file if it changed; keep the rules in force if it does not validate."""
    path = rules_path(app)
    try:
        text = path.read_bytes()
    except OSError as exc:
        if app.rules_digest != "unreadable":
            log.error("rules file %s cannot be read (%s); the rules in force stay", path, exc)
            app.metrics.rules_reloads.labels(outcome="rejected").inc()
            app.rules_digest = "unreadable"
        return
    fingerprint = digest(text)
    if fingerprint == app.rules_digest:
        return
    app.rules_digest = fingerprint
    try:
        rules = parse_rules(text, str(path))
    except RulesError as exc:
        log.error("%s; the rules in force (version %s) stay", exc, app.detector.rules.version)
        app.metrics.rules_reloads.labels(outcome="rejected").inc()
        return
    app.detector.rules = rules
    app.border.window_s = rules.evidence_window_s
    app.metrics.rules_reloads.labels(outcome="loaded").inc()
    log.info("rules version %s loaded from %s", rules.version, path)


def _parse(
    app: CityOpsApp, event: EventT[bytes], model: type[_M], dead: list[Message]
) -> _M | None:
    """Return the record as ``model``; dead-letter it as a schema violation if it is not one."""
    message = event.message
    try:
        return model.model_validate_json(message.value or b"")
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "the record"
        reason = Rejected(
            DeadLetterReason.SCHEMA_VIOLATION,
            f"not {_WHAT[model]}: {where}: {first['msg']}",
        )
        dead.append(dead_letter_message(_record(event), reason, _now()))
        app.metrics.detection_events.labels(outcome="invalid").inc()
        app.metrics.dead_letters.labels(
            topic=message.topic, reason=DeadLetterReason.SCHEMA_VIOLATION.value
        ).inc()
        return None


def _account(
    app: CityOpsApp,
    located: LocatedEvent,
    outcome: Outcome,
    event: EventT[bytes],
    dead: list[Message],
) -> None:
    metrics = app.metrics
    if outcome.replayed:
        metrics.detection_events.labels(outcome="replayed").inc()
    elif outcome.late:
        watermark = datetime.fromtimestamp(outcome.watermark or 0, UTC).isoformat()
        reason = Rejected(
            DeadLetterReason.LATE_EVENT,
            f"observed {located.event.observed_at.isoformat()}, before the watermark"
            f" {watermark} of county {located.location.county} (allowed lateness"
            f" {app.cityops_settings.allowed_lateness_s:g} s)",
            event_id=located.event.event_id,
            device_id=located.device_id,
        )
        dead.append(dead_letter_message(_record(event), reason, _now()))
        metrics.detection_events.labels(outcome="late").inc()
        metrics.dead_letters.labels(
            topic=event.message.topic, reason=DeadLetterReason.LATE_EVENT.value
        ).inc()
    elif outcome.flag is not None:
        source = located.event
        kind = source.kind if isinstance(source, SensorReading) else source.event_type
        metrics.detection_events.labels(outcome="flagged").inc()
        metrics.data_quality.labels(flag=outcome.flag.value, kind=kind.value).inc()
    else:
        metrics.detection_events.labels(outcome="applied").inc()


def _incident_message(app: CityOpsApp, incident: Any) -> Message:
    app.metrics.incident_updates.labels(
        category=incident.category.value, severity=incident.severity.value
    ).inc()
    return Message(incident.incident_id.encode(), incident.model_dump_json().encode())


def _write(
    table: Any, event: EventT[bytes], county: str, records: Iterable[tuple[str, str, Any]]
) -> list[Message]:
    """Write ``county``'s changes into the table's store; return its changelog records.

    The records are sent in batches by the caller instead of one Faust ``send`` per key,
    which cost detection two thirds of its time. A RocksDB store files each key under the
    partition of Faust's current event, so ``event`` is made current for the writes, in the
    task-local context variable only: the stream's own ``current_event`` belongs to Faust's
    ``take_events`` buffering, which runs in another task and reads it.
    """
    token = faust_streams._current_event.set(weakref.ref(event))
    try:
        store = table.data
        messages = []
        for section, name, value in records:
            key = _SEP.join((county, section, name)).encode()
            if value is None:
                store.pop(key, None)
                messages.append(Message(key, None))
            else:
                encoded = orjson.dumps(value)
                store[key] = encoded
                messages.append(Message(key, encoded))
        return messages
    finally:
        faust_streams._current_event.reset(token)


def _load(table: Any, detector: Detector, partition: int, first: int) -> list[Incident]:
    """Load every county of ``partition`` from the table; return its incidents to republish.

    ``first`` is the offset the partition resumes at, logged beside each county's last applied
    offset: the events between them are redelivered and skipped as replayed.
    """
    partitions = list(range(table.partitions))
    grouped: dict[str, list[tuple[str, str, Any]]] = {}
    for key, value in list(table.items()):
        county, section, name = key.decode().split(_SEP, 2)
        if partition_for(county.encode(), partitions) == partition:
            grouped.setdefault(county, []).append((section, name, orjson.loads(value)))
    republish = []
    for county, records in sorted(grouped.items()):
        detector.load(county, records)
        held = list(detector.open_incidents(county))
        republish += held
        clock = detector.counties[county].clock
        log.info(
            "detection state of county %s loaded from partition %d (resuming at offset %d):"
            " %d records, applied up to offset %s, event time %s, %d incidents republished",
            county,
            partition,
            first,
            len(records),
            clock["applied"],
            clock["max"],
            len(held),
        )
    return republish


def _record(event: EventT[bytes]) -> Record:
    message = event.message
    return Record(message.topic, message.partition, message.offset, message.key, message.value)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _time_incidents(app: CityOpsApp, incidents: list[Incident]) -> None:
    """Observe, for each incident update, the time since its latest evidence was observed."""
    if not incidents:  # most events change no incident: no clock read for them
        return
    now = datetime.now(UTC)
    for incident in incidents:
        age = (now - incident.last_evidence.observed_at).total_seconds()
        app.metrics.incident_latency.labels(category=incident.category.value).observe(max(age, 0.0))


def _devices(app: CityOpsApp, *, offline: bool) -> Counter[tuple[str, ...]]:
    """Count the sensors that reported on this worker's partitions, by county and kind."""
    counts: Counter[tuple[str, ...]] = Counter()
    detector: Detector | None = getattr(app, "detector", None)
    if detector is None:
        return counts
    for county, state in list(detector.counties.items()):
        for device_id, dev in list(state.dev.items()):
            if "interval" not in dev or ("offline" in dev) is not offline:
                continue
            device = app.registry.get(device_id)
            kind = device.kind.value if device is not None and device.kind else "unknown"
            counts[(county, kind)] += 1
    return counts
