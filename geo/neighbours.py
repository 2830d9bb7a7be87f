"""Which grid cells touch which: one problem can straddle a cell, town or county line.

Detection joins evidence in neighbouring cells into one incident and corroborates a sensor with
a camera next door; both ask this table, built once from the cell polygons.
"""

from __future__ import annotations

import numpy as np
import shapely

from geo.hierarchy import Hierarchy, Level

__all__ = ["cell_neighbours"]


def cell_neighbours(hierarchy: Hierarchy) -> dict[str, frozenset[str]]:
    """Return, for every grid cell, the codes of the cells whose polygons touch or overlap it.

    Two cells sharing only a corner count as neighbours (a fire at the corner is in both).
    Heyuan's 3,954 cells take about 0.2 s and have about six neighbours each.

    Examples
    --------
    >>> import geo
    >>> table = cell_neighbours(geo.load_heyuan())
    >>> cell = '441602001003001'
    >>> all(cell in table[other] for other in table[cell])
    True
    """
    cells = hierarchy.table(Level.CELL)
    geometries = list(cells.geometries)
    tree = shapely.STRtree(geometries)
    left, right = tree.query(geometries, predicate="intersects")
    keep = left != right
    codes = cells.codes
    grouped: dict[str, set[str]] = {str(code): set() for code in codes}
    for a, b in zip(np.asarray(left)[keep], np.asarray(right)[keep], strict=True):
        grouped[str(codes[a])].add(str(codes[b]))
    return {code: frozenset(found) for code, found in grouped.items()}
