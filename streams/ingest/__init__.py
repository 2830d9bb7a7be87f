"""Ingest: raw sensor readings and video events in, located events and dead letters out.

:class:`Ingest` is the logic (validate, deduplicate, locate), usable without Kafka;
:func:`register_ingest` puts it in a Faust app. See ``docs/ingest.md``.
"""

from streams.ingest.decode import FORMAT_HEADER, Format, decode
from streams.ingest.pipeline import AFTER_DEDUP, BatchResult, Ingest, Limits, Message, Record

__all__ = [
    "AFTER_DEDUP",
    "FORMAT_HEADER",
    "BatchResult",
    "Format",
    "Ingest",
    "Limits",
    "Message",
    "Record",
    "decode",
]
