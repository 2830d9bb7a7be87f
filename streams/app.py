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
import logging
import ssl
from datetime import timedelta
from typing import Any

import faust
from faust.sensors.prometheus import setup_prometheus_sensors
from prometheus_client import CollectorRegistry

import geo
from streams import _faust
from streams.detect.agent import register_border, register_detection, rules_path
from streams.detect.border import BorderMerge, county_of_cells
from streams.detect.detector import Detector
from streams.detect.rules import digest, load_rules
from streams.escalate.agent import register_escalation
from streams.escalate.cases import Escalator
from streams.escalate.policy import DEFAULT_POLICY, load_policy
from streams.indicators.agent import register_indicators
from streams.ingest.agent import input_formats, register_ingest
from streams.ingest.pipeline import Ingest, Limits
from streams.metrics import Metrics
from streams.registry import DeviceRegistry
from streams.settings import Settings
from streams.topics import ensure_topics

__all__ = ["CityOpsApp", "app", "create_app"]

app: CityOpsApp  # built on first access, see __getattr__ below


log = logging.getLogger(__name__)


class CityOpsApp(faust.App):
    """A Faust app that prepares what its agents need before it subscribes to anything.

    Attributes
    ----------
    cityops_settings
        The settings it was built from.
    prometheus, metrics
        The Prometheus registry ``/metrics`` serves, and cityops' metrics in it.
    registry
        The live device registry (every worker holds all of it).
    ingest
        The ingest pipeline, built at start (it needs the grid index and the registry).
    detector, rules_digest
        Detection's working state and rules, built at start; the fingerprint of the rules file
        it last read.
    border
        Joins incidents across a county line into city incidents, built at start.
    escalator
        Escalation's decisions under the policy in force, built at start.
    """

    cityops_settings: Settings
    prometheus: CollectorRegistry
    metrics: Metrics
    registry: DeviceRegistry
    ingest: Ingest
    detector: Detector
    border: BorderMerge
    escalator: Escalator
    rules_digest: str = ""

    async def on_start(self) -> None:
        """Create missing topics, load the geography, read the registry, then start as Faust.

        Faust creates only its internal topics and ignores a missing source topic until the
        next rebalance, so the contract topics must exist before the consumer subscribes; the
        registry must be read before the first event needs a device's position.
        """
        settings = self.cityops_settings
        await asyncio.to_thread(ensure_topics, settings)
        index = await asyncio.to_thread(lambda: geo.GridIndex(geo.load_heyuan()))
        await self.registry.start()
        await self.registry.ready.wait()
        self.ingest = Ingest(
            index=index,
            registry=self.registry,
            formats=input_formats(self),
            geography=index.hierarchy.version,
            limits=Limits(
                max_event_bytes=settings.max_event_bytes,
                future_tolerance=timedelta(seconds=settings.future_tolerance_s),
                max_age=timedelta(seconds=settings.max_event_age_s),
                dedup_horizon_s=settings.dedup_horizon_s,
            ),
            metrics=self.metrics,
        )
        log.info(
            "ingest ready: %d grid cells (geography %s), %d devices",
            len(index.hierarchy.table("cell").codes),
            index.hierarchy.version,
            len(self.registry),
        )
        if settings.detection_enabled:
            await self._start_detection(index.hierarchy)
            path = settings.policy_file or DEFAULT_POLICY
            policy = await asyncio.to_thread(load_policy, path)  # a bad file stops the start
            hierarchy = index.hierarchy
            self.escalator = Escalator(
                policy,
                names=hierarchy.name,
                parent=lambda code: hierarchy.unit(code).parent,
                city=hierarchy.city.code,
            )
            log.info(
                "escalation ready: policy %s from %s, %s clock",
                policy.version,
                path,
                settings.clock,
            )
        await super().on_start()

    async def _start_detection(self, hierarchy: geo.Hierarchy) -> None:
        path = rules_path(self)
        rules = await asyncio.to_thread(load_rules, path)  # a bad file stops the start, loudly
        self.rules_digest = digest(path.read_bytes())
        neighbours = await asyncio.to_thread(geo.cell_neighbours, hierarchy)
        self.detector = Detector(
            rules,
            neighbours=neighbours,
            devices=self.registry.get,
            names=hierarchy.name,
            allowed_lateness=self.cityops_settings.allowed_lateness_s,
        )
        county_of = await asyncio.to_thread(county_of_cells, hierarchy)
        self.border = BorderMerge(
            neighbours=neighbours,
            county_of=county_of,
            names=hierarchy.name,
            window_s=rules.evidence_window_s,
        )
        log.info("detection ready: rules version %s from %s", rules.version, path)

    async def on_stop(self) -> None:
        """Stop following the device registry, then stop as Faust does."""
        await self.registry.stop()
        await super().on_stop()


def create_app(settings: Settings | None = None) -> CityOpsApp:
    """Return a configured cityops app with its agents registered."""
    _faust.install_fast_drain()
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
        "broker_session_timeout": settings.session_timeout_s,
        "broker_heartbeat_interval": settings.session_timeout_s / 10,
        # At-least-once plus idempotent processing (DESIGN.md): exactly_once has open bugs.
        "processing_guarantee": "at_least_once",
        "producer_acks": -1,
        # Ingest sends a batch per partition; 16 KiB (the default) holds only ~20 events.
        "producer_max_batch_size": 512 * 1024,
        "autodiscover": False,
        "key_serializer": "raw",
        "value_serializer": "raw",
    }
    credentials = _credentials(settings)
    if credentials is not None:
        options["broker_credentials"] = credentials
    app = CityOpsApp(settings.app_id, **options)
    app.cityops_settings = settings
    app.prometheus = CollectorRegistry()
    app.metrics = Metrics.create(app.prometheus)
    app.metrics.preset(list(input_formats(app)))
    app.registry = DeviceRegistry(settings)
    app.metrics.devices_registered.set_function(lambda: len(app.registry))
    app.metrics.consumer_lag.watch(lambda: _consumer_lag(app))
    # Faust's own monitor and cityops' metrics on one page; its names start with ``faust_``.
    setup_prometheus_sensors(app, pattern="/metrics", registry=app.prometheus, name_prefix="faust")
    register_ingest(app)
    if settings.detection_enabled:
        app.metrics.preset_detection(settings.topic("events_located"))
        register_detection(app)
        register_border(app)
        register_escalation(app)
        app.metrics.preset_escalation()
        register_indicators(app)
    return app


def _consumer_lag(app: faust.App) -> dict[tuple[str, str], float]:
    """Return the records not yet committed in each assigned partition with a known end."""
    consumer: Any = app._consumer
    if consumer is None:
        return {}
    lag: dict[tuple[str, str], float] = {}
    for tp in consumer.assignment():
        end = consumer.highwater(tp)
        # Nothing committed yet by this group: it reads from the start of the partition.
        committed = consumer._committed_offset.get(tp) or 0
        if end is not None:
            lag[(tp.topic, str(tp.partition))] = float(max(end - committed, 0))
    return lag


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
