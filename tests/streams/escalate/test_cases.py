"""The escalation decisions (``streams/escalate/cases.py``) on Heyuan's geography and policy."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.cases import (
    Action,
    Case,
    OrderKind,
    RejectionReason,
    Stage,
    Tier,
)
from streams.escalate.cases import Escalator
from tests.streams.escalate.scene import (
    CITY,
    COUNTY,
    OTHER_COUNTY_TOWN,
    T0,
    TOWN,
    TOWN2,
    act,
    at,
    command,
    incident,
)


def opened(escalator: Escalator, severity: str = "III", **kwargs: Any) -> Case:
    effects = escalator.on_incident(None, incident(severity, **kwargs), T0)
    assert effects.case is not None
    return effects.case


def test_a_level_iii_incident_in_one_town_is_dispatched_to_that_town(escalator: Escalator) -> None:
    effects = escalator.on_incident(None, incident("III"), T0)
    case = effects.case
    assert case is not None
    assert (case.stage, case.tier, case.area, case.area_name) == (
        Stage.DISPATCHED,
        Tier.TOWN,
        TOWN,
        "上城街道",
    )
    assert case.department == "镇街水务所"
    assert (case.acknowledge_by, case.dispose_by) == (at(900), at(14400))
    [order] = effects.orders
    assert (order.kind, order.department, order.place) == (
        OrderKind.ORDER,
        "镇街水务所",
        "河源市 源城区 上城街道",
    )
    assert order.acknowledge_by == at(900)


def test_an_unanswered_incident_climbs_town_county_city_on_schedule(escalator: Escalator) -> None:
    case = opened(escalator)
    assert escalator.due(case, at(899)).case is None  # not yet
    step = escalator.due(case, at(900))
    county = step.case
    assert county is not None
    assert (county.tier, county.area, county.dispatched_at) == (Tier.COUNTY, COUNTY, at(900))
    assert county.acknowledge_by == at(1800)  # restarted at the county's own deadline
    assert county.notified == (TOWN,)  # the town keeps seeing it
    assert [(o.kind, o.department, o.area) for o in step.orders] == [
        (OrderKind.ORDER, "县区水务局", COUNTY),
        (OrderKind.NOTICE, "镇街水务所", TOWN),
    ]
    city = escalator.due(county, at(1800)).case
    assert city is not None
    assert (city.tier, city.area, city.department) == (Tier.CITY, CITY, "市水务局")
    assert (city.escalations, city.breaches) == (2, 2)
    # At the city a missed deadline is recorded, not climbed.
    breached = escalator.due(city, at(2700)).case
    assert breached is not None
    assert (breached.tier, breached.escalations, breached.breaches) == (Tier.CITY, 2, 3)
    assert breached.audit[-1].action == "breached"
    # A clock that jumps gives the same case as one that ticks on time.
    assert escalator.due(case, at(2700)).case == breached


def test_an_acknowledged_incident_stays_until_its_dispose_deadline(escalator: Escalator) -> None:
    case = act(escalator, opened(escalator), command(Action.ACKNOWLEDGE, 100))
    assert case.acknowledge_by is None
    assert escalator.due(case, at(14399)).case is None
    moved = escalator.due(case, at(14400)).case
    assert moved is not None
    assert moved.tier is Tier.COUNTY
    assert "dispose deadline missed" in (moved.audit[-1].reason or "")


def test_a_level_i_incident_starts_at_the_city_seen_by_every_tier(escalator: Escalator) -> None:
    effects = escalator.on_incident(None, incident("I"), T0)
    case = effects.case
    assert case is not None
    assert (case.tier, case.area) == (Tier.CITY, CITY)
    assert set(case.notified) == {COUNTY, TOWN}
    notices = {(o.tier, o.area, o.department) for o in effects.orders if o.kind is OrderKind.NOTICE}
    assert notices == {(Tier.TOWN, TOWN, "镇街水务所"), (Tier.COUNTY, COUNTY, "县区水务局")}


def test_ownership_follows_geography(escalator: Escalator) -> None:
    two_towns = opened(escalator, towns=(TOWN, TOWN2))
    assert (two_towns.tier, two_towns.area) == (Tier.COUNTY, COUNTY)
    two_counties = opened(escalator, towns=(TOWN, OTHER_COUNTY_TOWN))
    assert (two_counties.tier, two_counties.area) == (Tier.CITY, CITY)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: command(Action.ACKNOWLEDGE, 1, incident_id="inc-nope"), "unknown_incident"),
        (lambda: command(Action.RESOLVE, 1), "wrong_stage"),
        (lambda: command(Action.ACKNOWLEDGE, 1, Tier.COUNTY, COUNTY), "not_owner"),
        (lambda: command(Action.ACKNOWLEDGE, 1, Tier.TOWN, TOWN2), "not_owner"),
        (lambda: command(Action.REJECT, 1), "missing_field"),
        (lambda: command(Action.REASSIGN, 1, reason="不归我们管"), "missing_field"),
        (lambda: command(Action.TICK, 1), "malformed"),
    ],
)
def test_illegal_commands_are_rejected_with_their_reason_and_change_nothing(
    escalator: Escalator, make: Any, reason: str
) -> None:
    case = opened(escalator)
    item = make()
    effects = escalator.on_command(case if item.incident_id == case.incident_id else None, item, T0)
    assert effects.case is None
    assert effects.orders == []
    assert effects.rejection is not None
    assert effects.rejection.reason is RejectionReason(reason)
    assert effects.rejection.command_id == item.command_id


def test_the_closed_loop_with_a_rejection_a_reassignment_and_a_reopening(
    escalator: Escalator,
) -> None:
    case = act(
        escalator,
        opened(escalator),
        command(Action.REJECT, 60, reason="不在辖区"),
        command(Action.DISPATCH, 120),
        command(Action.REASSIGN, 180, reason="城管负责", department="镇街城管中队"),
        command(Action.ACKNOWLEDGE, 240),
        command(Action.START, 300),
        command(Action.RESOLVE, 3600),
        command(Action.VERIFY, 4000),
        command(Action.CLOSE, 4100),
    )
    assert case.stage is Stage.CLOSED
    assert case.department == "镇街城管中队"
    assert (case.dispose_by, case.acknowledge_by) == (None, None)
    assert [t.action for t in case.audit] == [
        "detected",
        "reject",
        "dispatch",
        "reassign",
        "acknowledge",
        "start",
        "resolve",
        "verify",
        "close",
    ]
    assert case.audit[1].reason == "不在辖区"
    assert escalator.next_deadline(case) is None
    reopened = act(escalator, case, command(Action.REOPEN, 5000, reason="又积水了"))
    assert reopened.stage is Stage.DISPATCHED
    assert reopened.acknowledge_by == at(5900)


def test_a_redelivered_command_changes_nothing_and_is_not_rejected(escalator: Escalator) -> None:
    ack = command(Action.ACKNOWLEDGE, 100)
    case = act(escalator, opened(escalator), ack)
    again = escalator.on_command(case, ack, at(101))
    assert (again.case, again.rejection, again.orders) == (None, None, [])


def test_a_condition_that_clears_by_itself_is_marked_and_verified_closed(
    escalator: Escalator,
) -> None:
    case = opened(escalator)
    cleared = escalator.on_incident(case, incident(status="cleared", revision=2), at(600)).case
    assert cleared is not None
    assert cleared.cleared
    assert cleared.stage is Stage.DISPATCHED  # still someone's to verify
    closed = act(escalator, cleared, command(Action.VERIFY, 700), command(Action.CLOSE, 800))
    assert closed.stage is Stage.CLOSED


def test_a_graver_severity_moves_the_case_up(escalator: Escalator) -> None:
    case = opened(escalator, "IV")
    effects = escalator.on_incident(case, incident("II", revision=2), at(60))
    moved = effects.case
    assert moved is not None
    assert (moved.severity.value, moved.tier, moved.area) == ("II", Tier.COUNTY, COUNTY)
    assert moved.acknowledge_by == at(660)
    assert [o.kind for o in effects.orders] == [OrderKind.ORDER, OrderKind.NOTICE]


def test_a_city_incident_merges_its_members(escalator: Escalator) -> None:
    member = opened(escalator)
    city = incident(
        towns=(TOWN, OTHER_COUNTY_TOWN),
        incident_id="inc-441600-x",
        members=("inc-441602-a", "inc-441625-b"),
    )
    effects = escalator.on_incident(None, city, at(30))
    assert effects.case is not None
    assert effects.case.tier is Tier.CITY
    merges = {c.incident_id: c for c in effects.commands}
    assert set(merges) == {"inc-441602-a", "inc-441625-b"}
    merged = act(escalator, member, merges["inc-441602-a"])
    assert (merged.stage, merged.merged_into) == (Stage.MERGED, "inc-441600-x")
    assert escalator.next_deadline(merged) is None
    assert escalator.due(merged, at(10**6)).case is None
