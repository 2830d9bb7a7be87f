"""The ``cityops`` command line.

Every error cityops raises on purpose is printed as ``cityops: error: …`` (one line, and the
broker log's tail where that explains it) with a non-zero exit, never as a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

from schemas.exceptions import CityOpsError
from schemas.export import export_schemas
from streams.broker import LocalBroker
from streams.exceptions import StreamsError
from streams.settings import Settings

__all__ = ["main"]

# Exit codes: 1 an operation failed, 2 wrong use, 3 "not running" from status (as LSB init
# scripts and systemctl report it).
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_RUNNING = 3


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"cityops: error: {message} (see '{self.prog} --help')\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cityops",
        description="一网统管 city operations: events in, incidents out, escalated by tier.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("run", help="run the product: local broker (if none set) and a worker")
    commands.add_parser("worker", help="run one worker against the configured broker")
    broker = commands.add_parser("broker", help="manage the embedded local Kafka broker")
    broker_commands = broker.add_subparsers(dest="action", required=True, metavar="ACTION")
    broker_commands.add_parser("start", help="start it (no-op when running)")
    broker_commands.add_parser("stop", help="stop it (no-op when stopped)")
    broker_commands.add_parser("status", help="say whether it runs (exit 3 when stopped)")
    logs = broker_commands.add_parser("logs", help="print the end of its log")
    logs.add_argument("-n", "--lines", type=int, default=40, help="how many lines (default 40)")
    schemas = commands.add_parser("schemas", help="the topic contracts, for integrators")
    schema_commands = schemas.add_subparsers(dest="action", required=True, metavar="ACTION")
    export = schema_commands.add_parser("export", help="write them as JSON Schema files")
    export.add_argument("directory", type=Path, help="where to write (created if missing)")
    config = commands.add_parser("config", help="print the effective settings, secrets masked")
    config.add_argument("--json", action="store_true", help="as a JSON object")
    _simulation_commands(commands)
    return parser


def _simulation_commands(commands: Any) -> None:
    commands.add_parser("scenarios", help="list the shipped scenarios")
    drill = commands.add_parser(
        "drill", help="run a scenario from clean state on the event clock and score the response"
    )
    drill.add_argument("scenario", help="a shipped scenario id ('cityops scenarios') or a file")
    drill.add_argument("--json", type=Path, metavar="PATH", help="also write the evaluation here")
    drill.add_argument("--keep", action="store_true", help="keep the drill's topics afterwards")
    simulate = commands.add_parser(
        "simulate", help="register a simulated Heyuan device fleet and send its traffic"
    )
    simulate.add_argument("--sensors", type=int, default=1800, help="sensors (default 1800)")
    simulate.add_argument("--cameras", type=int, default=1200, help="cameras (default 1200)")
    simulate.add_argument(
        "--full-fleet",
        action="store_true",
        help="the 2025 plan: 20,000 sensors and 13,000 cameras",
    )
    simulate.add_argument(
        "--speed", type=float, default=1.0, help="simulated seconds per wall second (default 1)"
    )
    simulate.add_argument(
        "--start",
        type=_when,
        metavar="TIME",
        help="where the simulated clock starts: ISO 8601 or -30m, -2h (default: now)",
    )
    simulate.add_argument(
        "--duration", type=float, metavar="SECONDS", help="stop after this much simulated time"
    )
    simulate.add_argument(
        "--scenario",
        action="append",
        default=[],
        metavar="NAME[@SECONDS]",
        help="inject a scenario that many simulated seconds after the start (repeatable)",
    )
    simulate.add_argument("--record", type=Path, metavar="FILE", help="also write JSON Lines")
    simulate.add_argument("--seed", type=int, default=0, help="fleet and traffic seed")
    inject = commands.add_parser(
        "inject", help="send a scenario into the running system now, in real time"
    )
    inject.add_argument("scenario", help="a shipped scenario id or a file")
    replay = commands.add_parser("replay", help="send a JSON Lines recording back onto the topics")
    replay.add_argument("file", type=Path, help="one record per line, as 'simulate --record'")
    replay.add_argument(
        "--speed",
        default="max",
        help="'original' (its own pace), a factor like 60, or 'max' (default: as fast as possible)",
    )


def _when(text: str) -> datetime:
    """Parse ``--start``: an ISO 8601 time with its offset, or ``-<N>s|m|h`` before now."""
    units = {"s": 1, "m": 60, "h": 3600}
    if text.startswith("-") and text[-1:] in units and text[1:-1].replace(".", "", 1).isdigit():
        return datetime.now(UTC) - timedelta(seconds=float(text[1:-1]) * units[text[-1]])
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time: {text!r} (ISO 8601, or -30m, -2h)") from None
    if when.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset (write +08:00 or Z)")
    return when


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code (the console script exits with it)."""
    args = _parser().parse_args(argv)
    # kafka-python logs every failed connection attempt as an error; cityops reports the
    # outcome itself in one line.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    try:
        settings = Settings()
        return _dispatch(args, settings)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        print(f"cityops: error: invalid setting {where}: {first['msg']}", file=sys.stderr)
        return EXIT_USAGE
    except CityOpsError as exc:
        print(f"cityops: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    handlers = {
        "schemas": _schemas,
        "config": _config,
        "broker": _broker,
        "scenarios": _scenarios,
        "drill": _scenarios,
        "simulate": _simulation,
        "inject": _simulation,
        "replay": _simulation,
    }
    handler = handlers.get(args.command)
    if handler is not None:
        return handler(args, settings)
    from streams.worker import run_product, run_worker  # noqa: PLC0415 - keep `config` fast

    if args.command == "worker":
        run_worker(settings)
        return 0
    return run_product(settings)


def _schemas(args: argparse.Namespace, settings: Settings) -> int:
    try:
        written = export_schemas(args.directory)
    except OSError as exc:
        raise StreamsError(f"cannot write schemas to {args.directory}: {exc}") from exc
    for path in written:
        print(path)
    return 0


def _config(args: argparse.Namespace, settings: Settings) -> int:
    values = settings.masked()
    if args.json:
        print(json.dumps(values, indent=2, ensure_ascii=False))
    else:
        for key, value in values.items():
            print(f"{key}={value}")
    return 0


def _scenarios(args: argparse.Namespace, settings: Settings) -> int:
    from streams.simulate.scenario import load_scenario, scenario_names  # noqa: PLC0415

    if args.command == "scenarios":
        for name in scenario_names():
            scenario = load_scenario(name)
            print(f"{name:<26} {scenario.title}")
        return 0
    from streams.simulate.drill import run_drill  # noqa: PLC0415

    scenario = load_scenario(args.scenario)
    result = run_drill(settings, scenario, keep=args.keep, say=_say)
    print(result.report())
    if args.json is not None:
        try:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_bytes(result.as_json())
        except OSError as exc:
            raise StreamsError(f"cannot write {args.json}: {exc.strerror or exc}") from exc
    return 0 if result.passed else EXIT_FAILED


def _simulation(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio  # noqa: PLC0415

    from streams.simulate import engine  # noqa: PLC0415
    from streams.simulate.scenario import load_scenario  # noqa: PLC0415
    from streams.topics import check_reachable, ensure_topics  # noqa: PLC0415

    if settings.embedded_broker and not LocalBroker(settings).status().running:
        raise StreamsError(
            "no broker is configured (CITYOPS_BROKER_URL) and the local broker is not running;"
            " start it with 'cityops broker start' or run everything with 'cityops run'"
        )
    check_reachable(settings)
    ensure_topics(settings)
    report = engine.terminal_reporter()
    if args.command == "replay":
        from streams.simulate.replay import replay  # noqa: PLC0415

        speed = _speed(args.speed)
        sent = asyncio.run(replay(settings, args.file, speed=speed, progress=_counter()))
        print(f"\nreplayed {sent:,} records from {args.file}", file=sys.stderr)
        return 0
    if args.command == "inject":
        progress = asyncio.run(engine.inject(settings, load_scenario(args.scenario), report=report))
        print(f"\ninjected {args.scenario}: {progress.sent:,} records", file=sys.stderr)
        return 0
    sensors, cameras = (20_000, 13_000) if args.full_fleet else (args.sensors, args.cameras)
    record = engine.open_record(args.record)
    try:
        progress = asyncio.run(
            engine.simulate(
                settings,
                sensors=sensors,
                cameras=cameras,
                speed=args.speed,
                start=args.start,
                duration_s=args.duration,
                injections=[engine.parse_injection(text) for text in args.scenario],
                record=record,
                seed=args.seed,
                report=report,
            )
        )
    finally:
        if record is not None:
            record.close()
    print(f"\n{progress.line()}", file=sys.stderr)
    return 0


def _speed(text: str) -> float | None:
    if text == "max":
        return None
    if text == "original":
        return 1.0
    try:
        speed = float(text)
    except ValueError:
        raise StreamsError(f"--speed {text!r}: write 'original', 'max' or a factor") from None
    if speed <= 0:
        raise StreamsError(f"--speed {text!r} must be positive")
    return speed


def _counter() -> Callable[[int, int], None]:
    tty = sys.stderr.isatty()

    def progress(sent: int, total: int) -> None:
        line = f"replayed {sent:,} of {total:,} records ({sent / max(total, 1):.0%})"
        print(("\r" + line) if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)

    return progress


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _broker(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.embedded_broker:
        print(
            f"cityops: a broker is configured (CITYOPS_BROKER_URL={settings.broker_url});"
            " the local broker is not used",
            file=sys.stderr,
        )
        if args.action != "status":
            return 0
    broker = LocalBroker(settings)
    if args.action == "start":
        was_running = broker.status().running
        status = broker.start()
        print(("already running: " if was_running else "") + status.describe())
        return 0
    if args.action == "stop":
        print("local broker stopped" if broker.stop() else "local broker was not running")
        return 0
    if args.action == "logs":
        print(broker.log_tail(args.lines))
        return 0
    status = broker.status()
    print(status.describe())
    return 0 if status.running else EXIT_NOT_RUNNING


if __name__ == "__main__":
    sys.exit(main())
