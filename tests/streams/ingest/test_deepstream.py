"""DeepStream ``nvmsgconv`` full-schema messages become video events, or are rejected."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from schemas.common import Datum, Position
from schemas.events import BoundingBox, VideoEvent, VideoEventType
from schemas.located import DeadLetterReason
from streams.exceptions import Rejected
from streams.ingest.deepstream import (
    DEEPSTREAM_MAPPING,
    DeepStreamRule,
    deepstream_to_video_event,
)

# What nvmsgconv writes for NVIDIA's deepstream-test4 sample (its msgconv configuration and
# vehicle metadata, the generator in eventmsg_payload.cpp), with the event type "parked".
DOCUMENTED: dict[str, Any] = {
    "messageid": "75205036-04f0-4147-9ebd-6045b4f3ec24",
    "mdsversion": "1.0",
    "@timestamp": "2018-04-11T04:59:59.828Z",
    "place": {
        "id": "1",
        "name": "XYZ",
        "type": "garage",
        "location": {"lat": 30.32, "lon": -40.55, "alt": 100.0},
        "parkingSpot": {
            "id": "walsh",
            "type": "lane1",
            "level": "P2",
            "coordinate": {"x": 1.0, "y": 2.0, "z": 3.0},
        },
    },
    "sensor": {
        "id": "CAMERA_ID",
        "type": "Camera",
        "description": '"Entrance of Garage Right Lane"',
        "location": {"lat": 45.293701447, "lon": -75.8303914499, "alt": 48.1557479338},
        "coordinate": {"x": 5.2, "y": 10.1, "z": 11.2},
    },
    "analyticsModule": {
        "id": "XYZ",
        "description": '"Vehicle Detection and License Plate Recognition"',
        "source": "OpenALR",
        "version": "1.0",
    },
    "object": {
        "id": "957",
        "speed": 0.0,
        "direction": 0.0,
        "orientation": 0.0,
        "vehicle": {
            "type": "sedan",
            "make": "Bugatti",
            "model": "M",
            "color": "blue",
            "licenseState": "CA",
            "license": "XX1234",
            "confidence": 0.87,
        },
        "bbox": {"topleftx": 585, "toplefty": 472, "bottomrightx": 642, "bottomrighty": 518},
        "location": {"lat": 0.0, "lon": 0.0, "alt": 0.0},
        "coordinate": {"x": 0.0, "y": 0.0, "z": 0.0},
    },
    "event": {"id": "e85ec6b2-a1d5-4b4b-8c3b-0f4d3f1d2a10", "type": "parked"},
    "videoPath": "",
}
EVENT_ID = "deepstream:75205036-04f0-4147-9ebd-6045b4f3ec24"
PERSON = {"age": 45, "gender": "male", "hair": "black", "cap": "none", "apparel": "formal"}


def message(**changes: Any) -> bytes:
    """The documented message with ``a__b`` paths changed (``None`` removes the member)."""
    document = copy.deepcopy(DOCUMENTED)
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        holder = document
        for parent in parents:
            holder = holder[parent]
        if value is None:
            holder.pop(leaf, None)
        else:
            holder[leaf] = value
    return orjson.dumps(document)


def rejected(raw: bytes, **kwargs: Any) -> Rejected:
    with pytest.raises(Rejected) as caught:
        deepstream_to_video_event(raw, **kwargs)
    return caught.value


def test_documented_example_converts_with_every_field() -> None:
    assert deepstream_to_video_event(message()) == VideoEvent(
        event_id=EVENT_ID,
        camera_id="CAMERA_ID",
        event_type=VideoEventType.ILLEGAL_PARKING,  # a vehicle parked
        confidence=0.87,
        observed_at=datetime(2018, 4, 11, 4, 59, 59, 828000, tzinfo=UTC),
        bounding_box=BoundingBox(left=585, top=472, right=642, bottom=518),
        track_id="957",
        snapshot=None,  # DeepStream sends no still image
        position=Position(lat=45.293701447, lon=-75.8303914499, datum=Datum.WGS84),  # sensor's
        attributes={
            "producer": "deepstream",
            "event": "parked",
            "object_class": "vehicle",
            "analytics_module": "XYZ",
        },
    )


def test_documented_sample_event_moving_has_no_default_mapping() -> None:
    # deepstream-test4 itself sends its vehicles as "moving": not a city event by default.
    error = rejected(message(event__type="moving"))
    assert error.reason is DeadLetterReason.UNKNOWN_KIND
    assert error.event_id == EVENT_ID
    assert "event 'moving', object class 'vehicle'" in error.message
    assert "Vehicle Detection and License Plate Recognition" in error.message
    for event_type in DEEPSTREAM_MAPPING.values():
        assert f"-> {event_type.value}" in error.message
    assert "event='parked', object_class='vehicle' -> illegal_parking" in error.message


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"event__type": "stopped"}, "illegal_parking"),  # a vehicle standing in an aisle
        ({"event__type": "PARKED"}, "illegal_parking"),  # compared case-insensitively
        ({"object__vehicle": None, "object__person": PERSON, "event__type": "entry"}, "intrusion"),
        ({"analyticsModule__description": "Fire and Smoke Detection"}, "fire_smoke"),
        ({"analyticsModule__id": "smoke-net", "event__type": "reset"}, "fire_smoke"),  # any event
        ({"object__vehicle": None, "object__Fire": {}, "event__type": "moving"}, "fire_smoke"),
    ],
)
def test_default_mapping(changes: dict[str, Any], expected: str) -> None:
    assert deepstream_to_video_event(message(**changes)).event_type == expected


@pytest.mark.parametrize(
    "changes",
    [
        {"event__type": "exit"},  # a vehicle leaving
        {"event__type": "empty"},  # a parking spot freed
        {"object__vehicle": None, "object__person": PERSON, "event__type": "parked"},
        {"object__vehicle": None, "event__type": "entry"},  # no object class at all
        {"analyticsModule": None, "event__type": "moving"},  # the module group left out
    ],
)
def test_unmapped_combination_is_unknown_kind(changes: dict[str, Any]) -> None:
    error = rejected(message(**changes))
    assert error.reason is DeadLetterReason.UNKNOWN_KIND
    assert "mapped: module='fire' -> fire_smoke" in error.message


def test_custom_mapping_replaces_the_default() -> None:
    mapping = {DeepStreamRule("moving", "vehicle"): VideoEventType.TRAFFIC_CONGESTION}
    moving = message(event__type="moving")
    assert deepstream_to_video_event(moving, mapping=mapping).event_type == "traffic_congestion"
    error = rejected(message(), mapping=mapping)  # "parked" is no longer mapped
    assert error.reason is DeadLetterReason.UNKNOWN_KIND
    assert "mapped: event='moving', object_class='vehicle' -> traffic_congestion" in error.message


def test_rule_text_compares_case_insensitively() -> None:
    mapping = {DeepStreamRule("MOVING", "Vehicle", "License Plate"): VideoEventType.ROAD_OCCUPATION}
    event = deepstream_to_video_event(message(event__type="moving"), mapping=mapping)
    assert event.event_type == "road_occupation"


@pytest.mark.parametrize(
    ("changes", "position"),
    [
        ({}, (45.293701447, -75.8303914499)),  # object 0/0: the sensor's
        ({"object__location": {"lat": 23.74, "lon": 114.7, "alt": 0}}, (23.74, 114.7)),  # object's
        ({"sensor__location": {"lat": 0.0, "lon": 0.0, "alt": 0.0}}, None),  # 0/0 is "unknown"
        ({"sensor__location": None, "object__location": None}, None),  # none at all
        ({"sensor__location": {"lat": 0.0, "lon": 114.7, "alt": 0}}, (0.0, 114.7)),  # equator
    ],
)
def test_position(changes: dict[str, Any], position: tuple[float, float] | None) -> None:
    event = deepstream_to_video_event(message(**changes))
    if position is None:
        assert event.position is None
    else:
        assert event.position == Position(lat=position[0], lon=position[1], datum=Datum.WGS84)


@pytest.mark.parametrize(
    ("changes", "confidence", "assumed"),
    [
        ({}, 0.87, False),  # the class member's confidence
        ({"object__vehicle__confidence": -0.10000000149011612}, 1.0, True),  # "not available"
        ({"object__vehicle__confidence": None}, 1.0, True),  # none given
        ({"object__vehicle__confidence": None, "object__confidence": 0.6}, 0.6, False),
        ({"object__vehicle": None, "object__Smoke": {}}, 1.0, True),  # a custom class, empty
    ],
)
def test_confidence(changes: dict[str, Any], confidence: float, assumed: bool) -> None:
    event = deepstream_to_video_event(message(**changes))
    assert event.confidence == confidence
    assert event.attributes is not None
    assert event.attributes.get("confidence_assumed", False) is assumed


@pytest.mark.parametrize(
    ("changes", "field", "value"),
    [
        ({"object__id": "18446744073709551615"}, "track_id", None),  # UNTRACKED_OBJECT_ID
        (
            {"object__bbox": {"topleftx": 0, "toplefty": 0, "bottomrightx": 0, "bottomrighty": 0}},
            "bounding_box",
            None,  # nvmsgconv's bbox when the application set none
        ),
        ({"object__bbox": None}, "bounding_box", None),
        (
            {"@timestamp": "2018-04-11T12:59:59.828+08:00"},
            "observed_at",
            datetime(2018, 4, 11, 4, 59, 59, 828000, tzinfo=UTC),
        ),
        ({"place": None}, "camera_id", "CAMERA_ID"),  # place is not needed
        ({"sensor__id": "44030500001320000001"}, "camera_id", "44030500001320000001"),  # GB/T 28181
    ],
)
def test_optional_and_special_values(changes: dict[str, Any], field: str, value: object) -> None:
    assert getattr(deepstream_to_video_event(message(**changes)), field) == value


def test_video_path_is_kept_when_it_fits() -> None:
    url = "rtsp://nvr.example/cam1/2018-04-11T04:59:59Z"
    event = deepstream_to_video_event(message(videoPath=url))
    assert event.attributes is not None
    assert event.attributes["video_path"] == url
    long_url = "https://nvr.example/" + "x" * 300
    attributes = deepstream_to_video_event(message(videoPath=long_url)).attributes
    assert attributes is not None
    assert "video_path" not in attributes  # a cut URL would lead nowhere


@pytest.mark.parametrize(
    "raw",
    [
        b"",  # nothing
        b'{"messageid": "75205036"',  # cut off
        b"\xc3\x28",  # not UTF-8
        b"messageid=1",  # not JSON
    ],
)
def test_malformed_json(raw: bytes) -> None:
    error = rejected(raw)
    assert error.reason is DeadLetterReason.MALFORMED_JSON
    assert error.event_id is None


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        (b'"text"', "JSON object"),
        (message(messageid=None), "messageid (missing)"),
        (message(sensor=None), "sensor (missing)"),
        (message(object=None), "object (missing)"),
        (message(event=None), "event (missing)"),
        (message(event__type=None), "event.type (missing)"),
        (message(sensor__id=None), "sensor.id (missing)"),
        (message(sensor__id="cam 1"), "sensor.id 'cam 1'"),
        (message(**{"@timestamp": None}), "@timestamp (missing)"),
        (message(**{"@timestamp": "2018-04-11T04:59:59.828"}), "@timestamp '2018-04-11T04:59"),
        (message(**{"@timestamp": "last tuesday"}), "@timestamp 'last tuesday'"),
        (message(object__vehicle__confidence=1.5), "object.vehicle.confidence 1.5"),
        (message(object__id=957), "object.id 957"),
        (
            message(object__bbox__bottomrightx=500),
            "object.bbox {'left': 585, 'top': 472, 'right': 500",
        ),
        (message(object__bbox__toplefty="top"), "object.bbox.toplefty 'top'"),
        (message(sensor__location={"lat": 95.0, "lon": 1.0}), "sensor.location.lat 95.0"),
        (message(object__location={"lat": 23.7, "lon": 214.7}), "object.location.lon 214.7"),
    ],
)
def test_schema_violation_names_the_field_and_value(raw: bytes, named: str) -> None:
    error = rejected(raw)
    assert error.reason is DeadLetterReason.SCHEMA_VIOLATION
    assert named in error.message


@pytest.mark.parametrize(
    ("changes", "event_id"),
    [
        ({"sensor__id": None}, EVENT_ID),  # the id was readable
        ({"messageid": "not an id", "sensor__id": None}, None),  # unfit for a dead letter
    ],
)
def test_rejection_carries_the_event_id_when_valid(
    changes: dict[str, Any], event_id: str | None
) -> None:
    assert rejected(message(**changes)).event_id == event_id
