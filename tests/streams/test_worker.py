"""A real worker process against the real broker: readings in, located events out, clean
stop."""

from __future__ import annotations

import signal
import socket
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemas import LocatedEvent
from tests.helpers import (
    CITYOPS,
    consume,
    one_line_error,
    produce,
    run_cli,
    stop,
    wait_for_topics,
)
from tests.streams.ingest.samples import reading, register_devices

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("launcher", "sig"),
    [
        ([CITYOPS, "worker"], signal.SIGINT),  # the documented command, stopped by Ctrl-C
        (  # Faust's own command line on the same app module, stopped by a service manager
            [str(Path(CITYOPS).with_name("faust")), "-A", "streams.app", "worker", "-l", "info"],
            signal.SIGTERM,
        ),
    ],
    ids=["cityops-worker", "faust-worker"],
)
def test_worker_locates_readings_and_stops_cleanly(
    launcher: list[str],
    sig: int,
    broker_env: dict[str, str],
    kafka_bootstrap: str,
    tmp_path: Path,
) -> None:
    prefix = broker_env["CITYOPS_TOPIC_PREFIX"]
    source, target = f"{prefix}sensor.readings", f"{prefix}events.located"
    now = datetime.now(UTC)
    records = [(b"wl-001", reading(f"r-{i}", at=now)) for i in range(50)]
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(launcher, env=broker_env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_topics(kafka_bootstrap, [source, target])
            register_devices(kafka_bootstrap, prefix, int(broker_env["CITYOPS_WEB_PORT"]))
            produce(kafka_bootstrap, source, records)
            located = consume(kafka_bootstrap, target, expected=len(records))
        finally:
            code = stop(worker, sig)
    output = log_path.read_text()
    ids = sorted(LocatedEvent.model_validate_json(value).event.event_id for _, value in located)
    assert ids == sorted(f"r-{i}" for i in range(50)), output[-3000:]
    assert code == 0, output[-3000:]
    assert "Traceback" not in output


def test_worker_refuses_a_taken_web_port(broker_env: dict[str, str]) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = run_cli(["worker"], {**broker_env, "CITYOPS_WEB_PORT": str(port)})
    assert result.returncode == 1
    assert f"web port {port} is in use" in one_line_error(result)
