"""The simulated fleet: deterministic, spread over every town, each device where it says."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime

import numpy as np
import pytest

from geo import GridIndex, Hierarchy, Reason
from schemas import Device, DeviceType, SensorKind
from schemas.common import IDENTIFIER_PATTERN
from streams.simulate.fleet import (
    CAMERA_INTERVAL_S,
    CAMERA_PLAN,
    SENSOR_PLAN,
    build_fleet,
    registrations,
)


@pytest.fixture(scope="module")
def fleet(heyuan: Hierarchy) -> list[Device]:
    return build_fleet(heyuan)


def _dump(fleet: list[Device]) -> list[str]:
    return [device.model_dump_json() for device in fleet]


def test_the_same_seed_gives_the_same_fleet(heyuan: Hierarchy, fleet: list[Device]) -> None:
    assert _dump(build_fleet(heyuan, seed=0)) == _dump(fleet)
    assert _dump(build_fleet(heyuan, seed=1)) != _dump(fleet)


@pytest.mark.parametrize(
    ("sensors", "cameras"),
    [
        (1800, 1200),  # the default
        (20, 10),  # fewer than the towns: no town gets two before every town has one
        (0, 5),  # cameras only
        (7, 0),  # sensors only
        (0, 0),  # nothing
    ],
)
def test_counts_by_type(heyuan: Hierarchy, sensors: int, cameras: int) -> None:
    types = Counter(d.device_type for d in build_fleet(heyuan, sensors=sensors, cameras=cameras))
    assert types[DeviceType.SENSOR] == sensors
    assert types[DeviceType.CAMERA] == cameras


def test_kinds_follow_the_plan(fleet: list[Device]) -> None:
    kinds = Counter(d.kind for d in fleet if d.device_type is DeviceType.SENSOR)
    assert set(kinds) == set(SensorKind)
    for kind, plan in SENSOR_PLAN.items():
        assert kinds[kind] == round(1800 * plan.share), kind
    departments = Counter(d.department for d in fleet if d.device_type is DeviceType.CAMERA)
    for department, (share, _) in CAMERA_PLAN.items():
        assert departments[department] == round(1200 * share), department


def test_every_device_is_a_valid_registration(heyuan: Hierarchy, fleet: list[Device]) -> None:
    assert len({d.device_id for d in fleet}) == len(fleet)
    for device in fleet:
        assert re.match(IDENTIFIER_PATTERN, device.device_id)
        assert Device.model_validate_json(device.model_dump_json()) == device
        assert device.position is not None
        assert device.position.datum.value == heyuan.datum.value
        assert device.active
        if device.device_type is DeviceType.SENSOR:
            assert device.kind is not None
            plan = SENSOR_PLAN[device.kind]
            assert device.department == plan.department
            assert device.expected_interval_s == plan.interval_s
            assert re.fullmatch(
                rf"sim-\d{{6}}-{device.kind.value.replace('_', '-')}-\d+", device.device_id
            )
            assert device.name is not None
            assert re.fullmatch(rf".+ {re.escape(plan.label)} \d+", device.name)
        else:
            assert device.kind is None
            assert device.department in CAMERA_PLAN
            assert device.expected_interval_s == CAMERA_INTERVAL_S
            assert re.fullmatch(r"sim-\d{6}-cam-\d+", device.device_id)


def test_every_device_stands_in_the_town_it_was_placed_for(
    heyuan: Hierarchy, heyuan_index: GridIndex, fleet: list[Device]
) -> None:
    positions = [d.position for d in fleet if d.position is not None]
    where = heyuan_index.locate_many(
        [p.lon for p in positions], [p.lat for p in positions], datum=heyuan.datum
    )
    assert (where.reason == Reason.LOCATED).all()
    for device, county, town in zip(fleet, where.county.tolist(), where.town.tolist(), strict=True):
        # The id names the county, the name begins with the town's name (unique in a county).
        assert device.device_id.split("-")[1] == county, device
        assert device.name is not None
        assert device.name.split(" ")[0] == heyuan.name(town), device


def test_every_town_has_sensors_and_cameras(
    heyuan: Hierarchy, heyuan_index: GridIndex, fleet: list[Device]
) -> None:
    towns = set(heyuan.table("town").codes.tolist())
    for device_type in DeviceType:
        mine = [d.position for d in fleet if d.device_type is device_type and d.position]
        where = heyuan_index.locate_many(
            [p.lon for p in mine], [p.lat for p in mine], datum=heyuan.datum
        )
        assert set(where.town.tolist()) == towns, device_type


def test_the_city_centre_gets_more_than_its_share_of_cells(
    heyuan: Hierarchy, fleet: list[Device]
) -> None:
    centre = "441602"  # 源城区
    cells = heyuan.table("cell").codes
    cell_share = np.char.startswith(cells, centre).mean()
    device_share = np.mean([d.device_id.startswith(f"sim-{centre}-") for d in fleet])
    assert device_share > 1.5 * cell_share


def test_crowd_counters_stand_at_scenic_towns(
    heyuan: Hierarchy, heyuan_index: GridIndex, fleet: list[Device]
) -> None:
    counters = [d.position for d in fleet if d.kind is SensorKind.CROWD_COUNT and d.position]
    where = heyuan_index.locate_many(
        [p.lon for p in counters], [p.lat for p in counters], datum=heyuan.datum
    )
    towns = {heyuan.name(code) for code in where.town.tolist()}
    assert towns <= {"新港镇", "仙塘镇", "义合镇", "佗城镇", "田心镇", "上城街道", "热水镇"}
    assert len(towns) >= 5


def test_the_2025_plan_fleet(heyuan: Hierarchy) -> None:
    fleet = build_fleet(heyuan, sensors=20_000, cameras=13_000)
    assert len({d.device_id for d in fleet}) == 33_000
    assert Counter(d.device_type for d in fleet) == {
        DeviceType.SENSOR: 20_000,
        DeviceType.CAMERA: 13_000,
    }


def test_registrations(fleet: list[Device]) -> None:
    at = datetime(2026, 7, 1, 8, tzinfo=UTC)
    records = registrations(fleet, at)
    assert [r.key.decode() for r in records] == [d.device_id for d in fleet]
    for record, device in zip(records, fleet, strict=True):
        assert record.topic == "devices.registry"
        assert record.at == at
        assert record.value is not None
        registered = Device.model_validate_json(record.value)
        assert registered.updated_at == at
        assert registered.model_copy(update={"updated_at": None}) == device


def test_registrations_need_an_aware_time(fleet: list[Device]) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        registrations(fleet, datetime(2026, 7, 1))  # noqa: DTZ001 - the point of the test
