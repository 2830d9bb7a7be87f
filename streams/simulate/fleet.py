"""A simulated device fleet: sensors and cameras placed over a city's grid, as a plan would.

:func:`build_fleet` spreads sensors of every kind and cameras over all counties and towns,
each device at a point inside one grid cell, and :func:`registrations` turns the fleet into
``devices.registry`` records. The same hierarchy, counts and seed always give the same fleet.

Where devices go
    First every town gets one device of each type (when there are at least as many devices as
    towns), so that no town is dark; the rest follow the grid cells, more cells more devices.
    Urban cells weigh more for the kinds a city puts in streets and buildings (smoke, gas,
    manholes, noise, traffic, cameras): a street office (街道, town codes ``…001``-``…099``
    under NBS 统计用区划代码) counts four times, a county seat town (``…100``) three times.
    Water, rain and soil gauges follow the cells alone. Crowd counters stand at a few scenic
    towns only.

What kinds, in what proportions
    :data:`SENSOR_PLAN` — smoke detectors and combustible-gas alarms in buildings and kitchens
    are the bulk of an urban IoT plan, then manhole covers, hydrology, traffic and air.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import shapely
from numpy.typing import NDArray

import geo
from schemas import Datum, Device, DeviceType, Position, SensorKind
from streams.simulate.records import Outgoing

__all__ = [
    "CAMERA_INTERVAL_S",
    "CAMERA_PLAN",
    "SENSOR_PLAN",
    "KindPlan",
    "build_fleet",
    "registrations",
]


@dataclass(frozen=True, slots=True)
class KindPlan:
    """How one sensor kind is deployed."""

    share: float
    """Fraction of all sensors."""
    department: str
    """Owning department, which hears when one goes offline."""
    interval_s: float
    """How often it reports."""
    label: str
    """What a station of this kind is called, for device names."""
    urban: bool
    """Placed where the city is dense (buildings, streets) rather than by area."""


SENSOR_PLAN: dict[SensorKind, KindPlan] = {
    SensorKind.SMOKE: KindPlan(0.25, "消防救援", 300, "烟感", urban=True),
    SensorKind.MANHOLE_TILT: KindPlan(0.15, "城管", 600, "井盖监测", urban=True),
    SensorKind.COMBUSTIBLE_GAS: KindPlan(0.12, "应急管理", 120, "燃气报警", urban=True),
    SensorKind.WATER_LEVEL: KindPlan(0.08, "水务", 300, "水位站", urban=False),
    SensorKind.RAINFALL: KindPlan(0.06, "水务", 300, "雨量站", urban=False),
    SensorKind.TRAFFIC_FLOW: KindPlan(0.06, "交通运输", 60, "车流检测", urban=True),
    SensorKind.NOISE: KindPlan(0.05, "生态环境", 300, "噪声监测", urban=True),
    SensorKind.PM25: KindPlan(0.04, "生态环境", 600, "PM2.5监测", urban=True),
    SensorKind.PM10: KindPlan(0.03, "生态环境", 600, "PM10监测", urban=True),
    SensorKind.O3: KindPlan(0.02, "生态环境", 600, "臭氧监测", urban=True),
    SensorKind.SOIL_MOISTURE: KindPlan(0.04, "气象", 1800, "土壤墒情站", urban=False),
    SensorKind.TEMPERATURE: KindPlan(0.03, "气象", 600, "气温站", urban=False),
    SensorKind.HUMIDITY: KindPlan(0.03, "气象", 600, "湿度站", urban=False),
    SensorKind.WIND_SPEED: KindPlan(0.02, "气象", 600, "风速站", urban=False),
    SensorKind.CROWD_COUNT: KindPlan(0.02, "文广旅体", 120, "客流监测", urban=True),
}
"""Every sensor kind: share of the sensors, department, reporting interval, name, placement."""

CAMERA_PLAN: dict[str, tuple[float, str]] = {
    "城管": (0.40, "城管视频"),
    "公安": (0.35, "治安视频"),
    "交通运输": (0.25, "交通视频"),
}
"""Camera departments: share of the cameras and what a camera is called."""

CAMERA_INTERVAL_S = 60.0
"""A camera's registered interval. Cameras send events only when they see something, so
absence is not measured on them; the registry still needs a value."""

# Scenic spots of Heyuan with crowd counters: 万绿湖 and 镜花缘 (新港镇), 巴伐利亚庄园 (仙塘镇),
# 苏家围 (义合镇), 佗城古镇 (佗城镇), 霍山 (田心镇), the 客家文化公园 in the city centre (上城街道)
# and the 热水 hot springs (热水镇). Another city's geography has none of these names: its
# scenic towns are drawn at random.
_SCENIC_TOWNS = ("新港镇", "仙塘镇", "义合镇", "佗城镇", "田心镇", "上城街道", "热水镇")
_SCENIC_COUNT = 6

# Weights of a cell for urban kinds, by its town's NBS code (the last three digits of the
# nine): 001-099 are street offices (街道), 100 is usually the county seat town.
_STREET_WEIGHT = 4.0
_SEAT_WEIGHT = 3.0


@dataclass(frozen=True, slots=True)
class _Grid:
    """The cell → town → county lookups of a hierarchy, and the cell weights."""

    town_of_cell: NDArray[np.intp]
    county_of_town: NDArray[np.intp]
    cells_of_town: list[NDArray[np.intp]]
    urban_weight: NDArray[np.float64]


def build_fleet(
    hierarchy: geo.Hierarchy, *, sensors: int = 1800, cameras: int = 1200, seed: int = 0
) -> list[Device]:
    """Return a fleet of ``sensors`` sensors and ``cameras`` cameras over ``hierarchy``.

    Deterministic for a hierarchy, counts and seed. Ids are ``sim-<county>-<kind>-<n>`` (kind
    with dashes, e.g. ``sim-441602-water-level-3``) and ``sim-<county>-cam-<n>``; names are
    ``<town> <label> <n>``, e.g. ``埔前镇 水位站 2``. Sensors come first, each type ordered
    by county, kind and number.

    Parameters
    ----------
    hierarchy : geo.Hierarchy
        The city; positions are in its datum.
    sensors, cameras : int
        How many of each; the Heyuan 2025 plan is 20,000 and 13,000.
    seed : int
        Another seed, another fleet.

    Examples
    --------
    >>> fleet = build_fleet(geo.load_heyuan(), sensors=20, cameras=10)
    >>> len(fleet), fleet[0].device_type.value, fleet[-1].device_type.value
    (30, 'sensor', 'camera')
    """
    if sensors < 0 or cameras < 0:
        raise ValueError(f"device counts must not be negative: {sensors} sensors, {cameras}")
    rng = np.random.default_rng(seed)
    grid = _grid(hierarchy)
    devices = _place_sensors(hierarchy, grid, sensors, rng)
    devices += _place_cameras(grid, cameras, rng)
    return _devices(hierarchy, grid, devices, rng)


def registrations(fleet: Sequence[Device], at: datetime) -> list[Outgoing]:
    """Return one ``devices.registry`` record per device, registered at ``at``.

    Keyed by device id; the value is the device with ``updated_at`` set to ``at``.
    """
    if at.tzinfo is None:
        raise ValueError("the registration time must be timezone-aware")
    return [
        Outgoing(
            at=at,
            topic="devices.registry",
            key=device.device_id.encode(),
            value=device.model_copy(update={"updated_at": at}).model_dump_json().encode(),
        )
        for device in fleet
    ]


# A device before it has an id: (kind or None for a camera, department, cell index).
_Placed = tuple[SensorKind | None, str, int]


def _grid(hierarchy: geo.Hierarchy) -> _Grid:
    cells = hierarchy.table("cell")
    villages = hierarchy.table("village")
    towns = hierarchy.table("town")
    town_of_cell = villages.parents[cells.parents]
    order = np.argsort(town_of_cell, kind="stable")
    bounds = np.searchsorted(town_of_cell[order], np.arange(len(towns) + 1))
    cells_of_town = [order[bounds[i] : bounds[i + 1]] for i in range(len(towns))]
    suffix = np.array([int(code[-3:]) for code in towns.codes.tolist()])
    town_weight = np.where(suffix < 100, _STREET_WEIGHT, np.where(suffix == 100, _SEAT_WEIGHT, 1.0))
    return _Grid(
        town_of_cell=town_of_cell,
        county_of_town=towns.parents,
        cells_of_town=cells_of_town,
        urban_weight=town_weight[town_of_cell],
    )


def _shares(total: int, shares: Sequence[float]) -> list[int]:
    """Split ``total`` by ``shares`` (largest remainder), summing to exactly ``total``."""
    weights = np.asarray(shares, dtype=float)
    exact = total * weights / weights.sum()
    counts = np.floor(exact).astype(int)
    for index in np.argsort(-(exact - counts), kind="stable")[: total - int(counts.sum())]:
        counts[index] += 1
    return [int(count) for count in counts]


def _cover(grid: _Grid, count: int, rng: np.random.Generator) -> list[int]:
    """Pick one cell in each of ``count`` different towns (at most every town once)."""
    towns = rng.permutation(len(grid.cells_of_town))[:count]
    return [int(rng.choice(grid.cells_of_town[town])) for town in towns.tolist()]


def _spread(grid: _Grid, count: int, *, urban: bool, rng: np.random.Generator) -> list[int]:
    """Pick ``count`` cells at random, urban cells weighing more when ``urban``."""
    if count == 0:
        return []
    weights = grid.urban_weight if urban else np.ones(len(grid.town_of_cell))
    return [int(c) for c in rng.choice(len(weights), size=count, p=weights / weights.sum())]


def _place_sensors(
    hierarchy: geo.Hierarchy, grid: _Grid, count: int, rng: np.random.Generator
) -> list[_Placed]:
    kinds = list(SENSOR_PLAN)
    counts = dict(zip(kinds, _shares(count, [SENSOR_PLAN[k].share for k in kinds]), strict=True))
    crowd = counts.pop(SensorKind.CROWD_COUNT)
    placed: list[_Placed] = []
    scenic = _scenic_towns(hierarchy, rng)
    for n in range(crowd):  # round-robin over the scenic towns
        cell = int(rng.choice(grid.cells_of_town[scenic[n % len(scenic)]]))
        placed.append(
            (SensorKind.CROWD_COUNT, SENSOR_PLAN[SensorKind.CROWD_COUNT].department, cell)
        )
    # One sensor of a random kind in every town first, drawn from the plan's own counts.
    pool = [kind for kind, n in counts.items() for _ in range(n)]
    pool = [pool[i] for i in rng.permutation(len(pool))]
    covering = pool[: len(grid.cells_of_town)]
    for kind, cell in zip(covering, _cover(grid, len(covering), rng), strict=True):
        placed.append((kind, SENSOR_PLAN[kind].department, cell))
        counts[kind] -= 1
    for kind, remaining in counts.items():
        plan = SENSOR_PLAN[kind]
        placed.extend(
            (kind, plan.department, cell)
            for cell in _spread(grid, remaining, urban=plan.urban, rng=rng)
        )
    return placed


def _place_cameras(grid: _Grid, count: int, rng: np.random.Generator) -> list[_Placed]:
    departments = list(CAMERA_PLAN)
    counts = _shares(count, [CAMERA_PLAN[d][0] for d in departments])
    pool = [d for d, n in zip(departments, counts, strict=True) for _ in range(n)]
    pool = [pool[i] for i in rng.permutation(len(pool))]
    covered = min(count, len(grid.cells_of_town))
    cells = _cover(grid, covered, rng) + _spread(grid, count - covered, urban=True, rng=rng)
    return [(None, department, cell) for department, cell in zip(pool, cells, strict=True)]


def _scenic_towns(hierarchy: geo.Hierarchy, rng: np.random.Generator) -> list[int]:
    names = hierarchy.table("town").names
    found = [i for i, name in enumerate(names) if name in _SCENIC_TOWNS]
    if found:
        return found
    return sorted(int(i) for i in rng.permutation(len(names))[:_SCENIC_COUNT])


def _devices(
    hierarchy: geo.Hierarchy, grid: _Grid, placed: list[_Placed], rng: np.random.Generator
) -> list[Device]:
    cells = np.array([cell for _, _, cell in placed], dtype=np.intp)
    lons, lats = _points_in(hierarchy.table("cell").geometries[cells], rng)
    towns = hierarchy.table("town")
    counties = hierarchy.table("county")
    town_of = grid.town_of_cell[cells]
    # Number devices in a stable order: type, county, kind, town, then where they fell.
    kind_order = {kind: n for n, kind in enumerate(SENSOR_PLAN)}
    county_of = grid.county_of_town[town_of]

    def sort_key(index: int) -> tuple[int, int, int, int, float, float]:
        kind, _, _ = placed[index]
        rank = len(kind_order) if kind is None else kind_order[kind]
        return (
            int(kind is None),
            int(county_of[index]),
            rank,
            int(town_of[index]),
            float(lons[index]),
            float(lats[index]),
        )

    datum = Datum(hierarchy.datum.value)
    numbers: dict[tuple[int, str], int] = {}
    names: dict[tuple[int, str], int] = {}
    devices = []
    for index in sorted(range(len(placed)), key=sort_key):
        kind, department, _ = placed[index]
        county = str(counties.codes[county_of[index]])
        town = int(town_of[index])
        slug = "cam" if kind is None else kind.value.replace("_", "-")
        label = CAMERA_PLAN[department][1] if kind is None else SENSOR_PLAN[kind].label
        number = numbers[county_of[index], slug] = numbers.get((county_of[index], slug), 0) + 1
        nth = names[town, label] = names.get((town, label), 0) + 1
        devices.append(
            Device(
                device_id=f"sim-{county}-{slug}-{number}",
                device_type=DeviceType.CAMERA if kind is None else DeviceType.SENSOR,
                kind=kind,
                name=f"{towns.names[town]} {label} {nth}",
                position=Position(lon=float(lons[index]), lat=float(lats[index]), datum=datum),
                department=department,
                expected_interval_s=CAMERA_INTERVAL_S
                if kind is None
                else SENSOR_PLAN[kind].interval_s,
            )
        )
    return devices


_MAX_TRIES = 10_000


def _points_in(
    geometries: NDArray[np.object_], rng: np.random.Generator
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return one point uniformly inside each polygon (rejection within its bounds).

    Coordinates are rounded to 6 decimals (about 0.1 m) before the test, so a rounded point
    is still inside.
    """
    bounds = shapely.bounds(geometries)
    lons = np.empty(len(geometries))
    lats = np.empty(len(geometries))
    todo = np.arange(len(geometries))
    for _ in range(_MAX_TRIES):
        if not len(todo):
            return lons, lats
        box = bounds[todo]
        x = np.round(rng.uniform(box[:, 0], box[:, 2]), 6)
        y = np.round(rng.uniform(box[:, 1], box[:, 3]), 6)
        inside = shapely.contains_xy(geometries[todo], x, y)
        lons[todo[inside]] = x[inside]
        lats[todo[inside]] = y[inside]
        todo = todo[~inside]
    raise ValueError(f"{len(todo)} cells are too thin to put a point in")
