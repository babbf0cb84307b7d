"""`Idempotency-Key` at the HTTP edge (SPEC §2): claim, run once, store the response, replay it.

A pure ASGI middleware inside the rate limiter and the request-context middleware, so replayed
and rejected responses get `X-Request-Id`, rate-limit headers and an access-log line like any
other. Only authenticated requests with the `write` scope are recorded; anything else passes
through and fails authentication or authorization as usual. The body is spooled (memory, then a
temporary file) and fingerprinted before the route sees it, up to the request's body limit (the
app's `body_limit`: 10 MiB, or the CSV upload cap), past which it is answered 413 without a claim;
the response is held back until it has been stored, so a client that has received an answer can
always have it replayed. A route that parses a multipart form takes the spooled body in place
(`spooled_form`) rather than having it played back and spooled again.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from packmatch.api import errors, spooled_form
from packmatch.api.deps import get_principal
from packmatch.domain.ids import Kind, format_id
from packmatch.errors import FieldProblem, PackmatchError, PayloadTooLarge
from packmatch.logging import get_logger
from packmatch.services.container import Services
from packmatch.services.idempotency import Decision, Fingerprint, Idempotency, Outcome
from packmatch.store.idempotency import StoredResponse

log = get_logger(__name__)

IDEMPOTENT_METHODS = frozenset({"POST", "PUT", "DELETE"})
HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
REPLAYED_HEADER = "Idempotent-Replayed"
KEPT_HEADERS = frozenset({"content-type", "location", "cache-control", "etag"})  # etag: of the body replayed
# A response marked `Cache-Control: no-store` carries a secret (a webhook's, shown once): it is kept
# with its top-level `secret` set to null, and its replay says so (decision 0012).
SECRET_OMITTED_HEADER = "Idempotent-Secret-Omitted"
SPOOL_IN_MEMORY = 1024 * 1024
CHUNK = 64 * 1024
MISMATCH = (
    "This Idempotency-Key was already used with a different request (method, path or body). "
    "Use a new key for a new request."
)
IN_PROGRESS = "A request with this Idempotency-Key is still in progress. Retry when it has finished."


@dataclass(frozen=True)
class Claim:
    api_key_id: uuid.UUID
    key: str
    request_id: str


def key_problem(values: list[str]) -> str | None:
    if len(values) > 1:
        return f"Send one {HEADER} header, not {len(values)}."
    if not 1 <= len(values[0]) <= MAX_KEY_LENGTH:
        return f"{HEADER} must be 1–{MAX_KEY_LENGTH} characters long."
    return None


def multipart_boundary(headers: Headers) -> bytes | None:
    content_type = headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/"):
        return None
    for param in content_type.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "boundary" and value.strip('" '):
            return value.strip('" ').encode("latin-1")
    return None


def request_target(scope: Scope) -> str:
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{scope['path']}?{query}" if query else str(scope["path"])


def _holds_secret(headers: tuple[tuple[str, str], ...]) -> bool:
    return any(name == "cache-control" and "no-store" in value for name, value in headers)


def without_secret(body: bytes) -> bytes:
    """The body to keep: a JSON object's top-level `secret` set to null; anything else unchanged."""
    try:
        document: Any = json.loads(body)
    except ValueError:
        return body
    if not isinstance(document, dict) or "secret" not in document:
        return body
    document["secret"] = None
    return json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def with_request_id(response: StoredResponse, request_id: str) -> bytes:
    """A replayed error envelope names the replaying request, so `request_id` = `X-Request-Id`."""
    if response.status < 400:
        return response.body
    try:
        body: Any = json.loads(response.body)
    except ValueError:
        return response.body
    if not isinstance(body, dict) or "request_id" not in body:
        return response.body
    body["request_id"] = request_id
    return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


class SpooledBody:
    """The request body, read (and fingerprinted) once, then played back to the app."""

    def __init__(self) -> None:
        self.file = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 (closed in close())
        self.size = 0
        self._played = False

    async def read(self, receive: Receive, fingerprint: Fingerprint, max_bytes: int) -> bool:
        """False if the client disconnected before the body was complete; PayloadTooLarge past
        `max_bytes` (said by Content-Length, or counted as a chunked body arrives)."""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return False
            chunk: bytes = message.get("body", b"")
            fingerprint.update(chunk)
            self.size += len(chunk)
            if self.size > max_bytes:
                raise PayloadTooLarge(f"The request body exceeds {max_bytes} bytes.")
            self.file.write(chunk)
            if not message.get("more_body", False):
                self.file.seek(0)
                return True

    def take(self) -> IO[bytes]:
        """The spooled file, for a route that parses it in place (`spooled_form`): the body is
        not played back any more, so the route's parser does not spool it a second time."""
        self._played = True
        return self.file

    def playback(self, receive: Receive) -> Receive:
        async def replayed() -> Message:
            if self._played:
                return await receive()  # after the body: wait for a disconnect, as usual
            chunk = self.file.read(CHUNK)
            self._played = self.file.tell() >= self.size
            return {"type": "http.request", "body": chunk, "more_body": not self._played}

        return replayed

    def close(self) -> None:
        self.file.close()


class CapturedResponse:
    """Holds the app's response back until it has been stored."""

    def __init__(self) -> None:
        self.start: Message | None = None
        self.body = bytearray()
        self.complete = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.start = message
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")
            self.complete = not message.get("more_body", False)

    @property
    def storable(self) -> StoredResponse | None:
        """The response to keep, or None for a 5xx or an incomplete response (the key is freed)."""
        if self.start is None or not self.complete or self.start["status"] >= 500:
            return None
        headers = tuple(
            (name.decode("latin-1").lower(), value.decode("latin-1"))
            for name, value in self.start.get("headers", [])
            if name.decode("latin-1").lower() in KEPT_HEADERS
        )
        body = without_secret(bytes(self.body)) if _holds_secret(headers) else bytes(self.body)
        return StoredResponse(int(self.start["status"]), headers, body)

    async def forward(self, send: Send) -> None:
        if self.start is None:
            return
        await send(self.start)
        await send({"type": "http.response.body", "body": bytes(self.body), "more_body": False})


class IdempotencyMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        services: Services,
        idempotency: Idempotency,
        body_limit: Callable[[Request], int],
    ) -> None:
        self.app = app
        self.services = services
        self.idempotency = idempotency
        self.body_limit = body_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        keys = Headers(scope=scope).getlist(HEADER) if scope["type"] == "http" else []
        if not keys or scope["method"] not in IDEMPOTENT_METHODS:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        key_id = await self._writer(request)
        if key_id is None:
            await self.app(scope, receive, send)  # 401 or 403, exactly as without the header
            return
        problem = key_problem(keys)
        if problem is not None:
            details = [FieldProblem(HEADER, problem)]
            await errors.error_response(request, "validation_error", problem, details)(scope, receive, send)
            return
        claim = Claim(key_id, keys[0], _request_id(request))
        body = SpooledBody()
        try:
            await self._handle(scope, receive, send, claim, body)
        finally:
            body.close()

    async def _writer(self, request: Request) -> uuid.UUID | None:
        """The id of the API key, if it is valid and may write; sets the organization for the log."""
        try:
            principal = await get_principal(request, self.services)
        except PackmatchError:
            return None
        return principal.key_id

    async def _handle(
        self, scope: Scope, receive: Receive, send: Send, claim: Claim, body: SpooledBody
    ) -> None:
        request = Request(scope)
        fingerprint = Fingerprint(scope["method"], request_target(scope), multipart_boundary(request.headers))
        max_bytes = self.body_limit(request)
        length = request.headers.get("content-length", "")
        try:
            if length.isdigit() and int(length) > max_bytes:
                raise PayloadTooLarge(f"The request body exceeds {max_bytes} bytes.")
            if not await body.read(receive, fingerprint, max_bytes):
                return  # the client went away; nothing was claimed
        except PayloadTooLarge as exc:  # nothing claimed either
            await errors.error_response(request, exc.code, exc.message)(scope, receive, send)
            return
        decision = await run_in_threadpool(
            self.idempotency.begin, claim.api_key_id, claim.key, fingerprint.hexdigest(), claim.request_id
        )
        if decision.outcome is Outcome.PROCEED:
            spooled_form.offer(scope, body)
            await self._run(scope, body.playback(receive), send, claim)
        else:
            await _answer(request, decision, claim)(scope, receive, send)

    async def _run(self, scope: Scope, receive: Receive, send: Send, claim: Claim) -> None:
        captured = CapturedResponse()
        try:
            await self.app(scope, receive, captured.send)
        except BaseException:
            await self._settle(claim, None)
            raise
        await self._settle(claim, captured.storable)
        await captured.forward(send)

    async def _settle(self, claim: Claim, response: StoredResponse | None) -> None:
        """Store the response, or free the key (5xx, exception). Shielded: a cancelled request
        must not leave its claim behind. A failure here is logged, never shown to the client."""
        with anyio.CancelScope(shield=True):
            try:
                if response is None:
                    await run_in_threadpool(
                        self.idempotency.release, claim.api_key_id, claim.key, claim.request_id
                    )
                else:
                    await run_in_threadpool(
                        self.idempotency.complete, claim.api_key_id, claim.key, claim.request_id, response
                    )
            except Exception:
                log.exception("idempotency.store_failed", stored=response is not None)


def _request_id(request: Request) -> str:
    found = getattr(request.state, "request_id", None)
    return str(found) if found else format_id(Kind.REQUEST, uuid.uuid4())


def _answer(request: Request, decision: Decision, claim: Claim) -> Response:
    if decision.outcome is Outcome.MISMATCH:
        return errors.error_response(request, "idempotency_key_mismatch", MISMATCH)
    if decision.outcome is Outcome.IN_PROGRESS or decision.replay is None:
        return errors.error_response(
            request, "idempotency_key_in_use", IN_PROGRESS, headers={"Retry-After": "1"}
        )
    stored = decision.replay
    log.info("idempotency.replayed", original_request_id=decision.original_request_id, status=stored.status)
    headers = {**dict(stored.headers), REPLAYED_HEADER: "true"}
    if _holds_secret(stored.headers):
        headers[SECRET_OMITTED_HEADER] = "true"
    return Response(with_request_id(stored, claim.request_id), status_code=stored.status, headers=headers)
