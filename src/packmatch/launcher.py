"""The `packmatch` command's entry point: the CLI, or one clear line on a client-only install."""

from __future__ import annotations

import sys

SERVER_MODULES = frozenset(
    {"alembic", "cachetools", "dramatiq", "fastapi", "numpy", "prometheus_client", "psycopg",
     "pydantic_settings", "multipart", "python_multipart", "rapidfuzz", "redis", "sqlalchemy",
     "structlog", "tqdm", "uvicorn"}
)  # fmt: skip
MISSING = (
    "packmatch: the `packmatch` command needs the server extra (missing module {name!r}): "
    "pip install 'packmatch[server]'"
)


def main() -> None:
    try:
        from packmatch import cli
    except ModuleNotFoundError as missing:
        name = (missing.name or "").split(".")[0]
        if name not in SERVER_MODULES:
            raise
        print(MISSING.format(name=name), file=sys.stderr)
        raise SystemExit(2) from None
    raise SystemExit(cli.main())
