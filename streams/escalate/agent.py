"""The escalation agent: incidents and commands in, cases, orders and rejections out.

One agent reads ``incidents.updates`` and ``incident.commands`` together. Both are keyed by
incident id, so an incident's updates and commands arrive on the same partition, in order, at
the one worker that owns its case; only that worker escalates it. Cases live in the ``cases``
table (changelog-backed), with each case's last orders and, on the event clock, each
partition's clock, so a restarted or rebalanced worker carries on where the last one stopped.

:class:`~streams.escalate.cases.Escalator` decides. The agent feeds it one record at a time
(commands and incident updates are few) and, after each, escalates every case of the
partition whose deadline passed on the partition's clock. On the wall clock a timer sends a
``tick`` command to every partition this worker owns each ``CITYOPS_TICK_INTERVAL_S``, so
deadlines fire without traffic; on the event clock ticks come from the replay or drill.

When a partition is first seen after an assignment its cases are loaded from the table and
every case is published again with its last orders: an update lost with a killed worker is
re-sent (same bytes, same order ids), and a deadline whose escalation was already stored does
not escalate again.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import faust
import orjson
from faust.types import TP, EventT
from pydantic import ValidationError

from schemas import Incident
from schemas.cases import (
    Action,
    Case,
    CommandRejection,
    DispatchOrder,
    IncidentCommand,
    RejectionReason,
    Stage,
    Tier,
)
from streams.escalate.cases import CITYOPS, Effects, Escalator
from streams.failstop import fail_stop
from streams.indicators.agent import share_periodically
from streams.indicators.shares import Share, case_shares, stage_times
from streams.ingest.pipeline import Message
from streams.produce import partition_for, send_batched

if TYPE_CHECKING:
    from streams.app import CityOpsApp

__all__ = ["register_escalation"]

log = logging.getLogger(__name__)

_SEP = "|"


@dataclass
class _Partition:
    """What the agent holds for one partition it owns."""

    cases: dict[str, Case] = field(default_factory=dict)
    due: dict[str, datetime] = field(default_factory=dict)
    """Each case's next deadline."""
    merges: dict[str, str] = field(default_factory=dict)
    """Incidents merged before their first revision arrived → the city incident."""
    clock: datetime | None = None


def register_escalation(app: CityOpsApp) -> None:
    """Register the ``escalate`` agent, its table and the wall-clock ticker on ``app``."""
    settings = app.cityops_settings
    updates_topic = settings.topic("incidents_updates")
    commands_topic = settings.topic("incident_commands")
    topics = {
        "cases": settings.topic("incident_cases"),
        "orders": settings.topic("dispatch_orders"),
        "rejections": settings.topic("incident_rejections"),
        "commands": commands_topic,
    }
    table = app.Table(
        "cases",
        partitions=settings.topic_partitions,
        key_type=bytes,
        value_type=bytes,
        help="Escalation: every incident's case, its last orders and each partition's clock.",
    )
    owned: dict[int, _Partition] = {}
    partitions = list(range(settings.topic_partitions))
    event_clock = settings.clock == "event"
    ctx = _Context(app, table, event_clock)

    @app.agent(app.topic(updates_topic, commands_topic), name="escalate", concurrency=1)
    async def escalate(stream: faust.StreamT[bytes]) -> None:
        with fail_stop("escalation"):
            async for event in stream.events():
                message = event.message
                number = message.partition
                if number not in owned:
                    owned[number] = _load(table, number, partitions)
                    await _publish(app, topics, _republished(table, owned[number]))
                part = owned[number]
                out = _Out()
                if message.topic == updates_topic:
                    _on_incident(ctx, part, event, out)
                else:
                    _on_command(ctx, part, event, out)
                if part.clock is not None:
                    for incident_id in [i for i, d in part.due.items() if d <= part.clock]:
                        effects = app.escalator.due(part.cases[incident_id], part.clock)
                        _account(app, effects)
                        _keep(ctx, part, effects, out)
                    if event_clock:
                        table[_key("clock", str(number))] = part.clock.isoformat().encode()
                await _publish(app, topics, out)

    @app.timer(settings.tick_interval_s, name="tick_escalation")  # type: ignore[untyped-decorator]
    async def tick() -> None:
        if event_clock or not owned:
            return
        now = datetime.now(UTC)
        city = app.escalator.city
        ticks = [
            IncidentCommand(
                command_id=f"tick.{number}.{int(now.timestamp() * 1000)}",
                action=Action.TICK,
                incident_id="clock",
                actor=CITYOPS,
                actor_tier=Tier.CITY,
                actor_area=city,
                at=now,
            )
            for number in sorted(owned)
        ]
        for number, command in zip(sorted(owned), ticks, strict=True):
            body = command.model_dump_json().encode()
            await send_batched(app, commands_topic, [Message(b"tick", body)], partition=number)

    app.metrics.incidents_open.watch(lambda: _open_cases(app, owned))
    tz = ZoneInfo(settings.timezone)

    def shares() -> dict[str, dict[str, Share]]:
        now = datetime.now(UTC)
        escalator = app.escalator
        return {
            f"cases.{number}": case_shares(
                part.cases.values(),
                city=escalator.city,
                parent=escalator.parent,
                now=(part.clock or now) if event_clock else now,
                tz=tz,
            )
            for number, part in sorted(owned.items())
            if part.clock is not None or not event_clock
        }

    share_periodically(app, "share_cases", shares)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def drop_cases(sender: faust.App, revoked: set[TP], **_: object) -> None:
        for tp in revoked:
            if tp.topic in (updates_topic, commands_topic):
                owned.pop(tp.partition, None)


@dataclass
class _Out:
    """Records to publish after one input."""

    cases: list[Case] = field(default_factory=list)
    orders: list[DispatchOrder] = field(default_factory=list)
    commands: list[IncidentCommand] = field(default_factory=list)
    rejections: list[CommandRejection] = field(default_factory=list)


def _now(part: _Partition, at: datetime, event_clock: bool) -> datetime:
    """Advance the partition's clock for an input stamped ``at``; return the input's time.

    On the event clock an input happens at its own time, not at the partition's clock: the
    two input topics are read in no fixed order, and an incident must open at the same moment
    whether a later tick was read before it or not. Deadlines then run on the clock.
    """
    if event_clock:
        part.clock = at if part.clock is None else max(part.clock, at)
        return at
    part.clock = datetime.now(UTC)
    return part.clock


@dataclass(frozen=True)
class _Context:
    app: CityOpsApp
    table: Any
    event_clock: bool


def _on_incident(ctx: _Context, part: _Partition, event: EventT[bytes], out: _Out) -> None:
    app, event_clock = ctx.app, ctx.event_clock
    try:
        incident = Incident.model_validate_json(event.message.value or b"")
    except ValidationError as exc:
        # Detection's own output: a record that is not an incident is someone else's mistake.
        log.warning("incidents.updates: skipped a record that is not an incident: %s", exc)
        app.metrics.commands.labels(action="incident", outcome="malformed").inc()
        return
    now = _now(part, incident.updated_at, event_clock)
    case = part.cases.get(incident.incident_id)
    merged_into = part.merges.pop(incident.incident_id, None)
    effects = app.escalator.on_incident(case, incident, now, merged_into)
    _keep(ctx, part, effects, out)


def _on_command(ctx: _Context, part: _Partition, event: EventT[bytes], out: _Out) -> None:
    app, table, event_clock = ctx.app, ctx.table, ctx.event_clock
    raw = event.message.value or b""
    try:
        command = IncidentCommand.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "the record"
        now = part.clock or datetime.now(UTC)
        out.rejections.append(
            CommandRejection(
                reason=RejectionReason.MALFORMED,
                message=f"not a command: {where}: {first['msg']}"[:512],
                original=raw[:65_536].decode("utf-8", "replace"),
                at=now,
            )
        )
        app.metrics.commands.labels(action="unknown", outcome="malformed").inc()
        return
    now = _now(part, command.at, event_clock)
    if command.action is Action.TICK:
        return
    case = part.cases.get(command.incident_id)
    if command.action is Action.MERGE and case is None and command.merged_into:
        # The city incident came first: its member opens already merged.
        part.merges[command.incident_id] = command.merged_into
        table[_key("merge", command.incident_id)] = command.merged_into.encode()
        return
    effects = app.escalator.on_command(case, command, now)
    outcome = effects.rejection.reason.value if effects.rejection else "applied"
    app.metrics.commands.labels(action=command.action.value, outcome=outcome).inc()
    _keep(ctx, part, effects, out)


def _keep(ctx: _Context, part: _Partition, effects: Effects, out: _Out) -> None:
    """Store what ``effects`` changed, time the stages it ended and queue what it publishes."""
    table = ctx.table
    if effects.rejection is not None:
        out.rejections.append(effects.rejection)
    out.commands += effects.commands
    case = effects.case
    if case is None:
        return
    incident_id = case.incident_id
    _time_stages(ctx.app, part.cases.get(incident_id), case)
    part.cases[incident_id] = case
    deadline = Escalator.next_deadline(case)
    if deadline is None:
        part.due.pop(incident_id, None)
    else:
        part.due[incident_id] = deadline
    out.cases.append(case)
    out.orders += effects.orders
    table[_key("case", incident_id)] = case.model_dump_json().encode()
    if effects.orders:
        table[_key("orders", incident_id)] = orjson.dumps(
            [orjson.Fragment(order.model_dump_json()) for order in effects.orders]
        )


def _account(app: CityOpsApp, effects: Effects) -> None:
    for tier in effects.escalated:
        app.metrics.escalations.labels(tier=tier.value).inc()
    for tier, deadline in effects.missed:
        app.metrics.breaches.labels(tier=tier.value, deadline=deadline).inc()


async def _publish(app: CityOpsApp, topics: dict[str, str], out: _Out) -> None:
    await send_batched(
        app,
        topics["cases"],
        [Message(c.incident_id.encode(), c.model_dump_json().encode()) for c in out.cases],
    )
    await send_batched(
        app,
        topics["orders"],
        [Message(o.department.encode(), o.model_dump_json().encode()) for o in out.orders],
    )
    await send_batched(
        app,
        topics["commands"],
        [Message(c.incident_id.encode(), c.model_dump_json().encode()) for c in out.commands],
    )
    await send_batched(
        app,
        topics["rejections"],
        [
            Message((r.incident_id or "").encode(), r.model_dump_json().encode())
            for r in out.rejections
        ],
    )


def _load(table: Any, number: int, partitions: list[int]) -> _Partition:
    """Load the cases, pending merges and clock of partition ``number`` from the table."""
    part = _Partition()
    for key, value in list(table.items()):
        kind, name = key.decode().split(_SEP, 1)
        if kind == "clock":
            if int(name) == number:
                part.clock = datetime.fromisoformat(value.decode())
            continue
        if partition_for(name.encode(), partitions) != number:
            continue
        if kind == "case":
            case = Case.model_validate_json(value)
            part.cases[name] = case
            deadline = Escalator.next_deadline(case)
            if deadline is not None:
                part.due[name] = deadline
        elif kind == "merge":
            part.merges[name] = value.decode()
    log.info(
        "escalation state of partition %d loaded: %d cases, %d with a deadline, clock %s",
        number,
        len(part.cases),
        len(part.due),
        part.clock.isoformat() if part.clock else "not started",
    )
    return part


def _republished(table: Any, part: _Partition) -> _Out:
    """Every case of ``part`` and its last orders, to publish again after a load."""
    out = _Out(cases=[part.cases[key] for key in sorted(part.cases)])
    for incident_id in sorted(part.cases):
        stored = table.get(_key("orders", incident_id))
        if stored:
            out.orders += [DispatchOrder.model_validate(o) for o in orjson.loads(stored)]
    return out


def _key(kind: str, name: str) -> bytes:
    return f"{kind}{_SEP}{name}".encode()


def _time_stages(app: CityOpsApp, before: Case | None, after: Case) -> None:
    """Observe each closed-loop stage that ``after`` ended, by the tier that held the case.

    A stage ended when its time is new or changed (acknowledged again after a reassignment).
    """
    if after.stage is Stage.MERGED:
        return
    earlier = stage_times(before) if before is not None else {}
    for stage, seconds in stage_times(after).items():
        if earlier.get(stage) != seconds:
            app.metrics.loop_stage.labels(stage=stage, tier=after.tier.value).observe(seconds)


def _open_cases(app: CityOpsApp, owned: dict[int, _Partition]) -> Counter[tuple[str, ...]]:
    """Count the cases not closed on the partitions held, by tier, severity, county, category."""
    counts: Counter[tuple[str, ...]] = Counter()
    for part in list(owned.values()):
        for case in list(part.cases.values()):
            if case.stage in (Stage.CLOSED, Stage.MERGED):
                continue
            county = _county(app, case)
            counts[(case.tier.value, case.severity.value, county, case.category.value)] += 1
    return counts


def _county(app: CityOpsApp, case: Case) -> str:
    """Return the county label of a case: its only county, or ``multi`` across counties."""
    if case.counties:
        return case.counties[0] if len(case.counties) == 1 else "multi"
    if case.tier is Tier.TOWN:  # a case stored before it carried its geography
        return app.escalator.parent(case.area) or case.area
    return case.area if case.tier is Tier.COUNTY else "multi"
