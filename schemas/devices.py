"""The device registry: what each sensor and camera is, where it stands and who owns it."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final, Literal, Self

from pydantic import Field, StringConstraints, model_validator

from schemas.common import Contract, Identifier, Position, Timestamp
from schemas.events import SensorKind

__all__ = ["DEVICE_VERSION", "Device", "DeviceType"]

DEVICE_VERSION: Final = 1


class DeviceType(StrEnum):
    """Sensor or camera."""

    SENSOR = "sensor"
    CAMERA = "camera"


class Device(Contract):
    """One registered device.

    On topic ``devices.registry``: compacted, keyed by device id; a record with an empty value
    removes the device.
    """

    schema_version: Literal[1] = DEVICE_VERSION
    """Version of this contract."""
    device_id: Identifier
    """The id events carry as ``device_id`` or ``camera_id``."""
    device_type: DeviceType
    """Sensor or camera."""
    kind: SensorKind | None = None
    """What a sensor measures; cameras have none."""
    name: Annotated[str, StringConstraints(max_length=128)] | None = None
    """A human name, e.g. the station or crossing."""
    position: Position | None = None
    """Where the device stands; events without a position of their own take this one. Mobile
    devices have none and must send a position with every event."""
    department: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    """The owning department (e.g. ``水务``), which hears when the device goes offline."""
    expected_interval_s: float = Field(gt=0, le=7 * 86_400)
    """How often the device should report, in seconds; absence is measured against it."""
    active: bool = True
    """Inactive devices (retired, under maintenance) have their events dead-lettered."""
    updated_at: Timestamp | None = None
    """When this registration was written."""

    @model_validator(mode="after")
    def _kind_fits_type(self) -> Self:
        if self.device_type is DeviceType.SENSOR and self.kind is None:
            raise ValueError("a sensor needs its kind")
        if self.device_type is DeviceType.CAMERA and self.kind is not None:
            raise ValueError("a camera has no sensor kind")
        return self
