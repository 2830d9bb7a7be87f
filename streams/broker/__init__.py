"""The embedded local Kafka broker used for development, tests, demos and benchmarks."""

from streams.broker.jars import kafka_version, resolve_jars
from streams.broker.local import BrokerStatus, LocalBroker

__all__ = ["BrokerStatus", "LocalBroker", "kafka_version", "resolve_jars"]
