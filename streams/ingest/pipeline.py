"""Ingest as plain code: a batch of raw records in, located events and dead letters out.

:class:`Ingest` holds everything one worker needs (the grid index, the device registry, the
dedup memory) and :meth:`Ingest.process` turns a batch into the records to produce, counting
every outcome. The Faust agent in :mod:`streams.ingest.agent` only feeds it and sends what it
returns; tests run it on values, without a broker.

Each record ends as exactly one of: a located event, a dead letter, a duplicate.
"""

from __future__ import annotations

import base64
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import orjson

from geo import GridIndex, Reason, convert
from schemas.common import Position
from schemas.devices import Device
from schemas.events import SensorReading
from schemas.located import DeadLetterReason, PositionSource
from streams.exceptions import Rejected
from streams.ingest.decode import Event, Format, decode
from streams.ingest.dedup import SeenEvents
from streams.metrics import Metrics, Outcome

__all__ = [
    "AFTER_DEDUP",
    "BatchResult",
    "Ingest",
    "Limits",
    "Message",
    "Record",
    "dead_letter_message",
]

log = logging.getLogger(__name__)

AFTER_DEDUP = frozenset(
    {
        DeadLetterReason.FUTURE_TIMESTAMP,
        DeadLetterReason.TOO_LATE,
        DeadLetterReason.UNKNOWN_DEVICE,
        DeadLetterReason.INACTIVE_DEVICE,
        DeadLetterReason.NO_POSITION,
        DeadLetterReason.OUTSIDE_CITY,
        DeadLetterReason.NOT_IN_GRID,
        DeadLetterReason.INVALID_COORDINATE,
    }
)
"""Reasons given after an event passed deduplication: its id counts as seen, so a retry of it
is a duplicate whatever became of the first copy."""

_LOCATOR_REASONS = {
    Reason.OUTSIDE_CITY: DeadLetterReason.OUTSIDE_CITY,
    Reason.NOT_IN_GRID: DeadLetterReason.NOT_IN_GRID,
    Reason.INVALID_COORDINATE: DeadLetterReason.INVALID_COORDINATE,
}
# A dead letter keeps the original bytes for replay, but not without bound.
_DEAD_LETTER_VALUE_CAP = 65_536
_MESSAGE_CAP = 2_048


@dataclass(frozen=True, slots=True)
class Record:
    """One raw input record and where it was read."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    format_header: bytes | None = None


@dataclass(frozen=True, slots=True)
class Message:
    """A record to produce."""

    key: bytes | None
    value: bytes | None  # None: a tombstone (deletes the key of a compacted topic)


@dataclass(slots=True)
class BatchResult:
    """What one batch produced: messages for ``events.located`` and ``events.deadletter``."""

    located: list[Message] = field(default_factory=list)
    dead_letters: list[Message] = field(default_factory=list)
    duplicates: int = 0


@dataclass(frozen=True, slots=True)
class Limits:
    """The ingest settings that decide whether an event is accepted."""

    max_event_bytes: int = 65_536
    future_tolerance: timedelta = timedelta(minutes=5)
    max_age: timedelta = timedelta(days=1)
    dedup_horizon_s: float = 600.0


@dataclass(slots=True)
class _Pending:
    record: Record
    event: Event
    device_id: str
    position: Position
    position_source: PositionSource
    observed_s: float


class Ingest:
    """Validate, deduplicate and locate batches of raw records.

    Parameters
    ----------
    index
        The city's grid index.
    registry
        Devices by id (a live :class:`~streams.registry.DeviceRegistry` in a worker).
    formats
        The producer format of each input topic.
    geography
        Version of the geography in ``index``, written on every located event.
    limits
        Size, time and dedup limits.
    metrics
        Where outcomes are counted; ``None`` counts nothing.
    """

    def __init__(
        self,
        *,
        index: GridIndex,
        registry: Mapping[str, Device],
        formats: Mapping[str, Format],
        geography: str,
        limits: Limits | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.index = index
        self.registry = registry
        self.formats = dict(formats)
        self.geography = geography
        self.limits = limits or Limits()
        self.metrics = metrics
        self.seen = SeenEvents(self.limits.dedup_horizon_s)
        self.done = SeenEvents(self.limits.dedup_horizon_s)
        """Records already dead-lettered, by source ``(topic, partition, offset)``: before a restart
        (filled by recovery) and by this process, so that a record delivered again is not
        dead-lettered twice (a malformed record has no id to recognise it by)."""
        self._cells = self._cell_table()
        self._counts: Counter[tuple[str, str]] = Counter()
        self._reasons: Counter[tuple[str, str]] = Counter()

    # --- recovery ------------------------------------------------------------------------
    def remember_located(self, device_id: str, event_id: str, at: float) -> None:
        """Note that an event was located at ``at`` (seconds) before this process started."""
        self.seen.add(f"{device_id}/{event_id}", at)

    def remember_dead_letter(
        self,
        source: tuple[str, int, int],
        reason: str,
        device_id: str | None,
        event_id: str | None,
        at: float,
    ) -> None:
        """Note that the record at ``source`` was dead-lettered at ``at`` before a restart."""
        self.done.add(source, at)
        if reason in AFTER_DEDUP and device_id and event_id:
            self.seen.add(f"{device_id}/{event_id}", at)

    # --- processing ----------------------------------------------------------------------
    def process(self, records: Sequence[Record], now: datetime) -> BatchResult:
        """Turn ``records`` into located events and dead letters, as of ``now``.

        ``now`` decides what is in the future or too late and when ids are forgotten; a worker
        passes the wall clock, a test a fixed time.
        """
        result = BatchResult()
        now_s = now.timestamp()
        latest = now + self.limits.future_tolerance
        earliest = now - self.limits.max_age
        at = now.isoformat()
        pending: list[_Pending] = []
        for record in records:
            try:
                item = self._admit(record, now_s, earliest, latest)
            except Rejected as exc:
                result.dead_letters.append(self.dead_letter(record, exc, at, now_s))
                continue
            if item is None:
                result.duplicates += 1
                self._counts[(record.topic, Outcome.DUPLICATE)] += 1
            else:
                pending.append(item)
        if pending:
            self._locate(pending, result, now_s, at)
        self._flush_counts()

        return result

    def _admit(
        self, record: Record, now_s: float, earliest: datetime, latest: datetime
    ) -> _Pending | None:
        raw = record.value
        if self.done and (record.topic, record.partition, record.offset) in self.done:
            return None
        if not raw:
            raise Rejected(DeadLetterReason.MALFORMED_JSON, "empty record")
        if len(raw) > self.limits.max_event_bytes:
            raise Rejected(
                DeadLetterReason.TOO_LARGE,
                f"{len(raw)} bytes, more than the {self.limits.max_event_bytes} allowed",
            )
        event = decode(raw, self.formats[record.topic], record.format_header)
        device_id = event.device_id if isinstance(event, SensorReading) else event.camera_id
        if not self.seen.add(f"{device_id}/{event.event_id}", now_s):
            return None
        ids = {"event_id": event.event_id, "device_id": device_id}
        observed = event.observed_at
        if observed > latest:
            raise Rejected(
                DeadLetterReason.FUTURE_TIMESTAMP,
                f"observed at {observed.isoformat()}, after the tolerance ends at"
                f" {latest.isoformat()}",
                **ids,
            )
        if observed < earliest:
            raise Rejected(
                DeadLetterReason.TOO_LATE,
                f"observed at {observed.isoformat()}, before the oldest accepted"
                f" {earliest.isoformat()}",
                **ids,
            )
        device = self.registry.get(device_id)
        if device is None:
            raise Rejected(DeadLetterReason.UNKNOWN_DEVICE, f"{device_id} is not registered", **ids)
        if not device.active:
            raise Rejected(DeadLetterReason.INACTIVE_DEVICE, f"{device_id} is inactive", **ids)
        if event.position is not None:
            return _Pending(
                record, event, device_id, event.position, PositionSource.EVENT, observed.timestamp()
            )
        if device.position is not None:
            return _Pending(
                record,
                event,
                device_id,
                device.position,
                PositionSource.DEVICE,
                observed.timestamp(),
            )
        raise Rejected(
            DeadLetterReason.NO_POSITION,
            f"neither the event nor device {device_id} has a position",
            **ids,
        )

    def _locate(self, pending: list[_Pending], result: BatchResult, now_s: float, at: str) -> None:
        count = len(pending)
        datums = np.array([item.position.datum.value for item in pending])
        lons = np.array([item.position.lon for item in pending])
        lats = np.array([item.position.lat for item in pending])
        reasons = np.zeros(count, dtype=np.uint8)
        cell_rows = np.zeros(count, dtype=np.int64)
        for datum in np.unique(datums):
            rows = np.flatnonzero(datums == datum)
            found = self.index.locate_many(lons[rows], lats[rows], datum=str(datum))
            reasons[rows] = found.reason
            cell_rows[rows] = found.cell_index
        gcj_lons, gcj_lats = lons, lats
        wgs = np.flatnonzero(datums == "wgs84")
        if len(wgs):
            gcj_lons, gcj_lats = lons.copy(), lats.copy()
            gcj_lons[wgs], gcj_lats[wgs] = convert(
                lons[wgs], lats[wgs], source="wgs84", target="gcj02"
            )
        cells = self._cells
        located = result.located
        latencies: dict[str, list[float]] = {}
        for item, reason, cell, lon, lat in zip(
            pending,
            reasons.tolist(),
            cell_rows.tolist(),
            gcj_lons.tolist(),
            gcj_lats.tolist(),
            strict=True,
        ):
            record = item.record
            if reason:
                why = Reason(reason)
                exc = Rejected(
                    _LOCATOR_REASONS[why],
                    f"{item.position.lon:.6f}, {item.position.lat:.6f} ({item.position.datum})"
                    f" from the {item.position_source.value}: {why.slug.replace('_', ' ')}",
                    event_id=item.event.event_id,
                    device_id=item.device_id,
                )
                result.dead_letters.append(self.dead_letter(record, exc, at, now_s))
                continue
            location, key = cells[cell]
            value = orjson.dumps(
                {
                    "schema_version": 1,
                    "event": orjson.Fragment(item.event.model_dump_json()),
                    "device_id": item.device_id,
                    "position": {"lon": lon, "lat": lat, "datum": "gcj02"},
                    "position_source": item.position_source.value,
                    "location": location,
                    "geography": self.geography,
                    "source": {
                        "topic": record.topic,
                        "partition": record.partition,
                        "offset": record.offset,
                    },
                    "ingested_at": at,
                }
            )
            located.append(Message(key, value))
            latencies.setdefault(record.topic, []).append(now_s - item.observed_s)
        for topic, values in latencies.items():
            self._counts[(topic, Outcome.LOCATED)] += len(values)
            if self.metrics is not None:
                observe = self.metrics.located_latency.labels(topic=topic).observe
                for seconds in values:
                    observe(max(0.0, seconds))

    def _cell_table(self) -> list[tuple[orjson.Fragment, bytes]]:
        """Return per grid cell (by index position) its location as JSON and its county key.

        A cell decides every level above it, so these are built once, not per event.
        """
        hierarchy = self.index.hierarchy
        tables = [hierarchy.table(level) for level in ("cell", "village", "town", "county", "city")]
        rows = []
        for position in range(len(tables[0].codes)):
            codes = []
            for level, table in enumerate(tables):
                codes.append(str(table.codes[position]))
                if level + 1 < len(tables):
                    position = int(table.parents[position])  # noqa: PLW2901 - climbing up
            cell, village, town, county, city = codes
            location = {
                "cell": cell,
                "village": village,
                "town": town,
                "county": county,
                "city": city,
            }
            rows.append((orjson.Fragment(orjson.dumps(location)), county.encode()))
        return rows

    def dead_letter(self, record: Record, exc: Rejected, at: str, now_s: float) -> Message:
        """Return the dead letter for ``record`` turned away with ``exc``, count and remember it."""
        self.done.add((record.topic, record.partition, record.offset), now_s)
        self._counts[(record.topic, Outcome.DEAD_LETTER)] += 1
        self._reasons[(record.topic, exc.reason.value)] += 1
        return dead_letter_message(record, exc, at)

    def _flush_counts(self) -> None:
        """Add the outcomes counted since the last flush to the metrics.

        Once per batch: a labelled counter costs microseconds per call.
        """
        if self.metrics is not None:
            for (topic, outcome), number in self._counts.items():
                self.metrics.input_events.labels(topic=topic, outcome=outcome).inc(number)
                if outcome == Outcome.DUPLICATE:
                    self.metrics.duplicates.labels(topic=topic).inc(number)
            for (topic, reason), number in self._reasons.items():
                self.metrics.dead_letters.labels(topic=topic, reason=reason).inc(number)
        self._counts.clear()
        self._reasons.clear()


def dead_letter_message(record: Record, exc: Rejected, at: str) -> Message:
    """Return the dead letter (a :class:`~schemas.DeadLetter` as JSON) for ``record``.

    Keyed by the record's own key; the value keeps the original bytes (base64, up to 64 KiB).
    """
    value = record.value or b""
    letter = {
        "schema_version": 1,
        "source": {"topic": record.topic, "partition": record.partition, "offset": record.offset},
        "key": None if record.key is None else base64.b64encode(record.key).decode(),
        "value": base64.b64encode(value[:_DEAD_LETTER_VALUE_CAP]).decode(),
        "reason": exc.reason.value,
        "message": exc.message[:_MESSAGE_CAP],
        "event_id": exc.event_id,
        "device_id": exc.device_id,
        "at": at,
    }
    log.debug(
        "dead letter %s[%d]@%d event %s: %s",
        record.topic,
        record.partition,
        record.offset,
        exc.event_id,
        exc,
    )
    return Message(record.key, orjson.dumps(letter))
