"""Export the contracts as JSON Schema files for integrators (``cityops schemas export DIR``)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from schemas.cases import Case, CommandRejection, DispatchOrder, IncidentCommand
from schemas.devices import Device
from schemas.events import SensorReading, VideoEvent
from schemas.incidents import Incident
from schemas.indicators import Indicators
from schemas.located import DeadLetter, LocatedEvent

__all__ = ["CONTRACTS", "export_schemas", "json_schema"]

CONTRACTS: dict[str, type[BaseModel]] = {
    "sensor-reading": SensorReading,
    "video-event": VideoEvent,
    "device": Device,
    "located-event": LocatedEvent,
    "dead-letter": DeadLetter,
    "incident": Incident,
    "incident-command": IncidentCommand,
    "case": Case,
    "dispatch-order": DispatchOrder,
    "command-rejection": CommandRejection,
    "indicators": Indicators,
}
"""Every contract by the file stem it is exported under."""


def json_schema(model: type[BaseModel]) -> dict[str, object]:
    """Return the JSON Schema (draft 2020-12) of ``model``, as it validates input."""
    schema = model.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def export_schemas(directory: Path) -> list[Path]:
    """Write one ``<name>.v<version>.schema.json`` per contract into ``directory``.

    Returns the files written, in :data:`CONTRACTS` order. The output is stable (sorted keys),
    so a diff between two exports shows exactly what changed.
    """
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in CONTRACTS.items():
        version = model.model_fields["schema_version"].default
        path = directory / f"{name}.v{version}.schema.json"
        text = json.dumps(json_schema(model), indent=2, sort_keys=True, ensure_ascii=False)
        path.write_text(text + "\n", encoding="utf-8")
        written.append(path)
    return written
