"""Every `packmatch` command, given bad input: one `packmatch…` line on stderr, a non-zero exit, no
traceback (issue 13 item 6). The commands run as an operator runs them, as subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PACKMATCH = str(Path(sys.executable).parent / "packmatch")
LONG = "x" * 3000
UNREACHABLE = "http://127.0.0.1:1"

# (argv, extra environment): each names a command and one way to get it wrong.
CASES: dict[str, tuple[list[str], dict[str, str]]] = {
    "keys create --scopes bad": (["keys", "create", "--organization", "acme", "--scopes", "bad"], {}),
    "keys create, empty organization": (["keys", "create", "--organization", " "], {}),
    "keys create, name too long": (["keys", "create", "--organization", "acme", "--name", LONG], {}),
    "keys create, unknown option": (["keys", "create", "--organisation", "acme"], {}),
    "keys list, database unreachable": (
        ["keys", "list"],
        {"PACKMATCH_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"},
    ),
    "keys revoke, not an id": (["keys", "revoke", "not-a-uuid"], {}),
    "keys revoke, unknown id": (["keys", "revoke", "00000000-0000-4000-8000-000000000000"], {}),
    "migrate, not a database URL": (["migrate"], {"PACKMATCH_DATABASE_URL": "bogus"}),
    "a setting that does not parse": (["keys", "list"], {"PACKMATCH_WORKER_THREADS": "many"}),
    "dead-letters, broker unreachable": (["dead-letters"], {"PACKMATCH_BROKER_URL": "redis://127.0.0.1:1/0"}),
    "dead-letters --limit abc": (["dead-letters", "--limit", "abc"], {}),
    "reference-data import, missing file": (
        ["reference-data", "import", "/nonexistent.csv", "--organization", "acme"],
        {},
    ),
    "runs submit, missing file": (["runs", "submit", "/nonexistent.jsonl", "--api-key", "k"], {}),
    "runs submit, no key": (["runs", "submit", "/nonexistent.jsonl"], {}),
    "runs review, no decision": (["runs", "review", "run_x", "--api-key", "k"], {}),
    "runs review, API unreachable": (["runs", "review", "run_x", "--approve", "--url", UNREACHABLE], {}),
    "runs pending-review, API unreachable": (["runs", "pending-review", "--url", UNREACHABLE], {}),
    "prune --older-than soon": (["prune", "--older-than", "soon"], {}),
    "export runs --since yesterday": (["export", "runs", "--since", "yesterday"], {}),
    "export runs, unwritable output": (["export", "runs", "-o", "/nonexistent/dir/runs.jsonl"], {}),
    "export runs, unknown organization": (["export", "runs", "--organization", "nobody"], {}),
    "import runs, missing file": (["import", "runs", "/nonexistent.jsonl"], {}),
    "organizations delete, unknown": (["organizations", "delete", "nobody"], {}),
    "serve --port http": (["serve", "--port", "http"], {}),
    "api --port http": (["api", "--port", "http"], {}),
    "worker --queues bogus": (["worker", "--queues", "bogus"], {}),
    "worker --processes x": (["worker", "--processes", "x"], {}),
    "demo --port x": (["demo", "--port", "x"], {}),
    "secrets reseal, bad secrets key": (["secrets", "reseal"], {"PACKMATCH_SECRETS_KEY": "bad"}),
    "secrets reseal, database unreachable": (
        ["secrets", "reseal"],
        {"PACKMATCH_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"},
    ),
    "doctor counts, database unreachable": (
        ["doctor", "counts"],
        {"PACKMATCH_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"},
    ),
    "no such command": (["frobnicate"], {}),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_on_stderr_and_a_failing_exit(case: str, sqlite_url: str) -> None:
    argv, extra = CASES[case]
    env = {
        **os.environ,
        "PACKMATCH_DATABASE_URL": sqlite_url,
        "PACKMATCH_LOG_FORMAT": "json",
        "PACKMATCH_API_KEY": "pm_test",
        **extra,
    }
    if case == "runs submit, no key":
        env.pop("PACKMATCH_API_KEY")
    done = subprocess.run([PACKMATCH, *argv], env=env, capture_output=True, text=True, timeout=60)
    said = [line for line in done.stderr.splitlines() if not line.startswith("{")]  # JSON: log lines
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert len(said) == 1, done.stderr
    assert said[0].startswith("packmatch")
    assert done.stdout == ""


def test_a_setting_checked_across_fields_is_named_by_its_message(sqlite_url: str) -> None:
    """A model-level settings check has no field of its own: the line says `invalid settings` and names
    the variables in its message, never a bare `PACKMATCH_`."""
    env = {**os.environ, "PACKMATCH_DATABASE_URL": sqlite_url, "PACKMATCH_SECRETS_KEY": "bad"}
    argv = [PACKMATCH, "secrets", "reseal"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert done.stderr.startswith("packmatch: invalid settings: PACKMATCH_SECRETS_KEY"), done.stderr
    assert "PACKMATCH_:" not in done.stderr
