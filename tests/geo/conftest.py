"""Fixtures of the geography tests: the bundled Heyuan grid, and a hand-made toy city.

The Heyuan fixtures (``heyuan``, ``heyuan_index``) are suite-wide, in ``tests/conftest.py``.

The toy city (``toy_city.geojson``, WGS-84) is a 2 km square split on a 4 by 4 lattice of
0.005 degrees of longitude by 0.0045 degrees of latitude; ``toy_xy(u, v)`` converts lattice
coordinates to degrees. Its layout, north up::

    v=4 +---------+---------+----+----+
        | 990101002001001   |    |    |
    v=3 +---- (北门社区) ----+ 湖北村  |
        | 990101002001002   |-001|-002|
    v=2 +----+----+---------+----+----+
        |-001|    |                   |
    v=1 +----+ -002001      湖南村     |
        |-002|(西关)|   990102100201001|
    v=0 +----+----+---------+---------+
       u=0  u=1  u=2                 u=4

West county 990101 (u 0-2) holds towns 990101001 (south) and 990101002 (north); east county
990102 (u 2-4) is one town, 990102100. The south-west cells are 990101001001002 (v 0-1) and
990101001001001 (v 1-2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from geo import GridIndex, Hierarchy, load_hierarchy

TOY_CITY = Path(__file__).with_name("toy_city.geojson")


def toy_xy(u: float, v: float) -> tuple[float, float]:
    """Return the WGS-84 (lon, lat) of lattice point (u, v) of the toy city."""
    return 113.0 + 0.005 * u, 22.0 + 0.0045 * v


@pytest.fixture(scope="session")
def toy() -> Hierarchy:
    """The toy city, loaded and validated."""
    return load_hierarchy(TOY_CITY, datum="wgs84")


@pytest.fixture(scope="session")
def toy_index(toy: Hierarchy) -> GridIndex:
    """A locator over the toy city."""
    return GridIndex(toy)


@pytest.fixture
def toy_document() -> dict[str, Any]:
    """The toy city file as a fresh dictionary, for tests that break it on purpose."""
    document: dict[str, Any] = orjson.loads(TOY_CITY.read_bytes())
    return document
