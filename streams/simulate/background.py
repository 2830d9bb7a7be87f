"""Normal-day traffic of a fleet: every sensor on its interval, cameras now and then.

:class:`Background` turns a fleet (:func:`streams.simulate.fleet.build_fleet`) into the
readings and video events of an ordinary day, in event-time order, a window at a time.

Sensors
    Each reports every ``expected_interval_s``, from a random phase, a little late by up to 5 %
    of the interval (at most 10 s). A value is the device's own baseline, plus the kind's daily
    cycle by the hour in Asia/Shanghai (traffic, noise and PM peak at the rush hours, ozone and
    temperature in the afternoon, gas at meal times, water level stays flat), plus a slow drift
    of a few hours, plus noise, rounded to what such a sensor resolves. Every value stays inside
    the kind's plausible range and below the lowest level of the shipped Heyuan threshold rules
    (bounded noise, then a clip that the models never reach), and the noise spans several
    resolution steps, so ten equal values in a row (the ``stuck`` rule) do not happen.

    Rain gauges report light rain (about 1 mm/h): on a dry day a real gauge sends ``0.0`` again
    and again, which the stuck rule would flag, so background traffic never shows a dry day.
    Smoke detectors report obscuration in ``%obs/m`` (around 0.1), not 0/1 alarms.

Cameras
    They send an event only when they see something: on average one per camera every
    30 minutes, more by day than by night, of the types their department's analytics watch
    (illegal parking, garbage overflow, street vendors, road occupation, congestion), with
    confidences from 0.30 to 0.95. No position: the registry supplies the camera's.

Everything derives from the seed, the device id and the reading's number by a counter-based
hash, not from a stream of random numbers: a window gives the same records whether it is
generated in one call or in many, and a device behaves the same in any fleet.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Final

import numpy as np
import orjson
from numpy.typing import NDArray

from schemas import Device, DeviceType, SensorKind, VideoEventType
from streams.simulate.records import Outgoing

__all__ = ["VALUE_MODELS", "Background", "ValueModel"]

_Array = NDArray[np.float64]
_Shape = Callable[[_Array], _Array]

# Asia/Shanghai has kept UTC+8 without daylight saving since 1991.
_CHINA = timezone(timedelta(hours=8))


def _sigmoid(x: _Array) -> _Array:
    return np.asarray(1 / (1 + np.exp(-x)))


def _flat(hour: _Array) -> _Array:
    return np.zeros_like(hour)


def _afternoon(hour: _Array) -> _Array:
    """1 at 14:30, 0 at 02:30: sunshine-driven (temperature, ozone, wind, showers)."""
    return np.asarray(0.5 + 0.5 * np.cos(2 * np.pi * (hour - 14.5) / 24))


def _rush(hour: _Array) -> _Array:
    """Rise to a daytime plateau with peaks at 08:00 and 18:00; near 0 from 23:00 to 05:00."""
    day = _sigmoid((hour - 6.5) * 1.5) * _sigmoid((22.5 - hour) * 1.5)
    peaks = np.exp(-(((hour - 8) / 1.3) ** 2)) + np.exp(-(((hour - 18) / 1.6) ** 2))
    return np.asarray(np.clip(0.55 * day + 0.45 * peaks, 0, 1))


def _meals(hour: _Array) -> _Array:
    """Kitchens at lunch and dinner."""
    return np.asarray(np.exp(-(((hour - 11.8) / 1.0) ** 2)) + np.exp(-(((hour - 18.3) / 1.0) ** 2)))


def _visitors(hour: _Array) -> _Array:
    """Scenic spots: a sharp peak at 14:00, almost empty at night."""
    return np.asarray(_afternoon(hour + 0.5) ** 3)


@dataclass(frozen=True, slots=True)
class ValueModel:
    """How one sensor kind's values behave on a normal day.

    A device draws its ``base`` and ``amplitude`` once (uniformly in the ranges); a reading is
    ``base + amplitude * shape(hour) + drift + noise``, the noise with standard deviation
    ``noise + noise_share * level``, cut at four deviations, the result clipped to
    ``[low, high]`` and rounded to ``decimals``.
    """

    unit: str
    decimals: int
    base: tuple[float, float]
    amplitude: tuple[float, float]
    shape: _Shape
    drift: float
    """Largest slow wander (period 3-12 h) away from the daily cycle."""
    noise: float
    low: float
    high: float
    """The clip: inside the plausible range and below the lowest alarm level, out of reach of
    the model (a guarantee, not a shape)."""
    noise_share: float = 0.0


VALUE_MODELS: Final[dict[SensorKind, ValueModel]] = {
    # Rivers in the dry weeks: 0.6-2.2 m against a 3.0 m warning level, radar gauges to 1 mm.
    SensorKind.WATER_LEVEL: ValueModel("m", 3, (0.6, 2.2), (0, 0), _flat, 0.05, 0.005, 0, 2.7),
    # Light rain; the lowest alarm is 20 mm/h.
    SensorKind.RAINFALL: ValueModel("mm/h", 2, (0.6, 1.6), (0, 0.8), _afternoon, 0.15, 0.08, 0, 15),
    # Heyuan's air is clean: PM2.5 15-50 against 115.
    SensorKind.PM25: ValueModel("ug/m3", 1, (12, 28), (6, 14), _rush, 3, 1.5, 1, 100),
    SensorKind.PM10: ValueModel("ug/m3", 1, (25, 45), (10, 20), _rush, 5, 2.5, 2, 220),
    SensorKind.O3: ValueModel("ug/m3", 1, (20, 40), (50, 90), _afternoon, 5, 3, 2, 180),
    # Photoelectric smoke detectors: clean air is about 0.1 %obs/m, kitchens add a little.
    SensorKind.SMOKE: ValueModel("%obs/m", 3, (0.06, 0.14), (0, 0.04), _meals, 0.01, 0.008, 0, 0.3),
    SensorKind.COMBUSTIBLE_GAS: ValueModel("%LEL", 2, (0.8, 2), (0.2, 1), _meals, 0.2, 0.12, 0, 8),
    # A seated cover tilts a degree or two; traffic shakes it a little; the alarm is 10°.
    SensorKind.MANHOLE_TILT: ValueModel("deg", 2, (0.5, 3), (0, 0.3), _rush, 0.1, 0.06, 0, 8),
    # 40-48 dB(A) at night, up to about 65 by day; the limit is 75.
    SensorKind.NOISE: ValueModel("dB(A)", 1, (40, 48), (8, 14), _rush, 1, 1.2, 25, 72),
    SensorKind.TRAFFIC_FLOW: ValueModel(
        "veh/h", 0, (60, 150), (300, 1400), _rush, 10, 8, 0, 5000, noise_share=0.06
    ),
    SensorKind.TEMPERATURE: ValueModel("degC", 2, (22, 26), (5, 9), _afternoon, 0.5, 0.08, -5, 45),
    SensorKind.HUMIDITY: ValueModel("%RH", 1, (88, 95), (-30, -18), _afternoon, 1.5, 0.6, 10, 99.5),
    SensorKind.WIND_SPEED: ValueModel("m/s", 2, (0.8, 2.2), (0.5, 2), _afternoon, 0.3, 0.1, 0, 15),
    SensorKind.SOIL_MOISTURE: ValueModel("%VWC", 2, (18, 40), (-1, 0), _afternoon, 0.5, 0.1, 1, 60),
    # Visitors at a scenic spot: a few dozen at night, up to about 1,800 at 14:00; the lowest
    # crowding level is 3,000.
    SensorKind.CROWD_COUNT: ValueModel(
        "persons", 0, (50, 120), (400, 1400), _visitors, 15, 6, 0, 2500, noise_share=0.04
    ),
}
"""The value model of every sensor kind."""

# What each department's video analytics report, with weights.
_CAMERA_TYPES: dict[str, dict[VideoEventType, float]] = {
    "城管": {
        VideoEventType.GARBAGE_OVERFLOW: 0.35,
        VideoEventType.STREET_VENDOR: 0.30,
        VideoEventType.ROAD_OCCUPATION: 0.30,
        VideoEventType.ILLEGAL_PARKING: 0.05,
    },
    "公安": {
        VideoEventType.ILLEGAL_PARKING: 0.70,
        VideoEventType.TRAFFIC_CONGESTION: 0.15,
        VideoEventType.ROAD_OCCUPATION: 0.15,
    },
    "交通运输": {
        VideoEventType.TRAFFIC_CONGESTION: 0.55,
        VideoEventType.ILLEGAL_PARKING: 0.45,
    },
}
_OTHER_CAMERA_TYPES = {  # a camera of any other department
    VideoEventType.ILLEGAL_PARKING: 0.3,
    VideoEventType.GARBAGE_OVERFLOW: 0.2,
    VideoEventType.STREET_VENDOR: 0.15,
    VideoEventType.ROAD_OCCUPATION: 0.15,
    VideoEventType.TRAFFIC_CONGESTION: 0.2,
}
_EVENT_TYPES = list(VideoEventType)

# A camera's time is cut into slots of a minute; in each it sees something or not. At most one
# event per camera a minute: the analytics engines deduplicate a standing object for longer.
_SLOT_MS = 60_000


def _activity(hour: _Array) -> _Array:
    """How busy the streets a camera watches are, relative to the day's average."""
    return (0.25 + _rush(hour)) / _MEAN_ACTIVITY


_MEAN_ACTIVITY = float(np.mean(0.25 + _rush(np.linspace(0, 24, 1440, endpoint=False))))
_PEAK_ACTIVITY = float(np.max(0.25 + _rush(np.linspace(0, 24, 1440)))) / _MEAN_ACTIVITY

# splitmix64 (Steele, Lea and Flood 2014): a counter-based hash, so that the random numbers of
# reading k of a device do not depend on what else was generated before it.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_STREAMS = 32  # independent draws per (device, counter)


def _mix(z: NDArray[np.uint64]) -> NDArray[np.uint64]:
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def _uniform(key: NDArray[np.uint64], counter: NDArray[np.int64], stream: int) -> _Array:
    """Uniform [0, 1) numbers for each (device key, counter), independent per ``stream``."""
    with np.errstate(over="ignore"):
        z = key + _GOLDEN * (counter.astype(np.uint64) * np.uint64(_STREAMS) + np.uint64(stream))
        return (_mix(z) >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _normal(key: NDArray[np.uint64], counter: NDArray[np.int64], stream: int) -> _Array:
    """Return standard normal numbers cut at ±4 (Box-Muller), so that a bound is a bound."""
    radius = np.sqrt(-2 * np.log1p(-_uniform(key, counter, stream)))
    angle = 2 * np.pi * _uniform(key, counter, stream + 1)
    return np.asarray(np.clip(radius * np.cos(angle), -4, 4))


@dataclass(frozen=True, slots=True)
class _Sensors:
    """Per-sensor parameters as arrays (times in ms from the start)."""

    index: NDArray[np.int64]  # position in the fleet
    key: NDArray[np.uint64]
    kind: NDArray[np.int64]  # into _KINDS
    interval: NDArray[np.int64]
    phase: NDArray[np.int64]
    jitter: NDArray[np.int64]
    base: _Array
    amplitude: _Array
    drift: _Array
    drift_period: _Array
    drift_phase: _Array


@dataclass(frozen=True, slots=True)
class _Cameras:
    index: NDArray[np.int64]
    key: NDArray[np.uint64]
    types: NDArray[np.float64]  # cumulative weights over _EVENT_TYPES, one row per camera


_KINDS = list(SensorKind)


class Background:
    """Normal-day traffic of ``fleet`` from ``start``, generated a window at a time.

    Parameters
    ----------
    fleet : sequence of Device
        Sensors and cameras; inactive devices send nothing.
    start : datetime
        Timezone-aware; the first window begins here.
    seed : int
        Another seed, another day (same fleet).
    camera_events_per_hour : float
        Video events per camera per hour, on average over a day (more by day, fewer at
        night). At most one per camera a minute.
    max_confidence : float
        The highest confidence of a video event; confidences run from 0.30 to it, most of them
        low. Below 0.6, the lowest ``min_confidence`` of the shipped video rules for the types
        cameras send here, no video rule confirms anything: at the default 0.95, a normal day
        of the default fleet (one event per camera every two hours) confirms a couple of
        hundred garbage, parking and street-order incidents, as a real city's cameras do.

    Examples
    --------
    >>> from datetime import UTC, datetime, timedelta
    >>> import geo
    >>> from streams.simulate.fleet import build_fleet
    >>> start = datetime(2026, 7, 1, tzinfo=UTC)
    >>> background = Background(build_fleet(geo.load_heyuan(), sensors=30, cameras=0), start)
    >>> records = background.until(start + timedelta(minutes=10))
    >>> records[0].topic, records[0].at >= start, records[-1].at < start + timedelta(minutes=10)
    ('sensor.readings', True, True)
    """

    def __init__(
        self,
        fleet: Sequence[Device],
        start: datetime,
        *,
        seed: int = 0,
        camera_events_per_hour: float = 0.5,
        max_confidence: float = 0.95,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("the start time must be timezone-aware")
        slots_per_hour = 3_600_000 / _SLOT_MS
        if not 0 <= camera_events_per_hour * _PEAK_ACTIVITY <= slots_per_hour:
            most = slots_per_hour / _PEAK_ACTIVITY
            raise ValueError(f"camera_events_per_hour must be in [0, {most:.0f}]")
        if not 0.3 <= max_confidence <= 1:
            raise ValueError("max_confidence must be in [0.3, 1]")
        self._slot_chance = camera_events_per_hour / slots_per_hour
        self._max_confidence = max_confidence
        self.start = start.astimezone(_CHINA)
        self._cursor_ms = 0
        self._start_ms = int(start.timestamp() * 1000)
        self._ids = [device.device_id for device in fleet]
        self._keys = [device_id.encode() for device_id in self._ids]
        active = [(n, d) for n, d in enumerate(fleet) if d.active]
        self._sensors = _sensor_params(
            [(n, d) for n, d in active if d.device_type is DeviceType.SENSOR], seed
        )
        self._cameras = _camera_params(
            [(n, d) for n, d in active if d.device_type is DeviceType.CAMERA], seed
        )
        self._kinds = [device.kind.value if device.kind else "" for device in fleet]
        self._units = [VALUE_MODELS[d.kind].unit if d.kind else "" for d in fleet]

    @property
    def at(self) -> datetime:
        """Where the next window begins: the last end, to the millisecond (``start`` at first)."""
        return self.start + timedelta(milliseconds=self._cursor_ms)

    def until(self, end: datetime) -> list[Outgoing]:
        """Return every record with event time in [the last end, ``end``), in time order.

        Records at the same millisecond come in fleet order. Calling ``until`` with an earlier
        ``end`` than the last raises :class:`ValueError`.
        """
        if end.tzinfo is None:
            raise ValueError("the end time must be timezone-aware")
        micros = (end - self.start) // timedelta(microseconds=1)
        stop = -(-micros // 1000)  # records at whole milliseconds: < end means < ceil(end)
        if stop < self._cursor_ms:
            raise ValueError(f"cannot go back from {self.at.isoformat()} to {end.isoformat()}")
        begin, self._cursor_ms = self._cursor_ms, stop
        if stop == begin:
            return []
        readings = self._readings(begin, stop)
        events = self._events(begin, stop)
        return self._records(readings, events)

    def _hour(self, t: NDArray[np.int64]) -> _Array:
        """Hour of day in China of times ``t`` (ms from the start)."""
        local = (self._start_ms + t + 8 * 3_600_000) % 86_400_000
        return np.asarray(local / 3_600_000.0)

    def _readings(self, begin: int, stop: int) -> dict[str, Any]:
        s = self._sensors
        first = np.maximum(0, (begin - s.phase - s.jitter) // s.interval)
        last = (stop - 1 - s.phase) // s.interval
        counts = np.maximum(0, last - first + 1)
        total = int(counts.sum())
        row = np.repeat(np.arange(len(s.index)), counts)
        offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        k = first[row] + offsets
        key = s.key[row]
        t = s.phase[row] + k * s.interval[row]
        t += (_uniform(key, k, 0) * s.jitter[row]).astype(np.int64)
        keep = (t >= begin) & (t < stop)
        row, k, key, t = row[keep], k[keep], key[keep], t[keep]
        values = np.empty(len(t))
        kinds = s.kind[row]
        hour = self._hour(t)
        for code in np.unique(kinds).tolist():
            model = VALUE_MODELS[_KINDS[code]]
            mine = kinds == code
            r = row[mine]
            level = s.base[r] + s.amplitude[r] * model.shape(hour[mine])
            level += s.drift[r] * np.sin(2 * np.pi * t[mine] / s.drift_period[r] + s.drift_phase[r])
            spread = model.noise + model.noise_share * np.abs(level)
            level += spread * _normal(key[mine], k[mine], 1)
            values[mine] = np.round(np.clip(level, model.low, model.high), model.decimals)
        return {"t": t, "device": s.index[row], "n": k, "value": values}

    def _events(self, begin: int, stop: int) -> dict[str, Any]:
        c = self._cameras
        slots = np.arange(begin // _SLOT_MS, (stop - 1) // _SLOT_MS + 1, dtype=np.int64)
        row = np.repeat(np.arange(len(c.index)), len(slots))
        slot = np.tile(slots, len(c.index))
        key = c.key[row]
        t = slot * _SLOT_MS + (_uniform(key, slot, 1) * _SLOT_MS).astype(np.int64)
        chance = self._slot_chance * _activity(self._hour(slot * _SLOT_MS + _SLOT_MS // 2))
        keep = (_uniform(key, slot, 0) < chance) & (t >= begin) & (t < stop)
        row, slot, key, t = row[keep], slot[keep], key[keep], t[keep]
        pick = _uniform(key, slot, 2)[:, None]
        kind = (c.types[row] <= pick).sum(axis=1)
        spread = self._max_confidence - 0.3
        confidence = np.round(0.3 + spread * _uniform(key, slot, 3) ** 1.4, 2)
        # A box in a 1920x1080 frame, 40-320 by 40-280 pixels.
        left = (_uniform(key, slot, 4) * 1600).astype(np.int64)
        top = (_uniform(key, slot, 5) * 800).astype(np.int64)
        width = (40 + _uniform(key, slot, 6) * 280).astype(np.int64)
        height = (40 + _uniform(key, slot, 7) * 240).astype(np.int64)
        return {
            "t": t,
            "device": c.index[row],
            "n": slot,
            "type": kind,
            "confidence": confidence,
            "box": np.stack([left, top, left + width, top + height], axis=1),
        }

    def _records(self, readings: dict[str, Any], events: dict[str, Any]) -> list[Outgoing]:
        """Serialize both kinds of record, then merge them by (time, fleet position)."""
        start, dumps, ids, keys = self.start, _dumps, self._ids, self._keys
        kinds, units = self._kinds, self._units
        out = []
        for t, device, n, value in zip(
            readings["t"].tolist(),
            readings["device"].tolist(),
            readings["n"].tolist(),
            readings["value"].tolist(),
            strict=True,
        ):
            at = start + timedelta(milliseconds=t)
            device_id = ids[device]
            document = {
                "schema_version": 1,
                "record": "sensor_reading",
                "event_id": f"{device_id}-{n}",
                "device_id": device_id,
                "kind": kinds[device],
                "value": value,
                "unit": units[device],
                "observed_at": at,
            }
            out.append(Outgoing(at, "sensor.readings", keys[device], dumps(document)))
        types = [event_type.value for event_type in _EVENT_TYPES]
        for t, device, n, kind, confidence, (left, top, right, bottom) in zip(
            events["t"].tolist(),
            events["device"].tolist(),
            events["n"].tolist(),
            events["type"].tolist(),
            events["confidence"].tolist(),
            events["box"].tolist(),
            strict=True,
        ):
            at = start + timedelta(milliseconds=t)
            device_id = ids[device]
            document = {
                "schema_version": 1,
                "record": "video_event",
                "event_id": f"{device_id}-{n}",
                "camera_id": device_id,
                "event_type": types[kind],
                "confidence": confidence,
                "observed_at": at,
                "bounding_box": {"left": left, "top": top, "right": right, "bottom": bottom},
            }
            out.append(Outgoing(at, "video.events", keys[device], dumps(document)))
        t = np.concatenate([readings["t"], events["t"]])
        device = np.concatenate([readings["device"], events["device"]])
        return [out[position] for position in np.lexsort((device, t)).tolist()]


def _dumps(document: dict[str, Any]) -> bytes:
    """Return ``document`` as compact JSON bytes.

    orjson (3.13) hands back bytes that keep its whole output buffer allocated, about 4 KiB
    each: an hour of the full fleet would hold 1.3 GB. A copy holds only the JSON.
    """
    return bytes(memoryview(orjson.dumps(document)))


def _device_keys(devices: Sequence[tuple[int, Device]], seed: int) -> NDArray[np.uint64]:
    """Return a 64-bit key per device from the seed and its id: its behaviour in any fleet."""
    return np.array(
        [
            int.from_bytes(
                hashlib.blake2b(f"{seed}:{d.device_id}".encode(), digest_size=8).digest(), "little"
            )
            for _, d in devices
        ],
        dtype=np.uint64,
    )


def _sensor_params(devices: Sequence[tuple[int, Device]], seed: int) -> _Sensors:
    key = _device_keys(devices, seed)
    zero = np.zeros(len(devices), dtype=np.int64)
    kinds = [d.kind for _, d in devices]
    if None in kinds:
        raise ValueError("a sensor without a kind cannot be simulated")
    kind = np.array([_KINDS.index(k) for k in kinds if k is not None], dtype=np.int64)
    interval = np.array([round(d.expected_interval_s * 1000) for _, d in devices], dtype=np.int64)
    base = np.empty(len(devices))
    amplitude = np.empty(len(devices))
    for code in np.unique(kind).tolist():
        model = VALUE_MODELS[_KINDS[code]]
        mine = kind == code
        base[mine] = _between(model.base, _uniform(key[mine], zero[mine], 0))
        amplitude[mine] = _between(model.amplitude, _uniform(key[mine], zero[mine], 1))
    drift = np.array([VALUE_MODELS[k].drift for k in kinds if k is not None])
    return _Sensors(
        index=np.array([n for n, _ in devices], dtype=np.int64),
        key=key,
        kind=kind,
        interval=interval,
        phase=(_uniform(key, zero, 2) * interval).astype(np.int64),
        # Late by up to 5 % of the interval, never more than 10 s: order is kept.
        jitter=np.maximum(1, np.minimum(interval // 20, 10_000)),
        base=base,
        amplitude=amplitude,
        drift=drift * (0.3 + 0.7 * _uniform(key, zero, 3)),
        drift_period=(3 + 9 * _uniform(key, zero, 4)) * 3_600_000,
        drift_phase=2 * np.pi * _uniform(key, zero, 5),
    )


def _between(bounds: tuple[float, float], u: _Array) -> _Array:
    return np.asarray(bounds[0] + (bounds[1] - bounds[0]) * u)


def _camera_params(devices: Sequence[tuple[int, Device]], seed: int) -> _Cameras:
    types = np.zeros((len(devices), len(_EVENT_TYPES)))
    for row, (_, device) in enumerate(devices):
        weights = _CAMERA_TYPES.get(device.department, _OTHER_CAMERA_TYPES)
        for event_type, weight in weights.items():
            types[row, _EVENT_TYPES.index(event_type)] = weight
    types = np.cumsum(types, axis=1)
    types /= types[:, -1:] if len(devices) else 1
    return _Cameras(
        index=np.array([n for n, _ in devices], dtype=np.int64),
        key=_device_keys(devices, seed),
        types=types,
    )
