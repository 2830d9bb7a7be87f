"""The embedded local Kafka broker: one JVM, single-node KRaft, on loopback.

For development, tests, demos and benchmarks. It lives in ``<data_dir>/broker``::

    broker.pid          JSON: pid, ports, version, start time (only while running)
    server.properties   generated on each start from the settings
    kraft/              log and metadata, formatted once with a generated cluster id
    logs/server.log     the broker's own log (log4j2, size-capped)
    logs/stdout.log     what the JVM prints outside log4j (crashes, bad flags)

Deleting the directory while the broker is stopped gives a fresh, empty cluster.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from streams.broker.jars import kafka_version, resolve_jars
from streams.exceptions import BrokerStartError, BrokerUnreachableError, PortInUseError
from streams.ports import describe_listener, port_is_free
from streams.settings import Settings
from streams.topics import admin_client

__all__ = ["BrokerStatus", "LocalBroker"]

MIN_JAVA = 17
_READY_TOPIC = "__cityops_ready"
_LOG4J = resources.files("streams.broker") / "log4j2.yaml"
# Brokers started by this process, kept so that they are reaped (no zombies) and so that Popen
# does not warn about a child it forgot while the broker is meant to outlive the handle.
_STARTED: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class _PidRecord:
    pid: int
    port: int
    kafka_version: str
    started_at: float


@dataclass(frozen=True)
class BrokerStatus:
    """What ``cityops broker status`` reports."""

    running: bool
    address: str
    data_dir: Path
    kafka_version: str
    pid: int | None = None
    started_at: float | None = None
    rss_bytes: int | None = None
    note: str | None = None

    def describe(self) -> str:
        """One human line (two with a note)."""
        if self.running:
            uptime = time.time() - (self.started_at or time.time())
            rss = f", RSS {self.rss_bytes / 2**20:.0f} MiB" if self.rss_bytes else ""
            line = (
                f"local broker running: Kafka {self.kafka_version} at {self.address},"
                f" pid {self.pid}, up {uptime:.0f} s{rss}, data {self.data_dir}"
            )
        else:
            line = f"local broker stopped (data {self.data_dir})"
        return line + (f"\n{self.note}" if self.note else "")


class LocalBroker:
    """Start, stop and inspect the local broker described by ``settings``.

    Every method is safe to call in any state: ``start`` on a running broker returns its
    status, ``stop`` on a stopped one does nothing, and a pid file left by a killed broker is
    detected, explained and removed.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.data_dir / "broker"
        self.pid_file = self.home / "broker.pid"
        self.config_file = self.home / "server.properties"
        self.kraft_dir = self.home / "kraft"
        self.log_dir = self.home / "logs"
        self.address = f"127.0.0.1:{settings.local_broker_port}"

    # --- inspection ------------------------------------------------------------------------
    def status(self) -> BrokerStatus:
        """Return the broker's state, clearing a stale pid file if it finds one."""
        record, note = self._read_pid_file()
        if record is None:
            return BrokerStatus(
                running=False,
                address=self.address,
                data_dir=self.home,
                kafka_version=kafka_version(),
                note=note,
            )
        return BrokerStatus(
            running=True,
            pid=record.pid,
            started_at=record.started_at,
            rss_bytes=_rss_bytes(record.pid),
            address=f"127.0.0.1:{record.port}",
            data_dir=self.home,
            kafka_version=record.kafka_version,
        )

    def log_tail(self, lines: int = 25) -> str:
        """Return the last ``lines`` lines of the broker's logs, for error messages."""
        parts = []
        for name in ("stdout.log", "server.log"):
            path = self.log_dir / name
            with contextlib.suppress(OSError):
                text = path.read_text(encoding="utf-8", errors="replace").strip()
                if text:
                    parts.append(f"--- {path} ---\n" + "\n".join(text.splitlines()[-lines:]))
        return "\n".join(parts) or "(the broker wrote no log)"

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> BrokerStatus:
        """Start the broker unless it runs already; return once it accepts topics.

        Raises
        ------
        BrokerStartError
            Java or Maven missing, the download failed, or the broker died or did not become
            ready in time; the message says which and carries the end of the broker log.
        PortInUseError
            The client or controller port is held by another process.
        """
        current = self.status()
        if current.running:
            return current
        java = _check_java()
        for port, what, env in (
            (self.settings.local_broker_port, "client", "CITYOPS_LOCAL_BROKER_PORT"),
            (self.settings.local_controller_port, "controller", "CITYOPS_LOCAL_CONTROLLER_PORT"),
        ):
            if not port_is_free(port):
                raise PortInUseError(
                    f"the local broker's {what} port {port} is in use by "
                    f"{describe_listener(port)}; stop that process or set {env}"
                )
        libs = resolve_jars(self.settings.cache_dir)
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        self.config_file.write_text(self._server_properties(), encoding="utf-8")
        classpath = f"{libs}/*"
        self._format_storage(java, classpath)

        started = time.time()
        with (self.log_dir / "stdout.log").open("wb") as out, resources.as_file(_LOG4J) as log4j:
            process = subprocess.Popen(  # noqa: S603 - fixed argument list, no shell
                [
                    java,
                    *self._jvm_options(log4j),
                    "-cp",
                    classpath,
                    "kafka.Kafka",
                    str(self.config_file),
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                # Its own session: Ctrl-C in the terminal that ran `cityops run` goes to the
                # worker only, and cityops stops the broker in order afterwards.
                start_new_session=True,
            )
        _STARTED[process.pid] = process
        self._write_pid_file(process.pid, started)
        self._wait_ready(process, started)
        return self.status()

    def stop(self, timeout_s: float = 60.0) -> bool:
        """Stop the broker (SIGTERM, then SIGKILL after ``timeout_s``); True if one ran."""
        record, _ = self._read_pid_file()
        if record is None:
            return False
        pid = record.pid
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not _wait_exit(pid, timeout_s):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            _wait_exit(pid, 10.0)
        self.pid_file.unlink(missing_ok=True)
        process = _STARTED.pop(pid, None)
        if process is not None:
            process.wait()
        return True

    # --- internals -------------------------------------------------------------------------
    def _server_properties(self) -> str:
        s = self.settings
        properties = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{s.local_controller_port}",
            "listeners": (
                f"PLAINTEXT://127.0.0.1:{s.local_broker_port},"
                f"CONTROLLER://127.0.0.1:{s.local_controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{s.local_broker_port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.kraft_dir),
            "num.partitions": str(s.topic_partitions),
            # One node: every internal topic has exactly one replica.
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # A lone worker should not wait 3 s for group members that will never come.
            "group.initial.rebalance.delay.ms": "0",
            # cityops creates its topics explicitly with the configured partitions; a typo in a
            # topic name should fail loudly, not create a one-partition topic.
            "auto.create.topics.enable": "false",
            # Two cores are shared with the workers: fewer threads, less memory, same speed.
            "num.network.threads": "2",
            "num.io.threads": "4",
            "log.retention.hours": "24",
        }
        return "".join(f"{key}={value}\n" for key, value in properties.items())

    def _jvm_options(self, log4j: Path) -> list[str]:
        heap = self.settings.local_broker_heap_mb
        return [
            f"-Xmx{heap}m",
            f"-Xms{min(heap, 128)}m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}",
            f"-Dkafka.logs.dir={self.log_dir}",
        ]

    def _format_storage(self, java: str, classpath: str) -> None:
        if (self.kraft_dir / "meta.properties").exists():
            return
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        result = subprocess.run(  # noqa: S603 - fixed argument list, no shell
            [
                java,
                "-cp",
                classpath,
                "kafka.tools.StorageTool",
                "format",
                # One argument: a base64 id may start with "-", which argparse would take for
                # an option (1 start in 64 failed that way).
                f"--cluster-id={cluster_id}",
                "--config",
                str(self.config_file),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise BrokerStartError(
                f"formatting the broker storage in {self.kraft_dir} failed:\n"
                + (result.stdout + result.stderr).strip()
            )

    def _wait_ready(self, process: subprocess.Popen[bytes], started: float) -> None:
        deadline = started + self.settings.local_broker_start_timeout_s
        probe = self.settings.model_copy(update={"broker_url": None})
        while time.time() < deadline:
            if process.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                _STARTED.pop(process.pid, None)
                raise BrokerStartError(
                    f"the local broker exited with code {process.returncode} while starting"
                    f"\n{self.log_tail()}"
                )
            if _accepts_topics(probe):
                return
            time.sleep(0.25)
        self.stop(timeout_s=10.0)
        raise BrokerStartError(
            f"the local broker did not accept topics within "
            f"{self.settings.local_broker_start_timeout_s:.0f} s"
            f" (CITYOPS_LOCAL_BROKER_START_TIMEOUT_S)\n{self.log_tail()}"
        )

    def _write_pid_file(self, pid: int, started: float) -> None:
        record = {
            "pid": pid,
            "port": self.settings.local_broker_port,
            "controller_port": self.settings.local_controller_port,
            "kafka_version": kafka_version(),
            "started_at": started,
        }
        self.pid_file.write_text(json.dumps(record), encoding="utf-8")

    def _read_pid_file(self) -> tuple[_PidRecord | None, str | None]:
        """Return (record, None) for a live broker, or (None, note) after clearing a stale one."""
        try:
            raw = json.loads(self.pid_file.read_text(encoding="utf-8"))
            record = _PidRecord(
                pid=int(raw["pid"]),
                port=int(raw["port"]),
                kafka_version=str(raw["kafka_version"]),
                started_at=float(raw["started_at"]),
            )
            pid = record.pid
        except FileNotFoundError:
            return None, None
        except (OSError, ValueError, KeyError, TypeError):
            self.pid_file.unlink(missing_ok=True)
            return None, f"removed an unreadable pid file {self.pid_file}"
        if _is_broker_process(pid, self.config_file):
            return record, None
        self.pid_file.unlink(missing_ok=True)
        return None, (
            f"removed a stale pid file: process {pid} is no longer the broker "
            "(it was killed or the machine restarted)"
        )


def _check_java() -> str:
    java = shutil.which("java")
    if java is None:
        raise BrokerStartError(
            f"Java {MIN_JAVA}+ is not on PATH; the local Kafka broker runs on it "
            "(Debian: apt-get install openjdk-17-jre-headless)"
        )
    result = subprocess.run(  # noqa: S603 - fixed argument list, no shell
        [java, "-version"], capture_output=True, text=True, check=False
    )
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if match is None:
        raise BrokerStartError(f"cannot tell the version of {java}: {result.stderr.strip()}")
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8" style
        major = int(match.group(2))
    if major < MIN_JAVA:
        raise BrokerStartError(f"Kafka 4 needs Java {MIN_JAVA}+, but {java} is Java {major}")
    return java


def _accepts_topics(settings: Settings) -> bool:
    try:
        admin = admin_client(settings, timeout_s=2.0)
    except BrokerUnreachableError:
        return False
    try:
        admin.create_topics([NewTopic(_READY_TOPIC, 1, 1)])
    except TopicAlreadyExistsError:
        return True
    except KafkaError:
        return False
    finally:
        admin.close()
    return True


def _process_state(pid: int) -> str | None:
    """Return the /proc state letter of ``pid`` (``'Z'`` for a zombie), None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def _is_broker_process(pid: int, config_file: Path) -> bool:
    if _process_state(pid) in (None, "Z"):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"kafka.Kafka" in cmdline and str(config_file).encode() in cmdline


def _wait_exit(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        # A zombie has exited: init reaps it, or stop() does through _STARTED if it is ours.
        if _process_state(pid) in (None, "Z"):
            return True
        time.sleep(0.1)
    return False


def _rss_bytes(pid: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return None
