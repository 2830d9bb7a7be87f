"""The embedded local broker: configuration, failure messages, and its real lifecycle."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from streams.broker import LocalBroker, kafka_version
from streams.ports import port_is_free
from streams.settings import Settings
from tests.conftest import free_port
from tests.helpers import one_line_error, process_gone, run_cli


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def _write_pid_file(data_dir: Path, pid: int) -> Path:
    pid_file = data_dir / "broker" / "broker.pid"
    pid_file.parent.mkdir(parents=True)
    record = {"pid": pid, "port": 1, "kafka_version": "4", "started_at": time.time()}
    pid_file.write_text(json.dumps(record))
    return pid_file


def _bin_with(tmp_path: Path, **tools: str) -> str:
    """A PATH holding only the named tools: a real one (path) or a script (text)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, source in tools.items():
        target = bin_dir / name
        if source.startswith("#!"):
            target.write_text(source)
            target.chmod(0o755)
        else:
            target.symlink_to(source)
    return str(bin_dir)


def test_pinned_version_is_kafka_4() -> None:
    assert kafka_version().startswith("4.")


def test_server_properties_follow_the_settings(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, local_broker_port=19555, local_controller_port=19556)
    text = LocalBroker(settings)._server_properties()
    lines = set(text.splitlines())
    assert "listeners=PLAINTEXT://127.0.0.1:19555,CONTROLLER://127.0.0.1:19556" in lines
    assert "controller.quorum.voters=1@127.0.0.1:19556" in lines
    assert f"log.dirs={tmp_path / 'broker' / 'kraft'}" in lines
    assert "auto.create.topics.enable=false" in lines
    assert "num.partitions=8" in lines


def test_heap_is_capped_and_logs_go_to_a_file(tmp_path: Path) -> None:
    options = LocalBroker(Settings(data_dir=tmp_path))._jvm_options(tmp_path / "log4j2.yaml")
    assert "-Xmx512m" in options
    assert f"-Dkafka.logs.dir={tmp_path / 'broker' / 'logs'}" in options


@pytest.mark.parametrize(
    "pid",
    [
        pytest.param(_dead_pid(), id="process-gone"),  # the broker was killed
        pytest.param(os.getpid(), id="pid-reused"),  # the pid now belongs to something else
    ],
)
def test_stale_pid_file_is_explained_and_removed(
    pid: int, tmp_path: Path, isolated_env: dict[str, str]
) -> None:
    pid_file = _write_pid_file(tmp_path / "data", pid)
    result = run_cli(["broker", "status"], isolated_env)
    assert result.returncode == 3
    assert "local broker stopped" in result.stdout
    assert f"removed a stale pid file: process {pid}" in result.stdout
    assert not pid_file.exists()


def test_port_taken_by_another_process_is_named(isolated_env: dict[str, str]) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        env = {**isolated_env, "CITYOPS_LOCAL_BROKER_PORT": str(port)}
        line = one_line_error(run_cli(["broker", "start"], env))
    assert f"client port {port} is in use by pid {os.getpid()}" in line
    assert "CITYOPS_LOCAL_BROKER_PORT" in line


def test_missing_java_is_named(tmp_path: Path, isolated_env: dict[str, str]) -> None:
    env = {**isolated_env, "PATH": _bin_with(tmp_path)}
    line = one_line_error(run_cli(["broker", "start"], env))
    assert "Java 17+ is not on PATH" in line


def test_missing_maven_is_named_when_jars_are_not_cached(
    java: str, tmp_path: Path, isolated_env: dict[str, str]
) -> None:
    env = {
        **isolated_env,
        "PATH": _bin_with(tmp_path, java=java),
        "CITYOPS_CACHE_DIR": str(tmp_path / "empty-cache"),
    }
    line = one_line_error(run_cli(["broker", "start"], env))
    assert "Maven ('mvn') is not on PATH" in line


def test_failed_download_shows_mavens_last_words(
    java: str, tmp_path: Path, isolated_env: dict[str, str]
) -> None:
    failing_mvn = "#!/bin/sh\necho '[ERROR] Could not transfer artifact kafka_2.13'\nexit 1\n"
    env = {
        **isolated_env,
        "PATH": _bin_with(tmp_path, java=java, mvn=failing_mvn),
        "CITYOPS_CACHE_DIR": str(tmp_path / "empty-cache"),
    }
    result = run_cli(["broker", "start"], env)
    assert result.returncode == 1
    assert result.stderr.startswith("cityops: error: downloading Kafka")
    assert "Could not transfer artifact kafka_2.13" in result.stderr
    assert not (tmp_path / "empty-cache" / f"kafka-{kafka_version()}" / "libs").exists()


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


@pytest.mark.integration
def test_lifecycle_start_twice_status_stop(
    kafka_bootstrap: str, isolated_env: dict[str, str]
) -> None:
    """A second broker beside the session's: one JVM however often started, none after stop."""
    port, controller = free_port(), free_port()
    env = {
        **isolated_env,
        "CITYOPS_LOCAL_BROKER_PORT": str(port),
        "CITYOPS_LOCAL_CONTROLLER_PORT": str(controller),
    }
    first = run_cli(["broker", "start"], env)
    assert first.returncode == 0, first.stderr
    try:
        pid = json.loads((Path(env["CITYOPS_DATA_DIR"]) / "broker" / "broker.pid").read_text())[
            "pid"
        ]
        assert "kafka.Kafka" in _cmdline(pid)
        assert "-Xmx512m" in _cmdline(pid)

        second = run_cli(["broker", "start"], env)
        assert second.returncode == 0
        assert second.stdout.startswith("already running")
        assert f"pid {pid}," in second.stdout

        status = run_cli(["broker", "status"], env)
        assert status.returncode == 0
        assert f"running: Kafka {kafka_version()} at 127.0.0.1:{port}, pid {pid}" in status.stdout

        logs = Path(env["CITYOPS_DATA_DIR"]) / "broker" / "logs"
        assert "Kafka Server started" in (logs / "server.log").read_text()
        assert " INFO " not in (logs / "stdout.log").read_text()  # log4j goes to the file
    finally:
        stopped = run_cli(["broker", "stop"], env)
    assert stopped.stdout.strip() == "local broker stopped"
    assert process_gone(pid)
    assert port_is_free(port)
    assert port_is_free(controller)
    assert run_cli(["broker", "stop"], env).stdout.strip() == "local broker was not running"
    assert run_cli(["broker", "status"], env).returncode == 3
