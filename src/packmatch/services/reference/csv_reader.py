"""Reading a CSV file of reference data one record at a time.

The format: UTF-8 (a leading byte-order mark is dropped), comma-separated, RFC 4180 quoting (a
quoted field may hold commas, `""` and line breaks), a header row of column names first. Blank
lines are skipped. The file is read with bounded `readline` calls, so memory holds one record
whatever the file's size.

Problems (a line that is not UTF-8, a wrong number of fields, broken quoting, bad column names) go
to a `report(line, message)` callback and reading goes on, so that one upload can name many of
them; the caller decides when it has heard enough. `line` is the physical line a record starts on
(1 is the header), or None for the file as a whole.

Two readers share those rules. `CsvRecords` is the exact one: a record at a time, with its line,
reporting every problem. `CsvBatches` is the fast one for a regular file (the usual case): it
decodes 256 KiB blocks at once and lets the C `csv` module split them, yielding thousands of
records per call, and raises `IrregularCsv` at the first thing `CsvRecords` would report, so that
the caller can read the file again with `CsvRecords` for the problems and their lines.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import re
from collections.abc import Callable, Iterator
from itertools import chain, islice
from typing import IO, Any

MAX_LINE_BYTES = 1024 * 1024
MAX_COLUMNS = 1000
MAX_COLUMN_NAME = 200
BLOCK_BYTES = 256 * 1024  # at most MAX_LINE_BYTES: a line inside one block cannot be too long
BATCH_BYTES = 512 * 1024  # about this much CSV text per batch of records
MAX_BATCH_ROWS = 10_000

Report = Callable[[int | None, str], None]

_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")


def cell_value(text: str) -> Any:
    """A cell as the JSON scalar it spells: null when blank; `true`/`false` in any case; a number
    when written the way JSON writes numbers (`42`, `-3.5`, `1e6`; not `007`, `+1`, `1,000`, `NaN`);
    else the text unchanged. Spaces around a null, boolean or number are ignored."""
    stripped = text.strip()
    if not stripped:
        return None
    lowered = stripped.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    match = _JSON_NUMBER.fullmatch(stripped)
    if match is None:
        return text
    try:
        number: int | float = int(stripped) if match.group(1, 2) == (None, None) else float(stripped)
    except ValueError:  # more digits than int() converts (sys.int_info.default_max_str_digits)
        return text
    # An int is finite however long (and math.isfinite would overflow converting it to a float).
    return text if isinstance(number, float) and not math.isfinite(number) else number


class _TooLong(Exception):
    """A line over MAX_LINE_BYTES: reading stops, since no later record boundary can be trusted."""


class _Lines:
    """The file's physical lines, decoded; counts them, reports bad UTF-8 and stops at a huge line."""

    def __init__(self, file: IO[bytes], report: Report) -> None:
        self._file = file
        self._report = report
        self.number = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        raw = self._file.readline(MAX_LINE_BYTES + 1)
        if not raw:
            raise StopIteration
        self.number += 1
        if len(raw) > MAX_LINE_BYTES:
            self._report(self.number, f"longer than {MAX_LINE_BYTES} bytes; reading stopped here")
            raise _TooLong
        if self.number == 1:
            raw = raw.removeprefix(codecs.BOM_UTF8)
        if b"\x00" in raw:
            # PostgreSQL text cannot hold NUL; report it like any other bad byte.
            self._report(self.number, f"contains a NUL byte at position {raw.index(0) + 1}")
            raw = raw.replace(b"\x00", b"")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            byte = raw[exc.start]
            self._report(self.number, f"not valid UTF-8 (byte 0x{byte:02x} at position {exc.start + 1})")
            return raw.decode("utf-8", errors="replace")


def header_problems(names: list[str]) -> Iterator[str]:
    if not names:
        yield "the header row is blank; the first line must name the columns"
    if len(names) > MAX_COLUMNS:
        yield f"{len(names)} columns; at most {MAX_COLUMNS} are allowed"
    first: dict[str, int] = {}
    for number, name in enumerate(names, start=1):
        if not name:
            yield f"column {number} has no name"
        elif len(name) > MAX_COLUMN_NAME:
            yield f"column {number}'s name is longer than {MAX_COLUMN_NAME} characters"
        elif name in first:
            yield f"column {number} '{name}' has the same name as column {first[name]}"
        first.setdefault(name, number)


class CsvRecords:
    """A CSV file's header (`header`, names stripped of spaces) and then, iterated, its records as
    `(line, cells)`. Records with problems are reported and left out."""

    def __init__(self, file: IO[bytes], report: Report) -> None:
        self._report = report
        self._lines = _Lines(file, report)
        self._reader = csv.reader(self._lines, strict=True)
        self.header = self._read_header()

    def _read_header(self) -> list[str]:
        try:
            names = [cell.strip() for cell in next(self._reader)]
        except StopIteration:
            self._report(None, "the file is empty; its first line must be a header row naming the columns")
            return []
        except csv.Error as exc:
            self._report(1, f"header row: {exc}")
            return []
        except _TooLong:
            return []
        for problem in header_problems(names):
            self._report(1, problem)
        return names

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        width = len(self.header)
        if not width:
            return
        try:
            while True:
                start = self._lines.number + 1
                try:
                    cells = next(self._reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    self._report(start, str(exc))
                    continue
                if not cells:
                    continue
                if len(cells) != width:
                    self._report(start, f"expected {width} fields, got {len(cells)}")
                    continue
                yield start, cells
        except _TooLong:
            return


class IrregularCsv(Exception):
    """`CsvBatches` met something that `CsvRecords` reports: read the file again with that."""


def _blocks(file: IO[bytes]) -> Iterator[io.StringIO]:
    """The file in blocks of whole lines, each decoded at once; IrregularCsv at a NUL byte, bad
    UTF-8 or a line longer than MAX_LINE_BYTES (as `_Lines` reports them, line by line)."""
    first = True
    while True:
        block = file.read(BLOCK_BYTES)
        if not block:
            return
        if not block.endswith(b"\n"):
            rest = file.readline(MAX_LINE_BYTES + 1)
            if len(block) - (block.rfind(b"\n") + 1) + len(rest) > MAX_LINE_BYTES:
                raise IrregularCsv
            block += rest
        if first:
            block, first = block.removeprefix(codecs.BOM_UTF8), False
        if b"\x00" in block:
            raise IrregularCsv
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError:
            raise IrregularCsv from None
        # newline="\n": lines end at "\n" only and keep it, exactly like `_Lines`' readline.
        yield io.StringIO(text, newline="\n")


class CsvBatches:
    """A regular CSV file's `header` (names stripped of spaces), then, iterated, its records in
    batches (lists of cell lists, blank lines left out). Raises IrregularCsv instead of reporting."""

    def __init__(self, file: IO[bytes]) -> None:
        self._reader = csv.reader(chain.from_iterable(_blocks(file)), strict=True)
        self._size = 1000
        try:
            names = [cell.strip() for cell in next(self._reader)]
        except (StopIteration, csv.Error):
            raise IrregularCsv from None
        if next(header_problems(names), None) is not None:
            raise IrregularCsv
        self.header = names

    def __iter__(self) -> Iterator[list[list[str]]]:
        widths = {len(self.header)}
        while True:
            try:
                records = list(islice(self._reader, self._size))
            except csv.Error:
                raise IrregularCsv from None
            if not records:
                return
            batch = list(filter(None, records))
            if not batch:
                continue
            if set(map(len, batch)) != widths:
                raise IrregularCsv
            self._size = _batch_size(batch)
            yield batch


def _batch_size(batch: list[list[str]]) -> int:
    """Rows for about BATCH_BYTES of text, judged by a sample: a batch of wide rows stays small."""
    sample = batch[:20]
    row_bytes = max(1, sum(sum(map(len, cells)) + len(cells) for cells in sample) // len(sample))
    return max(100, min(MAX_BATCH_ROWS, BATCH_BYTES // row_bytes))
