"""A spooled multipart body parsed in place reads exactly what Starlette's parser reads."""

from __future__ import annotations

import io
from collections.abc import AsyncGenerator

import anyio
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.datastructures import FormData, Headers, UploadFile
from starlette.formparsers import MultiPartParser

from packmatch.api.spooled_form import FileWindow, SpooledMultiPartParser

BOUNDARY = "b0undary"
HEADERS = Headers({"content-type": f"multipart/form-data; boundary={BOUNDARY}"})
# Bytes that look like the start of a boundary make python-multipart hand data from its own copy.
TRICKY = st.sampled_from(
    [b"\r", b"\n", b"\r\n", b"\r\n-", b"\r\n--", b"\r\n--b0un", b"--b0undar", b"x", b"\xff"]
)
CONTENT = st.lists(st.one_of(TRICKY, st.binary(max_size=40)), max_size=30).map(b"".join)


def multipart(content: bytes, name: str | None) -> bytes:
    parts = [
        b"--" + BOUNDARY.encode() + b"\r\n"
        b'Content-Disposition: form-data; name="file"; filename="rows.csv"\r\n'
        b"Content-Type: text/csv\r\n\r\n" + content + b"\r\n"
    ]
    if name is not None:
        parts.append(
            b"--"
            + BOUNDARY.encode()
            + b'\r\nContent-Disposition: form-data; name="name"\r\n\r\n'
            + name.encode()
            + b"\r\n"
        )
    return b"".join(parts) + b"--" + BOUNDARY.encode() + b"--\r\n"


async def read(form: FormData) -> list[tuple[str, str | bytes]]:
    found: list[tuple[str, str | bytes]] = []
    for key, value in form.multi_items():
        found.append((key, await value.read() if isinstance(value, UploadFile) else value))
    await form.close()
    return found


def starlette_reads(body: bytes, chunk: int) -> list[tuple[str, str | bytes]]:
    async def stream() -> AsyncGenerator[bytes, None]:
        for i in range(0, len(body), chunk):
            yield body[i : i + chunk]

    async def parse() -> list[tuple[str, str | bytes]]:
        return await read(await MultiPartParser(HEADERS, stream(), max_files=1, max_fields=10).parse())

    return anyio.run(parse)


def spooled_reads(body: bytes, chunk: int) -> list[tuple[str, str | bytes]]:
    async def parse() -> list[tuple[str, str | bytes]]:
        parser = SpooledMultiPartParser(
            HEADERS, io.BytesIO(body), max_files=1, max_fields=10, chunk_size=chunk
        )
        return await read(await parser.parse())

    return anyio.run(parse)


@settings(max_examples=300, deadline=None)
@given(content=CONTENT, name=st.one_of(st.none(), st.text(max_size=10)), chunk=st.integers(1, 64))
def test_a_spooled_body_reads_as_starlette_reads_it(content: bytes, name: str | None, chunk: int) -> None:
    body = multipart(content, name)
    expected = starlette_reads(body, chunk)
    assert spooled_reads(body, chunk) == expected
    assert expected[0] == ("file", content)


def test_a_window_reads_seeks_and_leaves_its_file_open() -> None:
    file = io.BytesIO(b"0123456789")
    window = io.BufferedReader(FileWindow(file, 2, 5))
    assert window.read() == b"23456"
    assert window.seek(0, io.SEEK_END) == 5
    window.seek(1)
    assert window.readline() == b"3456"
    assert window.tell() == 5
    window.close()
    assert not file.closed
