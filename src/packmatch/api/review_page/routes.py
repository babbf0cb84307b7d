"""`GET /review` and `GET /review/static/{name}`: the page and its assets, read from package data."""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import Response

from packmatch.errors import NotFound

router = APIRouter(include_in_schema=False)

# Only this origin's own scripts, styles, images and API calls; no inline code, no framing.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


@cache
def assets() -> dict[str, bytes]:
    """Every file of `static/` by name, read once from the installed package."""
    folder = resources.files(__package__).joinpath("static")
    return {item.name: item.read_bytes() for item in folder.iterdir() if item.is_file()}


def _asset(name: str) -> Response:
    body = assets().get(name)
    suffix = name[name.rfind(".") :] if "." in name else ""
    if body is None or suffix not in MEDIA_TYPES:
        raise NotFound("No such file of the review page.")
    return Response(body, media_type=MEDIA_TYPES[suffix], headers=SECURITY_HEADERS)


@router.get("/review")
def page() -> Response:
    return _asset("index.html")


@router.get("/review/static/{name}")
def static(name: str) -> Response:
    return _asset(name)
