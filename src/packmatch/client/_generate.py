"""Writes `aresources.py` from `resources.py`, as httpx's `unasync` does.

Run `python -m packmatch.client._generate` after editing `resources.py`.
One source for both clients; a test fails when the generated file is out of date.
"""

from __future__ import annotations

import re
from pathlib import Path

HERE = Path(__file__).parent
HEADER = '"""GENERATED from resources.py by `python -m packmatch.client._generate`: do not edit.\n\n'

REPLACEMENTS = [
    ("import time\n", "import asyncio\nimport time\n"),
    (
        "from collections.abc import Callable, Iterator,",
        "from collections.abc import AsyncIterator, Callable,",
    ),
    ("Iterator[", "AsyncIterator["),
    ("    def send(self, call: Call[T]) -> T: ...", "    async def send(self, call: Call[T]) -> T: ..."),
    ("def paged(", "async def paged("),
    ("        page = self._s.send(", "        page = await self._s.send("),
    ("        page = sender.send(", "        page = await sender.send("),
    ("        yield from page.data", "        for item in page.data:\n            yield item"),
    ("return self._s.send(", "return await self._s.send("),
    ("run = self._s.send(", "run = await self._s.send("),
    ("return self.wait_final(", "return await self.wait_final("),
    ("(run := self.get(", "(run := await self.get("),
    ("(found := self.get(", "(found := await self.get("),
    ("time.sleep(", "await asyncio.sleep("),
    ("The resources of the synchronous `Client`", "The resources of the asynchronous `AsyncClient`"),
]


def generate(source: str) -> str:
    text = source
    for old, new in REPLACEMENTS:
        text = text.replace(old, new)
    # Methods that send become coroutines; those that return a paging iterator stay plain functions.
    text = re.sub(
        r"(\n    )def (\w+)\(((?:(?!\n    def ).)*?await )", r"\1async def \2(\3", text, flags=re.DOTALL
    )
    return HEADER + text.removeprefix('"""')


def main() -> None:
    (HERE / "aresources.py").write_text(generate((HERE / "resources.py").read_text()))


if __name__ == "__main__":
    main()
