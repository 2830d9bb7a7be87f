"""Indicators on the real broker with two workers: the cases of one town are held by both, the
town and its neighbour are published by different workers, and the numbers add up.

Known answers (event clock, Heyuan's policy: a level III incident has 900 s to be acknowledged
at its town): three incidents in 上城街道, one acknowledged only after it climbed to the county,
so the town's on-time acknowledge rate is 2/3; one in 城东街道, closed; their county and the city
see four.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from schemas.cases import Action, Case, Tier
from schemas.indicators import Indicators, LoopStage
from streams.produce import partition_for
from tests.conftest import free_port
from tests.helpers import consume_until, metric, scrape, start_cli, stop, wait_for_topics
from tests.streams.escalate.scene import CITY, COUNTY, at, command, incident
from tests.streams.escalate.test_on_broker import World, holds

pytestmark = pytest.mark.integration

TOWN_A, TOWN_B = "441602001", "441602006"  # 上城街道 (partition 1 of 2), 城东街道 (partition 0)
A_IDS = ("inc-a1", "inc-a2", "inc-a3")  # partitions 1, 0, 1: town A's cases on both workers
B_ID = "inc-b2"  # partition 0


def held(port: int, topic: str) -> set[int]:
    """The partitions of ``topic`` a worker holds, from its consumer-lag gauge."""
    try:
        samples = scrape(port)
    except OSError:
        return set()
    return {
        int(dict(labels)["partition"])
        for (name, labels), _ in samples.items()
        if name == "cityops_consumer_lag" and dict(labels)["topic"] == topic
    }


def wait_for(check: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def latest(records: list[tuple[bytes, bytes]]) -> dict[str, Indicators]:
    snapshots: dict[str, Indicators] = {}
    for _, value in records:
        snapshot = Indicators.model_validate_json(value)
        held_ = snapshots.get(snapshot.area)
        if held_ is None or snapshot.at >= held_.at:
            snapshots[snapshot.area] = snapshot
    return snapshots


def settled(snapshots: dict[str, Indicators]) -> bool:
    """Every area we check has a snapshot taken at the end of the scenario with its numbers."""
    wanted = {TOWN_A: 3, TOWN_B: 1, COUNTY: 4, CITY: 4}
    return all(
        area in snapshots
        and snapshots[area].at == at(1200)
        and snapshots[area].incidents_today == count
        and snapshots[area].acknowledge_on_time.denominator == count
        for area, count in wanted.items()
    )


def test_indicators_add_up_across_two_workers(
    broker_env: dict[str, str], kafka_bootstrap: str, tmp_path: Path
) -> None:
    assert [partition_for(i.encode(), [0, 1]) for i in (*A_IDS, B_ID)] == [1, 0, 1, 0]
    assert [partition_for(t.encode(), [0, 1]) for t in (TOWN_A, TOWN_B)] == [1, 0]
    env = {**broker_env, "CITYOPS_CLOCK": "event", "CITYOPS_INDICATORS_INTERVAL_S": "1"}
    world = World(kafka_bootstrap, env)
    ports = [int(env["CITYOPS_WEB_PORT"]), free_port()]
    updates, parts = world.topic("incidents.updates"), world.topic("indicators.parts")
    logs = [tmp_path / f"worker-{n}.log" for n in (1, 2)]
    with logs[0].open("wb") as log1, logs[1].open("wb") as log2:
        workers = [
            start_cli(["worker"], {**env, "CITYOPS_WEB_PORT": str(port)}, log)
            for port, log in zip(ports, (log1, log2), strict=True)
        ]
        try:
            wait_for_topics(kafka_bootstrap, [world.topic("incident.commands"), parts])
            # Both in the group, each holding one partition of the cases and of the parts.
            wait_for(
                lambda: (
                    all(len(held(port, topic)) == 1 for port in ports for topic in (updates, parts))
                    and held(ports[0], updates) != held(ports[1], updates)
                    and held(ports[0], parts) != held(ports[1], parts)
                ),
                "the two workers to share the partitions",
            )
            opened = [
                incident("III", (town,), incident_id=incident_id).model_copy(
                    update={"updated_at": at(30)}
                )
                for incident_id, town in [(i, TOWN_A) for i in A_IDS] + [(B_ID, TOWN_B)]
            ]
            world.send_incidents(*opened)
            world.cases_until(lambda cases: {*A_IDS, B_ID} <= set(cases))
            a1, a2, a3 = A_IDS
            world.send(
                command(Action.ACKNOWLEDGE, 90, area=TOWN_A, incident_id=a1),
                command(Action.ACKNOWLEDGE, 150, area=TOWN_A, incident_id=a2),
                command(Action.ACKNOWLEDGE, 90, area=TOWN_B, incident_id=B_ID),
                command(Action.RESOLVE, 690, area=TOWN_B, incident_id=B_ID),
                command(Action.VERIFY, 750, area=TOWN_B, incident_id=B_ID),
                command(Action.CLOSE, 810, area=TOWN_B, incident_id=B_ID),
            )
            world.tick(940, a3)  # its town's deadline (30 s + 900 s) passed: the county owns it
            world.cases_until(holds(a3, lambda case: case.tier is Tier.COUNTY))
            world.send(command(Action.ACKNOWLEDGE, 960, Tier.COUNTY, COUNTY, incident_id=a3))
            cases: dict[str, Case] = world.cases_until(
                lambda cases: (
                    {a3, B_ID} <= set(cases)
                    and cases[a3].acknowledged_at is not None
                    and cases[B_ID].closed_at is not None
                )
            )
            world.tick(1200, a1, a2)  # both partitions' clocks to the end of the scenario
            records = consume_until(
                kafka_bootstrap,
                world.topic("screens.indicators"),
                lambda got: settled(latest(got)),
                timeout=120,
            )
            published = [
                sum(
                    metric(port, "cityops_indicator_snapshots_total", level=level)
                    for level in ("city", "county", "town")
                )
                for port in ports
            ]
            split = [held(port, parts) for port in ports]
        finally:
            codes = [stop(worker, signal.SIGINT) for worker in workers]
    assert codes == [0, 0], [log.read_text()[-3000:] for log in logs]
    assert cases[a3].acknowledge_breaches == 1
    snapshots = latest(records)
    assert settled(snapshots), {a: s.model_dump() for a, s in snapshots.items() if a in (TOWN_A,)}
    town_a, town_b, county, city = (snapshots[a] for a in (TOWN_A, TOWN_B, COUNTY, CITY))
    assert (town_a.acknowledge_on_time.numerator, town_a.acknowledge_on_time.denominator) == (2, 3)
    assert town_a.acknowledge_on_time.value == pytest.approx(2 / 3)
    assert (town_a.escalation.numerator, town_a.open_total) == (1, 3)
    assert town_a.mean_stage_s[LoopStage.DISCOVER] == 30  # first evidence T0, opened at 30 s
    assert town_a.mean_stage_s[LoopStage.RESPOND] == pytest.approx((60 + 120 + 30) / 3)
    assert (town_b.open_total, town_b.dispose_on_time.value) == (0, 1.0)
    assert town_b.mean_stage_s[LoopStage.FEEDBACK] == 120
    assert (county.acknowledge_on_time.numerator, county.open_total) == (3, 3)
    assert county.open_by_severity["III"] == 3
    assert city.model_dump(include={"incidents_today", "open_total", "acknowledge_on_time"}) == (
        county.model_dump(include={"incidents_today", "open_total", "acknowledge_on_time"})
    )
    # Every town of the city has a snapshot, from whichever worker holds it.
    assert sum(1 for s in snapshots.values() if s.level == "town") == 101
    assert all(count > 0 for count in published), published
    assert split[0] != split[1]
