"""`packmatch runs submit FILE.jsonl`: a file of runs streamed through the batch endpoint."""

from __future__ import annotations

import io
import json
import os
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from packmatch import cli, submit
from tests.e2e.conftest import BOOKINGS, INVOICE_MAPPINGS, Api, invoice
from tests.e2e.test_processes import PACKMATCH, free_port, wait_until_ready

RUNS = "/v1/matching/packages/runs"


def lines_of(config_id: str, count: int) -> list[bytes]:
    body = {"package_config_id": config_id, "input_documents": {"invoice": [invoice()]}}
    return [json.dumps(body).encode() for _ in range(count)]


def through(api: Api) -> submit.Post:
    """A `Post` that sends to the in-process app, as the CLI sends to a server."""

    def post(payload: bytes, key: str) -> tuple[int, dict[str, str], bytes]:
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        response = api.post(submit.BATCH_PATH, content=payload, headers=headers)
        return response.status_code, dict(response.headers), response.content

    return post


def total_runs(api: Api) -> int:
    count: int = api.get(RUNS).json()["pagination"]["total"]
    return count


def test_a_file_is_sent_in_batches_and_each_accepted_line_is_printed(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(submit, "MAX_RUNS", 4)
    config = api.shipment_world()
    good = lines_of(config, 9)
    file = io.BytesIO(b"\n".join([*good[:3], b"{not json", *good[3:], b'{"package_config_id": "x"}', b""]))
    out, err, seen = io.StringIO(), io.StringIO(), []

    report = submit.submit(through(api), file, out, err, on_batch=lambda r: seen.append(r.accepted))

    printed = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [p["line"] for p in printed] == [1, 2, 3, 5, 6, 7, 8, 9, 10]
    assert all(p["run_id"].startswith("run_") for p in printed)
    assert report.refused == [
        "line 4: not valid JSON",
        "line 11: input_documents: Field required",
    ]
    assert "line 11" in err.getvalue()
    assert seen == [4, 8, 9]
    assert total_runs(api) == 9


def test_submitting_the_same_file_again_accepts_nothing_new(api: Api) -> None:
    config = api.shipment_world()
    content = b"\n".join(lines_of(config, 3))

    first, again = io.StringIO(), io.StringIO()
    submit.submit(through(api), io.BytesIO(content), first, io.StringIO())
    submit.submit(through(api), io.BytesIO(content), again, io.StringIO())

    assert again.getvalue() == first.getvalue()
    assert total_runs(api) == 3


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--api-key", "pmk_x", "missing.jsonl"], "cannot read missing.jsonl"),
        (["--api-key", "pmk_x", "--url", "http://127.0.0.1:9", "runs.jsonl"], "cannot reach"),
        (["runs.jsonl"], "an API key is needed"),
    ],
)
def test_bad_use_is_one_line_on_stderr(
    argv: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    restore_logging: None,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PACKMATCH_API_KEY", raising=False)
    (tmp_path / "runs.jsonl").write_text("{}\n")

    code = cli.main(["runs", "submit", *argv])

    assert code == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("packmatch:")]
    assert len(lines) == 1
    assert message in lines[0]


def test_the_command_submits_to_a_running_server(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PACKMATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'pm.db'}",
        "PACKMATCH_LOG_FORMAT": "json",
    }
    key = (
        subprocess.run(
            [PACKMATCH, "keys", "create", "--organization", "acme"], env=env, capture_output=True, check=True
        )
        .stdout.decode()
        .strip()
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [PACKMATCH, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_ready(base, server)
        config = _world(base, key)
        (tmp_path / "runs.jsonl").write_bytes(b"\n".join([*lines_of(config, 3), b"[]"]))
        done = subprocess.run(
            [PACKMATCH, "runs", "submit", str(tmp_path / "runs.jsonl"), "--url", base],
            env={**env, "PACKMATCH_API_KEY": key},
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert done.returncode == 1
    assert [json.loads(line)["line"] for line in done.stdout.splitlines()] == [1, 2, 3]
    assert "packmatch: line 4: not a JSON object" in done.stderr
    assert "Traceback" not in done.stderr


def _world(base: str, key: str) -> str:
    def create(path: str, body: dict[str, Any]) -> str:
        request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST")
        request.add_header("Authorization", f"Bearer {key}")
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as response:
            return str(json.loads(response.read())["id"])

    ref = create("/v1/matching/reference-data", {"name": "bookings", "rows": BOOKINGS})
    mapping = {"name": "m", "reference_data_id": ref, "field_mappings": INVOICE_MAPPINGS}
    mc = create("/v1/matching/configs", mapping)
    slots = [{"document_type": "invoice", "matching_config_id": mc, "presence": "required"}]
    return create("/v1/matching/packages/configs", {"name": "p", "document_type_configs": slots})
