"""A detector over Heyuan's grid, fed located events by hand: the rule tests' stage.

Times are seconds after ``T0``; cells are picked from the real grid so that the neighbour rules
meet real geometry: ``A`` and ``A2`` touch inside one town, ``B`` touches ``A`` across a town line
of the same county, ``FAR`` is in another town of that county and touches neither.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

from geo import Hierarchy
from schemas import (
    Datum,
    Device,
    DeviceType,
    Incident,
    LocatedEvent,
    Position,
    SensorKind,
    VideoEventType,
)
from streams.detect.border import BorderMerge, CityState, county_of_cells
from streams.detect.detector import Detector, Outcome
from streams.detect.rules import DEFAULT_RULES, RuleSet, load_rules

T0 = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)
GEOGRAPHY = "test-geo"


@dataclass(frozen=True)
class Cells:
    """Cells of one county chosen for their neighbourhood."""

    a: str
    a2: str
    b: str
    far: str


def pick_cells(neighbours: dict[str, frozenset[str]], county: str = "") -> Cells:
    """Choose ``A``, ``A2``, ``B`` and ``FAR`` (see the module docstring) deterministically, in
    the first county whose code starts with ``county``."""
    for a in sorted(cell for cell in neighbours if cell.startswith(county)):
        near = neighbours[a]
        same_town = sorted(c for c in near if c[:9] == a[:9])
        other_town = sorted(c for c in near if c[:9] != a[:9] and c[:6] == a[:6])
        if not same_town or not other_town:
            continue
        touching = {a, *near, *neighbours[same_town[0]], *neighbours[other_town[0]]}
        far = [
            c
            for c in sorted(neighbours)
            if c[:6] == a[:6] and c[:9] not in (a[:9], other_town[0][:9]) and c not in touching
        ]
        if far:
            return Cells(a=a, a2=same_town[0], b=other_town[0], far=far[0])
    raise AssertionError("no suitable cells in the grid")


def pick_line(neighbours: dict[str, frozenset[str]], county: str, other: str) -> tuple[str, str]:
    """Choose two touching cells, the first in ``county`` and the second in ``other``."""
    for a in sorted(cell for cell in neighbours if cell.startswith(county)):
        across = sorted(c for c in neighbours[a] if c.startswith(other))
        if across:
            return a, across[0]
    raise AssertionError(f"counties {county} and {other} do not touch")


def at(seconds: float) -> datetime:
    """``T0`` plus ``seconds``."""
    return T0 + timedelta(seconds=seconds)


@dataclass
class Scene:
    """Devices, a detector, and every incident update it published."""

    hierarchy: Hierarchy
    neighbours: dict[str, frozenset[str]]
    rules: RuleSet = field(default_factory=lambda: load_rules(DEFAULT_RULES))
    lateness: float = 600.0
    devices: dict[str, Device] = field(default_factory=dict)
    updates: list[Incident] = field(default_factory=list)
    fed: list[tuple[LocatedEvent, int]] = field(default_factory=list)
    detector: Detector = field(init=False)
    border: BorderMerge = field(init=False)
    city: CityState = field(default_factory=CityState)
    border_updates: list[Incident] = field(default_factory=list)
    """The county incidents' revisions sent to the city stage, in order."""
    city_updates: list[Incident] = field(default_factory=list)
    """What the city stage published, in order."""
    _offsets: Any = field(default_factory=count)
    _ids: Any = field(default_factory=count)

    def __post_init__(self) -> None:
        self.detector = self.build()
        self.border = BorderMerge(
            neighbours=self.neighbours,
            county_of=county_of_cells(self.hierarchy),
            names=self.hierarchy.name,
            window_s=self.rules.evidence_window_s,
        )

    def build(self) -> Detector:
        """A new detector over this scene's devices (a restarted worker)."""
        return Detector(
            self.rules,
            neighbours=self.neighbours,
            devices=self.devices.get,
            names=self.hierarchy.name,
            allowed_lateness=self.lateness,
        )

    def sensor(
        self, device_id: str, kind: SensorKind, *, interval: float = 60, department: str = "水务"
    ) -> None:
        """Register a sensor."""
        self.devices[device_id] = Device(
            device_id=device_id,
            device_type=DeviceType.SENSOR,
            kind=kind,
            department=department,
            expected_interval_s=interval,
        )

    def camera(self, camera_id: str) -> None:
        """Register a camera."""
        self.devices[camera_id] = Device(
            device_id=camera_id,
            device_type=DeviceType.CAMERA,
            department="城管",
            expected_interval_s=60,
        )

    def reading(
        self,
        device_id: str,
        cell: str,
        value: float,
        seconds: float,
        *,
        unit: str | None = None,
        ingested_lag: float = 1.0,
    ) -> Outcome:
        """Feed a reading of ``device_id`` in ``cell`` at ``T0 + seconds``."""
        kind = self.devices[device_id].kind
        assert kind is not None
        units = {"water_level": "m", "rainfall": "mm/h", "pm25": "ug/m3", "smoke": "alarm"}
        event = {
            "record": "sensor_reading",
            "event_id": f"{device_id}-{next(self._ids)}",
            "device_id": device_id,
            "kind": kind.value,
            "value": value,
            "unit": unit or units.get(kind.value, "m"),
            "observed_at": at(seconds).isoformat(),
        }
        return self.feed(event, device_id, cell, seconds, ingested_lag)

    def video(
        self,
        camera_id: str,
        cell: str,
        event_type: VideoEventType,
        seconds: float,
        *,
        confidence: float = 0.9,
    ) -> Outcome:
        """Feed a video event of ``camera_id`` in ``cell`` at ``T0 + seconds``."""
        event = {
            "record": "video_event",
            "event_id": f"{camera_id}-{next(self._ids)}",
            "camera_id": camera_id,
            "event_type": event_type.value,
            "confidence": confidence,
            "observed_at": at(seconds).isoformat(),
        }
        return self.feed(event, camera_id, cell, seconds, 1.0)

    def feed(
        self, event: dict[str, Any], device_id: str, cell: str, seconds: float, lag: float
    ) -> Outcome:
        """Locate ``event`` in ``cell`` and apply it; keep the updates."""
        point = self.hierarchy.geometry(cell).representative_point()
        located = LocatedEvent.model_validate(
            {
                "event": event,
                "device_id": device_id,
                "position": Position(lon=point.x, lat=point.y, datum=Datum.GCJ02),
                "position_source": "device",
                "location": {
                    "cell": cell,
                    "village": cell[:12],
                    "town": cell[:9],
                    "county": cell[:6],
                    "city": "441600",
                },
                "geography": GEOGRAPHY,
                "source": {"topic": "events.located", "partition": 0, "offset": 0},
                "ingested_at": at(seconds + lag).isoformat(),
            }
        )
        offset = next(self._offsets)
        self.fed.append((located, offset))
        outcome = self.detector.apply(located, offset)
        self.updates.extend(outcome.incidents)
        for incident in outcome.incidents:
            if self.border.is_border(incident):
                self.border_updates.append(incident)
                self.city_updates += self.border.apply(self.city, incident)
        return outcome

    def latest(self) -> dict[str, Incident]:
        """The last revision of every incident published so far."""
        return {incident.incident_id: incident for incident in self.updates}
