"""`packmatch serve` stops promptly while a webhook delivery's DNS lookup is stuck (issue 13): the
lookup runs in a daemon thread, abandoned after its timeout, which never holds up the exit.

Ctrl-C (SIGINT) is the exit that shows it: uvicorn re-raises the signal after its graceful
shutdown, and a KeyboardInterrupt ends the interpreter normally, joining every non-daemon thread
(checked: with `daemon=False` in `SystemResolver` this test times out)."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from packmatch.client import Client
from tests.e2e.conftest import invoice
from tests.e2e.test_client import PACKMATCH, world
from tests.e2e.test_processes import free_port, wait_until_ready

pytestmark = pytest.mark.timeout(120)

# Installed with PYTHONPATH into the server process alone: a lookup of `stuck.example` never returns.
STUCK_DNS = textwrap.dedent(
    """
    import os, socket, threading

    _real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host == "stuck.example":
            with open(os.environ["STUCK_DNS_MARKER"], "a") as marker:
                marker.write("stuck\\n")
            threading.Event().wait()
        return _real(host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo
    """
)


def wait_for_file(path: Path, process: subprocess.Popen[bytes], seconds: float = 60) -> None:
    """Poll for a file another process writes: a separate process offers no event to await."""
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, "the server exited"
        assert time.monotonic() < deadline, f"{path.name} was not written in time"
        time.sleep(0.05)


def test_serve_exits_promptly_while_a_webhook_lookup_is_stuck(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(STUCK_DNS)
    marker = tmp_path / "stuck"
    env = {
        **os.environ,
        "PACKMATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'packmatch.db'}",
        "PACKMATCH_BROKER_URL": "memory://",
        "PACKMATCH_LOG_FORMAT": "json",
        "PACKMATCH_WEBHOOK_RESOLVE_TIMEOUT_SECONDS": "0.5",
    }
    subprocess.run([PACKMATCH, "migrate"], env=env, check=True, capture_output=True)
    made = subprocess.run(
        [PACKMATCH, "keys", "create", "--organization", "acme"], env=env, check=True, capture_output=True
    )
    # The stub's directory goes before any PYTHONPATH already set, which may point at the tree under test.
    pythonpath = os.pathsep.join(filter(None, [str(tmp_path / "site"), os.environ.get("PYTHONPATH")]))
    served = {**env, "PYTHONPATH": pythonpath, "STUCK_DNS_MARKER": str(marker)}
    port = free_port()
    with (tmp_path / "serve.log").open("wb") as log:
        command = [PACKMATCH, "serve", "--host", "127.0.0.1", "--port", str(port)]
        process = subprocess.Popen(command, env=served, stdout=log, stderr=log)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_ready(url, process)
        with Client(url, api_key=made.stdout.decode().strip()) as client:
            client.webhooks.create("https://stuck.example/hooks/packmatch")
            client.runs.submit(world(client), {"invoice": [invoice()]}, wait=30)
        wait_for_file(marker, process)  # the delivery's lookup has started and will never end
        process.send_signal(signal.SIGINT)  # Ctrl-C: an exit that joins threads
        started = time.monotonic()
        assert process.wait(timeout=30) == 0  # before: it hung, joining the lookup's thread
        assert time.monotonic() - started < 15
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "delivery" in (tmp_path / "serve.log").read_text()
