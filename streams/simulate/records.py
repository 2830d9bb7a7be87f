"""Timed records for contract topics, and the JSON Lines format they are recorded in.

The simulator, scenarios and replays all send these.

A record names its topic by the contract's default name (``sensor.readings``), not the
configured one: a recording made under one topic prefix replays under another.

One JSON object per line::

    {"at": "2026-07-01T08:00:00+00:00", "topic": "sensor.readings", "key": "wl-001",
     "value": {...the record as JSON...}}

``at`` is the record's event time (a reading's ``observed_at``; for registry records and
commands the moment they are sent), which paces a replay. ``value`` is ``null`` for a
tombstone (a device removed from the registry).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import orjson

from streams.exceptions import StreamsError
from streams.settings import Settings, TopicNames

__all__ = ["Outgoing", "read_jsonl", "topic_for", "write_jsonl"]

_FIELDS = {str(field.default): name for name, field in TopicNames.model_fields.items()}


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One record to send: its event time, contract topic, key and JSON value."""

    at: datetime
    topic: str
    """The contract's default topic name, e.g. ``sensor.readings``."""
    key: bytes
    value: bytes | None
    """The record as JSON bytes; ``None`` for a tombstone."""

    def line(self) -> bytes:
        """Return the record as one JSON Lines line (with its newline)."""
        value: Any = None if self.value is None else orjson.Fragment(self.value)
        document = {
            "at": self.at.isoformat(),
            "topic": self.topic,
            "key": self.key.decode(),
            "value": value,
        }
        return orjson.dumps(document) + b"\n"


def topic_for(settings: Settings, topic: str) -> str:
    """Return the configured name of contract topic ``topic`` (``sensor.readings`` → its name)."""
    field = _FIELDS.get(topic)
    if field is None:
        known = ", ".join(sorted(_FIELDS))
        raise StreamsError(f"unknown topic {topic!r}; the contract topics are {known}")
    return settings.topic(field)


def write_jsonl(records: Iterable[Outgoing], out: IO[bytes]) -> int:
    """Write ``records`` to ``out`` as JSON Lines; return how many."""
    count = 0
    for record in records:
        out.write(record.line())
        count += 1
    return count


def read_jsonl(path: Path) -> Iterator[Outgoing]:
    """Read the records of a JSON Lines file, failing with the line number of a bad one."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise StreamsError(f"cannot read {path}: {exc.strerror or exc}") from exc
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                document = orjson.loads(line)
                value = document["value"]
                yield Outgoing(
                    at=datetime.fromisoformat(document["at"]),
                    topic=str(document["topic"]),
                    key=str(document["key"]).encode(),
                    value=None if value is None else orjson.dumps(value),
                )
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise StreamsError(f"{path}:{number}: not a cityops record line ({exc})") from exc
