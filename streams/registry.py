"""The device registry: every worker's live copy of ``devices.registry``.

The topic is compacted and keyed by device id, so it holds the latest registration of every
device; each worker reads all of its partitions from the beginning and keeps following it, so a
registration (or a retirement) takes effect within a poll. Events do not arrive keyed the way
the registry is partitioned (a Frigate bridge keys by nothing), which is why every worker holds
the whole registry rather than a co-partitioned Faust table: it is small (33,000 devices take
about 30 MB).

An invalid record is skipped here, keeping the device's last valid registration; the
``check_registrations`` agent, which sees each record once, dead-letters it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from schemas.devices import Device
from schemas.located import DeadLetterReason
from streams.exceptions import Rejected, StreamsError
from streams.settings import Settings
from streams.topics import aiokafka_config, partitions_of

__all__ = ["DeviceRegistry", "parse_registration"]

log = logging.getLogger(__name__)


def parse_registration(key: bytes | None, value: bytes | None) -> Device | None:
    """Return the device a registry record registers, ``None`` for a removal (empty value).

    Raises
    ------
    Rejected
        ``invalid_device`` when the record is not a valid :class:`~schemas.Device` or its key
        is not its device id (compaction keeps one record per key, so a wrong key would keep
        stale registrations forever).
    """
    if not value:
        return None
    try:
        device = Device.model_validate_json(value)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "record"
        raise Rejected(DeadLetterReason.INVALID_DEVICE, f"{where}: {first['msg']}") from None
    if key is not None and key != device.device_id.encode():
        raise Rejected(
            DeadLetterReason.INVALID_DEVICE,
            f"key {key[:128]!r} is not the device id {device.device_id!r}",
            event_id=device.device_id,
        )
    return device


class DeviceRegistry(Mapping[str, Device]):
    """Devices by id, kept up to date from the registry topic while started.

    Examples
    --------
    Without a broker, records can be applied directly (as the reader does):

    >>> registry = DeviceRegistry.from_devices([])
    >>> registry.apply(b"cam-1", '{"device_id": "cam-1", "device_type": "camera",'
    ...     ' "department": "城管", "expected_interval_s": 60}'.encode())
    >>> registry["cam-1"].department
    '城管'
    >>> registry.apply(b"cam-1", None)  # a tombstone removes it
    >>> "cam-1" in registry
    False
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings
        self._devices: dict[str, Device] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()
        """Set once the registry has read everything the topic held when it started."""
        self.skipped = 0
        """Invalid records skipped since start."""
        self.version = 0
        """Counts the changes applied, so that what is derived from the registry can be cached."""

    @classmethod
    def from_devices(cls, devices: list[Device]) -> DeviceRegistry:
        """Return a registry holding ``devices``, not connected to any topic (tests, tools)."""
        registry = cls()
        registry._devices = {device.device_id: device for device in devices}
        registry.ready.set()
        return registry

    def __getitem__(self, device_id: str) -> Device:
        return self._devices[device_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._devices)

    def __len__(self) -> int:
        return len(self._devices)

    def get(self, device_id: str, default: Device | None = None) -> Device | None:  # type: ignore[override]
        """Return the device registered as ``device_id``, or ``default``."""
        return self._devices.get(device_id, default)

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """Apply one registry record: register, replace or remove a device."""
        try:
            device = parse_registration(key, value)
        except Rejected as exc:
            self.skipped += 1
            log.warning("devices.registry: skipped %s", exc)
            return
        if device is not None:
            self._devices[device.device_id] = device
        elif key is not None:
            self._devices.pop(key.decode("utf-8", "replace"), None)
        self.version += 1

    async def start(self) -> None:
        """Connect, read the topic from the beginning, and keep following it in a task.

        Returns at once; :attr:`ready` is set when the records present at start are applied.
        """
        if self._settings is None:
            raise RuntimeError("a registry built from_devices has no topic to follow")
        topic = self._settings.topic("devices_registry")
        numbers = await asyncio.to_thread(partitions_of, self._settings, topic)
        if not numbers:
            raise StreamsError(f"topic {topic} does not exist")
        partitions = [TopicPartition(topic, number) for number in numbers]
        consumer = AIOKafkaConsumer(
            **aiokafka_config(self._settings),
            client_id=f"{self._settings.app_id}-registry",
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        self._consumer = consumer
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        self._task = asyncio.create_task(self._follow(consumer, ends), name="device-registry")

    async def stop(self) -> None:
        """Stop following the topic."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def _follow(self, consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> None:
        pending = {tp: end for tp, end in ends.items() if end > 0}
        if not pending:
            self._mark_ready()
        while True:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    self.apply(record.key, record.value)
            if pending:
                # The position, not the last record's offset: compaction leaves gaps.
                for tp in [tp for tp in pending if await consumer.position(tp) >= pending[tp]]:
                    del pending[tp]
                if not pending:
                    self._mark_ready()

    def _mark_ready(self) -> None:
        if not self.ready.is_set():
            log.info("device registry ready: %d devices", len(self._devices))
            self.ready.set()
