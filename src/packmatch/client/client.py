"""`Client`: the synchronous packmatch client (httpx), with its resources as attributes."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any, TypeVar

import httpx

from packmatch.client import calls, resources
from packmatch.client.calls import Call, Retry
from packmatch.client.errors import TransportError

T = TypeVar("T")
DEFAULT_TIMEOUT = httpx.Timeout(40.0, connect=5.0)  # read: a `?wait=30` answer takes up to 30 s


class Client:
    """`Client("http://127.0.0.1:8000", api_key="pmk_…")`; use as a context manager or `close()`."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retry: Retry = Retry(),
        http: httpx.Client | None = None,
    ) -> None:
        self.retry = retry
        self.sleep = time.sleep  # between retries; replaceable (tests)
        self._headers = calls.base_headers(api_key)
        self._http = http or httpx.Client(base_url=base_url, timeout=timeout)
        self.reference_data = resources.ReferenceData(self)
        self.matching_configs = resources.MatchingConfigs(self)
        self.package_configs = resources.PackageConfigs(self)
        self.runs = resources.Runs(self)
        self.matching_runs = resources.MatchingRuns(self)
        self.evaluations = resources.Evaluations(self)
        self.webhooks = resources.Webhooks(self)

    def send(self, call: Call[T]) -> T:
        """Send with retries (429, 503, transport errors); the typed result or a typed exception."""
        headers = calls.request_headers(call, self._headers)  # one Idempotency-Key for every attempt
        for attempt in range(self.retry.attempts):
            last = attempt == self.retry.attempts - 1
            try:
                response = self._exchange(call, headers)
            except httpx.TransportError as exc:
                if last:
                    raise TransportError(f"{call.method} {call.path}: {exc!r}") from exc
                self.sleep(self.retry.delay(attempt, None))
                continue
            if last or not calls.should_retry(response):
                return calls.result(call, response)
            self.sleep(self.retry.delay(attempt, calls.retry_after(response)))
        raise AssertionError("unreachable")  # pragma: no cover

    def _exchange(self, call: Call[Any], headers: dict[str, str]) -> httpx.Response:
        if call.rewind is not None:
            call.rewind()
        return self._http.request(
            call.method, call.path, params=call.params, json=call.json, files=call.files,
            data=call.data, headers=headers,
        )  # fmt: skip

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()
