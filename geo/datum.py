"""Datums of coordinates, and conversion between WGS-84 and GCJ-02.

GCJ-02 (国测局坐标, "Mars coordinates") is WGS-84 shifted by a published but deliberately
irregular offset of up to a few hundred metres. Chinese web maps (AMap, Tencent, Google China)
and the boundaries shipped with cityops are in GCJ-02; GPS receivers and many IoT devices report
WGS-84. Mixing them puts a point on the wrong side of a border, so the datum of the boundaries
and of every input is explicit, and input is converted to the boundaries' datum before lookup.

The forward transform (WGS-84 to GCJ-02) is the widely reimplemented closed form leaked from the
official algorithm (Krasovsky 1940 ellipsoid, a fixed trigonometric offset series); points outside
a rectangle around China are left unchanged, as every implementation does. The inverse has no
closed form and is computed by fixed-point iteration to far below a millimetre.

All functions take ``(lon, lat)`` in that order (x then y), like GeoJSON and shapely; note that
many GCJ-02 libraries take ``(lat, lon)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from enum import StrEnum
from typing import TypeVar, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["Datum", "convert", "gcj02_to_wgs84", "wgs84_to_gcj02"]

FloatArray = NDArray[np.float64]
_T = TypeVar("_T", float, FloatArray)

# Semi-major axis and squared eccentricity of the Krasovsky 1940 ellipsoid, as used by GCJ-02.
_A = 6378245.0
_EE = 0.00669342162296594323

# The rectangle outside of which GCJ-02 implementations apply no offset. It is crude (it includes
# parts of neighbouring countries) but it is what every map SDK uses, so matching it matters more
# than being right about borders.
_LON_MIN, _LON_MAX = 72.004, 137.8347
_LAT_MIN, _LAT_MAX = 0.8293, 55.8271

# The inverse iteration stops when the forward image is this close to the target, in degrees
# (1e-12 degrees is about 0.1 micrometre): far below the 1e-6 degrees of the stored boundaries.
_INVERSE_TOLERANCE = 1e-12
_INVERSE_MAX_ITERATIONS = 20


class Datum(StrEnum):
    """The geodetic datum of a set of coordinates.

    Examples
    --------
    >>> Datum("wgs84") is Datum.WGS84
    True
    """

    WGS84 = "wgs84"
    """World Geodetic System 1984: GPS receivers, OpenStreetMap, most IoT devices."""
    GCJ02 = "gcj02"
    """GCJ-02, China's obfuscated datum: AMap, Tencent maps, the bundled Heyuan boundaries."""


def _offset(
    lon: _T,
    lat: _T,
    *,
    sin: Callable[[_T], _T],
    cos: Callable[[_T], _T],
    sqrt: Callable[[_T], _T],
    fabs: Callable[[_T], _T],
) -> tuple[_T, _T]:
    """Return the GCJ-02 offset ``(dlon, dlat)`` in degrees at a WGS-84 point.

    Written once for floats (``math``) and arrays (``numpy``): the single-point path of the
    locator cannot afford numpy's per-call overhead, and the batch path needs vectorization.
    """
    x = lon - 105.0
    y = lat - 35.0
    xpi = x * math.pi
    ypi = y * math.pi
    common = (20.0 * sin(6.0 * xpi) + 20.0 * sin(2.0 * xpi)) * 2.0 / 3.0
    dlat = (
        -100.0
        + 2.0 * x
        + 3.0 * y
        + 0.2 * y * y
        + 0.1 * x * y
        + 0.2 * sqrt(fabs(x))
        + common
        + (20.0 * sin(ypi) + 40.0 * sin(ypi / 3.0)) * 2.0 / 3.0
        + (160.0 * sin(ypi / 12.0) + 320.0 * sin(ypi / 30.0)) * 2.0 / 3.0
    )
    dlon = (
        300.0
        + x
        + 2.0 * y
        + 0.1 * x * x
        + 0.1 * x * y
        + 0.1 * sqrt(fabs(x))
        + common
        + (20.0 * sin(xpi) + 40.0 * sin(xpi / 3.0)) * 2.0 / 3.0
        + (150.0 * sin(xpi / 12.0) + 300.0 * sin(xpi / 30.0)) * 2.0 / 3.0
    )
    radlat = lat / 180.0 * math.pi
    magic = 1.0 - _EE * sin(radlat) * sin(radlat)
    sqrt_magic = sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * math.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * cos(radlat) * math.pi)
    return dlon, dlat


def _in_china_scalar(lon: float, lat: float) -> bool:
    return _LON_MIN <= lon <= _LON_MAX and _LAT_MIN <= lat <= _LAT_MAX


def _in_china_array(lon: FloatArray, lat: FloatArray) -> NDArray[np.bool_]:
    # NaN compares false, so NaN input is "outside China" and passes through unchanged.
    return (lon >= _LON_MIN) & (lon <= _LON_MAX) & (lat >= _LAT_MIN) & (lat <= _LAT_MAX)


def _forward_scalar(lon: float, lat: float) -> tuple[float, float]:
    if not _in_china_scalar(lon, lat):
        return lon, lat
    dlon, dlat = _offset(lon, lat, sin=math.sin, cos=math.cos, sqrt=math.sqrt, fabs=math.fabs)
    return lon + dlon, lat + dlat


def _forward_array(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    inside = _in_china_array(lon, lat)
    # Computing the offset everywhere and masking is cheaper than fancy-indexing the inside
    # points out and back; errstate hides the warnings NaN or inf input would raise.
    with np.errstate(invalid="ignore"):
        dlon, dlat = _offset(lon, lat, sin=np.sin, cos=np.cos, sqrt=np.sqrt, fabs=np.fabs)
    return np.where(inside, lon + dlon, lon), np.where(inside, lat + dlat, lat)


def _inverse_scalar(lon: float, lat: float) -> tuple[float, float]:
    wlon, wlat = lon, lat
    for _ in range(_INVERSE_MAX_ITERATIONS):
        glon, glat = _forward_scalar(wlon, wlat)
        elon, elat = glon - lon, glat - lat
        if abs(elon) < _INVERSE_TOLERANCE and abs(elat) < _INVERSE_TOLERANCE:
            break
        wlon, wlat = wlon - elon, wlat - elat
    return wlon, wlat


def _inverse_array(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    wlon, wlat = lon.copy(), lat.copy()
    for _ in range(_INVERSE_MAX_ITERATIONS):
        glon, glat = _forward_array(wlon, wlat)
        elon, elat = glon - lon, glat - lat
        with np.errstate(invalid="ignore"):
            done = np.nanmax(np.abs(elon), initial=0.0) < _INVERSE_TOLERANCE
            done = done and np.nanmax(np.abs(elat), initial=0.0) < _INVERSE_TOLERANCE
        if done:
            break
        wlon, wlat = wlon - elon, wlat - elat
    return wlon, wlat


def _apply(
    scalar: Callable[[float, float], tuple[float, float]],
    array: Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray]],
    lon: ArrayLike | float,
    lat: ArrayLike | float,
) -> tuple[float, float] | tuple[FloatArray, FloatArray]:
    """Floats in, floats out (the fast single-point path); anything else as broadcast arrays."""
    if isinstance(lon, float | int) and isinstance(lat, float | int):
        return scalar(float(lon), float(lat))
    lon_a, lat_a = np.broadcast_arrays(
        np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    )
    return array(lon_a, lat_a)


@overload
def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]: ...
@overload
def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]: ...
def wgs84_to_gcj02(
    lon: ArrayLike | float, lat: ArrayLike | float
) -> tuple[float, float] | tuple[FloatArray, FloatArray]:
    """Convert WGS-84 coordinates to GCJ-02.

    Parameters
    ----------
    lon, lat : float or array_like
        WGS-84 longitude and latitude in degrees. Two floats give two floats; anything else is
        converted to float64 arrays of a common shape.

    Returns
    -------
    tuple
        GCJ-02 ``(lon, lat)``. Points outside China's rectangle, NaN and inf pass unchanged.

    Examples
    --------
    The Shanghai test point of the eviltransform project:

    >>> lon, lat = wgs84_to_gcj02(121.5272106, 31.1774276)
    >>> round(lon, 9), round(lat, 9)
    (121.531541859, 31.175303984)

    Arrays are converted element-wise; Paris is outside China and does not move:

    >>> lons, lats = wgs84_to_gcj02([113.912316, 2.35], [22.543847, 48.85])
    >>> lons.round(6).tolist(), lats.round(6).tolist()
    ([113.917176, 2.35], [22.540796, 48.85])
    """
    return _apply(_forward_scalar, _forward_array, lon, lat)


@overload
def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]: ...
@overload
def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]: ...
def gcj02_to_wgs84(
    lon: ArrayLike | float, lat: ArrayLike | float
) -> tuple[float, float] | tuple[FloatArray, FloatArray]:
    """Convert GCJ-02 coordinates to WGS-84, the inverse of :func:`wgs84_to_gcj02`.

    The transform has no closed-form inverse; this iterates ``w <- w - (forward(w) - g)`` until
    the forward image is within 1e-12 degrees of the input (about five iterations).

    Parameters
    ----------
    lon, lat : float or array_like
        GCJ-02 longitude and latitude in degrees.

    Returns
    -------
    tuple
        WGS-84 ``(lon, lat)``, floats for floats and arrays otherwise.

    Examples
    --------
    >>> lon, lat = gcj02_to_wgs84(121.531541859215, 31.17530398364597)
    >>> round(lon, 7), round(lat, 7)
    (121.5272106, 31.1774276)
    """
    return _apply(_inverse_scalar, _inverse_array, lon, lat)


@overload
def convert(
    lon: float, lat: float, *, source: Datum | str, target: Datum | str
) -> tuple[float, float]: ...
@overload
def convert(
    lon: ArrayLike, lat: ArrayLike, *, source: Datum | str, target: Datum | str
) -> tuple[FloatArray, FloatArray]: ...
def convert(
    lon: ArrayLike | float, lat: ArrayLike | float, *, source: Datum | str, target: Datum | str
) -> tuple[float, float] | tuple[FloatArray, FloatArray]:
    """Convert coordinates from one datum to another.

    Parameters
    ----------
    lon, lat : float or array_like
        Coordinates in degrees in the ``source`` datum.
    source, target : Datum or str
        ``"wgs84"`` or ``"gcj02"``. Equal datums return the input (as float64 arrays for
        array input).

    Returns
    -------
    tuple
        ``(lon, lat)`` in the ``target`` datum.

    Raises
    ------
    ValueError
        If a datum name is not one of :class:`Datum`.

    Examples
    --------
    >>> convert(114.7, 23.74, source="gcj02", target="gcj02")
    (114.7, 23.74)
    >>> lon, lat = convert(114.7, 23.74, source="wgs84", target="gcj02")
    >>> round(lon - 114.7, 5), round(lat - 23.74, 5)
    (0.0047, -0.00265)
    """
    src, dst = Datum(source), Datum(target)
    if src is dst:
        if isinstance(lon, float | int) and isinstance(lat, float | int):
            return float(lon), float(lat)
        lon_a, lat_a = np.broadcast_arrays(
            np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
        )
        return lon_a, lat_a
    if src is Datum.WGS84:
        return wgs84_to_gcj02(lon, lat)
    return gcj02_to_wgs84(lon, lat)
