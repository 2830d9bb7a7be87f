"""Contracts of cityops: the pydantic models of everything on its topics, and the root error.

Integrators get them as JSON Schema with ``cityops schemas export DIR``.
"""

from schemas.cases import (
    Action,
    Case,
    CommandRejection,
    DispatchOrder,
    IncidentCommand,
    OrderKind,
    RejectionReason,
    Stage,
    Tier,
    Transition,
)
from schemas.common import Datum, Position
from schemas.devices import Device, DeviceType
from schemas.events import UNITS, BoundingBox, SensorKind, SensorReading, VideoEvent, VideoEventType
from schemas.exceptions import CityOpsError
from schemas.export import CONTRACTS, export_schemas
from schemas.incidents import Category, Evidence, Incident, IncidentStatus, RuleRef, Severity
from schemas.indicators import AreaLevel, Indicators, LoopStage, Rate
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
    "Action",
    "AreaLevel",
    "BoundingBox",
    "Case",
    "Category",
    "CityOpsError",
    "CommandRejection",
    "Datum",
    "DeadLetter",
    "DeadLetterReason",
    "Device",
    "DeviceType",
    "DispatchOrder",
    "Evidence",
    "GridLocation",
    "Incident",
    "IncidentCommand",
    "IncidentStatus",
    "Indicators",
    "LocatedEvent",
    "LoopStage",
    "OrderKind",
    "Position",
    "PositionSource",
    "Rate",
    "RejectionReason",
    "RuleRef",
    "SensorKind",
    "SensorReading",
    "Severity",
    "SourceRecord",
    "Stage",
    "Tier",
    "Transition",
    "VideoEvent",
    "VideoEventType",
    "export_schemas",
]
