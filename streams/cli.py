"""The ``cityops`` command line.

Every error cityops raises on purpose is printed as ``cityops: error: …`` (one line, and the
broker log's tail where that explains it) with a non-zero exit, never as a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import NoReturn

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
    return parser


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
    if args.command == "schemas":
        try:
            written = export_schemas(args.directory)
        except OSError as exc:
            raise StreamsError(f"cannot write schemas to {args.directory}: {exc}") from exc
        for path in written:
            print(path)
        return 0
    if args.command == "config":
        values = settings.masked()
        if args.json:
            print(json.dumps(values, indent=2, ensure_ascii=False))
        else:
            for key, value in values.items():
                print(f"{key}={value}")
        return 0
    if args.command == "broker":
        return _broker(args, settings)
    from streams.worker import run_product, run_worker  # noqa: PLC0415 - keep `config` fast

    if args.command == "worker":
        run_worker(settings)
        return 0
    return run_product(settings)


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
