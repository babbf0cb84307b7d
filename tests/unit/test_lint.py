"""The lint runs with the tests (so CI's one command checks it): ruff, ruff's formatter and strict
mypy over src/ and tests/ (benchmarks/ too for ruff; mypy would need the `bench` extra, which CI's
`.[test]` install does not have), as configured in pyproject.toml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

LINTERS = {
    "ruff check": [str(BIN / "ruff"), "check", "src", "tests", "benchmarks"],
    "ruff format": [str(BIN / "ruff"), "format", "--check", "src", "tests", "benchmarks"],
    "mypy": [str(BIN / "mypy")],  # files = src/packmatch and tests (pyproject.toml)
}


@pytest.mark.timeout(600)
@pytest.mark.parametrize("linter", LINTERS)
def test_the_tree_is_clean(linter: str) -> None:
    done = subprocess.run(LINTERS[linter], cwd=REPO, capture_output=True, text=True, timeout=590)
    assert done.returncode == 0, done.stdout + done.stderr
