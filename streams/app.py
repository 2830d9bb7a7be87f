"""The cityops Faust application.

``create_app`` builds the app from :class:`~streams.settings.Settings` and registers the agents.
The module attribute ``app`` lets Faust's own command line run it too::

    faust -A streams.app worker -l info

which is what ``cityops worker`` does after checking the broker and the web port. ``app`` is
built on first access, from the environment, so importing this module for ``create_app`` builds
no app and creates no directory.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import faust

from streams.relay import register_relay
from streams.settings import Settings
from streams.topics import ensure_topics

__all__ = ["CityOpsApp", "app", "create_app"]

app: CityOpsApp  # built on first access, see __getattr__ below


class CityOpsApp(faust.App):
    """A Faust app that creates the cityops contract topics before it subscribes to them."""

    cityops_settings: Settings

    async def on_start(self) -> None:
        """Create missing contract topics, then start as Faust does.

        Faust creates only its internal topics and ignores a missing source topic until the
        next rebalance, so the contract topics must exist before the consumer subscribes.
        """
        await asyncio.to_thread(ensure_topics, self.cityops_settings)
        await super().on_start()


def create_app(settings: Settings | None = None) -> CityOpsApp:
    """Return a configured cityops app with its agents registered."""
    settings = settings or Settings()
    datadir = settings.data_dir / "worker" / f"{settings.app_id}-{settings.web_port}"
    # Faust creates only the last path component.
    datadir.parent.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {
        "broker": settings.faust_broker_url,
        "store": "rocksdb://" if settings.store == "rocksdb" else "memory://",
        # One directory per worker on a host: RocksDB locks its files.
        "datadir": str(datadir),
        "web_host": settings.web_host,
        "web_port": settings.web_port,
        "web_bind": settings.web_host,
        "topic_partitions": settings.topic_partitions,
        "topic_replication_factor": settings.topic_replication_factor,
        "consumer_auto_offset_reset": "earliest",
        # At-least-once plus idempotent processing (DESIGN.md): exactly_once has open bugs.
        "processing_guarantee": "at_least_once",
        "producer_acks": -1,
        "autodiscover": False,
        "key_serializer": "raw",
        "value_serializer": "raw",
    }
    credentials = _credentials(settings)
    if credentials is not None:
        options["broker_credentials"] = credentials
    app = CityOpsApp(settings.app_id, **options)
    app.cityops_settings = settings
    register_relay(app, settings)
    return app


def _credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    protocol = settings.security_protocol
    if protocol.startswith("SASL"):
        password = settings.sasl_password.get_secret_value() if settings.sasl_password else ""
        return faust.SASLCredentials(
            username=settings.sasl_username,
            password=password,
            mechanism=settings.sasl_mechanism,
            ssl_context=ssl.create_default_context() if protocol == "SASL_SSL" else None,
        )
    if protocol == "SSL":
        return faust.SSLCredentials(ssl.create_default_context())
    return None


def __getattr__(name: str) -> CityOpsApp:
    # PEP 562: Faust's ``-A streams.app`` looks ``app`` up as a module attribute.
    if name == "app":
        globals()["app"] = built = create_app()
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
