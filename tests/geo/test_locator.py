"""Locating points: canonical points, borders, bad input, datums, and the two paths agreeing."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from geo import (
    GridIndex,
    Hierarchy,
    Level,
    LevelTable,
    Location,
    Reason,
    gcj02_to_wgs84,
    wgs84_to_gcj02,
)
from tests.geo.canonical import (
    HEYUAN_COUNTY_BORDER_VERTEX,
    HEYUAN_COUNTY_INTERIORS,
    HEYUAN_NEAR_BORDER_GCJ02,
    HEYUAN_NEAR_BORDER_WGS84,
    HEYUAN_OUTSIDE,
    NamedPoint,
)
from tests.geo.conftest import toy_xy


def _both_ways(index: GridIndex, lon: float, lat: float, datum: str) -> Location:
    """Locate with the single-point and the batch path, check they agree, return the answer."""
    single = index.locate(lon, lat, datum=datum)
    batch = index.locate_many([lon], [lat], datum=datum)
    assert batch[0] == single
    return single


# Toy city lattice points (u, v) and the cell each must land in. Points on borders go to the
# lowest code among the cells whose closed polygons hold them.
TOY_POINTS = [
    pytest.param(0.5, 0.5, "990101001001002", id="inside the south-west cell"),
    pytest.param(3.5, 3.5, "990102100202002", id="inside the north-east cell"),
    pytest.param(0.5, 1.0, "990101001001001", id="edge of two cells of one village"),
    pytest.param(1.0, 0.5, "990101001001002", id="edge between two villages"),
    pytest.param(2.0, 1.0, "990101001002001", id="edge between two counties"),
    pytest.param(2.0, 2.0, "990101001002001", id="corner of four cells in two counties"),
    pytest.param(3.0, 3.0, "990102100202001", id="edge of two cells of the east village"),
    pytest.param(0.0, 0.5, "990101001001002", id="on the city boundary: closed polygons"),
    pytest.param(4.0, 4.0, "990102100202002", id="the city's north-east corner"),
]


@pytest.mark.parametrize(("u", "v", "cell"), TOY_POINTS)
def test_toy_city_points(toy_index: GridIndex, u: float, v: float, cell: str) -> None:
    where = _both_ways(toy_index, *toy_xy(u, v), datum="wgs84")
    assert where.reason is Reason.LOCATED
    assert where.cell == cell
    assert where.village == cell[:12]
    assert where.town == cell[:9]
    assert where.county == cell[:6]
    assert where.city == "990100"


@pytest.mark.parametrize(
    ("u", "v"),
    [
        (-0.01, 2.0),  # just west of the city
        (4.01, 2.0),  # just east
        (2.0, 4.01),  # just north
        (-40.0, -40.0),  # far south-west, outside the lookup table
    ],
)
def test_toy_city_outside(toy_index: GridIndex, u: float, v: float) -> None:
    where = _both_ways(toy_index, *toy_xy(u, v), datum="wgs84")
    assert where == Location(Reason.OUTSIDE_CITY)


def test_toy_city_datum_is_converted(toy_index: GridIndex, toy: Hierarchy) -> None:
    # The toy city is WGS-84. A GCJ-02 reading of its centre is about 500 m off in numbers;
    # given as GCJ-02 it is converted back and found, given as WGS-84 it is wrong by a cell.
    lon, lat = wgs84_to_gcj02(*toy_xy(0.5, 0.5))
    assert _both_ways(toy_index, lon, lat, datum="gcj02").cell == "990101001001002"
    assert _both_ways(toy_index, lon, lat, datum="wgs84").cell != "990101001001002"
    assert toy.datum == "wgs84"


# Coordinates that are not a position: every one gets a reason, none an exception.
INVALID = [
    pytest.param(float("nan"), 23.7, id="NaN longitude"),
    pytest.param(114.7, float("nan"), id="NaN latitude"),
    pytest.param(float("inf"), 23.7, id="infinite longitude"),
    pytest.param(114.7, -float("inf"), id="infinite latitude"),
    pytest.param(23.7, 114.7, id="longitude and latitude swapped"),
    pytest.param(181.0, 23.7, id="longitude beyond 180"),
    pytest.param(114.7, -90.5, id="latitude beyond -90"),
]


@pytest.mark.parametrize(("lon", "lat"), INVALID)
@pytest.mark.parametrize("datum", ["gcj02", "wgs84"])
def test_invalid_coordinates(heyuan_index: GridIndex, lon: float, lat: float, datum: str) -> None:
    where = _both_ways(heyuan_index, lon, lat, datum=datum)
    assert where == Location(Reason.INVALID_COORDINATE)
    assert where.reason.slug == "invalid_coordinate"


@pytest.mark.parametrize("point", HEYUAN_COUNTY_INTERIORS, ids=lambda p: p.name)
def test_heyuan_county_interiors(heyuan_index: GridIndex, point: NamedPoint) -> None:
    where = _both_ways(heyuan_index, point.lon, point.lat, datum="gcj02")
    assert where.reason is Reason.LOCATED
    assert where.county == point.county
    assert where.city == "441600"
    assert where.cell is not None
    assert where.cell.startswith(str(where.village))
    assert str(where.village).startswith(str(where.town))
    assert str(where.town).startswith(str(where.county))
    hierarchy = heyuan_index.hierarchy
    assert hierarchy.unit(where.cell).parent == where.village
    assert hierarchy.unit(str(where.village)).parent == where.town


def test_heyuan_border_vertex(heyuan_index: GridIndex, heyuan: Hierarchy) -> None:
    point = HEYUAN_COUNTY_BORDER_VERTEX
    cells = heyuan.table(Level.CELL)
    holding = [
        str(code)
        for code, geometry in zip(cells.codes, cells.geometries, strict=True)
        if shapely.intersects_xy(geometry, point.lon, point.lat)
    ]
    assert {code[:6] for code in holding} == {"441602", "441625"}
    where = _both_ways(heyuan_index, point.lon, point.lat, datum="gcj02")
    assert where.cell == min(holding)
    assert where.county == point.county


@pytest.mark.parametrize("point", HEYUAN_OUTSIDE, ids=lambda p: p.name)
@pytest.mark.parametrize("datum", ["gcj02", "wgs84"])
def test_heyuan_outside(heyuan_index: GridIndex, point: NamedPoint, datum: str) -> None:
    where = _both_ways(heyuan_index, point.lon, point.lat, datum=datum)
    assert where == Location(Reason.OUTSIDE_CITY)
    assert where.reason.slug == "outside_city"


def test_heyuan_wgs84_and_gcj02_input(heyuan_index: GridIndex) -> None:
    gcj, wgs = HEYUAN_NEAR_BORDER_GCJ02, HEYUAN_NEAR_BORDER_WGS84
    assert gcj02_to_wgs84(gcj.lon, gcj.lat) == pytest.approx((wgs.lon, wgs.lat), abs=1e-7)
    right = _both_ways(heyuan_index, gcj.lon, gcj.lat, datum="gcj02")
    assert right.county == "441602"
    # The same place in WGS-84 numbers, declared as such, lands in the same cell ...
    assert _both_ways(heyuan_index, wgs.lon, wgs.lat, datum="wgs84") == right
    # ... and read as GCJ-02 by mistake, it lands in the neighbouring county.
    assert _both_ways(heyuan_index, wgs.lon, wgs.lat, datum="gcj02").county == "441625"


def test_random_points_inside_the_city_are_all_located(
    heyuan_index: GridIndex, heyuan: Hierarchy
) -> None:
    city = heyuan.table(Level.CITY).geometries[0]
    rng = np.random.default_rng(441600)
    x0, y0, x1, y1 = city.bounds
    x = rng.uniform(x0, x1, 160_000)
    y = rng.uniform(y0, y1, 160_000)
    inside = shapely.contains_xy(city, x, y)
    x, y = x[inside][:100_000], y[inside][:100_000]
    assert len(x) == 100_000
    found = heyuan_index.locate_many(x, y, datum="gcj02")
    assert np.all(found.reason == Reason.LOCATED)
    assert np.all(found.city == "441600")
    assert set(found.county.tolist()) == set(heyuan.table(Level.COUNTY).codes.tolist())
    # Every level is consistent with the cell, through the hierarchy's own parent links.
    cells = heyuan.table(Level.CELL)
    villages = heyuan.table(Level.VILLAGE)
    assert np.array_equal(found.cell, cells.codes[found.cell_index])
    assert np.array_equal(found.village, villages.codes[cells.parents[found.cell_index]])


def test_random_points_outside_the_city_are_outside(
    heyuan_index: GridIndex, heyuan: Hierarchy
) -> None:
    city = heyuan.table(Level.CITY).geometries[0]
    rng = np.random.default_rng(441601)
    x0, y0, x1, y1 = city.bounds
    x = rng.uniform(x0, x1, 100_000)
    y = rng.uniform(y0, y1, 100_000)
    outside = ~shapely.intersects_xy(city, x, y)
    # Points in the bounding box but outside the boundary (about a third of the box) ...
    found = heyuan_index.locate_many(x[outside], y[outside], datum="gcj02")
    assert outside.sum() > 20_000
    assert np.all(found.reason == Reason.OUTSIDE_CITY)
    assert np.all(found.cell == "")
    # ... and far away, all over the world.
    far = heyuan_index.locate_many(
        rng.uniform(-180, 180, 10_000), rng.uniform(-90, 90, 10_000), datum="wgs84"
    )
    assert np.all(far.reason == Reason.OUTSIDE_CITY)


def test_batch_agrees_with_single_and_brute_force_on_borders(
    heyuan_index: GridIndex, heyuan: Hierarchy
) -> None:
    # Vertices of cells are the hardest points: most lie on two or three cells' borders.
    cells = heyuan.table(Level.CELL)
    rng = np.random.default_rng(7)
    sample = rng.choice(len(cells), 300, replace=False)
    vertices = shapely.get_coordinates(cells.geometries[sample])
    x, y = vertices[:, 0], vertices[:, 1]
    candidates_point, candidates_cell = shapely.STRtree(cells.geometries).query(
        shapely.points(x, y), predicate="intersects"
    )
    lowest = np.full(len(x), len(cells))
    np.minimum.at(lowest, candidates_point, candidates_cell)
    found = heyuan_index.locate_many(x, y, datum="gcj02")
    assert np.array_equal(found.cell_index, lowest)
    for i in range(0, len(x), 37):
        assert heyuan_index.locate(float(x[i]), float(y[i]), datum="gcj02") == found[i]


def test_locate_many_shapes_and_types(heyuan_index: GridIndex) -> None:
    found = heyuan_index.locate_many(np.array([114.6164]), 23.6364, datum="gcj02")  # broadcast
    assert len(found) == 1
    assert found.reason.dtype == np.uint8
    assert found.cell_index.dtype == np.int32
    empty = heyuan_index.locate_many([], [], datum="gcj02")
    assert len(empty) == 0


def test_gap_in_the_grid(toy: Hierarchy) -> None:
    # A hierarchy whose cells leave a hole (allowed within the tolerance, here forced): a point
    # there is in the city but in no cell.
    cells = toy.table(Level.CELL)
    keep = cells.codes != "990102100202002"
    holed = LevelTable(
        level=Level.CELL,
        codes=cells.codes[keep],
        names=tuple(n for n, k in zip(cells.names, keep, strict=True) if k),
        parents=cells.parents[keep],
        geometries=cells.geometries[keep],
        generated=cells.generated[keep],
    )
    tables = {level: toy.table(level) for level in Level} | {Level.CELL: holed}
    index = GridIndex(Hierarchy(tables, datum=toy.datum, source="test"))
    where = _both_ways(index, *toy_xy(3.5, 3.5), datum="wgs84")
    assert where == Location(Reason.NOT_IN_GRID, city="990100")
    assert index.locate(*toy_xy(2.5, 3.5), datum="wgs84").cell == "990102100202001"


def test_names_by_lookup(heyuan_index: GridIndex, heyuan: Hierarchy) -> None:
    where = heyuan_index.locate(114.6164, 23.6364, datum="gcj02")
    assert heyuan.name(str(where.county)) == "源城区"
    assert heyuan.name(str(where.city)) == "河源市"
    assert heyuan.name(str(where.cell)).endswith("网格")


def test_bin_size_is_bounded(heyuan: Hierarchy) -> None:
    with pytest.raises(ValueError, match="bin size"):
        GridIndex(heyuan, bin_size=1e-5)
