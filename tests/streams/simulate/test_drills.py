"""Every shipped scenario as a drill on the real broker: ``cityops drill`` runs it from clean
state on the event clock, and the incidents and escalations it expects come out."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from streams.simulate.scenario import load_scenario, scenario_names
from tests.helpers import run_cli

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("name", scenario_names())
def test_the_scenario_s_expected_incidents_and_escalations_come_out(
    name: str, broker_env: dict[str, str], kafka_bootstrap: str, tmp_path: Path
) -> None:
    report = tmp_path / "drill.json"
    result = run_cli(["drill", name, "--json", str(report)], broker_env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    evaluation = orjson.loads(report.read_bytes())
    scenario = load_scenario(name)
    assert evaluation["passed"] is True
    assert len(evaluation["expectations"]) == len(scenario.expect)
    for expectation, expect in zip(evaluation["expectations"], scenario.expect, strict=True):
        assert expectation["met"], expectation
        assert len(expectation["incidents"]) == expect.count
    incidents = {row["incident_id"]: row for row in evaluation["incidents"]}
    for expect, expectation in zip(scenario.expect, evaluation["expectations"], strict=True):
        for incident_id in expectation["incidents"]:
            row = incidents[incident_id]
            assert row["category"] == expect.category.value
            assert row["opened_after_s"] <= expect.within_s
            if expect.escalations is not None:
                assert row["escalations"] == expect.escalations
            if expect.closed:
                assert set(row["stages_s"]) == {"discover", "respond", "dispose", "feedback"}
    assert evaluation["totals"]["incidents"] == len(incidents)
    assert "PASSED" in result.stdout
