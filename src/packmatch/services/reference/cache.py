"""Reference indexes, built once per worker process and shared by its threads.

A reference dataset never changes after its import, so its id and the signature of a config's
field mappings (which columns are read, and how) name an index for good. The cache keeps built
indexes within a memory budget (their estimated size), evicting the least recently used. When
several threads want the same missing index, one loads the rows and builds it while the others wait
for it. A failed build is not cached: a thread that was waiting for it tries again itself.

The budget covers built indexes; a build also holds the dataset's rows until it is done.

A dataset deleted after its index was built stays matchable from the cache: a run works from what
was there when it was accepted, and the API refuses to delete a dataset that running runs use. A
dataset missing when its index is built fails the build for good (`PermanentError`).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from packmatch.domain.models import MatchingConfig, ReferenceRow
from packmatch.engine.index import ColumnKey, ReferenceIndex, signature
from packmatch.errors import PermanentError
from packmatch.logging import get_logger
from packmatch.store import reference_data as datasets
from packmatch.store.db import Database

__all__ = ["DEFAULT_MAX_MB", "ReferenceCache"]

DEFAULT_MAX_MB = 1024

Loader = Callable[[uuid.UUID], Sequence[ReferenceRow]]
Key = tuple[uuid.UUID, tuple[ColumnKey, ...]]

log = get_logger(__name__)


@dataclass
class _Entry:
    future: Future[ReferenceIndex] = field(default_factory=Future)
    nbytes: int = 0  # 0 until built


class ReferenceCache:
    def __init__(self, load: Loader, max_bytes: int) -> None:
        self._load = load
        self._max_bytes = max_bytes
        self._entries: OrderedDict[Key, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def for_database(cls, db: Database, max_mb: int = DEFAULT_MAX_MB) -> ReferenceCache:
        def load(dataset_id: uuid.UUID) -> Sequence[ReferenceRow]:
            with db.transaction() as conn:
                if datasets.get_dataset(conn, None, dataset_id) is None:
                    raise PermanentError(f"reference data ref_{dataset_id} no longer exists")
                return datasets.load_rows(conn, dataset_id)

        return cls(load, max_mb * 2**20)

    def index(self, config: MatchingConfig) -> ReferenceIndex:
        """The index of ``config``'s reference data for its mappings, built if not cached."""
        key = (config.reference_data_id, signature(config.field_mappings))
        while True:
            entry, builds = self._claim(key)
            if builds:
                return self._build(key, entry, config)
            try:
                return entry.future.result()
            except BaseException as error:
                if entry.future.done() and entry.future.exception() is error:
                    continue  # the builder's failure, not this thread's: claim again
                raise

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(entry.nbytes for entry in self._entries.values())

    def _claim(self, key: Key) -> tuple[_Entry, bool]:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                return entry, False
            entry = self._entries[key] = _Entry()
            return entry, True

    def _build(self, key: Key, entry: _Entry, config: MatchingConfig) -> ReferenceIndex:
        started = time.perf_counter()
        try:
            index = ReferenceIndex.build(self._load(key[0]), config.field_mappings)
        except BaseException as error:
            with self._lock:
                if self._entries.get(key) is entry:
                    del self._entries[key]
            entry.future.set_exception(error)
            raise
        with self._lock:
            entry.nbytes = index.nbytes
            evicted = self._evict()
        entry.future.set_result(index)
        log.info(
            "reference_index.built",
            reference_data_id=str(key[0]),
            rows=len(index),
            index_mb=round(index.nbytes / 2**20, 1),
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
            evicted=evicted,
        )
        return index

    def _evict(self) -> int:
        """Drop the least recently used built indexes until the rest fit the budget (lock held)."""
        total = sum(entry.nbytes for entry in self._entries.values())
        evicted = 0
        for key in list(self._entries):
            if total <= self._max_bytes:
                break
            entry = self._entries[key]
            if entry.future.done() or entry.nbytes:
                total -= entry.nbytes
                del self._entries[key]
                evicted += 1
        return evicted
