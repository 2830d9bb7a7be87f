"""``cityops simulate``: a Heyuan device fleet on the topics, and scenarios injected into it.

The fleet (:func:`~streams.simulate.fleet.build_fleet`) is registered on ``devices.registry``,
then its normal-day traffic (:class:`~streams.simulate.background.Background`) is sent as the
simulated clock reaches it, with each injected scenario's devices and traffic at its offset.

The simulated clock runs ``speed`` times faster than the wall clock from ``start``. It never
runs ahead of the wall clock (ingest refuses events from the future): started in the past, an
accelerated simulation catches up and then goes on in real time. ``duration`` stops it.
Everything sent can be recorded as JSON Lines for ``cityops replay``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import geo
from streams.exceptions import StreamsError
from streams.settings import Settings
from streams.simulate.background import Background
from streams.simulate.fleet import build_fleet, registrations
from streams.simulate.records import Outgoing, write_jsonl
from streams.simulate.scenario import Scenario, load_scenario
from streams.simulate.send import Sender

__all__ = ["Injection", "Progress", "parse_injection", "simulate"]

_STEP_S = 0.25
"""How often (wall clock) the simulation sends what its clock reached."""


@dataclass(frozen=True)
class Injection:
    """A scenario and when it starts, in seconds after the simulation starts."""

    scenario: Scenario
    after_s: float


def parse_injection(text: str) -> Injection:
    """Parse ``NAME`` or ``NAME@SECONDS`` (a shipped scenario id or a file)."""
    name, _, after = text.partition("@")
    try:
        seconds = float(after) if after else 0.0
    except ValueError:
        raise StreamsError(f"bad scenario {text!r}: write NAME or NAME@SECONDS") from None
    if seconds < 0:
        raise StreamsError(f"bad scenario {text!r}: the offset must not be negative")
    return Injection(load_scenario(name), seconds)


@dataclass
class Progress:
    """What the simulation has done so far, for its progress line."""

    clock: datetime
    devices: int
    sent: int = 0
    started: float = field(default_factory=time.monotonic)
    fired: list[str] = field(default_factory=list)

    def line(self) -> str:
        """Return one line for a terminal."""
        elapsed = max(time.monotonic() - self.started, 1e-9)
        fired = f" | scenarios started: {', '.join(self.fired)}" if self.fired else ""
        return (
            f"simulated {self.clock:%Y-%m-%d %H:%M:%S} UTC | {self.devices:,} devices"
            f" | {self.sent:,} records sent ({self.sent / elapsed:,.0f}/s){fired}"
        )


async def simulate(
    settings: Settings,
    *,
    sensors: int,
    cameras: int,
    speed: float = 1.0,
    start: datetime | None = None,
    duration_s: float | None = None,
    injections: list[Injection] | None = None,
    record: IO[bytes] | None = None,
    seed: int = 0,
    report: Callable[[Progress], None] | None = None,
    stop: asyncio.Event | None = None,
    registry_pause_s: float = 3.0,
) -> Progress:
    """Run the simulation until ``duration_s`` of simulated time passed, or ``stop`` is set."""
    if speed <= 0:
        raise StreamsError(f"speed must be positive, not {speed:g}")
    hierarchy = await asyncio.to_thread(geo.load_heyuan)
    fleet = await asyncio.to_thread(
        build_fleet, hierarchy, sensors=sensors, cameras=cameras, seed=seed
    )
    origin = (start or datetime.now(UTC)).astimezone(UTC)
    end = None if duration_s is None else origin + timedelta(seconds=duration_s)
    background = Background(fleet, origin, seed=seed)
    pending: list[tuple[datetime, str, list[Outgoing]]] = []
    setup = registrations(fleet, origin)
    for injection in injections or []:
        begins = origin + timedelta(seconds=injection.after_s)
        setup += injection.scenario.registrations(hierarchy, origin)
        pending.append((begins, injection.scenario.id, injection.scenario.records(begins)))
    progress = Progress(clock=origin, devices=len(setup))
    last_report = 0.0
    async with Sender(settings) as sender:
        await _send(sender, setup, record, progress)
        await sender.flush()
        # Workers follow the registry live: give them a moment before the first event names a
        # device, or it would be dead-lettered as unknown.
        await asyncio.sleep(registry_pause_s)
        wall_origin = time.monotonic()
        while stop is None or not stop.is_set():
            clock = origin + timedelta(seconds=(time.monotonic() - wall_origin) * speed)
            clock = min(clock, datetime.now(UTC))
            done = end is not None and clock >= end
            if done and end is not None:
                clock = end
            batch = background.until(clock)
            for begins, name, records in pending:
                if begins <= clock and name not in progress.fired:
                    progress.fired.append(name)
                due = [r for r in records if r.at < clock]
                if due:
                    batch += due
                    del records[: len(due)]
            batch.sort(key=lambda r: r.at)
            progress.clock = clock
            await _send(sender, batch, record, progress)
            if report is not None and (done or time.monotonic() - last_report >= 1.0):
                report(progress)
                last_report = time.monotonic()
            if done:
                break
            await _sleep(stop)
    return progress


async def _send(
    sender: Sender, records: list[Outgoing], record: IO[bytes] | None, progress: Progress
) -> None:
    if not records:
        return
    await sender.send(records)
    if record is not None:
        write_jsonl(records, record)
    progress.sent += len(records)


async def _sleep(stop: asyncio.Event | None) -> None:
    if stop is None:
        await asyncio.sleep(_STEP_S)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=_STEP_S)


def terminal_reporter(stream: IO[str] = sys.stderr) -> Callable[[Progress], None]:
    """Return a reporter that rewrites one line on a terminal, or prints a line every 10 s."""
    tty = stream.isatty()
    last = [0.0]

    def report(progress: Progress) -> None:
        if tty:
            stream.write("\r" + progress.line()[:160].ljust(160))
        elif time.monotonic() - last[0] >= 10:
            stream.write(progress.line() + "\n")
            last[0] = time.monotonic()
        stream.flush()

    return report


def open_record(path: Path | None) -> IO[bytes] | None:
    """Open the recording file, failing with a clear error."""
    if path is None:
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.open("wb")
    except OSError as exc:
        raise StreamsError(f"cannot write {path}: {exc.strerror or exc}") from exc


async def inject(
    settings: Settings,
    scenario: Scenario,
    *,
    record: IO[bytes] | None = None,
    report: Callable[[Progress], None] | None = None,
) -> Progress:
    """Send a scenario into whatever runs now: its devices, then its traffic in real time."""
    hierarchy = await asyncio.to_thread(geo.load_heyuan)
    begins = datetime.now(UTC)
    setup = scenario.registrations(hierarchy, begins)
    records = scenario.records(begins)
    progress = Progress(clock=begins, devices=len(setup), fired=[scenario.id])
    async with Sender(settings) as sender:
        await _send(sender, setup, record, progress)
        await sender.flush()
        await asyncio.sleep(3.0)  # as in simulate: let the workers read the registrations
        for item in records:
            delay = (item.at - datetime.now(UTC)).total_seconds()
            if delay > 0:
                await asyncio.sleep(delay)
            progress.clock = item.at
            await _send(sender, [item], record, progress)
            await sender.flush()
            if report is not None:
                report(progress)
    return progress
