"""`packmatch runs pending-review` and `packmatch runs review`: the reviewer's queue from a terminal.

Both speak to the API with the reviewer's own key (a `review`-scoped one is enough), so that the
decision names that key in `reviewed_by`; they use the standard library alone, like `runs submit`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from typing import IO, Any

from packmatch import __version__

RUNS = "/v1/matching/packages/runs"

# (method, path with query, JSON body or None) → (status, parsed body)
Call = Callable[[str, str, dict[str, Any] | None], tuple[int, dict[str, Any]]]


class ReviewError(Exception):
    """The API refused (bad key, unknown run, not reviewable…): one line for stderr."""


def http_call(base_url: str, api_key: str, timeout: float = 30.0) -> Call:
    def call(method: str, path: str, body: dict[str, Any] | None) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {api_key}", "User-Agent": f"packmatch-cli/{__version__}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers |= {"Content-Type": "application/json", "Idempotency-Key": f"cli-{uuid.uuid4()}"}
        request = urllib.request.Request(base_url.rstrip("/") + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, _json(error.read())
        except (urllib.error.URLError, OSError) as error:
            raise ReviewError(f"cannot reach {base_url}: {getattr(error, 'reason', error)}") from None

    return call


def _json(raw: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(raw)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _checked(status: int, body: dict[str, Any]) -> dict[str, Any]:
    if status >= 400:
        raise ReviewError(f"{status} {body.get('code', 'error')}: {body.get('message', 'the API refused')}")
    return body


def pending_review(call: Call, config_id: str | None, out: IO[str]) -> int:
    """Print the runs with status `review` that nobody has decided, oldest first; return how many."""
    query = {"status": "review", "reviewed": "false", "order": "asc", "limit": "100"}
    if config_id:
        query["package_config_id"] = config_id
    count, cursor = 0, None
    while True:
        page_query = {**query, **({"cursor": cursor} if cursor else {})}
        page = _checked(*call("GET", f"{RUNS}?{urllib.parse.urlencode(page_query)}", None))
        for run in page["data"]:
            slots = ",".join(f"{r['document_type']}={r['status']}" for r in run["document_results"])
            print(f"{run['id']}  {run['package_config_id']}  {run['completed_at']}  {slots}", file=out)
            count += 1
        cursor = page["pagination"]["next_cursor"]
        if not cursor:
            return count


def review_run(call: Call, run_id: str, decision: str, notes: str | None, out: IO[str]) -> dict[str, Any]:
    body: dict[str, Any] = {"decision": decision, **({"notes": notes} if notes is not None else {})}
    run = _checked(*call("POST", f"{RUNS}/{urllib.parse.quote(run_id)}/review", body))
    review = run["review"]
    who = review["reviewed_by"]
    name = who["name"] or who["key_id"]
    print(f"{run['id']}  status={run['status']}  review={review['decision']}  by {name}", file=out)
    return run
