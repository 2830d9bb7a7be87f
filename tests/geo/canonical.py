"""Canonical points of the geography tests, named once and shared (as shapely's tests/common.py).

Heyuan points are GCJ-02, like the bundled boundaries. County interior points are the centres
of each county's largest inscribed circle (shapely.maximum_inscribed_circle, rounded to 1e-4
degrees), so each is kilometres from any county border; only county codes are asserted for
them, because towns and cells below are generated and may be regenerated.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NamedPoint:
    """A point with the county it must land in (None: it must not be located)."""

    name: str
    lon: float
    lat: float
    county: str | None


HEYUAN_COUNTY_INTERIORS = [
    NamedPoint("源城区 interior, 6.4 km from its border", 114.6164, 23.6364, "441602"),
    NamedPoint("紫金县 interior, 20 km from its border", 114.8939, 23.5393, "441621"),
    NamedPoint("龙川县 interior, 17 km from its border", 115.3852, 24.3345, "441622"),
    NamedPoint("连平县 interior, 15 km from its border", 114.4403, 24.3396, "441623"),
    NamedPoint("和平县 interior, 20 km from its border", 115.0334, 24.4554, "441624"),
    NamedPoint("东源县 interior, 22 km from its border", 114.8998, 23.9644, "441625"),
]

# A vertex of the official boundary shared by 源城区 and 东源县; it is a vertex of one cell on
# each side (441602… and 441625…), and the border rule gives the lower code, in 源城区.
HEYUAN_COUNTY_BORDER_VERTEX = NamedPoint(
    "源城区/东源县 border vertex", 114.674221, 23.807977, "441602"
)

# About 150 m inside 源城区 near its western border with 东源县. The same place in WGS-84 is
# about 500 m west-north-west; read as GCJ-02 by mistake, those WGS-84 numbers land in 东源县.
HEYUAN_NEAR_BORDER_GCJ02 = NamedPoint("源城区 near 东源县, GCJ-02", 114.5298, 23.6688, "441602")
HEYUAN_NEAR_BORDER_WGS84 = NamedPoint("the same place, WGS-84", 114.5251100, 23.6714666, "441602")

HEYUAN_OUTSIDE = [
    NamedPoint("Guangzhou city centre", 113.2644, 23.1291, None),
    NamedPoint("Huizhou, south of Heyuan's bounding box", 114.4126, 23.0794, None),
    NamedPoint("inside Heyuan's bounding box, west of 连平县", 114.30, 24.00, None),
    NamedPoint("Null Island", 0.0, 0.0, None),
]
