"""`packmatch worker` must name its metrics directory before anything imports prometheus_client."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from packmatch.worker.runner import MULTIPROC_VARIABLES, prepare_multiprocess_dir


def test_the_worker_command_path_imports_no_prometheus_before_the_directory_is_set() -> None:
    probe = (
        "import sys, packmatch.cli, packmatch.worker.runner; "
        "names = ('prometheus_client', 'dramatiq.middleware.prometheus'); "
        "print(sorted(m for m in names if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_each_worker_gets_a_fresh_empty_directory_in_both_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in MULTIPROC_VARIABLES:
        monkeypatch.setenv(name, "")  # recorded, so that teardown restores the variable's absence
        monkeypatch.delenv(name)
    first = prepare_multiprocess_dir()
    second = prepare_multiprocess_dir()
    try:
        assert first != second
        assert [os.environ[name] for name in MULTIPROC_VARIABLES] == [second, second]
        assert list(Path(second).iterdir()) == []
    finally:
        for path in (first, second):
            Path(path).rmdir()
