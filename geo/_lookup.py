"""A raster lookup table over a city's bounding box, the fast path of :class:`geo.GridIndex`.

The bounding box is cut into square bins. A bin that no boundary touches lies entirely inside
one cell, or entirely in the city but in no cell, or entirely outside the city: a point there is
located by one array read. The other bins keep a short list of candidate cells, tested exactly.

Both the bins touched by boundaries and the contents of the untouched ones are computed with
numpy from the polygons' segments, without a geometry test per bin, so building the table takes
a fraction of a second even for millions of bins:

- a segment touches the bins of a *supercover*: for each column it crosses, the rows between its
  heights at the column's two sides (widened by a hair, so touching counts);
- which cell holds a bin's centre is a *scanline fill*: per cell and bin row, the crossings of
  the row's centre line with the cell's rings, sorted and paired, give the covered runs (the
  even-odd rule, so holes and multipolygons need nothing special).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry

__all__ = ["FIRST_LIST", "GAP", "OUTSIDE", "LookupTable", "build_lookup"]

IntArray = NDArray[np.intp]
FloatArray = NDArray[np.float64]

OUTSIDE = -1
"""Table value of a bin entirely outside the city."""
GAP = -2
"""Table value of a bin entirely inside the city but in no cell."""
FIRST_LIST = -3
"""Table value of a bin with candidate list 0; a value ``v <= FIRST_LIST`` means list
``FIRST_LIST - v``."""

# Widening of segments, in bin widths, when marking the bins they touch. Float rounding of a
# point's bin position is around 1e-13 bins; this is far above it and far below a bin.
_EPS = 1e-7


@dataclass(frozen=True, eq=False)
class LookupTable:
    """Bins over a bounding box and what each holds.

    Attributes
    ----------
    x0, y0 : float
        Lower-left corner of bin (0, 0).
    size : float
        Side of a bin, in degrees.
    values : numpy.ndarray of int32, shape (rows, columns)
        A cell index (>= 0), :data:`OUTSIDE`, :data:`GAP`, or ``-3 - k`` for candidate list k.
    starts : numpy.ndarray of intp
        Candidate list k is ``candidates[starts[k]:starts[k + 1]]``.
    candidates : numpy.ndarray of int32
        Cell indices, ascending within each list (so the first hit is the lowest code).
    """

    x0: float
    y0: float
    size: float
    values: NDArray[np.int32]
    starts: IntArray
    candidates: NDArray[np.int32]

    @property
    def nbytes(self) -> int:
        """Memory held by the table's arrays."""
        return int(self.values.nbytes + self.starts.nbytes + self.candidates.nbytes)


def build_lookup(cells: NDArray[np.object_], city: BaseGeometry, size: float) -> LookupTable:
    """Build the table for ``cells`` (ordered by code) inside ``city``, with bins of ``size``."""
    cells_box, city_box = shapely.total_bounds(cells), shapely.bounds(city)
    xmin, ymin = min(cells_box[0], city_box[0]), min(cells_box[1], city_box[1])
    xmax, ymax = max(cells_box[2], city_box[2]), max(cells_box[3], city_box[3])
    # One spare bin on each side, so that every boundary is strictly inside the table.
    x0, y0 = xmin - size, ymin - size
    columns = int((xmax - x0) / size) + 2
    rows = int((ymax - y0) / size) + 2
    cell_segments, cell_owner = _segments(cells, x0, y0, size)
    city_segments, _ = _segments(np.array([city], dtype=object), x0, y0, size)

    touched_bins, touched_cells = _supercover(cell_segments, cell_owner, columns)
    city_bins, _ = _supercover(city_segments, np.zeros(len(city_segments), np.intp), columns)
    count, label = _fill(cell_segments, cell_owner, rows, columns, with_label=True)
    city_count, _ = _fill(city_segments, np.zeros(len(city_segments), np.intp), rows, columns)

    impure = np.zeros((rows, columns), dtype=bool)
    # Two cells claiming one bin centre can only happen where cells overlap (within the
    # validation tolerance); such bins take the exact path, which applies the lowest-code rule.
    np.greater(count, 1, out=impure)
    flat_impure = impure.reshape(-1)
    flat_impure[touched_bins] = True
    flat_impure[city_bins] = True
    empty = np.where(city_count % 2 == 1, np.int32(GAP), np.int32(OUTSIDE))
    values = np.where(count == 1, label, empty)
    flat_values = values.reshape(-1)
    flat_count = np.ascontiguousarray(count).reshape(-1)

    impure_bins = np.flatnonzero(flat_impure)
    single = impure_bins[flat_count[impure_bins] == 1]
    pair_bins = [touched_bins, single]
    pair_cells = [touched_cells, flat_values[single].astype(np.intp)]
    crowded = impure_bins[flat_count[impure_bins] > 1]
    if crowded.size:
        boxes = shapely.box(
            x0 + (crowded % columns) * size,
            y0 + (crowded // columns) * size,
            x0 + (crowded % columns + 1) * size,
            y0 + (crowded // columns + 1) * size,
        )
        box_index, cell_index = shapely.STRtree(cells).query(boxes)
        pair_bins.append(crowded[box_index])
        pair_cells.append(cell_index)
    # Sorting the combined key by (bin, cell) orders each list by cell index and groups the
    # lists by bin; dropping repeats of a key removes duplicate pairs.
    key = np.sort(
        np.concatenate(pair_bins).astype(np.int64) * len(cells) + np.concatenate(pair_cells)
    )
    key = key[np.concatenate(([True], key[1:] != key[:-1]))]
    list_bins, list_cells = key // len(cells), key % len(cells)
    list_number = np.searchsorted(impure_bins, list_bins)
    starts = np.searchsorted(list_number, np.arange(len(impure_bins) + 1))
    flat_values[impure_bins] = FIRST_LIST - np.arange(len(impure_bins), dtype=np.int32)
    return LookupTable(
        x0=float(x0),
        y0=float(y0),
        size=size,
        values=values,
        starts=starts.astype(np.intp),
        candidates=list_cells.astype(np.int32),
    )


def _segments(
    geometries: NDArray[np.object_], x0: float, y0: float, size: float
) -> tuple[FloatArray, IntArray]:
    """Return all ring segments in bin units as an (n, 4) array, and the geometry of each."""
    rings, ring_owner = shapely.get_rings(geometries, return_index=True)
    coords, ring_index = shapely.get_coordinates(rings, return_index=True)
    u = (coords[:, 0] - x0) / size
    v = (coords[:, 1] - y0) / size
    same_ring = ring_index[:-1] == ring_index[1:]
    segments = np.column_stack([u[:-1], v[:-1], u[1:], v[1:]])[same_ring]
    owners = ring_owner[ring_index[:-1][same_ring]]
    return segments, owners


def _supercover(segments: FloatArray, owners: IntArray, columns: int) -> tuple[IntArray, IntArray]:
    """Return (flat bin, owner) for every bin each segment touches, duplicates included."""
    swap = segments[:, 0] > segments[:, 2]
    u0 = np.where(swap, segments[:, 2], segments[:, 0])
    v0 = np.where(swap, segments[:, 3], segments[:, 1])
    u1 = np.where(swap, segments[:, 0], segments[:, 2])
    v1 = np.where(swap, segments[:, 1], segments[:, 3])
    first = np.floor(u0 - _EPS).astype(np.intp)
    last = np.floor(u1 + _EPS).astype(np.intp)
    segment, column = _expand(first, last - first + 1)

    a_u, a_v, b_u, b_v = u0[segment], v0[segment], u1[segment], v1[segment]
    left = np.maximum(a_u, column - _EPS)
    right = np.minimum(b_u, column + 1 + _EPS)
    du = b_u - a_u
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(du > 0, (b_v - a_v) / du, 0.0)
    vertical = du <= 0
    v_left = np.where(vertical, np.minimum(a_v, b_v), a_v + (left - a_u) * slope)
    v_right = np.where(vertical, np.maximum(a_v, b_v), a_v + (right - a_u) * slope)
    low = np.floor(np.minimum(v_left, v_right) - _EPS).astype(np.intp)
    high = np.floor(np.maximum(v_left, v_right) + _EPS).astype(np.intp)
    pair, row = _expand(low, high - low + 1)
    return row * columns + column[pair], owners[segment[pair]]


def _fill(
    segments: FloatArray, owners: IntArray, rows: int, columns: int, *, with_label: bool = False
) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
    """Count the geometries holding each bin centre, and name the one when there is one.

    Returns two (rows, columns) arrays: the counts, and the owner where the count is 1 (only
    computed ``with_label``, else zeros).
    """
    v_low = np.minimum(segments[:, 1], segments[:, 3])
    v_high = np.maximum(segments[:, 1], segments[:, 3])
    # Row r's centre line is v = r + 0.5; a segment crosses it when v_low <= r + 0.5 < v_high
    # (half-open, so a vertex on the line is counted once and horizontal segments never).
    first = np.ceil(v_low - 0.5).astype(np.intp)
    last = np.ceil(v_high - 0.5).astype(np.intp)
    segment, row = _expand(first, last - first)
    a_u, a_v, b_u, b_v = (segments[segment, i] for i in range(4))
    u = a_u + (row + 0.5 - a_v) * (b_u - a_u) / (b_v - a_v)
    owner = owners[segment]
    order = np.lexsort((u, row, owner))
    u, row, owner = u[order], row[order], owner[order]
    # Each (owner, row) group holds an even number of crossings; pairing in sorted order gives
    # the runs inside the owner.
    start = np.ceil(u[0::2] - 0.5).astype(np.intp)
    end = np.ceil(u[1::2] - 0.5).astype(np.intp)
    run_row, run_owner = row[0::2], owner[0::2]
    keep = end > start
    start, end, run_row, run_owner = start[keep], end[keep], run_row[keep], run_owner[keep]
    width = columns + 1
    begin = run_row * width + start
    finish = run_row * width + end
    steps = np.zeros(rows * width, dtype=np.int32)
    np.add.at(steps, begin, 1)
    np.add.at(steps, finish, -1)
    count = np.cumsum(steps.reshape(rows, width), axis=1, dtype=np.int32)[:, :columns]
    label = np.zeros((rows, columns), dtype=np.int32)
    if with_label:
        # Adding owner + 1 over each run leaves owner + 1 wherever exactly one run covers.
        steps[:] = 0
        np.add.at(steps, begin, run_owner.astype(np.int32) + 1)
        np.add.at(steps, finish, -(run_owner.astype(np.int32) + 1))
        label = np.cumsum(steps.reshape(rows, width), axis=1, dtype=np.int32)[:, :columns] - 1
    return count, label


def _expand(first: IntArray, counts: IntArray) -> tuple[IntArray, IntArray]:
    """For ranges ``first[i] .. first[i] + counts[i] - 1``, return (i, value) for every value."""
    counts = np.maximum(counts, 0)
    index = np.repeat(np.arange(len(first)), counts)
    offsets = np.arange(len(index)) - np.repeat(np.cumsum(counts) - counts, counts)
    return index, first[index] + offsets
