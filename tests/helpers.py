"""Running the real ``cityops`` command and reading and writing the real broker in tests."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError
from prometheus_client.parser import text_string_to_metric_families

from schemas import Device

# The console script installed next to this interpreter, as a user runs it.
CITYOPS = str(Path(sys.executable).with_name("cityops"))


def run_cli(
    args: Sequence[str], env: dict[str, str], timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """Run ``cityops ARGS`` to completion and capture its output."""
    return subprocess.run(
        [CITYOPS, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def start_cli(args: Sequence[str], env: dict[str, str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    """Start ``cityops ARGS`` in the background with its output going to ``log``."""
    return subprocess.Popen(
        [CITYOPS, *args], env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
    )


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGINT, timeout: float = 90.0) -> int:
    """Send ``sig`` and return the exit code; kill and fail if it does not stop in time."""
    process.send_signal(sig)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(f"process did not stop within {timeout} s of signal {sig}") from None


def wait_for_topics(bootstrap: str, names: Iterable[str], timeout: float = 90.0) -> None:
    """Wait until every topic in ``names`` exists on the broker."""
    wanted = set(names)
    deadline = time.monotonic() + timeout
    while True:  # a broker that has just written its pid file may not listen yet
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap)
            break
        except KafkaError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    try:
        while time.monotonic() < deadline:
            if wanted <= set(admin.list_topics()):
                return
            time.sleep(0.2)
    finally:
        admin.close()
    raise AssertionError(f"topics {sorted(wanted)} did not appear within {timeout} s")


Headers = list[tuple[str, bytes]]


def produce(
    bootstrap: str,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes | None] | tuple[bytes | None, bytes, Headers]],
) -> None:
    """Send ``(key, value)`` or ``(key, value, headers)`` records; wait until the broker has
    them all."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        for key, value, *headers in records:
            producer.send(topic, key=key, value=value, headers=headers[0] if headers else None)
        producer.flush()
    finally:
        producer.close()


def consume(
    bootstrap: str, topic: str, expected: int, timeout: float = 90.0, settle: float = 0.0
) -> list[tuple[bytes, bytes]]:
    """Read ``topic`` from the beginning until ``expected`` records arrived or time ran out;
    then go on reading for ``settle`` seconds, so that a test sees records beyond those it
    expected."""
    return consume_until(
        bootstrap, topic, lambda records: len(records) >= expected, timeout, settle
    )


def consume_until(
    bootstrap: str,
    topic: str,
    done: Callable[[list[tuple[bytes, bytes]]], bool],
    timeout: float = 90.0,
    settle: float = 0.0,
) -> list[tuple[bytes, bytes]]:
    """Read ``topic`` from the beginning until ``done(records)`` or time ran out; then go on
    reading for ``settle`` seconds. For streams where a count is not enough: records that
    may be published again (with the same bytes) would make a count come true too early."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        deadline = time.monotonic() + timeout
        # A topic created a moment ago may not be in this client's metadata yet.
        while not (partitions := consumer.partitions_for_topic(topic)):
            assert time.monotonic() < deadline, f"topic {topic} did not appear"
            time.sleep(0.2)
        consumer.assign([TopicPartition(topic, partition) for partition in partitions])
        consumer.seek_to_beginning()
        records: list[tuple[bytes, bytes]] = []
        while not done(records) and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend((message.key, message.value) for message in batch)
        deadline = time.monotonic() + settle
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend((message.key, message.value) for message in batch)
        return records
    finally:
        consumer.close()


def end_offsets(bootstrap: str, topic: str) -> int:
    """Return how many records ``topic`` holds (the sum of its partitions' end offsets)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return sum(ends.values())
    finally:
        consumer.close()


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Read a worker's ``/metrics``: ``{(sample name, sorted labels): value}``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def metric(port: int, name: str, **labels: str) -> float:
    """One sample of a worker's ``/metrics``; 0 when it is absent or the web server is not up
    yet."""
    try:
        samples = scrape(port)
    except OSError:
        return 0.0
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def register(bootstrap: str, prefix: str, port: int, devices: Iterable[Device]) -> None:
    """Put ``devices`` on the registry while a worker runs; return when it has them all."""
    records = [(d.device_id.encode(), d.model_dump_json().encode()) for d in devices]
    produce(bootstrap, f"{prefix}devices.registry", records)
    deadline = time.monotonic() + 60
    while metric(port, "cityops_devices_registered") < len(records):
        assert time.monotonic() < deadline, "the worker did not take up the registrations"
        time.sleep(0.2)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """Assert that a failed command printed exactly one ``cityops: error:`` line; return it."""
    assert result.returncode != 0, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("cityops: error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


def process_gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (absent, or a zombie waiting to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"
