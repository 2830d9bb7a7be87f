"""``cityops simulate`` feeding a real worker, and ``cityops replay`` of its recording feeding a
fresh one: the replay reproduces the same incidents."""

from __future__ import annotations

import signal
import time
import uuid
from collections import Counter
from pathlib import Path

import orjson
import pytest

from schemas import Incident, IncidentStatus
from tests.conftest import free_port
from tests.helpers import consume_until, metric, run_cli, start_cli, stop

pytestmark = pytest.mark.integration

Signature = tuple[str, str, str, tuple[str, ...], tuple[str, ...]]


def incidents(bootstrap: str, prefix: str, quiet_s: float = 4) -> Counter[Signature]:
    """What a worker made of the traffic: each incident's category, rule, severity, towns and
    devices at its last revision (ids and evidence counts may differ with read order)."""
    records = consume_until(
        bootstrap, f"{prefix}incidents.updates", bool, timeout=60, settle=quiet_s
    )
    latest: dict[str, Incident] = {}
    for _, value in records:
        incident = Incident.model_validate_json(value)
        if (
            incident.incident_id not in latest
            or incident.revision > latest[incident.incident_id].revision
        ):
            latest[incident.incident_id] = incident
    return Counter(
        (i.category.value, i.rule.id, i.severity.value, tuple(i.towns), tuple(i.devices))
        for i in latest.values()
        if i.status is not IncidentStatus.MERGED
    )


def located(port: int, prefix: str) -> float:
    return sum(
        metric(port, "cityops_input_events_total", topic=f"{prefix}{topic}", outcome="located")
        for topic in ("sensor.readings", "video.events")
    )


def wait_for(check: object, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def fresh(env: dict[str, str]) -> dict[str, str]:
    run = uuid.uuid4().hex[:8]
    return {
        **env,
        "CITYOPS_APP_ID": f"test-{run}",
        "CITYOPS_TOPIC_PREFIX": f"test-{run}.",
        "CITYOPS_WEB_PORT": str(free_port()),
    }


def test_a_recorded_simulation_replayed_gives_the_same_incidents(
    broker_env: dict[str, str], kafka_bootstrap: str, tmp_path: Path
) -> None:
    recording = tmp_path / "simulation.jsonl"
    first, second = fresh(broker_env), fresh(broker_env)
    results = []
    for env, feed in (
        (
            first,
            [
                "simulate", "--sensors", "300", "--cameras", "200", "--speed", "240",
                "--start=-40m", "--duration", "1800", "--record", str(recording),
                "--scenario", "gas-alarm-cluster@120", "--scenario", "zijin-forest-fire@400",
            ],
        ),
        (second, ["replay", str(recording), "--speed", "240"]),
    ):  # fmt: skip
        prefix, port = env["CITYOPS_TOPIC_PREFIX"], int(env["CITYOPS_WEB_PORT"])
        log_path = tmp_path / f"{prefix}log"
        with log_path.open("wb") as log:
            worker = start_cli(["worker"], env, log)
            try:
                fed = run_cli(feed, env, timeout=300)
                assert fed.returncode == 0, fed.stderr[-3000:]
                sent = [orjson.loads(line) for line in recording.read_bytes().splitlines()]
                events = sum(1 for r in sent if r["topic"] in ("sensor.readings", "video.events"))
                wait_for(lambda: located(port, prefix) >= events, "every event located")  # noqa: B023
                results.append(incidents(kafka_bootstrap, prefix))
            finally:
                code = stop(worker, signal.SIGINT)
        assert code == 0, log_path.read_text()[-3000:]
    simulated, replayed = results
    categories = {signature[0] for signature in simulated}
    assert {"combustible_gas", "fire_smoke"} <= categories, simulated
    assert replayed == simulated
