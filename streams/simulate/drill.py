"""Drills (情景模拟与总结评估): run a scenario from clean state and score the response.

``cityops drill SCENARIO`` does, against the configured broker (or the local one, started if
needed and stopped after):

1. fresh state: a new consumer group and topic prefix (``drill.<scenario>.<run>.``), an
   in-memory store, escalation on the **event clock**;
2. the scenario's devices registered and a worker started on that state;
3. the scenario's traffic sent at once, on a timeline that ends in the past (so ingest sees
   nothing from the future, and the clock is as fast as the worker);
4. once detection has applied it all and escalation has a case for every incident, the
   departments' scripted answers (the scenario's ``respond``) are sent as commands at their
   times, then a clock tick at the end of the scenario, so that every deadline up to then
   passes or is met;
5. the incidents and cases read back and scored against the scenario's expectations: detection
   delay, owners, escalations, deadline breaches and the four closed-loop stage times.

The evaluation is printed and, with ``--json``, written as JSON; the exit status is 0 when
every expectation held. The drill's topics are deleted at the end unless ``--keep``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from prometheus_client.parser import text_string_to_metric_families

import geo
from schemas import Incident, IncidentStatus, Severity
from schemas.cases import Action, Case, IncidentCommand, Stage
from streams.broker import LocalBroker
from streams.exceptions import StreamsError
from streams.indicators.shares import stage_times
from streams.ports import free_port, port_is_free
from streams.settings import ENV_PREFIX, Settings
from streams.simulate.records import Outgoing
from streams.simulate.scenario import Expectation, Scenario
from streams.simulate.send import Sender
from streams.topics import admin_client, aiokafka_config, ensure_topics

__all__ = ["DrillResult", "evaluate", "run_drill"]

_ACTOR = "drill"
_WAIT_S = 180.0
_QUIET_S = 3.0
_SLICE_S = 30


@dataclass
class DrillResult:
    """A drill's evaluation, as printed and written as JSON."""

    scenario: str
    title: str
    started_at: datetime
    passed: bool
    incidents: list[dict[str, Any]]
    expectations: list[dict[str, Any]]
    totals: dict[str, Any]
    worker_log: str = ""
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> bytes:
        """Return the evaluation as indented JSON."""
        document = {
            "scenario": self.scenario,
            "title": self.title,
            "started_at": self.started_at.isoformat(),
            "passed": self.passed,
            "expectations": self.expectations,
            "incidents": self.incidents,
            "totals": self.totals,
            "notes": self.notes,
        }
        return orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"

    def report(self) -> str:
        """Return the evaluation for a person at a terminal."""
        lines = [f"drill {self.scenario}: {self.title}", f"  timeline starts {self.started_at}"]
        for item in self.incidents:
            stages = ", ".join(
                f"{stage} {seconds:.0f}s" for stage, seconds in item["stages_s"].items()
            )
            lines.append(
                f"  incident {item['incident_id']}: {item['category']} {item['severity']}"
                f" in {','.join(item['towns'])}, detected {item['opened_after_s']:.0f}s after the"
                " start,"
                f" {item['first_tier']} → {item['tier']}, {item['escalations']} escalations,"
                f" {item['breaches']} breaches, {item['stage']}" + (f"; {stages}" if stages else "")
            )
        for item in self.expectations:
            mark = "ok  " if item["met"] else "FAIL"
            why = "" if item["met"] else f" — {'; '.join(item['problems'])}"
            lines.append(f"  {mark} expect {item['describe']}{why}")
        totals = self.totals
        lines.append(
            f"  totals: {totals['incidents']} incidents, {totals['escalations']} escalations,"
            f" {totals['breaches']} deadline breaches"
        )
        lines.extend(f"  note: {note}" for note in self.notes)
        lines.append("PASSED" if self.passed else "FAILED")
        return "\n".join(lines)


def run_drill(
    settings: Settings, scenario: Scenario, *, keep: bool = False, say: Callable[[str], None]
) -> DrillResult:
    """Run ``scenario`` from clean state (see the module docstring) and evaluate it."""
    broker = LocalBroker(settings) if settings.embedded_broker else None
    started_broker = broker is not None and not broker.status().running
    if broker is not None:
        say(broker.start().describe())
    run = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="cityops-drill-") as tmp:
        drill = _drill_settings(settings, scenario, run, Path(tmp))
        try:
            return asyncio.run(_drill(drill, scenario, Path(tmp), say))
        finally:
            if not keep:
                _delete_topics(drill)
            if broker is not None and started_broker:
                broker.stop()


def _drill_settings(settings: Settings, scenario: Scenario, run: str, tmp: Path) -> Settings:
    updates: dict[str, Any] = {
        "app_id": f"cityops-drill-{run}",
        "topic_prefix": f"{settings.topic_prefix}drill.{scenario.id}.{run}.",
        "clock": "event",
        "store": "memory",
        "data_dir": tmp / "data",
        "web_port": _free_port(settings.web_port),
    }
    if settings.embedded_broker:
        updates["broker_url"] = f"kafka://127.0.0.1:{settings.local_broker_port}"
    return settings.model_copy(update=updates)


def _free_port(preferred: int) -> int:
    return preferred if port_is_free(preferred, "127.0.0.1") else free_port()


async def _drill(
    settings: Settings, scenario: Scenario, tmp: Path, say: Callable[[str], None]
) -> DrillResult:
    await asyncio.to_thread(ensure_topics, settings)
    hierarchy = await asyncio.to_thread(geo.load_heyuan)
    # The whole timeline in the past: ingest refuses events from the future.
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = now - timedelta(seconds=scenario.duration_s + 900)
    traffic = scenario.records(start)
    async with Sender(settings) as sender:
        await sender.send(scenario.registrations(hierarchy, start - timedelta(seconds=60)))
    log_path = tmp / "worker.log"
    with log_path.open("wb") as log, _worker(settings, log) as worker:
        say(f"drill {scenario.id}: worker started, sending {len(traffic)} records")
        watch = _Watch(settings)
        await watch.start()
        try:
            await _send_in_slices(settings, traffic, start, worker, log_path)
            await watch.settle(watch.cases_cover_incidents)
            commands = _responses(scenario, watch, start)
            ticks = _ticks(watch, start + timedelta(seconds=scenario.duration_s))
            say(f"drill {scenario.id}: {len(commands)} answers, then the clock to the end")
            async with Sender(settings) as sender:
                await sender.send(commands)
                await sender.send(ticks)
            await _until(
                lambda: (
                    _counted(settings.web_port, "cityops_incident_commands_total") >= len(commands)
                ),
                "escalation to apply the answers",
                worker,
                log_path,
            )
            watch.touch()
            await watch.settle(lambda: True)
        finally:
            await watch.stop()
    result = evaluate(scenario, start, watch.incidents(), watch.cases)
    result.worker_log = log_path.read_text(errors="replace")[-4000:]
    return result


async def _send_in_slices(
    settings: Settings,
    traffic: list[Outgoing],
    start: datetime,
    worker: subprocess.Popen[bytes],
    log_path: Path,
) -> None:
    """Send the traffic in slices of event time, each once detection applied the one before.

    The worker reads its input partitions in no fixed order: sent at once, one device's hour
    could be read before another's first minute, making the rest late and the outcome depend
    on the interleaving. In slices, events read together are never further apart than a slice,
    well inside the allowed lateness.
    """
    pieces: dict[int, list[Outgoing]] = {}
    for record in traffic:
        number = int((record.at - start).total_seconds() // _SLICE_S)
        pieces.setdefault(number, []).append(record)
    sent = 0
    async with Sender(settings) as sender:
        for _, piece in sorted(pieces.items()):
            await sender.send(piece)
            await sender.flush()
            sent += len(piece)
            target = sent
            await _until(
                lambda target=target: (  # type: ignore[misc]
                    _counted(settings.web_port, "cityops_detection_events_total") >= target
                ),
                "detection to apply the scenario's events",
                worker,
                log_path,
            )


@contextlib.contextmanager
def _worker(settings: Settings, log: Any) -> Iterator[subprocess.Popen[bytes]]:
    # Exactly the drill's settings (its group, prefix, clock, store, port and everything the
    # operator set), not whatever CITYOPS_* this process inherited.
    env = {name: value for name, value in os.environ.items() if not name.startswith(ENV_PREFIX)}
    env.update(settings.environment())
    env[f"{ENV_PREFIX}LOG_LEVEL"] = "warning"
    worker = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        yield worker
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


async def _until(
    check: Callable[[], bool], what: str, worker: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + _WAIT_S
    while not await asyncio.to_thread(check):
        if worker.poll() is not None:
            tail = await asyncio.to_thread(log.read_text, errors="replace")
            raise StreamsError(
                f"the drill's worker exited ({worker.returncode}) before {what}:\n{tail[-2000:]}"
            )
        if time.monotonic() > deadline:
            raise StreamsError(f"timed out after {_WAIT_S:.0f} s waiting for {what}")
        await asyncio.sleep(0.3)


def _counted(port: int, name: str) -> float:
    """Return the sum of a counter of the worker's (0 before it serves ``/metrics``)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return 0.0
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )


class _Watch:
    """Follows ``incidents.updates`` and ``incident.cases``, keeping the latest of each id."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._updates = settings.topic("incidents_updates")
        self._topics = [self._updates, settings.topic("incident_cases")]
        self._latest: dict[str, Incident] = {}
        self.cases: dict[str, Case] = {}
        self._last_record = time.monotonic()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            *self._topics,
            **aiokafka_config(self._settings),
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        self._consumer = consumer
        self._task = asyncio.create_task(self._follow(consumer))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        async for message in consumer:
            self._last_record = time.monotonic()
            if message.topic == self._updates:
                incident = Incident.model_validate_json(message.value)
                held = self._latest.get(incident.incident_id)
                if held is None or incident.revision >= held.revision:
                    self._latest[incident.incident_id] = incident
            else:
                case = Case.model_validate_json(message.value)
                held_case = self.cases.get(case.incident_id)
                if held_case is None or case.revision >= held_case.revision:
                    self.cases[case.incident_id] = case

    def incidents(self) -> dict[str, Incident]:
        """Return the latest revision of every incident not merged into another."""
        return {
            key: incident
            for key, incident in self._latest.items()
            if incident.status is not IncidentStatus.MERGED
        }

    def touch(self) -> None:
        """Count the quiet time from now: something was just sent that may change the cases."""
        self._last_record = time.monotonic()

    def cases_cover_incidents(self) -> bool:
        return bool(self._latest) and set(self._latest) <= set(self.cases)

    async def settle(self, done: Callable[[], bool]) -> None:
        """Wait until ``done`` holds and nothing new arrived for a few seconds."""
        deadline = time.monotonic() + _WAIT_S
        while not (done() and time.monotonic() - self._last_record > _QUIET_S):
            if time.monotonic() > deadline:
                raise StreamsError(f"timed out after {_WAIT_S:.0f} s waiting for the cases")
            await asyncio.sleep(0.3)


def _responses(scenario: Scenario, watch: _Watch, start: datetime) -> list[Outgoing]:
    """Return the departments' scripted answers to the cases, in time order."""
    plans = {plan.category: plan for plan in scenario.respond}
    commands: list[IncidentCommand] = []
    for incident_id, case in sorted(watch.cases.items()):
        plan = plans.get(case.category)
        if plan is None or case.stage is Stage.MERGED:
            continue
        opened = case.audit[0].at
        steps = [
            (Action.ACKNOWLEDGE, plan.acknowledge_after_s),
            (Action.RESOLVE, plan.resolve_after_s),
            (Action.VERIFY, None if plan.close_after_s is None else plan.close_after_s - 60),
            (Action.CLOSE, plan.close_after_s),
        ]
        for action, after in steps:
            if after is None:
                continue
            commands.append(
                IncidentCommand(
                    command_id=f"drill.{incident_id}.{action.value}"[:128],
                    action=action,
                    incident_id=incident_id,
                    actor=_ACTOR,
                    actor_tier=case.tier,
                    actor_area=case.area,
                    at=max(opened + timedelta(seconds=after), start),
                )
            )
    commands.sort(key=lambda command: command.at)
    return [
        Outgoing(c.at, "incident.commands", c.incident_id.encode(), c.model_dump_json().encode())
        for c in commands
    ]


def _ticks(watch: _Watch, end: datetime) -> list[Outgoing]:
    """Return a clock tick at ``end`` on the partition of every case."""
    records = []
    for incident_id, case in sorted(watch.cases.items()):
        tick = IncidentCommand(
            command_id=f"drill.tick.{incident_id}"[:128],
            action=Action.TICK,
            incident_id=incident_id,
            actor=_ACTOR,
            actor_tier=case.tier,
            actor_area=case.area,
            at=end,
        )
        records.append(
            Outgoing(
                end, "incident.commands", incident_id.encode(), tick.model_dump_json().encode()
            )
        )
    return records


def evaluate(
    scenario: Scenario, start: datetime, incidents: dict[str, Incident], cases: dict[str, Case]
) -> DrillResult:
    """Score the incidents and cases of a drill against the scenario's expectations."""
    rows = [_row(incident, cases.get(key), start) for key, incident in sorted(incidents.items())]
    expectations = [_check(expect, rows) for expect in scenario.expect]
    stage_sums: dict[str, list[float]] = {}
    for row in rows:
        for stage, seconds in row["stages_s"].items():
            stage_sums.setdefault(stage, []).append(seconds)
    totals = {
        "incidents": len(rows),
        "escalations": sum(row["escalations"] for row in rows),
        "breaches": sum(row["breaches"] for row in rows),
        "mean_stage_s": {
            stage: round(sum(values) / len(values), 3) for stage, values in stage_sums.items()
        },
        "mean_detection_delay_s": (
            round(sum(row["opened_after_s"] for row in rows) / len(rows), 3) if rows else None
        ),
    }
    return DrillResult(
        scenario=scenario.id,
        title=scenario.title,
        started_at=start,
        passed=all(item["met"] for item in expectations),
        incidents=rows,
        expectations=expectations,
        totals=totals,
    )


def _row(incident: Incident, case: Case | None, start: datetime) -> dict[str, Any]:
    return {
        "incident_id": incident.incident_id,
        "category": incident.category.value,
        "severity": incident.severity.value,
        "rule": incident.rule.id,
        "counties": incident.counties,
        "towns": incident.towns,
        "devices": len(incident.devices),
        # Detection delay: from the start of the situation to the incident.
        "opened_after_s": (incident.opened_at - start).total_seconds(),
        "evidence_to_incident_s": (
            incident.opened_at - incident.first_evidence.observed_at
        ).total_seconds(),
        "first_tier": case.audit[0].tier.value if case else None,
        "tier": case.tier.value if case else None,
        "escalations": case.escalations if case else 0,
        "breaches": case.breaches if case else 0,
        "stage": case.stage.value if case else "no case",
        "stages_s": stage_times(case) if case else {},
    }


def _check(expect: Expectation, rows: list[dict[str, Any]]) -> dict[str, Any]:
    matching = [
        row
        for row in rows
        if row["category"] == expect.category.value
        and Severity(row["severity"]).rank >= expect.severity.rank
        and (expect.rule is None or row["rule"] == expect.rule)
        and (expect.county is None or expect.county in row["counties"])
        and set(expect.towns) <= set(row["towns"])
        and row["opened_after_s"] <= expect.within_s
    ]
    problems = []
    if len(matching) != expect.count:
        problems.append(f"{len(matching)} matching incidents, expected {expect.count}")
    for row in matching:
        for name, wanted, got in (
            ("first owner", expect.tier, row["first_tier"]),
            ("owner at the end", expect.reaches_tier, row["tier"]),
            ("escalations", expect.escalations, row["escalations"]),
            ("closed", expect.closed, row["stage"] == Stage.CLOSED.value),
        ):
            wanted_value = getattr(wanted, "value", wanted)
            if wanted is not None and got != wanted_value:
                problems.append(f"{row['incident_id']}: {name} {got}, expected {wanted_value}")
    return {
        "describe": _describe(expect),
        "met": not problems,
        "problems": problems,
        "incidents": [row["incident_id"] for row in matching],
    }


def _describe(expect: Expectation) -> str:
    parts = [f"{expect.count} {expect.category.value} at {expect.severity.value} or graver"]
    if expect.county:
        parts.append(f"in {expect.county}")
    parts.append(f"within {expect.within_s:g}s")
    if expect.tier:
        parts.append(f"owned by {expect.tier.value}")
    if expect.reaches_tier:
        parts.append(f"reaching {expect.reaches_tier.value}")
    if expect.escalations is not None:
        parts.append(f"{expect.escalations} escalations")
    if expect.closed is not None:
        parts.append("closed" if expect.closed else "open")
    return " ".join(parts)


def _delete_topics(settings: Settings) -> None:
    """Delete the drill's topics and its worker's internal topics."""
    with contextlib.suppress(Exception):
        admin = admin_client(settings)
        try:
            names = [
                name
                for name in admin.list_topics()
                if name.startswith((settings.topic_prefix, f"{settings.app_id}-"))
            ]
            if names:
                admin.delete_topics(names)
        finally:
            admin.close()
