"""Running cityops processes: a worker, and the whole product (``cityops run``)."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
import subprocess
import sys
from types import FrameType

from streams.broker import LocalBroker
from streams.exceptions import BrokerUnreachableError, PortInUseError
from streams.ports import describe_listener, port_is_free
from streams.settings import Settings
from streams.topics import check_reachable

__all__ = ["preflight", "run_product", "run_worker"]

log = logging.getLogger(__name__)

# A Faust worker commits offsets and flushes tables when it stops; give it time before killing.
_WORKER_STOP_TIMEOUT_S = 60.0


def preflight(settings: Settings) -> None:
    """Check what a worker needs before it starts, failing with a clear error.

    Raises
    ------
    BrokerUnreachableError
        The configured broker does not answer, or no broker is configured and the local one
        is not running.
    PortInUseError
        The worker's web port is taken.
    """
    if settings.embedded_broker and not LocalBroker(settings).status().running:
        raise BrokerUnreachableError(
            "no broker is configured (CITYOPS_BROKER_URL) and the local broker is not running;"
            " start it with 'cityops broker start' or run everything with 'cityops run'"
        )
    check_reachable(settings)
    if not port_is_free(settings.web_port, settings.web_host):
        raise PortInUseError(
            f"the worker's web port {settings.web_port} is in use by "
            f"{describe_listener(settings.web_port)}; set CITYOPS_WEB_PORT"
        )


def run_worker(settings: Settings) -> None:
    """Check the environment, then run the Faust worker until it is stopped (never returns)."""
    preflight(settings)
    import faust  # noqa: PLC0415 - Faust's import is slow; errors above should not wait on it

    from streams.app import create_app  # noqa: PLC0415

    worker = faust.Worker(create_app(settings), loglevel=settings.log_level)
    worker.execute_from_commandline()


def _stop_with_parent() -> None:
    """In the worker child: get SIGTERM if ``cityops run`` dies without stopping it (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def _say(message: str) -> None:
    """Tell the person at the terminal; never fail over it (stdout may be a closed pipe)."""
    with contextlib.suppress(OSError):
        print(message, flush=True)


def _start_simulator(settings: Settings) -> subprocess.Popen[bytes] | None:
    """In a demo (the local broker, unless told otherwise), feed the worker simulated traffic."""
    wanted = settings.run_simulator
    if wanted is None:
        wanted = settings.embedded_broker
    if not wanted:
        return None
    scenarios = [name.strip() for name in settings.simulator_scenarios.split(",") if name.strip()]
    log_path = settings.data_dir / "simulate.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    arguments = [arg for name in scenarios for arg in ("--scenario", name)]
    with log_path.open("ab") as log:
        simulator = subprocess.Popen(  # noqa: S603 - our own command, scenario names as arguments
            [sys.executable, "-m", "streams.cli", "simulate", *arguments],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_stop_with_parent,  # noqa: PLW1509 - set before any thread is started
        )
    _say(
        "simulating Heyuan's devices (1,800 sensors, 1,200 cameras) in real time"
        + (f"; scenarios {', '.join(scenarios)}" if scenarios else "")
        + f"; its log: {log_path} (CITYOPS_RUN_SIMULATOR=false turns it off)"
    )
    return simulator


def run_product(settings: Settings) -> int:
    """Run the product: the local broker (when none is configured) and a worker.

    Stops on Ctrl-C, SIGTERM or SIGHUP: the worker first (it commits and flushes), then the
    broker if this call started it. Returns the worker's exit code.
    """
    broker = LocalBroker(settings) if settings.embedded_broker else None
    started_broker = False
    if broker is not None:
        started_broker = not broker.status().running
        _say(broker.start().describe())
    else:
        check_reachable(settings)
    stop_requested = False

    def request_stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stop_requested
        stop_requested = True

    # SIGHUP too: closing the terminal should stop the product as cleanly as Ctrl-C.
    stop_signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, request_stop) for sig in stop_signals}
    # Its own session: a terminal's Ctrl-C reaches only this process, which stops the worker
    # once, in order, instead of the worker and the broker racing each other.
    worker = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker"],
        start_new_session=True,
        preexec_fn=_stop_with_parent,  # noqa: PLW1509 - set before any thread is started
    )
    simulator = _start_simulator(settings)
    try:
        while worker.poll() is None and not stop_requested:
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.wait(timeout=0.2)
        if simulator is not None and simulator.poll() is None:
            simulator.send_signal(signal.SIGTERM)
        if worker.poll() is None:
            _say("stopping the worker …")
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=_WORKER_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for process in (worker, simulator):
            if process is not None and process.poll() is None:  # an error above left it running
                process.kill()
                process.wait()
        if broker is not None and started_broker:
            _say("stopping the local broker …")
            broker.stop()
        elif broker is not None:
            _say("the local broker was running before 'cityops run'; it keeps running")
    # A worker killed by a signal reports it the way a shell does (128 + signal number).
    return worker.returncode if worker.returncode >= 0 else 128 - worker.returncode
