"""The command line answers wrong use with one line and a non-zero exit, never a traceback."""

from __future__ import annotations

import json

import pytest

from tests.conftest import free_port
from tests.helpers import one_line_error, run_cli


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["frobnicate"], "invalid choice: 'frobnicate'"),  # unknown command
        (["broker", "restart"], "invalid choice: 'restart'"),  # unknown broker action
        ([], "required: COMMAND"),  # no command at all
        (["config", "--yaml"], "unrecognized arguments: --yaml"),  # unknown option
    ],
)
def test_wrong_use_is_one_line_and_exit_2(
    args: list[str], expected: str, isolated_env: dict[str, str]
) -> None:
    result = run_cli(args, isolated_env)
    assert result.returncode == 2
    assert expected in one_line_error(result)


def test_invalid_setting_names_the_variable(isolated_env: dict[str, str]) -> None:
    result = run_cli(["config"], {**isolated_env, "CITYOPS_WEB_PORT": "eighty"})
    assert result.returncode == 2
    assert "web_port" in one_line_error(result)


def test_config_prints_effective_settings_with_secrets_masked(
    isolated_env: dict[str, str],
) -> None:
    env = {**isolated_env, "CITYOPS_SASL_PASSWORD": "s3cret-value", "CITYOPS_WEB_PORT": "7001"}
    text = run_cli(["config"], env)
    assert text.returncode == 0, text.stderr
    assert "s3cret-value" not in text.stdout
    assert "CITYOPS_SASL_PASSWORD=**********" in text.stdout.splitlines()
    assert "CITYOPS_WEB_PORT=7001" in text.stdout.splitlines()
    as_json = json.loads(run_cli(["config", "--json"], env).stdout)
    assert as_json["CITYOPS_TOPICS__SENSOR_READINGS"] == "sensor.readings"
    assert as_json["CITYOPS_TOPIC_PREFIX"] == isolated_env["CITYOPS_TOPIC_PREFIX"]


def test_worker_with_unreachable_configured_broker_fails_in_one_line(
    isolated_env: dict[str, str],
) -> None:
    port = free_port()  # nothing listens there
    result = run_cli(["worker"], {**isolated_env, "CITYOPS_BROKER_URL": f"127.0.0.1:{port}"})
    assert result.returncode == 1
    line = one_line_error(result)
    assert f"127.0.0.1:{port}" in line
    assert "connection refused" in line


def test_worker_without_any_broker_says_how_to_get_one(isolated_env: dict[str, str]) -> None:
    env = {**isolated_env, "CITYOPS_LOCAL_BROKER_PORT": str(free_port())}
    result = run_cli(["worker"], env)
    assert result.returncode == 1
    assert "cityops broker start" in one_line_error(result)
