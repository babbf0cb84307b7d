"""`GET /review` and its assets: served from package data, with a strict CSP, no key needed."""

from __future__ import annotations

import re

import pytest

from packmatch.api.review_page.routes import CSP, assets
from tests.e2e.conftest import Api, error_body


def test_the_page_is_html_with_a_strict_csp(api: Api) -> None:
    response = api.client.get("/review")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src 'self'" in csp
    assert "unsafe" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


def test_the_page_has_no_inline_script_or_style_and_nothing_from_elsewhere(api: Api) -> None:
    html = api.client.get("/review").text
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "inline script"
    assert "<style" not in html
    assert " style=" not in html
    assert not re.search(r" on[a-z]+=", html), "an inline event handler"
    assert not re.search(r"(src|href)=\"(https?:)?//", html), "a resource from another origin"


@pytest.mark.parametrize(
    ("name", "media_type"),
    [("app.js", "text/javascript"), ("review.css", "text/css"), ("evidence.js", "text/javascript")],
)
def test_assets_are_served_with_their_type_and_the_csp(api: Api, name: str, media_type: str) -> None:
    response = api.client.get(f"/review/static/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media_type)
    assert response.headers["content-security-policy"] == CSP
    assert response.content == assets()[name]


def test_every_module_the_page_imports_is_served(api: Api) -> None:
    for name, body in assets().items():
        if name.endswith(".js"):
            for imported in re.findall(rb'from "\./([\w.]+)"', body):
                assert api.client.get(f"/review/static/{imported.decode()}").status_code == 200


@pytest.mark.parametrize("name", ["nope.js", "..%2Fapp.py", "index", "routes.py"])
def test_an_unknown_asset_is_a_404_envelope(api: Api, name: str) -> None:
    error_body(api.client.get(f"/review/static/{name}"), 404, "not_found")


def test_the_page_is_not_part_of_the_api_schema(api: Api) -> None:
    paths = api.client.get("/openapi.json").json()["paths"]
    assert not [path for path in paths if path.startswith("/review")]
