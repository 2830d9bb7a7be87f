"""``cityops run``: the product on its embedded default, stopped by Ctrl-C."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from schemas import DeadLetter
from streams.ports import port_is_free
from tests.conftest import free_port
from tests.helpers import (
    consume,
    consume_until,
    process_gone,
    produce,
    start_cli,
    stop,
    wait_for_topics,
)

pytestmark = pytest.mark.integration


def assert_turned_away(bootstrap: str, prefix: str, key: bytes, value: bytes) -> None:
    """Assert that a worker answered the non-JSON record ``value`` with its dead letter."""
    ((letter_key, letter_value),) = consume(bootstrap, f"{prefix}events.deadletter", expected=1)
    letter = DeadLetter.model_validate_json(letter_value)
    assert letter_key == key
    assert letter.value == value
    assert letter.reason == "malformed_json"


def test_run_starts_broker_and_worker_and_ctrl_c_stops_both(
    kafka_bootstrap: str,  # the session broker proves Java, Maven and the jars are there
    isolated_env: dict[str, str],
    tmp_path: Path,
) -> None:
    port, controller = free_port(), free_port()
    env = {
        **isolated_env,
        "CITYOPS_LOCAL_BROKER_PORT": str(port),
        "CITYOPS_LOCAL_CONTROLLER_PORT": str(controller),
    }
    bootstrap = f"127.0.0.1:{port}"
    prefix = env["CITYOPS_TOPIC_PREFIX"]
    pid_file = Path(env["CITYOPS_DATA_DIR"]) / "broker" / "broker.pid"
    log_path = tmp_path / "run.log"
    with log_path.open("wb") as log:
        run = start_cli(["run"], env, log)
        try:
            deadline = time.monotonic() + 120
            while not pid_file.exists() and time.monotonic() < deadline:
                assert run.poll() is None, log_path.read_text()
                time.sleep(0.2)
            broker_pid = json.loads(pid_file.read_text())["pid"]
            wait_for_topics(bootstrap, [f"{prefix}sensor.readings", f"{prefix}events.located"])
            produce(bootstrap, f"{prefix}sensor.readings", [(b"d1", b"reading")])
            assert_turned_away(bootstrap, prefix, b"d1", b"reading")
            # The simulator feeds the worker: its fleet's readings come out located.
            fed = consume_until(
                bootstrap,
                f"{prefix}events.located",
                lambda got: any(b'"device_id":"sim-' in value for _, value in got),
                timeout=90,
            )
        finally:
            code = stop(run, signal.SIGINT, timeout=120)
    output = log_path.read_text()
    assert code == 0, output[-3000:]
    assert "stopping the worker" in output
    assert "stopping the local broker" in output
    assert "simulating Heyuan's devices" in output
    assert any(b'"device_id":"sim-' in value for _, value in fed)
    assert process_gone(broker_pid)
    assert not pid_file.exists()
    assert port_is_free(port)
    assert port_is_free(controller)


def test_run_with_a_configured_broker_starts_no_local_broker(
    broker_env: dict[str, str], kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix = broker_env["CITYOPS_TOPIC_PREFIX"]
    log_path = tmp_path / "run.log"
    with log_path.open("wb") as log:
        run = start_cli(["run"], broker_env, log)
        try:
            wait_for_topics(kafka_bootstrap, [f"{prefix}sensor.readings"])
            produce(kafka_bootstrap, f"{prefix}sensor.readings", [(b"d2", b"via cluster")])
            # The worker that answers uses that cluster.
            assert_turned_away(kafka_bootstrap, prefix, b"d2", b"via cluster")
        finally:
            code = stop(run, signal.SIGINT, timeout=120)
    output = log_path.read_text()
    assert code == 0, output[-3000:]
    assert not (Path(broker_env["CITYOPS_DATA_DIR"]) / "broker").exists()
    assert "local broker" not in output
