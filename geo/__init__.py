"""Geography of a city: load its grid hierarchy, locate points in it, convert datums.

The hierarchy is city (市) > county (县/区) > town (镇/街) > village (村/社区) > grid cell (网格),
every unit keyed by its code. Load a city's geography from GeoJSON with :func:`load_hierarchy`
(the bundled Heyuan data with :func:`load_heyuan`), then locate points with a :class:`GridIndex`.

Examples
--------
>>> import geo
>>> index = geo.GridIndex(geo.load_heyuan())
>>> where = index.locate(114.6950, 23.7450, datum="gcj02")
>>> where.county, index.hierarchy.name(where.county)
('441602', '源城区')
"""

from geo.datum import Datum, convert, gcj02_to_wgs84, wgs84_to_gcj02
from geo.exceptions import GeographyError, InvalidGeographyError, Problem, UnknownCodeError
from geo.geojson import FeatureProperties, dump_hierarchy, load_heyuan, load_hierarchy
from geo.hierarchy import CODE_LENGTHS, Hierarchy, Level, LevelTable, Unit
from geo.locator import GridIndex, Location, Locations, Reason
from geo.neighbours import cell_neighbours
from geo.validation import DEFAULT_TOLERANCE

__all__ = [
    "CODE_LENGTHS",
    "DEFAULT_TOLERANCE",
    "Datum",
    "FeatureProperties",
    "GeographyError",
    "GridIndex",
    "Hierarchy",
    "InvalidGeographyError",
    "Level",
    "LevelTable",
    "Location",
    "Locations",
    "Problem",
    "Reason",
    "Unit",
    "UnknownCodeError",
    "cell_neighbours",
    "convert",
    "dump_hierarchy",
    "gcj02_to_wgs84",
    "load_heyuan",
    "load_hierarchy",
    "wgs84_to_gcj02",
]
