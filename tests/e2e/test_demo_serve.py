"""`packmatch demo --serve`: the report, then the reviewer page's URL and a live API behind it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from packmatch.demo import REVIEW_HINT


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    env = {**os.environ, "PACKMATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}"}
    env.pop("PACKMATCH_BROKER_URL", None)
    command = [sys.executable, "-m", "packmatch.cli", "demo", "--serve", "--port", "0"]  # any free port
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    lines: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:  # blocks until the demo has printed the page's URL and key
        lines.append(line.rstrip("\n"))
        if "reviewer key" in line:
            break
    yield process, lines
    process.terminate()
    process.wait(timeout=20)
    process.stdout.close()


def get(url: str, key: str | None = None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as response:
        return response.status, response.read().decode()


def test_demo_serve_prints_the_page_url_and_serves_three_undecided_review_bundles(
    demo_server: tuple[subprocess.Popen[str], list[str]],
) -> None:
    process, lines = demo_server
    url = next(line.split(": ", 1)[1] for line in lines if line.startswith("Review the bundles"))
    key = lines[-1].rsplit(" ", 1)[1]
    assert url.endswith("/review")
    assert not url.endswith(":0/review")  # the port the server got, not the one asked for
    assert "Reviewer queue (status review, undecided): 3 run(s)" in lines
    assert not any(REVIEW_HINT in line for line in lines)  # the page is already there
    assert process.poll() is None, "the demo exited"
    status, html = get(url)  # the demo played over this very server: it answers at once
    assert status == 200
    assert "packmatch review" in html
    base = url.removesuffix("/review")
    _, body = get(f"{base}/v1/matching/packages/runs?status=review&reviewed=false", key)
    assert json.loads(body)["pagination"]["total"] == 3


def test_demo_serve_stops_on_ctrl_c_as_an_interrupted_command(
    demo_server: tuple[subprocess.Popen[str], list[str]],
) -> None:
    process, _ = demo_server

    process.send_signal(signal.SIGINT)

    assert process.wait(timeout=20) == 130
