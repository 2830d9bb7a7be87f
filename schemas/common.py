"""Building blocks shared by the cityops contracts: identifiers, positions, times, attributes.

Every contract model is strict where a wrong value would mislead a command centre: numbers must
be finite, coordinates in range, times timezone-aware, strings and collections bounded, and
unknown fields are refused rather than silently dropped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

__all__ = [
    "IDENTIFIER_PATTERN",
    "Attributes",
    "Contract",
    "Datum",
    "Identifier",
    "Position",
    "Timestamp",
    "utc_now",
]

IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$"
Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=IDENTIFIER_PATTERN)
]
"""An event, device or track id: 1-128 characters of ASCII letters, digits and ``._:/@-``, so
that it is safe in a Kafka key, a log line and a URL."""

Timestamp = AwareDatetime
"""A timezone-aware time; a naive datetime is refused (whose local time would it be?)."""

_AttributeValue = Annotated[str, StringConstraints(max_length=256)] | bool | int | float
Attributes = Annotated[
    dict[Annotated[str, StringConstraints(min_length=1, max_length=64)], _AttributeValue],
    Field(max_length=32),
]
"""Free-form, flat extra facts from the producer: at most 32 entries, keys up to 64 and text
values up to 256 characters, numbers finite."""


class Contract(BaseModel):
    """Base of every model on a cityops topic.

    Strict about unknown fields and non-finite numbers, immutable once validated.
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        allow_inf_nan=False,
        str_strip_whitespace=False,
        use_attribute_docstrings=True,
    )


class Datum(StrEnum):
    """The geodetic datum of a coordinate. Chinese maps use GCJ-02; GPS receivers give WGS-84."""

    WGS84 = "wgs84"
    GCJ02 = "gcj02"


class Position(Contract):
    """A point on the earth, with the datum it is expressed in."""

    lon: float = Field(ge=-180, le=180)
    """Longitude in degrees east."""
    lat: float = Field(ge=-90, le=90)
    """Latitude in degrees north."""
    datum: Datum
    """Datum of ``lon``/``lat``; never assumed, because the two differ by hundreds of metres in
    China."""


def utc_now() -> datetime:
    """Return the current time, timezone-aware (UTC)."""
    return datetime.now(UTC)
