"""Scenarios: a situation in the city as data, with what cityops should make of it.

A scenario file (TOML, validated here) brings its own devices, says what they send and when
(seconds after the scenario starts), how departments answer (for drills), and what the system
should do: which incidents, where, how grave, how soon, and how far they climb. The shipped
scenarios are in ``streams/simulate/scenarios/``; ``docs/simulation.md`` describes the format.

:meth:`Scenario.records` turns a scenario into timed records from a start time, the same bytes
for the same start: a drill, a test and a live simulation send exactly the same traffic.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Self

import orjson
from pydantic import Field, StringConstraints, model_validator

import geo
from schemas import (
    UNITS,
    Category,
    Datum,
    Device,
    DeviceType,
    Position,
    SensorKind,
    Severity,
    VideoEventType,
)
from schemas.cases import Tier
from schemas.exceptions import CityOpsError
from streams.datafile import DataModel, parse_toml
from streams.simulate.records import Outgoing

__all__ = [
    "SCENARIOS",
    "DeviceGroup",
    "Expectation",
    "Readings",
    "Response",
    "Scenario",
    "ScenarioError",
    "Sightings",
    "load_scenario",
    "scenario_names",
]

SCENARIOS = Path(__file__).with_name("scenarios")
"""The shipped scenarios, one ``<id>.toml`` each."""

_Id = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,47}$")]
_Code = Annotated[str, StringConstraints(pattern=r"^[0-9]{6}([0-9]{3})?$")]
_Seconds = Annotated[float, Field(ge=0, le=7 * 86_400)]


class ScenarioError(CityOpsError):
    """A scenario file that cannot be used, or a scenario name that is not shipped."""


class DeviceGroup(DataModel):
    """Devices the scenario brings, registered when it starts, placed in ``town``."""

    id: _Id
    """Their ids are ``<id>-1`` … ``<id>-<count>``."""
    count: int = Field(default=1, ge=1, le=100)
    type: DeviceType = DeviceType.SENSOR
    kind: SensorKind | None = None
    """What the sensors measure; cameras have none."""
    town: Annotated[str, StringConstraints(pattern=r"^[0-9]{9}$")]
    """The town they stand in, on neighbouring grid cells (one per device, in code order)."""
    department: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    interval_s: float = Field(default=60, gt=0, le=86_400)
    """How often the devices are expected to report."""
    name: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None

    @model_validator(mode="after")
    def _kind_fits_type(self) -> Self:
        if (self.type is DeviceType.SENSOR) != (self.kind is not None):
            raise ValueError("sensors need a kind and cameras have none")
        return self

    def ids(self) -> list[str]:
        """Return the ids of the group's devices."""
        return [f"{self.id}-{n}" for n in range(1, self.count + 1)]


class Readings(DataModel):
    """What every sensor of a group reports: ``values`` in turn, every ``every_s``."""

    devices: _Id
    """The device group."""
    from_s: _Seconds = 0
    every_s: float = Field(gt=0, le=86_400)
    values: Annotated[list[float], Field(min_length=1, max_length=1000)]
    """One value per report; repeated from the start when ``until_s`` asks for more."""
    until_s: _Seconds | None = None
    """The last report is before this; default: once through ``values``."""
    unit: Annotated[str, StringConstraints(min_length=1, max_length=16)]
    spread: float = Field(default=0.0, ge=0)
    """Device ``n`` (from 0) reports ``value + n * spread``: gauges on one river differ."""

    def times(self) -> list[float]:
        """Return the seconds of each report after the start."""
        end = (
            self.until_s
            if self.until_s is not None
            else self.from_s + len(self.values) * self.every_s
        )
        count = max(0, math.ceil((end - self.from_s) / self.every_s))
        return [self.from_s + step * self.every_s for step in range(count)]


class Sightings(DataModel):
    """Video events of one camera at the given seconds."""

    camera: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,47}-[0-9]+$")]
    """A camera of a device group, e.g. ``fire-cam-1``."""
    event_type: VideoEventType
    at_s: Annotated[list[_Seconds], Field(min_length=1, max_length=1000)]
    confidence: float = Field(ge=0, le=1)


class Response(DataModel):
    """How the department that holds an incident of ``category`` answers, in a drill.

    Times are seconds after the incident's case was opened; each step is skipped when unset.
    """

    category: Category
    acknowledge_after_s: _Seconds | None = None
    resolve_after_s: _Seconds | None = None
    close_after_s: _Seconds | None = None
    """Verified and closed then (the verification a minute before)."""


class Expectation(DataModel):
    """Incidents the scenario should produce, and what should become of them."""

    category: Category
    count: int = Field(default=1, ge=1, le=100)
    """Exactly this many incidents match."""
    severity: Severity = Severity.IV
    """The least grave level they reach."""
    rule: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    county: _Code | None = None
    towns: tuple[Annotated[str, StringConstraints(pattern=r"^[0-9]{9}$")], ...] = ()
    """Towns its evidence must include."""
    within_s: _Seconds = 3600
    """It is opened at most this long after the scenario starts (event time)."""
    tier: Tier | None = None
    """The tier that owns it first."""
    reaches_tier: Tier | None = None
    """The tier that owns it at the end of the drill."""
    escalations: int | None = Field(default=None, ge=0)
    """How often it climbed on a missed deadline, by the end of the drill."""
    closed: bool | None = None
    """Whether its case is closed at the end of the drill."""


class Scenario(DataModel):
    """One scenario file."""

    id: _Id
    version: int = Field(ge=1)
    title: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    description: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    duration_s: float = Field(gt=0, le=86_400)
    """How long a drill follows it: deadlines up to here can pass."""
    devices: Annotated[list[DeviceGroup], Field(min_length=1)]
    readings: list[Readings] = []
    sightings: list[Sightings] = []
    respond: list[Response] = []
    expect: Annotated[list[Expectation], Field(min_length=1)]

    @model_validator(mode="after")
    def _references(self) -> Self:
        groups = {group.id: group for group in self.devices}
        if len(groups) != len(self.devices):
            raise ValueError("device group ids must be unique")
        for readings in self.readings:
            group = groups.get(readings.devices)
            if group is None or group.kind is None:
                raise ValueError(f"readings of {readings.devices!r}: no such sensor group")
            if readings.unit not in UNITS[group.kind]:
                raise ValueError(f"unit {readings.unit!r} does not fit {group.kind.value}")
        cameras = {i for g in self.devices if g.type is DeviceType.CAMERA for i in g.ids()}
        for sighting in self.sightings:
            if sighting.camera not in cameras:
                raise ValueError(f"sightings of {sighting.camera!r}: no such camera")
        return self

    # --- traffic ------------------------------------------------------------------------------

    def registrations(self, hierarchy: geo.Hierarchy, at: datetime) -> list[Outgoing]:
        """Return the scenario's devices as ``devices.registry`` records written at ``at``."""
        records = []
        for group in self.devices:
            cells = _cells(hierarchy, group.town)
            if not cells:
                raise ScenarioError(f"scenario {self.id}: town {group.town} has no grid cells")
            for n, device_id in enumerate(group.ids()):
                point = hierarchy.geometry(cells[n % len(cells)]).representative_point()
                device = Device(
                    device_id=device_id,
                    device_type=group.type,
                    kind=group.kind,
                    name=f"{group.name or group.id} {n + 1}",
                    position=Position(lon=point.x, lat=point.y, datum=Datum(hierarchy.datum.value)),
                    department=group.department,
                    expected_interval_s=group.interval_s,
                    updated_at=at,
                )
                body = device.model_dump_json(exclude_none=True).encode()
                records.append(Outgoing(at, "devices.registry", device_id.encode(), body))
        return records

    def records(self, start: datetime) -> list[Outgoing]:
        """Every reading and video event of the scenario from ``start``, in time order."""
        groups = {group.id: group for group in self.devices}
        out: list[Outgoing] = []
        for readings in self.readings:
            group = groups[readings.devices]
            for step, second in enumerate(readings.times()):
                value = readings.values[step % len(readings.values)]
                for n, device_id in enumerate(group.ids()):
                    at = start + timedelta(seconds=second + n)  # one second apart per device
                    body = {
                        "event_id": f"{self.id}.{device_id}.{step}",
                        "device_id": device_id,
                        "kind": group.kind,
                        "value": round(value + n * readings.spread, 6),
                        "unit": readings.unit,
                        "observed_at": at.isoformat(),
                    }
                    out.append(
                        Outgoing(at, "sensor.readings", device_id.encode(), orjson.dumps(body))
                    )
        for sighting in self.sightings:
            for n, second in enumerate(sighting.at_s):
                at = start + timedelta(seconds=second)
                body = {
                    "event_id": f"{self.id}.{sighting.camera}.{n}",
                    "camera_id": sighting.camera,
                    "event_type": sighting.event_type,
                    "confidence": sighting.confidence,
                    "observed_at": at.isoformat(),
                }
                out.append(
                    Outgoing(at, "video.events", sighting.camera.encode(), orjson.dumps(body))
                )
        out.sort(key=lambda record: (record.at, record.topic, record.key))
        return out


def _cells(hierarchy: geo.Hierarchy, town: str) -> list[str]:
    if town not in hierarchy:
        raise ScenarioError(f"town {town} is not in {hierarchy.city.name}'s geography")
    return [cell for village in hierarchy.children(town) for cell in hierarchy.children(village)]


def scenario_names() -> list[str]:
    """Return the ids of the shipped scenarios, sorted."""
    return sorted(path.stem for path in SCENARIOS.glob("*.toml"))


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a shipped scenario by id, or a scenario file by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = SCENARIOS / f"{name_or_path}.toml"
        if not path.is_file():
            known = ", ".join(scenario_names())
            raise ScenarioError(f"no scenario {name_or_path!r}; the shipped ones are {known}")
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"cannot read {path}: {exc.strerror or exc}") from exc
    scenario = parse_toml(text, Scenario, str(path), "a valid scenario", ScenarioError)
    if path.parent == SCENARIOS and scenario.id != path.stem:
        raise ScenarioError(f"{path}: its id {scenario.id!r} must be its file name")
    return scenario
