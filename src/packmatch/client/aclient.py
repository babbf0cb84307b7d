"""`AsyncClient`: the asynchronous packmatch client (httpx.AsyncClient), same resources and policy."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any, TypeVar

import httpx

from packmatch.client import aresources, calls
from packmatch.client.calls import Call, Retry
from packmatch.client.client import DEFAULT_TIMEOUT
from packmatch.client.errors import TransportError

T = TypeVar("T")


class AsyncClient:
    """`async with AsyncClient(base_url, api_key) as client: run = await client.runs.get(…)`."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retry: Retry = Retry(),
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.retry = retry
        self.sleep = asyncio.sleep  # between retries; replaceable (tests)
        self._headers = calls.base_headers(api_key)
        self._http = http or httpx.AsyncClient(base_url=base_url, timeout=timeout)
        self.reference_data = aresources.ReferenceData(self)
        self.matching_configs = aresources.MatchingConfigs(self)
        self.package_configs = aresources.PackageConfigs(self)
        self.runs = aresources.Runs(self)
        self.matching_runs = aresources.MatchingRuns(self)
        self.evaluations = aresources.Evaluations(self)
        self.webhooks = aresources.Webhooks(self)

    async def send(self, call: Call[T]) -> T:
        """As `Client.send`."""
        headers = calls.request_headers(call, self._headers)
        for attempt in range(self.retry.attempts):
            last = attempt == self.retry.attempts - 1
            try:
                response = await self._exchange(call, headers)
            except httpx.TransportError as exc:
                if last:
                    raise TransportError(f"{call.method} {call.path}: {exc!r}") from exc
                await self.sleep(self.retry.delay(attempt, None))
                continue
            if last or not calls.should_retry(response):
                return calls.result(call, response)
            await self.sleep(self.retry.delay(attempt, calls.retry_after(response)))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _exchange(self, call: Call[Any], headers: dict[str, str]) -> httpx.Response:
        if call.rewind is not None:
            call.rewind()
        return await self._http.request(
            call.method, call.path, params=call.params, json=call.json, files=call.files,
            data=call.data, headers=headers,
        )  # fmt: skip

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        await self.aclose()
