"""The contracts: strict where a wrong value would mislead, and exported for integrators."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from schemas import CONTRACTS, Device, SensorReading, VideoEvent, export_schemas
from tests.helpers import run_cli

READING: dict[str, Any] = {
    "event_id": "r1",
    "device_id": "wl-001",
    "kind": "water_level",
    "value": 3.2,
    "unit": "m",
    "observed_at": "2026-12-03T08:00:00+08:00",
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"observed_at": "2026-12-03T08:00:00"}, "observed_at"),  # naive: whose local time?
        ({"value": float("inf")}, "value"),  # not finite
        ({"unit": "ft"}, "unit"),  # a unit the kind does not use
        ({"kind": "radiation"}, "kind"),  # not a known kind
        ({"event_id": "has space"}, "event_id"),  # unsafe in keys and logs
        ({"event_id": "x" * 129}, "event_id"),  # bounded
        ({"position": {"lon": 114.7, "lat": 91.0, "datum": "gcj02"}}, "position"),  # off earth
        ({"position": {"lon": 114.7, "lat": 23.7}}, "position"),  # datum never assumed
        ({"attributes": {f"k{i}": 1 for i in range(33)}}, "attributes"),  # bounded
        ({"colour": "blue"}, "colour"),  # unknown fields are refused, not dropped
    ],
)
def test_a_reading_is_strict(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        SensorReading.model_validate({**READING, **change})
    assert field in str(caught.value)


def test_a_valid_reading_keeps_its_timezone() -> None:
    reading = SensorReading.model_validate(READING)
    assert reading.observed_at.utcoffset() is not None
    assert reading.record == "sensor_reading"


def test_a_video_confidence_is_a_probability() -> None:
    event = {
        "event_id": "v1",
        "camera_id": "c1",
        "event_type": "fire_smoke",
        "observed_at": "2026-12-03T00:00:00Z",
    }
    with pytest.raises(ValidationError):
        VideoEvent.model_validate({**event, "confidence": 1.01})
    assert VideoEvent.model_validate({**event, "confidence": 1}).confidence == 1


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ({"device_type": "sensor"}, "a sensor needs its kind"),
        ({"device_type": "camera", "kind": "noise"}, "a camera has no sensor kind"),
    ],
)
def test_a_device_kind_fits_its_type(device: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Device.model_validate(
            {"device_id": "d1", "department": "城管", "expected_interval_s": 60, **device}
        )


def test_export_writes_one_valid_json_schema_per_contract(tmp_path: Path) -> None:
    written = export_schemas(tmp_path)

    assert [path.name for path in written] == [f"{name}.v1.schema.json" for name in CONTRACTS]
    for path in written:
        schema = json.loads(path.read_text(encoding="utf-8"))
        assert schema["$schema"].endswith("2020-12/schema")
        assert "schema_version" in schema["properties"]
    located = json.loads((tmp_path / "located-event.v1.schema.json").read_text())
    assert {"location", "source", "event"} <= set(located["required"])


def test_the_command_exports_and_reports_what_it_wrote(tmp_path: Path) -> None:
    result = run_cli(["schemas", "export", str(tmp_path / "out")], env={})

    assert result.returncode == 0, result.stderr
    assert len(result.stdout.split()) == len(CONTRACTS)
    assert (tmp_path / "out" / "dead-letter.v1.schema.json").is_file()
