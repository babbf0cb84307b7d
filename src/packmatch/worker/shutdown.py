"""Graceful shutdown of a Dramatiq worker process, whoever sends the SIGTERM.

Dramatiq's CLI forwards the SIGTERM it receives to each worker process, and a worker process takes
a *second* SIGTERM as "kill now": it exits at once, abandoning the messages it holds. Supervisors
that signal the whole process group (systemd's default `KillMode=control-group`, `kill -TERM -PGID`,
`tini -g`) deliver SIGTERM to the worker process directly *and* through the CLI a moment later, so
without this guard about half of such stops were abrupt (exit code 1, no `worker.stopping`).
"""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType

from packmatch.logging import get_logger

log = get_logger(__name__)

DUPLICATE_WINDOW_SECONDS = 1.0


def ignore_repeated_sigterm(window: float = DUPLICATE_WINDOW_SECONDS) -> None:
    """Treat SIGTERMs arriving within `window` seconds of the first one as that same request.

    A SIGTERM sent later still reaches Dramatiq's handler, so an operator can force an exit.
    Only the main thread can install signal handlers; elsewhere this does nothing.
    """
    original = signal.getsignal(signal.SIGTERM)
    if not callable(original) or threading.current_thread() is not threading.main_thread():
        return
    first: list[float] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        now = time.monotonic()
        if first and now - first[0] < window:
            log.info("worker.duplicate_sigterm_ignored")
            return
        first.append(now)
        original(signum, frame)

    signal.signal(signal.SIGTERM, handler)
