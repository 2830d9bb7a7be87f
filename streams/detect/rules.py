"""Detection rules as data: a TOML file validated by pydantic, reloadable without a restart.

A rule set has a ``version`` and rules of five types, each rule with an ``id`` and a ``version``
that every incident it raises carries (its lineage):

``[[threshold]]``
    A sensor kind (and unit) crossing levels mapped to severities, raised after N consecutive
    readings and/or a sustained duration, cleared below a separate level after its own count and
    duration (hysteresis: an oscillating sensor gives one incident, not many).
``[[video]]``
    A video event type confirmed by ``count`` events at or above ``min_confidence`` in one grid
    cell within ``window_s``; cleared after ``clear_after_s`` without confirmed events.
``[[corroboration]]``
    A sensor incident of one category and a video event of related types in the same or a
    neighbouring cell within ``window_s``: the incident's severity goes up one level.
``[absence]``
    A device silent for ``multiple`` times its expected interval: a device-offline incident for its
    owning department, cleared when it reports again.
``[quality]``
    Stuck values, physically impossible values and clock skew: flagged and counted, never used
    for an operational incident.

The shipped Heyuan rule set is ``streams/detect/heyuan.toml``; ``CITYOPS_RULES_FILE`` points at
another. :func:`load_rules` raises :class:`RulesError` naming the rule and the field at fault.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import (
    Field,
    StringConstraints,
    model_validator,
)

from schemas import UNITS, Category, RuleRef, SensorKind, Severity, VideoEventType
from schemas.exceptions import CityOpsError
from streams.datafile import DataModel, parse_toml

__all__ = [
    "DEFAULT_RULES",
    "AbsenceRule",
    "CorroborationRule",
    "Level",
    "QualityRule",
    "RuleSet",
    "RulesError",
    "ThresholdRule",
    "VideoRule",
    "load_rules",
]

DEFAULT_RULES = Path(__file__).with_name("heyuan.toml")
"""The rule set shipped for Heyuan."""

_RuleId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
_Text = Annotated[str, StringConstraints(min_length=1, max_length=128)]
_Seconds = Annotated[float, Field(ge=0, le=30 * 86_400)]


class RulesError(CityOpsError):
    """A rules file that cannot be used; the rules in force stay."""


class _Rule(DataModel):
    id: _RuleId
    """Unique in the file; incidents name it."""
    version: int = Field(ge=1)
    """Raise it whenever the rule's meaning changes."""

    @property
    def ref(self) -> RuleRef:
        """The rule's id and version, as incidents carry them."""
        return RuleRef(id=self.id, version=self.version)


class _Raises(_Rule):
    title: _Text
    """What a screen shows, e.g. ``河道水位超警``."""
    category: Category
    department: _Text
    """The responsible department (水务, 应急管理, 消防救援 …)."""
    gbt30428: _Text | None = None
    """The GB/T 30428 事件 class (大类/小类), where one fits."""


class Level(DataModel):
    """One severity level of a threshold rule."""

    severity: Severity
    value: float
    """The reading reaches this level at or beyond this value (beyond: in ``direction``)."""


class ThresholdRule(_Raises):
    """A sensor kind's readings crossing levels, with hysteresis."""

    kind: SensorKind
    unit: Annotated[str, StringConstraints(min_length=1, max_length=16)]
    """Readings in another unit are not compared (a different scale)."""
    direction: Literal["above", "below"] = "above"
    levels: Annotated[list[Level], Field(min_length=1, max_length=4)]
    """From the mildest to the gravest level."""
    raise_after: int = Field(default=1, ge=1, le=1_000)
    """Consecutive readings at or beyond the mildest level needed to raise."""
    raise_for_s: _Seconds = 0
    """… and for at least this long (event time) since the first of them."""
    clear_at: float
    """Back on the safe side of this value (below it, for ``above``) counts toward clearing;
    between it and the mildest level nothing changes (the hysteresis band)."""
    clear_after: int = Field(default=1, ge=1, le=1_000)
    """Consecutive readings on the safe side needed to clear."""
    clear_for_s: _Seconds = 0
    """… and for at least this long since the first of them."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.unit not in UNITS[self.kind]:
            allowed = ", ".join(sorted(UNITS[self.kind]))
            raise ValueError(f"unit {self.unit!r} is not one of {self.kind.value}'s: {allowed}")
        sign = 1 if self.direction == "above" else -1
        values = [level.value * sign for level in self.levels]
        ranks = [level.severity.rank for level in self.levels]
        if values != sorted(set(values)) or ranks != sorted(set(ranks)):
            raise ValueError("levels must go from the mildest to the gravest, values strictly")
        if self.clear_at * sign >= values[0]:
            raise ValueError(
                f"clear_at {self.clear_at} must be on the safe side of the mildest level"
                f" {self.levels[0].value} (it would never leave the raised state)"
            )
        return self

    def severity_of(self, value: float) -> Severity | None:
        """Return the gravest level ``value`` reaches, or None below the mildest."""
        reached = None
        for level in self.levels:
            if (value >= level.value) if self.direction == "above" else (value <= level.value):
                reached = level.severity
        return reached

    def is_clear(self, value: float) -> bool:
        """Whether ``value`` is on the safe side of ``clear_at``."""
        return value < self.clear_at if self.direction == "above" else value > self.clear_at


class VideoRule(_Raises):
    """A video event type confirmed by several events in one cell."""

    event_type: VideoEventType
    severity: Severity
    min_confidence: float = Field(ge=0, le=1)
    count: int = Field(default=1, ge=1, le=100)
    """Events at or above ``min_confidence`` in one cell …"""
    window_s: _Seconds = 0
    """… within this many seconds of event time."""
    clear_after_s: float = Field(gt=0, le=30 * 86_400)
    """No confirming event for this long clears the incident."""


class CorroborationRule(_Rule):
    """A sensor condition seen on video nearby: one level more severe."""

    category: Category
    """The category of the sensor incidents it raises."""
    video_types: Annotated[list[VideoEventType], Field(min_length=1)]
    min_confidence: float = Field(ge=0, le=1)
    window_s: float = Field(gt=0, le=86_400)
    """The video event and the sensor evidence at most this far apart in event time."""
    neighbours: bool = True
    """Count video in the cells next to the incident's cells, not only in them."""


class AbsenceRule(_Rule):
    """Devices that stop reporting."""

    title: _Text
    multiple: float = Field(gt=1, le=100)
    """Silent for more than this many expected intervals raises the incident."""
    severity: Severity = Severity.IV


class QualityRule(DataModel):
    """What makes a reading unusable for detection (flagged and counted, not an incident)."""

    stuck_after: int = Field(default=10, ge=2, le=10_000)
    """The same value this many times in a row: the further repeats are flagged ``stuck``."""
    clock_skew_s: float = Field(default=120, gt=0)
    """Observed this far after ingest located it: the device clock is ahead, flagged
    ``clock_skew`` (it must not move the county's event time forward)."""
    plausible: dict[SensorKind, tuple[float, float]] = {}
    """Per kind, the physically possible [low, high]; outside is flagged ``impossible``."""

    @model_validator(mode="after")
    def _ranges(self) -> Self:
        for kind, (low, high) in self.plausible.items():
            if low >= high:
                raise ValueError(f"plausible range of {kind.value} is empty: [{low}, {high}]")
        return self


class RuleSet(DataModel):
    """Everything detection decides by, as loaded from one file."""

    version: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    """The version of the whole set; incidents record it."""
    reopen_window_s: _Seconds = 3_600
    """New evidence this soon after an incident cleared makes it active again instead of
    raising a new one."""
    evidence_window_s: _Seconds = 600
    """Evidence in a cell next to an active incident's cells joins it (one problem across a
    town line) when it is this close in event time to the incident's last evidence."""
    quality: QualityRule = QualityRule()
    threshold: list[ThresholdRule] = []
    video: list[VideoRule] = []
    corroboration: list[CorroborationRule] = []
    absence: AbsenceRule | None = None

    @model_validator(mode="after")
    def _unique(self) -> Self:
        rules: list[_Rule] = [*self.threshold, *self.video, *self.corroboration]
        if self.absence:
            rules.append(self.absence)
        for counter, what in (
            (Counter(rule.id for rule in rules), "rule id"),
            (Counter(f"{r.kind.value} in {r.unit}" for r in self.threshold), "threshold for"),
            (Counter(r.event_type.value for r in self.video), "video rule for"),
            (Counter(r.category.value for r in self.corroboration), "corroboration of"),
        ):
            repeated = sorted(name for name, count in counter.items() if count > 1)
            if repeated:
                raise ValueError(f"{what} {', '.join(repeated)} appears more than once")
        return self

    def thresholds(self) -> dict[tuple[SensorKind, str], ThresholdRule]:
        """Threshold rules by (kind, unit)."""
        return {(rule.kind, rule.unit): rule for rule in self.threshold}

    def videos(self) -> dict[VideoEventType, VideoRule]:
        """Video rules by event type."""
        return {rule.event_type: rule for rule in self.video}


def load_rules(path: Path) -> RuleSet:
    """Read and validate the rules file at ``path``.

    Raises
    ------
    RulesError
        The file is missing, not TOML, or not a valid rule set; the message names the place.
    """
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise RulesError(f"cannot read rules file {path}: {exc.strerror}") from None
    return parse_rules(text, str(path))


def parse_rules(text: bytes, where: str = "rules") -> RuleSet:
    """Validate the TOML ``text`` as a rule set (see :func:`load_rules`)."""
    return parse_toml(text, RuleSet, where, "a valid rule set", RulesError)


def digest(text: bytes) -> str:
    """Return a short fingerprint of a rules file's bytes, to notice a change."""
    return hashlib.sha256(text).hexdigest()[:12]
