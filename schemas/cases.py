"""Cases: an incident's command lifecycle, from dispatch to closure, across the tiers.

Detection says *what* is happening (:class:`~schemas.incidents.Incident`); escalation says *who*
owns it and by when. Each incident has one case on ``incident.cases``, keyed by incident id, in
full after every change, with the audit trail of every transition. People act on it with
:class:`IncidentCommand` records on ``incident.commands``; a command that cannot apply goes to
``incident.rejections`` as a :class:`CommandRejection`. Departments receive
:class:`DispatchOrder` records on ``dispatch.orders``, keyed by department.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import Field, StringConstraints, model_validator

from schemas.common import Contract, Identifier, Timestamp
from schemas.incidents import Category, Severity

__all__ = [
    "CASE_VERSION",
    "Action",
    "Case",
    "CommandRejection",
    "DispatchOrder",
    "IncidentCommand",
    "OrderKind",
    "RejectionReason",
    "Stage",
    "Tier",
    "Transition",
]

CASE_VERSION: Final = 1

_Code = Annotated[str, StringConstraints(pattern=r"^[0-9]{4,15}$")]
_Name = Annotated[str, StringConstraints(min_length=1, max_length=128)]
_Reason = Annotated[str, StringConstraints(min_length=1, max_length=512)]


class Tier(StrEnum):
    """The command tiers, lowest first: 镇街, 县区, 市."""

    TOWN = "town"
    COUNTY = "county"
    CITY = "city"

    @property
    def rank(self) -> int:
        """0 for the town up to 2 for the city."""
        return _TIERS.index(self)

    def up(self) -> Tier | None:
        """Return the tier above, ``None`` above the city."""
        return _TIERS[self.rank + 1] if self.rank + 1 < len(_TIERS) else None


_TIERS = (Tier.TOWN, Tier.COUNTY, Tier.CITY)


class Stage(StrEnum):
    """Where a case is in the closed loop (闭环)."""

    DISPATCHED = "dispatched"
    """Ordered to a department at the owning tier; waiting for it to acknowledge (签收)."""
    REJECTED = "rejected"
    """The department sent it back (退单); the owning tier must dispatch it again."""
    ACKNOWLEDGED = "acknowledged"
    """The department took it (签收)."""
    HANDLING = "handling"
    """The department is working on it (处置中)."""
    RESOLVED = "resolved"
    """The department reports it done (办结); the owning tier verifies."""
    VERIFIED = "verified"
    """The owning tier checked the result on the ground (核查)."""
    CLOSED = "closed"
    """Closed (结案)."""
    MERGED = "merged"
    """Part of a city incident across a county line, which carries the case from now on."""


class Action(StrEnum):
    """What a command asks for."""

    ACKNOWLEDGE = "acknowledge"
    """签收: dispatched → acknowledged."""
    START = "start"
    """开始处置: acknowledged → handling."""
    RESOLVE = "resolve"
    """办结: acknowledged or handling → resolved."""
    VERIFY = "verify"
    """核查: resolved → verified; also from any open stage once the condition cleared by
    itself."""
    CLOSE = "close"
    """结案: verified → closed."""
    REJECT = "reject"
    """退单 (reason required): dispatched → rejected."""
    DISPATCH = "dispatch"
    """再派: rejected → dispatched, to ``department`` or the routed one."""
    REASSIGN = "reassign"
    """改派 (reason and department required): to another department at the same tier."""
    REOPEN = "reopen"
    """重新打开 (reason required): resolved, verified or closed → dispatched again."""
    MERGE = "merge"
    """Issued by cityops itself: the incident became part of ``merged_into``."""
    TICK = "tick"
    """The clock: deadlines due by ``at`` are checked. Sent by cityops every second on the wall
    clock, and by replays and drills on theirs."""


class IncidentCommand(Contract):
    """A person (or cityops) acting on a case. On ``incident.commands``, keyed by incident id."""

    schema_version: Literal[1] = CASE_VERSION
    command_id: Identifier
    """Unique per command; a command seen again is ignored."""
    action: Action
    incident_id: Identifier
    actor: _Name
    """Who acts: a person's or a system's id."""
    actor_tier: Tier
    """The tier the actor acts for."""
    actor_area: _Code
    """The town, county or city code the actor acts for."""
    reason: _Reason | None = None
    """Why; required to reject, reassign and reopen."""
    department: _Name | None = None
    """The department to reassign or dispatch to."""
    merged_into: Identifier | None = None
    """For ``merge``: the city incident it became part of."""
    at: Timestamp
    """When the actor acted."""


class RejectionReason(StrEnum):
    """Why a command was not applied."""

    MALFORMED = "malformed"
    """Not JSON, or not a valid command."""
    UNKNOWN_INCIDENT = "unknown_incident"
    """No case has this incident id."""
    WRONG_STAGE = "wrong_stage"
    """The action does not apply at the case's stage."""
    NOT_OWNER = "not_owner"
    """The actor's tier and area do not own the case."""
    MISSING_FIELD = "missing_field"
    """A reason or department the action needs is missing."""


class CommandRejection(Contract):
    """A command that changed nothing, and why. On ``incident.rejections``."""

    schema_version: Literal[1] = CASE_VERSION
    reason: RejectionReason
    message: _Reason
    """For a person: what was wrong, with the case's stage and owner where they matter."""
    command_id: Identifier | None = None
    incident_id: Identifier | None = None
    original: Annotated[str, StringConstraints(max_length=65_536)]
    """The command as received (UTF-8, invalid bytes replaced)."""
    at: Timestamp
    """The case's clock when it was rejected."""


class Transition(Contract):
    """One entry of a case's audit trail."""

    at: Timestamp
    action: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    """An :class:`Action`, or what cityops did: ``detected``, ``escalated``, ``breached``,
    ``cleared``, ``severity``."""
    actor: _Name
    tier: Tier
    area: _Code
    stage: Stage
    """The stage after it."""
    reason: _Reason | None = None
    command_id: Identifier | None = None
    """The command that did it (a command seen again is ignored)."""


class Case(Contract):
    """Who owns an incident, by when, and everything that happened to it.

    On ``incident.cases``, keyed by ``incident_id``, in full after every change.
    """

    schema_version: Literal[1] = CASE_VERSION
    incident_id: Identifier
    revision: int = Field(ge=1)
    """Counts the changes of this case."""
    stage: Stage
    category: Category
    severity: Severity
    tier: Tier
    """The owning tier."""
    area: _Code
    """The owning tier's area: a town, county or city code."""
    area_name: _Name
    department: _Name
    """The department it is dispatched to."""
    summary: Annotated[str, StringConstraints(min_length=1, max_length=512)]
    """The incident's latest one-line summary."""
    counties: Annotated[tuple[_Code, ...], Field(max_length=64)] = ()
    """Every county the incident's evidence came from, sorted (indicators count it in each)."""
    towns: Annotated[tuple[_Code, ...], Field(max_length=256)] = ()
    """Every town the incident's evidence came from, sorted."""
    notified: Annotated[tuple[_Code, ...], Field(max_length=16)] = ()
    """Other areas that see it: the upper tiers notified at once and the lower tiers it
    climbed from, sorted."""
    dispatched_at: Timestamp
    """When the current owner received it."""
    acknowledge_by: Timestamp | None
    """Deadline to acknowledge at the current tier, while dispatched or rejected."""
    dispose_by: Timestamp | None
    """Deadline to resolve at the current tier, until resolved."""
    detected_at: Timestamp
    """The incident's first evidence (发现)."""
    acknowledged_at: Timestamp | None = None
    resolved_at: Timestamp | None = None
    closed_at: Timestamp | None = None
    cleared: bool = False
    """The incident's condition cleared by itself; a verification still closes the case."""
    escalations: int = Field(default=0, ge=0)
    """How many times it climbed a tier on a missed deadline."""
    breaches: int = Field(default=0, ge=0)
    """How many deadlines were missed (at the city a missed deadline cannot climb further)."""
    acknowledge_breaches: int = Field(default=0, ge=0)
    """Of ``breaches``, the acknowledge deadlines missed (a case acknowledged on time has none)."""
    dispose_breaches: int = Field(default=0, ge=0)
    """Of ``breaches``, the dispose deadlines missed."""
    merged_into: Identifier | None = None
    """The city incident that carries this case, once ``stage`` is ``merged``."""
    audit: Annotated[list[Transition], Field(min_length=1, max_length=1024)]
    """Every transition, oldest first."""

    @model_validator(mode="after")
    def _merged_names_its_incident(self) -> Case:
        if (self.stage is Stage.MERGED) != (self.merged_into is not None):
            raise ValueError("merged_into is set exactly when stage is merged")
        return self


class OrderKind(StrEnum):
    """Whether a department must act or only sees it."""

    ORDER = "order"
    """Act on it within the deadlines."""
    NOTICE = "notice"
    """For information: an upper tier notified at once, or a lower tier after it climbed."""


class DispatchOrder(Contract):
    """What a department needs to act. On ``dispatch.orders``, keyed by department."""

    schema_version: Literal[1] = CASE_VERSION
    order_id: Identifier
    """Deterministic: incident id and the case revision that issued it."""
    kind: OrderKind
    incident_id: Identifier
    department: _Name
    tier: Tier
    area: _Code
    place: _Name
    """Names from the city down to the owning area, e.g. ``河源市 源城区 源西街道``."""
    category: Category
    severity: Severity
    summary: Annotated[str, StringConstraints(min_length=1, max_length=512)]
    reason: _Reason
    """Why this order: detected, escalated after a missed deadline, reassigned, …"""
    dispatched_at: Timestamp
    acknowledge_by: Timestamp | None
    dispose_by: Timestamp | None
