"""Errors of the stream side of cityops: configuration, the broker, the worker."""

from schemas.exceptions import CityOpsError

__all__ = [
    "BrokerError",
    "BrokerStartError",
    "BrokerUnreachableError",
    "PortInUseError",
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
