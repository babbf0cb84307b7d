"""`packmatch` command line: the composition root (settings → logging → runtime → app / worker)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from packmatch.history_cli import add_history_commands
from packmatch.logging import configure_logging, get_logger
from packmatch.settings import Settings, load_settings

if TYPE_CHECKING:
    import uuid

    from packmatch.domain.models import ReferenceDataset
    from packmatch.services.accounts import Accounts

log = get_logger("packmatch.cli")


# uvicorn.run(proxy_headers=False): uvicorn would otherwise trust X-Forwarded-For from 127.0.0.1;
# the client address comes from PACKMATCH_TRUSTED_PROXIES alone (docs/operations.md, rate limits).


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from packmatch.api.app import create_app
    from packmatch.bootstrap import build_runtime
    from packmatch.worker.runner import InProcessWorker

    runtime = build_runtime(settings, migrate_first=True)
    app = create_app(runtime.services, settings, metrics=runtime.api_metrics())
    reconciler = runtime.reconciler_thread()
    reconciler.start()
    with InProcessWorker(runtime.broker, threads=settings.worker_threads):
        uvicorn.run(
            app, host=args.host, port=args.port, log_config=None, access_log=False, proxy_headers=False
        )
    reconciler.stop()
    runtime.close()
    return 0


def _api(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from packmatch.api.app import create_app
    from packmatch.bootstrap import build_runtime

    runtime = build_runtime(settings)
    if settings.broker_url.startswith("memory://"):
        log.warning("api.memory_broker", hint="no worker can see this broker; use `packmatch serve`")
    app = create_app(runtime.services, settings, metrics=runtime.api_metrics())
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False, proxy_headers=False)
    runtime.close()
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    import os

    from packmatch.worker.runner import run_worker_processes

    if args.metrics_port is not None:  # the worker processes read their settings themselves
        os.environ["PACKMATCH_WORKER_METRICS_PORT"] = str(args.metrics_port)
    metrics = (settings.worker_metrics_port if args.metrics_port is None else args.metrics_port) > 0
    queues = {
        "all": (),
        "slots": (settings.queue_name,),
        "webhooks": (settings.webhook_queue,),
    }[args.queues]
    return run_worker_processes(
        args.processes or settings.worker_processes,
        args.threads or settings.worker_threads,
        metrics=metrics,
        queues=queues,
    )


def _migrate(_: argparse.Namespace, settings: Settings) -> int:
    from packmatch.store.db import migrate

    migrate(settings.database_url)
    log.info("db.migrated")
    return 0


@contextlib.contextmanager
def _accounts(settings: Settings) -> Iterator[Accounts]:
    """The accounts service on a migrated database; its pool is closed when the command ends."""
    from packmatch.services.accounts import Accounts
    from packmatch.store.db import Database, migrate

    migrate(settings.database_url)
    db = Database.from_url(settings.database_url)
    try:
        yield Accounts(db)
    finally:
        db.dispose()


def _keys_create(args: argparse.Namespace, settings: Settings) -> int:
    from packmatch.services.accounts import parse_scopes

    scopes = parse_scopes(args.scopes)
    with _accounts(settings) as accounts:
        key = accounts.create_key(args.organization, scopes, args.name)
    print(key)
    return 0


def _keys_list(args: argparse.Namespace, settings: Settings) -> int:
    with _accounts(settings) as accounts:
        keys = accounts.list_keys(args.organization)
    for org, record in keys:
        state = "revoked" if record.revoked_at else "active"
        scopes = ",".join(sorted(record.scopes))
        name = f"  {record.name}" if record.name else ""
        print(f"{record.id}  {org}  {record.prefix}…  {scopes}  {state}{name}")
    return 0


def _secrets_reseal(args: argparse.Namespace, settings: Settings) -> int:
    """Seal every webhook secret under PACKMATCH_SECRETS_KEY, so the old keys can be dropped."""
    from packmatch.bootstrap import build_runtime
    from packmatch.sealing import SecretUnreadable

    runtime = build_runtime(settings, migrate_first=True)
    try:
        count = runtime.services.webhooks.reseal_all()
    except SecretUnreadable as exc:
        return _refuse(f"{exc}: list the key that sealed it in PACKMATCH_SECRETS_OLD_KEYS")
    finally:
        runtime.close()
    print(f"resealed {count} webhook secrets under the current key")
    return 0


def _keys_revoke(args: argparse.Namespace, settings: Settings) -> int:
    import uuid

    try:
        key_id = uuid.UUID(args.key_id)
    except ValueError:
        return _refuse(f"'{args.key_id}' is not a key id (the UUID that `packmatch keys list` shows)")
    with _accounts(settings) as accounts:
        revoked = accounts.revoke(key_id)
    return 0 if revoked else _refuse(f"no active key with id {args.key_id}")


def _organizations_delete(args: argparse.Namespace, settings: Settings) -> int:
    from packmatch.services.organizations import Organizations

    with _accounts(settings) as accounts:
        deleted = Organizations(accounts.db).delete(args.name, force=args.force)
    listing = ", ".join(f"{count} {table.replace('_', ' ')}" for table, count in deleted.owned.items())
    print(f"deleted organization '{deleted.name}'" + (f" with {listing}" if listing else ""))
    return 0


def _import_reference_data(args: argparse.Namespace, settings: Settings) -> int:
    """Import a CSV file for an existing organization; the new dataset's id alone on stdout."""
    with _accounts(settings) as accounts:
        return _import_for(accounts, args)


def _import_for(accounts: Accounts, args: argparse.Namespace) -> int:
    import time

    from packmatch.domain.ids import Kind, format_id
    from packmatch.errors import PackmatchError
    from packmatch.services.reference.datasets import MAX_NAME, default_name

    organization_id = accounts.organization_id(args.organization)
    if organization_id is None:
        return _refuse(
            f"no organization named '{args.organization}': create it (and a key for it) with "
            f"`packmatch keys create --organization {args.organization}`"
        )
    name = (default_name(args.file) if args.name is None else args.name).strip()
    if not 1 <= len(name) <= MAX_NAME:
        return _refuse(f"the name must be 1–{MAX_NAME} characters long (--name)")
    started = time.monotonic()
    try:
        dataset = _import_csv(accounts, organization_id, name, args.file)
    except OSError as exc:
        return _refuse(f"cannot read {args.file}: {exc.strerror or exc}")
    except PackmatchError as exc:
        log.warning("reference_data.import_failed", code=exc.code, problems=len(exc.details))
        return _refuse(exc.message, [detail.message for detail in exc.details])
    seconds = max(time.monotonic() - started, 1e-6)
    reference_data_id = format_id(Kind.REFERENCE_DATA, dataset.id)
    log.info(
        "reference_data.imported",
        reference_data_id=reference_data_id,
        rows=dataset.row_count,
        duration_ms=round(seconds * 1000),
        rows_per_s=round(dataset.row_count / seconds),
    )
    print(reference_data_id)
    return 0


def _import_csv(accounts: Accounts, organization_id: uuid.UUID, name: str, path: str) -> ReferenceDataset:
    from packmatch.progress import progress_for
    from packmatch.services.reference.datasets import ReferenceData

    progress = progress_for(sys.stderr)
    try:
        with open(path, "rb") as file:
            return ReferenceData(accounts.db).create_from_csv(organization_id, name, file, progress)
    finally:
        progress.close()


def _refuse(message: str, problems: Sequence[str] = ()) -> int:
    print(f"packmatch: {message}", file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)
    return 1


def _runs_submit(args: argparse.Namespace, settings: Settings) -> int:
    """Stream a JSON-lines file of runs through `POST …/runs/batch`; accepted run ids on stdout."""
    import os

    from packmatch.submit import SubmitError, http_post, submit

    api_key = args.api_key or os.environ.get("PACKMATCH_API_KEY", "")
    if not api_key:
        return _refuse("an API key is needed: --api-key or PACKMATCH_API_KEY")
    progress = _submit_progress()
    try:
        with open(args.file, "rb") as file:
            report = submit(http_post(args.url, api_key), file, sys.stdout, sys.stderr, progress)
    except OSError as exc:
        return _refuse(f"cannot read {args.file}: {exc.strerror or exc}")
    except SubmitError as exc:
        return _refuse(str(exc))
    log.info("runs.submitted", accepted=report.accepted, refused=len(report.refused), lines=report.lines)
    return 1 if report.refused else 0


def _review_call(args: argparse.Namespace) -> Any:
    import os

    from packmatch.reviewing import http_call

    api_key = args.api_key or os.environ.get("PACKMATCH_API_KEY", "")
    return http_call(args.url, api_key) if api_key else None


def _runs_pending_review(args: argparse.Namespace, settings: Settings) -> int:
    """The reviewer's queue: runs with status `review` nobody has decided, one line each."""
    from packmatch.reviewing import ReviewError, pending_review

    call = _review_call(args)
    if call is None:
        return _refuse("an API key is needed: --api-key or PACKMATCH_API_KEY")
    try:
        count = pending_review(call, args.config, sys.stdout)
    except ReviewError as exc:
        return _refuse(str(exc))
    print(f"{count} run(s) awaiting review", file=sys.stderr)
    return 0


def _runs_review(args: argparse.Namespace, settings: Settings) -> int:
    from packmatch.reviewing import ReviewError, review_run

    call = _review_call(args)
    if call is None:
        return _refuse("an API key is needed: --api-key or PACKMATCH_API_KEY")
    try:
        review_run(call, args.run_id, "approved" if args.approve else "rejected", args.notes, sys.stdout)
    except ReviewError as exc:
        return _refuse(str(exc))
    return 0


def _submit_progress() -> Callable[[Any], None]:
    """A bar counting runs on a terminal; otherwise a `runs.submit_progress` log line per batch."""
    if not sys.stderr.isatty():
        return lambda r: log.info("runs.submit_progress", accepted=r.accepted, refused=len(r.refused))
    from tqdm import tqdm

    bar = tqdm(unit=" runs", file=sys.stderr)

    def show(report: Any) -> None:
        bar.update(report.accepted + len(report.refused) - bar.n)

    return show


def _dead_letters(args: argparse.Namespace, settings: Settings) -> int:
    from packmatch.worker.broker import build_broker
    from packmatch.worker.dead_letters import read_dead_letters

    broker = build_broker(settings)
    try:
        found = read_dead_letters(broker, settings.queue_name, args.limit)
    finally:
        broker.close()
    if found is None:
        scheme = settings.broker_url.split(":", 1)[0]
        where = {
            "memory": "the memory:// broker keeps none outside the process that failed them",
            "amqp": f"RabbitMQ keeps them in the '{settings.queue_name}.XQ' queue (see its management UI)",
        }.get(scheme.removesuffix("s"), "this broker's dead letters cannot be listed")
        print(f"no dead letters to list: {where}")
        return 0
    print(f"{found.total} dead-lettered message(s) on queue '{settings.queue_name}'", file=sys.stderr)
    for item in found.items:
        failed_at = item.failed_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        print(f"{failed_at}  {item.message_id}  {item.actor}  {item.subject or '-'}")
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from packmatch.demo import ServeOn, run_demo

    return run_demo(settings, serve_on=ServeOn(args.host, args.port) if args.serve else None)


class _Parser(argparse.ArgumentParser):
    """argparse with its complaint on one line (the usage is one `--help` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="packmatch", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def add(name: str, handler: Callable[..., int], help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        sub.set_defaults(handler=handler)
        return sub

    for name, handler, text in (
        ("serve", _serve, "HTTP API + in-process workers on one machine (embedded defaults)"),
        ("api", _api, "the HTTP API only"),
    ):
        sub = add(name, handler, text)
        sub.add_argument("--host", default="127.0.0.1")
        sub.add_argument("--port", type=int, default=8000)
    worker = add("worker", _worker, "Dramatiq worker processes")
    worker.add_argument("--processes", type=int, default=None)
    worker.add_argument("--threads", type=int, default=None)
    worker.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="metrics port (PACKMATCH_WORKER_METRICS_PORT); 0: none",
    )
    worker.add_argument(
        "--queues",
        choices=("all", "slots", "webhooks"),
        default="all",
        help="consume matching (slots), webhook deliveries (webhooks) or both (all, the default)",
    )
    add("migrate", _migrate, "bring the database schema up to date")
    demo = add("demo", _demo, "load a sample world, submit sample bundles, print their verdicts")
    demo.add_argument(
        "--serve", action="store_true", help="then serve the reviewer page (/review) until Ctrl+C"
    )
    demo.add_argument("--host", default="127.0.0.1", help="with --serve: the address to listen on")
    demo.add_argument("--port", type=int, default=8000, help="with --serve: the port")
    dead = add("dead-letters", _dead_letters, "list messages the broker failed for good, newest first")
    dead.add_argument("--limit", type=int, default=50)
    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(dest="keys", required=True)
    create = keys.add_parser("create", help="create an API key; prints it alone on stdout")
    create.add_argument("--organization", required=True)
    create.add_argument("--scopes", default="read,write", help="read, write, review (comma-separated)")
    create.add_argument("--name", default=None, help="who holds the key; shown in review decisions")
    create.set_defaults(handler=_keys_create)
    listing = keys.add_parser("list", help="list API keys (never the keys themselves)")
    listing.add_argument("--organization", default=None)
    listing.set_defaults(handler=_keys_list)
    revoke = keys.add_parser("revoke", help="revoke an API key by its id")
    revoke.add_argument("key_id")
    revoke.set_defaults(handler=_keys_revoke)
    orgs = commands.add_parser("organizations", help="manage organizations")
    delete = orgs.add_subparsers(dest="organizations", required=True).add_parser(
        "delete", help="delete an organization; refused while it owns anything, unless --force"
    )
    delete.add_argument("name", metavar="NAME")
    delete.add_argument("--force", action="store_true", help="delete everything it owns with it")
    delete.set_defaults(handler=_organizations_delete)
    sealing = commands.add_parser("secrets", help="webhook secrets at rest (docs/security.md)")
    sealing.add_subparsers(dest="secrets", required=True).add_parser(
        "reseal", help="seal every webhook secret under PACKMATCH_SECRETS_KEY (after a key rotation)"
    ).set_defaults(handler=_secrets_reseal)
    runs = commands.add_parser("runs", help="package runs").add_subparsers(dest="runs", required=True)
    submit = runs.add_parser("submit", help="submit a JSON-lines file of runs through the batch endpoint")
    submit.add_argument("file", metavar="FILE.jsonl", help="one run (a POST …/runs body) per line")
    submit.add_argument("--url", default="http://127.0.0.1:8000", help="the API's base URL")
    submit.add_argument("--api-key", default=None, help="defaults to $PACKMATCH_API_KEY")
    submit.set_defaults(handler=_runs_submit)
    pending = runs.add_parser("pending-review", help="runs with status review that nobody has decided")
    pending.add_argument("--config", default=None, metavar="ID", help="only runs of this package config")
    review = runs.add_parser("review", help="approve or reject a final run (its status stays)")
    review.add_argument("run_id", metavar="RUN_ID")
    choice = review.add_mutually_exclusive_group(required=True)
    choice.add_argument("--approve", action="store_true")
    choice.add_argument("--reject", action="store_true")
    review.add_argument("--notes", default=None, metavar="TEXT", help="up to 2,000 characters")
    for sub, handler in ((pending, _runs_pending_review), (review, _runs_review)):
        sub.add_argument("--url", default="http://127.0.0.1:8000", help="the API's base URL")
        sub.add_argument("--api-key", default=None, help="defaults to $PACKMATCH_API_KEY")
        sub.set_defaults(handler=handler)
    reference = commands.add_parser("reference-data", help="manage reference data")
    imports = reference.add_subparsers(dest="reference_data", required=True).add_parser(
        "import", help="import a CSV file; prints the new dataset's id alone on stdout"
    )
    imports.add_argument("file", metavar="FILE.csv")
    imports.add_argument("--organization", required=True, help="an existing organization (keys create)")
    imports.add_argument("--name", default=None, help="defaults to the file's name without extension")
    imports.set_defaults(handler=_import_reference_data)
    add_history_commands(commands, add)
    return parser


ONE_SHOT = frozenset(
    {
        "migrate",
        "keys",
        "organizations",
        "demo",
        "dead-letters",
        "reference-data",
        "runs",
        "prune",
        "export",
        "import",
        "secrets",
        "doctor",
    }
)


def main(argv: Sequence[str] | None = None) -> int:
    """Every failure ends as one `packmatch: …` line on stderr and a non-zero exit, never a traceback."""
    from packmatch.cli_errors import explain, explain_settings

    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except ValueError as exc:  # pydantic's ValidationError
        return _refuse(explain_settings(exc))
    stream = sys.stderr if args.command in ONE_SHOT else sys.stdout
    level = "WARNING" if args.command == "demo" else settings.log_level
    configure_logging(settings.log_format, level, stream)
    try:
        return int(args.handler(args, settings))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the command line's edge: one clear line (cli_errors.py)
        log.debug("cli.failed", command=args.command, error=type(exc).__name__, exc_info=True)
        return _refuse(explain(exc))


if __name__ == "__main__":
    sys.exit(main())
