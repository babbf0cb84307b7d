"""The API app under uvicorn in a background thread, for a process that also drives it (`packmatch demo`).

The socket is bound and listening before the thread starts, so a bad or busy address fails in the
caller (an `OSError` naming it) and the port is known at once (port 0: a free one). `start()`
returns once uvicorn has finished its startup, lifespan included, and accepts connections: it waits
on an event that uvicorn's `startup` sets, never on a guessed delay.
"""

from __future__ import annotations

import signal
import socket
import threading
from types import FrameType, TracebackType

import uvicorn
from starlette.types import ASGIApp

STARTUP_SECONDS = 30.0
WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


class _Server(uvicorn.Server):
    """uvicorn's server with an event set once its startup has ended, started or not."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self.ready.set()


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host:port`; an `OSError` that names the address if it cannot be."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), f"{host}:{port}") from exc


class LocalServer:
    """`with LocalServer(app) as server:` the app answers at `server.url` inside the block.

    uvicorn runs as `packmatch serve` runs it (no log config of its own, no access log, no proxy
    headers trusted); the block's end stops it gracefully and waits for its thread.
    """

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self._sock = bind(host, port)
        config = uvicorn.Config(app, log_config=None, access_log=False, proxy_headers=False)
        self._server = _Server(config)
        self._thread = threading.Thread(target=self._run, name="packmatch-api", daemon=True)

    @property
    def url(self) -> str:
        """`http://host:port` to reach the server from this machine (loopback for a wildcard address)."""
        host, port = self._sock.getsockname()[:2]
        host = WILDCARDS.get(host, host)
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._sock])
        finally:
            self._server.ready.set()  # also when uvicorn failed before its startup

    def start(self) -> LocalServer:
        self._thread.start()
        if not self._server.ready.wait(STARTUP_SECONDS) or not self._server.started:
            self.stop()
            raise RuntimeError(f"the API server at {self.url} did not start")
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.ident is not None:
            self._thread.join()
        self._sock.close()

    def serve_until_signalled(self) -> None:
        """Block until SIGINT or SIGTERM, then stop gracefully as uvicorn does in the foreground and
        let the signal have its usual effect (Ctrl+C: `KeyboardInterrupt`); a second Ctrl+C forces."""
        if threading.current_thread() is not threading.main_thread():  # only it may take signals
            self._thread.join()
            return
        caught: list[int] = []

        def on_signal(sig: int, frame: FrameType | None) -> None:
            caught.append(sig)
            self._server.handle_exit(sig, frame)

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self._thread.join()  # signal handlers run while it waits
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        for number in reversed(caught):
            signal.raise_signal(number)

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
