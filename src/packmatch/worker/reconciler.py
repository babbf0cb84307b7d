"""The reconciler loop: one active at a time across all processes, behind a leader lock."""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from packmatch.logging import get_logger
from packmatch.services.reconciler import Reconciler

log = get_logger(__name__)

LOCK_KEY = zlib.crc32(b"packmatch.reconciler")


class LeaderLock(Protocol):
    def acquire(self) -> bool: ...

    def release(self) -> None: ...


class LocalLock:
    """For SQLite, which serves one process (`packmatch serve`): that process always leads."""

    def acquire(self) -> bool:
        return True

    def release(self) -> None:
        return None


class AdvisoryLock:
    """A PostgreSQL session advisory lock held on a dedicated connection.

    If the leader dies, its connection closes and the lock passes to the next process that asks.
    """

    def __init__(self, engine: Engine, key: int = LOCK_KEY) -> None:
        self.engine = engine
        self.key = key
        self.conn: Connection | None = None

    def acquire(self) -> bool:
        if self.conn is not None:
            try:
                self.conn.execute(sa.text("SELECT 1"))
                return True
            except sa.exc.DBAPIError:
                self._drop()
        conn = self.engine.connect()
        try:
            held = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar()
            conn.commit()
        except sa.exc.DBAPIError:
            conn.close()
            return False
        if held:
            self.conn = conn
            log.info("reconciler.leading")
            return True
        conn.close()
        return False

    def _drop(self) -> None:
        if self.conn is not None:
            try:
                self.conn.invalidate()
                self.conn.close()
            finally:
                self.conn = None

    def release(self) -> None:
        if self.conn is None:
            return
        try:
            self.conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            self.conn.commit()
            self.conn.close()
        except sa.exc.DBAPIError:
            self._drop()
        self.conn = None


def leader_lock(engine: Engine) -> LeaderLock:
    return AdvisoryLock(engine) if engine.dialect.name == "postgresql" else LocalLock()


class ReconcilerThread(threading.Thread):
    def __init__(self, reconciler: Callable[[], Reconciler], lock: LeaderLock, interval: float) -> None:
        super().__init__(name="packmatch-reconciler", daemon=True)
        self.reconciler = reconciler
        self.lock = lock
        self.interval = interval
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.wait(self.interval):
            self.tick()
        self.lock.release()

    def tick(self) -> None:
        try:
            if self.lock.acquire():
                self.reconciler().reconcile_once()
        except Exception:
            log.exception("reconciler.failed")

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self.is_alive():
            self.join(timeout)
