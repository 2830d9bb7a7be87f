"""The escalation policy file: the shipped one is complete, a wrong one is refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas import Category, Severity
from schemas.cases import Tier
from streams.escalate.policy import DEFAULT_POLICY, PolicyError, load_policy
from tests.streams.escalate.scene import FAST_POLICY


def test_the_shipped_policy_routes_every_category_at_every_tier() -> None:
    policy = load_policy(DEFAULT_POLICY)
    assert set(policy.severity) == set(Severity)
    routed = {category for category, tiers in policy.routing.items() if set(tiers) == set(Tier)}
    assert routed == set(Category) - {Category.DEVICE_OFFLINE}  # the device's own department
    assert policy.severity[Severity.I].first_tier is Tier.CITY
    assert set(policy.severity[Severity.I].notify) == {Tier.TOWN, Tier.COUNTY}
    assert policy.department(Category.DEVICE_OFFLINE, Tier.TOWN, "城管") == "城管"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("[severity.I]\n", "[severity.X]\n"), "severity.X"),
        (lambda t: t.split("[severity.I]")[0], "severity I missing"),
        (
            lambda t: t.replace("dispose_s = 600 }", "dispose_s = 1 }", 1),
            "dispose_s must be longer",
        ),
        (
            lambda t: t.replace(
                "deadlines.city = { acknowledge_s = 2, dispose_s = 600 }\n[severity.III]",
                "[severity.III]",
            ),
            "deadlines missing for tier city",
        ),
        (
            lambda t: t.replace('first_tier = "city"', 'first_tier = "city"\nnotify = ["city"]'),
            "notify lists",
        ),
        (lambda t: t + "\nescalate_faster = true\n", "escalate_faster"),
        (lambda t: t + "\n[[[", "not valid TOML"),
    ],
)
def test_a_wrong_policy_is_refused_with_the_place_named(
    tmp_path: Path, edit: object, message: str
) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(edit(FAST_POLICY), encoding="utf-8")  # type: ignore[operator]
    with pytest.raises(PolicyError, match=message):
        load_policy(path)


def test_a_missing_policy_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy(tmp_path / "nope.toml")
