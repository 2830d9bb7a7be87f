"""Talking to the cluster as an administrator: is it there, and do our topics exist.

Faust creates only its own internal topics; a source topic that is missing when a worker starts
is silently ignored until the next rebalance. So cityops creates every contract topic, with the
configured partitions and replication, before a worker subscribes.
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Iterable
from typing import Any

from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    TopicAlreadyExistsError,
)

from streams.exceptions import BrokerUnreachableError
from streams.settings import Settings

__all__ = [
    "admin_client",
    "aiokafka_config",
    "check_reachable",
    "client_config",
    "ensure_topics",
    "partitions_of",
]

log = logging.getLogger(__name__)

# The device registry is a table of the latest record per device: compaction keeps it bounded
# and lets a new worker rebuild the whole registry from the topic.
# Indicator parts likewise: only the latest share of each worker in each area matters.
_COMPACTED = frozenset({"devices_registry", "indicators_parts"})


def client_config(settings: Settings) -> dict[str, Any]:
    """Return kafka-python connection options (servers and security) for ``settings``."""
    config: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": settings.security_protocol,
    }
    if settings.security_protocol.startswith("SASL"):
        config["sasl_mechanism"] = settings.sasl_mechanism
        config["sasl_plain_username"] = settings.sasl_username
        if settings.sasl_password is not None:
            config["sasl_plain_password"] = settings.sasl_password.get_secret_value()
    return config


def aiokafka_config(settings: Settings) -> dict[str, Any]:
    """Return aiokafka connection options (servers and security) for ``settings``."""
    config = client_config(settings)
    if settings.security_protocol in {"SSL", "SASL_SSL"}:
        config["ssl_context"] = ssl.create_default_context()
    return config


def admin_client(settings: Settings, timeout_s: float | None = None) -> KafkaAdminClient:
    """Return a connected admin client, or raise :class:`BrokerUnreachableError`."""
    timeout_ms = int(1000 * (timeout_s or settings.broker_connect_timeout_s))
    try:
        return KafkaAdminClient(
            **client_config(settings),
            client_id=f"{settings.app_id}-admin",
            request_timeout_ms=timeout_ms,
            bootstrap_timeout_ms=timeout_ms,
        )
    except (KafkaConnectionError, KafkaTimeoutError) as exc:
        raise BrokerUnreachableError(
            f"no Kafka broker answers at {','.join(settings.bootstrap_servers)} ({exc})"
        ) from exc


def check_reachable(settings: Settings, timeout_s: float | None = None) -> None:
    """Raise :class:`BrokerUnreachableError` unless a Kafka broker answers.

    A plain TCP connect first gives the precise reason (refused, timed out, unknown host)
    quickly; the admin client then checks that the peer speaks Kafka.
    """
    timeout = timeout_s or settings.broker_connect_timeout_s
    reasons = []
    for server in settings.bootstrap_servers:
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
                break
        except (OSError, ValueError) as exc:
            reasons.append(f"{server}: {_reason(exc)}")
    else:
        raise BrokerUnreachableError("cannot reach the Kafka broker: " + "; ".join(reasons))
    admin_client(settings, timeout).close()


def _reason(exc: Exception) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    return str(exc) or type(exc).__name__


def ensure_topics(settings: Settings, names: Iterable[str] | None = None) -> list[str]:
    """Create the contract topics that do not exist yet; return the names created.

    ``names`` are fields of :class:`~streams.settings.TopicNames` (default: all of them).
    """
    fields = list(names) if names is not None else list(settings.topics.model_fields)
    admin = admin_client(settings)
    try:
        existing = set(admin.list_topics())
        wanted = [
            NewTopic(
                name=settings.topic(field),
                num_partitions=settings.topic_partitions,
                replication_factor=settings.topic_replication_factor,
                topic_configs={"cleanup.policy": "compact"} if field in _COMPACTED else {},
            )
            for field in fields
            if settings.topic(field) not in existing
        ]
        created = []
        for topic in wanted:
            try:
                admin.create_topics([topic])
            except TopicAlreadyExistsError:
                continue  # another worker created it a moment ago
            created.append(topic.name)
        if created:
            log.info("created topics %s", ", ".join(created))
        return created
    finally:
        admin.close()


def partitions_of(settings: Settings, topic: str) -> list[int]:
    """Return the partition numbers of ``topic`` (empty when it does not exist). Blocking."""
    consumer = KafkaConsumer(**client_config(settings), client_id=f"{settings.app_id}-metadata")
    try:
        return sorted(consumer.partitions_for_topic(topic) or ())
    finally:
        consumer.close()
