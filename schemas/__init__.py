"""Contracts of cityops: the pydantic models of everything on its topics, and the root error.

Integrators get them as JSON Schema with ``cityops schemas export DIR``.
"""

from schemas.common import Datum, Position
from schemas.devices import Device, DeviceType
from schemas.events import UNITS, BoundingBox, SensorKind, SensorReading, VideoEvent, VideoEventType
from schemas.exceptions import CityOpsError
from schemas.export import CONTRACTS, export_schemas
from schemas.located import (
    DeadLetter,
    DeadLetterReason,
    GridLocation,
    LocatedEvent,
    PositionSource,
    SourceRecord,
)

__all__ = [
    "CONTRACTS",
    "UNITS",
    "BoundingBox",
    "CityOpsError",
    "Datum",
    "DeadLetter",
    "DeadLetterReason",
    "Device",
    "DeviceType",
    "GridLocation",
    "LocatedEvent",
    "Position",
    "PositionSource",
    "SensorKind",
    "SensorReading",
    "SourceRecord",
    "VideoEvent",
    "VideoEventType",
    "export_schemas",
]
