"""docs/client.md's tutorial, executed: here, and in a fresh virtualenv holding only the client.

The second test is what a new user does: `pip install` the distribution without the server extra,
then run the tutorial against a running server. It needs the package registry (httpx, pydantic,
standardwebhooks, setuptools); outside CI it skips when the registry cannot be reached.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_client import Server, serving

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "client.md"


def tutorial() -> str:
    """The python blocks between `## Tutorial` and the next `## ` section, in order."""
    text = DOC.read_text()
    start = text.index("## Tutorial")
    section = text[start : text.index("\n## ", start + 1)]
    blocks = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    assert len(blocks) >= 6, "the tutorial lost its code blocks"
    return "\n".join(blocks)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with serving(tmp_path) as running:
        yield running


def test_the_tutorial_runs_as_written(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PACKMATCH_URL", server.url)
    monkeypatch.setenv("PACKMATCH_API_KEY", server.key)
    namespace: dict[str, Any] = {"__name__": "tutorial"}
    exec(compile(tutorial(), str(DOC), "exec"), namespace)
    assert namespace["run"].status == "passed"
    assert namespace["event"]["event"] == "package_run.completed"
    assert namespace["decided"].review.decision == "rejected"


def client_only_venv(path: Path) -> Path:
    venv.create(path, with_pip=True)
    python = path / "bin" / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", str(ROOT)], capture_output=True, text=True, timeout=600
    )
    if installed.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"pip install of the client failed:\n{installed.stderr[-3000:]}")
        pytest.skip(f"the package registry is not reachable: {installed.stderr.strip()[-300:]}")
    return python


def test_a_client_only_install_runs_the_tutorial(server: Server, tmp_path: Path) -> None:
    python = client_only_venv(tmp_path / "venv")
    for server_module in ("sqlalchemy", "fastapi", "dramatiq", "numpy"):
        probe = subprocess.run([str(python), "-c", f"import {server_module}"], capture_output=True)
        assert probe.returncode != 0, f"{server_module} is installed in the client-only venv"
    command = subprocess.run([str(python.parent / "packmatch"), "serve"], capture_output=True, text=True)
    assert command.returncode == 2
    assert command.stderr.strip().splitlines() == [command.stderr.strip()]  # one line
    assert "pip install 'packmatch[server]'" in command.stderr
    script = tmp_path / "tutorial.py"
    script.write_text(tutorial())
    env = {**os.environ, "PACKMATCH_URL": server.url, "PACKMATCH_API_KEY": server.key}
    ran = subprocess.run(
        [str(python), str(script)], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert ran.returncode == 0, ran.stderr
    assert "package_run.completed passed" in ran.stdout
    assert sys.executable != str(python)
