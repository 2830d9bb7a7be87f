"""Frigate ``frigate/events`` messages become video events, or are rejected with a reason."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from schemas.events import BoundingBox, VideoEvent, VideoEventType
from schemas.located import DeadLetterReason
from streams.exceptions import Rejected
from streams.ingest.frigate import FRIGATE_MAPPING, FrigateRule, frigate_to_video_event

# The ``after`` of the example in Frigate's MQTT documentation
# (https://docs.frigate.video/integrations/mqtt/), comments removed.
DOCUMENTED_AFTER: dict[str, Any] = {
    "id": "1607123955.475377-mxklsc",
    "camera": "front_door",
    "frame_time": 1607123962.082975,
    "snapshot_time": 1607123961.837752,
    "label": "person",
    "sub_label": ["John Smith", 0.79],
    "top_score": 0.958984375,
    "false_positive": False,
    "start_time": 1607123955.475377,
    "end_time": None,
    "score": 0.87890625,
    "box": [432, 496, 544, 854],
    "area": 40096,
    "ratio": 1.251397,
    "region": [218, 440, 693, 915],
    "current_zones": ["yard", "driveway"],
    "entered_zones": ["yard", "driveway"],
    "thumbnail": None,
    "has_snapshot": False,
    "has_clip": False,
    "active": True,
    "stationary": False,
    "motionless_count": 0,
    "position_changes": 2,
    "attributes": {"face": 0.86},
    "current_attributes": [{"label": "face", "box": [442, 506, 534, 524], "score": 0.86}],
}
FRIGATE_ID = "1607123955.475377-mxklsc"
EVENT_ID = f"frigate:{FRIGATE_ID}"
STARTED = datetime(2020, 12, 4, 23, 19, 15, 475377, tzinfo=UTC)  # 1607123955.475377


def message(kind: str = "update", /, **after: Any) -> bytes:
    """The documented message with ``after`` changed (``None`` removes a field)."""
    state = {
        key: value
        for key, value in (copy.deepcopy(DOCUMENTED_AFTER) | after).items()
        if key not in after or value is not None
    }
    before = copy.deepcopy(state) | {"false_positive": kind == "new"}
    return orjson.dumps({"type": kind, "before": before, "after": state})


def rejected(raw: bytes, **kwargs: Any) -> Rejected:
    with pytest.raises(Rejected) as caught:
        frigate_to_video_event(raw, **kwargs)
    return caught.value


def test_documented_example_converts_with_every_field() -> None:
    raw = orjson.dumps(
        {
            "type": "update",
            "before": DOCUMENTED_AFTER | {"score": 0.7890625},
            "after": DOCUMENTED_AFTER,
        }
    )
    event = frigate_to_video_event(
        raw, mapping={FrigateRule("person", "yard"): VideoEventType.INTRUSION}
    )
    assert event == VideoEvent(
        event_id=EVENT_ID,
        camera_id="front_door",
        event_type=VideoEventType.INTRUSION,
        confidence=0.958984375,  # top_score, not the current score
        observed_at=STARTED,
        bounding_box=BoundingBox(left=432, top=496, right=544, bottom=854),
        track_id=FRIGATE_ID,
        snapshot=None,  # has_snapshot is false
        position=None,  # the device registry supplies it
        attributes={
            "producer": "frigate",
            "message": "update",
            "label": "person",
            "current_zones": "yard,driveway",
            "entered_zones": "yard,driveway",
            "stationary": False,
        },
    )
    assert "John Smith" not in event.model_dump_json()  # a recognised name is not spread


def test_documented_example_has_no_default_mapping() -> None:
    # A person in a yard is not a city event: it names the label, the zones and every mapping.
    error = rejected(message())
    assert error.reason is DeadLetterReason.UNKNOWN_KIND
    assert error.event_id == EVENT_ID
    assert "'person'" in error.message
    assert "['driveway', 'yard']" in error.message
    for rule, event_type in FRIGATE_MAPPING.items():
        assert rule.label in error.message
        assert event_type.value in error.message
    assert "'no_parking'" in error.message


RIVER = ["river_bank"]


@pytest.mark.parametrize(
    ("kind", "after", "expected"),
    [
        ("new", {"current_zones": [], "entered_zones": []}, "intrusion"),  # not yet in a zone
        ("update", {"current_zones": RIVER, "entered_zones": RIVER}, "person_near_water"),
        ("update", {"entered_zones": RIVER, "box": [400, 480, 520, 860]}, "person_near_water"),
        ("end", {"current_zones": [], "entered_zones": RIVER}, "person_near_water"),  # gone
    ],
)
def test_every_message_of_one_object_has_the_same_identity(
    kind: str, after: dict[str, Any], expected: str
) -> None:
    # entered_zones accumulates, so the end (no current zone) classifies like the update did.
    mapping = {**FRIGATE_MAPPING, FrigateRule("person"): VideoEventType.INTRUSION}
    event = frigate_to_video_event(message(kind, **after), mapping=mapping)
    assert event.event_id == EVENT_ID
    assert event.track_id == FRIGATE_ID
    assert event.observed_at == STARTED
    assert event.event_type == expected
    assert event.attributes is not None
    assert event.attributes["message"] == kind


@pytest.mark.parametrize(
    ("kind", "label"),
    [
        ("new", "person"),  # Frigate never sends this, but a bridge might
        ("update", "person"),
        ("end", "person"),  # an object that was never a true positive
        ("update", "dog"),  # a false positive even of an unmapped label
    ],
)
def test_false_positive_is_rejected_as_such(kind: str, label: str) -> None:
    error = rejected(message(kind, false_positive=True, label=label))
    assert error.reason is DeadLetterReason.FALSE_POSITIVE
    assert error.event_id == EVENT_ID
    assert FRIGATE_ID in error.message


@pytest.mark.parametrize(
    ("label", "zones", "expected"),
    [
        ("person", ["river_bank"], "person_near_water"),  # zone contains "river"
        ("person", ["yard", "Water_Edge"], "person_near_water"),  # case-insensitive, any zone
        ("person", ["restricted_depot"], "intrusion"),
        ("car", ["no_parking_gate"], "illegal_parking"),
        ("motorcycle", ["east_no_parking"], "illegal_parking"),
        ("fire", [], "fire_smoke"),  # fire and smoke count anywhere
        ("smoke", ["yard"], "fire_smoke"),
        ("Person", ["river"], "person_near_water"),  # labels compare case-insensitively
    ],
)
def test_default_mapping(label: str, zones: list[str], expected: str) -> None:
    event = frigate_to_video_event(message(label=label, current_zones=zones, entered_zones=zones))
    assert event.event_type == expected
    assert event.attributes is not None
    assert event.attributes["label"] == label


@pytest.mark.parametrize(
    ("label", "zones"),
    [
        ("dog", ["river_bank"]),  # a label nothing maps
        ("person", ["yard"]),  # a mapped label outside its zones
        ("car", []),  # a car on the road
    ],
)
def test_unmapped_label_is_unknown_kind(label: str, zones: list[str]) -> None:
    error = rejected(message(label=label, current_zones=zones, entered_zones=zones))
    assert error.reason is DeadLetterReason.UNKNOWN_KIND
    assert f"label {label!r}" in error.message
    assert "mapped: fire -> fire_smoke" in error.message


def test_custom_mapping_replaces_the_default() -> None:
    mapping = {FrigateRule("dog", "park"): VideoEventType.STREET_VENDOR}
    dog = message(label="dog", current_zones=["park_north"], entered_zones=["park_north"])
    assert frigate_to_video_event(dog, mapping=mapping).event_type == "street_vendor"
    # The default rows are gone, not merged in.
    error = rejected(message(current_zones=["river"], entered_zones=["river"]), mapping=mapping)
    assert error.reason is DeadLetterReason.UNKNOWN_KIND
    assert "mapped: dog in a zone containing 'park' -> street_vendor" in error.message


def test_first_matching_row_wins() -> None:
    mapping = {
        FrigateRule("person", "river"): VideoEventType.PERSON_IN_WATER,
        FrigateRule("person"): VideoEventType.INTRUSION,
    }
    in_river = message(current_zones=["river"], entered_zones=["river"])
    assert frigate_to_video_event(in_river, mapping=mapping).event_type == "person_in_water"
    assert frigate_to_video_event(message(), mapping=mapping).event_type == "intrusion"


def test_rule_text_compares_case_insensitively() -> None:
    mapping = {FrigateRule("PERSON", "River"): VideoEventType.PERSON_IN_WATER}
    raw = message(current_zones=["north_river_bank"], entered_zones=["north_river_bank"])
    assert frigate_to_video_event(raw, mapping=mapping).event_type == "person_in_water"


WATER = {"current_zones": ["river"], "entered_zones": ["river"]}


@pytest.mark.parametrize(
    ("after", "field", "value"),
    [
        ({"has_snapshot": True}, "snapshot", f"/api/events/{FRIGATE_ID}/snapshot.jpg"),
        ({"top_score": None}, "confidence", 0.87890625),  # falls back to the current score
        ({"box": None}, "bounding_box", None),  # no box, no bounding box
        ({"camera": "gate-2"}, "camera_id", "gate-2"),
    ],
)
def test_optional_fields(after: dict[str, Any], field: str, value: object) -> None:
    event = frigate_to_video_event(message(**WATER | after))
    assert getattr(event, field) == value


def test_long_zone_lists_are_bounded() -> None:
    zones = [f"river_section_{number:03d}_of_the_long_embankment" for number in range(40)]
    event = frigate_to_video_event(message(current_zones=zones, entered_zones=zones))
    assert event.attributes is not None
    assert len(str(event.attributes["entered_zones"])) == 256
    assert str(event.attributes["entered_zones"]).startswith("river_section_000_of")


@pytest.mark.parametrize(
    "raw",
    [
        b"",  # nothing
        b"{",  # cut off
        b'{"type": "new"',  # cut off after a field
        b"\xff\xfe{}",  # not UTF-8
        b"frigate/events",  # not JSON at all
    ],
)
def test_malformed_json(raw: bytes) -> None:
    error = rejected(raw)
    assert error.reason is DeadLetterReason.MALFORMED_JSON
    assert error.event_id is None


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        (b"[]", "JSON object"),  # JSON, but not a message
        (orjson.dumps({"after": DOCUMENTED_AFTER}), "type"),  # no type
        (orjson.dumps({"type": "start", "after": DOCUMENTED_AFTER}), "type 'start'"),
        (orjson.dumps({"type": "new", "before": DOCUMENTED_AFTER}), "after (missing)"),
        (message(id=None), "after.id (missing)"),
        (message(label=None), "after.label (missing)"),
        (message(false_positive=None), "after.false_positive (missing)"),
        (message(false_positive="no"), "after.false_positive 'no'"),
        (message(**WATER, camera=None), "after.camera (missing)"),
        (message(**WATER, camera="front door"), "after.camera 'front door'"),
        (message(**WATER, start_time=None), "after.start_time (missing)"),
        (message(**WATER, start_time="yesterday"), "after.start_time 'yesterday'"),
        (message(**WATER, start_time=1e300), "after.start_time 1e+300"),  # beyond any date
        (message(**WATER, top_score=1.5), "after.top_score 1.5"),
        (message(**WATER, top_score=None, score=None), "after.score (missing)"),
        (
            message(**WATER, box=[544, 496, 432, 854]),
            "after.box {'left': 544, 'top': 496, 'right': 432",
        ),
        (message(**WATER, box=[432, 496, 544]), "after.box [432, 496, 544]"),
        (message(**WATER, box=[432, "top", 544, 854]), "after.box.top 'top'"),
        (message(current_zones="river"), "after.current_zones 'river'"),
    ],
)
def test_schema_violation_names_the_field_and_value(raw: bytes, named: str) -> None:
    error = rejected(raw)
    assert error.reason is DeadLetterReason.SCHEMA_VIOLATION
    assert named in error.message


@pytest.mark.parametrize(
    ("after", "event_id"),
    [
        ({"camera": None}, EVENT_ID),  # the id was readable
        ({"id": "has space", "camera": None}, None),  # an id the dead letter could not hold
        ({"id": None}, None),  # no id at all
    ],
)
def test_rejection_carries_the_event_id_when_valid(
    after: dict[str, Any], event_id: str | None
) -> None:
    assert rejected(message(**WATER | after)).event_id == event_id


def test_rejection_message_fits_a_dead_letter() -> None:
    mapping = {FrigateRule(f"label_{n}", f"zone_{n}"): VideoEventType.INTRUSION for n in range(300)}
    error = rejected(message(), mapping=mapping)
    assert error.reason is DeadLetterReason.UNKNOWN_KIND
    assert len(error.message) == 2048
