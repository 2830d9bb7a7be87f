"""Locating points in a city's grid: the cell, village, town, county and city of each point.

:class:`GridIndex` answers for one point (:meth:`~GridIndex.locate`) or for arrays of points
(:meth:`~GridIndex.locate_many`, the path the stream processor uses on batches of events).

How it is fast, and what it costs
---------------------------------
Most points are answered by one read of a raster lookup table over the city's bounding box
(``geo._lookup``): a bin that no boundary touches belongs wholly to one cell, or to no cell.
Points in bins that a boundary crosses are tested exactly against the few cells listed for the
bin, with prepared geometries and ``shapely.intersects_xy`` over all (point, candidate) pairs at
once. Villages, towns and counties follow from the cell through integer index arrays. The price
is memory: one int32 per bin plus the candidate lists, 12 MB for Heyuan at the default bin size.
Shapely ``Point`` objects queried with ``STRtree.query(predicate="intersects")`` over the same
cells are about seven times slower, before mapping levels.

The border rule
---------------
A point on the border of several cells (closed polygons, so the boundary counts) is placed in
the one with the **lowest code**. Every path applies the same rule, so the answer for a given
point never depends on how it was asked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray

from geo._lookup import FIRST_LIST, GAP, OUTSIDE, LookupTable, build_lookup
from geo.datum import Datum, convert
from geo.hierarchy import Hierarchy, Level

__all__ = ["GridIndex", "Location", "Locations", "Reason"]

# Default side of a lookup bin in degrees (about 100 m east-west by 110 m north-south at
# Heyuan's latitude): small enough that 87 % of uniformly spread points in Heyuan (76 % in the
# small cells of 源城区) skip the exact test, large enough that the table stays near 9 MB.
DEFAULT_BIN_SIZE = 0.001
# A bin count above this means a bin size far too small for the city (a typo, or a province
# with a city's bin size); refuse rather than allocate gigabytes.
_MAX_BINS = 100_000_000


class Reason(IntEnum):
    """Why a point got the location it got; ``LOCATED`` when it is in a cell.

    The integer values are what :attr:`Locations.reason` arrays hold; :attr:`slug` is the
    machine-readable name used in dead letters and metric labels.

    Examples
    --------
    >>> Reason.OUTSIDE_CITY.slug
    'outside_city'
    >>> Reason(2) is Reason.NOT_IN_GRID
    True
    """

    LOCATED = 0
    """Inside a cell; every level is known."""
    OUTSIDE_CITY = 1
    """A valid coordinate outside the city boundary (or far away, or in another datum)."""
    NOT_IN_GRID = 2
    """Inside the city boundary but in no cell: a gap the loaded grid leaves within tolerance."""
    INVALID_COORDINATE = 3
    """NaN, infinite, or out of range (longitude beyond ±180, latitude beyond ±90), as when
    longitude and latitude are swapped."""

    @property
    def slug(self) -> str:
        """Lower-case name, e.g. ``"invalid_coordinate"``."""
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Location:
    """Where one point is: the codes of its units, from cell up to city.

    Codes are ``None`` for levels that are not known. A point in a gap of the grid
    (:attr:`Reason.NOT_IN_GRID`) still has its city. Names come from
    :meth:`geo.Hierarchy.name`.
    """

    reason: Reason
    cell: str | None = None
    village: str | None = None
    town: str | None = None
    county: str | None = None
    city: str | None = None

    @property
    def located(self) -> bool:
        """True when the point is in a cell."""
        return self.reason is Reason.LOCATED


@dataclass(frozen=True, eq=False)
class Locations:
    """Where many points are, as parallel arrays (``""`` where a level is not known).

    Attributes
    ----------
    reason : numpy.ndarray of uint8
        A :class:`Reason` value per point.
    cell_index : numpy.ndarray of int32
        Position of the cell in the hierarchy's cell table, -1 where not located.
    cell, village, town, county, city : numpy.ndarray of str
        Codes per point.
    """

    reason: NDArray[np.uint8]
    cell_index: NDArray[np.int32]
    cell: NDArray[np.str_]
    village: NDArray[np.str_]
    town: NDArray[np.str_]
    county: NDArray[np.str_]
    city: NDArray[np.str_]

    def __len__(self) -> int:
        return len(self.reason)

    def __getitem__(self, position: int) -> Location:
        """Return the location of one point as a :class:`Location`."""

        def code(array: NDArray[np.str_]) -> str | None:
            return str(array[position]) or None

        return Location(
            Reason(int(self.reason[position])),
            code(self.cell),
            code(self.village),
            code(self.town),
            code(self.county),
            code(self.city),
        )


class GridIndex:
    """Locate points in the cells of a hierarchy, and through them in every level.

    Parameters
    ----------
    hierarchy : Hierarchy
        The city's geography; its datum is the datum lookups happen in.
    bin_size : float, optional
        Side of a lookup-table bin in degrees; smaller bins answer more points from the table
        and cost memory quadratically. The default suits a city of Heyuan's grid.

    Examples
    --------
    >>> from geo import load_heyuan
    >>> index = GridIndex(load_heyuan())
    >>> where = index.locate(114.6950, 23.7450, datum="gcj02")  # central 源城区
    >>> where.reason, where.county, where.town[:6]
    (<Reason.LOCATED: 0>, '441602', '441602')
    >>> index.locate(23.7450, 114.6950, datum="gcj02").reason  # latitude and longitude swapped
    <Reason.INVALID_COORDINATE: 3>
    >>> index.locate(113.26, 23.13, datum="wgs84").reason  # Guangzhou
    <Reason.OUTSIDE_CITY: 1>

    A point on a border between cells goes to the lowest code. A vertex of a cell is also on
    the border of its neighbours:

    >>> cells = load_heyuan().table("cell")
    >>> x, y = shapely.get_coordinates(cells.geometries[0])[0]
    >>> sharing = [str(code) for code, g in zip(cells.codes, cells.geometries)
    ...            if shapely.intersects_xy(g, x, y)]
    >>> index.locate(x, y, datum="gcj02").cell == min(sharing)
    True
    """

    def __init__(self, hierarchy: Hierarchy, *, bin_size: float = DEFAULT_BIN_SIZE) -> None:
        self.hierarchy = hierarchy
        self._datum = hierarchy.datum
        cells = hierarchy.table(Level.CELL)
        city = hierarchy.table(Level.CITY).geometries[0]
        xmin, ymin, xmax, ymax = shapely.bounds(city)
        if (xmax - xmin) * (ymax - ymin) / bin_size**2 > _MAX_BINS:
            raise ValueError(f"bin size {bin_size} gives over {_MAX_BINS:,} bins for this city")
        self._cells = cells.geometries
        self._city = city
        shapely.prepare(self._cells)
        shapely.prepare(self._city)
        self._table: LookupTable = build_lookup(self._cells, city, bin_size)
        self._values_flat = self._table.values.ravel()
        self._rows, self._columns = self._table.values.shape
        self._inverse_size = 1.0 / bin_size

        # Index of each level's unit for every cell, with a trailing -1 so that indexing with
        # -1 (not located) yields -1 at every level.
        villages = hierarchy.table(Level.VILLAGE)
        towns = hierarchy.table(Level.TOWN)
        counties = hierarchy.table(Level.COUNTY)
        self._village_of = np.append(cells.parents, -1)
        self._town_of = np.append(villages.parents[cells.parents], -1)
        self._county_of = np.append(towns.parents[villages.parents[cells.parents]], -1)
        self._codes = {
            Level.CELL: np.append(cells.codes, ""),
            Level.VILLAGE: np.append(villages.codes, ""),
            Level.TOWN: np.append(towns.codes, ""),
            Level.COUNTY: np.append(counties.codes, ""),
            Level.CITY: np.append(hierarchy.table(Level.CITY).codes, ""),
        }
        # Single-point answers are immutable, so each cell's is built once and shared.
        city_code = str(self._codes[Level.CITY][0])
        self._by_cell = [
            Location(
                Reason.LOCATED,
                str(self._codes[Level.CELL][i]),
                str(self._codes[Level.VILLAGE][self._village_of[i]]),
                str(self._codes[Level.TOWN][self._town_of[i]]),
                str(self._codes[Level.COUNTY][self._county_of[i]]),
                city_code,
            )
            for i in range(len(cells))
        ]
        self._outside = Location(Reason.OUTSIDE_CITY)
        self._gap = Location(Reason.NOT_IN_GRID, city=city_code)
        self._invalid = Location(Reason.INVALID_COORDINATE)

    @property
    def nbytes(self) -> int:
        """Memory of the index's own arrays (lookup table, level maps), not the geometries."""
        arrays = [self._village_of, self._town_of, self._county_of, *self._codes.values()]
        return self._table.nbytes + sum(int(a.nbytes) for a in arrays)

    def locate(self, lon: float, lat: float, *, datum: Datum | str) -> Location:
        """Locate one point.

        Parameters
        ----------
        lon, lat : float
            Longitude and latitude in degrees.
        datum : Datum or str
            Datum of the point, ``"wgs84"`` or ``"gcj02"``; it is converted to the hierarchy's
            datum before lookup.

        Returns
        -------
        Location
            Codes of all levels, or the :class:`Reason` the point is not located. Any pair of
            numbers gets an answer: NaN, infinities and swapped coordinates get
            :attr:`Reason.INVALID_COORDINATE`.

        Raises
        ------
        TypeError, ValueError
            If ``lon`` or ``lat`` is not a number (validating event payloads is the job of the
            schemas, before lookup), or ``datum`` is not a :class:`~geo.Datum`.

        Examples
        --------
        >>> from geo import load_heyuan
        >>> index = GridIndex(load_heyuan())
        >>> index.locate(float("nan"), 23.7, datum="wgs84").reason
        <Reason.INVALID_COORDINATE: 3>
        >>> index.locate(114.6950, 23.7450, datum="gcj02").located
        True
        """
        x, y = float(lon), float(lat)
        if not (-180.0 <= x <= 180.0 and -90.0 <= y <= 90.0):  # also false for NaN
            return self._invalid
        if datum != self._datum:
            x, y = convert(x, y, source=datum, target=self._datum)
        table = self._table
        column = math.floor((x - table.x0) * self._inverse_size)
        row = math.floor((y - table.y0) * self._inverse_size)
        if not (0 <= column < self._columns and 0 <= row < self._rows):
            return self._outside
        value: int = self._values_flat.item(row * self._columns + column)
        if value >= 0:
            return self._by_cell[value]
        if value <= FIRST_LIST:
            return self._locate_in_list(FIRST_LIST - value, x, y)
        return self._gap if value == GAP else self._outside

    def locate_many(self, lons: ArrayLike, lats: ArrayLike, *, datum: Datum | str) -> Locations:
        """Locate arrays of points; the vectorized form of :meth:`locate`, with equal answers.

        Parameters
        ----------
        lons, lats : array_like
            Longitudes and latitudes in degrees, broadcast to a common 1-D shape.
        datum : Datum or str
            Datum of the points.

        Returns
        -------
        Locations
            Parallel arrays of reasons and codes.

        Raises
        ------
        ValueError
            If the inputs cannot be converted to float arrays of a common shape, or ``datum``
            is not a :class:`~geo.Datum`.

        Examples
        --------
        >>> from geo import load_heyuan
        >>> index = GridIndex(load_heyuan())
        >>> found = index.locate_many([114.695, 0.0, np.nan], [23.745, 0.0, 23.7], datum="gcj02")
        >>> [Reason(r).slug for r in found.reason]
        ['located', 'outside_city', 'invalid_coordinate']
        >>> found.county.tolist()
        ['441602', '', '']
        """
        x, y = np.broadcast_arrays(
            np.asarray(lons, dtype=np.float64), np.asarray(lats, dtype=np.float64)
        )
        x, y = x.reshape(-1), y.reshape(-1)
        valid = (np.abs(x) <= 180.0) & (np.abs(y) <= 90.0)  # false for NaN and inf
        if datum != self._datum:
            x, y = convert(x, y, source=datum, target=self._datum)
        table = self._table
        u = (x - table.x0) * self._inverse_size
        v = (y - table.y0) * self._inverse_size
        inside = valid & (u >= 0) & (u < self._columns) & (v >= 0) & (v < self._rows)
        # Outside points (NaN among them) are set to bin 0 before the cast, which would warn.
        column = np.where(inside, u, 0.0).astype(np.intp)
        row = np.where(inside, v, 0.0).astype(np.intp)
        flat = row * self._columns + column
        value = np.where(inside, self._values_flat[flat], OUTSIDE)
        cell = np.where(value >= 0, value, -1).astype(np.int32)
        exact = np.flatnonzero(value < GAP)
        if exact.size:
            self._locate_exact(points=exact, lists=value[exact], x=x, y=y, cell=cell, value=value)

        reason = np.full(len(x), Reason.OUTSIDE_CITY, dtype=np.uint8)
        reason[cell >= 0] = Reason.LOCATED
        reason[value == GAP] = Reason.NOT_IN_GRID
        reason[~valid] = Reason.INVALID_COORDINATE
        village = self._village_of[cell]
        town = self._town_of[cell]
        county = self._county_of[cell]
        in_city = np.where((cell >= 0) | (value == GAP), 0, -1)
        return Locations(
            reason=reason,
            cell_index=cell,
            cell=self._codes[Level.CELL][cell],
            village=self._codes[Level.VILLAGE][village],
            town=self._codes[Level.TOWN][town],
            county=self._codes[Level.COUNTY][county],
            city=self._codes[Level.CITY][in_city],
        )

    def _locate_in_list(self, number: int, x: float, y: float) -> Location:
        """Locate one point of a mixed bin by testing the bin's candidate cells."""
        table = self._table
        candidates = table.candidates[table.starts[number] : table.starts[number + 1]]
        hits = np.flatnonzero(shapely.intersects_xy(self._cells[candidates], x, y))
        if hits.size:
            # Candidates ascend, so the first hit is the lowest code: the border rule.
            return self._by_cell[int(candidates[hits[0]])]
        return self._gap if shapely.intersects_xy(self._city, x, y) else self._outside

    def _locate_exact(
        self,
        *,
        points: NDArray[np.intp],
        lists: NDArray[np.int32],
        x: NDArray[np.float64],
        y: NDArray[np.float64],
        cell: NDArray[np.int32],
        value: NDArray[np.int32],
    ) -> None:
        """Test points of mixed bins against their candidates; fill ``cell`` and ``value``."""
        table = self._table
        number = FIRST_LIST - lists.astype(np.intp)
        first = table.starts[number]
        counts = table.starts[number + 1] - first
        owner = np.repeat(np.arange(len(points)), counts)
        offset = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
        candidate = table.candidates[first[owner] + offset]
        point = points[owner]
        hit = np.flatnonzero(shapely.intersects_xy(self._cells[candidate], x[point], y[point]))
        # Pairs are grouped by point with candidates ascending, so the first hit of each point
        # is its lowest-code cell: the border rule.
        hit_owner = owner[hit]
        first_hit = np.flatnonzero(np.diff(hit_owner, prepend=-1) != 0)
        hit_owner = hit_owner[first_hit]
        cell[points[hit_owner]] = candidate[hit[first_hit]]
        missed = np.ones(len(points), dtype=bool)
        missed[hit_owner] = False
        missed_points = points[missed]
        in_city = shapely.intersects_xy(self._city, x[missed_points], y[missed_points])
        value[missed_points] = np.where(in_city, GAP, OUTSIDE)
