"""Detection in a real worker on the real broker: the incident stream is the same bytes on every
replay and across a SIGKILL, and equals what the detector gives in-process; rules reload live."""

from __future__ import annotations

import random
import signal
import time
import uuid
from collections import defaultdict
from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer

from geo import Hierarchy, cell_neighbours
from schemas import SensorKind, VideoEventType
from streams.detect.rules import DEFAULT_RULES
from tests.conftest import free_port
from tests.helpers import (
    consume,
    consume_until,
    end_offsets,
    metric,
    produce,
    register,
    scrape,
    start_cli,
    stop,
    wait_for_topics,
)
from tests.streams.detect.scene import Scene, pick_cells, pick_line

pytestmark = pytest.mark.integration

Stream = list[tuple[bytes, bytes]]
CITY_INCIDENT = b"inc-441600-"


def scenario(heyuan: Hierarchy) -> tuple[Scene, Stream]:
    """Two hours of three counties: a flood across a town line seen on video, a fire on video,
    a gauge going silent, a stuck sensor, quiet background gauges, a flood across a county line
    (one city incident), one late event and one record that is not a located event. Returns
    the in-process run and the records to produce.
    """
    neighbours = cell_neighbours(heyuan)
    scene = Scene(heyuan, neighbours)
    rng = random.Random(7)  # noqa: S311 - test data
    places = [pick_cells(neighbours, "441602"), pick_cells(neighbours, "441622")]
    for county in range(len(places)):
        for n in range(8):
            scene.sensor(f"g{county}-{n}", SensorKind.WATER_LEVEL)
        scene.camera(f"c{county}-0")
        scene.camera(f"c{county}-1")
    line = pick_line(neighbours, "441602", "441625")
    for side in range(2):
        scene.sensor(f"line-{side}", SensorKind.WATER_LEVEL)
    for minute in range(120):
        second = minute * 60
        for county, cells in enumerate(places):
            spots = [cells.a, cells.b, cells.a2, cells.far]
            for n in range(8):
                device = f"g{county}-{n}"
                if n == 5 and minute > 30:
                    continue  # went silent: offline
                value = 1.0 + rng.random() / 10
                if n == 0 and 10 <= minute < 40:
                    value = 3.2 + minute / 20  # the flood, cleared from minute 40
                if n == 1 and 20 <= minute < 45:
                    value = 3.1  # joins across the town line
                if n == 7:
                    value = 0.5  # stuck
                scene.reading(device, spots[n % 4], value, second + n)
            if minute in (15, 16):
                scene.video(f"c{county}-0", cells.a2, VideoEventType.WATERLOGGING, second + 30)
            if minute in (50, 51):
                scene.video(f"c{county}-1", cells.far, VideoEventType.FIRE_SMOKE, second + 40)
        flood_on_the_line(scene, line, minute)
    scene.reading("g0-0", places[0].a, 9.0, 60)  # late: two hours behind
    records = [
        (loc.location.county.encode(), loc.model_dump_json().encode()) for loc, _ in scene.fed
    ]
    records.insert(len(records) // 3, (b"441602", b'{"not": "a located event"}'))
    return scene, records


def flood_on_the_line(scene: Scene, line: tuple[str, str], minute: int) -> None:
    """Gauges on either side of the 源城区-东源县 line, high from minute 60 for 20 and 15
    minutes."""
    for side, cell in enumerate(line):
        high = 60 <= minute < 80 - side * 5
        scene.reading(f"line-{side}", cell, 3.5 + side / 10 if high else 1.1, minute * 60 + 20)


def in_process(scene: Scene) -> Stream:
    """What the in-process detector published, as it goes on ``incidents.updates``."""
    return [(i.incident_id.encode(), i.model_dump_json().encode()) for i in scene.updates]


def by_incident(records: Stream) -> dict[bytes, list[bytes]]:
    """County incidents' revisions by incident id (city incidents: see ``check_city``)."""
    grouped: dict[bytes, list[bytes]] = defaultdict(list)
    for key, value in records:
        if not key.startswith(CITY_INCIDENT):
            grouped[key].append(value)
    return dict(grouped)


def city_finals(scene: Scene) -> dict[bytes, bytes]:
    """The last revision of every city incident the in-process stage published."""
    return {i.incident_id.encode(): i.model_dump_json().encode() for i in scene.city_updates}


def check_city(scene: Scene, records: Stream) -> None:
    """The city incidents' last revisions are the in-process ones. Revisions in between depend
    on how the county partitions interleaved, and a group that formed apart before joining
    another ends ``merged`` into it."""
    expected = city_finals(scene)
    last = {key: value for key, value in records if key.startswith(CITY_INCIDENT)}
    assert expected, "the scenario has no flood across a county line"
    for key, value in last.items():
        if key not in expected:
            assert orjson.loads(value)["merged_into"].encode() in expected, value
    assert {key: last.get(key) for key in expected} == expected


def fresh_env(broker_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    run = uuid.uuid4().hex[:8]
    return {
        **broker_env,
        "CITYOPS_APP_ID": f"test-{run}",
        "CITYOPS_TOPIC_PREFIX": f"test-{run}.",
        "CITYOPS_WEB_PORT": str(free_port()),
        "CITYOPS_DATA_DIR": str(tmp_path / run),
    }


def register_scene(scene: Scene, bootstrap: str, env: dict[str, str]) -> None:
    wait_for_topics(bootstrap, [f"{env['CITYOPS_TOPIC_PREFIX']}devices.registry"])
    register(
        bootstrap, env["CITYOPS_TOPIC_PREFIX"], int(env["CITYOPS_WEB_PORT"]), scene.devices.values()
    )


def detection_counts(port: int) -> dict[str, float]:
    return {
        dict(labels)["outcome"]: value
        for (name, labels), value in scrape(port).items()
        if name == "cityops_detection_events_total"
    }


def produce_slowly(bootstrap: str, topic: str, records: Stream) -> None:
    """Send ``records`` one by one, about 500 a second, so that some arrive while the worker
    is busy with the batch before (a batch then closes on its time limit, not on its size)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    try:
        for key, value in records:
            producer.send(topic, key=key, value=value)
            time.sleep(0.002)
        producer.flush()
    finally:
        producer.close()


def run_once(
    scene: Scene,
    records: Stream,
    env: dict[str, str],
    bootstrap: str,
    log_path: Path,
    *,
    trickle: bool = False,
) -> tuple[Stream, dict[str, float]]:
    """Run a worker over ``records``: all at once, or in small chunks while it works (then
    batches close on their time limit while records keep arriving)."""
    prefix = env["CITYOPS_TOPIC_PREFIX"]
    with log_path.open("ab") as log:
        worker = start_cli(["worker"], env, log)
        try:
            register_scene(scene, bootstrap, env)
            if trickle:
                produce_slowly(bootstrap, f"{prefix}events.located", records)
            else:
                produce(bootstrap, f"{prefix}events.located", records)
            produce(bootstrap, f"{prefix}incidents.border", [(b"441600", b"not an incident")])
            finals = {value for _, value in in_process(scene)} | set(city_finals(scene).values())
            updates = consume_until(
                bootstrap,
                f"{prefix}incidents.updates",
                lambda got: finals <= {value for _, value in got},
                timeout=120,
                settle=2,
            )
            counts = detection_counts(int(env["CITYOPS_WEB_PORT"]))
        finally:
            code = stop(worker, signal.SIGINT)
    assert code == 0, log_path.read_text()[-3000:]
    return updates, counts


def test_replaying_the_same_input_gives_byte_identical_incidents(
    heyuan: Hierarchy, broker_env: dict[str, str], kafka_bootstrap: str, tmp_path: Path
) -> None:
    scene, records = scenario(heyuan)
    expected = by_incident(in_process(scene))
    categories = {i.category.value for i in scene.updates}
    assert categories >= {"flood", "fire_smoke", "device_offline"}, categories
    assert any(i.corroborated_by for i in scene.updates)

    runs = []
    for n, trickle in enumerate((False, True)):
        env = fresh_env(broker_env, tmp_path)
        log_path = tmp_path / f"{n}.log"
        updates, counts = run_once(scene, records, env, kafka_bootstrap, log_path, trickle=trickle)
        runs.append(by_incident(updates))
        check_city(scene, updates)
        assert counts["late"] == 1
        assert counts["invalid"] == 2  # one on events.located, one on incidents.border
        assert counts["flagged"] >= 100  # the stuck gauge, in both counties
        assert counts["applied"] + counts["flagged"] + counts["late"] == len(scene.fed)
    for run in runs:
        for key, revisions in expected.items():
            assert run.get(key) == revisions, _diff(revisions, run.get(key, []))
        assert set(run) == set(expected)


def _diff(expected: list[bytes], got: list[bytes]) -> str:
    for want, have in zip(expected, got, strict=False):
        if want != have:
            a, b = orjson.loads(want), orjson.loads(have)
            return str({k: (a[k], b.get(k)) for k in a if a[k] != b.get(k)})
    return f"{len(expected)} revisions expected, {len(got)} published"


def test_a_worker_killed_mid_scenario_raises_nothing_twice_and_misses_nothing(
    heyuan: Hierarchy, broker_env: dict[str, str], kafka_bootstrap: str, tmp_path: Path
) -> None:
    scene, records = scenario(heyuan)
    expected = by_incident(in_process(scene))
    env = {**fresh_env(broker_env, tmp_path), "CITYOPS_DETECT_BATCH_SIZE": "25"}
    prefix = env["CITYOPS_TOPIC_PREFIX"]
    topic = f"{prefix}incidents.updates"
    log_path = tmp_path / "worker.log"
    with log_path.open("ab") as log:
        first = start_cli(["worker"], env, log)
        try:
            register_scene(scene, kafka_bootstrap, env)
            produce(kafka_bootstrap, f"{prefix}events.located", records)
            deadline = time.monotonic() + 120
            while end_offsets(kafka_bootstrap, topic) < len(scene.updates) // 3:
                assert time.monotonic() < deadline, log_path.read_text()[-3000:]
                time.sleep(0.02)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
        at_kill = end_offsets(kafka_bootstrap, topic)
        second = start_cli(["worker"], env, log)
        try:
            # Republished revisions count too, so wait for every incident's final revision.
            finals = {revisions[-1] for revisions in expected.values()}
            finals |= set(city_finals(scene).values())
            updates = consume_until(
                kafka_bootstrap,
                topic,
                lambda got: finals <= {value for _, value in got},
                timeout=120,
                settle=3,
            )
        finally:
            code = stop(second, signal.SIGINT)
    assert code == 0, log_path.read_text()[-3000:]
    assert at_kill < len(scene.updates), "the kill came after the end: nothing was tested"
    check_city(scene, updates)
    published = by_incident(updates)
    # Exactly the incidents of the uninterrupted run: none raised twice, none missing.
    missing, extra = set(expected) - set(published), set(published) - set(expected)
    assert (missing, extra) == (set(), set()), [orjson.loads(published[k][0]) for k in extra]
    for key, revisions in published.items():
        # Every update is one the uninterrupted run published (a revision may be published
        # again after the restart, with the same bytes), and the last is its final state.
        unknown = [r for r in revisions if r not in set(expected[key])]
        assert not unknown, (key, _diff(expected[key], unknown))
        assert revisions[-1] == expected[key][-1], (key, _diff(expected[key][-1:], revisions[-1:]))


def test_rules_reload_live_and_a_bad_file_keeps_the_rules_in_force(
    heyuan: Hierarchy, broker_env: dict[str, str], kafka_bootstrap: str, tmp_path: Path
) -> None:
    shipped = DEFAULT_RULES.read_text(encoding="utf-8")
    rules = tmp_path / "rules.toml"
    rules.write_text(shipped, encoding="utf-8")
    env = {
        **fresh_env(broker_env, tmp_path),
        "CITYOPS_RULES_FILE": str(rules),
        "CITYOPS_RULES_CHECK_INTERVAL_S": "0.2",
    }
    prefix, port = env["CITYOPS_TOPIC_PREFIX"], int(env["CITYOPS_WEB_PORT"])
    scene = Scene(heyuan, cell_neighbours(heyuan))
    scene.sensor("wl-1", SensorKind.WATER_LEVEL)
    cells = pick_cells(scene.neighbours, "441602")
    log_path = tmp_path / "worker.log"
    with log_path.open("ab") as log:
        worker = start_cli(["worker"], env, log)
        try:
            register_scene(scene, kafka_bootstrap, env)
            # A file that does not validate: refused with its reason, the shipped rules stay.
            rules.write_text(shipped.replace("raise_after = 3", "raise_after = 0", 1), "utf-8")
            wait_for_reloads(port, "rejected", 1, log_path)
            assert "raise_after" in log_path.read_text(encoding="utf-8")
            # A valid file: in force at the next event. One reading now raises.
            changed = shipped.replace("raise_after = 3", "raise_after = 1", 1)
            rules.write_text(changed.replace("heyuan-2026.12.1", "drill-2"), "utf-8")
            wait_for_reloads(port, "loaded", 1, log_path)
            scene.reading("wl-1", cells.a, 3.4, 0)
            records = [(b"441602", loc.model_dump_json().encode()) for loc, _ in scene.fed]
            produce(kafka_bootstrap, f"{prefix}events.located", records)
            updates = consume(kafka_bootstrap, f"{prefix}incidents.updates", 1, settle=1)
        finally:
            code = stop(worker, signal.SIGINT)
    assert code == 0, log_path.read_text()[-3000:]
    assert len(updates) == 1, updates
    incident = orjson.loads(updates[0][1])
    assert incident["rules_version"] == "drill-2"
    assert incident["rule"] == {"id": "flood.water-level", "version": 1}
    assert incident["evidence_count"] == 1


def wait_for_reloads(port: int, outcome: str, count: int, log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while metric(port, "cityops_rules_reloads_total", outcome=outcome) < count:
        assert time.monotonic() < deadline, log_path.read_text()[-3000:]
        time.sleep(0.1)
