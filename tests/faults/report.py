"""Run the fault scenarios and print (or write into docs/reliability.md) the table of their figures.

    .venv/bin/python -m tests.faults.report                 # test timings (as in CI), print the table
    .venv/bin/python -m tests.faults.report --write         # ... and replace it in docs/reliability.md
    .venv/bin/python -m tests.faults.report --production    # the product's default timings instead

Needs PostgreSQL and Redis like the rest of the suite (PACKMATCH_TEST_POSTGRES_URL / _REDIS_URL).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.faults.checks import REPORT_ENV
from tests.faults.processes import REPO_ROOT, TIMINGS_ENV

DOC = REPO_ROOT / "docs" / "reliability.md"
HEADER = (
    "| scenario | runs submitted | finalized | lost | stuck | duplicated | time to recover (s) "
    "| running at fault | re-driven | dead-lettered |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def render(rows: list[dict[str, Any]]) -> str:
    lines = [HEADER]
    for row in sorted(rows, key=lambda r: str(r["scenario"])):
        recover = row["recover_s"]
        shown = "did not recover" if recover is None or math.isnan(recover) else f"{recover:.1f}"
        cells = [row["scenario"], row["submitted"], row["finalized"], row["lost"], row["stuck"]]
        cells += [row["duplicated"], shown, row["running_at_fault"], row["redriven"], row["dead_lettered"]]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def replace_block(text: str, name: str, table: str) -> str:
    begin, end = f"<!-- faults-table:{name} -->", f"<!-- /faults-table:{name} -->"
    head, found, rest = text.partition(begin)
    _, found_end, tail = rest.partition(end)
    if not found or not found_end:
        raise SystemExit(f"{DOC} has no {begin} … {end} block")
    return f"{head}{begin}\n{table}\n{end}{tail}"


def run_scenarios(production: bool, pytest_args: list[str]) -> tuple[int, list[dict[str, Any]]]:
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "figures.jsonl"
        env = {**os.environ, REPORT_ENV: str(results), TIMINGS_ENV: "production" if production else "test"}
        command = [sys.executable, "-m", "pytest", "-q", "tests/faults", *pytest_args]
        code = subprocess.run(command, cwd=REPO_ROOT, env=env, check=False).returncode
        lines = results.read_text().splitlines() if results.exists() else []
    return code, [json.loads(line) for line in lines]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--write", action="store_true", help="replace the table in docs/reliability.md")
    parser.add_argument("--production", action="store_true", help="use the product's default timings")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)
    code, rows = run_scenarios(args.production, args.pytest_args)
    table = render(rows)
    print(table)
    if args.write and rows:
        name = "production" if args.production else "test"
        DOC.write_text(replace_block(DOC.read_text(), name, table))
        print(f"wrote the {name}-timings table into {DOC.relative_to(REPO_ROOT)}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
