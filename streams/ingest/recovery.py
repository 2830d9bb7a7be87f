"""Read back what ingest already wrote, so that a restarted worker does not write it again.

After a crash Kafka redelivers every record after the last committed offset, and some of them
were already located or dead-lettered. The output topics within the dedup horizon are the
record of that: :func:`recover` reads them and tells :class:`~streams.ingest.pipeline.Ingest`
which event ids and which dead-lettered records it has already handled. It runs when a worker
starts and after every rebalance (a partition may come from a worker that died).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import orjson
from kafka import KafkaConsumer, TopicPartition

from streams.ingest.pipeline import Ingest
from streams.settings import Settings
from streams.topics import client_config

__all__ = ["RecoveryReport", "recover"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What :func:`recover` read back."""

    located: int
    dead_letters: int
    seconds: float


def recover(settings: Settings, ingest: Ingest, now_s: float) -> RecoveryReport:
    """Feed ``ingest`` the located events and dead letters written in the last horizon.

    Blocking (kafka-python); call it in a thread. Records that are not valid output (another
    writer on the topic) are skipped.
    """
    started = time.perf_counter()
    ingest.done.clear()  # this reading covers the whole horizon again
    located_topic = settings.topic("events_located")
    dead_topic = settings.topic("events_deadletter")
    consumer = KafkaConsumer(
        **client_config(settings),
        client_id=f"{settings.app_id}-recovery",
        group_id=None,
        enable_auto_commit=False,
    )
    counts = {located_topic: 0, dead_topic: 0}
    try:
        partitions = [
            TopicPartition(topic, partition)
            for topic in counts
            for partition in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        since_ms = int((now_s - ingest.limits.dedup_horizon_s) * 1000)
        starts = consumer.offsets_for_times(dict.fromkeys(partitions, since_ms))
        ends = consumer.end_offsets(partitions)
        begin = {
            tp: start.offset
            for tp, start in starts.items()
            if start is not None and start.offset < ends[tp]
        }
        remaining = {tp: ends[tp] for tp in begin}
        consumer.assign(list(begin))
        for tp, offset in begin.items():
            consumer.seek(tp, offset)
        while remaining:
            for tp, records in consumer.poll(timeout_ms=1000, max_records=10_000).items():
                for record in records:
                    if record.offset >= remaining.get(tp, 0):
                        continue
                    at = record.timestamp / 1000
                    if _apply(ingest, tp.topic == located_topic, record.value, at):
                        counts[tp.topic] += 1
            for tp in [tp for tp in remaining if consumer.position(tp) >= remaining[tp]]:
                del remaining[tp]
    finally:
        consumer.close()
    report = RecoveryReport(
        located=counts[located_topic],
        dead_letters=counts[dead_topic],
        seconds=time.perf_counter() - started,
    )
    log.info(
        "recovered %d located events and %d dead letters of the last %.0f s in %.2f s",
        report.located,
        report.dead_letters,
        ingest.limits.dedup_horizon_s,
        report.seconds,
    )
    return report


def _apply(ingest: Ingest, located: bool, value: bytes | None, at: float) -> bool:
    try:
        document = orjson.loads(value or b"")
        if located:
            ingest.remember_located(document["device_id"], document["event"]["event_id"], at)
        else:
            source = document["source"]
            ingest.remember_dead_letter(
                (source["topic"], source["partition"], source["offset"]),
                document["reason"],
                document.get("device_id"),
                document.get("event_id"),
                at,
            )
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return False
    return True
