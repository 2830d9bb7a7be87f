"""A real worker's ``/metrics`` read by the real Prometheus tools: ``promtool`` lints the page,
a ``prometheus`` server scrapes it and answers queries with the worker's own numbers."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port, missing
from tests.helpers import metric, produce, register, scrape, start_cli, stop, wait_for_topics
from tests.streams.ingest.samples import DEVICES, reading

pytestmark = pytest.mark.integration

# promtool 2.42 (Debian 12) ``check metrics``: lint problems go to stderr, one per line as
# ``<metric family> <problem>``, and the exit code is 3; a page it cannot parse gives exit
# code 1 and ``error while linting: ...``; a clean page gives exit code 0 and no output.
PROMTOOL_LINT_PROBLEMS = 3


def wait_until(
    done: Callable[[], bool],
    what: str,
    timeout: float,
    log: Path,
    process: subprocess.Popen[bytes],
) -> None:
    """Poll ``done`` every 0.2 s; fail with ``what`` and the end of ``log`` after ``timeout``,
    or at once when ``process`` (whose output ``log`` is) has exited."""
    deadline = time.monotonic() + timeout
    while not done():
        if process.poll() is not None:
            code = process.returncode
            raise AssertionError(f"{what}: it exited with {code}\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout} s\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def metrics_answer(port: int) -> bool:
    try:
        scrape(port)
    except OSError:
        return False
    return True


def located_by_worker(port: int) -> float:
    """Located events as the worker reports them, summed over its input topics."""
    return sum(
        value
        for (name, labels), value in scrape(port).items()
        if name == "cityops_input_events_total" and dict(labels)["outcome"] == "located"
    )


def promtool_check(text: str) -> subprocess.CompletedProcess[str]:
    """``promtool check metrics`` with ``text`` on stdin."""
    return subprocess.run(
        ["promtool", "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def family(line: str) -> str:
    """The metric family a line of the text exposition format is about."""
    if line.startswith("#"):
        parts = line.split()
        return parts[2] if len(parts) > 2 else ""
    return line.split("{", 1)[0].split(" ", 1)[0]


def query(prometheus_port: int, promql: str) -> list[dict[str, Any]]:
    """The result vector of an instant query on the Prometheus HTTP API."""
    url = f"http://127.0.0.1:{prometheus_port}/api/v1/query?" + urllib.parse.urlencode(
        {"query": promql}
    )
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def scalar(prometheus_port: int, promql: str) -> float | None:
    """The value of a query that yields one series; ``None`` while it yields none."""
    result = query(prometheus_port, promql)
    if not result:
        return None
    assert len(result) == 1, result
    return float(result[0]["value"][1])


def prometheus_ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:  # refused while it starts, 503 until its storage is ready
        return False


def test_worker_metrics_pass_promtool_and_reach_a_real_prometheus(
    broker_env: dict[str, str], kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The worker's ``/metrics`` page, after real traffic, checked with Debian's promtool and
    scraped by Debian's prometheus (2.42 when written).

    promtool (``check metrics`` on the live page, on stdin):

    - the whole page parses: exit code 0 (clean) or 3 (lint problems only), never 1, and no
      ``error while linting`` output;
    - every lint problem is about a ``faust_`` family: those come from Faust's own monitor
      (``setup_prometheus_sensors``), whose names we do not choose; they are collected and
      shown in the assertion message, not forbidden;
    - the ``cityops_`` families on their own (the page filtered to them) lint clean: exit code
      0 and no output at all, so a new cityops metric that breaks a Prometheus naming rule
      (a counter without ``_total``, a unit abbreviation, camelCase...) fails this test.

    prometheus (a scrape every second of the worker's port, job ``cityops``): ``up`` is 1 and
    ``sum(cityops_input_events_total{outcome="located"})`` comes to exactly what the worker
    itself reports, which is every valid reading sent; the malformed record counts as a
    dead letter on both sides.
    """
    for tool in ("prometheus", "promtool"):
        if shutil.which(tool) is None:
            missing(f"no {tool} on PATH (Debian: apt-get install prometheus)")
    prefix = broker_env["CITYOPS_TOPIC_PREFIX"]
    port = int(broker_env["CITYOPS_WEB_PORT"])
    readings_topic = f"{prefix}sensor.readings"
    now = datetime.now(UTC)
    valid = [(b"wl-001", reading(f"p-{n}", at=now)) for n in range(5)]
    malformed = (b"wl-001", b'{"event_id": "bad-json", ')

    prometheus_port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  scrape_timeout: 1s\n"
        "  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        "  - job_name: cityops\n"
        "    metrics_path: /metrics\n"
        "    static_configs:\n"
        f"      - targets: ['127.0.0.1:{port}']\n"
    )
    worker_log = tmp_path / "worker.log"
    prometheus_log = tmp_path / "prometheus.log"
    server: subprocess.Popen[bytes] | None = None
    with worker_log.open("wb") as log, prometheus_log.open("wb") as server_log:
        worker = start_cli(["worker"], broker_env, log)
        try:
            wait_until(
                lambda: metrics_answer(port), "/metrics did not answer", 90, worker_log, worker
            )
            wait_for_topics(kafka_bootstrap, [f"{prefix}devices.registry", readings_topic])
            register(kafka_bootstrap, prefix, port, DEVICES[:1])
            produce(kafka_bootstrap, readings_topic, [*valid, malformed])

            def counted(outcome: str) -> float:
                return metric(
                    port, "cityops_input_events_total", topic=readings_topic, outcome=outcome
                )

            wait_until(
                lambda: counted("located") == len(valid) and counted("dead_letter") == 1,
                "the worker did not count the readings",
                60,
                worker_log,
                worker,
            )

            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as page:
                text = page.read().decode()
            whole = promtool_check(text)
            ours = promtool_check(
                "".join(
                    line
                    for line in text.splitlines(keepends=True)
                    if family(line).startswith("cityops_")
                )
            )

            server = subprocess.Popen(
                [
                    "prometheus",
                    f"--config.file={config}",
                    f"--web.listen-address=127.0.0.1:{prometheus_port}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    "--log.level=warn",
                ],
                stdout=server_log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            wait_until(
                lambda: prometheus_ready(prometheus_port),
                "prometheus was not ready",
                30,
                prometheus_log,
                server,
            )
            in_worker = located_by_worker(port)
            located = 'sum(cityops_input_events_total{job="cityops",outcome="located"})'
            wait_until(
                lambda: scalar(prometheus_port, located) == in_worker,
                "prometheus did not scrape the worker's located count",
                30,
                prometheus_log,
                server,
            )
            in_prometheus = scalar(prometheus_port, located)
            up = scalar(prometheus_port, 'up{job="cityops"}')
            dead_in_prometheus = scalar(
                prometheus_port,
                f'cityops_input_events_total{{job="cityops",topic="{readings_topic}",'
                'outcome="dead_letter"}',
            )
        finally:
            if server is not None:
                server.terminate()
                try:
                    server.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()
            code = stop(worker, signal.SIGINT)
    output = worker_log.read_text()
    assert code == 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]

    assert whole.returncode in (0, PROMTOOL_LINT_PROBLEMS), (whole.returncode, whole.stderr)
    assert "error while linting" not in whole.stdout + whole.stderr, whole.stderr
    problems = (whole.stdout + whole.stderr).splitlines()
    assert (whole.returncode == 0) == (not problems), (whole.returncode, problems)
    assert all(line.startswith("faust_") for line in problems), problems
    assert "cityops_input_events_total" in text
    assert ours.returncode == 0, (ours.returncode, ours.stdout, ours.stderr)
    assert ours.stdout == ours.stderr == "", (ours.stdout, ours.stderr)

    assert in_worker == len(valid)
    assert in_prometheus == in_worker
    assert up == 1
    assert dead_in_prometheus == 1
