"""cityops' own Prometheus metrics, in one typed object built against an injected registry.

Every worker serves them on ``/metrics`` next to Faust's monitor. Labels are bounded: topic
names, reason codes and outcomes, never ids or free text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from schemas.cases import Tier
from schemas.indicators import LoopStage
from schemas.located import DeadLetterReason

__all__ = ["LATENCY_BUCKETS", "STAGE_BUCKETS", "LiveGauge", "Metrics", "Outcome"]

# Seconds from observation to location. Devices report over mobile networks (hundreds of
# milliseconds), batching adds up to ``ingest_batch_wait_s``; buffered uploads arrive minutes or
# hours late, so the buckets reach a day.
LATENCY_BUCKETS = (
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    3600.0,
    86400.0,
)


# Seconds of a closed-loop stage: from a minute (video confirmed at once, acknowledged on a
# screen) to a week (a repair that waits for parts).
STAGE_BUCKETS = (
    10.0,
    30.0,
    60.0,
    300.0,
    600.0,
    1800.0,
    3600.0,
    7200.0,
    14400.0,
    43200.0,
    86400.0,
    259200.0,
    604800.0,
)

Samples = Mapping[Any, float]
"""Label values, a tuple in the gauge's label order → value."""


class LiveGauge(Collector):
    """A gauge read from the worker's state when Prometheus scrapes, not kept up to date.

    Counts like "cases open by tier" follow from the state a worker holds, which moves between
    workers with its partitions; counting them at scrape time from what is held now cannot
    drift the way increments and decrements would.
    """

    def __init__(self, name: str, documentation: str, labels: Sequence[str]) -> None:
        self.name, self.documentation, self.labels = name, documentation, tuple(labels)
        self._source: Callable[[], Samples] = dict

    def watch(self, source: Callable[[], Samples]) -> None:
        """Read the samples from ``source``: label values (in ``labels`` order) → value."""
        self._source = source

    def samples(self) -> Samples:
        """Return the current samples."""
        return self._source()

    def collect(self) -> Iterator[Metric]:
        """Yield the gauge family (Prometheus client protocol)."""
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labels)
        for values, value in sorted(self._source().items()):
            family.add_metric(list(values), value)
        yield family

    def describe(self) -> Iterator[Metric]:
        """Yield the family without samples, so registration does not read the state."""
        yield GaugeMetricFamily(self.name, self.documentation, labels=self.labels)


class Outcome:
    """The three ends of an input record (DESIGN.md, Guarantees: nothing lost)."""

    LOCATED = "located"
    DEAD_LETTER = "dead_letter"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class Metrics:
    """All cityops metrics of one worker process.

    Examples
    --------
    >>> from prometheus_client import CollectorRegistry
    >>> registry = CollectorRegistry()
    >>> metrics = Metrics.create(registry)
    >>> metrics.input_events.labels(topic="sensor.readings", outcome="located").inc()
    >>> registry.get_sample_value(
    ...     "cityops_input_events_total", {"topic": "sensor.readings", "outcome": "located"})
    1.0
    """

    input_events: Counter
    dead_letters: Counter
    duplicates: Counter
    located_latency: Histogram
    devices_registered: Gauge
    registry_rejected: Counter
    detection_events: Counter
    data_quality: Counter
    incident_updates: Counter
    rules_reloads: Counter
    commands: Counter
    escalations: Counter
    breaches: Counter
    incident_latency: Histogram
    loop_stage: Histogram
    incidents_open: LiveGauge
    devices_online: LiveGauge
    devices_offline: LiveGauge
    consumer_lag: LiveGauge
    indicator_snapshots: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> Metrics:
        """Create and register every metric in ``registry``."""
        return cls(
            input_events=Counter(
                "cityops_input_events",
                "Input records read, by topic and how they ended (located, dead_letter,"
                " duplicate); the three outcomes add up to every record read.",
                ["topic", "outcome"],
                registry=registry,
            ),
            dead_letters=Counter(
                "cityops_dead_letters",
                "Records sent to the dead-letter topic, by source topic and reason.",
                ["topic", "reason"],
                registry=registry,
            ),
            duplicates=Counter(
                "cityops_duplicates",
                "Records recognised as already processed (a producer retry or a redelivery).",
                ["topic"],
                registry=registry,
            ),
            located_latency=Histogram(
                "cityops_located_latency_seconds",
                "Time from an event's observation to its location by ingest.",
                ["topic"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            devices_registered=Gauge(
                "cityops_devices_registered",
                "Devices in this worker's copy of the registry.",
                registry=registry,
            ),
            registry_rejected=Counter(
                "cityops_registry_rejected",
                "devices.registry records dead-lettered as invalid.",
                registry=registry,
            ),
            detection_events=Counter(
                "cityops_detection_events",
                "Located events read by detection, by outcome: applied, flagged (data quality),"
                " late (dead-lettered), invalid (dead-lettered), replayed (applied before a"
                " restart, skipped).",
                ["outcome"],
                registry=registry,
            ),
            data_quality=Counter(
                "cityops_data_quality_flags",
                "Events not used for detection because of their data: stuck, impossible,"
                " clock_skew; by sensor kind or video event type.",
                ["flag", "kind"],
                registry=registry,
            ),
            incident_updates=Counter(
                "cityops_incident_updates",
                "Incident updates published on incidents.updates, by category and severity.",
                ["category", "severity"],
                registry=registry,
            ),
            rules_reloads=Counter(
                "cityops_rules_reloads",
                "Rules files read after a change: loaded, or rejected (the rules in force stay).",
                ["outcome"],
                registry=registry,
            ),
            commands=Counter(
                "cityops_incident_commands",
                "Commands on incident.commands, by action and outcome: applied, or the reason"
                " they were rejected.",
                ["action", "outcome"],
                registry=registry,
            ),
            escalations=Counter(
                "cityops_escalations",
                "Cases that climbed to a tier on a missed deadline, by the tier they reached.",
                ["tier"],
                registry=registry,
            ),
            breaches=Counter(
                "cityops_deadline_breaches",
                "Missed deadlines, by the tier that missed them and the deadline"
                " (acknowledge, dispose).",
                ["tier", "deadline"],
                registry=registry,
            ),
            incident_latency=Histogram(
                "cityops_incident_latency_seconds",
                "Time from the observation of an incident's latest evidence to the incident"
                " update it caused, by category.",
                ["category"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            loop_stage=Histogram(
                "cityops_loop_stage_seconds",
                "The closed-loop stages of each case, by stage (discover 发现: first evidence →"
                " dispatched; respond 响应: dispatched → acknowledged; dispose 处置: acknowledged →"
                " resolved; feedback 反馈: resolved → closed) and the tier that held it.",
                ["stage", "tier"],
                buckets=STAGE_BUCKETS,
                registry=registry,
            ),
            incidents_open=_live(
                registry,
                "cityops_incidents_open",
                "Cases not yet closed on this worker's partitions, by owning tier, severity,"
                ' county ("multi" across counties) and category.',
                ["tier", "severity", "county", "category"],
            ),
            devices_online=_live(
                registry,
                "cityops_devices_online",
                "Devices whose last report is within their absence allowance, on this worker's"
                " partitions, by county and kind (sensor kind, or camera).",
                ["county", "kind"],
            ),
            devices_offline=_live(
                registry,
                "cityops_devices_offline",
                "Devices silent beyond their absence allowance (an open device-offline"
                " incident), on this worker's partitions, by county and kind.",
                ["county", "kind"],
            ),
            consumer_lag=_live(
                registry,
                "cityops_consumer_lag",
                "Records in each assigned input partition not yet committed by this worker"
                " (end offset minus committed offset).",
                ["topic", "partition"],
            ),
            indicator_snapshots=Counter(
                "cityops_indicator_snapshots",
                "Indicator snapshots published on screens.indicators, by area level.",
                ["level"],
                registry=registry,
            ),
        )

    def preset_escalation(self) -> None:
        """Create escalation's label combinations at zero."""
        for tier in Tier:
            self.escalations.labels(tier=tier.value)
            for deadline in ("acknowledge", "dispose"):
                self.breaches.labels(tier=tier.value, deadline=deadline)
            for stage in LoopStage:
                self.loop_stage.labels(stage=stage.value, tier=tier.value)

    def preset(self, topics: list[str]) -> None:
        """Create every label combination at zero, so that rates exist before the first event."""
        for topic in topics:
            for outcome in (Outcome.LOCATED, Outcome.DEAD_LETTER, Outcome.DUPLICATE):
                self.input_events.labels(topic=topic, outcome=outcome)
            for reason in DeadLetterReason:
                self.dead_letters.labels(topic=topic, reason=reason.value)
            self.duplicates.labels(topic=topic)
            self.located_latency.labels(topic=topic)

    def preset_detection(self, located_topic: str) -> None:
        """Create detection's label combinations at zero."""
        for outcome in ("applied", "flagged", "late", "invalid", "replayed"):
            self.detection_events.labels(outcome=outcome)
        for reason in (DeadLetterReason.LATE_EVENT, DeadLetterReason.SCHEMA_VIOLATION):
            self.dead_letters.labels(topic=located_topic, reason=reason.value)
        for outcome in ("loaded", "rejected"):
            self.rules_reloads.labels(outcome=outcome)


def _live(
    registry: CollectorRegistry, name: str, documentation: str, labels: list[str]
) -> LiveGauge:
    gauge = LiveGauge(name, documentation, labels)
    registry.register(gauge)
    return gauge
