"""The escalation decisions, without a broker: incidents and commands in, cases and orders out.

:class:`Escalator` is a pure function of the case it is given, the input and the clock: the
same inputs on the same clock give the same cases, orders and rejections, byte for byte. The
agent (``streams/escalate/agent.py``) keeps the cases in a table and feeds it.

A case is owned by a tier and an area: the policy's first tier for its severity, or higher when
its geography needs it (several towns → their county, several counties → the city). Each tier
has a deadline to acknowledge and a deadline to resolve, counted from when it received the
case. A missed deadline climbs one tier *at the deadline's own instant* (so a late clock tick
gives the same result as a punctual one): a new order for the department above, its deadlines
restarted, the lower tier notified. At the city a missed deadline is recorded as a breach.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from schemas import Incident, IncidentStatus
from schemas.cases import (
    Action,
    Case,
    CommandRejection,
    DispatchOrder,
    IncidentCommand,
    OrderKind,
    RejectionReason,
    Stage,
    Tier,
    Transition,
)
from streams.escalate.policy import Policy

__all__ = ["CITYOPS", "Effects", "Escalator"]

CITYOPS = "cityops"
"""The actor of everything cityops does by itself."""

_OPEN = (Stage.DISPATCHED, Stage.REJECTED, Stage.ACKNOWLEDGED, Stage.HANDLING)
_ALLOWED: dict[Action, tuple[Stage, ...]] = {
    Action.ACKNOWLEDGE: (Stage.DISPATCHED,),
    Action.START: (Stage.ACKNOWLEDGED,),
    Action.RESOLVE: (Stage.ACKNOWLEDGED, Stage.HANDLING),
    Action.VERIFY: (Stage.RESOLVED,),
    Action.CLOSE: (Stage.VERIFIED,),
    Action.REJECT: (Stage.DISPATCHED,),
    Action.DISPATCH: (Stage.REJECTED,),
    Action.REASSIGN: (Stage.DISPATCHED, Stage.REJECTED, Stage.ACKNOWLEDGED, Stage.HANDLING),
    Action.REOPEN: (Stage.RESOLVED, Stage.VERIFIED, Stage.CLOSED),
}
_NEXT = {
    Action.ACKNOWLEDGE: Stage.ACKNOWLEDGED,
    Action.START: Stage.HANDLING,
    Action.RESOLVE: Stage.RESOLVED,
    Action.VERIFY: Stage.VERIFIED,
    Action.CLOSE: Stage.CLOSED,
    Action.REJECT: Stage.REJECTED,
    Action.DISPATCH: Stage.DISPATCHED,
    Action.REASSIGN: Stage.DISPATCHED,
    Action.REOPEN: Stage.DISPATCHED,
}
_NEEDS_REASON = (Action.REJECT, Action.REASSIGN, Action.REOPEN)


@dataclass
class Effects:
    """What one input did: the case to store and publish, orders, commands, a rejection."""

    case: Case | None = None
    """The case after the input, when it changed."""
    orders: list[DispatchOrder] = field(default_factory=list)
    commands: list[IncidentCommand] = field(default_factory=list)
    """Commands for other incidents (a city incident merging its members)."""
    rejection: CommandRejection | None = None
    missed: list[tuple[Tier, str]] = field(default_factory=list)
    """Deadlines missed: the tier that missed it, and ``acknowledge`` or ``dispose``."""
    escalated: list[Tier] = field(default_factory=list)
    """The tiers the case climbed to."""


class Escalator:
    """Decides who owns an incident, by when, and what a command or the clock changes.

    Parameters
    ----------
    policy
        The escalation policy in force.
    names
        Code → name of a geographic unit.
    parent
        Code → the code of the unit one level up (``None`` for the city).
    city
        The city's code.
    """

    def __init__(
        self,
        policy: Policy,
        *,
        names: Callable[[str], str],
        parent: Callable[[str], str | None],
        city: str,
    ) -> None:
        self.policy = policy
        self.names = names
        self.parent = parent
        self.city = city

    # --- incidents ----------------------------------------------------------------------------

    def on_incident(
        self, case: Case | None, incident: Incident, now: datetime, merged_into: str | None = None
    ) -> Effects:
        """Open a case for a new incident, or bring its case up to date with a new revision.

        ``merged_into`` opens the case already merged (its merge command came first).
        """
        effects = Effects(commands=self._merges(incident, now))
        if case is None:
            if incident.status is IncidentStatus.MERGED:
                return effects  # a city incident absorbed before anyone owned it
            effects.case = self._open(incident, now, effects, merged_into)
            return effects
        if case.stage is Stage.MERGED:
            return effects
        if incident.status is IncidentStatus.MERGED:
            effects.case = self._merged(case, incident.merged_into or "", now, None)
            return effects
        effects.case = self._follow(case, incident, now, effects)
        return effects

    def _open(
        self, incident: Incident, now: datetime, effects: Effects, merged_into: str | None
    ) -> Case:
        severity = self.policy.severity[incident.severity]
        tier = max(severity.first_tier, _geographic_tier(incident), key=lambda t: t.rank)
        area = _area(incident, tier)
        notified = sorted(
            {code for other in severity.notify for code in _areas(incident, other)} - {area}
        )
        department = self.policy.department(incident.category, tier, incident.department)
        case = Case(
            incident_id=incident.incident_id,
            revision=1,
            stage=Stage.DISPATCHED,
            category=incident.category,
            severity=incident.severity,
            tier=tier,
            area=area,
            area_name=self.names(area),
            department=department,
            summary=incident.summary,
            counties=tuple(incident.counties),
            towns=tuple(incident.towns),
            notified=notified,
            dispatched_at=now,
            detected_at=incident.first_evidence.observed_at,
            cleared=incident.status is IncidentStatus.CLEARED,
            **self._deadlines(incident.severity, tier, now),
            audit=[
                Transition(
                    at=now,
                    action="detected",
                    actor=CITYOPS,
                    tier=tier,
                    area=area,
                    stage=Stage.DISPATCHED,
                    reason=_why(incident),
                )
            ],
        )
        if merged_into is not None:
            return self._merged(case, merged_into, now, None)
        effects.orders.append(self._order(case, OrderKind.ORDER, "detected"))
        for other in severity.notify:
            for code in _areas(incident, other):
                notice = self.policy.department(incident.category, other, incident.department)
                effects.orders.append(
                    self._order(
                        case,
                        OrderKind.NOTICE,
                        "notified at once",
                        department=notice,
                        area=code,
                        tier=other,
                    )
                )
        return case

    def _follow(
        self, case: Case, incident: Incident, now: datetime, effects: Effects
    ) -> Case | None:
        """Severity, geography, clearing and new evidence after closure."""
        changes: dict[str, Any] = {}
        audit: list[Transition] = []
        cleared = incident.status is IncidentStatus.CLEARED
        if cleared != case.cleared:
            changes["cleared"] = cleared
            action = "cleared" if cleared else "active"
            audit.append(_note(case, now, action))
        if incident.severity.rank > case.severity.rank:
            changes["severity"] = incident.severity
            change = f"{case.severity.value} → {incident.severity.value}"
            audit.append(_note(case, now, "severity", change))
        if incident.summary != case.summary:
            changes["summary"] = incident.summary
        geography = {"counties": tuple(incident.counties), "towns": tuple(incident.towns)}
        changes |= {
            name: value for name, value in geography.items() if value != getattr(case, name)
        }
        if not changes:
            return None
        case = _revised(case, audit, **changes)
        required = max(
            self.policy.severity[case.severity].first_tier,
            _geographic_tier(incident),
            key=lambda t: t.rank,
        )
        if required.rank > case.tier.rank:
            why = f"{case.severity.value}, {len(incident.towns)} towns: owned by {required.value}"
            case = self._move(case, required, _area(incident, required), now, why)
            effects.orders += self._handover(case)
        elif case.stage is Stage.CLOSED and not cleared:
            why = "new evidence after closure"
            case = self._dispatch(case, case.department, now)
            case = _revised(case, [_note(case, now, Action.REOPEN.value, why)])
            effects.orders.append(self._order(case, OrderKind.ORDER, why))
        return case

    def _merges(self, incident: Incident, now: datetime) -> list[IncidentCommand]:
        if not incident.members or incident.status is IncidentStatus.MERGED:
            return []
        return [
            IncidentCommand(
                command_id=f"merge.{member}.{incident.incident_id}"[:128],
                action=Action.MERGE,
                incident_id=member,
                actor=CITYOPS,
                actor_tier=Tier.CITY,
                actor_area=incident.city,
                merged_into=incident.incident_id,
                at=now,
            )
            for member in incident.members
        ]

    # --- commands -----------------------------------------------------------------------------

    def on_command(self, case: Case | None, command: IncidentCommand, now: datetime) -> Effects:
        """Apply a person's command, or say why not (the case is then unchanged)."""
        if case is not None and any(e.command_id == command.command_id for e in case.audit):
            return Effects()  # seen before: redelivered after a restart
        problem = _problem(case, command)
        if problem is not None:
            reason, message = problem
            return Effects(
                rejection=CommandRejection(
                    reason=reason,
                    message=message,
                    command_id=command.command_id,
                    incident_id=command.incident_id,
                    original=command.model_dump_json(),
                    at=now,
                )
            )
        assert case is not None  # noqa: S101 - _problem found none
        if command.action is Action.MERGE:
            if case.stage is Stage.MERGED:
                return Effects()
            return Effects(case=self._merged(case, command.merged_into or "", now, command))
        return self._apply(case, command, now)

    def _apply(self, case: Case, command: IncidentCommand, now: datetime) -> Effects:
        action = command.action
        effects = Effects()
        changes: dict[str, Any] = {"stage": _NEXT[action]}
        if action is Action.ACKNOWLEDGE:
            changes |= {"acknowledged_at": now, "acknowledge_by": None}
        elif action is Action.RESOLVE:
            changes |= {"resolved_at": now, "dispose_by": None}
        elif action is Action.CLOSE:
            changes["closed_at"] = now
        elif action in (Action.DISPATCH, Action.REASSIGN, Action.REOPEN):
            department = command.department or self.policy.department(
                case.category, case.tier, case.department
            )
            restart = self._deadlines(case.severity, case.tier, now)
            if action is not Action.REOPEN:
                restart["dispose_by"] = case.dispose_by  # the time to resolve keeps running
            changes |= {
                **restart,
                "department": department,
                "dispatched_at": now,
                "acknowledged_at": None,
                "resolved_at": None,
                "closed_at": None,
            }
        entry = Transition(
            at=now,
            action=action.value,
            actor=command.actor,
            tier=command.actor_tier,
            area=command.actor_area,
            stage=changes["stage"],
            reason=command.reason,
            command_id=command.command_id,
        )
        effects.case = _revised(case, [entry], **changes)
        if action in (Action.DISPATCH, Action.REASSIGN, Action.REOPEN):
            effects.orders.append(
                self._order(effects.case, OrderKind.ORDER, command.reason or action.value)
            )
        return effects

    # --- the clock ----------------------------------------------------------------------------

    @staticmethod
    def next_deadline(case: Case) -> datetime | None:
        """Return the earliest deadline still running, ``None`` when nothing is due."""
        if case.stage not in _OPEN:
            return None
        running = [case.dispose_by]
        if case.stage in (Stage.DISPATCHED, Stage.REJECTED):
            running.append(case.acknowledge_by)
        due = [deadline for deadline in running if deadline is not None]
        return min(due) if due else None

    def due(self, case: Case, now: datetime) -> Effects:
        """Escalate ``case`` for every deadline that passed by ``now``, each at its instant."""
        effects = Effects()
        while (deadline := self.next_deadline(case)) is not None and deadline <= now:
            waiting = case.stage in (Stage.DISPATCHED, Stage.REJECTED)
            missed = "acknowledge" if waiting and deadline == case.acknowledge_by else "dispose"
            reason = f"{missed} deadline missed at {case.tier.value} {case.area_name}"
            effects.missed.append((case.tier, missed))
            counted = f"{missed}_breaches"
            missed_one = {"breaches": case.breaches + 1, counted: getattr(case, counted) + 1}
            up = case.tier.up()
            if up is None:  # nowhere to climb: record the breach, stop that clock
                stopped: dict[str, Any] = {"acknowledge_by": None}
                if missed == "dispose":
                    stopped["dispose_by"] = None
                entry = _note(case, deadline, "breached", reason)
                case = _revised(case, [entry], **missed_one, **stopped)
            else:
                case = self._move(
                    case,
                    up,
                    self.parent(case.area) or case.area,
                    deadline,
                    reason,
                    **missed_one,
                    escalations=case.escalations + 1,
                )
                effects.orders += self._handover(case)
                effects.escalated.append(up)
            effects.case = case
        return effects

    # --- building blocks ----------------------------------------------------------------------

    def _move(
        self, case: Case, tier: Tier, area: str, at: datetime, reason: str, **changes: Any
    ) -> Case:
        """Hand ``case`` to ``tier`` (its area ``area``) at ``at``, the lower tier notified."""
        notified = tuple(sorted((set(case.notified) | {case.area}) - {area}))
        case = case.model_copy(
            update={"tier": tier, "area": area, "area_name": self.names(area), "notified": notified}
        )
        department = self.policy.department(case.category, tier, case.department)
        case = self._dispatch(case, department, at)
        return _revised(case, [_note(case, at, "escalated", reason)], **changes)

    def _dispatch(self, case: Case, department: str, at: datetime) -> Case:
        return case.model_copy(
            update={
                "stage": Stage.DISPATCHED,
                "department": department,
                "dispatched_at": at,
                "acknowledged_at": None,
                "resolved_at": None,
                "closed_at": None,
                **self._deadlines(case.severity, case.tier, at),
            }
        )

    def _handover(self, case: Case) -> list[DispatchOrder]:
        """Return the order for the new owner and a notice for the tier it left."""
        entry = case.audit[-1]
        orders = [self._order(case, OrderKind.ORDER, entry.reason or "escalated")]
        previous = next((e for e in reversed(case.audit[:-1]) if e.tier is not case.tier), None)
        if previous is not None:
            orders.append(
                self._order(
                    case,
                    OrderKind.NOTICE,
                    f"escalated to {case.tier.value} {case.area_name}",
                    department=self.policy.department(
                        case.category, previous.tier, case.department
                    ),
                    area=previous.area,
                    tier=previous.tier,
                )
            )
        return orders

    def _merged(
        self, case: Case, merged_into: str, now: datetime, command: IncidentCommand | None
    ) -> Case:
        entry = Transition(
            at=now,
            action=Action.MERGE.value,
            actor=command.actor if command else CITYOPS,
            tier=Tier.CITY,
            area=command.actor_area if command else case.area,
            stage=Stage.MERGED,
            reason=f"part of {merged_into}",
            command_id=command.command_id if command else None,
        )
        return _revised(
            case,
            [entry],
            stage=Stage.MERGED,
            merged_into=merged_into,
            acknowledge_by=None,
            dispose_by=None,
        )

    def _deadlines(self, severity: Any, tier: Tier, at: datetime) -> dict[str, datetime | None]:
        limits = self.policy.deadlines(severity, tier)
        return {
            "acknowledge_by": at + timedelta(seconds=limits.acknowledge_s),
            "dispose_by": at + timedelta(seconds=limits.dispose_s),
        }

    def _order(
        self,
        case: Case,
        kind: OrderKind,
        reason: str,
        *,
        department: str | None = None,
        area: str | None = None,
        tier: Tier | None = None,
    ) -> DispatchOrder:
        area = area or case.area
        department = department or case.department
        return DispatchOrder(
            order_id=f"{case.incident_id}.{case.revision}.{kind.value}.{area}"[:128],
            kind=kind,
            incident_id=case.incident_id,
            department=department,
            tier=tier or case.tier,
            area=area,
            place=self.place(area),
            category=case.category,
            severity=case.severity,
            summary=case.summary,
            reason=reason[:512],
            dispatched_at=case.dispatched_at,
            acknowledge_by=case.acknowledge_by if kind is OrderKind.ORDER else None,
            dispose_by=case.dispose_by if kind is OrderKind.ORDER else None,
        )

    def place(self, area: str) -> str:
        """Names from the city down to ``area``: ``河源市 源城区 源西街道``."""
        codes: list[str] = []
        code: str | None = area
        while code is not None:
            codes.append(code)
            code = self.parent(code)
        return " ".join(self.names(code) for code in reversed(codes))[:128]


def _problem(case: Case | None, command: IncidentCommand) -> tuple[RejectionReason, str] | None:
    """Return why ``command`` cannot apply to ``case``, or ``None``."""
    action = command.action
    if case is None:
        return RejectionReason.UNKNOWN_INCIDENT, "no such incident"
    if action is Action.MERGE:
        allowed = command.actor_tier is Tier.CITY and command.merged_into is not None
        return None if allowed else (RejectionReason.NOT_OWNER, "only the city merges incidents")
    owner = f"{case.tier.value} {case.area} ({case.area_name})"
    stages = _ALLOWED.get(action, ())
    if action is Action.VERIFY and case.cleared:
        stages = (*stages, *_OPEN)  # cleared by itself: the owner may verify and close it
    checks = (
        (
            action is Action.TICK,
            RejectionReason.MALFORMED,
            "a tick is for the clock, not for an incident",
        ),
        (
            (command.actor_tier, command.actor_area) != (case.tier, case.area),
            RejectionReason.NOT_OWNER,
            f"owned by {owner}, not {command.actor_tier.value} {command.actor_area}",
        ),
        (
            case.stage not in stages,
            RejectionReason.WRONG_STAGE,
            f"cannot {action.value} a case that is {case.stage.value}",
        ),
        (
            action in _NEEDS_REASON and not command.reason,
            RejectionReason.MISSING_FIELD,
            f"{action.value} needs a reason",
        ),
        (
            action is Action.REASSIGN and not command.department,
            RejectionReason.MISSING_FIELD,
            "reassign needs a department",
        ),
    )
    return next(((reason, message) for failed, reason, message in checks if failed), None)


def _geographic_tier(incident: Incident) -> Tier:
    if len(incident.counties) > 1:
        return Tier.CITY
    if len(incident.towns) > 1:
        return Tier.COUNTY
    return Tier.TOWN


def _areas(incident: Incident, tier: Tier) -> list[str]:
    """Every area of ``tier`` the incident touches."""
    if tier is Tier.TOWN:
        return list(incident.towns)
    if tier is Tier.COUNTY:
        return list(incident.counties)
    return [incident.city]


def _area(incident: Incident, tier: Tier) -> str:
    """Return the one area of ``tier`` that contains the whole incident."""
    return _areas(incident, tier)[0]


def _why(incident: Incident) -> str:
    return f"{incident.summary} ({incident.severity.value})"[:512]


def _note(case: Case, at: datetime, action: str, reason: str | None = None) -> Transition:
    """Return the audit entry of what cityops did to ``case`` (at its tier, area, stage)."""
    return Transition(
        at=at,
        action=action,
        actor=CITYOPS,
        tier=case.tier,
        area=case.area,
        stage=case.stage,
        reason=reason,
    )


def _revised(case: Case, audit: Iterable[Transition], **changes: Any) -> Case:
    """``case`` with ``changes``, the next revision and ``audit`` appended (last 1024 kept)."""
    trail = [*case.audit, *audit][-1024:]
    return case.model_copy(update={**changes, "revision": case.revision + 1, "audit": trail})
