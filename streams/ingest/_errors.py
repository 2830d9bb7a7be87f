"""How ingest words a rejection: one copy for the decoder and every producer adapter.

A :class:`~streams.exceptions.Rejected` ends as a :class:`~schemas.DeadLetter`, which holds a
message of at most 2048 characters and only an ``event_id`` that is a valid identifier; the
helpers here build rejections that fit, parse a producer message into a JSON object, and turn
pydantic's complaints into text that names the producer's field, not the model's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson
from pydantic import ValidationError

from schemas.common import IDENTIFIER_PATTERN
from schemas.located import DeadLetterReason
from streams.exceptions import Rejected

__all__ = [
    "MESSAGE_LIMIT",
    "SCHEMA",
    "TEXT_LIMIT",
    "bounded",
    "describe",
    "parse_object",
    "reject",
    "show",
]

TEXT_LIMIT = 256
"""The longest attribute text value (``schemas.common.Attributes``)."""
MESSAGE_LIMIT = 2048
"""The longest ``DeadLetter.message``."""
SCHEMA = DeadLetterReason.SCHEMA_VIOLATION
"""The reason of most rejections, short for the many places that raise it."""

_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)
_SHOWN = 60  # a value quoted in a message: enough to recognise it, short enough to list several


def parse_object(raw: bytes) -> dict[str, Any]:
    """Parse a producer message, which must be one JSON object.

    Parameters
    ----------
    raw
        The message as the producer sent it.

    Returns
    -------
    dict
        The parsed object.

    Raises
    ------
    Rejected
        ``malformed_json`` if ``raw`` is not a UTF-8 JSON document, ``schema_violation`` if it
        is JSON but not an object.
    """
    try:
        message = orjson.loads(raw)
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise reject(DeadLetterReason.MALFORMED_JSON, f"not a UTF-8 JSON document: {exc}") from exc
    if not isinstance(message, dict):
        raise reject(SCHEMA, f"expected a JSON object, got {type(message).__name__}")
    return message


def describe(
    exc: ValidationError,
    sources: Mapping[str, str] | None = None,
    *,
    values: bool = True,
    most: int | None = None,
    whole: str = "message",
) -> str:
    """Say, for each of pydantic's errors, which field is wrong (with its value) and why.

    Parameters
    ----------
    exc
        Pydantic's complaint.
    sources
        Model field path (``bounding_box``, ``bounding_box.top``) to the producer's field path
        it was filled from (``after.box``, ``object.bbox.toplefty``): an adapter builds the model
        from a message of another shape, and the person reading the dead letter knows only that
        message. The longest mapped leading part of an error's location is replaced and the rest
        kept (``after.box`` + ``.top``); a location with none mapped is named as it is.
    values
        Quote each wrong value (shortened), as ``after.camera 'front door': …``.
    most
        Describe only the first ``most`` errors and count the others; ``None`` describes all.
    whole
        The name of an error about the whole input rather than one field.

    Returns
    -------
    str
        ``<field> <value>: <what is wrong>`` for each error, joined by ``; ``, then
        ``(and N more)`` when ``most`` left some out.
    """
    sources = sources or {}
    errors = exc.errors(include_url=False, include_context=False, include_input=values)
    parts = []
    for error in errors if most is None else errors[:most]:
        path = [str(part) for part in error["loc"]]
        for cut in range(len(path), 0, -1):
            source = sources.get(".".join(path[:cut]))
            if source is not None:
                path = [source, *path[cut:]]
                break
        where = ".".join(path) or whole
        parts.append(
            f"{where} {show(error['input'])}: {error['msg']}"
            if values
            else f"{where}: {error['msg']}"
        )
    text = "; ".join(parts)
    if most is not None and len(errors) > most:
        text += f" (and {len(errors) - most} more)"
    return text


def reject(reason: DeadLetterReason, message: str, event_id: str | None = None) -> Rejected:
    """Build a rejection that a dead letter can hold.

    Parameters
    ----------
    reason
        Why the record is rejected.
    message
        What was wrong; cut to :data:`MESSAGE_LIMIT` characters, ending in ``…`` when cut.
    event_id
        The event id as read from the record; kept only if it is a valid identifier, since the
        dead letter could not hold another (and a rejection must never fail itself).

    Returns
    -------
    Rejected
        For the caller to raise.
    """
    if len(message) > MESSAGE_LIMIT:
        message = message[: MESSAGE_LIMIT - 1] + "…"
    valid = event_id is not None and _IDENTIFIER.fullmatch(event_id) is not None
    return Rejected(reason, message, event_id=event_id if valid else None)


def show(value: object) -> str:
    """Quote a value for a rejection message: its ``repr``, shortened, or ``(missing)``.

    Parameters
    ----------
    value
        The value as read from the record; ``None`` is how an absent field reads.

    Returns
    -------
    str
        At most 60 characters.
    """
    if value is None:
        return "(missing)"
    shown = repr(value)
    return shown if len(shown) <= _SHOWN else shown[: _SHOWN - 1] + "…"


def bounded(text: str) -> str:
    """Cut ``text`` to :data:`TEXT_LIMIT` characters (ending in ``…`` when cut).

    Parameters
    ----------
    text
        A producer text to keep as an event attribute.

    Returns
    -------
    str
        ``text``, or its start if it is longer than an attribute value may be.
    """
    return text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 1] + "…"
