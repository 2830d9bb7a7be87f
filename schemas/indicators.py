"""Indicators: what a command-centre screen shows for the city, a county or a town.

Published on ``screens.indicators``, keyed by area code, every few seconds
(``CITYOPS_INDICATORS_INTERVAL_S``), in full each time: a screen keeps the latest per area. The
numbers are the same whichever worker holds which partition: every worker contributes its share
and one worker per area adds them up (``streams/indicators.py``).

"Today" is the calendar day of the clock in force in the city's time zone
(``CITYOPS_TIMEZONE``). An incident counts in every town and county its evidence came from, and
once in the city; a case merged into a city incident counts as that city incident only.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import Field, StringConstraints

from schemas.common import Contract, Timestamp
from schemas.incidents import Category, Severity

__all__ = ["INDICATORS_VERSION", "AreaLevel", "Indicators", "LoopStage", "Rate"]

INDICATORS_VERSION: Final = 1

_Code = Annotated[str, StringConstraints(pattern=r"^[0-9]{4,15}$")]
_Count = Annotated[int, Field(ge=0)]


class AreaLevel(StrEnum):
    """The level of an area with its own screen."""

    CITY = "city"
    COUNTY = "county"
    TOWN = "town"


class LoopStage(StrEnum):
    """The four stages of the closed loop (闭环), each timed per case."""

    DISCOVER = "discover"
    """发现: first evidence → the case dispatched."""
    RESPOND = "respond"
    """响应: dispatched to its current owner → acknowledged."""
    DISPOSE = "dispose"
    """处置: acknowledged → resolved."""
    FEEDBACK = "feedback"
    """反馈: resolved → closed."""


class Rate(Contract):
    """A share with what it was counted from, so that a screen can show ``2/3`` or ``67 %``."""

    numerator: _Count
    denominator: _Count
    value: float | None = Field(ge=0, le=1)
    """``numerator / denominator``; ``None`` when nothing was counted yet."""

    @classmethod
    def of(cls, numerator: int, denominator: int) -> Rate:
        """Return the rate of ``numerator`` in ``denominator`` (``value`` is at most 1)."""
        value = min(numerator / denominator, 1.0) if denominator else None
        return cls(numerator=numerator, denominator=denominator, value=value)


class Indicators(Contract):
    """One area's indicators at one moment. On ``screens.indicators``, keyed by ``area``."""

    schema_version: Literal[1] = INDICATORS_VERSION
    area: _Code
    area_name: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    level: AreaLevel
    at: Timestamp
    """The clock the numbers were taken on (the wall clock live, event time in drills)."""
    day: dt.date
    """The day "today" means, in the city's time zone."""
    open_by_severity: dict[Severity, _Count]
    """Cases not yet closed, by severity (every level present)."""
    open_by_category: dict[Category, _Count]
    """Cases not yet closed, by category (every category present)."""
    open_total: _Count
    incidents_today: _Count
    """Cases whose first evidence was today."""
    acknowledge_on_time: Rate
    """按时签收率, over today's cases: acknowledged without missing an acknowledge deadline, of
    those acknowledged or past an acknowledge deadline."""
    dispose_on_time: Rate
    """按期处置率, over today's cases: resolved without missing a dispose deadline, of those
    resolved or past a dispose deadline."""
    escalation: Rate
    """Today's cases that climbed a tier at least once, of today's cases."""
    mean_stage_s: dict[LoopStage, float | None]
    """Mean seconds of each closed-loop stage over today's cases that went through it
    (``None`` when none did)."""
    devices_registered: _Count
    """Active devices registered with a position in the area."""
    devices_online: _Count
    """Of those that reported, the ones not silent beyond their absence allowance."""
    device_online: Rate
    """``devices_online`` of ``devices_registered``."""
    events_per_s: float = Field(ge=0)
    """Located events per second over the last minute (wall clock)."""
