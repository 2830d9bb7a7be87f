"""Sending timed records to the configured topics, paced like the event times they carry."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from datetime import datetime
from types import TracebackType
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from streams.exceptions import StreamsError
from streams.ingest.pipeline import Message
from streams.produce import send_in_batches
from streams.settings import Settings
from streams.simulate.records import Outgoing, topic_for
from streams.topics import aiokafka_config

__all__ = ["Pacer", "Sender"]


class Sender:
    """One aiokafka producer sending :class:`Outgoing` records to the configured topics.

    Use as ``async with Sender(settings) as sender``; leaving the block waits until the broker
    has every record, and a record it refused fails with :class:`StreamsError`.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._names: dict[str, str] = {}
        self._producer: AIOKafkaProducer | None = None
        self._pending: list[asyncio.Future[Any]] = []
        self.sent = 0
        """Records handed to the producer so far."""

    async def __aenter__(self) -> Sender:
        producer = AIOKafkaProducer(
            **aiokafka_config(self._settings),
            acks="all",
            linger_ms=20,
            max_batch_size=512 * 1024,  # send_in_batches fills batches up to this
            enable_idempotence=True,
        )
        try:
            await producer.start()
        except KafkaError as exc:
            await producer.stop()
            raise StreamsError(f"cannot connect to the broker to send: {exc}") from exc
        self._producer = producer
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        producer, self._producer = self._producer, None
        if producer is None:
            return
        try:
            if kind is None:
                await self.flush()
        finally:
            await producer.stop()

    def topic(self, contract: str) -> str:
        """Return the configured name of a contract topic."""
        name = self._names.get(contract)
        if name is None:
            name = self._names[contract] = topic_for(self._settings, contract)
        return name

    async def send(self, records: Iterable[Outgoing]) -> None:
        """Queue ``records``, in batches per topic and partition (per key, in order)."""
        if self._producer is None:
            raise RuntimeError("Sender is used outside 'async with'")
        by_topic: dict[str, list[Message]] = {}
        for record in records:
            by_topic.setdefault(record.topic, []).append(Message(record.key, record.value))
        for contract, messages in by_topic.items():
            self._pending += await send_in_batches(self._producer, self.topic(contract), messages)
            self.sent += len(messages)

    async def flush(self) -> None:
        """Wait until the broker has every record queued so far."""
        pending, self._pending = self._pending, []
        if self._producer is not None:
            await self._producer.flush()
        for outcome in await asyncio.gather(*pending, return_exceptions=True):
            if isinstance(outcome, KafkaError):
                raise StreamsError(f"the broker refused a record: {outcome}") from outcome
            if isinstance(outcome, BaseException):
                raise outcome


class Pacer:
    """Waits so that records go out at their event times' pace, ``speed`` times faster.

    ``speed=None`` sends as fast as possible. The first record sets the origin.
    """

    def __init__(self, speed: float | None) -> None:
        if speed is not None and speed <= 0:
            raise StreamsError(f"speed must be positive, not {speed:g}")
        self.speed = speed
        self._origin: tuple[datetime, float] | None = None

    async def wait_for(self, at: datetime) -> None:
        """Return when the record stamped ``at`` is due."""
        if self.speed is None:
            return
        if self._origin is None:
            self._origin = (at, time.monotonic())
            return
        first, started = self._origin
        due = started + (at - first).total_seconds() / self.speed
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
