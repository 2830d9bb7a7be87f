"""Indicators for screens, correct whichever worker holds which partition.

A case lives on the partition of its incident id, a device's state on the partition of its
county: the cases of one town are spread over every partition, and so over every worker. So each
worker computes, for every partition it owns, that partition's *share* of every area's numbers
(counts, sums), and sends each share that changed to ``indicators.parts``, keyed
``area|source`` and placed on the area's partition. The worker owning an area's partition keeps
the latest share of every source in the ``indicators`` table and adds them up each
``CITYOPS_INDICATORS_INTERVAL_S`` into :class:`~schemas.indicators.Indicators` on
``screens.indicators``.

A share is a full replacement, not a delta: a redelivered or repeated share changes nothing, and
when a partition moves the new owner sends its shares afresh. An incident counts once in each of
its towns and counties and once in the city, so every level is counted at the source rather than
rolled up (which would count an incident in two towns twice in their county).

This module holds the arithmetic, without a broker; ``register_indicators`` wires it to Faust.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import orjson

from geo import GridIndex
from schemas import Case, Category, Device, DeviceType, Severity, Stage
from schemas.indicators import AreaLevel, Indicators, LoopStage, Rate

__all__ = [
    "EVENT_WINDOW_S",
    "SEP",
    "EventRates",
    "Shares",
    "case_shares",
    "device_shares",
    "indicators",
    "registered_devices",
    "stage_times",
]

SEP = "|"
EVENT_WINDOW_S = 60
"""The event rate is over the last minute."""
_BUCKET_S = 5

Share = dict[str, Any]
"""One source's share of one area's numbers, as JSON: sections of counts (``open_sev``,
``open_cat``, ``today``, ``stage_sum``, ``stage_n`` from cases; ``n`` from devices) and, for
case shares, the ``day`` and time (``at``) they were taken on."""
_STAMPS = ("day", "at")
_DAILY = ("today", "stage_sum", "stage_n")
"""Sections that count only on the day they were taken."""


def _areas(case: Case, city: str, parent: Callable[[str], str | None]) -> set[str]:
    """Return the areas a case counts in: its towns, its counties and the city."""
    if case.towns:
        return {*case.towns, *case.counties, city}
    areas: set[str] = set()
    code: str | None = case.area  # a case stored before it carried its geography
    while code is not None:
        areas.add(code)
        code = parent(code)
    return areas


def stage_times(case: Case) -> dict[str, float]:
    """Seconds of each closed-loop stage the case went through."""
    times = {LoopStage.DISCOVER.value: (case.audit[0].at - case.detected_at).total_seconds()}
    if case.acknowledged_at is not None:
        times[LoopStage.RESPOND.value] = (case.acknowledged_at - case.dispatched_at).total_seconds()
        if case.resolved_at is not None:
            dispose = case.resolved_at - case.acknowledged_at
            times[LoopStage.DISPOSE.value] = dispose.total_seconds()
    if case.resolved_at is not None and case.closed_at is not None:
        times[LoopStage.FEEDBACK.value] = (case.closed_at - case.resolved_at).total_seconds()
    return {stage: max(seconds, 0.0) for stage, seconds in times.items()}


def case_shares(
    cases: Iterable[Case],
    *,
    city: str,
    parent: Callable[[str], str | None],
    now: dt.datetime,
    tz: dt.tzinfo,
) -> dict[str, Share]:
    """Return one partition's share of every area's case numbers at ``now``."""
    day = now.astimezone(tz).date()
    taken = now.astimezone(dt.UTC).isoformat()
    shares: dict[str, Share] = {}
    for case in cases:
        if case.stage is Stage.MERGED:
            continue  # its city incident counts instead
        today = case.detected_at.astimezone(tz).date() == day
        open_ = case.stage is not Stage.CLOSED
        if not (today or open_):
            continue
        actions = {entry.action for entry in case.audit}
        for area in _areas(case, city, parent):
            share = shares.setdefault(area, {"day": day.isoformat(), "at": taken})
            if open_:
                _add(share, "open_sev", case.severity.value)
                _add(share, "open_cat", case.category.value)
            if not today:
                continue
            _add(share, "today", "cases")
            if "acknowledge" in actions or case.acknowledge_breaches:
                _add(share, "today", "ack_due")
                if not case.acknowledge_breaches:
                    _add(share, "today", "ack_ok")
            if "resolve" in actions or case.dispose_breaches:
                _add(share, "today", "dispose_due")
                if not case.dispose_breaches:
                    _add(share, "today", "dispose_ok")
            if case.escalations:
                _add(share, "today", "escalated")
            for stage, seconds in stage_times(case).items():
                _add(share, "stage_sum", stage, seconds)
                _add(share, "stage_n", stage)
    return shares


def device_shares(
    devices: Iterable[tuple[str, bool]], *, city: str, events: Mapping[str, int]
) -> dict[str, Share]:
    """Return one partition's share of devices online and events, by area.

    ``devices`` gives each device's grid cell and whether it is online; ``events`` the events of
    the last minute by town.
    """
    shares: dict[str, Share] = {}
    for cell, online in devices:
        if online:
            for area in (cell[:9], cell[:6], city):
                _add(shares.setdefault(area, {}), "n", "online")
    for town, count in events.items():
        for area in (town, town[:6], city):
            _add(shares.setdefault(area, {}), "n", "events", count)
    return shares


def _add(share: Share, section: str, name: str, amount: float = 1) -> None:
    counts = share.setdefault(section, {})
    counts[name] = counts.get(name, 0) + amount


class EventRates:
    """Located events by partition and town over the last minute, in 5-second wall-clock buckets."""

    def __init__(self) -> None:
        self._buckets: dict[int, Counter[tuple[int, str]]] = {}

    def add(self, counts: Counter[tuple[int, str]], now: float) -> None:
        """Count a batch's events, by ``(partition, town)``, read at ``now`` (epoch seconds)."""
        bucket = int(now) // _BUCKET_S
        held = self._buckets.get(bucket)
        if held is None:
            held = self._buckets[bucket] = Counter()
            for old in [b for b in self._buckets if b * _BUCKET_S < now - 2 * EVENT_WINDOW_S]:
                del self._buckets[old]
        held.update(counts)

    def last_minute(self, partition: int, now: float) -> Counter[str]:
        """Return the events of ``partition`` by town in the last full minute before ``now``.

        The minute is made of the twelve buckets before the current one, which is still
        filling: the rate is up to five seconds old but never counts a partial bucket.
        """
        current = int(now) // _BUCKET_S
        first = current - EVENT_WINDOW_S // _BUCKET_S
        total: Counter[str] = Counter()
        for bucket, counts in list(self._buckets.items()):
            if first <= bucket < current:
                for (number, town), count in counts.items():
                    if number == partition:
                        total[town] += count
        return total

    def drop(self, partitions: Iterable[int]) -> None:
        """Forget the events of ``partitions`` (they moved to another worker)."""
        gone = set(partitions)
        for counts in self._buckets.values():
            for key in [key for key in counts if key[0] in gone]:
                del counts[key]


class Shares:
    """What each source last sent for each area, to send only what changed."""

    def __init__(self) -> None:
        self._sent: dict[str, dict[str, bytes]] = {}

    def changed(self, source: str, shares: Mapping[str, Share]) -> list[tuple[str, bytes, bytes]]:
        """Return ``(area, key, value)`` for each share of ``source`` that changed.

        An area the source no longer counts in gets an empty share, replacing its last one.
        """
        sent = self._sent.setdefault(source, {})
        out = []
        for area in sorted(set(shares) | set(sent)):
            value = orjson.dumps(shares.get(area, {}), option=orjson.OPT_SORT_KEYS)
            if sent.get(area) != value:
                sent[area] = value
                out.append((area, f"{area}{SEP}{source}".encode(), value))
        for area in [area for area, value in sent.items() if value == b"{}"]:
            del sent[area]
        return out

    def keep_only(self, sources: set[str]) -> None:
        """Forget every source but ``sources``.

        A partition moved away: its new owner sends its shares afresh (and if it comes back,
        so does this worker).
        """
        for source in set(self._sent) - sources:
            del self._sent[source]


def registered_devices(devices: Iterable[Device], index: GridIndex) -> Counter[str]:
    """Count the active sensors with a position in the city, by town, county and city.

    Cameras are left out: they send events only when they see something, so silence says
    nothing about whether they are online.
    """
    by_datum: dict[str, list[tuple[float, float]]] = {}
    for device in devices:
        sensor = device.device_type is DeviceType.SENSOR
        if sensor and device.active and device.position is not None:
            position = device.position
            by_datum.setdefault(position.datum.value, []).append((position.lon, position.lat))
    counts: Counter[str] = Counter()
    for datum, points in by_datum.items():
        array = np.array(points, dtype=float)
        found = index.locate_many(array[:, 0], array[:, 1], datum=datum)
        for town, county, city in zip(
            found.town.tolist(), found.county.tolist(), found.city.tolist(), strict=True
        ):
            if town:
                counts.update((town, county, city))
    return counts


def indicators(
    area: str,
    *,
    name: str,
    level: AreaLevel,
    shares: Iterable[Share],
    registered: int,
    now: dt.datetime,
    tz: dt.tzinfo,
) -> Indicators:
    """Add up the shares of ``area`` into its indicators at ``now``.

    Today's numbers come only from shares taken on today (a source whose clock is still on an
    earlier day contributes its open cases, not its day).
    """
    day = now.astimezone(tz).date()
    total: Share = {}
    for share in shares:
        current = share.get("day") in (None, day.isoformat())
        for section, counts in share.items():
            if section in _STAMPS or (section in _DAILY and not current):
                continue
            for key, value in counts.items():
                _add(total, section, key, value)
    n, today = total.get("n", {}), total.get("today", {})
    open_sev = {level_: int(total.get("open_sev", {}).get(level_.value, 0)) for level_ in Severity}
    open_cat = {cat: int(total.get("open_cat", {}).get(cat.value, 0)) for cat in Category}
    stage_sum, stage_n = total.get("stage_sum", {}), total.get("stage_n", {})
    online = int(n.get("online", 0))
    return Indicators(
        area=area,
        area_name=name,
        level=level,
        at=now,
        day=day,
        open_by_severity=open_sev,
        open_by_category=open_cat,
        open_total=sum(open_sev.values()),
        incidents_today=int(today.get("cases", 0)),
        acknowledge_on_time=Rate.of(int(today.get("ack_ok", 0)), int(today.get("ack_due", 0))),
        dispose_on_time=Rate.of(int(today.get("dispose_ok", 0)), int(today.get("dispose_due", 0))),
        escalation=Rate.of(int(today.get("escalated", 0)), int(today.get("cases", 0))),
        mean_stage_s={
            stage: (
                round(stage_sum[stage.value] / stage_n[stage.value], 3)
                if stage_n.get(stage.value)
                else None
            )
            for stage in LoopStage
        },
        devices_registered=registered,
        devices_online=online,
        device_online=Rate.of(online, registered),
        events_per_s=round(n.get("events", 0) / EVENT_WINDOW_S, 3),
    )
