"""Generate the bundled Heyuan grid: towns, villages and grid cells inside the real counties.

No public polygons exist below county level, so this makes plausible ones, labelled
``"generated": true``, under the official codes and names. Run it from the repository root::

    python -m geo.generate            # rewrites geo/data/heyuan/grid.geojson
    python -m geo.generate --check    # fails if the committed file is not what it would write

The output is byte-identical from run to run: every random draw comes from a generator seeded
with :data:`SEED` and the code of the unit being split, and the geometry is snapped to a fixed
grid. (Another GEOS version may node lines differently: after upgrading shapely, regenerate.)

How the polygons are made (see ``docs/geography.md`` for the reasoning):

1. towns split each county by a Voronoi diagram of one seed per town; a district's streets
   (街道) compete only within an irregular core around its urban centre, so they stay small;
2. villages split each town the same way, with residents' committees (社区/居委会) in a core
   around the town's seed and villages (村) in the rest;
3. grid cells split each village, as many as its area over a target size that depends on how
   urban the village is, with seeds evened out by two Lloyd iterations;
4. villages and towns are then redefined as the unions of their cells, so every level tiles the
   next exactly.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
import shapely.affinity
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry

from geo._partition import Zone, partition, relax, sample_seeds
from geo.datum import Datum
from geo.geojson import dump_hierarchy, load_hierarchy
from geo.hierarchy import CODE_LENGTHS, Hierarchy, Level, LevelTable

__all__ = ["DATA", "SEED", "generate", "main"]

SEED = 441600
"""Root seed of every random draw (the city's code, for want of a better number)."""

DATA = Path(__file__).parent / "data" / "heyuan"
"""The real Heyuan data the generator reads, and where it writes ``grid.geojson``."""

# Output vertices lie on this grid: 1e-6 degrees is about 0.1 m, the precision of the source
# boundaries, and what the file stores (6 decimals).
_GRID = 1e-6
_CITY_CODE = "441600"
_CITY_NAME = "河源市"  # the one fact not in the source files: they list counties, not the city

# Approximate urban centres (GCJ-02) of the districts whose streets (街道) get a compact core:
# 源城区's old town on the Dong River. Other counties have no streets, only towns (镇).
_URBAN_CENTRES = {"441602": (114.700, 23.740)}
# Area of a street in the core, and of a residents' committee (社区) in a town core, in km².
_STREET_KM2 = 12.0
_COMMUNITY_KM2 = 1.5

# Target area of a grid cell (网格) in km², by how urban its village is. Real management grids
# are drawn to hold a few hundred households: a few dozen hectares in town, square kilometres
# of forest in the mountains.
_CELL_KM2_STREET_COMMUNITY = 0.25  # 社区 in a street of the central district
_CELL_KM2_STREET_VILLAGE = 1.0  # 村 in a street of the central district
_CELL_KM2_COMMUNITY = 0.5  # 社区 (居委会) of a town
_CELL_KM2_SUBURBAN_VILLAGE = 2.0  # 村 in the central district's towns
_CELL_KM2_RURAL_VILLAGE = 5.0  # 村 elsewhere, mostly hills and forest
_LLOYD_ITERATIONS = 2


@dataclass(frozen=True)
class _Row:
    code: str
    name: str
    parent: str


def _read_rows(path: Path, parent_column: str) -> list[_Row]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = [_Row(r["code"], r["name"], r[parent_column]) for r in csv.DictReader(handle)]
    return sorted(rows, key=lambda row: row.code)


def _is_street(town_code: str) -> bool:
    # NBS town codes 001-099 are streets (街道), 100-199 towns (镇), 200-399 townships (乡).
    return town_code[6:9] < "100"


def _is_community(village_code: str) -> bool:
    # NBS village codes 001-199 are residents' committees (居委会/社区), 200-399 villages (村).
    return village_code[9:12] < "200"


def _km2(geometry: BaseGeometry) -> float:
    """Return the area in km² of a geometry in degrees, on a sphere at its centroid's latitude."""
    latitude = math.radians(geometry.centroid.y)
    return float(geometry.area * 111.32**2 * math.cos(latitude))


def _core(centre: tuple[float, float], km2: float, rng: np.random.Generator) -> BaseGeometry:
    """Return an irregular blob of about ``km2`` square kilometres around ``centre``.

    It stands for the built-up core of a district or town; a perfect disc would make every town
    centre look like a stamp.
    """
    angles = np.linspace(0.0, 2.0 * math.pi, 48, endpoint=False)
    phases = rng.uniform(0.0, 2.0 * math.pi, 3)
    wobble = (
        1.0
        + 0.20 * np.sin(2.0 * angles + phases[0])
        + 0.12 * np.sin(3.0 * angles + phases[1])
        + 0.08 * np.sin(5.0 * angles + phases[2])
    )
    # Degrees per km: a degree of longitude is shorter than one of latitude by cos(latitude).
    ky = 1.0 / 111.32
    kx = ky / math.cos(math.radians(centre[1]))
    shape = shapely.Polygon(np.column_stack([np.cos(angles) * wobble, np.sin(angles) * wobble]))
    scale = math.sqrt(km2 / shape.area)
    return shapely.affinity.affine_transform(
        shape, [scale * kx, 0.0, 0.0, scale * ky, centre[0], centre[1]]
    )


def _rng(code: str) -> np.random.Generator:
    # One stream per split unit: changing one county's data does not reshuffle the others.
    return np.random.default_rng([SEED, int(code)])


def _zones_with_core(
    parent: int,
    polygon: BaseGeometry,
    *,
    core_children: Sequence[int],
    other_children: Sequence[int],
    core: BaseGeometry | None,
    rng: np.random.Generator,
) -> list[Zone]:
    """Return the zones of one parent: a core for some children if there is one, else the whole."""
    if core is None or not core_children or not other_children:
        children = np.array([*core_children, *other_children], dtype=np.intp)
        seeds = sample_seeds(polygon, len(children), rng)
        return [Zone(polygon, parent, seeds, children, whole_parent=True)]
    inner = shapely.intersection(polygon, core, grid_size=_GRID)
    outer = shapely.difference(polygon, core, grid_size=_GRID)
    zones = []
    for zone_polygon, members in ((inner, core_children), (outer, other_children)):
        children = np.array(members, dtype=np.intp)
        seeds = sample_seeds(zone_polygon, len(children), rng)
        zones.append(Zone(zone_polygon, parent, seeds, children, whole_parent=False))
    return zones


def _seed_of(zones: Sequence[Zone], count: int) -> NDArray[np.float64]:
    seeds = np.empty((count, 2))
    for zone in zones:
        seeds[zone.children] = zone.seeds
    return seeds


def _split(
    parents: Sequence[_Row],
    parent_polygons: Sequence[BaseGeometry],
    children: Sequence[_Row],
    *,
    in_core: Callable[[str], bool],
    core_km2: float,
    centre_of: Callable[[int, _Row], tuple[float, float] | None],
) -> tuple[list[BaseGeometry], NDArray[np.float64]]:
    """Partition each parent among its children, packing the ``in_core`` ones round a centre.

    Towns: a county's streets (街道) round its urban centre. Villages: a town's communities
    (社区) round the town's seed, except in streets, which are urban throughout.
    """
    by_parent: dict[str, list[int]] = {}
    for i, child in enumerate(children):
        by_parent.setdefault(child.parent, []).append(i)
    zones: list[Zone] = []
    for number, parent in enumerate(parents):
        members = by_parent[parent.code]
        core_children = [i for i in members if in_core(children[i].code)]
        others = [i for i in members if not in_core(children[i].code)]
        rng = _rng(parent.code)
        centre = centre_of(number, parent) if core_children else None
        core = _core(centre, core_km2 * len(core_children), rng) if centre else None
        zones += _zones_with_core(
            number,
            parent_polygons[number],
            core_children=core_children,
            other_children=others,
            core=core,
            rng=rng,
        )
    polygons = partition(parent_polygons, zones, len(children), _GRID)
    return polygons, _seed_of(zones, len(children))


def _split_towns(
    counties: Sequence[_Row], county_polygons: Sequence[BaseGeometry], towns: Sequence[_Row]
) -> tuple[list[BaseGeometry], NDArray[np.float64]]:
    return _split(
        counties,
        county_polygons,
        towns,
        in_core=_is_street,
        core_km2=_STREET_KM2,
        centre_of=lambda _, county: _URBAN_CENTRES.get(county.code),
    )


def _split_villages(
    towns: Sequence[_Row],
    town_polygons: Sequence[BaseGeometry],
    town_seeds: NDArray[np.float64],
    villages: Sequence[_Row],
) -> tuple[list[BaseGeometry], NDArray[np.float64]]:
    def seed_unless_street(number: int, town: _Row) -> tuple[float, float] | None:
        if _is_street(town.code):
            return None
        return float(town_seeds[number, 0]), float(town_seeds[number, 1])

    return _split(
        towns,
        town_polygons,
        villages,
        in_core=_is_community,
        core_km2=_COMMUNITY_KM2,
        centre_of=seed_unless_street,
    )


def _cell_km2(village: _Row) -> float:
    street = _is_street(village.code[:9])
    community = _is_community(village.code)
    central = village.code.startswith("441602")
    if street:
        return _CELL_KM2_STREET_COMMUNITY if community else _CELL_KM2_STREET_VILLAGE
    if community:
        return _CELL_KM2_COMMUNITY
    return _CELL_KM2_SUBURBAN_VILLAGE if central else _CELL_KM2_RURAL_VILLAGE


def _split_cells(
    villages: Sequence[_Row], village_polygons: Sequence[BaseGeometry]
) -> tuple[list[BaseGeometry], list[_Row]]:
    zones: list[Zone] = []
    cells: list[_Row] = []
    for number, village in enumerate(villages):
        polygon = village_polygons[number]
        count = max(1, round(_km2(polygon) / _cell_km2(village)))
        seeds = relax(polygon, sample_seeds(polygon, count, _rng(village.code)), _LLOYD_ITERATIONS)
        # Number cells north to south, then west to east, as a reader scans a map.
        seeds = seeds[np.lexsort((seeds[:, 0], -seeds[:, 1]))]
        first = len(cells)
        for sequence in range(1, count + 1):
            code = f"{village.code}{sequence:03d}"
            cells.append(_Row(code, f"{village.name}第{sequence:03d}网格", village.code))
        children = np.arange(first, first + count, dtype=np.intp)
        zones.append(Zone(polygon, number, seeds, children, whole_parent=True))
    return partition(village_polygons, zones, len(cells), _GRID), cells


def _union_by_parent(
    children: Sequence[BaseGeometry], parent_index: NDArray[np.intp], count: int
) -> list[BaseGeometry]:
    groups: list[list[BaseGeometry]] = [[] for _ in range(count)]
    for geometry, parent in zip(children, parent_index.tolist(), strict=True):
        groups[parent].append(geometry)
    # The children share edges exactly, so the coverage union is exact and keeps every vertex
    # the neighbours of the union also have.
    return [shapely.coverage_union_all(group) for group in groups]


def _table(
    level: Level,
    rows: Sequence[_Row],
    geometries: Sequence[BaseGeometry],
    parent_codes: Sequence[str],
    *,
    generated: bool,
) -> LevelTable:
    position = {code: i for i, code in enumerate(parent_codes)}
    array = np.empty(len(rows), dtype=object)
    array[:] = list(geometries)
    return LevelTable(
        level=level,
        codes=np.array([row.code for row in rows], dtype=f"<U{CODE_LENGTHS[level]}"),
        names=tuple(row.name for row in rows),
        parents=np.array([position.get(row.parent, -1) for row in rows], dtype=np.intp),
        geometries=array,
        generated=np.full(len(rows), generated),
    )


def generate(data: Path = DATA) -> Hierarchy:
    """Generate the Heyuan hierarchy from the real data in ``data``.

    Parameters
    ----------
    data : Path
        Folder with ``counties/*.geojson``, ``counties_2023.csv``, ``towns_2023.csv`` and
        ``villages_2023.csv``.

    Returns
    -------
    Hierarchy
        Real city and county polygons; generated towns, villages and cells.
    """
    counties = _read_rows(data / "counties_2023.csv", "cityCode")
    towns = _read_rows(data / "towns_2023.csv", "areaCode")
    villages = _read_rows(data / "villages_2023.csv", "streetCode")
    city = shapely.from_geojson((data / "counties" / f"{_CITY_CODE}.geojson").read_bytes())
    county_polygons = [
        shapely.from_geojson((data / "counties" / f"{c.code}.geojson").read_bytes())
        for c in counties
    ]
    town_polygons, town_seeds = _split_towns(counties, county_polygons, towns)
    village_polygons, _ = _split_villages(towns, town_polygons, town_seeds, villages)
    cell_polygons, cells = _split_cells(villages, village_polygons)

    village_codes = [v.code for v in villages]
    town_codes = [t.code for t in towns]
    village_position = {code: i for i, code in enumerate(village_codes)}
    town_position = {code: i for i, code in enumerate(town_codes)}
    cell_parent = np.array([village_position[c.parent] for c in cells])
    village_polygons = _union_by_parent(cell_polygons, cell_parent, len(villages))
    village_parent = np.array([town_position[v.parent] for v in villages])
    town_polygons = _union_by_parent(village_polygons, village_parent, len(towns))

    city_rows = [_Row(_CITY_CODE, _CITY_NAME, "")]
    county_rows = [_Row(c.code, c.name, _CITY_CODE) for c in counties]
    tables = {
        Level.CITY: _table(Level.CITY, city_rows, [city], [], generated=False),
        Level.COUNTY: _table(
            Level.COUNTY, county_rows, county_polygons, [_CITY_CODE], generated=False
        ),
        Level.TOWN: _table(
            Level.TOWN, towns, town_polygons, [c.code for c in counties], generated=True
        ),
        Level.VILLAGE: _table(
            Level.VILLAGE, villages, village_polygons, town_codes, generated=True
        ),
        Level.CELL: _table(Level.CELL, cells, cell_polygons, village_codes, generated=True),
    }
    return Hierarchy(tables, datum=Datum.GCJ02, source="geo.generate")


def main(argv: Sequence[str] | None = None) -> int:
    """Write (or with ``--check``, verify) the generated grid; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m geo.generate", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DATA / "grid.geojson",
        help="file to write (default: %(default)s)",
    )
    parser.add_argument(
        "--check", action="store_true", help="do not write; exit 1 if the output file differs"
    )
    args = parser.parse_args(argv)
    data = dump_hierarchy(generate())
    # Loading what was generated runs every check a city's official grid would get.
    hierarchy = load_hierarchy(data, datum=Datum.GCJ02)
    counts = hierarchy.counts()
    central = sum(
        1 for code in hierarchy.table(Level.CELL).codes.tolist() if code.startswith("441602")
    )
    summary = ", ".join(f"{count} {level.value}" for level, count in counts.items())
    sys.stdout.write(f"{summary}; {central} cells in 源城区 (441602); {len(data) / 1e6:.2f} MB\n")
    if args.check:
        current = args.output.read_bytes() if args.output.exists() else b""
        if current != data:
            sys.stderr.write(f"{args.output} is out of date: run python -m geo.generate\n")
            return 1
        sys.stdout.write(f"{args.output} is up to date\n")
        return 0
    args.output.write_bytes(data)
    sys.stdout.write(f"wrote {args.output}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
