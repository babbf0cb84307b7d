"""The CLI's progress reporters: log lines at an interval and at a phase's end, never values."""

from __future__ import annotations

import io

from structlog.testing import capture_logs

from packmatch.progress import BarProgress, LogProgress, progress_for


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_is_logged_once_per_interval_and_when_the_phase_ends() -> None:
    clock = FakeClock()
    progress = LogProgress(interval=5.0, clock=clock)
    with capture_logs() as logs:
        progress.phase("importing", 1000)
        for second in range(1, 13):
            clock.now += 1
            progress.advance(rows=second * 100, position=second * 80)
        progress.close()
    assert [(e["event"], e["rows"], e["rows_per_s"]) for e in logs] == [
        ("reference_data.import_progress", 500, 100),
        ("reference_data.import_progress", 1000, 100),
        ("reference_data.import_progress", 1200, 100),
    ]
    assert [e["percent"] for e in logs] == [40.0, 80.0, 96.0]
    assert {key for e in logs for key in e} == {
        "event",
        "log_level",
        "phase",
        "rows",
        "rows_per_s",
        "percent",
    }


def test_a_new_phase_logs_where_the_last_one_ended() -> None:
    clock = FakeClock()
    progress = LogProgress(interval=60.0, clock=clock)
    with capture_logs() as logs:
        progress.phase("checking", 10)
        clock.now += 2
        progress.advance(rows=4, position=10)
        progress.phase("writing", 10)
        progress.close()
        progress.close()
    assert [(e["phase"], e["rows"]) for e in logs] == [("checking", 4), ("writing", 0)]


def test_the_bar_shows_rows_per_second_and_ends_full() -> None:
    clock = FakeClock()
    stream = io.StringIO()
    progress = BarProgress(stream, clock=clock)
    progress.phase("importing", 2048)
    clock.now += 2
    progress.advance(rows=300, position=1024)
    progress.close()
    shown = stream.getvalue().replace("\r", "\n").splitlines()
    assert "300 rows, 150 rows/s" in shown[-1]
    assert "100%" in shown[-1]


def test_a_stream_that_is_not_a_terminal_gets_log_lines() -> None:
    assert isinstance(progress_for(io.StringIO()), LogProgress)
