"""A multipart body the idempotency middleware has already spooled, parsed without a second copy.

With an `Idempotency-Key`, the middleware spools the whole body (to fingerprint it before the
route runs). Parsing that body with Starlette's parser would spool its file part once more: a
2 GiB CSV upload would take 4 GiB of disk. Instead the middleware offers its spool in the ASGI
scope (`offer`), and a route reading a form takes it (`taken`): the form's text fields are parsed
as Starlette parses them, and its file part is a read-only window on the spooled body.

A file part's bytes are contiguous in the body, so the window is where its first byte is, and its
length. python-multipart hands part data either as a slice of the chunk it was given or, after a
partial boundary match that turned out to be data, from its copy of the boundary; the first slice
of the chunk says where the part starts (less what was handed before it).
"""

from __future__ import annotations

import io
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import IO, Protocol

from python_multipart.multipart import parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.types import Scope

SCOPE_KEY = "packmatch.spooled_body"
READ_CHUNK = 256 * 1024


class Spooled(Protocol):
    """A request body read whole into a seekable file before the app ran."""

    size: int

    def take(self) -> IO[bytes]:
        """The spooled file; the body is no longer played back to the app."""
        ...


def offer(scope: Scope, body: Spooled) -> None:
    scope[SCOPE_KEY] = body


def taken(scope: Scope) -> Spooled | None:
    found: Spooled | None = scope.get(SCOPE_KEY)
    return found


class FileWindow(io.RawIOBase):
    """Bytes `start` to `start + size` of `file`, read-only and seekable; closing it leaves `file` open."""

    def __init__(self, file: IO[bytes], start: int, size: int) -> None:
        super().__init__()
        self._file, self._start, self._size = file, start, size
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        wanted = min(len(buffer), self._size - self._position)
        if wanted <= 0:
            return 0
        self._file.seek(self._start + self._position)
        data = self._file.read(wanted)
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._position = base + offset
        return self._position

    def tell(self) -> int:
        return self._position


@dataclass
class _FilePart:
    filename: str
    headers: Headers
    start: int | None = None
    size: int = 0
    head: bytearray = field(default_factory=bytearray)  # handed before `start` was known

    def add(self, data: bytes, start: int, end: int, chunk_offset: int | None) -> None:
        if self.start is None:
            if chunk_offset is None:
                self.head += data[start:end]
            else:
                self.start = chunk_offset + start - self.size
        self.size += end - start

    def upload(self, body: IO[bytes]) -> UploadFile:
        if self.start is None:  # a part shorter than the boundary, all of it handed from the copy
            file: IO[bytes] = io.BytesIO(bytes(self.head))
        else:
            file = io.BufferedReader(FileWindow(body, self.start, self.size), READ_CHUNK)
        return UploadFile(file, size=self.size, filename=self.filename, headers=self.headers)  # type: ignore[arg-type]


def _decoded(raw: bytes, charset: str) -> str:
    try:
        return raw.decode(charset)
    except (UnicodeDecodeError, LookupError):
        return raw.decode("latin-1")


class SpooledMultiPartParser(MultiPartParser):
    """Starlette's multipart parser over a spooled body, a file part kept as a window on it."""

    def __init__(
        self,
        headers: Headers,
        body: IO[bytes],
        *,
        max_files: int,
        max_fields: int,
        chunk_size: int = READ_CHUNK,
    ) -> None:
        self._body, self._chunk_size = body, chunk_size
        self._chunk, self._offset = b"", 0
        self._file_part: _FilePart | None = None
        super().__init__(headers, self._chunks(), max_files=max_files, max_fields=max_fields)

    async def _chunks(self) -> AsyncGenerator[bytes, None]:
        await run_in_threadpool(self._body.seek, 0)
        while True:
            self._offset += len(self._chunk)
            self._chunk = await run_in_threadpool(self._body.read, self._chunk_size)
            if not self._chunk:
                return
            yield self._chunk

    def on_part_begin(self) -> None:
        super().on_part_begin()
        self._file_part = None

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._current_part.content_disposition)
        if b"filename" not in options:
            super().on_headers_finished()
            return
        if b"name" not in options:
            raise MultiPartException('The Content-Disposition header field "name" must be provided.')
        self._current_files += 1
        if self._current_files > self.max_files:
            raise MultiPartException(f"Too many files. Maximum number of files is {self.max_files}.")
        self._current_part.field_name = _decoded(options[b"name"], self._charset)
        filename = _decoded(options[b"filename"], self._charset)
        self._file_part = _FilePart(filename, Headers(raw=self._current_part.item_headers))

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file_part is None:
            super().on_part_data(data, start, end)
        else:
            self._file_part.add(data, start, end, self._offset if data is self._chunk else None)

    def on_part_end(self) -> None:
        if self._file_part is None:
            super().on_part_end()
        else:
            self.items.append((self._current_part.field_name, self._file_part.upload(self._body)))
