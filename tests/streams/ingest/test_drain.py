"""The fetch loop of :mod:`streams._faust` while Faust's recovery resumes the streams.

After an assignment Faust's recovery resumes the stream partitions, seeks them to the committed
offsets and then clears every stream buffer (``flow_control.resume()``), while the fetch loop
goes on. Records handed over in between were dropped, never delivered again, and (through the
false gap the seek made) committed: the SIGKILL test on the broker lost thousands of readings
about once in twenty runs, in the restarted worker. These tests force that order of events.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest

from streams._faust import _drain_messages, _holding_streams, _streams_resumed

STREAM = ("sensor.readings", 0)
CHANGELOG = ("cityops-detection-changelog", 0)
COMMITTED = 100


@dataclass(frozen=True)
class _Message:
    topic: str
    offset: int
    generation_id: int = 1


class _Consumer:
    """Just what ``_drain_messages`` touches of a Faust consumer, with scripted fetches.

    ``before_record(consumer, message)`` runs in the fetch before each record is yielded.
    """

    consumer_stopped_errors = ()

    def __init__(
        self,
        fetches: list[list[_Message]],
        before_record: Callable[[_Consumer, _Message], None],
    ) -> None:
        self.fetches = fetches
        self.before_record = before_record
        self._stopped = asyncio.Event()
        self._read_offset: defaultdict[Any, Any] = defaultdict(lambda: None)
        self._commit_every = None
        self._n_acked = 0
        self.app = SimpleNamespace(
            topics=SimpleNamespace(acks_enabled_for=lambda topic: True),
            consumer_generation_id=1,
            consumer=self,
        )
        self.suspend_flow = asyncio.Event()
        self.should_stop = False
        self.gaps: list[tuple[int, int]] = []
        self.buffers: defaultdict[str, list[int]] = defaultdict(list)  # handed over, unprocessed
        self.recovery: asyncio.Task[None] | None = None

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[Any, _Message]]:  # noqa: ASYNC109 - Faust's signature
        if not self.fetches:
            if self.recovery is not None:
                await self.recovery
            self._stopped.set()
            return
        for message in self.fetches.pop(0):
            if message.generation_id != self.app.consumer_generation_id:
                break  # as Faust's getmany does
            self.before_record(self, message)
            tp = STREAM if message.topic == STREAM[0] else CHANGELOG
            yield tp, message

    def _is_changelog_tp(self, tp: Any) -> bool:
        return bool(tp == CHANGELOG)

    async def callback(self, message: _Message) -> None:
        self.buffers[message.topic].append(message.offset)
        await asyncio.sleep(0.001)  # the conductor's put lets other tasks run

    async def _add_gap(self, tp: Any, offset_from: int, offset_to: int) -> None:
        self.gaps.append((offset_from, offset_to))

    def resume_streams(self) -> None:
        """Run Faust's last recovery step as the wrapped ``on_recovery_completed`` runs it."""

        async def on_recovery_completed(recovery: Any) -> None:
            await asyncio.sleep(0.01)  # the seek is a broker round trip: the loop goes on
            self._read_offset[STREAM] = COMMITTED  # perform_seek
            self.buffers[STREAM[0]].clear()  # flow_control.resume() clears the stream buffers

        step = _holding_streams(on_recovery_completed)
        _streams_resumed(self).clear()  # the step has begun before this record comes
        self.recovery = asyncio.ensure_future(step(SimpleNamespace(app=self.app)))


def stream(*offsets: int, generation: int = 1) -> list[_Message]:
    return [_Message(STREAM[0], offset, generation) for offset in offsets]


def drain(consumer: _Consumer) -> None:
    asyncio.run(_drain_messages(consumer, SimpleNamespace(_stopped=asyncio.Event())))


def resume_at(offset: int) -> Callable[[_Consumer, _Message], None]:
    def before_record(consumer: _Consumer, message: _Message) -> None:
        if message.offset == offset and consumer.recovery is None:
            consumer.resume_streams()

    return before_record


@pytest.mark.parametrize(
    "fetches",
    [
        # the fetch in hand came after the seek: the broker goes on from where it ended
        [stream(*range(100, 120)), stream(*range(120, 131))],
        # it came before the seek: the broker sends everything again from the committed offset
        [stream(*range(100, 120)), stream(*range(100, 131))],
    ],
    ids=["fetched-after-the-seek", "fetched-before-the-seek"],
)
def test_nothing_is_handed_over_while_recovery_seeks_and_clears(
    fetches: list[list[_Message]],
) -> None:
    consumer = _Consumer(fetches, resume_at(100))
    drain(consumer)
    # Faust's loop: a gap from 101 on, and the records handed over before the clear never again
    assert consumer.gaps == []
    handed_over = consumer.buffers[STREAM[0]]
    assert sorted(set(handed_over)) == list(range(100, 131))  # each after the clear
    assert len(handed_over) - len(set(handed_over)) <= 1  # Faust repeats its last read offset


def test_changelog_records_are_not_held() -> None:
    changelog = [_Message(CHANGELOG[0], offset) for offset in range(5)]
    order: list[tuple[str, int]] = []

    def before_record(consumer: _Consumer, message: _Message) -> None:
        order.append((message.topic, message.offset))
        resume_at(100)(consumer, message)

    consumer = _Consumer([[*stream(100), *changelog]], before_record)
    drain(consumer)
    assert consumer.buffers[CHANGELOG[0]] == list(range(5))
    assert consumer.buffers[STREAM[0]] == [100]


def test_a_record_of_an_earlier_generation_is_not_handed_over_after_the_wait() -> None:
    def before_record(consumer: _Consumer, message: _Message) -> None:
        if consumer.recovery is None:
            consumer.resume_streams()
            consumer.app.consumer_generation_id = 2  # a rebalance while the step ran

    consumer = _Consumer([stream(100, 101), stream(100, 101, generation=2)], before_record)
    drain(consumer)
    assert consumer.buffers[STREAM[0]] == [100, 101]
