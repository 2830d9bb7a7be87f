"""Replaying recorded traffic (JSON Lines, :mod:`streams.simulate.records`) onto the topics.

The whole file is checked before the first record goes out: a bad line, or a topic that is
not a contract topic, fails with :class:`StreamsError` naming it and sends nothing. Records go
out in file order (Kafka keeps that order per key), paced by their ``at`` times.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from streams.exceptions import StreamsError
from streams.settings import Settings
from streams.simulate.records import read_jsonl, topic_for
from streams.simulate.send import Pacer, Sender

__all__ = ["replay"]

_PROGRESS_EVERY_S = 0.25
"""At most four progress calls a second: enough for a terminal, nothing for the loop."""


async def replay(
    settings: Settings,
    path: Path,
    *,
    speed: float | None,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Send the records of the JSON Lines file ``path``; return how many.

    Parameters
    ----------
    settings : Settings
        The broker and the topic names the contract topics map to.
    path : Path
        A recording; read twice (checked, then sent), never held in memory whole.
    speed : float or None
        ``None`` sends as fast as the broker takes them; ``1.0`` at the pace of their ``at``
        times; ``N`` N times faster.
    progress : callable, optional
        Called with (records sent, records in the file) a few times a second, and once at the
        end when the broker has them all.

    Raises
    ------
    StreamsError
        A line that is not a record or names an unknown topic (nothing is sent), an unreadable
        file, or a broker that refuses records.
    """
    pacer = Pacer(speed)  # a bad speed fails before anything else
    total = _check(settings, path)
    sent = 0
    last_report = time.monotonic()
    async with Sender(settings) as sender:
        for record in read_jsonl(path):
            await pacer.wait_for(record.at)
            await sender.send((record,))
            sent += 1
            if progress is not None and time.monotonic() - last_report >= _PROGRESS_EVERY_S:
                progress(sent, total)
                last_report = time.monotonic()
    if progress is not None:
        progress(sent, total)
    return sent


def _check(settings: Settings, path: Path) -> int:
    """Read every line of ``path``; return how many records it holds."""
    count = 0
    topics: set[str] = set()
    for record in read_jsonl(path):
        count += 1
        if record.topic not in topics:
            try:
                topic_for(settings, record.topic)
            except StreamsError as exc:
                raise StreamsError(f"{path}: record {count}: {exc}") from exc
            topics.add(record.topic)
    return count
