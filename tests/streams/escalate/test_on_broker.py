"""Escalation in a real worker on the real broker, on the event clock: incidents climb on
schedule, acknowledged ones stay, level I starts at the city, illegal commands are rejected,
and a worker killed around a deadline escalates exactly once."""

from __future__ import annotations

import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from schemas import Incident
from schemas.cases import (
    Action,
    Case,
    CommandRejection,
    DispatchOrder,
    IncidentCommand,
    OrderKind,
    Stage,
    Tier,
)
from tests.helpers import consume_until, metric, produce, start_cli, stop, wait_for_topics
from tests.streams.escalate.scene import (
    CITY,
    COUNTY,
    FAST_POLICY,
    OTHER_COUNTY_TOWN,
    TOWN,
    TOWN2,
    at,
    command,
    incident,
)

pytestmark = pytest.mark.integration

Records = list[tuple[bytes, bytes]]


@pytest.fixture
def env(broker_env: dict[str, str]) -> dict[str, str]:
    return {**broker_env, "CITYOPS_CLOCK": "event"}


class World:
    """A worker's topics, read and written as a command centre would."""

    def __init__(self, bootstrap: str, env: dict[str, str]) -> None:
        self.bootstrap = bootstrap
        self.prefix = env["CITYOPS_TOPIC_PREFIX"]
        self.port = int(env["CITYOPS_WEB_PORT"])

    def topic(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def send_incidents(self, *incidents: Incident) -> None:
        records = [(i.incident_id.encode(), i.model_dump_json().encode()) for i in incidents]
        produce(self.bootstrap, self.topic("incidents.updates"), records)

    def send(self, *commands: IncidentCommand) -> None:
        records = [(c.incident_id.encode(), c.model_dump_json().encode()) for c in commands]
        produce(self.bootstrap, self.topic("incident.commands"), records)

    def tick(self, seconds: float, *incident_ids: str) -> None:
        """Move the clock of each incident's partition to ``T0 + seconds``."""
        ticks = [
            command(Action.TICK, seconds, Tier.CITY, CITY, incident_id=incident_id)
            for incident_id in incident_ids
        ]
        self.send(*ticks)

    def cases_until(self, done: Callable[[dict[str, Case]], bool]) -> dict[str, Case]:
        """The latest case of every incident, once ``done`` holds for them."""
        records = consume_until(
            self.bootstrap, self.topic("incident.cases"), lambda got: done(_latest(got))
        )
        latest = _latest(records)
        assert done(latest), {key: (c.tier, c.stage, c.revision) for key, c in latest.items()}
        return latest

    def all_cases(self) -> Records:
        return consume_until(self.bootstrap, self.topic("incident.cases"), bool, settle=2)

    def orders(self) -> list[DispatchOrder]:
        records = consume_until(self.bootstrap, self.topic("dispatch.orders"), bool, settle=2)
        return [DispatchOrder.model_validate_json(value) for _, value in records]

    def rejections(self, count: int) -> list[CommandRejection]:
        records = consume_until(
            self.bootstrap,
            self.topic("incident.rejections"),
            lambda got: len(got) >= count,
            settle=1,
        )
        return [CommandRejection.model_validate_json(value) for _, value in records]


def holds(incident_id: str, check: Callable[[Case], bool]) -> Callable[[dict[str, Case]], bool]:
    """Whether the incident has a case and ``check`` holds for its latest."""
    return lambda cases: incident_id in cases and check(cases[incident_id])


def _latest(records: Records) -> dict[str, Case]:
    latest: dict[str, Case] = {}
    for _, value in records:
        case = Case.model_validate_json(value)
        held = latest.get(case.incident_id)
        if held is None or case.revision >= held.revision:
            latest[case.incident_id] = case
    return latest


def test_incidents_are_owned_climb_on_schedule_and_illegal_commands_are_rejected(
    env: dict[str, str], kafka_bootstrap: str, tmp_path: Path
) -> None:
    world = World(kafka_bootstrap, env)
    climbs = incident("III", incident_id="inc-441602-climbs")
    answered = incident("III", (TOWN2,), incident_id="inc-441602-answered")
    grave = incident("I", incident_id="inc-441602-grave")
    two_towns = incident("III", (TOWN, TOWN2), incident_id="inc-441602-twotowns")
    ids = [i.incident_id for i in (climbs, answered, grave, two_towns)]
    # A flood across a county line: one member known before the city incident, one after.
    west = incident("III", incident_id="inc-441602-west")
    east = incident("III", (OTHER_COUNTY_TOWN,), incident_id="inc-441625-east")
    joined = incident(
        "III",
        (TOWN, OTHER_COUNTY_TOWN),
        incident_id="inc-441600-joined",
        members=(west.incident_id, east.incident_id),
    )
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = start_cli(["worker"], env, log)
        try:
            wait_for_topics(kafka_bootstrap, [world.topic("incident.commands")])
            world.send_incidents(climbs, answered, grave, two_towns)
            opened = world.cases_until(lambda cases: set(ids) <= set(cases))
            world.send(
                command(
                    Action.ACKNOWLEDGE, 100, Tier.TOWN, TOWN2, incident_id=answered.incident_id
                ),
                command(Action.ACKNOWLEDGE, 101, incident_id="inc-441602-nosuch"),
                command(Action.RESOLVE, 102, incident_id=climbs.incident_id),
                command(
                    Action.ACKNOWLEDGE, 103, Tier.COUNTY, COUNTY, incident_id=climbs.incident_id
                ),
                command(Action.REJECT, 104, Tier.COUNTY, COUNTY, incident_id=two_towns.incident_id),
            )
            produce(kafka_bootstrap, world.topic("incident.commands"), [(b"x", b"{not json")])
            rejections = world.rejections(5)
            world.send_incidents(west)
            world.cases_until(holds(west.incident_id, lambda case: case.tier is Tier.TOWN))
            world.send_incidents(joined)
            world.cases_until(holds(west.incident_id, lambda case: case.stage is Stage.MERGED))
            world.send_incidents(east)
            merged = world.cases_until(
                holds(east.incident_id, lambda case: case.stage is Stage.MERGED)
            )
            world.tick(899, *ids)
            before = world.cases_until(holds(answered.incident_id, lambda case: case.revision >= 2))
            world.tick(901, *ids)
            world.cases_until(holds(climbs.incident_id, lambda case: case.tier is Tier.COUNTY))
            world.tick(1801, *ids)
            final = world.cases_until(
                holds(climbs.incident_id, lambda case: case.tier is Tier.CITY)
            )
            orders = world.orders()
            escalated = {
                tier: metric(world.port, "cityops_escalations_total", tier=tier)
                for tier in ("county", "city")
            }
            breached = metric(
                world.port, "cityops_deadline_breaches_total", tier="city", deadline="acknowledge"
            )
        finally:
            code = stop(worker, signal.SIGINT)
    assert code == 0, log_path.read_text()[-3000:]

    # Owners at the start: the town, the city for level I, the county for two towns.
    assert {i: (c.tier, c.area) for i, c in opened.items()} == {
        climbs.incident_id: (Tier.TOWN, TOWN),
        answered.incident_id: (Tier.TOWN, TOWN2),
        grave.incident_id: (Tier.CITY, CITY),
        two_towns.incident_id: (Tier.COUNTY, COUNTY),
    }
    assert set(opened[grave.incident_id].notified) == {TOWN, COUNTY}
    # The unanswered one: still the town's at 899 s, the county's at 900 s, the city's at 1800 s.
    assert before[climbs.incident_id].tier is Tier.TOWN
    climbed = final[climbs.incident_id]
    assert (climbed.tier, climbed.escalations) == (Tier.CITY, 2)
    assert [e.at for e in climbed.audit if e.action == "escalated"] == [at(900), at(1800)]
    # dispatch.orders is keyed by department: order them by time, each order before its notice.
    mine = [o for o in orders if o.incident_id == climbs.incident_id]
    mine.sort(key=lambda o: (o.dispatched_at, o.kind is OrderKind.NOTICE))
    ordered = [(o.tier, o.kind) for o in mine]
    assert ordered == [
        (Tier.TOWN, OrderKind.ORDER),
        (Tier.COUNTY, OrderKind.ORDER),
        (Tier.TOWN, OrderKind.NOTICE),
        (Tier.CITY, OrderKind.ORDER),
        (Tier.COUNTY, OrderKind.NOTICE),
    ]
    # The acknowledged one stays with its town.
    kept = final[answered.incident_id]
    assert (kept.tier, kept.stage, kept.escalations) == (Tier.TOWN, Stage.ACKNOWLEDGED, 0)
    notices = {(o.tier, o.area) for o in orders if o.incident_id == grave.incident_id}
    assert {(Tier.TOWN, TOWN), (Tier.COUNTY, COUNTY)} <= notices
    # Illegal commands: each rejected with its reason, the cases unchanged by them.
    assert sorted(r.reason.value for r in rejections) == [
        "malformed",
        "missing_field",
        "not_owner",
        "unknown_incident",
        "wrong_stage",
    ]
    assert all(e.action != "resolve" for e in climbed.audit)
    assert final[two_towns.incident_id].stage is Stage.DISPATCHED
    # The metrics count it: to the county once (the unanswered one), to the city twice (it and
    # the two-town one); the level I incident missed its 300 s at the city, where it stays.
    assert escalated == {"county": 1.0, "city": 2.0}
    # Across the county line the city owns the one incident; its members are merged into it.
    assert (merged[joined.incident_id].tier, merged[joined.incident_id].area) == (Tier.CITY, CITY)
    assert {merged[m].merged_into for m in (west.incident_id, east.incident_id)} == {
        joined.incident_id
    }
    assert merged[east.incident_id].revision == 2  # opened already merged: no order for it
    assert not [o for o in orders if o.incident_id == east.incident_id]
    assert final[two_towns.incident_id].tier is Tier.CITY
    assert final[grave.incident_id].breaches >= 1
    assert breached >= 2  # level I at 300 s; the unanswered one at 2700 s is not reached


def test_a_worker_killed_around_a_deadline_escalates_exactly_once(
    env: dict[str, str], kafka_bootstrap: str, tmp_path: Path
) -> None:
    world = World(kafka_bootstrap, env)
    climbs = incident("III", incident_id="inc-441602-killed")
    log_path = tmp_path / "worker.log"
    with log_path.open("ab") as log:
        first = start_cli(["worker"], env, log)
        try:
            wait_for_topics(kafka_bootstrap, [world.topic("incident.commands")])
            world.send_incidents(climbs)
            world.cases_until(lambda cases: climbs.incident_id in cases)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
        world.tick(901, climbs.incident_id)  # the deadline passes while no worker runs
        second = start_cli(["worker"], env, log)
        try:
            world.cases_until(holds(climbs.incident_id, lambda case: case.tier is Tier.COUNTY))
        finally:
            second.send_signal(signal.SIGKILL)  # right after escalating, before committing
            second.wait()
        third = start_cli(["worker"], env, log)
        try:
            # Redelivered or not, the 901 s tick must not climb again; an acknowledgement after
            # it shows this worker has read that far.
            world.tick(1000, climbs.incident_id)
            world.send(
                command(
                    Action.ACKNOWLEDGE, 1000, Tier.COUNTY, COUNTY, incident_id="inc-441602-killed"
                )
            )
            world.cases_until(
                holds(climbs.incident_id, lambda case: case.stage is Stage.ACKNOWLEDGED)
            )
            cases = world.all_cases()
            orders = world.orders()
        finally:
            code = stop(third, signal.SIGINT)
    assert code == 0, log_path.read_text()[-3000:]
    latest = _latest(cases)[climbs.incident_id]
    assert (latest.tier, latest.escalations) == (Tier.COUNTY, 1)
    county_orders = {
        o.order_id for o in orders if o.tier is Tier.COUNTY and o.kind is OrderKind.ORDER
    }
    assert len(county_orders) == 1, county_orders
    by_revision: dict[int, set[bytes]] = {}
    for _, value in cases:
        by_revision.setdefault(Case.model_validate_json(value).revision, set()).add(value)
    assert all(len(v) == 1 for v in by_revision.values())  # republished with the same bytes


def test_on_the_wall_clock_deadlines_fire_without_traffic(
    broker_env: dict[str, str], kafka_bootstrap: str, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(FAST_POLICY, encoding="utf-8")
    env = {**broker_env, "CITYOPS_POLICY_FILE": str(policy)}
    world = World(kafka_bootstrap, env)
    now = datetime.now(UTC)
    live = incident("IV", incident_id="inc-441602-live").model_copy(update={"updated_at": now})
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = start_cli(["worker"], env, log)
        try:
            wait_for_topics(kafka_bootstrap, [world.topic("incident.commands")])
            world.send_incidents(live)
            final = world.cases_until(holds(live.incident_id, lambda c: c.tier is Tier.CITY))
        finally:
            code = stop(worker, signal.SIGINT)
    assert code == 0, log_path.read_text()[-3000:]
    case = final[live.incident_id]
    climbs = [e.at for e in case.audit if e.action == "escalated"]
    assert len(climbs) == 2
    # Each climb happens at the deadline it missed, two seconds after the tier received it.
    assert climbs[0] - case.audit[0].at == timedelta(seconds=2)
    assert climbs[1] - climbs[0] == timedelta(seconds=2)
