"""`packmatch prune`, `export runs`, `import runs` (retention and the archive) and `doctor counts`."""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from packmatch.logging import get_logger
from packmatch.settings import Settings

log = get_logger("packmatch.cli")

_AGE = re.compile(r"^\s*(\d{1,6})\s*([dhmw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_age(text: str) -> timedelta:
    """`90d`, `12h`, `30m` or `2w`."""
    found = _AGE.match(text)
    if found is None:
        raise argparse.ArgumentTypeError(f"'{text}' is not an age such as 90d, 12h, 30m or 2w")
    return timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})


def positive_int(text: str) -> int:
    """A whole number ≥ 1 (argparse's `int` takes 0, negatives and ten thousand digits)."""
    if not re.fullmatch(r"\s*\d{1,9}\s*", text) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number from 1 to 999,999,999")
    return int(text)


def parse_time(text: str) -> datetime:
    """An ISO 8601 date (midnight UTC) or date-time (UTC unless it names its zone)."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        at = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not an ISO 8601 date or date-time") from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _database(settings: Settings) -> Any:
    from packmatch.store.db import Database, migrate

    migrate(settings.database_url)
    return Database.from_url(settings.database_url)


def _warn(message: str) -> None:
    print(f"packmatch: warning: {message}", file=sys.stderr)


def _refuse(message: str) -> int:
    print(f"packmatch: {message}", file=sys.stderr)
    return 1


def _prune(args: argparse.Namespace, settings: Settings) -> int:
    from packmatch.bootstrap import retention_policy
    from packmatch.services.history.retention import Retention

    db = _database(settings)
    try:
        policy = retention_policy(settings)
        if args.max_rate is not None:
            policy = dataclasses.replace(policy, max_runs_per_minute=args.max_rate)
        retention = Retention(db, policy)
        for name in retention.unknown_organizations():
            _warn(f"no organization named '{name}' (PACKMATCH_RETENTION_DAYS_BY_ORGANIZATION)")
        if args.older_than is None and retention.policy.keeps_everything:
            print("nothing to prune: PACKMATCH_RETENTION_DAYS is not set (keep all); pass --older-than")
            return 0
        cutoffs = retention.cutoffs(args.older_than, args.organization)
        if args.organization is not None and not cutoffs:
            return _refuse(f"no organization named '{args.organization}' with a retention period")
        if args.dry_run:
            for planned in retention.plan(cutoffs):
                before = planned.cutoff.created_before.isoformat(timespec="seconds")
                name = planned.cutoff.organization
                print(f"{name}: {planned.runs} run(s) created before {before} would go")
            return 0
        counts, _ = retention.prune(cutoffs)
    finally:
        db.dispose()
    print(
        f"pruned {counts.runs} run(s), {counts.matching_runs} matching run(s), {counts.results} result(s), "
        f"{counts.deliveries} webhook deliver(ies), {counts.reviews} review decision(s), "
        f"{counts.evaluations} evaluation(s)"
    )
    return 0


def _organization_id(db: Any, name: str | None) -> Any:
    from packmatch.store import retention as store

    if name is None:
        return None
    with db.transaction() as conn:
        return store.organization_ids(conn).get(name, False)


def _export_runs(args: argparse.Namespace, settings: Settings) -> int:
    import gzip

    from packmatch.services.history.archive import export_lines

    db = _database(settings)
    try:
        organization_id = _organization_id(db, args.organization)
        if organization_id is False:
            return _refuse(f"no organization named '{args.organization}'")
        out = sys.stdout.buffer if args.output in (None, "-") else open(args.output, "wb")  # noqa: SIM115
        sink = gzip.GzipFile(fileobj=out, mode="wb") if args.gzip else out
        runs = 0
        try:
            for line in export_lines(db, organization_id=organization_id, since=args.since, until=args.until):
                sink.write(line)
                runs += 1
        finally:
            if sink is not out:
                sink.close()
            if out is not sys.stdout.buffer:
                out.close()
            else:
                out.flush()
    finally:
        db.dispose()
    log.info("runs.exported", runs=runs)
    return 0


def _import_runs(args: argparse.Namespace, settings: Settings) -> int:
    from packmatch.services.history.archive import ImportFailed, import_lines, open_maybe_gzip

    def read() -> Iterator[bytes]:  # once per pass: the file is read twice
        with open(args.file, "rb") as raw:
            yield from open_maybe_gzip(raw)

    db = _database(settings)
    try:
        report = import_lines(db, read)
    except OSError as exc:
        return _refuse(f"cannot read {args.file}: {exc.strerror or exc}")
    except ImportFailed as exc:
        return _refuse(f"cannot import {args.file}: {exc}")
    finally:
        db.dispose()
    print(f"imported {report.imported} run(s); {report.already_present} already present")
    return 0


_SHOWN_AS = {"package_config_id": ("package_config", "pkg_"), "webhook_id": ("webhook", "whk_")}


def _drift_line(drift: Any, organizations: dict[Any, str]) -> str:
    parts = [drift.counts]
    for name, value in drift.group.items():
        if name == "organization_id":
            parts.append(f"organization={organizations.get(value, value)}")
        elif name in _SHOWN_AS:
            label, prefix = _SHOWN_AS[name]
            parts.append(f"{label}={prefix}{value}")
        else:
            parts.append(f"{name}={value if value is not None else 'none'}")
    return " ".join(parts) + f": counted {drift.counted}, rows {drift.actual}"


def _doctor_counts(args: argparse.Namespace, settings: Settings) -> int:
    from packmatch.services.history.counts import CountsDoctor, fold_counts
    from packmatch.store import retention as store

    db = _database(settings)
    try:
        checked = CountsDoctor(db).check(fix=args.fix)
        with db.transaction() as conn:
            organizations = {ident: name for name, ident in store.organization_ids(conn).items()}
        if checked.fixed:
            fold_counts(db)
    finally:
        db.dispose()
    for drift in checked.drifts:
        print(_drift_line(drift, organizations))
    if not checked.drifts:
        print("counts: no drift")
        return 0
    if checked.fixed:
        print(f"counts: fixed {len(checked.drifts)} group(s)")
        return 0
    return _refuse(
        f"{len(checked.drifts)} count group(s) drift from their rows; `doctor counts --fix` repairs"
    )


def add_history_commands(commands: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    """Register the commands on the `packmatch` parser (`add` makes a handled top-level command)."""
    prune = add("prune", _prune, "delete final runs past retention, with everything they own")
    prune.add_argument(
        "--older-than",
        type=parse_age,
        default=None,
        help="e.g. 90d: replaces the settings' ages (an organization kept forever only with --organization)",
    )
    prune.add_argument("--organization", default=None, help="only this organization")
    prune.add_argument("--dry-run", action="store_true", help="count what would go, delete nothing")
    prune.add_argument(
        "--max-rate",
        type=positive_int,
        default=None,
        metavar="RUNS_PER_MINUTE",
        help="pause between batches to delete no faster (default: PACKMATCH_RETENTION_MAX_RUNS_PER_MINUTE)",
    )
    export = commands.add_parser("export", help="export history as JSON lines")
    exports = export.add_subparsers(dest="export", required=True)
    runs = exports.add_parser(
        "runs", help="complete final runs (slots, results, evidence, reviews, deliveries), oldest first"
    )
    runs.add_argument("--since", type=parse_time, default=None, help="created at or after (ISO 8601)")
    runs.add_argument("--until", type=parse_time, default=None, help="created before (ISO 8601)")
    runs.add_argument("--organization", default=None)
    runs.add_argument("--gzip", action="store_true")
    runs.add_argument("--output", "-o", default=None, help="a file (default: stdout)")
    runs.set_defaults(handler=_export_runs)
    imported = commands.add_parser("import", help="import history exported by `packmatch export`")
    imports = imported.add_subparsers(dest="import", required=True)
    into = imports.add_parser(
        "runs", help="runs from `packmatch export runs` (plain or gzip): the whole file or nothing"
    )
    into.add_argument("file", metavar="FILE.jsonl")
    into.set_defaults(handler=_import_runs)
    doctor = commands.add_parser("doctor", help="check what the database keeps beside the rows")
    checks = doctor.add_subparsers(dest="doctor", required=True)
    counts = checks.add_parser("counts", help="recount list totals from the rows; report (or --fix) drift")
    counts.add_argument("--fix", action="store_true", help="correct the counts that drift")
    counts.set_defaults(handler=_doctor_counts)
