"""Events after ingest: located in the grid, or turned away with a reason."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import Base64Bytes, Field, StringConstraints

from schemas.common import Contract, Identifier, Position, Timestamp
from schemas.events import SensorReading, VideoEvent

__all__ = [
    "DEAD_LETTER_VERSION",
    "LOCATED_EVENT_VERSION",
    "DeadLetter",
    "DeadLetterReason",
    "GridLocation",
    "LocatedEvent",
    "PositionSource",
    "SourceRecord",
]

LOCATED_EVENT_VERSION: Final = 1
DEAD_LETTER_VERSION: Final = 1

_Code = Annotated[str, StringConstraints(pattern=r"^[0-9]{4,15}$")]
_TopicName = Annotated[str, StringConstraints(min_length=1, max_length=249)]


class PositionSource(StrEnum):
    """Where the position used to locate an event came from."""

    EVENT = "event"
    """The event carried its own position."""
    DEVICE = "device"
    """The registered position of its device."""


class GridLocation(Contract):
    """The cell an event fell in and every unit above it, by code."""

    cell: _Code
    """Grid cell (网格), 15 digits."""
    village: _Code
    """Village or community (村/社区), 12 digits."""
    town: _Code
    """Town or street (镇/街), 9 digits."""
    county: _Code
    """County or district (县/区), 6 digits."""
    city: _Code
    """City (市), 4 or 6 digits."""


class SourceRecord(Contract):
    """The Kafka record an event or dead letter came from (its lineage)."""

    topic: _TopicName
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)


class LocatedEvent(Contract):
    """A validated, deduplicated event with its place in the grid.

    On topic ``events.located``, keyed by county code.
    """

    schema_version: Literal[1] = LOCATED_EVENT_VERSION
    """Version of this contract."""
    event: Annotated[SensorReading | VideoEvent, Field(discriminator="record")]
    """The event as validated."""
    device_id: Identifier
    """The device that produced it (``device_id`` of a reading, ``camera_id`` of a video
    event)."""
    position: Position
    """The position it was located by, in GCJ-02 (converted if it arrived in WGS-84)."""
    position_source: PositionSource
    """Whether ``position`` came with the event or from the device registry."""
    location: GridLocation
    """Where it is."""
    geography: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    """Version of the geography it was located in (changes when the grid is reloaded)."""
    source: SourceRecord
    """The raw record it came from."""
    ingested_at: Timestamp
    """When cityops located it."""


class DeadLetterReason(StrEnum):
    """Why an input record did not become a located event (a metric label and a topic field)."""

    TOO_LARGE = "too_large"
    """The record is larger than ``max_event_bytes``."""
    MALFORMED_JSON = "malformed_json"
    """Not a JSON document (or not UTF-8)."""
    SCHEMA_VIOLATION = "schema_violation"
    """JSON, but not a valid event: a field missing, out of range, of the wrong type …"""
    UNKNOWN_KIND = "unknown_kind"
    """A sensor kind or video event type cityops does not know; the message lists the known."""
    UNSUPPORTED_FORMAT = "unsupported_format"
    """A ``format`` header naming a producer format cityops cannot read."""
    FUTURE_TIMESTAMP = "future_timestamp"
    """Observed further in the future than ``future_tolerance_s`` allows (a device clock off)."""
    TOO_LATE = "too_late"
    """Observed longer ago than ``max_event_age_s``."""
    UNKNOWN_DEVICE = "unknown_device"
    """The device or camera is not on ``devices.registry``."""
    INACTIVE_DEVICE = "inactive_device"
    """The device is registered as inactive."""
    NO_POSITION = "no_position"
    """Neither the event nor its device has a position."""
    OUTSIDE_CITY = "outside_city"
    """The position is outside the city (or in the wrong datum)."""
    NOT_IN_GRID = "not_in_grid"
    """Inside the city but in none of its grid cells."""
    INVALID_COORDINATE = "invalid_coordinate"
    """A coordinate that is not a place on earth."""
    FALSE_POSITIVE = "false_positive"
    """The producer itself marked the detection a false positive (Frigate)."""
    LATE_EVENT = "late_event"
    """A located event older than its county's watermark (the latest event time seen there less
    ``allowed_lateness_s``): detection has moved past it, so it is set aside, not used."""
    INVALID_DEVICE = "invalid_device"
    """A ``devices.registry`` record that is not a valid device; the registry keeps the last
    valid one."""


class DeadLetter(Contract):
    """An input record cityops could not use, with why and its original bytes.

    On topic ``events.deadletter``, keyed by the original key.
    """

    schema_version: Literal[1] = DEAD_LETTER_VERSION
    """Version of this contract."""
    source: SourceRecord
    """Where the record was read."""
    key: Base64Bytes | None
    """The record's original key, base64."""
    value: Base64Bytes | None
    """The record's original bytes, base64 (an oversized record is cut to its first 64 KiB)."""
    reason: DeadLetterReason
    """The machine-readable reason."""
    message: Annotated[str, StringConstraints(max_length=2048)]
    """What was wrong, for a person."""
    event_id: Identifier | None = None
    """The event id, when it could be read."""
    device_id: Identifier | None = None
    """The device or camera id, when the record was valid enough to name it."""
    at: Timestamp
    """When cityops turned the record away."""
