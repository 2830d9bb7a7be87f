"""Every setting of cityops, in one place, each with its environment variable.

Settings come from the environment (prefix ``CITYOPS_``; nested fields use ``__``, for example
``CITYOPS_TOPICS__SENSOR_READINGS``) or from a ``.env`` file in the working directory. ``cityops
config`` prints the effective values with secrets masked.

Examples
--------
>>> settings = Settings(broker_url="kafka://10.0.0.5:9092", topic_prefix="heyuan.")
>>> settings.topic("sensor_readings")
'heyuan.sensor.readings'
>>> settings.embedded_broker
False
"""

from __future__ import annotations

import os
import zoneinfo
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "TopicNames"]

ENV_PREFIX = "CITYOPS_"


def _xdg_dir(variable: str, fallback: str) -> Path:
    base = os.environ.get(variable)
    return (Path(base) if base else Path.home() / fallback) / "cityops"


class TopicNames(BaseModel):
    """Names of the topics that make up the cityops contract (see DESIGN.md, Data flow).

    Each is overridable, e.g. ``CITYOPS_TOPICS__VIDEO_EVENTS=vision.events``; ``topic_prefix``
    is put in front of all of them.
    """

    model_config = ConfigDict(use_attribute_docstrings=True)

    sensor_readings: str = "sensor.readings"
    """Raw IoT sensor readings, as devices send them. ``CITYOPS_TOPICS__SENSOR_READINGS``"""
    video_events: str = "video.events"
    """Raw AI video events (cameras, NVRs, analytics). ``CITYOPS_TOPICS__VIDEO_EVENTS``"""
    frigate_events: str = "video.frigate"
    """Frigate NVR ``frigate/events`` messages bridged from MQTT, converted into video events.
    ``CITYOPS_TOPICS__FRIGATE_EVENTS``"""
    deepstream_events: str = "video.deepstream"
    """NVIDIA DeepStream nvmsgconv messages (full schema), converted into video events.
    ``CITYOPS_TOPICS__DEEPSTREAM_EVENTS``"""
    devices_registry: str = "devices.registry"
    """Compacted registry of devices, keyed by device id. ``CITYOPS_TOPICS__DEVICES_REGISTRY``"""
    events_located: str = "events.located"
    """Validated events with their grid location. ``CITYOPS_TOPICS__EVENTS_LOCATED``"""
    events_deadletter: str = "events.deadletter"
    """Input that could not be used, with the reason and the original bytes.
    ``CITYOPS_TOPICS__EVENTS_DEADLETTER``"""
    incidents_updates: str = "incidents.updates"
    """Full incident state after every change. ``CITYOPS_TOPICS__INCIDENTS_UPDATES``"""
    incidents_border: str = "incidents.border"
    """Revisions of incidents touching a county line, keyed by city, for joining them into one
    city incident. ``CITYOPS_TOPICS__INCIDENTS_BORDER``"""
    incident_commands: str = "incident.commands"
    """Lifecycle commands from departments and screens. ``CITYOPS_TOPICS__INCIDENT_COMMANDS``"""
    incident_cases: str = "incident.cases"
    """Each incident's case: owner tier, department, deadlines, audit trail; keyed by incident
    id. ``CITYOPS_TOPICS__INCIDENT_CASES``"""
    incident_rejections: str = "incident.rejections"
    """Commands that could not apply, with the reason. ``CITYOPS_TOPICS__INCIDENT_REJECTIONS``"""
    dispatch_orders: str = "dispatch.orders"
    """Orders to departments, keyed by department. ``CITYOPS_TOPICS__DISPATCH_ORDERS``"""
    screens_indicators: str = "screens.indicators"
    """Indicator snapshots for command-centre screens. ``CITYOPS_TOPICS__SCREENS_INDICATORS``"""
    indicators_parts: str = "indicators.parts"
    """Each worker's share of every area's indicators, keyed by area, replaced as they change;
    compacted. ``CITYOPS_TOPICS__INDICATORS_PARTS``"""


class Settings(BaseSettings):
    """The effective configuration of one cityops process."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
        validate_default=True,
        # The docstring under each field becomes its description (and its JSON Schema text).
        use_attribute_docstrings=True,
    )

    # --- Kafka -----------------------------------------------------------------------------
    broker_url: str | None = None
    """Kafka bootstrap servers, ``kafka://host:port[;host:port]`` or ``host:port[,host:port]``.
    Unset: cityops uses its embedded local broker (``cityops broker start``) on
    ``local_broker_port``. ``CITYOPS_BROKER_URL``"""
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    """How to talk to a configured cluster. ``CITYOPS_SECURITY_PROTOCOL``"""
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    """SASL mechanism when the protocol is SASL_*. ``CITYOPS_SASL_MECHANISM``"""
    sasl_username: str | None = None
    """SASL user name. ``CITYOPS_SASL_USERNAME``"""
    sasl_password: SecretStr | None = None
    """SASL password; never printed. ``CITYOPS_SASL_PASSWORD``"""
    broker_connect_timeout_s: float = Field(default=10.0, gt=0)
    """How long to wait for a configured broker to answer before giving up with an error.
    ``CITYOPS_BROKER_CONNECT_TIMEOUT_S``"""

    # --- topics ----------------------------------------------------------------------------
    topics: TopicNames = TopicNames()
    """Contract topic names (``CITYOPS_TOPICS__<NAME>``)."""
    topic_prefix: str = ""
    """Put in front of every contract topic name, e.g. ``heyuan.`` to share a cluster between
    cities or to isolate a test run. ``CITYOPS_TOPIC_PREFIX``"""
    topic_partitions: int = Field(default=8, ge=1, le=1024)
    """Partitions of the topics cityops creates. 8 suits one or two workers on a local broker;
    raise it to scale out (it caps the number of useful worker processes).
    ``CITYOPS_TOPIC_PARTITIONS``"""
    topic_replication_factor: int = Field(default=1, ge=1, le=7)
    """Replication factor of the topics cityops creates; 1 suits the local broker only, use 3 on
    a real cluster. ``CITYOPS_TOPIC_REPLICATION_FACTOR``"""

    # --- worker ----------------------------------------------------------------------------
    app_id: str = Field(default="cityops", pattern=r"^[A-Za-z0-9._-]{1,100}$")
    """Faust application id: the consumer group and the prefix of internal topics. Workers with
    the same id share the work. ``CITYOPS_APP_ID``"""
    web_host: str = "127.0.0.1"
    """Interface of the worker's web server (``/metrics``, health). ``CITYOPS_WEB_HOST``"""
    web_port: int = Field(default=6066, ge=1, le=65535)
    """Port of the worker's web server; each worker on a host needs its own.
    ``CITYOPS_WEB_PORT``"""
    session_timeout_s: float = Field(default=30.0, ge=6, le=300)
    """How long a silent worker keeps its partitions before the group gives them to others: a
    crashed worker's work waits this long. Heartbeats go every tenth of it.
    ``CITYOPS_SESSION_TIMEOUT_S``"""
    store: Literal["rocksdb", "memory"] = "rocksdb"
    """Table store: ``rocksdb`` keeps table state on disk and restarts fast; ``memory`` rebuilds
    it from the changelog topics at start (tests). ``CITYOPS_STORE``"""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Log level of cityops processes. ``CITYOPS_LOG_LEVEL``"""

    # --- ingest ----------------------------------------------------------------------------
    max_event_bytes: int = Field(default=65_536, ge=1_024, le=1_048_576)
    """Largest input record accepted; a larger one is dead-lettered as ``too_large`` (a real
    reading or detection is well under 2 KiB). ``CITYOPS_MAX_EVENT_BYTES``"""
    future_tolerance_s: float = Field(default=300.0, ge=0)
    """How far in the future an event's observed time may be (device clocks drift) before it is
    dead-lettered as ``future_timestamp``. ``CITYOPS_FUTURE_TOLERANCE_S``"""
    max_event_age_s: float = Field(default=86_400.0, gt=0)
    """How old an event may be when it arrives; older ones are dead-lettered as ``too_late``. A
    day covers a device that buffered through an overnight outage; raise it to replay history.
    ``CITYOPS_MAX_EVENT_AGE_S``"""
    dedup_horizon_s: float = Field(default=600.0, gt=0, le=86_400)
    """How long an event id is remembered to recognise duplicates: longer than producer retries
    and a worker restart take. Memory grows with it (about 100 bytes per event).
    ``CITYOPS_DEDUP_HORIZON_S``"""
    ingest_batch_size: int = Field(default=2_000, ge=1, le=100_000)
    """Most records ingest validates and locates at once. ``CITYOPS_INGEST_BATCH_SIZE``"""
    ingest_batch_wait_s: float = Field(default=0.05, gt=0, le=10)
    """Longest a partial batch waits for more records; bounds the latency batching adds.
    ``CITYOPS_INGEST_BATCH_WAIT_S``"""

    # --- detection -------------------------------------------------------------------------
    detection_enabled: bool = True
    """Run the detection agent in this worker. Off only to measure ingest alone (the ingest
    benchmark does); every worker of a deployment should agree. ``CITYOPS_DETECTION_ENABLED``"""
    rules_file: Path | None = None
    """The detection rules (TOML, see ``docs/detection.md``); unset: the shipped Heyuan rules.
    A worker re-reads the file when it changes; a file that does not validate is refused with
    the reason and the rules in force stay. ``CITYOPS_RULES_FILE``"""
    rules_check_interval_s: float = Field(default=5.0, gt=0, le=3_600)
    """How often a worker looks for a changed rules file. ``CITYOPS_RULES_CHECK_INTERVAL_S``"""
    allowed_lateness_s: float = Field(default=600.0, ge=0, le=86_400)
    """How far behind the latest event time of its county an event may be observed and still
    be used; an older one is dead-lettered as ``late_event``. Absences and quiet periods are
    judged this far behind the latest event time. ``CITYOPS_ALLOWED_LATENESS_S``"""
    detect_batch_size: int = Field(default=1_000, ge=1, le=2_000)
    """Most located events detection applies before it writes its state and sends. Each write
    starts with one journal record holding all of a county's changes, which must stay under
    Kafka's 1 MB message limit: hence the bound. ``CITYOPS_DETECT_BATCH_SIZE``"""

    # --- escalation ------------------------------------------------------------------------
    policy_file: Path | None = None
    """The escalation policy (TOML, see ``docs/escalation.md``); unset: the shipped Heyuan
    policy. Read at start; a file that does not validate stops the worker with the reason.
    ``CITYOPS_POLICY_FILE``"""
    clock: Literal["wall", "event"] = "wall"
    """What deadlines run on: ``wall``, the wall clock (live), or ``event``, the times of the
    incidents and commands themselves (replays and drills: the same input then escalates the
    same way, however fast it is played). ``CITYOPS_CLOCK``"""
    tick_interval_s: float = Field(default=1.0, gt=0, le=60)
    """On the wall clock, how often each worker checks the deadlines of its incidents.
    ``CITYOPS_TICK_INTERVAL_S``"""

    # --- simulation (cityops run) ----------------------------------------------------------
    run_simulator: bool | None = None
    """Whether ``cityops run`` also runs ``cityops simulate`` to feed the worker; unset: only on
    the embedded local broker (a demo), never against a configured cluster.
    ``CITYOPS_RUN_SIMULATOR``"""
    simulator_scenarios: str = "dongjiang-flood@60"
    """Scenarios ``cityops run``'s simulator injects, ``NAME@SECONDS`` separated by commas.
    ``CITYOPS_SIMULATOR_SCENARIOS``"""

    # --- indicators ------------------------------------------------------------------------
    indicators_interval_s: float = Field(default=5.0, gt=0, le=3600)
    """How often indicators are published on ``screens.indicators`` for the city, every county
    and every town. ``CITYOPS_INDICATORS_INTERVAL_S``"""
    timezone: str = "Asia/Shanghai"
    """The city's time zone (IANA name): what "today" means for the indicators.
    ``CITYOPS_TIMEZONE``"""

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {value!r} (an IANA name, e.g. Asia/Shanghai)"
            ) from exc
        return value

    # --- local files -----------------------------------------------------------------------
    data_dir: Path = Field(default_factory=lambda: _xdg_dir("XDG_STATE_HOME", ".local/state"))
    """Disposable local state: the local broker's log and data, worker table stores.
    ``CITYOPS_DATA_DIR``"""
    cache_dir: Path = Field(default_factory=lambda: _xdg_dir("XDG_CACHE_HOME", ".cache"))
    """Per-user download cache (the local broker's jars), shared by all data dirs.
    ``CITYOPS_CACHE_DIR``"""

    # --- embedded local broker -------------------------------------------------------------
    local_broker_port: int = Field(default=9092, ge=1, le=65535)
    """Client port of the local broker, on 127.0.0.1. ``CITYOPS_LOCAL_BROKER_PORT``"""
    local_controller_port: int = Field(default=9093, ge=1, le=65535)
    """KRaft controller port of the local broker, on 127.0.0.1.
    ``CITYOPS_LOCAL_CONTROLLER_PORT``"""
    local_broker_heap_mb: int = Field(default=512, ge=128, le=512)
    """Maximum JVM heap of the local broker; 512 MB carries a city's load with room to spare.
    ``CITYOPS_LOCAL_BROKER_HEAP_MB``"""
    local_broker_start_timeout_s: float = Field(default=120.0, gt=0)
    """How long ``cityops broker start`` waits for the broker to accept topics (the first start
    also downloads the jars). ``CITYOPS_LOCAL_BROKER_START_TIMEOUT_S``"""

    @field_validator("broker_url")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return value.strip()

    @property
    def embedded_broker(self) -> bool:
        """True when no broker is configured and the local broker is to be used."""
        return self.broker_url is None

    @property
    def bootstrap_servers(self) -> list[str]:
        """The broker addresses as ``host:port`` strings."""
        if self.broker_url is None:
            return [f"127.0.0.1:{self.local_broker_port}"]
        url = self.broker_url.removeprefix("kafka://")
        return [part.strip() for part in url.replace(";", ",").split(",") if part.strip()]

    @property
    def faust_broker_url(self) -> str:
        """The broker addresses in Faust's URL form."""
        return "kafka://" + ";".join(self.bootstrap_servers)

    def topic(self, name: str) -> str:
        """Return the full name of contract topic ``name`` (a field of :class:`TopicNames`)."""
        return self.topic_prefix + str(getattr(self.topics, name))

    def all_topics(self) -> list[str]:
        """Return the full names of all contract topics."""
        return [self.topic(name) for name in TopicNames.model_fields]

    def environment(self) -> dict[str, str]:
        """Return every set setting as ``{ENV_VAR: value}``, secrets in clear.

        What a child process needs to run with exactly these settings.
        """
        out: dict[str, str] = {}
        for name, value in self.model_dump().items():
            if name == "topics":
                for topic_name, topic in value.items():
                    out[f"{ENV_PREFIX}TOPICS__{topic_name.upper()}"] = str(topic)
                continue
            field = getattr(self, name)
            plain = field.get_secret_value() if isinstance(field, SecretStr) else value
            if plain is not None:
                out[f"{ENV_PREFIX}{name.upper()}"] = str(plain)
        return out

    def masked(self) -> dict[str, str]:
        """Return every setting as ``{ENV_VAR: value}`` with secrets masked, for display."""
        environment = self.environment()
        out: dict[str, str] = {}
        for name in type(self).model_fields:
            if name == "topics":
                topics = f"{ENV_PREFIX}TOPICS__"
                out.update({k: v for k, v in environment.items() if k.startswith(topics)})
                continue
            key = f"{ENV_PREFIX}{name.upper()}"
            secret = isinstance(getattr(self, name), SecretStr)
            out[key] = "**********" if secret else environment.get(key, "")
        return out
