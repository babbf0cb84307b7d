"""What one API call is, independent of sync or async: the request to send and how to read the answer.

Both clients send a `Call` through the same policy: headers (auth, user agent, an `Idempotency-Key`
on every POST unless given), retries with exponential backoff and jitter on 429, 503 and transport
errors (honouring `Retry-After`), then the typed result or the typed exception.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx
from pydantic import BaseModel

from packmatch import __version__
from packmatch.client import errors

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

USER_AGENT = f"packmatch-client/{__version__} httpx/{httpx.__version__}"
RETRY_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str
    parse: Callable[[Any], T]
    params: Mapping[str, Any] | None = None
    json: Any = None
    files: Any = None
    data: Mapping[str, str] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    idempotency_key: str | None = None
    rewind: Callable[[], None] | None = None  # an upload's stream, before each attempt
    etag: bool = False  # parse the `ETag` header instead of the body


def model(cls: type[M]) -> Callable[[Any], M]:
    return cls.model_validate


def params(**values: Any) -> dict[str, Any]:
    """Query parameters without the `None`s; booleans as the API spells them."""
    return {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in values.items() if v is not None}


@dataclass(frozen=True)
class Retry:
    """At most `attempts` tries; the n-th wait is `base·2ⁿ` (± jitter, ≤ `cap`) or `Retry-After`."""

    attempts: int = 4
    base: float = 0.5
    cap: float = 30.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.cap)
        backoff: float = min(self.cap, self.base * 2.0**attempt)
        return backoff * random.uniform(0.5, 1.0)


def request_headers(call: Call[Any], base: Mapping[str, str]) -> dict[str, str]:
    headers = {**base, **call.headers}
    if call.method in ("POST", "PUT", "DELETE"):
        headers["Idempotency-Key"] = call.idempotency_key or f"pmc_{uuid.uuid4().hex}"
    return headers


def base_headers(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}", "User-Agent": USER_AGENT, "Accept": "application/json"}


def should_retry(response: httpx.Response) -> bool:
    return response.status_code in RETRY_STATUSES


def result(call: Call[T], response: httpx.Response) -> T:
    """The parsed answer of a 2xx, else the typed exception (raised)."""
    if response.is_success:
        return call.parse(response.headers.get("etag") if call.etag else response.json())
    try:
        body = response.json()
    except json.JSONDecodeError:
        body = response.text
    raise errors.from_response(
        response.status_code, body, {k.lower(): v for k, v in response.headers.items()}
    )


def retry_after(response: httpx.Response) -> float | None:
    return errors.retry_after(
        {"retry-after": response.headers.get("retry-after")} if "retry-after" in response.headers else {}
    )
