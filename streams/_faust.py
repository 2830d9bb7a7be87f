"""Two changes to faust-streaming 0.15's consumer: no task pair per message, no lost hand-over.

Faust's fetch loop (``Consumer._drain_messages``) hands every message to the conductor through
``wait_first(callback(message), suspend_flow.wait())``: two tasks and an ``asyncio.wait`` per
message, so that a rebalance can interrupt a hand-over blocked on a full stream buffer. On the
2-core reference machine that alone halved ingest throughput (2,400 → 5,100 records/s, see
``docs/benchmarks.md``).

:func:`install_fast_drain` replaces the loop with the same loop that awaits the callback
directly while the flow is not suspended, and keeps ``wait_first`` when it is. A hand-over
blocked on a full buffer then waits for the agent to take a record instead of being abandoned;
ingest's agent never blocks on anything but its own recovery during a rebalance, which does not
depend on this loop, so the wait always ends. Everything else (gaps, commit-every, offsets,
stop handling) is Faust's code, unchanged, except for the fix below.

**Records handed over while recovery resumes the streams (faust-streaming 0.15.3; its own loop
has the same bug).** After every assignment, Faust's recovery ends in
``Recovery.on_recovery_completed`` (``_resume_streams`` without tables): it resumes the stream
partitions, seeks them to the committed offsets (a broker round trip through the consumer
thread) and then calls ``flow_control.resume()``, which *clears every stream buffer*, although
the flow has been running since recovery began. Whatever this loop hands over in between is
dropped unacknowledged, and is not delivered again: either the fetch that carried it came after
the seek (no refetch), or the loop's ``_read_offset`` moved past the refetch. Worse, the seek
resets ``_read_offset`` to the committed offset while the loop is still in its fetch, so the
next record is taken for an offset *gap* and everything in between is counted as acknowledged:
the next commit passes records nobody processed. A restarted worker lost 2,373 readings this
way in the SIGKILL test (``docs/ingest.md``). Whether the fetch in hand came before or after the
seek cannot be told from the offsets (both orders were seen).

So :func:`install_fast_drain` also wraps those two recovery steps: while one runs, this loop
does not hand over records of non-changelog partitions; it waits (an await only then, a flag
test per record otherwise). Stream partitions are paused from the assignment until that step,
so nothing of theirs was handed over in this generation before it; after it the buffers are
cleared and the seek done, and the fetch in hand (which starts at the committed offset either
way) is handed over from the seek position. A record fetched under an earlier generation is
not handed over after the wait: the broker sends it again.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from faust.tables import recovery as faust_recovery
from faust.transport import consumer as faust_consumer

__all__ = ["install_fast_drain"]


def _streams_resumed(consumer: Any) -> asyncio.Event:
    """Return the consumer's event that is clear while recovery resumes the stream partitions."""
    event: asyncio.Event | None = getattr(consumer, "_cityops_streams_resumed", None)
    if event is None:
        event = asyncio.Event()
        event.set()
        consumer._cityops_streams_resumed = event
    return event


async def _drain_messages(self: Any, fetcher: Any) -> None:  # noqa: PLR0912, PLR0915 - Faust's loop, kept whole
    callback = self.callback
    getmany = self.getmany
    consumer_should_stop = self._stopped.is_set
    fetcher_should_stop = fetcher._stopped.is_set
    get_read_offset = self._read_offset.__getitem__
    set_read_offset = self._read_offset.__setitem__
    commit_every = self._commit_every
    acks_enabled_for = self.app.topics.acks_enabled_for
    flow_suspended = self.suspend_flow.is_set
    streams_resumed = _streams_resumed(self)
    resuming_done = streams_resumed.is_set
    yield_every = 100
    num_since_yield = 0
    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            messages = getmany(timeout=1.0)
            await self.sleep(0)
            if self.should_stop:
                continue
            async for tp, message in messages:
                num_since_yield += 1
                if num_since_yield > yield_every:
                    await asyncio.sleep(0)
                    num_since_yield = 0
                if not resuming_done() and not self._is_changelog_tp(tp):
                    await streams_resumed.wait()  # see the module docstring
                    if message.generation_id != self.app.consumer_generation_id:
                        continue  # fetched before a rebalance; the broker sends it again
                offset = message.offset
                r_offset = get_read_offset(tp)
                if r_offset is not None and offset < r_offset:
                    continue  # already delivered (Faust drops it the same way)
                gap = offset - (r_offset or 0)
                if gap > 1 and r_offset and acks_enabled_for(message.topic):
                    await self._add_gap(tp, r_offset + 1, offset)
                if commit_every is not None and self._n_acked >= commit_every:
                    self._n_acked = 0
                    await self.commit()
                if flow_suspended():
                    await self.wait_first(callback(message), self.suspend_flow.wait())
                else:
                    await callback(message)
                set_read_offset(tp, offset)
    except self.consumer_stopped_errors:
        if self.transport.app.should_stop:
            self.log.info("Broker stopped consumer, shutting down...")
            return
        raise
    except asyncio.CancelledError:
        if self.transport.app.should_stop:
            self.log.info("Consumer shutting down for user cancel.")
            return
        raise


def _holding_streams(
    step: Callable[..., Awaitable[Any]],
) -> Callable[..., Awaitable[Any]]:
    """Wrap a recovery step so that the fetch loop hands over no stream records during it."""

    @functools.wraps(step)
    async def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        resumed = _streams_resumed(self.app.consumer)
        resumed.clear()
        try:
            return await step(self, *args, **kwargs)
        finally:
            resumed.set()

    run._cityops_holds_streams = True  # type: ignore[attr-defined]
    return run


def install_fast_drain() -> None:
    """Use :func:`_drain_messages` in every Faust consumer, held while streams resume.

    Idempotent.
    """
    faust_consumer.Consumer._drain_messages = _drain_messages  # type: ignore[method-assign]
    recovery = faust_recovery.Recovery
    for name in ("on_recovery_completed", "_resume_streams"):
        step = getattr(recovery, name)
        if not getattr(step, "_cityops_holds_streams", False):
            setattr(recovery, name, _holding_streams(step))
