"""Recognising an event seen before: producer retries, and redelivery after a crash.

Two memories, both bounded:

- :class:`SeenEvents` remembers the id of every validated event for ``horizon`` seconds (a
  producer that retries sends the same id again, at a new offset).
- the offsets of records already dead-lettered before validation (malformed, too large …):
  such a record has no trustworthy id, so after a crash only its offset recognises it.

Neither lives in a Faust table, because writing a changelog record per event would double the
write load. The output topics are the changelog instead: what ingest wrote to
``events.located`` and ``events.deadletter`` within the horizon is exactly what it has already
done, and :mod:`streams.ingest.recovery` reads it back when partitions are assigned. Kafka
redelivers only records after the last committed offset, and ingest commits within seconds, so
a horizon of minutes covers every redelivery.
"""

from __future__ import annotations

from collections.abc import Hashable

__all__ = ["SeenEvents"]


class SeenEvents:
    """The keys seen in the last ``horizon_s`` seconds, forgotten in whole time slots.

    Keys live in ``slots`` + 1 sets, one per slice of the horizon; a lookup checks them all and
    expiry drops a whole set, so both stay O(slots) with no per-key timestamps. A key is
    remembered for at least ``horizon_s`` and at most ``horizon_s * (1 + 1/slots)``.

    Examples
    --------
    >>> seen = SeenEvents(horizon_s=60)
    >>> seen.add("d1/e1", now=0.0), seen.add("d1/e1", now=30.0)
    (True, False)
    >>> seen.add("d1/e1", now=200.0)  # forgotten after the horizon
    True
    """

    def __init__(self, horizon_s: float, slots: int = 10) -> None:
        if horizon_s <= 0 or slots < 1:
            raise ValueError("horizon_s must be positive and slots at least 1")
        self.horizon_s = horizon_s
        self._slot_s = horizon_s / slots
        self._slots = slots
        self._sets: dict[int, set[Hashable]] = {}
        self._newest = -(2**62)

    def clear(self) -> None:
        """Forget every key."""
        self._sets.clear()

    def __len__(self) -> int:
        return sum(len(keys) for keys in self._sets.values())

    def __bool__(self) -> bool:
        # A slot exists only while it holds a key: this is O(1), unlike len().
        return bool(self._sets)

    def __contains__(self, key: object) -> bool:
        return any(key in keys for keys in self._sets.values())

    def add(self, key: Hashable, now: float) -> bool:
        """Remember ``key`` at time ``now`` (seconds); return ``False`` if it was already known.

        ``now`` may go back a little (recovery remembers keys at the time they were first
        processed); a time older than the horizon is not remembered at all.
        """
        slot = int(now // self._slot_s)
        if slot > self._newest:
            self._newest = slot
            oldest = slot - self._slots
            for stale in [number for number in self._sets if number < oldest]:
                del self._sets[stale]
        elif slot < self._newest - self._slots:
            return key not in self
        if key in self:
            return False
        self._sets.setdefault(slot, set()).add(key)
        return True
