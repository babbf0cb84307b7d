"""How `packmatch reference-data import` shows an import's progress on stderr.

On a terminal, a tqdm bar per phase: the bar and its ETA follow the bytes of the file read, the
postfix counts rows and rows/s. Otherwise (a pipe, a log collector), a JSON log line
`reference_data.import_progress` every `interval` seconds and at the end of each phase, with
counts only: never a value from the file.

Rows count when they are handed to the database; on PostgreSQL the server may still be a few
seconds behind (it applies COPY and then commits) when the bar shows 100%.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TextIO

from tqdm import tqdm

from packmatch.logging import get_logger

Clock = Callable[[], float]


class _Phase:
    def __init__(self, name: str, size: int, clock: Clock) -> None:
        self.name = name
        self.size = size
        self.started = clock()
        self.rows = 0
        self.position = 0

    def rate(self, now: float) -> float:
        return self.rows / max(now - self.started, 1e-6)


class LogProgress:
    """JSON log lines, at most one per `interval` seconds, and one when a phase ends."""

    def __init__(self, interval: float = 5.0, clock: Clock = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._phase: _Phase | None = None
        self._logged = 0.0

    def phase(self, name: str, size: int) -> None:
        self.close()
        self._phase = _Phase(name, size, self._clock)
        self._logged = self._phase.started

    def advance(self, rows: int, position: int) -> None:
        if self._phase is None:
            return
        self._phase.rows, self._phase.position = rows, position
        if self._clock() - self._logged >= self._interval:
            self._log()

    def close(self) -> None:
        """Log where the current phase ended; call when the import is over."""
        if self._phase is not None:
            self._log()
            self._phase = None

    def _log(self) -> None:
        assert self._phase is not None
        now = self._logged = self._clock()
        phase = self._phase
        percent = round(100 * phase.position / phase.size, 1) if phase.size else 100.0
        # A logger per line (not one cached at import): it follows logging configured later.
        get_logger("packmatch.import").info(
            "reference_data.import_progress",
            phase=phase.name,
            rows=phase.rows,
            rows_per_s=round(phase.rate(now)),
            percent=min(percent, 100.0),
        )


class BarProgress:
    """A tqdm bar per phase on `stream` (a terminal)."""

    def __init__(self, stream: TextIO, clock: Clock = time.monotonic) -> None:
        self._stream = stream
        self._clock = clock
        self._phase: _Phase | None = None
        self._bar: tqdm[Any] | None = None

    def phase(self, name: str, size: int) -> None:
        self.close()
        self._phase = _Phase(name, size, self._clock)
        self._bar = tqdm(
            total=size, desc=name, unit="B", unit_scale=True, unit_divisor=1024, file=self._stream
        )

    def advance(self, rows: int, position: int) -> None:
        if self._phase is None or self._bar is None:
            return
        self._bar.update(max(0, min(position, self._phase.size) - self._bar.n))
        self._phase.rows = rows
        rate = self._phase.rate(self._clock())
        self._bar.set_postfix_str(f"{rows:,} rows, {rate:,.0f} rows/s")

    def close(self) -> None:
        if self._bar is not None and self._phase is not None:
            self._bar.update(self._phase.size - self._bar.n)
            self._bar.close()
        self._bar = self._phase = None


def progress_for(stream: TextIO) -> LogProgress | BarProgress:
    return BarProgress(stream) if stream.isatty() else LogProgress()
