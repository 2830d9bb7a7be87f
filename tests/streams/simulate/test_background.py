"""Normal-day traffic: valid, quiet for the threshold rules, never stuck, on time, repeatable."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import numpy as np
import orjson
import pytest

from geo import Hierarchy
from schemas import UNITS, Device, DeviceType, SensorKind, SensorReading, VideoEvent
from streams.detect.rules import DEFAULT_RULES, RuleSet, load_rules
from streams.simulate.background import VALUE_MODELS, Background
from streams.simulate.fleet import build_fleet
from streams.simulate.records import Outgoing

# 08:00 in Heyuan: the six hours cover the morning rush and the afternoon peaks.
START = datetime(2026, 7, 1, 0, 0, tzinfo=UTC)
HOURS = 6


@dataclass
class Day:
    fleet: list[Device]
    records: list[Outgoing]
    documents: list[dict[str, Any]]


@pytest.fixture(scope="module")
def fleet(heyuan: Hierarchy) -> list[Device]:
    return build_fleet(heyuan)


@pytest.fixture(scope="module")
def day(fleet: list[Device]) -> Day:
    records = Background(fleet, START).until(START + timedelta(hours=HOURS))
    return Day(fleet, records, [orjson.loads(r.value or b"") for r in records])


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules(DEFAULT_RULES)


def _readings(day: Day) -> dict[str, list[dict[str, Any]]]:
    by_device: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for document in day.documents:
        if document["record"] == "sensor_reading":
            by_device[document["device_id"]].append(document)
    return by_device


def test_every_record_validates(day: Day) -> None:
    for record in day.records:
        assert record.value is not None
        if record.topic == "sensor.readings":
            reading = SensorReading.model_validate_json(record.value)
            assert reading.device_id == record.key.decode()
            assert reading.unit in UNITS[reading.kind]
            assert reading.position is None
            assert reading.observed_at == record.at
        else:
            assert record.topic == "video.events"
            event = VideoEvent.model_validate_json(record.value)
            assert event.camera_id == record.key.decode()
            assert event.position is None  # the registry supplies the camera's
            assert event.observed_at == record.at


def test_records_come_in_time_order_within_the_window(day: Day) -> None:
    times = [r.at for r in day.records]
    assert times == sorted(times)
    assert times[0] >= START
    assert times[-1] < START + timedelta(hours=HOURS)


def test_event_ids_are_unique_and_name_their_device(day: Day) -> None:
    ids = [d["event_id"] for d in day.documents]
    assert len(set(ids)) == len(ids)
    for document in day.documents:
        device = document.get("device_id") or document["camera_id"]
        assert document["event_id"].rpartition("-")[0] == device


def test_no_value_reaches_a_threshold_rule_or_leaves_the_plausible_range(
    day: Day, rules: RuleSet
) -> None:
    thresholds = rules.thresholds()
    checked: Counter[str] = Counter()
    for document in day.documents:
        if document["record"] != "sensor_reading":
            continue
        kind = SensorKind(document["kind"])
        value = document["value"]
        rule = thresholds.get((kind, document["unit"]))
        if rule is not None:
            assert rule.severity_of(value) is None, (rule.id, document)
            checked[rule.id] += 1
        low, high = rules.quality.plausible.get(kind, (-np.inf, np.inf))
        assert low <= value <= high, document
    # Every threshold rule on a kind the fleet has in the rule's unit was checked.
    assert set(checked) == {
        rule.id for rule in rules.threshold if VALUE_MODELS[rule.kind].unit == rule.unit
    }


def test_no_device_repeats_a_value_until_it_looks_stuck(day: Day, rules: RuleSet) -> None:
    for device, readings in _readings(day).items():
        run = longest = 1
        for before, after in pairwise(readings):
            run = run + 1 if after["value"] == before["value"] else 1
            longest = max(longest, run)
        assert longest < rules.quality.stuck_after, device


def test_each_sensor_reports_on_its_interval(day: Day) -> None:
    readings = _readings(day)
    sensors = [d for d in day.fleet if d.device_type is DeviceType.SENSOR]
    assert set(readings) == {d.device_id for d in sensors}
    for device in sensors:
        interval = device.expected_interval_s
        lateness = min(interval / 20, 10)  # at most 5 % late, at most 10 s
        times = [datetime.fromisoformat(r["observed_at"]) for r in readings[device.device_id]]
        gaps = np.diff([(t - START).total_seconds() for t in times])
        assert ((gaps > interval - lateness) & (gaps < interval + lateness)).all(), device
        assert (times[0] - START).total_seconds() < interval + lateness
        slots = HOURS * 3600 // interval
        assert len(times) in {slots - 1, slots}  # the last may fall just after the end
        numbers = [int(r["event_id"].rpartition("-")[2]) for r in readings[device.device_id]]
        assert numbers == list(range(len(numbers)))


def test_values_follow_the_day(day: Day) -> None:
    by_hour: dict[tuple[str, int], list[float]] = defaultdict(list)
    for document in day.documents:
        if document["record"] == "sensor_reading":
            hour = datetime.fromisoformat(document["observed_at"]).hour  # local, +08:00
            by_hour[document["kind"], hour].append(document["value"])
    mean = {key: float(np.mean(values)) for key, values in by_hour.items()}
    assert mean["traffic_flow", 8] > 1.5 * mean["traffic_flow", 11]  # the morning rush
    assert mean["o3", 13] > mean["o3", 8] + 20  # ozone builds up in the sun
    assert mean["temperature", 13] > mean["temperature", 8] + 2
    assert abs(mean["water_level", 13] - mean["water_level", 8]) < 0.05  # rivers stay put


def test_smoke_detectors_send_obscuration(day: Day) -> None:
    smoke = [d for d in day.documents if d.get("kind") == "smoke"]
    assert smoke
    assert {d["unit"] for d in smoke} == {"%obs/m"}
    assert all(0 <= d["value"] <= 0.3 for d in smoke)


def test_cameras_see_something_now_and_then(day: Day) -> None:
    events = [d for d in day.documents if d["record"] == "video_event"]
    cameras = [d for d in day.fleet if d.device_type is DeviceType.CAMERA]
    per_camera_hour = len(events) / len(cameras) / HOURS
    assert 0.25 < per_camera_hour < 1.0  # 0.5 an hour on average; these are busy hours
    types = Counter(d["event_type"] for d in events)
    assert set(types) <= {
        "illegal_parking",
        "garbage_overflow",
        "street_vendor",
        "road_occupation",
        "traffic_congestion",
    }
    assert len(types) == 5
    confidences = [d["confidence"] for d in events]
    assert min(confidences) >= 0.3
    assert max(confidences) <= 0.95
    assert max(confidences) > 0.8


def test_the_same_seed_gives_the_same_traffic(fleet: list[Device], day: Day) -> None:
    end = START + timedelta(minutes=30)
    again = Background(fleet, START).until(end)
    assert again == [r for r in day.records if r.at < end]
    other = Background(fleet, START, seed=1).until(end)
    assert [r.value for r in other] != [r.value for r in again]


def test_until_in_pieces_gives_the_same_records(fleet: list[Device]) -> None:
    end = START + timedelta(minutes=40)
    whole = Background(fleet, START).until(end)
    background = Background(fleet, START)
    pieces: list[Outgoing] = []
    cut = START
    for step in [0.0005, 1, 59.9995, 60, 0, 317, 900, 1062]:  # sub-millisecond and empty too
        cut += timedelta(seconds=step)
        pieces += background.until(cut)
    assert cut == end
    assert background.at == end
    assert pieces == whole


def test_until_refuses_to_go_back(fleet: list[Device]) -> None:
    background = Background(fleet, START)
    background.until(START + timedelta(minutes=1))
    with pytest.raises(ValueError, match="cannot go back"):
        background.until(START)
    with pytest.raises(ValueError, match="timezone-aware"):
        background.until(datetime(2026, 7, 1, 1))  # noqa: DTZ001 - the point of the test


def test_a_device_behaves_the_same_in_any_fleet(fleet: list[Device], day: Day) -> None:
    end = START + timedelta(minutes=20)
    alone = Background(fleet[:1], START).until(end)
    assert alone == [r for r in day.records if r.key == alone[0].key and r.at < end]


def test_inactive_devices_send_nothing(fleet: list[Device]) -> None:
    retired = [d.model_copy(update={"active": False}) for d in fleet[:50]]
    assert Background(retired, START).until(START + timedelta(hours=1)) == []


def test_quiet_cameras_confirm_no_video_rule(fleet: list[Device], rules: RuleSet) -> None:
    records = Background(fleet, START, max_confidence=0.59).until(START + timedelta(hours=1))
    events = [
        VideoEvent.model_validate_json(r.value or b"") for r in records if r.topic == "video.events"
    ]
    assert events
    videos = rules.videos()
    for event in events:
        rule = videos.get(event.event_type)
        assert rule is None or event.confidence < rule.min_confidence


def test_camera_rate_is_a_setting(fleet: list[Device]) -> None:
    hour = START + timedelta(hours=1)
    assert not [
        r
        for r in Background(fleet, START, camera_events_per_hour=0).until(hour)
        if r.topic == "video.events"
    ]
    with pytest.raises(ValueError, match="camera_events_per_hour"):
        Background(fleet, START, camera_events_per_hour=100)


@pytest.mark.parametrize("kind", list(SensorKind))
def test_value_models_never_reach_their_clip(kind: SensorKind, rules: RuleSet) -> None:
    """The clip is a guarantee; the model itself stays inside it, even at its extremes.

    A model that reached its clip would send the clip value again and again: stuck.
    """
    model = VALUE_MODELS[kind]
    shape = model.shape(np.linspace(0, 24, 24 * 60 + 1))
    levels = [base + amplitude * shape for base in model.base for amplitude in model.amplitude]
    top = max(float(level.max()) for level in levels) + model.drift
    bottom = min(float(level.min()) for level in levels) - model.drift
    assert top + 4 * (model.noise + model.noise_share * abs(top)) < model.high
    assert bottom - 4 * (model.noise + model.noise_share * abs(bottom)) > model.low
    # The clip itself is plausible and below the mildest level of the kind's threshold rule.
    low, high = rules.quality.plausible.get(kind, (-np.inf, np.inf))
    assert low <= model.low < model.high <= high
    rule = rules.thresholds().get((kind, model.unit))
    if rule is not None:
        assert rule.severity_of(model.high) is None
    # Noise spans several resolution steps: ten equal values in a row are out of reach.
    assert model.noise >= 5 * 10.0**-model.decimals
