"""The shipped scenarios: valid files whose traffic is valid input in the towns they name, and
an evaluation that fails when the incidents are not what a scenario expects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pytest

from geo import GridIndex, Hierarchy
from schemas import Device, Incident, SensorReading, VideoEvent
from schemas.cases import Case, Stage
from streams.escalate.cases import Escalator
from streams.simulate.drill import evaluate
from streams.simulate.engine import parse_injection
from streams.simulate.scenario import ScenarioError, load_scenario, scenario_names

START = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)
SHIPPED = scenario_names()


def test_the_issue_s_scenarios_are_shipped() -> None:
    assert SHIPPED == [
        "dongjiang-flood",
        "gas-alarm-cluster",
        "longchuan-road-accident",
        "scenic-crowding",
        "sensors-offline",
        "zijin-forest-fire",
    ]


@pytest.mark.parametrize("name", SHIPPED)
def test_a_scenario_s_traffic_is_valid_input_from_its_own_devices_in_their_towns(
    name: str, heyuan: Hierarchy, heyuan_index: GridIndex
) -> None:
    scenario = load_scenario(name)
    devices = [
        Device.model_validate_json(record.value or b"")
        for record in scenario.registrations(heyuan, START)
    ]
    towns = {
        f"{group.id}-{n}": group.town
        for group in scenario.devices
        for n in range(1, group.count + 1)
    }
    assert sorted(d.device_id for d in devices) == sorted(towns)
    lons = np.array([d.position.lon for d in devices if d.position])
    lats = np.array([d.position.lat for d in devices if d.position])
    found = heyuan_index.locate_many(lons, lats, datum="gcj02")
    assert found.town.tolist() == [towns[d.device_id] for d in devices]
    records = scenario.records(START)
    assert records, "a scenario must send something"
    assert [r.at for r in records] == sorted(r.at for r in records)
    for record in records:
        model = SensorReading if record.topic == "sensor.readings" else VideoEvent
        event = model.model_validate_json(record.value or b"")
        assert event.observed_at == record.at
        assert START <= record.at <= START + timedelta(seconds=scenario.duration_s)
    assert records == scenario.records(START)  # the same bytes every time


def test_a_scenario_file_with_a_mistake_is_refused_with_its_place(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    lines = [
        'id = "broken"',
        "version = 1",
        'title = "t"',
        'description = "d"',
        "duration_s = 60",
        "[[devices]]",
        'id = "cam"',
        'type = "camera"',
        'town = "441621100"',
        'department = "应急管理"',
        "[[sightings]]",
        'camera = "other-1"',
        'event_type = "fire_smoke"',
        "at_s = [0]",
        "confidence = 0.9",
        "[[expect]]",
        'category = "fire_smoke"',
    ]
    path.write_text("\n".join(lines))
    with pytest.raises(ScenarioError, match=r"other-1.*no such camera"):
        load_scenario(path)
    with pytest.raises(ScenarioError, match=r"no scenario 'nope'; the shipped ones are"):
        load_scenario("nope")
    assert parse_injection("zijin-forest-fire@90").after_s == 90


def fire_incident(opened_after_s: float) -> Incident:
    opened = START + timedelta(seconds=opened_after_s)
    evidence = {
        "event_id": "e1",
        "device_id": "zj-cam-1",
        "observed_at": START.isoformat(),
        "cell": "441621100001001",
    }
    return Incident.model_validate(
        {
            "incident_id": "inc-441621-fire",
            "revision": 1,
            "category": "fire_smoke",
            "department": "消防救援",
            "status": "active",
            "severity": "III",
            "rule": {"id": "fire.smoke-video", "version": 1},
            "rules_version": "1",
            "geography": "g",
            "city": "441600",
            "counties": ["441621"],
            "towns": ["441621100"],
            "cells": ["441621100001001"],
            "devices": ["zj-cam-1"],
            "evidence_count": 2,
            "recent_evidence": ["e1"],
            "first_evidence": evidence,
            "last_evidence": evidence,
            "opened_at": opened.isoformat(),
            "updated_at": opened.isoformat(),
            "summary": "视频发现烟火",
        }
    )


def test_the_evaluation_passes_what_a_scenario_expects_and_fails_what_it_does_not(
    escalator: Escalator,
) -> None:
    scenario = load_scenario("zijin-forest-fire")
    on_time = fire_incident(45)
    case = escalator.on_incident(None, on_time, on_time.opened_at).case
    assert case is not None
    unanswered = evaluate(scenario, START, {on_time.incident_id: on_time}, {case.incident_id: case})
    assert not unanswered.passed  # the scenario expects it closed
    assert unanswered.expectations[0]["problems"] == [
        f"{case.incident_id}: closed False, expected True"
    ]
    closed = case.model_copy(
        update={"stage": Stage.CLOSED, "closed_at": START + timedelta(hours=1)}
    )
    assert evaluate(
        scenario, START, {on_time.incident_id: on_time}, {case.incident_id: closed}
    ).passed
    too_late = fire_incident(400)  # expected within 300 s
    result = evaluate(
        scenario,
        START,
        {too_late.incident_id: too_late},
        {case.incident_id: Case.model_validate(closed.model_dump())},
    )
    assert result.expectations[0]["problems"] == ["0 matching incidents, expected 1"]
    assert orjson.loads(result.as_json())["passed"] is False
    assert "FAIL" in result.report()
