"""The webhook sender: one POST over the standard library's `http.client`.

Chosen over httpx and urllib (docs/decisions/0006): it connects to exactly the address the SSRF
guard checked (the name is not resolved again), never follows redirects, ignores proxy variables,
and adds no dependency. The whole exchange has one deadline: a watchdog shuts the socket down when
it passes, so a receiver that trickles bytes cannot hold a worker thread longer.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import socket
import ssl
import threading
import time
from collections.abc import Mapping

from packmatch.services.ports import Destination, SendResult


def _describe(exc: BaseException) -> str:
    """A delivery's `last_error`, shown to clients: stable words (OpenSSL's reason, the errno's
    name), never a Python class name."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not accepted ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error ({exc.reason})" if exc.reason else "TLS error"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionError):
        return "no valid HTTP response (connection closed)"
    if isinstance(exc, http.client.HTTPException):
        return "no valid HTTP response (malformed)"
    code = errno.errorcode.get(exc.errno) if isinstance(exc, OSError) and exc.errno else None
    return f"network error ({code})" if code else "network error"


class HttpSender:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.tls = ssl.create_default_context()

    def post(self, destination: Destination, headers: Mapping[str, str], body: bytes) -> SendResult:
        deadline = time.monotonic() + self.timeout
        error = "no address to connect to"
        for address in destination.addresses:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                sock = socket.create_connection((address, destination.port), timeout=remaining)
            except TimeoutError:
                error = self._timed_out()
                continue
            except OSError as exc:
                error = _describe(exc)
                continue
            return self._exchange(sock, destination, headers, body, deadline)
        return SendResult(None, error if time.monotonic() < deadline else self._timed_out())

    def _timed_out(self) -> str:
        return f"timed out after {self.timeout:g} s"

    def _exchange(
        self,
        sock: socket.socket,
        destination: Destination,
        headers: Mapping[str, str],
        body: bytes,
        deadline: float,
    ) -> SendResult:
        expired = threading.Event()

        def cut() -> None:
            expired.set()
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

        watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), cut)
        watchdog.daemon = True
        watchdog.start()
        connection = http.client.HTTPConnection(destination.host, destination.port)
        try:
            if destination.scheme == "https":
                sock = self.tls.wrap_socket(sock, server_hostname=destination.host)
            connection.sock = sock
            connection.request(
                "POST", destination.target, body=body, headers={**headers, "Host": destination.host_header}
            )
            response = connection.getresponse()
            return SendResult(response.status)
        except Exception as exc:
            return SendResult(None, self._timed_out() if expired.is_set() else _describe(exc))
        finally:
            watchdog.cancel()
            connection.close()
            sock.close()
