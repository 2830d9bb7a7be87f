"""One measured change to faust-streaming 0.15's consumer: no task pair per message.

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
stop handling) is Faust's code, unchanged.
"""

from __future__ import annotations

import asyncio
from typing import Any

from faust.transport import consumer as faust_consumer

__all__ = ["install_fast_drain"]


async def _drain_messages(self: Any, fetcher: Any) -> None:  # noqa: PLR0912 - Faust's loop, kept whole
    callback = self.callback
    getmany = self.getmany
    consumer_should_stop = self._stopped.is_set
    fetcher_should_stop = fetcher._stopped.is_set
    get_read_offset = self._read_offset.__getitem__
    set_read_offset = self._read_offset.__setitem__
    commit_every = self._commit_every
    acks_enabled_for = self.app.topics.acks_enabled_for
    flow_suspended = self.suspend_flow.is_set
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


def install_fast_drain() -> None:
    """Use :func:`_drain_messages` for every Faust consumer in this process (idempotent)."""
    faust_consumer.Consumer._drain_messages = _drain_messages  # type: ignore[method-assign]
