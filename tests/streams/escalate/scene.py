"""Incidents and commands made by hand, on real Heyuan codes: the escalation tests' stage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from schemas import Category, Incident
from schemas.cases import Action, Case, IncidentCommand, Tier
from streams.escalate.cases import Escalator

T0 = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)
TOWN, TOWN2 = "441602001", "441602002"  # 上城街道 and its neighbour, 源城区
COUNTY, CITY = "441602", "441600"
OTHER_COUNTY_TOWN = "441625100"  # 东源县


# Two seconds to acknowledge at every tier: the wall clock test and the policy tests.
FAST_POLICY = """
version = "fast"
[severity.IV]
first_tier = "town"
deadlines.town = { acknowledge_s = 2, dispose_s = 600 }
deadlines.county = { acknowledge_s = 2, dispose_s = 600 }
deadlines.city = { acknowledge_s = 2, dispose_s = 600 }
[severity.III]
first_tier = "town"
deadlines.town = { acknowledge_s = 2, dispose_s = 600 }
deadlines.county = { acknowledge_s = 2, dispose_s = 600 }
deadlines.city = { acknowledge_s = 2, dispose_s = 600 }
[severity.II]
first_tier = "county"
deadlines.county = { acknowledge_s = 2, dispose_s = 600 }
deadlines.city = { acknowledge_s = 2, dispose_s = 600 }
[severity.I]
first_tier = "city"
deadlines.city = { acknowledge_s = 2, dispose_s = 600 }
"""


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def incident(
    severity: str = "III",
    towns: tuple[str, ...] = (TOWN,),
    *,
    status: str = "active",
    revision: int = 1,
    members: tuple[str, ...] = (),
    incident_id: str = "inc-441602-a",
) -> Incident:
    cell = f"{towns[0]}001001"
    evidence: dict[str, Any] = {
        "event_id": "e1",
        "device_id": "g1",
        "observed_at": T0.isoformat(),
        "cell": cell,
    }
    return Incident.model_validate(
        {
            "incident_id": incident_id,
            "revision": revision,
            "category": Category.FLOOD,
            "department": "水务",
            "status": status,
            "cleared_at": T0.isoformat() if status == "cleared" else None,
            "severity": severity,
            "rule": {"id": "flood.level", "version": 1},
            "rules_version": "1",
            "geography": "g",
            "city": CITY,
            "counties": sorted({town[:6] for town in towns}),
            "towns": sorted(towns),
            "cells": [cell],
            "devices": ["g1"],
            "evidence_count": 1,
            "recent_evidence": ["e1"],
            "first_evidence": evidence,
            "last_evidence": evidence,
            "opened_at": T0.isoformat(),
            "updated_at": T0.isoformat(),
            "members": members,
            "summary": "河道水位超警 · 源城区 上城街道",
        }
    )


def command(
    action: Action,
    seconds: float,
    tier: Tier = Tier.TOWN,
    area: str = TOWN,
    **extra: Any,
) -> IncidentCommand:
    return IncidentCommand(
        command_id=f"cmd-{action.value}-{seconds:g}-{tier.value}",
        action=action,
        incident_id=extra.pop("incident_id", "inc-441602-a"),
        actor="王工",
        actor_tier=tier,
        actor_area=area,
        at=at(seconds),
        **extra,
    )


def act(escalator: Escalator, case: Case, *commands: IncidentCommand) -> Case:
    """Apply ``commands`` in turn; each must apply."""
    for item in commands:
        effects = escalator.on_command(case, item, item.at)
        assert effects.rejection is None, effects.rejection
        assert effects.case is not None
        case = effects.case
    return case
