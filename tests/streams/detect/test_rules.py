"""The rules file: the shipped Heyuan set is valid and complete; bad files are refused with
the place and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas import Category, SensorKind, Severity
from streams.detect.rules import DEFAULT_RULES, RulesError, load_rules, parse_rules

MINIMAL = b"""
version = "t-1"
[[threshold]]
id = "flood.level"
version = 1
title = "water"
category = "flood"
department = "water"
kind = "water_level"
unit = "m"
levels = [{ severity = "IV", value = 3.0 }, { severity = "III", value = 4.0 }]
clear_at = 2.5
"""


def test_the_shipped_rules_cover_heyuans_themes() -> None:
    rules = load_rules(DEFAULT_RULES)
    raised = {rule.category for rule in [*rules.threshold, *rules.video]}
    assert raised >= {
        Category.FLOOD,
        Category.AIR_QUALITY,
        Category.FIRE_SMOKE,
        Category.COMBUSTIBLE_GAS,
        Category.MANHOLE_COVER,
        Category.TRAFFIC,
        Category.CROWDING,
        Category.CITY_APPEARANCE,
    }
    departments = {rule.department for rule in [*rules.threshold, *rules.video]}
    assert departments >= {
        "水务",
        "应急管理",
        "消防救援",
        "生态环境",
        "交通运输",
        "公安",
        "城管",
        "文广旅体",
    }
    assert rules.absence is not None
    assert {rule.category for rule in rules.corroboration} <= raised
    assert all(rule.version >= 1 for rule in [*rules.threshold, *rules.video])


def test_a_minimal_file_loads_with_defaults() -> None:
    rules = parse_rules(MINIMAL)
    (rule,) = rules.threshold
    assert rule.severity_of(3.5) is Severity.IV
    assert rule.severity_of(4.0) is Severity.III
    assert rule.severity_of(2.9) is None
    assert rule.is_clear(2.4)
    assert not rule.is_clear(2.6)
    assert rules.thresholds()[(SensorKind.WATER_LEVEL, "m")] is rule
    assert rules.absence is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (b"\nsurprise = 1\n", "surprise: Extra inputs are not permitted"),
        (b"[[", "is not valid TOML"),
        (b"\n[quality.plausible]\npm25 = [5.0, 1.0]\n", "plausible range of pm25 is empty"),
    ],
)
def test_bad_files_name_the_place_and_reason(change: bytes, expected: str) -> None:
    with pytest.raises(RulesError, match=expected):
        parse_rules(MINIMAL + change)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (b"clear_at = 2.5", b"clear_at = 3.5", r"threshold\[0\] \(id flood.level\).*safe side"),
        (b'unit = "m"', b'unit = "ft"', "unit 'ft' is not one of water_level's: m"),
        (b'kind = "water_level"', b'kind = "lava"', r"threshold\[0\] \(id flood.level\)\.kind"),
        (b"value = 4.0", b"value = 2.8", "mildest to the gravest"),
        (b'severity = "III"', b'severity = "V"', "severity"),
        (b'id = "flood.level"', b'id = "Flood Level"', "id"),
    ],
)
def test_invalid_rules_are_refused(old: bytes, new: bytes, expected: str) -> None:
    assert old in MINIMAL
    with pytest.raises(RulesError, match=expected):
        parse_rules(MINIMAL.replace(old, new, 1))


def test_a_rule_id_may_appear_once() -> None:
    twice = MINIMAL + b"[[threshold]]" + MINIMAL.split(b"[[threshold]]")[1]
    with pytest.raises(RulesError, match=r"flood\.level appears more than once"):
        parse_rules(twice)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot read rules file"):
        load_rules(tmp_path / "nope.toml")
