"""Canonical devices and raw records for the ingest tests, one builder per kind of input.

Positions are GCJ-02 points whose location is checked in ``test_pipeline``: ``YUANCHENG`` in
源城区 (441602), ``LONGCHUAN`` in 龙川县 (441622), ``BEIJING`` far outside the city.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from schemas import Datum, Device, DeviceType, Position, SensorKind
from tests.helpers import register

NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
YUANCHENG = (114.6950, 23.7450)
LONGCHUAN = (115.2600, 24.1000)
BEIJING = (116.3975, 39.9087)


def device(
    device_id: str,
    *,
    lonlat: tuple[float, float] | None = YUANCHENG,
    kind: SensorKind | None = SensorKind.WATER_LEVEL,
    active: bool = True,
) -> Device:
    """A registered device; ``kind=None`` makes a camera."""
    return Device(
        device_id=device_id,
        device_type=DeviceType.SENSOR if kind else DeviceType.CAMERA,
        kind=kind,
        position=None
        if lonlat is None
        else Position(lon=lonlat[0], lat=lonlat[1], datum=Datum.GCJ02),
        department="水务" if kind else "城管",
        expected_interval_s=60,
        active=active,
    )


DEVICES = [
    device("wl-001"),  # fixed water-level gauge in 源城区
    device("wl-002", lonlat=LONGCHUAN),  # fixed gauge in 龙川县
    device("cam-001", kind=None),  # fixed camera in 源城区
    device("mobile-001", lonlat=None),  # mobile: events must carry a position
    device("retired-001", active=False),  # deactivated
    device("lost-001", lonlat=BEIJING),  # registered at a wrong place
]


def reading(
    event_id: str, device_id: str = "wl-001", *, at: datetime = NOW, **fields: Any
) -> bytes:
    """A sensor reading as JSON; ``fields`` override or add (``None`` removes a field)."""
    document: dict[str, Any] = {
        "event_id": event_id,
        "device_id": device_id,
        "kind": "water_level",
        "value": 3.25,
        "unit": "m",
        "observed_at": at.isoformat(),
    }
    document.update(fields)
    return orjson.dumps({key: value for key, value in document.items() if value is not None})


def video(event_id: str, camera_id: str = "cam-001", *, at: datetime = NOW, **fields: Any) -> bytes:
    """A video event as JSON; ``fields`` override or add."""
    document: dict[str, Any] = {
        "event_id": event_id,
        "camera_id": camera_id,
        "event_type": "garbage_overflow",
        "confidence": 0.91,
        "observed_at": at.isoformat(),
    }
    document.update(fields)
    return orjson.dumps(document)


def position(lonlat: tuple[float, float], datum: str = "gcj02") -> dict[str, Any]:
    """A position field."""
    return {"lon": lonlat[0], "lat": lonlat[1], "datum": datum}


def invalid_readings(now: datetime = NOW) -> list[tuple[str, bytes]]:
    """One invalid sensor reading per reason ingest can give on the readings topic, as
    ``(reason, raw bytes)``, observed around ``now``; each event id is unique, so none is a
    duplicate of another."""
    return [
        ("malformed_json", b'{"event_id": "bad-json", '),
        ("malformed_json", b""),
        ("malformed_json", b"\xff\xfe not utf-8"),
        ("schema_violation", reading("no-value", at=now, value=None)),
        ("schema_violation", reading("naive-time", observed_at="2026-12-03T08:00:00")),
        ("schema_violation", reading("wrong-unit", at=now, unit="cm")),
        ("schema_violation", reading("extra-field", at=now, colour="blue")),
        ("schema_violation", reading("far-lat", at=now, position=position((114.69, 123.0)))),
        ("unknown_kind", reading("bad-kind", at=now, kind="radiation")),
        ("too_large", reading("huge", attributes={f"k{i}": "x" * 250 for i in range(32)}) * 10),
        ("future_timestamp", reading("future", at=now + timedelta(hours=1))),
        ("too_late", reading("late", at=now - timedelta(days=3))),
        ("unknown_device", reading("nobody", at=now, device_id="ghost-001")),
        ("inactive_device", reading("retired", at=now, device_id="retired-001")),
        ("no_position", reading("nowhere", at=now, device_id="mobile-001")),
        ("outside_city", reading("beijing", at=now, position=position(BEIJING))),
        ("outside_city", reading("lost", at=now, device_id="lost-001")),
    ]


def register_devices(bootstrap: str, prefix: str, port: int) -> None:
    """Register the sample devices while the worker runs; return when it has them all."""
    register(bootstrap, prefix, port, DEVICES)
