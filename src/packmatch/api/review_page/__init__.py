"""The reviewer's web page (`GET /review`): plain HTML, JavaScript modules and CSS, no build step.

The parts: `routes` (the page and its assets, each with a strict Content-Security-Policy) and
`static/` (package data, so the page ships inside the wheel). The page holds no server-side state
and has no private endpoints: it asks for an API key, keeps it in `sessionStorage` and calls the
public JSON API with it (docs/review-page.md).
"""

from packmatch.api.review_page.routes import router

__all__ = ["router"]
