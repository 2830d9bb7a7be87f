"""A batch that fails unexpectedly stops the process before anything is acknowledged."""

from __future__ import annotations

import subprocess
import sys

from streams.failstop import EXIT_CODE

PROGRAM = """
import asyncio, logging
from streams.failstop import fail_stop

acknowledged = []

async def batches():
    try:
        yield [1, 2, 3]
    finally:
        acknowledged.append("ack")  # what Faust's take_events does in its finally clause
        print("acknowledged", flush=True)

async def agent():
    with fail_stop("test stage"):
        async for batch in batches():
            raise RuntimeError("boom")

logging.basicConfig()
asyncio.run(agent())
print("survived", flush=True)
"""


def test_an_unexpected_error_stops_the_process_before_the_batch_is_acknowledged() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == EXIT_CODE
    assert "acknowledged" not in result.stdout
    assert "survived" not in result.stdout
    assert "test stage: unexpected RuntimeError" in result.stderr
    assert "boom" in result.stderr  # with the traceback


def test_cancellation_passes_through() -> None:
    program = PROGRAM.replace('raise RuntimeError("boom")', "raise asyncio.CancelledError")
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != EXIT_CODE
    assert "unexpected" not in result.stderr
