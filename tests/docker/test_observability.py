"""The observability files in ``docker/`` are valid and agree with the code.

Proves that Prometheus accepts ``docker/prometheus`` (configuration, targets and rules), that
the rules' unit tests pass and cover every alert, that every query of the Grafana dashboard is
valid PromQL over metrics cityops exports, and that Grafana's provisioning, ``compose.yml`` and
the Dockerfile refer to files and settings that exist. Docker itself is not needed: nothing is
built or started (``docker/README.md``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from streams.metrics import Metrics
from streams.settings import ENV_PREFIX, Settings
from tests.conftest import missing

DOCKER = Path(__file__).resolve().parents[2] / "docker"
PROMETHEUS = DOCKER / "prometheus"
RULES = PROMETHEUS / "rules" / "cityops.yml"
RULE_TESTS = PROMETHEUS / "rules" / "cityops_test.yml"
GRAFANA = DOCKER / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "cityops.json"

# Concrete values for the dashboard's variables, so that its queries become plain PromQL.
DASHBOARD_VARIABLES = {
    "$__rate_interval": "1m",
    "$county": "yuancheng",
    "$instance": "127.0.0.1:6066",
}
LOOP_STAGES = {"discover": "发现", "respond": "响应", "dispose": "处置", "feedback": "反馈"}


# --- promtool -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        missing("promtool is not installed (Debian: apt-get install prometheus)")
    return path


def run_promtool(promtool: str, *args: str, cwd: Path) -> str:
    """Run promtool in ``cwd``, fail with its output unless it succeeds, return the output."""
    result = subprocess.run(
        [promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"promtool {' '.join(args)} failed:\n{output}"
    return output


def rules() -> list[dict[str, Any]]:
    """Every recording and alerting rule of cityops.yml."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_prometheus_config_and_targets_are_valid(promtool: str) -> None:
    # check config also reads the rule files and every file_sd file the globs match.
    run_promtool(promtool, "check", "config", "prometheus.yml", cwd=PROMETHEUS)
    sample = yaml.safe_load((PROMETHEUS / "targets" / "local.yml").read_text())
    assert sample == [{"targets": ["127.0.0.1:6066"]}]


def test_rules_are_valid_and_all_read_here(promtool: str) -> None:
    output = run_promtool(promtool, "check", "rules", RULES.name, cwd=RULES.parent)
    found = re.search(r"SUCCESS: (\d+) rules found", output)
    assert found is not None, output
    # The other tests read the rules with _parse_yaml: it must see what promtool sees.
    assert len(rules()) == int(found[1])


def test_rule_unit_tests_pass(promtool: str) -> None:
    run_promtool(promtool, "test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)


def test_every_alert_is_unit_tested() -> None:
    alerts = {rule["alert"] for rule in rules() if "alert" in rule}
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    cases = [case for test in tests for case in test.get("alert_rule_test", [])]
    firing = {case["alertname"] for case in cases if case["exp_alerts"]}
    assert alerts - firing == set(), "alerts without a unit test in which they fire"
    assert {case["alertname"] for case in cases} <= alerts, "unit tests of unknown alerts"


def test_alerts_have_severity_and_annotations() -> None:
    for rule in (rule for rule in rules() if "alert" in rule):
        assert rule["labels"]["severity"] in {"page", "ticket"}, rule["alert"]
        assert set(rule["annotations"]) == {"summary", "description"}, rule["alert"]


# --- the dashboard --------------------------------------------------------------------------


def dashboard() -> dict[str, Any]:
    result: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return result


def dashboard_queries() -> dict[str, str]:
    """Every query of the dashboard, by a name that says where it is, variables substituted.

    A variable's ``label_values(<selector>, <label>)`` contributes its selector.
    """
    board = dashboard()
    queries = {
        f"panel{panel['id']}_{target['refId']}": target["expr"]
        for panel in board["panels"]
        for target in panel["targets"]
    }
    for variable in board["templating"]["list"]:
        selector = re.fullmatch(r"label_values\((.+),\s*\w+\)", variable["query"])
        assert selector is not None, variable["query"]
        queries[f"variable_{variable['name']}"] = selector[1]
    return {name: _substitute(expr) for name, expr in queries.items()}


def _substitute(expr: str) -> str:
    for variable, value in DASHBOARD_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"a dashboard variable without a test value in {expr!r}"
    return expr


def test_dashboard_identity_and_variables() -> None:
    board = dashboard()
    assert (board["uid"], board["title"], board["schemaVersion"]) == ("cityops", "cityops", 39)
    variables = {variable["name"]: variable for variable in board["templating"]["list"]}
    assert set(variables) == {"county", "instance"}
    assert all(variable["query"].startswith("label_values(") for variable in variables.values())


def test_dashboard_panels_have_unique_ids_and_targets() -> None:
    panels = dashboard()["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {sorted(ids)}"
    for panel in panels:
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        assert all(target.get("expr") for target in panel["targets"]), panel["title"]


def test_dashboard_times_the_four_loop_stages() -> None:
    titles = {
        stage: [
            panel["title"]
            for panel in dashboard()["panels"]
            if any(f'stage="{stage}"' in target["expr"] for target in panel["targets"])
        ]
        for stage in LOOP_STAGES
    }
    for stage, name in LOOP_STAGES.items():
        assert len(titles[stage]) == 1, (stage, titles[stage])
        assert name in titles[stage][0]


def test_dashboard_queries_are_valid_promql(promtool: str, tmp_path: Path) -> None:
    # Each query as a recording rule: promtool check rules parses every expression. JSON is
    # YAML, so the file needs no YAML writer.
    records = [
        {"record": f"dashboard:{name}", "expr": expr} for name, expr in dashboard_queries().items()
    ]
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": records}]}))
    run_promtool(promtool, "check", "rules", path.name, cwd=tmp_path)


def exported_metric_names() -> set[str]:
    """The series names a worker's cityops metrics can expose, from a fresh registry."""
    registry = CollectorRegistry()
    Metrics.create(registry)
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
    return {
        family.name + suffix
        for family in registry.collect()
        for suffix in suffixes.get(family.type, [""])
    }


def test_dashboard_and_rules_use_only_exported_metrics() -> None:
    expressions = [*dashboard_queries().values(), *(rule["expr"] for rule in rules())]
    used = {name for expr in expressions for name in re.findall(r"\bcityops_\w+", expr)}
    assert used, "no cityops metric found in the queries: the pattern is wrong"
    assert used - exported_metric_names() == set(), "not in streams.metrics.Metrics"


# --- Grafana provisioning, compose and the Dockerfile ---------------------------------------


def compose() -> dict[str, Any]:
    result: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yml").read_text())
    return result


def test_grafana_datasource_is_the_one_the_dashboard_uses() -> None:
    provisioned = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    (source,) = provisioned["datasources"]
    assert (source["name"], source["uid"], source["type"]) == (
        "Prometheus",
        "prometheus",
        "prometheus",
    )
    assert source["url"] == "http://prometheus:9090"
    board = dashboard()
    used = [panel["datasource"] for panel in board["panels"]]
    used += [target["datasource"] for panel in board["panels"] for target in panel["targets"]]
    used += [variable["datasource"] for variable in board["templating"]["list"]]
    assert all(ds == {"type": "prometheus", "uid": source["uid"]} for ds in used)


def test_grafana_loads_dashboards_from_the_mounted_directory() -> None:
    provisioned = yaml.safe_load((GRAFANA / "provisioning/dashboards/cityops.yml").read_text())
    (provider,) = provisioned["providers"]
    assert provider["type"] == "file"
    mounts = dict(volume.split(":")[:2] for volume in compose()["services"]["grafana"]["volumes"])
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]


def test_compose_mounts_existing_files() -> None:
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source.startswith("./"), f"{name}: only files of docker/ are mounted"
            assert (DOCKER / source).exists(), f"{name} mounts {source}, which does not exist"


def test_containers_set_only_real_settings() -> None:
    text = (DOCKER / "Dockerfile").read_text() + (DOCKER / "compose.yml").read_text()
    names = set(re.findall(rf"\b{ENV_PREFIX}(\w+)", text))
    assert {"BROKER_URL", "WEB_HOST"} <= names
    unknown = {name for name in names if name.split("__")[0].lower() not in Settings.model_fields}
    assert unknown == set(), f"not settings of streams/settings.py: {unknown}"
