"""Request bodies read by hand: a JSON body, or a `multipart/form-data` upload, both with a byte cap.

A route that takes both JSON and multipart on one path cannot let FastAPI parse the body (it would
read a multipart body into memory whole), so it reads the body with these helpers. The cap holds
whether or not the client sent a Content-Length (a chunked body is counted as it arrives).

A multipart upload goes through Starlette's streaming multipart parser: a file part is spooled to a
temporary file (memory up to 1 MiB, then disk), never held in memory whole; if the idempotency
middleware has spooled the whole body already, the file part is read where it lies in that spool.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from contextlib import aclosing

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser

from packmatch.api import spooled_form
from packmatch.api.schemas import Model, validate_body
from packmatch.api.spooled_form import SpooledMultiPartParser
from packmatch.errors import FieldProblem, PayloadTooLarge, ValidationFailed

JSON = "json"
MULTIPART = "multipart"
CSV = "csv"
MEDIA_TYPES = {JSON: "application/json", MULTIPART: "multipart/form-data", CSV: "text/csv"}


def body_kind(request: Request, accepted: tuple[str, ...]) -> str:
    """`json` (also when no Content-Type is sent, as FastAPI assumes), `multipart` or `csv` (a
    `text/csv` body, UTF-8: another `charset` is refused too); else 415."""
    media_type, _, params = request.headers.get("content-type", "").partition(";")
    media_type = media_type.strip().lower()
    if JSON in accepted and (media_type in ("", "application/json") or media_type.endswith("+json")):
        return JSON
    if MULTIPART in accepted and media_type == "multipart/form-data":
        return MULTIPART
    if CSV in accepted and media_type == "text/csv":
        charset = _charset(params)
        if charset in (None, "utf-8", "utf8"):
            return CSV
        raise HTTPException(415, detail=f"A text/csv body must be UTF-8 (got charset={charset}).")
    wanted = " or ".join(MEDIA_TYPES[k] for k in accepted)
    shown = media_type or "none"
    raise HTTPException(415, detail=f"Content-Type must be {wanted} (got {shown}).")


def _charset(params: str) -> str | None:
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return None


def _too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body exceeds {max_bytes} bytes.")


async def _capped(request: Request, max_bytes: int) -> AsyncGenerator[bytes, None]:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_bytes:
        raise _too_large(max_bytes)
    received = 0
    async with aclosing(request.stream()) as stream:
        async for chunk in stream:
            received += len(chunk)
            if received > max_bytes:
                raise _too_large(max_bytes)
            yield chunk


async def read_bytes(request: Request, max_bytes: int) -> bytes:
    """The whole body, at most `max_bytes` (else PayloadTooLarge)."""
    return b"".join([chunk async for chunk in _capped(request, max_bytes)])


async def read_json_model(request: Request, model: type[Model], max_bytes: int) -> Model:
    """The body validated as `model` (in a worker thread: it may be 10 MiB), with its errors
    reported exactly as FastAPI reports a JSON body's errors."""
    raw = await read_bytes(request, max_bytes)
    return await run_in_threadpool(_parse_json, raw, model)


def _parse_json(raw: bytes, model: type[Model]) -> Model:
    if not raw:
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required"}])
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # bad syntax or encoding; nested too deep
        raise RequestValidationError(
            [{"type": "json_invalid", "loc": ("body", 0), "msg": str(exc)}]
        ) from None
    return validate_body(model, document)


async def read_form(request: Request, max_bytes: int, *, max_fields: int) -> FormData:
    """A multipart body with at most one file part and `max_fields` text parts. Close it when done.

    A body the idempotency middleware has spooled (within the same cap) is parsed in place."""
    spooled = spooled_form.taken(request.scope)
    parser = (
        MultiPartParser(request.headers, _capped(request, max_bytes), max_files=1, max_fields=max_fields)
        if spooled is None
        else SpooledMultiPartParser(request.headers, spooled.take(), max_files=1, max_fields=max_fields)
    )
    try:
        return await parser.parse()
    except MultiPartException as exc:
        message = f"The multipart body is malformed: {exc.message}"
        raise ValidationFailed(message, details=[FieldProblem("body", exc.message)]) from None


def form_file(form: FormData, name: str) -> UploadFile:
    found = form.getlist(name)
    if len(found) != 1 or not isinstance(found[0], UploadFile):
        message = f"Send the file as one multipart part named '{name}' with a filename."
        raise ValidationFailed(message, details=[FieldProblem(name, message)])
    return found[0]


def form_text(form: FormData, name: str) -> str | None:
    found = form.getlist(name)
    if not found:
        return None
    if len(found) > 1 or not isinstance(found[0], str):
        message = f"Send '{name}' once, as a text field."
        raise ValidationFailed(message, details=[FieldProblem(name, message)])
    return found[0]


def check_form_fields(form: FormData, known: frozenset[str]) -> None:
    unknown = sorted({key for key in form if key not in known})
    if unknown:
        names = ", ".join(f"'{n}'" for n in unknown)
        message = f"Unknown multipart fields: {names}."
        raise ValidationFailed(message, details=[FieldProblem(n, "Unknown field.") for n in unknown])
