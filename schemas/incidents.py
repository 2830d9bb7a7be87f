"""Incidents: what detection makes of located events, for command centres to act on.

An incident is published on ``incidents.updates``, keyed by its id, in full after every change;
a consumer keeps the last revision of each id. Every field is derived from the events and the
rules, never from the wall clock, so replaying the same input gives the same bytes.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import Field, StringConstraints, model_validator

from schemas.common import Contract, Identifier, Timestamp

__all__ = [
    "INCIDENT_VERSION",
    "Category",
    "Evidence",
    "Incident",
    "IncidentStatus",
    "RuleRef",
    "Severity",
]

INCIDENT_VERSION: Final = 1

_Code = Annotated[str, StringConstraints(pattern=r"^[0-9]{4,15}$")]
_Name = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class Severity(StrEnum):
    """The four levels of 突发事件 severity; ``I`` (特别重大) is the gravest."""

    IV = "IV"
    """一般 (general)."""
    III = "III"
    """较大 (large)."""
    II = "II"
    """重大 (major)."""
    I = "I"  # noqa: E741 - the level's official name
    """特别重大 (especially major)."""

    @property
    def rank(self) -> int:
        """1 for IV up to 4 for I, so that a graver level compares greater."""
        return _RANKS[self]

    def raised(self, levels: int = 1) -> Severity:
        """Return the level ``levels`` steps graver, stopping at I."""
        return _ORDER[min(self.rank - 1 + levels, len(_ORDER) - 1)]

    @classmethod
    def gravest(cls, *levels: Severity) -> Severity:
        """Return the gravest of ``levels``."""
        return max(levels, key=lambda level: level.rank)


_ORDER = (Severity.IV, Severity.III, Severity.II, Severity.I)
_RANKS = {level: number for number, level in enumerate(_ORDER, start=1)}


class Category(StrEnum):
    """What kind of problem an incident is; each maps to a responsible department in the rules."""

    FLOOD = "flood"
    """Rising water, heavy rain, waterlogging (防汛)."""
    AIR_QUALITY = "air_quality"
    """PM2.5, PM10, ozone above the limits."""
    FIRE_SMOKE = "fire_smoke"
    """Fire or smoke, from detectors or video."""
    COMBUSTIBLE_GAS = "combustible_gas"
    """Gas leak alarms."""
    MANHOLE_COVER = "manhole_cover"
    """A manhole cover tilted, lifted or missing."""
    TRAFFIC = "traffic"
    """Accidents, congestion, illegal parking."""
    CROWDING = "crowding"
    """Crowds at scenic spots and public places."""
    CITY_APPEARANCE = "city_appearance"
    """Garbage overflow, road occupation, street vending (市容)."""
    WATER_SAFETY = "water_safety"
    """People in or near water where they should not be."""
    NOISE = "noise"
    """Noise above the limits."""
    DEVICE_OFFLINE = "device_offline"
    """Devices that stopped reporting; for their owning department."""


class IncidentStatus(StrEnum):
    """Detection's view of an incident (escalation adds the command lifecycle)."""

    ACTIVE = "active"
    """Its condition holds, or its evidence is recent."""
    CLEARED = "cleared"
    """Its condition cleared by itself (the rule's clear condition); a person still verifies it.
    New evidence within the rules' reopen window makes it active again."""
    MERGED = "merged"
    """A city incident that became part of a larger one (``merged_into``); its last revision."""


class RuleRef(Contract):
    """The rule that raised or changed an incident, with the version that did it."""

    id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
    """The rule's id in the rules file."""
    version: int = Field(ge=1)
    """The rule's version in the rules file."""


class Evidence(Contract):
    """One event an incident rests on."""

    event_id: Identifier
    """The event's id (for an absence: the device's last event)."""
    device_id: Identifier
    """The device or camera that produced it."""
    observed_at: Timestamp
    """Its event time."""
    cell: _Code
    """The grid cell it fell in."""


class Incident(Contract):
    """A problem a command centre can act on, with everything it rests on.

    On topic ``incidents.updates``, keyed by ``incident_id``, in full after every change.
    """

    schema_version: Literal[1] = INCIDENT_VERSION
    """Version of this contract."""
    incident_id: Identifier
    """Deterministic: the same evidence under the same rules gives the same id."""
    revision: int = Field(ge=1)
    """Counts the updates of this incident; the greatest is the current state."""
    category: Category
    """What kind of problem it is."""
    department: _Name
    """The department responsible (from the rules; the owning department for an offline
    device)."""
    gbt30428: _Name | None = None
    """The GB/T 30428 事件 class it falls in, where one fits (大类/小类)."""
    status: IncidentStatus
    """Whether its condition still holds."""
    severity: Severity
    """The gravest level reached while open, one higher when corroborated."""
    corroborated_by: RuleRef | None = None
    """The corroboration rule that raised the severity, if one did."""
    rule: RuleRef
    """The rule that raised it."""
    rules_version: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    """Version of the rule set in force when it last changed."""
    geography: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    """Version of the geography its evidence was located in."""
    city: _Code
    """City code."""
    counties: Annotated[list[_Code], Field(min_length=1, max_length=64)]
    """Every county its evidence came from, sorted."""
    towns: Annotated[list[_Code], Field(min_length=1, max_length=256)]
    """Every town its evidence came from, sorted."""
    cells: Annotated[list[_Code], Field(min_length=1, max_length=256)]
    """The grid cells its evidence came from, sorted (at most 256)."""
    devices: Annotated[list[Identifier], Field(min_length=1, max_length=256)]
    """The devices and cameras its evidence came from, sorted (at most 256)."""
    evidence_count: int = Field(ge=1)
    """How many events it rests on."""
    recent_evidence: Annotated[list[Identifier], Field(min_length=1, max_length=20)]
    """The ids of its latest events, oldest first (at most 20)."""
    first_evidence: Evidence
    """The first event it rests on."""
    last_evidence: Evidence
    """The latest event it rests on."""
    opened_at: Timestamp
    """Event time it was raised."""
    updated_at: Timestamp
    """Event time of its latest change."""
    cleared_at: Timestamp | None = None
    """Event time its condition cleared, while ``status`` is ``cleared``."""
    members: Annotated[tuple[Identifier, ...], Field(max_length=256)] = ()
    """For a city incident, the county incidents across a county line it joins, sorted; empty
    for a county incident. Their own updates go on; screens and escalation treat them as parts
    of this one."""
    merged_into: Identifier | None = None
    """The city incident this one became part of, while ``status`` is ``merged``."""
    summary: Annotated[str, StringConstraints(min_length=1, max_length=512)]
    """One line for a screen."""

    @model_validator(mode="after")
    def _merged_names_its_incident(self) -> Incident:
        if (self.status is IncidentStatus.MERGED) != (self.merged_into is not None):
            raise ValueError("merged_into is set exactly when status is merged")
        return self
