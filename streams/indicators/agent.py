"""The indicators agent: shares in from every worker, one snapshot per area out.

``share_periodically`` is what escalation and detection call to send their partitions' shares;
``register_indicators`` registers the agent that keeps the latest share of every source per area
in the ``indicators`` table and the timer that publishes ``screens.indicators``. See
``streams/indicators/shares.py`` for the arithmetic.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import faust
import orjson

from schemas.indicators import AreaLevel
from streams.failstop import fail_stop
from streams.indicators.shares import SEP, Share, Shares, indicators, registered_devices
from streams.ingest.pipeline import Message
from streams.produce import partition_for, send_batched

if TYPE_CHECKING:
    from streams.app import CityOpsApp

__all__ = ["register_indicators", "share_periodically"]

log = logging.getLogger(__name__)

SharesOf = Callable[[], Mapping[str, Mapping[str, Share]]]
"""Returns, for every source this worker holds now, its share of every area it counts in."""


def share_periodically(app: CityOpsApp, name: str, shares_of: SharesOf) -> None:
    """Send the shares returned by ``shares_of`` that changed, every indicators interval.

    A source that is no longer returned (its partition moved) is forgotten: its new owner
    sends its shares afresh.
    """
    settings = app.cityops_settings
    topic = settings.topic("indicators_parts")
    partitions = list(range(settings.topic_partitions))
    sent = Shares()

    @app.timer(settings.indicators_interval_s, name=name)  # type: ignore[untyped-decorator]
    async def share() -> None:
        current = shares_of()
        sent.keep_only(set(current))
        grouped: dict[int, list[Message]] = defaultdict(list)
        for source, areas in sorted(current.items()):
            for area, key, value in sent.changed(source, areas):
                grouped[partition_for(area.encode(), partitions)].append(Message(key, value))
        for number, messages in sorted(grouped.items()):
            await send_batched(app, topic, messages, partition=number)


def register_indicators(app: CityOpsApp) -> None:
    """Register the ``add_indicators`` agent, its table and the publishing timer on ``app``."""
    settings = app.cityops_settings
    parts_topic = settings.topic("indicators_parts")
    screens_topic = settings.topic("screens_indicators")
    tz = ZoneInfo(settings.timezone)
    partitions = list(range(settings.topic_partitions))
    table = app.Table(
        "indicators",
        partitions=settings.topic_partitions,
        key_type=bytes,
        value_type=bytes,
        help="Indicators: the latest share of every source in every area, keyed area|source.",
    )
    registered = _Registered(app)

    @app.agent(app.topic(parts_topic), name="add_indicators", concurrency=1)
    async def add_indicators(stream: faust.StreamT[bytes]) -> None:
        with fail_stop("indicators"):
            async for event in stream.events():
                key, value = event.message.key, event.message.value
                if not key or SEP.encode() not in key:
                    log.warning("indicators.parts: skipped a record without an area|source key")
                elif value in (None, b"", b"{}"):
                    table.pop(key, None)
                else:
                    table[key] = value

    @app.timer(settings.indicators_interval_s, name="publish_indicators")  # type: ignore[untyped-decorator]
    async def publish() -> None:
        consumer: Any = app._consumer
        if consumer is None or app.rebalancing or app.in_recovery:
            return  # the table is complete only once recovery is done
        assigned = {tp.partition for tp in consumer.assignment() if tp.topic == parts_topic}
        if not assigned:
            return
        by_area: dict[str, list[Share]] = defaultdict(list)
        for key, value in list(table.items()):
            area = key.decode().split(SEP, 1)[0]
            if partition_for(area.encode(), partitions) in assigned:
                by_area[area].append(orjson.loads(value))
        now = _now(settings.clock == "event", by_area)
        if now is None:
            return  # on the event clock nothing has happened yet
        hierarchy = app.ingest.index.hierarchy
        counts = registered.counts()
        messages = []
        for level, codes in _areas(hierarchy):
            for code in codes:
                if partition_for(code.encode(), partitions) not in assigned:
                    continue
                snapshot = indicators(
                    code,
                    name=hierarchy.name(code),
                    level=level,
                    shares=by_area.get(code, ()),
                    registered=counts.get(code, 0),
                    now=now,
                    tz=tz,
                )
                messages.append(Message(code.encode(), snapshot.model_dump_json().encode()))
                app.metrics.indicator_snapshots.labels(level=level.value).inc()
        await send_batched(app, screens_topic, messages)


def _areas(hierarchy: Any) -> list[tuple[AreaLevel, list[str]]]:
    return [
        (AreaLevel.CITY, [hierarchy.city.code]),
        (AreaLevel.COUNTY, [str(code) for code in hierarchy.table("county").codes]),
        (AreaLevel.TOWN, [str(code) for code in hierarchy.table("town").codes]),
    ]


def _now(event_clock: bool, by_area: Mapping[str, list[Share]]) -> datetime | None:
    """Return the wall clock, or on the event clock the latest time a case share was taken."""
    if not event_clock:
        return datetime.now(UTC)
    times = [
        datetime.fromisoformat(share["at"])
        for shares in by_area.values()
        for share in shares
        if "at" in share
    ]
    return max(times) if times else None


class _Registered:
    """Registered devices by area, recounted only when the registry changed."""

    def __init__(self, app: CityOpsApp) -> None:
        self._app = app
        self._version = -1
        self._counts: Counter[str] = Counter()

    def counts(self) -> Counter[str]:
        registry = self._app.registry
        if registry.version != self._version:
            self._version = registry.version
            devices = [registry[device_id] for device_id in registry]
            self._counts = registered_devices(devices, self._app.ingest.index)
        return self._counts
