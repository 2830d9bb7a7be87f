"""Raw events as devices send them: sensor readings and AI video events."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final, Literal, Self

from pydantic import Field, StringConstraints, model_validator

from schemas.common import Attributes, Contract, Identifier, Position, Timestamp

__all__ = [
    "SENSOR_READING_VERSION",
    "UNITS",
    "VIDEO_EVENT_VERSION",
    "BoundingBox",
    "SensorKind",
    "SensorReading",
    "VideoEvent",
    "VideoEventType",
]

SENSOR_READING_VERSION: Final = 1
VIDEO_EVENT_VERSION: Final = 1


class SensorKind(StrEnum):
    """What a sensor measures."""

    WATER_LEVEL = "water_level"
    RAINFALL = "rainfall"
    PM25 = "pm25"
    PM10 = "pm10"
    O3 = "o3"
    SMOKE = "smoke"
    COMBUSTIBLE_GAS = "combustible_gas"
    MANHOLE_TILT = "manhole_tilt"
    NOISE = "noise"
    TRAFFIC_FLOW = "traffic_flow"
    TEMPERATURE = "temperature"
    HUMIDITY = "humidity"
    WIND_SPEED = "wind_speed"
    SOIL_MOISTURE = "soil_moisture"
    CROWD_COUNT = "crowd_count"


UNITS: dict[SensorKind, frozenset[str]] = {
    SensorKind.WATER_LEVEL: frozenset({"m"}),  # stage above the gauge datum
    SensorKind.RAINFALL: frozenset({"mm", "mm/h"}),  # accumulated or intensity
    SensorKind.PM25: frozenset({"ug/m3"}),
    SensorKind.PM10: frozenset({"ug/m3"}),
    SensorKind.O3: frozenset({"ug/m3"}),
    SensorKind.SMOKE: frozenset({"%obs/m", "alarm"}),  # obscuration, or a 0/1 detector
    SensorKind.COMBUSTIBLE_GAS: frozenset({"%LEL", "ppm"}),
    SensorKind.MANHOLE_TILT: frozenset({"deg"}),
    SensorKind.NOISE: frozenset({"dB(A)"}),
    SensorKind.TRAFFIC_FLOW: frozenset({"veh/h", "veh/min"}),
    SensorKind.TEMPERATURE: frozenset({"degC"}),
    SensorKind.HUMIDITY: frozenset({"%RH"}),
    SensorKind.WIND_SPEED: frozenset({"m/s"}),
    SensorKind.SOIL_MOISTURE: frozenset({"%VWC"}),
    SensorKind.CROWD_COUNT: frozenset({"persons"}),
}
"""The units each sensor kind may report in; a reading in any other unit is refused rather
than compared against thresholds meant for another scale."""


class VideoEventType(StrEnum):
    """What an AI video analytics engine saw."""

    FIRE_SMOKE = "fire_smoke"
    ILLEGAL_PARKING = "illegal_parking"
    ROAD_OCCUPATION = "road_occupation"
    CROWD_GATHERING = "crowd_gathering"
    GARBAGE_OVERFLOW = "garbage_overflow"
    VEHICLE_ACCIDENT = "vehicle_accident"
    PERSON_IN_WATER = "person_in_water"
    PERSON_NEAR_WATER = "person_near_water"
    STREET_VENDOR = "street_vendor"
    TRAFFIC_CONGESTION = "traffic_congestion"
    WATERLOGGING = "waterlogging"
    INTRUSION = "intrusion"


_Text = Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class SensorReading(Contract):
    """One measurement from an IoT sensor (topic ``sensor.readings``, keyed by device id)."""

    schema_version: Literal[1] = SENSOR_READING_VERSION
    """Version of this contract; a change that breaks readers gets a new number."""
    record: Literal["sensor_reading"] = "sensor_reading"
    """What this record is; lets a reader tell readings from video events in one stream."""
    event_id: Identifier
    """Unique per reading, chosen by the producer and kept across retries: duplicates are
    recognised by it."""
    device_id: Identifier
    """The sensor, as registered on ``devices.registry``."""
    kind: SensorKind
    """What was measured."""
    value: float
    """The measured value, in ``unit``; finite."""
    unit: Annotated[str, StringConstraints(min_length=1, max_length=16)]
    """Unit of ``value``; must be one of :data:`UNITS` for ``kind``."""
    observed_at: Timestamp
    """When the value was measured, timezone-aware."""
    position: Position | None = None
    """Where, if the sensor is mobile or reports its fix; otherwise its registered position
    is used."""
    attributes: Attributes | None = None
    """Extra producer facts (battery, signal, firmware …)."""

    @model_validator(mode="after")
    def _unit_fits_kind(self) -> Self:
        allowed = UNITS[self.kind]
        if self.unit not in allowed:
            expected = ", ".join(sorted(allowed))
            raise ValueError(f"unit {self.unit!r} does not fit kind {self.kind}: use {expected}")
        return self


class BoundingBox(Contract):
    """Where in the frame the object is, in pixels from the top-left corner."""

    left: float = Field(ge=0, le=100_000)
    top: float = Field(ge=0, le=100_000)
    right: float = Field(ge=0, le=100_000)
    bottom: float = Field(ge=0, le=100_000)

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.right <= self.left or self.bottom <= self.top:
            raise ValueError("a bounding box needs right > left and bottom > top")
        return self


class VideoEvent(Contract):
    """One detection from an AI camera or video analytics engine.

    On topic ``video.events``, keyed by camera id.
    """

    schema_version: Literal[1] = VIDEO_EVENT_VERSION
    """Version of this contract."""
    record: Literal["video_event"] = "video_event"
    """What this record is."""
    event_id: Identifier
    """Unique per detection, kept across retries."""
    camera_id: Identifier
    """The camera, as registered on ``devices.registry``."""
    event_type: VideoEventType
    """What was seen."""
    confidence: float = Field(ge=0, le=1)
    """The analytics engine's confidence, 0 to 1."""
    observed_at: Timestamp
    """When it was seen, timezone-aware."""
    bounding_box: BoundingBox | None = None
    """Where in the frame."""
    track_id: Identifier | None = None
    """The engine's id for the tracked object, the same across frames."""
    snapshot: _Text | None = None
    """A reference (URL or object-store key) to a still image of the detection."""
    position: Position | None = None
    """Where, if the camera reports it; otherwise its registered position is used."""
    attributes: Attributes | None = None
    """Extra producer facts (engine, model, zone names …)."""
