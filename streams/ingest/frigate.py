"""Frigate NVR ``frigate/events`` messages as cityops video events.

Frigate publishes a JSON message on ``frigate/events`` whenever a tracked object changes:
``type`` is ``new`` when the object stops being a false positive, ``update`` when its zones or
best snapshot change, and ``end`` when it is gone. Each message holds ``before`` and ``after``,
the object's state before and after that change. :func:`frigate_to_video_event` turns one
message into one :class:`~schemas.VideoEvent` or raises :class:`~streams.exceptions.Rejected`.

Notes
-----
Only ``after`` is read: it is the current state, and the ``before`` of a ``new`` message is by
definition still a false positive (that is how Frigate tells ``new`` from ``update``).

Every message about one tracked object gets the same ``event_id`` (``frigate:<after.id>``) and
``observed_at`` (``after.start_time``), so the pipeline's event-id deduplication passes the first
usable message and counts the later ones as duplicates. ``after.false_positive`` rejects a
message as ``FALSE_POSITIVE`` whatever its type.

``camera_id`` is ``after.camera`` as configured in Frigate (``[a-zA-Z0-9_-]+``, a valid
cityops identifier unless it starts with ``_`` or ``-``). ``position`` stays empty: Frigate
knows no geography, the device registry supplies the camera's. ``confidence`` is ``top_score``
(else ``score``); the bounding box is ``after.box`` (``[x1, y1, x2, y2]`` pixels of the detect
stream); ``snapshot`` is the Frigate HTTP API path of the event's snapshot, relative to the
Frigate server, when ``has_snapshot``. ``sub_label`` is not copied: it can be a recognised
person's name, which a city-wide event stream should not spread.

:data:`FRIGATE_MAPPING` decides the event type; a caller may pass its own table instead. Rows
are tried in order and the first that matches wins: its label equals ``after.label`` and, if it
names a zone text, one of the object's current or entered zones contains that text (both
compared case-insensitively). Entered zones count because they accumulate: the ``end`` message,
sent when the object has left every zone, classifies like the messages before it. A label
with no matching row is ``UNKNOWN_KIND``: a person or car on a street camera is not by itself a
city event, only in a zone drawn for one, so name Frigate zones accordingly (``river_bank``,
``no_parking_gate``, ``restricted_depot`` …). ``fire`` and ``smoke`` (labels of custom or
Frigate+ models) count anywhere.

References
----------
- MQTT topics and the ``frigate/events`` example: https://docs.frigate.video/integrations/mqtt/
- Snapshot endpoint: https://docs.frigate.video/integrations/api/event-snapshot-events-event-id-snapshot-jpg-get/
- Camera names and when ``new``/``end`` are published: ``REGEX_CAMERA_NAME`` in
  https://github.com/blakeblackshear/frigate/blob/dev/frigate/const.py and
  https://github.com/blakeblackshear/frigate/blob/dev/frigate/track/object_processing.py
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, NamedTuple

from pydantic import ValidationError

from schemas.events import VideoEvent, VideoEventType
from schemas.located import DeadLetterReason
from streams.ingest._errors import SCHEMA, bounded, describe, parse_object, reject, show

__all__ = ["FRIGATE_MAPPING", "FrigateRule", "frigate_to_video_event"]


class FrigateRule(NamedTuple):
    """One row of a Frigate mapping: a label, anywhere or only in certain zones."""

    label: str
    """Frigate's ``after.label`` (``person``, ``car`` …)."""
    zone: str | None = None
    """Text a zone name must contain; ``None`` matches in any zone or none."""


FRIGATE_MAPPING: Mapping[FrigateRule, VideoEventType] = MappingProxyType(
    {
        FrigateRule("fire"): VideoEventType.FIRE_SMOKE,
        FrigateRule("smoke"): VideoEventType.FIRE_SMOKE,
        FrigateRule("person", "water"): VideoEventType.PERSON_NEAR_WATER,
        FrigateRule("person", "river"): VideoEventType.PERSON_NEAR_WATER,
        FrigateRule("person", "restricted"): VideoEventType.INTRUSION,
        FrigateRule("car", "no_parking"): VideoEventType.ILLEGAL_PARKING,
        FrigateRule("motorcycle", "no_parking"): VideoEventType.ILLEGAL_PARKING,
    }
)
"""The default Frigate mapping: label (and zone text) to event type, first match wins."""

_SNAPSHOT = "/api/events/{id}/snapshot.jpg"
_TYPES = ("new", "update", "end")
# Rejections name Frigate's field, not the VideoEvent field it became.
_SOURCES = {"camera_id": "after.camera", "bounding_box": "after.box"}
_SOURCES |= dict.fromkeys(("event_id", "track_id", "snapshot"), "after.id")


def frigate_to_video_event(
    raw: bytes, *, mapping: Mapping[FrigateRule, VideoEventType] | None = None
) -> VideoEvent:
    """Convert one Frigate ``frigate/events`` message into a video event.

    Parameters
    ----------
    raw
        The message as Frigate published it.
    mapping
        Which label in which zone is which event type; :data:`FRIGATE_MAPPING` if ``None``.

    Returns
    -------
    VideoEvent
        The detection; every message about one tracked object gives the same ``event_id``.

    Raises
    ------
    Rejected
        For every message that cannot become a video event, with the reason.
    """
    message = parse_object(raw)
    kind = message.get("type")
    if kind not in _TYPES:
        raise reject(SCHEMA, f"type {show(kind)}: expected one of {', '.join(_TYPES)}")
    after = message.get("after")
    if not isinstance(after, dict):
        raise reject(SCHEMA, f"after {show(after)}: expected the object's state")
    frigate_id = _text(after, "id", None)
    event_id = f"frigate:{frigate_id}"
    false_positive = after.get("false_positive")
    if not isinstance(false_positive, bool):
        raise reject(SCHEMA, f"after.false_positive {show(false_positive)}: expected a bool")
    if false_positive:
        message_text = f"Frigate marks tracked object {frigate_id!r} a false positive ({kind})"
        raise reject(DeadLetterReason.FALSE_POSITIVE, message_text, event_id)
    label = _text(after, "label", event_id)
    current = _zones(after, "current_zones", event_id)
    entered = _zones(after, "entered_zones", event_id)
    event_type = _event_type(label, current + entered, mapping, event_id)
    score_field = "top_score" if after.get("top_score") is not None else "score"
    fields = {
        "event_id": event_id,
        "camera_id": after.get("camera"),
        "event_type": event_type,
        "confidence": after.get(score_field),
        "observed_at": _start_time(after.get("start_time"), event_id),
        "bounding_box": _box(after.get("box"), event_id),
        "track_id": frigate_id,
        "snapshot": _SNAPSHOT.format(id=frigate_id) if after.get("has_snapshot") is True else None,
        "attributes": _attributes(after, kind, label, current, entered),
    }
    try:
        return VideoEvent.model_validate(fields)
    except ValidationError as exc:
        sources = _SOURCES | {"confidence": f"after.{score_field}"}
        raise reject(SCHEMA, describe(exc, sources), event_id) from exc


def _event_type(
    label: str,
    zones: list[str],
    mapping: Mapping[FrigateRule, VideoEventType] | None,
    event_id: str,
) -> VideoEventType:
    rules = FRIGATE_MAPPING if mapping is None else mapping
    lowered = [zone.lower() for zone in zones]
    for rule, event_type in rules.items():
        if rule.label.lower() == label.lower() and (
            rule.zone is None or any(rule.zone.lower() in zone for zone in lowered)
        ):
            return event_type
    known = "; ".join(
        f"{rule.label}{f' in a zone containing {rule.zone!r}' if rule.zone else ''} -> {kind}"
        for rule, kind in rules.items()
    )
    text = f"no mapping for label {label!r} in zones {sorted(set(zones))}; mapped: {known}"
    raise reject(DeadLetterReason.UNKNOWN_KIND, text, event_id)


def _start_time(value: object, event_id: str) -> datetime:
    # Frigate writes epoch seconds; a bool is an int to Python but never a time.
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            pass
    raise reject(SCHEMA, f"after.start_time {show(value)}: expected epoch seconds", event_id)


def _box(value: object, event_id: str) -> dict[str, object] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 4:
        raise reject(SCHEMA, f"after.box {show(value)}: expected [x1, y1, x2, y2]", event_id)
    return dict(zip(("left", "top", "right", "bottom"), value, strict=True))


def _zones(after: dict[str, Any], key: str, event_id: str) -> list[str]:
    zones = after.get(key)
    if zones is None:
        return []
    if not isinstance(zones, list) or not all(isinstance(zone, str) for zone in zones):
        raise reject(SCHEMA, f"after.{key} {show(zones)}: expected zone names", event_id)
    return zones


def _attributes(
    after: dict[str, Any], kind: object, label: str, current: list[str], entered: list[str]
) -> dict[str, object]:
    attributes: dict[str, object] = {"producer": "frigate", "message": kind}
    attributes["label"] = bounded(label)
    if current:
        attributes["current_zones"] = bounded(",".join(current))
    if entered:
        attributes["entered_zones"] = bounded(",".join(entered))
    if isinstance(after.get("stationary"), bool):
        attributes["stationary"] = after["stationary"]
    return attributes


def _text(after: dict[str, Any], key: str, event_id: str | None) -> str:
    value = after.get(key)
    if not isinstance(value, str) or not value:
        raise reject(SCHEMA, f"after.{key} {show(value)}: expected text", event_id)
    return value
