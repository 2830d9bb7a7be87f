"""Errors of the stream side of cityops: configuration, the broker, the worker, bad input."""

from __future__ import annotations

from schemas.exceptions import CityOpsError
from schemas.located import DeadLetterReason

__all__ = [
    "BrokerError",
    "BrokerStartError",
    "BrokerUnreachableError",
    "PortInUseError",
    "Rejected",
    "StreamsError",
]


class StreamsError(CityOpsError):
    """Base class of errors raised by ``streams``."""


class BrokerError(StreamsError):
    """The Kafka broker cannot be used."""


class BrokerStartError(BrokerError):
    """The local broker could not be started; the message says why and how to fix it."""


class BrokerUnreachableError(BrokerError):
    """No Kafka broker answers at the configured address."""


class PortInUseError(StreamsError):
    """A port cityops needs is already taken by another process."""


class Rejected(StreamsError):  # noqa: N818 - a verdict on input, not a failure of cityops
    """An input record cannot become a located event; it goes to ``events.deadletter``.

    Raised by parsing and validation code, caught by the ingest pipeline, which turns it into a
    :class:`~schemas.DeadLetter` and counts it by ``reason``. Never lets an input crash a worker.

    Parameters
    ----------
    reason
        The machine-readable reason (a metric label).
    message
        What was wrong, for a person; say which field and which value.
    event_id, device_id
        The event and device ids, when they could be read.
    """

    def __init__(
        self,
        reason: DeadLetterReason,
        message: str,
        *,
        event_id: str | None = None,
        device_id: str | None = None,
    ) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.event_id = event_id
        self.device_id = device_id
