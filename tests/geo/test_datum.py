"""WGS-84 / GCJ-02 conversion against published reference values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from geo import Datum, convert, gcj02_to_wgs84, wgs84_to_gcj02

# (WGS-84 lon, lat, GCJ-02 lon, lat): the test vectors of the eviltransform project
# (googollee/eviltransform, python/test.py), which most GCJ-02 libraries are checked against.
# They are given there as (lat, lon); here in (lon, lat) order like the rest of cityops.
EVILTRANSFORM_VECTORS = [
    pytest.param(121.5272106, 31.1774276, 121.531541859215, 31.17530398364597, id="shanghai"),
    pytest.param(113.912316, 22.543847, 113.9171764808363, 22.540796131694766, id="shenzhen"),
    pytest.param(116.377817, 39.911954, 116.38404722455657, 39.91334545536069, id="beijing"),
]


@pytest.mark.parametrize(("wlon", "wlat", "glon", "glat"), EVILTRANSFORM_VECTORS)
def test_wgs84_to_gcj02_matches_reference(
    wlon: float, wlat: float, glon: float, glat: float
) -> None:
    lon, lat = wgs84_to_gcj02(wlon, wlat)
    assert lon == pytest.approx(glon, abs=1e-9)
    assert lat == pytest.approx(glat, abs=1e-9)


@pytest.mark.parametrize(("wlon", "wlat", "glon", "glat"), EVILTRANSFORM_VECTORS)
def test_gcj02_to_wgs84_inverts_reference(
    wlon: float, wlat: float, glon: float, glat: float
) -> None:
    lon, lat = gcj02_to_wgs84(glon, glat)
    # 1e-7 degrees is about 1 cm; eviltransform's own exact inverse promises 0.5 m.
    assert lon == pytest.approx(wlon, abs=1e-7)
    assert lat == pytest.approx(wlat, abs=1e-7)


def test_arrays_equal_scalars() -> None:
    wlon = np.array([121.5272106, 113.912316, 116.377817])
    wlat = np.array([31.1774276, 22.543847, 39.911954])
    lons, lats = wgs84_to_gcj02(wlon, wlat)
    for i in range(3):
        assert (lons[i], lats[i]) == wgs84_to_gcj02(float(wlon[i]), float(wlat[i]))


def test_round_trip_over_heyuan() -> None:
    lon, lat = np.meshgrid(np.linspace(114.2, 115.6, 50), np.linspace(23.1, 24.8, 50))
    back_lon, back_lat = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    assert np.abs(back_lon - lon).max() < 1e-9
    assert np.abs(back_lat - lat).max() < 1e-9


def test_offset_in_heyuan_is_a_few_hundred_metres() -> None:
    lon, lat = wgs84_to_gcj02(114.7, 23.74)
    east_m = (lon - 114.7) * 111_320 * math.cos(math.radians(23.74))
    north_m = (lat - 23.74) * 110_570
    assert 300 < math.hypot(east_m, north_m) < 700


@pytest.mark.parametrize(
    ("lon", "lat"),
    [
        (2.3522, 48.8566),  # Paris: outside China's rectangle, no offset
        (-74.006, 40.7128),  # New York
        (0.0, 0.0),  # Null Island
    ],
)
def test_outside_china_is_unchanged(lon: float, lat: float) -> None:
    assert wgs84_to_gcj02(lon, lat) == (lon, lat)
    assert gcj02_to_wgs84(lon, lat) == (lon, lat)


def test_nan_passes_through_without_warnings() -> None:
    lons, lats = wgs84_to_gcj02(np.array([np.nan, 114.7]), np.array([23.7, np.inf]))
    assert np.isnan(lons[0])
    assert np.isinf(lats[1])
    lons, lats = gcj02_to_wgs84(np.array([np.nan]), np.array([23.7]))
    assert np.isnan(lons[0])


@pytest.mark.parametrize(
    ("source", "target", "expected"),
    [
        ("gcj02", "gcj02", (114.7, 23.74)),  # same datum: unchanged
        (Datum.WGS84, "wgs84", (114.7, 23.74)),  # enum and string mix
        ("wgs84", "gcj02", wgs84_to_gcj02(114.7, 23.74)),
        ("gcj02", "wgs84", gcj02_to_wgs84(114.7, 23.74)),
    ],
)
def test_convert(source: str, target: str, expected: tuple[float, float]) -> None:
    assert convert(114.7, 23.74, source=source, target=target) == expected


def test_convert_rejects_unknown_datum() -> None:
    with pytest.raises(ValueError, match="bd09"):
        convert(114.7, 23.74, source="bd09", target="gcj02")
