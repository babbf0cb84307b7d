"""A real local HTTP receiver for webhook tests: records every request and answers from a script.

`answers` is consumed one per request (an int status, or `HOLD`: keep the request open, without an
answer, until `release()`); when it runs out, `default` answers. Tests wait on requests arriving
(`wait_for`), never on bare sleeps.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOLD = "hold"


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def delivery_id(self) -> str:
        return self.headers["x-packmatch-delivery-id"]


class Receiver:
    def __init__(self, answers: list[int | str] | None = None, default: int = 200) -> None:
        self.answers = list(answers or [])
        self.default = default
        self.requests: list[Received] = []
        self._changed = threading.Condition()
        self._released = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/packmatch"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                answer = receiver._record(Received(self.path, headers, body))
                if answer == HOLD:
                    receiver._released.wait(120)
                    return
                self.send_response(int(answer))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        return Handler

    def _record(self, request: Received) -> int | str:
        with self._changed:
            self.requests.append(request)
            answer = self.answers.pop(0) if self.answers else self.default
            self._changed.notify_all()
        return answer

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """Block until `count` requests have arrived; fails after `timeout` seconds."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.requests) >= count, timeout):
                raise AssertionError(f"the receiver got {len(self.requests)} requests, not {count}")
            return list(self.requests)

    def release(self) -> None:
        self._released.set()

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def receiving(answers: list[int | str] | None = None, default: int = 200) -> Iterator[Receiver]:
    receiver = Receiver(answers, default).start()
    try:
        yield receiver
    finally:
        receiver.stop()
