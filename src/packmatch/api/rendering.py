"""The API's JSON response: Starlette's `JSONResponse`, rendered by orjson with the same bytes."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse as StarletteJSONResponse

from packmatch.jsontext import dumps_body


class JSONResponse(StarletteJSONResponse):
    """Starlette renders with `json.dumps(ensure_ascii=False, allow_nan=False, separators=(",", ":"))`;
    `dumps_body` writes that text with orjson where it can (benchmarks/README.md, issue 15)."""

    def render(self, content: Any) -> bytes:
        return dumps_body(content)
