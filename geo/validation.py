"""Geometric checks of a hierarchy: valid polygons, children inside parents, no overlaps, no gaps.

The checks compare areas, with a tolerance relative to the smaller of the areas involved, rather
than exact predicates: boundaries drawn or exported independently (an official grid from 粤政图
beside county lines from another source) always disagree by slivers, and what matters for
locating events is that no meaningful area is claimed twice or by nobody.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import shapely
from numpy.typing import NDArray

from geo.exceptions import Problem
from geo.hierarchy import Level, LevelTable

__all__ = ["DEFAULT_TOLERANCE", "find_geometry_problems"]

DEFAULT_TOLERANCE = 1e-4
"""Default area tolerance of the checks, as a fraction (0.01 %).

A child may lie outside its parent, two units of a level may overlap, and the children of a unit
may leave it uncovered, each by at most this fraction of the smaller area involved. For a 4 km²
grid cell that is 400 m², a 20 cm wide strip along a 2 km border.
"""

_POLYGONAL = {"Polygon", "MultiPolygon"}


def find_geometry_problems(
    tables: Mapping[Level, LevelTable], tolerance: float = DEFAULT_TOLERANCE
) -> list[Problem]:
    """Return every geometric problem of a hierarchy whose codes and parents are consistent.

    Parameters
    ----------
    tables : mapping of Level to LevelTable
        All five levels, parents already resolved to indices.
    tolerance : float
        Area tolerance as a fraction, see :data:`DEFAULT_TOLERANCE`.

    Returns
    -------
    list of Problem
        Empty when the geometry is sound. Invalid polygons are reported alone, because the
        area checks cannot run on them.
    """
    problems = _invalid_polygons(tables)
    if problems:
        return problems
    try:
        for level in Level:
            table = tables[level]
            shapely.prepare(table.geometries)
            if level.parent is not None:
                outside = _outside_parent(table, tables[level.parent], tolerance, problems)
                _uncovered_parents(table, tables[level.parent], outside, tolerance, problems)
            _overlaps(table, tolerance, problems)
    finally:
        # The predicates above build indexes inside the prepared geometries (about 45 MB for
        # Heyuan) that lookups never use; the locator prepares the cells it needs itself.
        for table in tables.values():
            shapely.destroy_prepared(table.geometries)
    return problems


def _invalid_polygons(tables: Mapping[Level, LevelTable]) -> list[Problem]:
    problems: list[Problem] = []
    for table in tables.values():
        kinds = shapely.get_type_id(table.geometries)
        empty = shapely.is_empty(table.geometries)
        valid = shapely.is_valid(table.geometries)
        for position in np.flatnonzero(~valid | empty | ((kinds != 3) & (kinds != 6))).tolist():
            geometry = table.geometries[position]
            code = str(table.codes[position])
            if geometry.geom_type not in _POLYGONAL:
                message = f"geometry is a {geometry.geom_type}, not a Polygon or MultiPolygon"
            elif geometry.is_empty:
                message = "geometry is empty"
            else:
                message = f"geometry is not a valid polygon: {shapely.is_valid_reason(geometry)}"
            problems.append(Problem(code, message))
    return problems


def _outside_parent(
    table: LevelTable, parents: LevelTable, tolerance: float, problems: list[Problem]
) -> NDArray[np.float64]:
    """Report children sticking out of their parent; return the area outside of each child."""
    parent_geometries = parents.geometries[table.parents]
    outside = np.zeros(len(table))
    # covered_by against prepared parents is cheap and settles almost every child; only the
    # others need the costly overlay.
    suspects = np.flatnonzero(~shapely.covered_by(table.geometries, parent_geometries))
    if suspects.size:
        differences = shapely.difference(table.geometries[suspects], parent_geometries[suspects])
        outside[suspects] = shapely.area(differences)
    areas = shapely.area(table.geometries)
    for position in np.flatnonzero(outside > tolerance * areas).tolist():
        parent = str(parents.codes[table.parents[position]])
        share = outside[position] / areas[position]
        problems.append(
            Problem(
                str(table.codes[position]),
                f"lies {share:.2%} outside its parent {parent} (tolerance {tolerance:.2%})",
            )
        )
    return outside


def _uncovered_parents(
    table: LevelTable,
    parents: LevelTable,
    outside: NDArray[np.float64],
    tolerance: float,
    problems: list[Problem],
) -> None:
    """Report parents whose children leave part of them uncovered."""
    # Overlaps between children are checked separately and bounded by the tolerance, so the
    # area of the children inside the parent is close enough to the covered area.
    inside = shapely.area(table.geometries) - outside
    covered = np.bincount(table.parents, weights=inside, minlength=len(parents))
    counts = np.bincount(table.parents, minlength=len(parents))
    areas = shapely.area(parents.geometries)
    child = table.level.value
    for position in np.flatnonzero(areas - covered > tolerance * areas).tolist():
        count = int(counts[position])
        share = covered[position] / areas[position]
        children = f"its {count} {child}s cover" if count != 1 else f"its 1 {child} covers"
        message = f"{children} only {share:.2%} of it (tolerance {tolerance:.2%})"
        problems.append(Problem(str(parents.codes[position]), message))


def _overlaps(table: LevelTable, tolerance: float, problems: list[Problem]) -> None:
    """Report pairs of units of one level whose interiors share more than the tolerance."""
    geometries = table.geometries
    tree = shapely.STRtree(geometries)
    left, right = tree.query(geometries, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    # Neighbours of a clean partition touch along edges; the DE-9IM pattern selects the pairs
    # whose interiors meet, so the overlay below runs only on real overlaps.
    interiors_meet = shapely.relate_pattern(geometries[left], geometries[right], "T********")
    left, right = left[interiors_meet], right[interiors_meet]
    if not left.size:
        return
    shared = shapely.area(shapely.intersection(geometries[left], geometries[right]))
    areas = shapely.area(geometries)
    smaller = np.minimum(areas[left], areas[right])
    for position in np.flatnonzero(shared > tolerance * smaller).tolist():
        first, second = int(left[position]), int(right[position])
        share = shared[position] / smaller[position]
        problems.append(
            Problem(
                str(table.codes[first]),
                f"overlaps {table.codes[second]} by {share:.2%} of the smaller"
                f" (tolerance {tolerance:.2%})",
            )
        )
