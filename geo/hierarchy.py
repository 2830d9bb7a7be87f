"""The loaded geography of one city: five levels of units, each a polygon with a code.

A :class:`Hierarchy` is immutable and built by the loader (:func:`geo.load_hierarchy`) after
validation, so code that holds one can rely on its invariants: codes are well formed and unique,
every unit but the city has a parent one level up, and the arrays of each level are sorted by code.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry

from geo.datum import Datum
from geo.exceptions import UnknownCodeError

__all__ = ["CODE_LENGTHS", "Hierarchy", "Level", "LevelTable", "Unit"]


class Level(StrEnum):
    """A tier of the geography, from the whole city down to a management grid cell (网格).

    Iteration order is top-down: each level's parent comes just before it.
    """

    CITY = "city"
    COUNTY = "county"
    TOWN = "town"
    VILLAGE = "village"
    CELL = "cell"

    @property
    def parent(self) -> Level | None:
        """The level above, or ``None`` for the city.

        Examples
        --------
        >>> Level.TOWN.parent
        <Level.COUNTY: 'county'>
        """
        return _PARENT_LEVEL[self]

    @property
    def child(self) -> Level | None:
        """The level below, or ``None`` for a cell."""
        return _CHILD_LEVEL[self]


_ORDER = list(Level)
_PARENT_LEVEL: dict[Level, Level | None] = dict(zip(_ORDER, [None, *_ORDER[:-1]], strict=True))
_CHILD_LEVEL: dict[Level, Level | None] = dict(zip(_ORDER, [*_ORDER[1:], None], strict=True))


CODE_LENGTHS: Mapping[Level, int] = {
    # GB/T 2260 for the city (地级市) and counties (县/区); NBS 统计用区划代码 for towns (乡镇/街道)
    # and villages (村/社区); a cell (单元网格) appends a 3-digit sequence to its village's code.
    Level.CITY: 6,
    Level.COUNTY: 6,
    Level.TOWN: 9,
    Level.VILLAGE: 12,
    Level.CELL: 15,
}
"""Number of decimal digits of a code at each level."""


@dataclass(frozen=True, slots=True)
class Unit:
    """One administrative or management unit, without its geometry.

    Attributes
    ----------
    level : Level
        Its tier.
    code : str
        Its code; the key of everything (names are not unique: two towns of Heyuan are 上坪镇).
    name : str
        Its name as the source gives it.
    parent : str or None
        The code of the unit one level up, ``None`` for the city.
    generated : bool
        True when the polygon was generated rather than taken from an official source.
    """

    level: Level
    code: str
    name: str
    parent: str | None
    generated: bool


@dataclass(frozen=True, eq=False)
class LevelTable:
    """The units of one level as parallel arrays, sorted by code.

    Attributes
    ----------
    level : Level
        The level of every unit in the table.
    codes : numpy.ndarray of str
        Codes in ascending order; the position of a code is its *index* at this level.
    names : tuple of str
        Names, parallel to ``codes``.
    parents : numpy.ndarray of intp
        Index of each unit's parent in the table of the level above (-1 for the city).
    geometries : numpy.ndarray of shapely geometries
        Polygon or MultiPolygon of each unit, in the hierarchy's datum.
    generated : numpy.ndarray of bool
        Whether each polygon was generated.
    """

    level: Level
    codes: NDArray[np.str_]
    names: tuple[str, ...]
    parents: NDArray[np.intp]
    geometries: NDArray[np.object_]
    generated: NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.names)


class Hierarchy:
    """The geography of one city: city, counties, towns, villages and grid cells.

    Build it with :func:`geo.load_hierarchy` (any city) or :func:`geo.load_heyuan` (the bundled
    Heyuan data); the constructor trusts its input and does not validate.

    Parameters
    ----------
    tables : mapping of Level to LevelTable
        One table per level, each sorted by code, parents indexing the level above.
    datum : Datum
        Datum of all coordinates of the geometries.
    source : str
        Where the geography came from, for messages.
    version : str
        Identifies the geography's content (the loaders use a digest of the file), written on
        every located event so that an incident can say which grid placed it.

    Examples
    --------
    >>> from geo import load_heyuan
    >>> heyuan = load_heyuan()
    >>> heyuan.city.name
    '河源市'
    >>> heyuan.unit("441602").name, heyuan.unit("441602").parent
    ('源城区', '441600')
    >>> len(heyuan.children("441602"))  # 6 streets (街道) and 2 towns (镇)
    8
    """

    def __init__(
        self,
        tables: Mapping[Level, LevelTable],
        *,
        datum: Datum,
        source: str,
        version: str = "unversioned",
    ) -> None:
        missing = [level.value for level in Level if level not in tables]
        if missing:
            raise ValueError(f"hierarchy lacks levels {missing}")
        self._tables = {level: tables[level] for level in Level}
        self.datum = Datum(datum)
        self.source = source
        self.version = version
        self._index: dict[str, tuple[Level, int]] = {}
        for level, table in self._tables.items():
            for position, code in enumerate(table.codes.tolist()):
                self._index[code] = (level, position)
        self._children: dict[str, list[str]] = {}
        for level, table in self._tables.items():
            parent_level = level.parent
            if parent_level is None:
                continue
            parent_codes = self._tables[parent_level].codes.tolist()
            for code, parent in zip(table.codes.tolist(), table.parents.tolist(), strict=True):
                self._children.setdefault(parent_codes[parent], []).append(code)

    def table(self, level: Level | str) -> LevelTable:
        """Return the arrays of one level (read them, do not modify them)."""
        return self._tables[Level(level)]

    @property
    def city(self) -> Unit:
        """The city unit (the only unit at :attr:`Level.CITY`)."""
        return self._unit(Level.CITY, 0)

    def unit(self, code: str) -> Unit:
        """Return the unit with this code.

        Raises
        ------
        UnknownCodeError
            If no unit has this code.
        """
        try:
            level, position = self._index[code]
        except KeyError:
            raise UnknownCodeError(code) from None
        return self._unit(level, position)

    def name(self, code: str) -> str:
        """Return the name of the unit with this code (see :meth:`unit`)."""
        return self.unit(code).name

    def geometry(self, code: str) -> BaseGeometry:
        """Return the polygon of the unit with this code (see :meth:`unit`)."""
        level, position = self._locate_code(code)
        geometry: BaseGeometry = self._tables[level].geometries[position]
        return geometry

    def children(self, code: str) -> tuple[str, ...]:
        """Return the codes of the units one level below this one, in ascending order."""
        self._locate_code(code)
        return tuple(self._children.get(code, ()))

    def counts(self) -> dict[Level, int]:
        """Return the number of units at each level.

        Examples
        --------
        >>> from geo import load_heyuan
        >>> counts = load_heyuan().counts()
        >>> counts[Level.COUNTY], counts[Level.TOWN], counts[Level.VILLAGE]
        (6, 101, 1452)
        """
        return {level: len(table) for level, table in self._tables.items()}

    def __contains__(self, code: object) -> bool:
        return code in self._index

    def __iter__(self) -> Iterator[Unit]:
        """Iterate over all units, top-down and by code within a level."""
        for level, table in self._tables.items():
            for position in range(len(table)):
                yield self._unit(level, position)

    def __len__(self) -> int:
        return len(self._index)

    def __repr__(self) -> str:
        counts = ", ".join(f"{level.value}={count}" for level, count in self.counts().items())
        return f"<Hierarchy {self.city.code} {self.city.name} {self.datum.value}: {counts}>"

    def _locate_code(self, code: str) -> tuple[Level, int]:
        try:
            return self._index[code]
        except KeyError:
            raise UnknownCodeError(code) from None

    def _unit(self, level: Level, position: int) -> Unit:
        table = self._tables[level]
        parent_level = level.parent
        parent = None
        if parent_level is not None:
            parent = str(self._tables[parent_level].codes[table.parents[position]])
        return Unit(
            level=level,
            code=str(table.codes[position]),
            name=table.names[position],
            parent=parent,
            generated=bool(table.generated[position]),
        )
