"""Detection as plain code: located events in, incidents out, on event time.

:class:`Detector` keeps the working state of every county it owns (devices, confirmation
windows, video sightings, incidents) and :meth:`Detector.apply` feeds it one located event,
returning the incidents that changed. The Faust agent in :mod:`streams.detect.agent` mirrors the
state into a changelog-backed table (:meth:`Detector.changes`, :meth:`Detector.load`); tests run
it on values, without a broker.

Time is the events' own. Each county has a clock: the latest observed time seen there. Its
watermark is the clock less ``allowed_lateness``; an event older than the watermark is *late*
(the agent dead-letters it) and absences and quiet periods are judged against the watermark,
never the wall clock. Nothing here reads the wall clock, so the same events in the same order
give the same incidents, byte for byte.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from schemas import (
    Category,
    Device,
    DeviceType,
    Incident,
    IncidentStatus,
    LocatedEvent,
    SensorReading,
    Severity,
    VideoEvent,
    VideoEventType,
)
from streams.detect.rules import CorroborationRule, RuleSet, ThresholdRule, VideoRule

__all__ = ["Detector", "Flag", "Outcome", "incident_id"]

_MAX_LISTED = 256  # cells, towns, devices named on one incident
_RECENT = 20  # recent evidence ids on one incident

State = dict[str, Any]
Changed = dict[str, State]
"""The incidents an event changed, by id, in the order of their last change."""


class Flag(StrEnum):
    """Why a valid event is not used for detection (data quality; counted, no incident)."""

    STUCK = "stuck"
    IMPOSSIBLE = "impossible"
    CLOCK_SKEW = "clock_skew"


@dataclass(slots=True)
class Outcome:
    """What one event did."""

    incidents: list[Incident] = field(default_factory=list)
    """Incidents it changed, in full, in the order they changed (each once)."""
    late: bool = False
    """Older than its county's watermark: not used; the agent dead-letters it."""
    flag: Flag | None = None
    """A data-quality flag: not used for operational incidents."""
    replayed: bool = False
    """Already applied before a restart (its offset is not past the county's last)."""
    watermark: float | None = None
    """The county's watermark before the event, for the late event's message."""


def incident_id(county: str, category: str, department: str, first_event: str) -> str:
    """Return the deterministic id of an incident: the same first evidence, the same id."""
    digest = hashlib.sha256(f"{county}|{category}|{department}|{first_event}".encode()).hexdigest()
    return f"inc-{county}-{digest[:20]}"


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


class _County:
    """The working state of one county; every section mirrors into the table key by key."""

    SECTIONS = ("clock", "dev", "win", "sight", "inc", "open")

    def __init__(self, code: str) -> None:
        self.code = code
        self.clock: State = {"max": None, "applied": -1}
        self.dev: dict[str, State] = {}
        self.win: dict[str, list[list[Any]]] = {}
        self.sight: dict[str, list[Any]] = {}
        self.inc: dict[str, State] = {}
        self.open: dict[str, str] = {}
        self.dirty: set[tuple[str, str]] = set()
        self.next_due = -math.inf  # no timer fires before the watermark passes this

    def watermark(self, lateness: float) -> float:
        high = self.clock["max"]
        return -math.inf if high is None else high - lateness

    def touch(self, section: str, name: str = "") -> None:
        self.dirty.add((section, name))

    def section(self, name: str) -> dict[str, Any]:
        return getattr(self, name)  # type: ignore[no-any-return]


class Detector:
    """Turns located events into incidents, per county, on event time.

    Parameters
    ----------
    rules
        The rule set in force; replace :attr:`rules` to reload (between events).
    neighbours
        Cell code → the codes of the cells touching it (:func:`geo.cell_neighbours`).
    devices
        Device id → the registered device, or None (the live registry's ``get``).
    names
        Code → name of a geographic unit, for summaries.
    allowed_lateness
        Seconds an event may be older than its county's latest before it is late.
    """

    def __init__(
        self,
        rules: RuleSet,
        *,
        neighbours: Mapping[str, frozenset[str]],
        devices: Callable[[str], Device | None],
        names: Callable[[str], str],
        allowed_lateness: float,
    ) -> None:
        self.rules = rules  # a property: keeps the lookups below in step
        self.neighbours = neighbours
        self.devices = devices
        self.names = names
        self.allowed_lateness = allowed_lateness
        self.counties: dict[str, _County] = {}

    @property
    def rules(self) -> RuleSet:
        """The rule set in force; assigning a new one takes effect at the next event."""
        return self._rules

    @rules.setter
    def rules(self, rules: RuleSet) -> None:
        self._rules = rules
        self._thresholds = rules.thresholds()
        self._videos = rules.videos()
        self._corroborations: dict[VideoEventType, list[CorroborationRule]] = {}
        for corroboration in rules.corroboration:
            for video_type in corroboration.video_types:
                self._corroborations.setdefault(video_type, []).append(corroboration)
        windows = [rule.window_s for rule in rules.video]
        windows += [rule.window_s for rule in rules.corroboration]
        self._longest_window = max(windows, default=0.0)

    # --- the state, as table records ----------------------------------------------------------

    def load(self, county: str, records: Iterable[tuple[str, str, Any]]) -> None:
        """Replace ``county``'s state with ``(section, name, value)`` records from the table.

        A ``journal`` record (see :meth:`changes`) is applied last: it holds the latest value of
        every key its flush wrote, so a flush cut short by a crash is completed.
        """
        state = self.counties[county] = _County(county)
        journal: dict[str, Any] | None = None
        for section, name, value in records:
            if section == "journal":
                journal = value
            else:
                self._put(state, section, name, value)
        if journal is not None:
            for key, value in journal["changes"]:
                self._put(state, key[0], key[1], value)
        state.next_due = -math.inf  # check the timers at the next event

    def drop(self, county: str) -> None:
        """Forget ``county`` (its partition went to another worker)."""
        self.counties.pop(county, None)

    def changes(self, county: str) -> list[tuple[str, str, Any]]:
        """Return and forget what changed in ``county`` since the last call.

        The records come as ``(section, name, value)``, a value of None meaning deleted, and
        start with a ``journal`` record holding all of them: written first on the same
        changelog partition, it makes the flush all-or-nothing (see :meth:`load`).
        """
        state = self.counties.get(county)
        if state is None or not state.dirty:
            return []
        records: list[tuple[str, str, Any]] = []
        for section, name in sorted(state.dirty):
            value = state.clock if section == "clock" else state.section(section).get(name)
            records.append((section, name, value))
        state.dirty.clear()
        journal = {"changes": [[[section, name], value] for section, name, value in records]}
        return [("journal", "", journal), *records]

    @staticmethod
    def _put(state: _County, section: str, name: str, value: Any) -> None:
        if section == "clock":
            state.clock = value
        elif value is None:
            state.section(section).pop(name, None)
        else:
            state.section(section)[name] = value

    # --- events ------------------------------------------------------------------------------

    def apply(self, located: LocatedEvent, offset: int) -> Outcome:
        """Apply one located event read at ``offset`` of its county's partition."""
        county = self._county(located.location.county)
        if offset <= county.clock["applied"]:
            return Outcome(replayed=True)
        county.clock["applied"] = offset
        county.touch("clock")
        event = located.event
        t = event.observed_at.timestamp()
        watermark = county.watermark(self.allowed_lateness)
        if t < watermark:
            return Outcome(late=True, watermark=watermark)
        changed: Changed = {}
        flag = self._liveness(county, located, t, changed)
        if flag is not Flag.CLOCK_SKEW:  # a stuck or impossible value still tells the time
            high = county.clock["max"]
            county.clock["max"] = t if high is None else max(high, t)
        if flag is None:
            if isinstance(event, SensorReading):
                self._threshold(county, located, event, t, changed)
            else:
                self._video(county, located, event, t, changed)
        self._timers(county, changed)
        return Outcome(incidents=self._publish(changed), flag=flag)

    def _county(self, code: str) -> _County:
        state = self.counties.get(code)
        if state is None:
            state = self.counties[code] = _County(code)
        return state

    def _liveness(
        self, county: _County, located: LocatedEvent, t: float, changed: Changed
    ) -> Flag | None:
        """Record that the device reported; return a data-quality flag, if any."""
        quality = self.rules.quality
        event = located.event
        flag = None
        if t - located.ingested_at.timestamp() > quality.clock_skew_s:
            flag = Flag.CLOCK_SKEW
            t = located.ingested_at.timestamp()
        device = self.devices(located.device_id)
        dev = county.dev.get(located.device_id)
        if dev is None:
            dev = county.dev[located.device_id] = {"last": t, "value": None, "repeats": 0}
        dev["last"] = max(dev["last"], t)
        dev["event"] = event.event_id
        dev["cell"] = located.location.cell
        dev["city"] = located.location.city
        dev["geography"] = located.geography
        if device is not None and device.device_type is DeviceType.SENSOR:
            dev["interval"] = device.expected_interval_s
            dev["department"] = device.department
            if self.rules.absence is not None:
                _due(county, dev["last"] + self.rules.absence.multiple * dev["interval"])
        county.touch("dev", located.device_id)
        offline = dev.pop("offline", None)
        if offline is not None:
            self._unsource(county, offline, f"o|{located.device_id}", t, changed)
        if isinstance(event, SensorReading) and flag is None:
            if event.value == dev["value"]:
                dev["repeats"] += 1
            else:
                dev["value"], dev["repeats"] = event.value, 1
            plausible = quality.plausible.get(event.kind)
            if plausible is not None and not plausible[0] <= event.value <= plausible[1]:
                flag = Flag.IMPOSSIBLE
            elif dev["repeats"] >= quality.stuck_after:
                flag = Flag.STUCK
        return flag

    def _threshold(
        self,
        county: _County,
        located: LocatedEvent,
        reading: SensorReading,
        t: float,
        changed: Changed,
    ) -> None:
        rule = self._thresholds.get((reading.kind, reading.unit))
        if rule is None:
            return
        dev = county.dev[located.device_id]
        cond = dev.get("cond")
        if cond is None or cond.get("rule") != rule.id:
            cond = dev["cond"] = {"rule": rule.id, "on": False, "n": 0, "since": t}
        level = rule.severity_of(reading.value)
        source = f"t|{located.device_id}"
        if not cond["on"]:
            if level is None:
                cond["n"] = 0
                return
            cond["n"] += 1
            if cond["n"] == 1:
                cond["since"] = t
            if cond["n"] < rule.raise_after or t - cond["since"] < rule.raise_for_s:
                return
            cond.update(on=True, cn=0)
            cond["incident"] = self._evidence(
                county, rule, level, located, source=source, until=None, changed=changed
            )
        elif level is not None:
            cond["cn"] = 0
            cond["incident"] = self._evidence(
                county, rule, level, located, source=source, until=None, changed=changed
            )
        elif rule.is_clear(reading.value):
            cond["cn"] += 1
            if cond["cn"] == 1:
                cond["csince"] = t
            if cond["cn"] >= rule.clear_after and t - cond["csince"] >= rule.clear_for_s:
                dev["cond"] = {"rule": rule.id, "on": False, "n": 0, "since": t}
                self._unsource(county, cond.get("incident"), source, t, changed)
        else:
            cond["cn"] = 0  # in the hysteresis band: neither raised further nor clearing

    def _video(
        self,
        county: _County,
        located: LocatedEvent,
        event: VideoEvent,
        t: float,
        changed: Changed,
    ) -> None:
        cell = located.location.cell
        corroborating = [
            rule
            for rule in self._corroborations.get(event.event_type, ())
            if event.confidence >= rule.min_confidence
        ]
        if corroborating:
            self._sighting(county, located, event, t, rules=corroborating, changed=changed)
        rule = self._videos.get(event.event_type)
        if rule is None or event.confidence < rule.min_confidence:
            return
        source = f"v|{event.event_type.value}|{cell}"
        active = county.open.get(self._open_key(rule.category.value, rule.department, located))
        if active is None or source not in county.inc[active]["sources"]:
            # Not yet confirmed: count it in the cell's window until there are enough.
            window = county.win.setdefault(source, [])
            window.append([t, event.event_id])
            window[:] = [entry for entry in window if entry[0] >= t - rule.window_s]
            county.touch("win", source)
            if len(window) < rule.count:
                return
            del county.win[source]
        until = t + rule.clear_after_s
        self._evidence(
            county, rule, rule.severity, located, source=source, until=until, changed=changed
        )

    def _sighting(
        self,
        county: _County,
        located: LocatedEvent,
        event: VideoEvent,
        t: float,
        *,
        rules: list[CorroborationRule],
        changed: Changed,
    ) -> None:
        """Remember a video event; corroborate what it can under ``rules``.

        ``rules`` are the corroboration rules of its type that it is confident enough for.
        """
        cell = located.location.cell
        key = f"{event.event_type.value}|{cell}"
        previous = county.sight.get(key)
        if previous is None or previous[0] < t:
            county.sight[key] = [t, event.event_id]
            county.touch("sight", key)
        for rule in rules:
            near = self._near(cell, rule.neighbours)
            for number in sorted(county.inc):
                inc = county.inc[number]
                sensor_t = inc.get("sensor_t")
                if (
                    inc["category"] == rule.category.value
                    and inc["corroborated_by"] is None
                    and inc["cleared"] is None
                    and sensor_t is not None
                    and abs(t - sensor_t) <= rule.window_s
                    and near & set(inc["cells"])
                ):
                    self._corroborate(county, inc, rule.ref.model_dump(), t, changed)

    def _near(self, cell: str, neighbours: bool) -> set[str]:
        return {cell, *self.neighbours.get(cell, ())} if neighbours else {cell}

    # --- incidents ---------------------------------------------------------------------------

    @staticmethod
    def _open_key(category: str, department: str, located: LocatedEvent) -> str:
        return f"{category}|{department}|{located.location.town}"

    def _evidence(
        self,
        county: _County,
        rule: ThresholdRule | VideoRule,
        severity: Severity,
        located: LocatedEvent,
        *,
        source: str,
        until: float | None,
        changed: Changed,
    ) -> str:
        """Add one event's evidence to the incident of its problem, raising one if none."""
        t = located.event.observed_at.timestamp()
        evidence = {
            "event_id": located.event.event_id,
            "device_id": located.device_id,
            "observed_at": located.event.observed_at.astimezone(UTC).isoformat(),
            "cell": located.location.cell,
        }
        inc = self._incident_for(county, rule.category.value, rule.department, located, t)
        if inc is None:
            inc = self._raise(county, rule, severity, located, evidence)
        else:
            inc["cleared"] = None
            inc["base"] = Severity.gravest(Severity(inc["base"]), severity).value
            inc["evidence_count"] += 1
            inc["last_evidence"] = evidence
        self._link(county, inc, rule.category.value, rule.department, located)
        self._listed(inc, located)
        recent = inc["recent_evidence"]
        if not recent or recent[-1] != evidence["event_id"]:
            recent.append(evidence["event_id"])
            del recent[:-_RECENT]
        inc["sources"][source] = until
        if until is not None:
            _due(county, until)
        inc["geography"] = located.geography
        inc["updated"] = max(inc["updated"], t)
        if isinstance(rule, ThresholdRule):
            inc["sensor_t"] = t
            self._corroborate_sensor(county, inc, located.location.cell, t, changed)
        self._changed(county, inc, changed)
        return str(inc["incident_id"])

    def _incident_for(
        self, county: _County, category: str, department: str, located: LocatedEvent, t: float
    ) -> State | None:
        """Find the incident new evidence joins: its town's, else an adjacent one's, else None."""
        number = county.open.get(f"{category}|{department}|{located.location.town}")
        if number is not None and self._joinable(county.inc[number], t):
            return county.inc[number]
        near = self._near(located.location.cell, neighbours=True)
        window = self.rules.evidence_window_s
        for number in sorted(county.inc):
            inc = county.inc[number]
            if (
                inc["category"] == category
                and inc["department"] == department
                and self._joinable(inc, t)
                and abs(t - inc["updated"]) <= window
                and near & set(inc["cells"])
            ):
                return inc
        return None

    def _joinable(self, inc: State, t: float) -> bool:
        cleared = inc["cleared"]
        return cleared is None or t - cleared <= self.rules.reopen_window_s

    def _raise(
        self,
        county: _County,
        rule: ThresholdRule | VideoRule,
        severity: Severity,
        located: LocatedEvent,
        evidence: dict[str, Any],
    ) -> State:
        t = located.event.observed_at.timestamp()
        number = incident_id(
            county.code, rule.category.value, rule.department, evidence["event_id"]
        )
        inc: State = {
            "incident_id": number,
            "revision": 0,
            "category": rule.category.value,
            "department": rule.department,
            "gbt30428": rule.gbt30428,
            "title": rule.title,
            "rule": rule.ref.model_dump(),
            "base": severity.value,
            "corroborated_by": None,
            "city": located.location.city,
            "counties": [county.code],
            "towns": [],
            "cells": [],
            "devices": [],
            "evidence_count": 1,
            "recent_evidence": [],
            "first_evidence": evidence,
            "last_evidence": evidence,
            "opened": t,
            "updated": t,
            "cleared": None,
            "sources": {},
            "keys": [],
            "geography": located.geography,
        }
        county.inc[number] = inc
        return inc

    def _link(
        self, county: _County, inc: State, category: str, department: str, located: LocatedEvent
    ) -> None:
        key = f"{category}|{department}|{located.location.town}"
        if county.open.get(key) != inc["incident_id"]:
            county.open[key] = inc["incident_id"]
            county.touch("open", key)
            if key not in inc["keys"]:
                inc["keys"].append(key)

    @staticmethod
    def _listed(inc: State, located: LocatedEvent) -> None:
        for name, value in (
            ("towns", located.location.town),
            ("cells", located.location.cell),
            ("devices", located.device_id),
        ):
            listed = inc[name]
            if value not in listed and len(listed) < _MAX_LISTED:
                listed.append(value)
                listed.sort()

    def _corroborate_sensor(
        self, county: _County, inc: State, cell: str, t: float, changed: Changed
    ) -> None:
        if inc["corroborated_by"] is not None:
            return
        for rule in self.rules.corroboration:
            if rule.category.value != inc["category"]:
                continue
            for near in sorted(self._near(cell, rule.neighbours)):
                for kind in rule.video_types:
                    seen = county.sight.get(f"{kind.value}|{near}")
                    if seen is not None and abs(t - seen[0]) <= rule.window_s:
                        self._corroborate(county, inc, rule.ref.model_dump(), t, changed)
                        return

    def _corroborate(
        self,
        county: _County,
        inc: State,
        rule: dict[str, Any],
        t: float,
        changed: Changed,
    ) -> None:
        inc["corroborated_by"] = rule
        inc["updated"] = max(inc["updated"], t)
        self._changed(county, inc, changed)

    def _unsource(
        self,
        county: _County,
        number: str | None,
        source: str,
        t: float,
        changed: Changed,
    ) -> None:
        """``source`` no longer holds; with no source left the incident is cleared at ``t``."""
        inc = county.inc.get(number) if number is not None else None
        if inc is None or source not in inc["sources"]:
            return
        del inc["sources"][source]
        if not inc["sources"] and inc["cleared"] is None:
            inc["cleared"] = t
            _due(county, t + self.rules.reopen_window_s)
            inc["updated"] = max(inc["updated"], t)
            self._changed(county, inc, changed)
        else:
            county.touch("inc", number)  # type: ignore[arg-type]

    @staticmethod
    def _changed(county: _County, inc: State, changed: Changed) -> None:
        number = inc["incident_id"]
        county.touch("inc", number)
        changed.pop(number, None)
        changed[number] = inc

    def _publish(self, changed: Changed) -> list[Incident]:
        """One new revision per incident the event changed, however many times it did."""
        for inc in changed.values():
            inc["revision"] += 1
            inc["rules_version"] = self.rules.version
        return [self.incident(inc) for inc in changed.values()]

    def incident(self, inc: State) -> Incident:
        """Return the published form of a working incident."""
        base = Severity(inc["base"])
        cleared = inc["cleared"]
        place = " ".join(self.names(code) for code in inc["towns"][:3])
        if len(inc["towns"]) > 3:
            place += f" 等{len(inc['towns'])}个镇街"
        summary = f"{inc['title']} · {self.names(inc['counties'][0])} {place}"
        if inc["category"] == Category.DEVICE_OFFLINE.value:
            summary = f"{inc['title']} {len(inc['devices'])}台 · {summary.split(' · ', 1)[1]}"
        return Incident.model_validate(
            {
                "incident_id": inc["incident_id"],
                "revision": inc["revision"],
                "category": inc["category"],
                "department": inc["department"],
                "gbt30428": inc["gbt30428"],
                "status": IncidentStatus.ACTIVE if cleared is None else IncidentStatus.CLEARED,
                "severity": base.raised() if inc["corroborated_by"] else base,
                "corroborated_by": inc["corroborated_by"],
                "rule": inc["rule"],
                "rules_version": inc["rules_version"],
                "geography": inc["geography"],
                "city": inc["city"],
                "counties": inc["counties"],
                "towns": inc["towns"],
                "cells": inc["cells"],
                "devices": inc["devices"],
                "evidence_count": inc["evidence_count"],
                "recent_evidence": inc["recent_evidence"],
                "first_evidence": inc["first_evidence"],
                "last_evidence": inc["last_evidence"],
                "opened_at": _iso(inc["opened"]),
                "updated_at": _iso(inc["updated"]),
                "cleared_at": None if cleared is None else _iso(cleared),
                "summary": summary[:512],
            }
        )

    def open_incidents(self, county: str) -> Iterator[Incident]:
        """Every incident ``county`` holds, in id order (to republish after a restart)."""
        state = self.counties.get(county)
        for number in sorted(state.inc if state else ()):
            yield self.incident(state.inc[number])  # type: ignore[union-attr]

    # --- timers: absence, quiet video, forgetting ----------------------------------------------

    def _timers(self, county: _County, changed: Changed) -> None:
        watermark = county.watermark(self.allowed_lateness)
        if watermark < county.next_due:
            return
        due = min(
            self._absences(county, watermark, changed), self._expiries(county, watermark, changed)
        )
        horizon = watermark - self._longest_window
        for section in (county.win, county.sight):
            for key in [key for key, value in section.items() if _newest(value) < horizon]:
                del section[key]
                county.touch("win" if section is county.win else "sight", key)
        county.next_due = due

    def _absences(self, county: _County, watermark: float, changed: Changed) -> float:
        """Raise the offline incidents due; return the next absence deadline."""
        due = math.inf
        absence = self.rules.absence
        for device_id in sorted(county.dev):
            dev = county.dev[device_id]
            interval = dev.get("interval")
            if absence is None or interval is None or "offline" in dev:
                continue
            deadline = dev["last"] + absence.multiple * interval
            if deadline < watermark:
                dev["offline"] = self._offline(county, device_id, dev, deadline, changed)
                county.touch("dev", device_id)
            else:
                due = min(due, deadline)
        return due

    def _expiries(self, county: _County, watermark: float, changed: Changed) -> float:
        """Clear quiet video sources, forget long-cleared incidents; return the next such time."""
        due = math.inf
        for number in sorted(county.inc):
            inc = county.inc[number]
            for source, until in sorted(inc["sources"].items()):
                if until is not None and until < watermark:
                    self._unsource(county, number, source, until, changed)
                elif until is not None:
                    due = min(due, until)
            cleared = inc["cleared"]
            if cleared is not None:
                forget = cleared + self.rules.reopen_window_s
                if forget < watermark:
                    self._forget(county, inc)
                else:
                    due = min(due, forget)
        return due

    def _offline(
        self,
        county: _County,
        device_id: str,
        dev: State,
        deadline: float,
        changed: Changed,
    ) -> str:
        """Raise (or join) the offline incident of a device silent since ``dev['last']``."""
        rule = self.rules.absence
        if rule is None:  # pragma: no cover - _timers only calls with an absence rule
            raise RuntimeError("no absence rule")
        town = dev["cell"][:9]
        department = dev["department"]
        category = Category.DEVICE_OFFLINE.value
        key = f"{category}|{department}|{town}"
        evidence = {
            "event_id": dev["event"],
            "device_id": device_id,
            "observed_at": _iso(dev["last"]),
            "cell": dev["cell"],
        }
        number = county.open.get(key)
        inc = county.inc.get(number) if number is not None else None
        if inc is None or not self._joinable(inc, deadline):
            number = incident_id(county.code, category, department, f"{device_id}@{deadline}")
            inc = county.inc[number] = {
                "incident_id": number,
                "revision": 0,
                "category": category,
                "department": department,
                "gbt30428": None,
                "title": rule.title,
                "rule": rule.ref.model_dump(),
                "base": rule.severity.value,
                "corroborated_by": None,
                "city": dev["city"],
                "counties": [county.code],
                "towns": [town],
                "cells": [],
                "devices": [],
                "evidence_count": 0,
                "recent_evidence": [],
                "first_evidence": evidence,
                "last_evidence": evidence,
                "opened": deadline,
                "updated": deadline,
                "cleared": None,
                "sources": {},
                "keys": [key],
                "geography": "",
            }
            county.open[key] = number
            county.touch("open", key)
        inc["cleared"] = None
        inc["evidence_count"] += 1
        inc["last_evidence"] = evidence
        for name, value in (("cells", dev["cell"]), ("devices", device_id)):
            if value not in inc[name] and len(inc[name]) < _MAX_LISTED:
                inc[name].append(value)
                inc[name].sort()
        inc["recent_evidence"] = [*inc["recent_evidence"], dev["event"]][-_RECENT:]
        inc["sources"][f"o|{device_id}"] = None
        inc["updated"] = max(inc["updated"], deadline)
        inc["geography"] = dev["geography"]
        self._changed(county, inc, changed)
        return str(number)

    def _forget(self, county: _County, inc: State) -> None:
        """Drop an incident cleared longer ago than the reopen window (it is final)."""
        number = inc["incident_id"]
        del county.inc[number]
        county.touch("inc", number)
        for key in inc["keys"]:
            if county.open.get(key) == number:
                del county.open[key]
                county.touch("open", key)


def _due(county: _County, at: float) -> None:
    """Let a timer fire once the watermark passes ``at``."""
    county.next_due = min(county.next_due, at)


def _newest(value: list[Any]) -> float:
    """Return the newest time in a window (list of entries) or a sighting (one entry)."""
    if value and isinstance(value[0], list):
        return float(max(entry[0] for entry in value))
    return float(value[0]) if value else -math.inf
