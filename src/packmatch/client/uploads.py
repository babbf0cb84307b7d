"""A CSV upload as a streamed multipart `Call`, reporting progress as httpx reads the file."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, TypeVar

from packmatch.client.calls import Call

T = TypeVar("T")

Progress = Callable[[int, int | None], None]  # (bytes sent, total bytes or None)


class _Counting:
    """A read-only file wrapper that reports the bytes read so far."""

    def __init__(self, raw: IO[bytes], progress: Progress | None) -> None:
        self.raw, self.progress, self.sent = raw, progress, 0
        try:
            self.total: int | None = os.fstat(raw.fileno()).st_size
        except (OSError, AttributeError, ValueError):
            self.total = None

    def read(self, size: int = -1) -> bytes:
        chunk = self.raw.read(size)
        self.sent += len(chunk)
        if self.progress is not None and chunk:
            self.progress(self.sent, self.total)
        return chunk

    def rewind(self) -> None:
        self.raw.seek(0)
        self.sent = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


@contextmanager
def csv_upload(
    path: str,
    parse: Callable[[Any], T],
    file: str | Path | IO[bytes],
    fields: Mapping[str, str] | None,
    progress: Progress | None,
    key: str | None,
) -> Iterator[Call[T]]:
    """A multipart POST to `path` of `file` as the part `file` (text/csv), with text `fields`."""
    opened = open(file, "rb") if isinstance(file, str | Path) else None  # noqa: SIM115 (closed below)
    raw = opened or file
    assert not isinstance(raw, str | Path)
    counting = _Counting(raw, progress)
    filename = Path(str(getattr(raw, "name", "upload.csv"))).name
    try:
        yield Call(
            "POST", path, parse, files={"file": (filename, counting, "text/csv")},
            data=fields or None, idempotency_key=key, rewind=counting.rewind,
        )  # fmt: skip
    finally:
        if opened is not None:
            opened.close()
