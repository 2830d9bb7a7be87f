"""Joining incidents across a county line into one city incident (``streams/detect/border.py``).

The real scene runs the detector over Heyuan's grid with gauges on both sides of the line
between 源城区 (441602) and 东源县 (441625); the made-up incidents test how groups grow and join.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from geo import Hierarchy, cell_neighbours
from schemas import Category, Incident, IncidentStatus, SensorKind, Severity
from streams.detect.border import BorderMerge, CityState, county_of_cells
from tests.streams.detect.scene import Scene, at, pick_line

YUANCHENG, DONGYUAN = "441602", "441625"


@pytest.fixture(scope="module")
def neighbours(heyuan: Hierarchy) -> dict[str, frozenset[str]]:
    return cell_neighbours(heyuan)


@pytest.fixture(scope="module")
def county_of(heyuan: Hierarchy) -> dict[str, str]:
    return county_of_cells(heyuan)


@pytest.fixture
def merge(
    heyuan: Hierarchy, neighbours: dict[str, frozenset[str]], county_of: dict[str, str]
) -> BorderMerge:
    return BorderMerge(neighbours=neighbours, county_of=county_of, names=heyuan.name, window_s=600)


def flood_across_the_line(heyuan: Hierarchy, neighbours: dict[str, frozenset[str]]) -> Scene:
    """Two gauges in touching cells on either side of the line, rising together for 20
    minutes, then falling back: one incident per county, one problem."""
    scene = Scene(heyuan, neighbours)
    west, east = pick_line(neighbours, YUANCHENG, DONGYUAN)
    scene.sensor("gauge-w", SensorKind.WATER_LEVEL)
    scene.sensor("gauge-e", SensorKind.WATER_LEVEL)
    for minute in range(50):
        high = 10 <= minute < 30
        scene.reading("gauge-w", west, 3.4 + minute / 20 if high else 1.0, minute * 60)
        scene.reading("gauge-e", east, 3.3 if high else 1.0, minute * 60 + 7)
    return scene


def finals(published: list[Incident]) -> dict[str, bytes]:
    """The last revision of every city incident, as bytes."""
    return {i.incident_id: i.model_dump_json().encode() for i in published}


def test_every_cell_has_the_county_its_code_starts_with(county_of: dict[str, str]) -> None:
    assert len(county_of) == 3954
    assert all(county == cell[:6] for cell, county in county_of.items())


def test_a_flood_across_a_county_line_is_one_city_incident(
    heyuan: Hierarchy, neighbours: dict[str, frozenset[str]]
) -> None:
    scene = flood_across_the_line(heyuan, neighbours)
    county_incidents = list(scene.latest().values())
    assert sorted(i.counties[0] for i in county_incidents) == [YUANCHENG, DONGYUAN]
    assert all(scene.border.is_border(i) for i in county_incidents)

    city = list(finals(scene.city_updates))
    assert len(city) == 1
    joined = scene.city.published[city[0]]
    assert joined.members == tuple(sorted(i.incident_id for i in county_incidents))
    assert joined.counties == [YUANCHENG, DONGYUAN]
    assert joined.evidence_count == sum(i.evidence_count for i in county_incidents)
    assert joined.revision == sum(i.revision for i in county_incidents)
    assert joined.severity is Severity.gravest(*(i.severity for i in county_incidents))
    assert joined.status is IncidentStatus.CLEARED  # both sides fell back
    assert joined.cleared_at == max(i.cleared_at for i in county_incidents if i.cleared_at)
    assert joined.first_evidence == min(
        (i.first_evidence for i in county_incidents), key=lambda e: e.observed_at
    )
    assert "源城区、东源县交界" in joined.summary
    assert joined.incident_id.startswith("inc-441600-")
    revisions = [i.revision for i in scene.city_updates]
    assert revisions == sorted(set(revisions))  # each publication a new revision


def test_the_last_city_revision_is_the_same_in_any_interleaving_of_counties(
    heyuan: Hierarchy, neighbours: dict[str, frozenset[str]], merge: BorderMerge
) -> None:
    scene = flood_across_the_line(heyuan, neighbours)
    by_county: dict[str, list[Incident]] = {}
    for update in scene.border_updates:
        by_county.setdefault(update.counties[0], []).append(update)
    expected = finals(scene.city_updates)
    rng = random.Random(3)  # noqa: S311 - test data
    for _ in range(30):
        queues = [list(updates) for updates in by_county.values()]
        state, published = CityState(), []
        while any(queues):
            queue = rng.choice([q for q in queues if q])
            published += merge.apply(state, queue.pop(0))
        assert finals(published) == expected


def made_up(
    incident_id: str,
    county: str,
    cells: list[str],
    first: float,
    last: float,
    *,
    revision: int = 1,
    category: Category = Category.FLOOD,
) -> Incident:
    """A county incident with the given cells and evidence times (seconds after T0)."""

    def evidence(seconds: float) -> dict[str, Any]:
        return {
            "event_id": f"{incident_id}-{seconds:g}",
            "device_id": f"dev-{incident_id}",
            "observed_at": at(seconds).isoformat(),
            "cell": cells[0],
        }

    return Incident.model_validate(
        {
            "incident_id": incident_id,
            "revision": revision,
            "category": category,
            "department": "水务",
            "status": "active",
            "severity": "III",
            "rule": {"id": "flood.level", "version": 1},
            "rules_version": "1",
            "geography": "test-geo",
            "city": "441600",
            "counties": [county],
            "towns": sorted({cell[:9] for cell in cells}),
            "cells": sorted(cells),
            "devices": [f"dev-{incident_id}"],
            "evidence_count": revision,
            "recent_evidence": [f"{incident_id}-{last:g}"],
            "first_evidence": evidence(first),
            "last_evidence": evidence(last),
            "opened_at": at(first).isoformat(),
            "updated_at": at(last).isoformat(),
            "summary": "水位超警 · 某地",
        }
    )


def two_lines(neighbours: dict[str, frozenset[str]]) -> tuple[tuple[str, str], tuple[str, str]]:
    """Two pairs of touching cells across the line, far enough apart not to touch."""
    first = pick_line(neighbours, YUANCHENG, DONGYUAN)
    near = {c for cell in first for c in (cell, *neighbours[cell])}
    for west in sorted(c for c in neighbours if c.startswith(YUANCHENG) and c not in near):
        across = sorted(
            c
            for c in neighbours[west]
            if c.startswith(DONGYUAN) and c not in near and not near & neighbours[c]
        )
        if across and not near & neighbours[west]:
            return first, (west, across[0])
    raise AssertionError("one line only")


def test_two_groups_joined_later_leave_one_city_incident(
    neighbours: dict[str, frozenset[str]], merge: BorderMerge
) -> None:
    (w1, e1), (w2, e2) = two_lines(neighbours)
    p = made_up("inc-p", YUANCHENG, [w1], 100, 900)
    q = made_up("inc-q", DONGYUAN, [e1], 200, 800)
    r = made_up("inc-r", YUANCHENG, [w2], 300, 700)
    s = made_up("inc-s", DONGYUAN, [e2], 400, 600)
    t = made_up("inc-t", DONGYUAN, [e1, e2], 50, 950)  # reaches both, and came first

    state = CityState()
    first = [*merge.apply(state, p), *merge.apply(state, q)]
    second = [*merge.apply(state, r), *merge.apply(state, s)]
    assert len(finals(first)) == 1
    assert len(finals(second)) == 1
    assert finals(first).keys() != finals(second).keys()
    last = merge.apply(state, t)
    survivor = next(i for i in last if i.status is not IncidentStatus.MERGED)
    assert survivor.members == ("inc-p", "inc-q", "inc-r", "inc-s", "inc-t")
    gone = {i.incident_id: i for i in last if i.status is IncidentStatus.MERGED}
    assert gone.keys() == finals(first).keys() | finals(second).keys()
    assert {i.merged_into for i in gone.values()} == {survivor.incident_id}
    assert all(i.revision == survivor.revision for i in gone.values())

    # In the other order the groups never form apart, and the survivor is the same bytes.
    state = CityState()
    published = [i for update in (t, s, r, q, p) for i in merge.apply(state, update)]
    assert finals(published) == {survivor.incident_id: survivor.model_dump_json().encode()}


def test_nothing_joins_apart_in_time_or_space_or_across_categories(
    neighbours: dict[str, frozenset[str]], merge: BorderMerge
) -> None:
    (w1, e1), (_, e2) = two_lines(neighbours)
    west = made_up("inc-w", YUANCHENG, [w1], 0, 1000)
    cases = [
        made_up("inc-late", DONGYUAN, [e1], 1601, 2000),  # starts after the window
        made_up("inc-far", DONGYUAN, [e2], 0, 1000),  # not touching
        made_up("inc-air", DONGYUAN, [e1], 0, 1000, category=Category.AIR_QUALITY),
    ]
    for other in cases:
        state = CityState()
        assert merge.apply(state, west) == []
        assert merge.apply(state, other) == [], other.incident_id
    state = CityState()
    merge.apply(state, west)
    assert merge.apply(state, made_up("inc-soon", DONGYUAN, [e1], 1600, 2000)) != []


def test_only_incidents_on_a_county_line_are_border_incidents(
    neighbours: dict[str, frozenset[str]], county_of: dict[str, str], merge: BorderMerge
) -> None:
    (w1, _), _ = two_lines(neighbours)
    inland = next(
        cell
        for cell in sorted(neighbours)
        if cell.startswith(YUANCHENG) and all(county_of[c] == YUANCHENG for c in neighbours[cell])
    )
    assert merge.is_border(made_up("inc-a", YUANCHENG, [w1], 0, 60))
    assert not merge.is_border(made_up("inc-b", YUANCHENG, [inland], 0, 60))
    offline = made_up("inc-c", YUANCHENG, [w1], 0, 60, category=Category.DEVICE_OFFLINE)
    assert not merge.is_border(offline)


def test_a_redelivered_revision_republishes_the_same_bytes_and_an_older_one_nothing(
    neighbours: dict[str, frozenset[str]], merge: BorderMerge
) -> None:
    (w1, e1), _ = two_lines(neighbours)
    state = CityState()
    merge.apply(state, made_up("inc-p", YUANCHENG, [w1], 0, 300, revision=1))
    merge.apply(state, made_up("inc-p", YUANCHENG, [w1], 0, 600, revision=2))
    [joined] = merge.apply(state, made_up("inc-q", DONGYUAN, [e1], 100, 500))
    assert joined.revision == 3
    assert merge.apply(state, made_up("inc-q", DONGYUAN, [e1], 100, 500)) == [joined]
    assert merge.apply(state, made_up("inc-p", YUANCHENG, [w1], 0, 300, revision=1)) == []
