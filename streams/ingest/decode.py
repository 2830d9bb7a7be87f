"""Raw record bytes to a validated event, by producer format; every failure a :class:`Rejected`.

The format comes from the topic a record arrives on (``sensor.readings``, ``video.events``,
``video.frigate``, ``video.deepstream``); on ``video.events`` a ``format`` header may name a
producer format instead (``frigate``, ``deepstream``), for bridges that share one topic.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

import orjson
from pydantic import ValidationError

from schemas.events import SensorKind, SensorReading, VideoEvent, VideoEventType
from schemas.located import DeadLetterReason
from streams.exceptions import Rejected
from streams.ingest._errors import describe, reject
from streams.ingest.deepstream import deepstream_to_video_event
from streams.ingest.frigate import frigate_to_video_event

__all__ = ["FORMAT_HEADER", "Event", "Format", "decode", "rejection"]

Event = SensorReading | VideoEvent

FORMAT_HEADER = "format"
"""The record header that names the producer format on a shared video topic."""


class Format(StrEnum):
    """A producer format ingest can read."""

    SENSOR = "cityops-sensor"
    VIDEO = "cityops-video"
    FRIGATE = "frigate"
    DEEPSTREAM = "deepstream"


# A ``format`` header value on the video topic -> the format it names.
_HEADER_FORMATS = {
    "cityops": Format.VIDEO,
    "frigate": Format.FRIGATE,
    "deepstream": Format.DEEPSTREAM,
}
# Fields holding a vocabulary: an enum error there is an unknown kind, not a malformed record.
_VOCABULARIES: dict[str, list[str]] = {
    "kind": [kind.value for kind in SensorKind],
    "event_type": [kind.value for kind in VideoEventType],
}
_MAX_ERRORS_SHOWN = 3


def _sensor(raw: bytes) -> Event:
    try:
        return SensorReading.model_validate_json(raw)
    except ValidationError as exc:
        raise rejection(exc, raw) from None


def _video(raw: bytes) -> Event:
    try:
        return VideoEvent.model_validate_json(raw)
    except ValidationError as exc:
        raise rejection(exc, raw) from None


_DECODERS: dict[Format, Callable[[bytes], Event]] = {
    Format.SENSOR: _sensor,
    Format.VIDEO: _video,
    Format.FRIGATE: frigate_to_video_event,
    Format.DEEPSTREAM: deepstream_to_video_event,
}


def decode(raw: bytes, topic_format: Format, header: bytes | None = None) -> Event:
    """Validate ``raw`` as an event of ``topic_format`` (or of the format ``header`` names).

    Raises
    ------
    Rejected
        With ``malformed_json``, ``schema_violation``, ``unknown_kind``,
        ``unsupported_format`` or a producer format's own reasons (``false_positive``).

    Examples
    --------
    >>> decode(b'{"event_id": "e1"', Format.SENSOR)
    Traceback (most recent call last):
    ...
    streams.exceptions.Rejected: malformed_json: not valid JSON: Invalid JSON: EOF while parsing ...
    """
    fmt = topic_format
    if header is not None and topic_format is Format.VIDEO:
        name = header.decode("utf-8", "replace").strip().lower()
        if name not in _HEADER_FORMATS:
            known = ", ".join(sorted(_HEADER_FORMATS))
            raise Rejected(
                DeadLetterReason.UNSUPPORTED_FORMAT,
                f"format header {name[:64]!r} is not one of {known}",
            )
        fmt = _HEADER_FORMATS[name]
    return _DECODERS[fmt](raw)


def rejection(exc: ValidationError, raw: bytes) -> Rejected:
    """Turn pydantic's complaint about ``raw`` into a :class:`Rejected` with its reason.

    Invalid JSON is ``malformed_json``; a value outside a vocabulary (sensor kind, video event
    type) is ``unknown_kind`` and the message lists the known values; anything else is
    ``schema_violation`` naming the first fields at fault.
    """
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    first = errors[0]
    if first["type"] == "json_invalid":
        return reject(DeadLetterReason.MALFORMED_JSON, f"not valid JSON: {first['msg']}")
    event_id = _event_id(raw)
    for error in errors:
        field = error["loc"][0] if error["loc"] else None
        if error["type"] == "enum" and isinstance(field, str) and field in _VOCABULARIES:
            known = ", ".join(_VOCABULARIES[field])
            return reject(
                DeadLetterReason.UNKNOWN_KIND, f"unknown {field}; known: {known}", event_id
            )
    # The record is cityops' own shape, so its field names need no mapping; its values are not
    # quoted (the dead letter carries the whole record, and a missing field's "value" is it).
    shown = describe(exc, values=False, most=_MAX_ERRORS_SHOWN, whole="record")
    return reject(DeadLetterReason.SCHEMA_VIOLATION, shown, event_id)


def _event_id(raw: bytes) -> str | None:
    """Read the record's ``event_id``, if any, for the dead letter (:func:`reject` vets it)."""
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    value = document.get("event_id") if isinstance(document, dict) else None
    return value if isinstance(value, str) else None
