"""`packmatch` command line: the composition root (settings → logging → runtime → app / worker)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from packmatch.logging import configure_logging, get_logger
from packmatch.settings import Settings, load_settings

if TYPE_CHECKING:
    from packmatch.services.accounts import Accounts

log = get_logger("packmatch.cli")


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
        uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False)
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
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False)
    runtime.close()
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    import os

    from packmatch.worker.runner import run_worker_processes

    if args.metrics_port is not None:  # the worker processes read their settings themselves
        os.environ["PACKMATCH_WORKER_METRICS_PORT"] = str(args.metrics_port)
    metrics = (settings.worker_metrics_port if args.metrics_port is None else args.metrics_port) > 0
    return run_worker_processes(
        args.processes or settings.worker_processes, args.threads or settings.worker_threads, metrics=metrics
    )


def _migrate(_: argparse.Namespace, settings: Settings) -> int:
    from packmatch.store.db import migrate

    migrate(settings.database_url)
    log.info("db.migrated")
    return 0


def _accounts(settings: Settings) -> Accounts:
    from packmatch.services.accounts import Accounts
    from packmatch.store.db import Database, migrate

    migrate(settings.database_url)
    return Accounts(Database.from_url(settings.database_url))


def _keys_create(args: argparse.Namespace, settings: Settings) -> int:
    from packmatch.services.accounts import parse_scopes

    key = _accounts(settings).create_key(args.organization, parse_scopes(args.scopes))
    print(key)
    return 0


def _keys_list(args: argparse.Namespace, settings: Settings) -> int:
    for org, record in _accounts(settings).list_keys(args.organization):
        state = "revoked" if record.revoked_at else "active"
        scopes = ",".join(sorted(record.scopes))
        print(f"{record.id}  {org}  {record.prefix}…  {scopes}  {state}")
    return 0


def _keys_revoke(args: argparse.Namespace, settings: Settings) -> int:
    import uuid

    if not _accounts(settings).revoke(uuid.UUID(args.key_id)):
        print(f"no active key with id {args.key_id}", file=sys.stderr)
        return 1
    return 0


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
        print(f"{failed_at}  {item.message_id}  {item.actor}  {item.run_id or '-'}")
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from packmatch.demo import run_demo

    return run_demo(settings)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="packmatch", description=__doc__)
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
    add("migrate", _migrate, "bring the database schema up to date")
    add("demo", _demo, "load a sample world, submit sample bundles, print their verdicts")
    dead = add("dead-letters", _dead_letters, "list messages the broker failed for good, newest first")
    dead.add_argument("--limit", type=int, default=50)
    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(dest="keys", required=True)
    create = keys.add_parser("create", help="create an API key; prints it alone on stdout")
    create.add_argument("--organization", required=True)
    create.add_argument("--scopes", default="read,write")
    create.set_defaults(handler=_keys_create)
    listing = keys.add_parser("list", help="list API keys (never the keys themselves)")
    listing.add_argument("--organization", default=None)
    listing.set_defaults(handler=_keys_list)
    revoke = keys.add_parser("revoke", help="revoke an API key by its id")
    revoke.add_argument("key_id")
    revoke.set_defaults(handler=_keys_revoke)
    return parser


ONE_SHOT = frozenset({"migrate", "keys", "demo", "dead-letters"})


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = load_settings()
    stream = sys.stderr if args.command in ONE_SHOT else sys.stdout
    level = "WARNING" if args.command == "demo" else settings.log_level
    configure_logging(settings.log_format, level, stream)
    try:
        return int(args.handler(args, settings))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
