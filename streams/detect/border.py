"""One incident for a problem across a county line: county incidents joined at the city tier.

Each county's detector sees only its county (``events.located`` is keyed by county), so a flood
on both banks of a river that is also a county line is first one incident per county. An
incident with a cell touching another county's cell is a **border incident**: detection also
sends each of its revisions to ``incidents.border``, keyed by city, where one stage per city
keeps the latest revision of every border incident and joins those of one category and
department whose cells touch (or are the same) and whose evidence overlaps within the rules'
``evidence_window_s``. A joined group spanning counties is published on ``incidents.updates`` as
one **city incident** listing its ``members``.

A city incident is a function of its members' latest revisions only: the same member revisions
give the same bytes, whatever order the county partitions delivered them in. Groups only grow
(a member's cells and evidence only grow), so the last revision of every city incident is the
same on every replay; the revisions in between may differ. Its id comes from the member whose
evidence came first; when two groups join, the one whose id does not survive gets a last
revision with status ``merged`` naming the incident it became part of.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from geo import Hierarchy, Level
from schemas import Category, Incident, IncidentStatus, Severity

__all__ = ["BorderMerge", "CityState", "city_incident_id", "county_of_cells"]

_MAX = {"counties": 64, "towns": 256, "cells": 256, "devices": 256}
_RECENT = 20


def county_of_cells(hierarchy: Hierarchy) -> dict[str, str]:
    """Return the county code of every grid cell."""
    tables = [hierarchy.table(level) for level in (Level.CELL, Level.VILLAGE, Level.TOWN)]
    counties = hierarchy.table(Level.COUNTY).codes
    cells, villages, towns = tables
    return {
        str(code): str(counties[towns.parents[villages.parents[cells.parents[n]]]])
        for n, code in enumerate(cells.codes)
    }


def city_incident_id(city: str, category: str, department: str, anchor: str) -> str:
    """Return the id of the city incident whose earliest member is ``anchor``."""
    digest = hashlib.sha256(f"{city}|{category}|{department}|{anchor}".encode()).hexdigest()
    return f"inc-{city}-{digest[:20]}"


@dataclass
class CityState:
    """What the city stage holds for one city: border incidents and published city incidents."""

    members: dict[str, Incident] = field(default_factory=dict)
    """The latest revision of every border incident, by id."""
    published: dict[str, Incident] = field(default_factory=dict)
    """The latest published revision of every city incident, by id."""


class BorderMerge:
    """Joins border incidents of neighbouring counties into city incidents.

    Parameters
    ----------
    neighbours
        Cell code → the codes of the cells touching it (:func:`geo.cell_neighbours`).
    county_of
        Cell code → its county code (:func:`county_of_cells`).
    names
        Code → name of a geographic unit, for summaries.
    window_s
        Evidence of two incidents this close in event time overlaps (the rules'
        ``evidence_window_s``).
    """

    def __init__(
        self,
        *,
        neighbours: Mapping[str, frozenset[str]],
        county_of: Mapping[str, str],
        names: Callable[[str], str],
        window_s: float,
    ) -> None:
        self.neighbours = neighbours
        self.county_of = county_of
        self.names = names
        self.window_s = window_s

    def is_border(self, incident: Incident) -> bool:
        """Whether one of ``incident``'s cells touches a cell of another county."""
        if incident.category is Category.DEVICE_OFFLINE:
            return False  # a department's offline devices, per town: nothing to join
        county_of = self.county_of
        for cell in incident.cells:
            own = county_of.get(cell)
            if any(county_of.get(near) != own for near in self.neighbours.get(cell, ())):
                return True
        return False

    def apply(self, state: CityState, update: Incident) -> list[Incident]:
        """Take a border incident's revision; return the city incidents to publish.

        An older revision than the one held changes nothing. The one held (redelivered after a
        restart) publishes its city incident again, with the bytes it had.
        """
        held = state.members.get(update.incident_id)
        if held is not None and held.revision > update.revision:
            return []
        state.members[update.incident_id] = update
        group = self._group(state, update)
        if len({county for member in group for county in member.counties}) < 2:
            return []
        joined = self.join(group)
        out = []
        if state.published.get(joined.incident_id) != joined or held == update:
            out.append(joined)
        member_ids = set(joined.members)
        merged = {
            "revision": joined.revision,
            "status": IncidentStatus.MERGED,
            "merged_into": joined.incident_id,
            "updated_at": joined.updated_at,
        }
        out += [
            other.model_copy(update=merged)
            for other in sorted(state.published.values(), key=lambda i: i.incident_id)
            if other.incident_id != joined.incident_id
            and other.status is not IncidentStatus.MERGED
            and member_ids.intersection(other.members)
        ]
        for incident in out:
            state.published[incident.incident_id] = incident
        return out

    def _group(self, state: CityState, update: Incident) -> list[Incident]:
        """Return the members joined to ``update``, directly or through others, by id."""
        candidates = [
            member
            for member in state.members.values()
            if member.category is update.category and member.department == update.department
        ]
        group = {update.incident_id: update}
        frontier = [update]
        while frontier:
            current = frontier.pop()
            for other in candidates:
                if other.incident_id not in group and self._touch(current, other):
                    group[other.incident_id] = other
                    frontier.append(other)
        return [group[key] for key in sorted(group)]

    def _touch(self, a: Incident, b: Incident) -> bool:
        window = self.window_s
        a_first = a.first_evidence.observed_at.timestamp()
        b_first = b.first_evidence.observed_at.timestamp()
        if a_first > b.last_evidence.observed_at.timestamp() + window:
            return False
        if b_first > a.last_evidence.observed_at.timestamp() + window:
            return False
        cells = set(b.cells)
        return any(
            cell in cells or not cells.isdisjoint(self.neighbours.get(cell, ())) for cell in a.cells
        )

    def join(self, group: Iterable[Incident]) -> Incident:
        """Return the city incident of ``group``: a function of the members' revisions only."""
        members = sorted(group, key=lambda i: i.incident_id)
        anchor = min(members, key=lambda i: (i.first_evidence.observed_at, i.incident_id))
        latest = max(members, key=lambda i: (i.updated_at, i.incident_id))
        by_last = sorted(members, key=lambda i: (i.last_evidence.observed_at, i.incident_id))
        active = [i for i in members if i.status is IncidentStatus.ACTIVE]
        severity = Severity.gravest(*(i.severity for i in members))
        gravest = [i for i in members if i.severity is severity]
        recent = [event for i in by_last for event in i.recent_evidence]
        unions = {
            name: sorted({code for i in members for code in getattr(i, name)})[: _MAX[name]]
            for name in _MAX
        }
        title = anchor.summary.split(" · ", 1)[0]
        place = "、".join(self.names(code) for code in unions["counties"])
        return Incident.model_validate(
            {
                "incident_id": city_incident_id(
                    anchor.city, anchor.category.value, anchor.department, anchor.incident_id
                ),
                "revision": sum(i.revision for i in members),
                "category": anchor.category,
                "department": anchor.department,
                "gbt30428": anchor.gbt30428,
                "status": IncidentStatus.ACTIVE if active else IncidentStatus.CLEARED,
                "severity": severity,
                "corroborated_by": next(
                    (i.corroborated_by for i in gravest if i.corroborated_by), None
                ),
                "rule": anchor.rule,
                "rules_version": latest.rules_version,
                "geography": latest.geography,
                "city": anchor.city,
                **unions,
                "evidence_count": sum(i.evidence_count for i in members),
                "recent_evidence": recent[-_RECENT:],
                "first_evidence": anchor.first_evidence,
                "last_evidence": by_last[-1].last_evidence,
                "opened_at": min(i.opened_at for i in members),
                "updated_at": latest.updated_at,
                "cleared_at": None
                if active
                else max(i.cleared_at or i.updated_at for i in members),
                "members": tuple(i.incident_id for i in members),
                "summary": f"{title} · {place}交界 ({len(members)}起合并)"[:512],
            }
        )


def _cleared(members: list[Incident]) -> datetime:
    """Return the time the last of ``members`` cleared."""
    return max(i.cleared_at or i.updated_at for i in members)
