"""NVIDIA DeepStream ``nvmsgconv`` messages (full "DeepStream schema") as cityops video events.

With ``payload-type=0`` (the default) ``nvmsgconv`` sends one JSON message per object and event:
``messageid`` (a UUID), ``@timestamp`` (RFC 3339 UTC), ``place``, ``sensor`` (``id``, ``location``
…), ``analyticsModule`` (``id``, ``description`` …), ``object`` (``id``, one class member such as
``vehicle``, ``person``, ``face`` or a custom label, ``bbox``, ``location`` …), ``event``
(``type``: ``entry``, ``exit``, ``moving``, ``stopped``, ``parked``, ``empty``, ``reset``) and
``videoPath``. :func:`deepstream_to_video_event` turns one message into one
:class:`~schemas.VideoEvent` or raises :class:`~streams.exceptions.Rejected`.

Notes
-----
``event_id`` is ``deepstream:<messageid>``; ``camera_id`` is ``sensor.id`` (from the
``[sensorN]`` group of the ``nvmsgconv`` configuration); ``observed_at`` is ``@timestamp``, and a
time without a zone is refused. ``position`` is ``object.location``, else ``sensor.location``, in
WGS-84 (GPS latitude and longitude); DeepStream writes 0/0 for an unknown location, so 0/0 counts
as absent and the device registry supplies the camera's position. Likewise an all-zero ``bbox``
(written even when the application set none) is no bounding box. ``track_id`` is ``object.id``
unless it is ``UNTRACKED_OBJECT_ID`` (2**64 - 1).

``confidence`` is the class member's ``confidence`` (else ``object.confidence``). DeepStream
writes 1.0 there itself when it has none, and documents -0.1 as "not available" (an object found
by the tracker, or clustering that drops scores): both, and a missing value, become 1.0 with the
attribute ``confidence_assumed``, as the pipeline did report the detection.

:data:`DEEPSTREAM_MAPPING` decides the event type; a caller may pass its own table instead. Rows
are tried in order and the first whose every given part matches wins: ``event`` equals
``event.type``, ``object_class`` equals the object's class member, ``module`` is contained in the
analytics module's id or description (all case-insensitive). A fire or smoke model or object is
``fire_smoke`` whatever the event; a vehicle ``parked`` or ``stopped`` is ``illegal_parking``
(DeepStream cannot judge legality: a camera sending cityops such events is taken to watch a
no-parking area); a person's ``entry`` is ``intrusion``; anything else is ``UNKNOWN_KIND``.

References
----------
- Gst-nvmsgconv: https://docs.nvidia.com/metropolis/deepstream/9.1/text/DS_plugin_gst-nvmsgconv.html
- The schema: https://docs.nvidia.com/vss/3.1.0/JSON-Schema.html
- Confidence -0.1, ``UNTRACKED_OBJECT_ID``:
  https://docs.nvidia.com/metropolis/deepstream/5.1/sdk-api/Meta/_NvDsObjectMeta.html
- The generator is ``sources/libs/nvmsgconv/deepstream_schema/eventmsg_payload.cpp`` of the SDK;
  its sample input: https://github.com/NVIDIA-AI-IOT/deepstream_python_apps/tree/master/apps/deepstream-test4
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, NamedTuple

from pydantic import ValidationError

from schemas.common import Datum
from schemas.events import VideoEvent, VideoEventType
from schemas.located import DeadLetterReason
from streams.ingest._errors import SCHEMA, TEXT_LIMIT, bounded, describe, parse_object, reject, show

__all__ = ["DEEPSTREAM_MAPPING", "DeepStreamRule", "deepstream_to_video_event"]


class DeepStreamRule(NamedTuple):
    """One row of a DeepStream mapping; a part left ``None`` matches anything."""

    event: str | None = None
    """``event.type``: ``entry``, ``exit``, ``moving``, ``stopped``, ``parked`` …"""
    object_class: str | None = None
    """The object's class member: ``vehicle``, ``person``, ``face`` or a custom label."""
    module: str | None = None
    """Text the analytics module's id or description contains."""


DEEPSTREAM_MAPPING: Mapping[DeepStreamRule, VideoEventType] = MappingProxyType(
    {
        DeepStreamRule(module="fire"): VideoEventType.FIRE_SMOKE,
        DeepStreamRule(module="smoke"): VideoEventType.FIRE_SMOKE,
        DeepStreamRule(object_class="fire"): VideoEventType.FIRE_SMOKE,
        DeepStreamRule(object_class="smoke"): VideoEventType.FIRE_SMOKE,
        DeepStreamRule("parked", "vehicle"): VideoEventType.ILLEGAL_PARKING,
        DeepStreamRule("stopped", "vehicle"): VideoEventType.ILLEGAL_PARKING,
        DeepStreamRule("entry", "person"): VideoEventType.INTRUSION,
    }
)
"""The default DeepStream mapping: event, object class and module to event type, first match
wins."""

_UNTRACKED = str(2**64 - 1)  # UNTRACKED_OBJECT_ID as nvmsgconv prints it ("%lu")
_NOT_A_CLASS = frozenset({"bbox", "location", "coordinate", "pose", "embedding"})
_BBOX = {"left": "topleftx", "top": "toplefty", "right": "bottomrightx", "bottom": "bottomrighty"}
# Rejections name DeepStream's field, not the VideoEvent field it became.
_SOURCES = {"event_id": "messageid", "camera_id": "sensor.id", "track_id": "object.id"}
_SOURCES |= {"bounding_box": "object.bbox", "observed_at": "@timestamp"}
_SOURCES |= {f"bounding_box.{side}": f"object.bbox.{name}" for side, name in _BBOX.items()}


def deepstream_to_video_event(
    raw: bytes, *, mapping: Mapping[DeepStreamRule, VideoEventType] | None = None
) -> VideoEvent:
    """Convert one DeepStream ``nvmsgconv`` full-schema message into a video event.

    Parameters
    ----------
    raw
        The message as ``nvmsgbroker`` delivered it.
    mapping
        Which event, object class and analytics module is which event type;
        :data:`DEEPSTREAM_MAPPING` if ``None``.

    Returns
    -------
    VideoEvent
        The detection, with ``event_id`` ``deepstream:<messageid>``.

    Raises
    ------
    Rejected
        For every message that cannot become a video event, with the reason.
    """
    message = parse_object(raw)
    message_id = message.get("messageid")
    if not isinstance(message_id, str) or not message_id:
        raise reject(SCHEMA, f"messageid {show(message_id)}: expected text")
    event_id = f"deepstream:{message_id}"
    sensor, obj, event = (_member(message, key, event_id) for key in ("sensor", "object", "event"))
    kind = event.get("type")
    if not isinstance(kind, str) or not kind:
        raise reject(SCHEMA, f"event.type {show(kind)}: expected text", event_id)
    classes = (key for key, value in obj.items() if isinstance(value, dict))
    object_class = next((key for key in classes if key not in _NOT_A_CLASS), None)
    module = message.get("analyticsModule")
    module = module if isinstance(module, dict) else {}
    facts = (
        kind,
        object_class or "",
        f"{module.get('id') or ''} {module.get('description') or ''}",
    )
    event_type = _event_type(facts, mapping, event_id)
    confidence, confidence_at = _confidence(obj, object_class)
    position, position_at = _position(obj, sensor)
    attributes: dict[str, object] = {"producer": "deepstream", "event": bounded(kind)}
    if object_class is not None:
        attributes["object_class"] = bounded(object_class)
    if isinstance(module.get("id"), str) and module["id"]:
        attributes["analytics_module"] = bounded(module["id"].strip('"'))
    video_path = message.get("videoPath")
    if isinstance(video_path, str) and 0 < len(video_path) <= TEXT_LIMIT:
        attributes["video_path"] = video_path  # a cut URL would lead nowhere: omit a long one
    if confidence is None:
        attributes["confidence_assumed"] = True
    fields = {
        "event_id": event_id,
        "camera_id": sensor.get("id"),
        "event_type": event_type,
        "confidence": 1.0 if confidence is None else confidence,
        "observed_at": _timestamp(message.get("@timestamp"), event_id),
        "bounding_box": _box(obj.get("bbox")),
        "track_id": None if obj.get("id") in (None, "", _UNTRACKED) else obj.get("id"),
        "position": position,
        "attributes": attributes,
    }
    try:
        return VideoEvent.model_validate(fields)
    except ValidationError as exc:
        sources = _SOURCES | {"confidence": confidence_at, "position": position_at}
        raise reject(SCHEMA, describe(exc, sources), event_id) from exc


def _event_type(
    facts: tuple[str, str, str],
    mapping: Mapping[DeepStreamRule, VideoEventType] | None,
    event_id: str,
) -> VideoEventType:
    kind, object_class, module = (fact.lower() for fact in facts)
    rules = DEEPSTREAM_MAPPING if mapping is None else mapping
    for rule, event_type in rules.items():
        event, cls, text = ((part or "").lower() for part in rule)
        if event in ("", kind) and cls in ("", object_class) and text in module:
            return event_type
    known = "; ".join(
        ", ".join(f"{part}={value!r}" for part, value in rule._asdict().items() if value)
        + f" -> {event_type}"
        for rule, event_type in rules.items()
    )
    text = f"no mapping for event {facts[0]!r}, object class {facts[1]!r}, analytics module "
    raise reject(DeadLetterReason.UNKNOWN_KIND, f"{text}{facts[2]!r}; mapped: {known}", event_id)


def _confidence(obj: dict[str, Any], object_class: str | None) -> tuple[object, str]:
    member = obj.get(object_class) if object_class else None
    for where, holder in ((f"object.{object_class}", member), ("object", obj)):
        value = holder.get("confidence") if isinstance(holder, dict) else None
        # A negative score is DeepStream's documented "not available" (-0.1), not a score.
        if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
            return None, f"{where}.confidence"
        if value is not None:
            return value, f"{where}.confidence"
    return None, "object.confidence"


def _box(bbox: object) -> object:
    if not isinstance(bbox, dict):
        return bbox  # None, or something for validation to name
    corners = {side: bbox.get(name) for side, name in _BBOX.items()}
    # nvmsgconv always writes a bbox; all zeros means the application set none.
    return None if all(value == 0 for value in corners.values()) else corners


def _position(obj: dict[str, Any], sensor: dict[str, Any]) -> tuple[object, str]:
    for where, holder in (("object.location", obj), ("sensor.location", sensor)):
        location = holder.get("location")
        if not isinstance(location, dict):
            if location is None:
                continue
            return location, where  # for validation to name
        lat, lon = location.get("lat"), location.get("lon")
        if (lat is not None or lon is not None) and not (lat == 0 and lon == 0):
            return {"lat": lat, "lon": lon, "datum": Datum.WGS84}, where
    return None, "sensor.location"  # 0/0 is DeepStream's "unknown"


def _timestamp(value: object, event_id: str) -> datetime:
    try:
        observed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        observed = None
    if observed is None or observed.tzinfo is None:
        why = "expected an ISO 8601 time with a zone, such as 2018-04-11T04:59:59.828Z"
        raise reject(SCHEMA, f"@timestamp {show(value)}: {why}", event_id)
    return observed.astimezone(UTC)


def _member(message: dict[str, Any], key: str, event_id: str) -> dict[str, Any]:
    value = message.get(key)
    if not isinstance(value, dict):
        raise reject(SCHEMA, f"{key} {show(value)}: expected an object", event_id)
    return value
