"""Suite-wide fixtures: a real Kafka broker, and isolated settings for every test.

The broker is the project's own local broker (``streams.broker.LocalBroker``) in a temporary
data directory on free ports, started once per session, unless ``CITYOPS_BROKER_URL`` names one
to use. Without Java or Maven, integration tests are skipped locally; with ``CI=true`` that is a
failure, as is any broker that cannot start.
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from geo import GridIndex, Hierarchy, load_heyuan
from schemas.exceptions import CityOpsError
from streams.broker import LocalBroker
from streams.settings import Settings
from streams.topics import check_reachable

# The suite builds its own settings; stray CITYOPS_* variables from a developer's shell must
# not leak into tests (the broker URL is the one deliberate input).
_EXTERNAL_BROKER = os.environ.get("CITYOPS_BROKER_URL") or None
for _name in [name for name in os.environ if name.startswith("CITYOPS_")]:
    del os.environ[_name]
IN_CI = os.environ.get("CI", "").lower() == "true"


def missing(what: str) -> NoReturn:
    """Skip a test whose prerequisite is missing locally; fail it in CI, which must have it."""
    if IN_CI:
        pytest.fail(f"{what} (CI=true: a missing prerequisite is a failure, not a skip)")
    pytest.skip(what)


_SKIPPED_IN_CI: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """In CI, remember every skip, whatever its cause."""
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        _SKIPPED_IN_CI.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI, a run that skipped anything has not tested everything: fail it."""
    if _SKIPPED_IN_CI and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print(f"\nCI=true: {len(_SKIPPED_IN_CI)} skipped test(s) fail the run:", *_SKIPPED_IN_CI)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def heyuan() -> Hierarchy:
    """The bundled Heyuan hierarchy; about a second to load (shared: do not modify)."""
    return load_heyuan()


@pytest.fixture(scope="session")
def heyuan_index(heyuan: Hierarchy) -> GridIndex:
    """A locator over the bundled Heyuan hierarchy (shared: do not modify)."""
    return GridIndex(heyuan)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of a running Kafka broker for the whole session."""
    if _EXTERNAL_BROKER is not None:
        settings = Settings(broker_url=_EXTERNAL_BROKER)
        check_reachable(settings)
        yield settings.bootstrap_servers[0]
        return
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("broker"),
        local_broker_port=free_port(),
        local_controller_port=free_port(),
    )
    broker = LocalBroker(settings)
    try:
        broker.start()
    except CityOpsError as exc:
        missing(f"the Kafka broker could not start: {exc}")
    try:
        yield settings.bootstrap_servers[0]
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def java() -> str:
    """Path of the ``java`` the local broker runs on."""
    path = shutil.which("java")
    if path is None:
        missing("no Java runtime on PATH")
    return path


@pytest.fixture
def isolated_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a cityops subprocess with its own app id, topics, ports and data."""
    run = uuid.uuid4().hex[:8]
    env = {name: value for name, value in os.environ.items() if not name.startswith("CITYOPS_")}
    env.update(
        CITYOPS_APP_ID=f"test-{run}",
        CITYOPS_TOPIC_PREFIX=f"test-{run}.",
        CITYOPS_TOPIC_PARTITIONS="2",
        CITYOPS_DATA_DIR=str(tmp_path / "data"),
        CITYOPS_WEB_PORT=str(free_port()),
        CITYOPS_STORE="memory",
        CITYOPS_BROKER_CONNECT_TIMEOUT_S="3",
        # A killed worker's partitions move on after this; the default 30 s would slow tests.
        CITYOPS_SESSION_TIMEOUT_S="8",
    )
    return env


@pytest.fixture
def broker_env(isolated_env: dict[str, str], kafka_bootstrap: str) -> dict[str, str]:
    """:func:`isolated_env` pointed at the session's broker."""
    return {**isolated_env, "CITYOPS_BROKER_URL": f"kafka://{kafka_bootstrap}"}
