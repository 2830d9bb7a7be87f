"""Stop the worker at once when a batch fails unexpectedly, before Faust acknowledges it.

Faust acknowledges the records of a ``take_events`` batch, and an event iterated with
``events()``, in a ``finally`` clause. When an agent's body raises, Faust restarts the agent and
the abandoned generator is closed later, acknowledging records that were never processed; the
next commit then skips them for good. The same holds for a batch whose records Kafka did not
accept: Faust's commit waits for the producer but does not look at the outcome.

So an unexpected error mid-batch, or a record the broker refused after its retries, stops the
process at once with exit status 70 (``EX_SOFTWARE``), like a killed worker: nothing after the
last commit is acknowledged, and the restarted worker (systemd, Kubernetes, ``cityops run``'s
operator) gets those records again and recognises what was already done. Bad *input* never
gets here: it is dead-lettered with a reason.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator

__all__ = ["EXIT_CODE", "fail_stop", "stop_now"]

log = logging.getLogger(__name__)

EXIT_CODE = 70
"""The exit status of a fail-stop (``EX_SOFTWARE``)."""


def stop_now(stage: str, message: str, exc: BaseException | None = None) -> None:
    """Log why and end the process immediately, without acknowledging anything."""
    log.critical(
        "%s: %s; stopping now so that no record in hand is acknowledged (exit %d)",
        stage,
        message,
        EXIT_CODE,
        exc_info=exc,
    )
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            handler.flush()
    sys.stderr.flush()
    os._exit(EXIT_CODE)


@contextlib.contextmanager
def fail_stop(stage: str) -> Iterator[None]:
    """Run a batch; on any unexpected error, :func:`stop_now` (cancellation passes through)."""
    try:
        yield
    except Exception as exc:
        stop_now(stage, f"unexpected {type(exc).__name__}", exc)
