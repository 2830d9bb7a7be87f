"""Benchmark of loading the Heyuan grid and locating points in it.

Run from the repository root::

    python -m geo.bench                       # prints a table, writes bench-results/geo.json
    python -m geo.bench --json out.json --points 200000

Points are drawn uniformly inside the city boundary from a fixed seed (and, for the urban case,
inside the central district 源城区, where cells are smallest and most points need the exact
test). Throughput is the median over repeats; memory is measured twice, because GEOS allocates
geometries outside Python's allocator: ``tracemalloc`` sees Python objects and numpy arrays, the
resident-set (RSS) delta sees everything but depends on the allocator's mood.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry

from geo.datum import Datum, gcj02_to_wgs84
from geo.geojson import load_hierarchy
from geo.hierarchy import Level
from geo.locator import GridIndex, Reason

__all__ = ["main", "run"]

_GRID = "data/heyuan/grid.geojson"
_BATCH_SIZES = (1_000, 10_000, 100_000)


def _rss_bytes() -> int | None:
    """Return the current resident set size, or None where /proc is not available.

    Memory freed by Python and GEOS stays in the C allocator's pools, where it still counts as
    resident; on glibc, ``malloc_trim`` hands it back first, so that the delta is what is live.
    """
    gc.collect()
    # Elsewhere than glibc there is no malloc_trim, and the delta includes freed memory.
    with contextlib.suppress(AttributeError, OSError):
        ctypes.CDLL(None).malloc_trim(0)
    try:
        pages = int(Path("/proc/self/statm").read_text(encoding="ascii").split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return None


def _median_seconds(action: Callable[[], object], repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def _points_in(
    polygon: BaseGeometry, count: int, rng: np.random.Generator
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    x0, y0, x1, y1 = polygon.bounds
    shapely.prepare(polygon)
    xs: list[NDArray[np.float64]] = []
    ys: list[NDArray[np.float64]] = []
    while sum(len(x) for x in xs) < count:
        x = rng.uniform(x0, x1, count)
        y = rng.uniform(y0, y1, count)
        inside = shapely.contains_xy(polygon, x, y)
        xs.append(x[inside])
        ys.append(y[inside])
    return np.concatenate(xs)[:count], np.concatenate(ys)[:count]


def _batched(
    index: GridIndex, x: NDArray[np.float64], y: NDArray[np.float64], size: int, datum: Datum
) -> None:
    for start in range(0, len(x), size):
        index.locate_many(x[start : start + size], y[start : start + size], datum=datum)


def _single(index: GridIndex, x: list[float], y: list[float], datum: Datum) -> None:
    locate = index.locate
    for lon, lat in zip(x, y, strict=True):
        locate(lon, lat, datum=datum)


def run(points: int = 200_000, repeats: int = 5, seed: int = 20240601) -> dict[str, Any]:
    """Measure everything and return the results as a JSON-ready dictionary."""
    path = resources.files("geo").joinpath(_GRID)
    data = path.read_bytes()

    rss_before = _rss_bytes()
    start = time.perf_counter()
    hierarchy = load_hierarchy(data, datum=Datum.GCJ02)
    load_seconds = time.perf_counter() - start
    rss_after = _rss_bytes()
    tracemalloc.start()
    traced = load_hierarchy(data, datum=Datum.GCJ02)
    traced_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del traced
    # GEOS allocates geometries outside Python's allocator; their WKB size is a close estimate
    # (GEOS stores the same 16 bytes per coordinate, plus small headers).
    geometry_bytes = sum(
        len(wkb) for level in Level for wkb in shapely.to_wkb(hierarchy.table(level).geometries)
    )

    build_seconds = _median_seconds(lambda: GridIndex(hierarchy), repeats)
    rss_index_before = _rss_bytes()
    index = GridIndex(hierarchy)
    # Prepared cells build their point-in-polygon indexes on first use: count them too.
    index.locate_many(
        *_points_in(hierarchy.table(Level.CITY).geometries[0], 10_000, np.random.default_rng(0)),
        datum=Datum.GCJ02,
    )
    rss_index_after = _rss_bytes()

    rng = np.random.default_rng(seed)
    city = hierarchy.table(Level.CITY).geometries[0]
    x, y = _points_in(city, points, rng)
    ux, uy = _points_in(hierarchy.geometry("441602"), points, rng)
    wx, wy = gcj02_to_wgs84(x, y)
    located = index.locate_many(x, y, datum=Datum.GCJ02)
    share_located = float(np.mean(located.reason == Reason.LOCATED))

    batched: dict[str, float] = {}
    for size in _BATCH_SIZES:
        seconds = _median_seconds(partial(_batched, index, x, y, size, Datum.GCJ02), repeats)
        batched[f"city_gcj02_batch_{size}"] = points / seconds
    seconds = _median_seconds(lambda: _batched(index, ux, uy, 10_000, Datum.GCJ02), repeats)
    batched["urban_gcj02_batch_10000"] = points / seconds
    seconds = _median_seconds(lambda: _batched(index, wx, wy, 10_000, Datum.WGS84), repeats)
    batched["city_wgs84_batch_10000"] = points / seconds

    single_points = min(points, 100_000)
    sx, sy = x[:single_points].tolist(), y[:single_points].tolist()
    swx, swy = wx[:single_points].tolist(), wy[:single_points].tolist()
    sux, suy = ux[:single_points].tolist(), uy[:single_points].tolist()
    single = {
        "city_gcj02": single_points
        / _median_seconds(lambda: _single(index, sx, sy, Datum.GCJ02), repeats),
        "urban_gcj02": single_points
        / _median_seconds(lambda: _single(index, sux, suy, Datum.GCJ02), repeats),
        "city_wgs84": single_points
        / _median_seconds(lambda: _single(index, swx, swy, Datum.WGS84), repeats),
    }

    def delta(after: int | None, before: int | None) -> int | None:
        return None if after is None or before is None else after - before

    return {
        "points": points,
        "repeats": repeats,
        "seed": seed,
        "counts": {level.value: count for level, count in hierarchy.counts().items()},
        "file_bytes": len(data),
        "load_seconds": load_seconds,
        "hierarchy_tracemalloc_bytes": traced_bytes,
        "hierarchy_geometry_wkb_bytes": geometry_bytes,
        "hierarchy_rss_delta_bytes": delta(rss_after, rss_before),
        "index_build_seconds": build_seconds,
        "index_nbytes": index.nbytes,
        "index_rss_delta_bytes": delta(rss_index_after, rss_index_before),
        "located_share_of_city_points": share_located,
        "batched_points_per_second": batched,
        "single_points_per_second": single,
        "environment": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "shapely": shapely.__version__,
            "geos": shapely.geos_version_string,
            "machine": platform.machine(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
        },
    }


def _report(results: dict[str, Any]) -> str:
    def mb(value: int | None) -> str:
        return "n/a" if value is None else f"{value / 1e6:.1f} MB"

    counts = ", ".join(f"{n} {level}" for level, n in results["counts"].items())
    lines = [
        f"Heyuan grid: {counts}; file {mb(results['file_bytes'])}",
        f"load (parse + validate)      {results['load_seconds']:.3f} s",
        f"hierarchy memory             {mb(results['hierarchy_tracemalloc_bytes'])} Python"
        f" (tracemalloc) + {mb(results['hierarchy_geometry_wkb_bytes'])} geometries (WKB size);"
        f" {mb(results['hierarchy_rss_delta_bytes'])} RSS delta",
        f"index build                  {results['index_build_seconds']:.3f} s",
        f"index memory                 {mb(results['index_nbytes'])} arrays,"
        f" {mb(results['index_rss_delta_bytes'])} RSS delta",
        f"points located (city sample) {results['located_share_of_city_points']:.4%}",
        "batched, points/s (all five levels):",
    ]
    lines += [
        f"  {name:<28}{rate:>12,.0f}" for name, rate in results["batched_points_per_second"].items()
    ]
    lines.append("single point, points/s:")
    lines += [
        f"  {name:<28}{rate:>12,.0f}" for name, rate in results["single_points_per_second"].items()
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the table, write the JSON; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m geo.bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--json",
        type=Path,
        default=Path("bench-results/geo.json"),
        help="where to write (default: %(default)s)",
    )
    parser.add_argument(
        "--points", type=int, default=200_000, help="points per measurement (default: %(default)s)"
    )
    parser.add_argument(
        "--repeats", type=int, default=5, help="repeats per measurement (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    results = run(points=args.points, repeats=args.repeats)
    print(_report(results))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
