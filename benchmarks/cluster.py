"""Processes for the pipeline benchmark: a private Redis, `packmatch api` and `packmatch worker`, and
the CPU each of them (and the PostgreSQL backends of the benchmark's database) has used.

Redis runs privately (a `redis-server` on a free port) so that its CPU is the benchmark's alone.
PostgreSQL is the machine's server: the benchmark gets a database of its own, and its CPU is read
from the server processes serving that database (`pg_stat_activity`); the server's shared
processes (WAL writer, checkpointer) are reported apart, since other work on the machine uses
them too.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import sqlalchemy as sa

PACKMATCH = str(Path(sys.executable).parent / "packmatch")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, check: Callable[[], bool], seconds: float = 60.0) -> None:
    """Poll `check` (other processes offer no event to await) until it holds, or fail."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes so far (processes gone meanwhile count 0)."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
    return total


def _level(line: str) -> object:
    try:
        document = json.loads(line)
    except ValueError:
        return None
    return document.get("level") if isinstance(document, dict) else None


def tree(pid: int) -> list[int]:
    """A process and all its descendants (a `packmatch worker` forks its worker processes)."""
    try:
        root = psutil.Process(pid)
        return [pid, *(child.pid for child in root.children(recursive=True))]
    except psutil.NoSuchProcess:
        return []


@contextlib.contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    """A new database on the PostgreSQL server, dropped afterwards."""
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    name = f"packmatch_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class PostgresCpu:
    """CPU of the server processes serving one database, and of the server's shared processes."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url, poolclass=sa.NullPool)
        self.database = sa.make_url(url).database

    def backends(self) -> list[int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT pid FROM pg_stat_activity WHERE datname = :db AND pid <> pg_backend_pid()"),
                {"db": self.database},
            )
            return [int(pid) for pid in rows.scalars()]

    def shared(self) -> list[int]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT pid FROM pg_stat_activity WHERE datname IS NULL"))
            return [int(pid) for pid in rows.scalars()]


@dataclass
class Cluster:
    """Redis, the API and the workers of one benchmark, each in a process group of its own."""

    database_url: str
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    base: str = ""

    def start_redis(self) -> str:
        server = shutil.which("redis-server")
        if server is None:
            raise RuntimeError("the pipeline benchmark needs redis-server on PATH")
        port = free_port()
        args = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self._spawn("redis", args, os.environ.copy())
        url = f"redis://127.0.0.1:{port}/0"
        wait_for("redis", lambda: _connects(port))
        return url

    def start(self, broker_url: str, *, worker_processes: int, worker_threads: int) -> None:
        self.env = {
            **os.environ,
            "PACKMATCH_DATABASE_URL": self.database_url,
            "PACKMATCH_BROKER_URL": broker_url,
            "PACKMATCH_LOG_FORMAT": "json",
            # Counted as in production (one Redis round trip a request), never reached.
            "PACKMATCH_RATE_LIMIT_PER_MINUTE": "100000000",
            "PACKMATCH_WORKER_METRICS_PORT": str(free_port()),
        }
        port = free_port()
        self._spawn("api", [PACKMATCH, "api", "--port", str(port)], self.env)
        self.base = f"http://127.0.0.1:{port}"
        wait_for("the API", self._api_ready)
        args = ["worker", "--processes", str(worker_processes), "--threads", str(worker_threads)]
        self._spawn("worker", [PACKMATCH, *args], self.env)
        wait_for("the workers", lambda: self._log("worker").count('"worker.started"') >= worker_processes)

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        with (self.workdir / f"{name}.log").open("wb") as out:
            self.processes[name] = subprocess.Popen(
                args, env=env, cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def _log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    def _api_ready(self) -> bool:
        if self.processes["api"].poll() is not None:
            raise RuntimeError(f"the API exited:\n{self._log('api')[-2000:]}")
        try:
            with urllib.request.urlopen(self.base + "/readyz", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, ConnectionError):
            return False

    def pids(self, name: str) -> list[int]:
        return tree(self.processes[name].pid)

    def errors(self) -> list[str]:
        """Log lines at error level, from every packmatch process (compact JSON lines or spaced)."""
        found = []
        for name in ("api", "worker"):
            found += [line for line in self._log(name).splitlines() if _level(line) == "error"]
        return found

    def stop(self) -> None:
        for popen in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(popen.pid, signal.SIGTERM)
        for popen in self.processes.values():
            try:
                popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(popen.pid, signal.SIGKILL)


@contextlib.contextmanager
def profiled(cluster: Cluster, into: Path | None, seconds: float) -> Iterator[None]:
    """py-spy (if `into` is given) every API and worker process while the block runs."""
    if into is None:
        yield
        return
    into.mkdir(parents=True, exist_ok=True)
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
    spies = []
    for name in ("api", "worker"):
        for pid in cluster.pids(name):
            args = [
                spy,
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(int(seconds)),
                "--format",
                "raw",
                "--gil",
            ]
            args += ["--output", str(into / f"{name}-{pid}.txt"), "--nonblocking"]
            spies.append(subprocess.Popen(args, stderr=subprocess.DEVNULL))
    try:
        yield
    finally:
        for process in spies:
            process.wait(timeout=seconds + 30)


def _connects(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
