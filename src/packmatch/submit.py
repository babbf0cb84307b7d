"""`packmatch runs submit FILE.jsonl`: a JSON-lines file of runs, streamed through the batch endpoint.

Each line is the body of one `POST /v1/matching/packages/runs`. Lines are read as they come and sent
in batches (`POST …/runs/batch`, at most 1,000 runs and about 8 MiB a request), so a file of any
size is never held whole. Every batch carries an `Idempotency-Key` derived from where it starts
in the file and its bytes: a submission interrupted and started again within 24 h does not accept
the runs it already sent.
A 429 or 503 is retried after its `Retry-After`.

On stdout, one JSON line per accepted run (`{"line": 3, "run_id": "run_…"}`); on stderr, one line
per refused run naming its line and why. Progress goes to stderr (a bar on a terminal, JSON log
lines otherwise), never a value from the file.

It speaks HTTP with the standard library alone, so that it runs anywhere `packmatch` is installed.
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from packmatch import __version__

BATCH_PATH = "/v1/matching/packages/runs/batch"
MAX_RUNS = 1000
MAX_BYTES = 8 * 1024 * 1024  # below the API's 10 MiB body limit, with room for the envelope
RETRIES = 5


class SubmitError(Exception):
    """The API refused the whole submission (bad key, unreachable, …): one line for stderr."""


@dataclass
class Batch:
    lines: list[int] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    size: int = 0

    def add(self, line: int, body: bytes) -> None:
        self.lines.append(line)
        self.bodies.append(body)
        self.size += len(body) + 1

    def payload(self) -> bytes:
        return b'{"runs": [' + b",".join(self.bodies) + b"]}"


@dataclass
class Report:
    accepted: int = 0
    refused: list[str] = field(default_factory=list)
    lines: int = 0


Post = Callable[[bytes, str], tuple[int, dict[str, str], bytes]]


def batches(file: IO[bytes], refuse: Callable[[int, str], None]) -> Iterator[Batch]:
    """The file's runs in batches; a line that is not a JSON object is refused here."""
    batch = Batch()
    for number, raw in enumerate(file, start=1):
        text = raw.strip()
        if not text:
            continue
        try:
            parsed = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError):
            refuse(number, "not valid JSON")
            continue
        if not isinstance(parsed, dict):
            refuse(number, "not a JSON object")
            continue
        if batch.lines and (len(batch.lines) >= MAX_RUNS or batch.size + len(text) > MAX_BYTES):
            yield batch
            batch = Batch()
        batch.add(number, text)
    if batch.lines:
        yield batch


def http_post(base_url: str, api_key: str, timeout: float = 60.0) -> Post:
    """A `Post` that sends a batch to the API at `base_url` with `api_key`."""

    def post(payload: bytes, idempotency_key: str) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(
            base_url.rstrip("/") + BATCH_PATH,
            data=payload,
            method="POST",
            headers={
                "Authorization": f"Bearer {api_key}",
                "Content-Type": "application/json",
                "Idempotency-Key": idempotency_key,
                "User-Agent": f"packmatch-cli/{__version__}",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise SubmitError(f"cannot reach {base_url}: {reason}") from None

    return post


def send(post: Post, batch: Batch, sleep: Callable[[float], None] = time.sleep) -> list[dict[str, Any]]:
    """The batch's entries; retried on 429/503 after `Retry-After`, refused with the API's message."""
    payload = batch.payload()
    # Where the batch starts in the file, and its bytes: the same file sent again gets the same keys,
    # two equal batches of one file get different ones.
    digest = hashlib.sha256(b"%d:" % batch.lines[0] + payload).hexdigest()
    key = f"packmatch-submit-{digest}"
    for attempt in range(RETRIES + 1):
        status, headers, body = post(payload, key)
        if status in (429, 503) and attempt < RETRIES:
            sleep(_retry_after(headers))
            continue
        if status == 202:
            entries: list[dict[str, Any]] = json.loads(body)["data"]
            return entries
        raise SubmitError(f"the API answered {status}: {_message(body)}")
    raise AssertionError("unreachable")


def submit(
    post: Post,
    file: IO[bytes],
    out: IO[str],
    err: IO[str],
    on_batch: Callable[[Report], None] = lambda report: None,
) -> Report:
    report = Report()

    def refuse(line: int, why: str) -> None:
        report.refused.append(f"line {line}: {why}")
        print(f"packmatch: line {line}: {why}", file=err)

    for batch in batches(file, refuse):
        for line, entry in zip(batch.lines, send(post, batch), strict=True):
            if "index" in entry:
                refuse(line, _entry_problem(entry["error"]))
            else:
                report.accepted += 1
                print(json.dumps({"line": line, "run_id": entry["id"]}), file=out, flush=True)
        report.lines = batch.lines[-1]
        on_batch(report)
    return report


def _entry_problem(error: dict[str, Any]) -> str:
    details = [f"{_strip_index(d['field'])}: {d['message']}" for d in error.get("details", [])]
    return "; ".join(details[:3]) or str(error.get("message", "refused"))


def _strip_index(path: str) -> str:
    """`runs[3].input_documents.x` → `input_documents.x` (the line number already says which run)."""
    head, dot, rest = path.partition(".")
    return rest if dot and head.startswith("runs[") else path


def _retry_after(headers: dict[str, str]) -> float:
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), "1")
    try:
        return min(max(float(value), 0.0), 60.0)
    except ValueError:
        return 1.0


def _message(body: bytes) -> str:
    try:
        return str(json.loads(body)["message"])
    except (ValueError, KeyError, TypeError):
        return "no error message"
