"""`packmatch demo`: a sample world, a dozen sample bundles through the real pipeline, their verdicts.

The sample world — reference data, one matching config per document type, the "Shipment bundle"
package config and the labelled bundles — is package data (`samples/world.json`). The demo drives
the product as an upstream system would: it serves the same app as `packmatch serve` (uvicorn in a
thread, on a free loopback port, with an in-process worker) and, through `packmatch.client.Client`,
creates the world, submits the bundles, waits for their final verdicts, approves one `review`
bundle and reads the reviewer's queue. Only the organization and its API key are made in-process:
no endpoint creates them (`packmatch keys create` does the same). Every run creates the world
afresh under the organization "demo", which keeps earlier demo runs as they were and makes the
verdicts always follow the bundled data, at the price of one more copy of the world per run.

stdout carries the report alone (the CLI sends logs to stderr); the exit code is 0 when every run
reached a final status, 1 when some were still running at the timeout.

`packmatch demo --serve` serves the API on `--host`/`--port` (default 127.0.0.1:8000) instead,
leaves every `review` bundle undecided, prints the reviewer page's URL and a key with the `review`
scope, and keeps the API (and its in-process worker) running until Ctrl+C, so a newcomer clears
the queue in a browser (docs/review-page.md).
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from pydantic import model_validator

from packmatch import responses as r
from packmatch.api.app import create_app
from packmatch.api.local_server import LocalServer
from packmatch.bootstrap import build_runtime
from packmatch.client import Client, WaitTimeout
from packmatch.domain.models import (
    FieldMapping,
    Frozen,
    InputRow,
    PassCriteria,
    Presence,
    RunStatus,
)
from packmatch.services.container import Services
from packmatch.settings import Settings
from packmatch.worker.runner import InProcessWorker

WORLD_RESOURCE = "samples/world.json"
TIMEOUT_SECONDS = 60.0
POLL_SECONDS = 0.05
API_KEY_SCOPES = frozenset({"read", "write"})
VERDICT_ORDER = (RunStatus.PASSED, RunStatus.REVIEW, RunStatus.FAILED, RunStatus.ERROR)
SERVE_URL = "http://127.0.0.1:8000"
REVIEWER_NAME = "Demo reviewer"
REVIEW_HINT = "packmatch demo --serve opens the reviewer page at /review"


# --- the sample world, as bundled --------------------------------------------------------------


class DatasetSpec(Frozen):
    name: str
    rows: tuple[dict[str, Any], ...]


class MatchingSpec(Frozen):
    name: str
    reference_data: str
    field_mappings: tuple[FieldMapping, ...]
    threshold: float = 0.85


class SlotSpec(Frozen):
    document_type: str
    matching_config: str
    presence: Presence


class PackageSpec(Frozen):
    name: str
    document_type_configs: tuple[SlotSpec, ...]
    pass_criteria: PassCriteria


class Bundle(Frozen):
    label: str
    expected_verdict: RunStatus
    why: str
    input_documents: dict[str, tuple[InputRow, ...]]


class World(Frozen):
    organization: str
    reference_data: tuple[DatasetSpec, ...]
    matching_configs: tuple[MatchingSpec, ...]
    package_config: PackageSpec
    bundles: tuple[Bundle, ...]

    @model_validator(mode="after")
    def _names_resolve(self) -> World:
        datasets = {d.name for d in self.reference_data}
        configs = {m.name for m in self.matching_configs}
        dangling = [m.reference_data for m in self.matching_configs if m.reference_data not in datasets]
        slots = self.package_config.document_type_configs
        dangling += [s.matching_config for s in slots if s.matching_config not in configs]
        if dangling:
            raise ValueError(f"the sample world names what it does not define: {dangling}")
        return self


def load_world() -> World:
    """The bundled sample world, validated."""
    text = resources.files("packmatch").joinpath(WORLD_RESOURCE).read_text(encoding="utf-8")
    return World.model_validate_json(text)


# --- installing the world and playing the bundles, over the API -------------------------------


@dataclass(frozen=True)
class Installed:
    """What the demo created, as the API shows it, and the key that reaches it."""

    api_key: str
    package: r.PackageConfig


@dataclass(frozen=True)
class Played:
    bundle: Bundle
    run: r.PackageRun


def create_demo_key(services: Services, world: World) -> str:
    """A `read`/`write` key of the world's organization (made if needed). In-process: no endpoint
    creates organizations or keys (`packmatch keys create` does the same)."""
    return services.accounts.create_key(world.organization, API_KEY_SCOPES)


def install_world(client: Client, world: World) -> r.PackageConfig:
    """Create the world's datasets and configs over the API, as the key's organization."""
    datasets = {d.name: client.reference_data.create(d.name, d.rows).id for d in world.reference_data}
    matching = {
        spec.name: client.matching_configs.create(_matching_body(spec, datasets[spec.reference_data])).id
        for spec in world.matching_configs
    }
    package: r.PackageConfig = client.package_configs.create(_package_body(world.package_config, matching))
    return package


def _matching_body(spec: MatchingSpec, dataset_id: str) -> dict[str, Any]:
    return {
        "name": spec.name,
        "reference_data_id": dataset_id,
        "field_mappings": [m.model_dump(mode="json") for m in spec.field_mappings],
        "threshold": spec.threshold,
    }


def _package_body(spec: PackageSpec, matching: dict[str, str]) -> dict[str, Any]:
    slots = [
        {
            "document_type": d.document_type,
            "matching_config_id": matching[d.matching_config],
            "presence": d.presence.value,
        }
        for d in spec.document_type_configs
    ]
    return {
        "name": spec.name,
        "document_type_configs": slots,
        "pass_criteria": spec.pass_criteria.model_dump(mode="json"),
    }


def input_documents(bundle: Bundle) -> dict[str, list[dict[str, Any]]]:
    """A bundle as the `input_documents` of a run's POST body."""
    return {
        kind: [row.model_dump(mode="json") for row in rows] for kind, rows in bundle.input_documents.items()
    }


def submit_bundles(client: Client, package_config_id: str, bundles: Sequence[Bundle]) -> list[str]:
    """One `POST …/runs` per bundle (202, status running); the runs' ids, in the bundles' order."""
    return [client.runs.submit(package_config_id, input_documents(bundle)).id for bundle in bundles]


def wait_for_runs(
    client: Client, run_ids: Sequence[str], timeout_seconds: float
) -> list[r.PackageRun] | None:
    """Every run once final, in the given order; ``None`` if some are still running at the timeout."""
    deadline = time.monotonic() + timeout_seconds
    try:
        return [
            client.runs.wait_final(run_id, timeout=max(0.0, deadline - time.monotonic()))
            for run_id in run_ids
        ]
    except WaitTimeout:
        return None


# --- the report ---------------------------------------------------------------------------------


def slot_cell(slot: r.DocumentResult) -> str:
    """``matched 0.97``, ``unmatched 0.80``, ``missing``, ``skipped``…"""
    if slot.confidence is None:
        return slot.status.value
    return f"{slot.status.value} {slot.confidence:.2f}"


def render_table(played: Sequence[Played], slot_names: Sequence[str]) -> list[str]:
    """One aligned line per bundle under a header; columns are separated by two spaces or more."""
    rows = [["bundle", "verdict", *slot_names]]
    rows += [
        [p.bundle.label, p.run.status.value, *(slot_cell(s) for s in p.run.document_results)] for p in played
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return [line.rstrip() for line in lines]


def summary_line(runs: Sequence[r.PackageRun]) -> str:
    counts = Counter(run.status for run in runs)
    parts = [f"{counts[status]} {status.value}" for status in VERDICT_ORDER if counts[status]]
    return f"{len(runs)} bundles: " + ", ".join(parts)


def title_lines(package: r.PackageConfig, organization: str, bundles: int) -> list[str]:
    slots = ", ".join(f"{s.document_type} {s.presence.value}" for s in package.document_type_configs)
    criteria = package.pass_criteria.model_dump()
    rules = ", ".join(f"{name}={json.dumps(value)}" for name, value in criteria.items())
    return [
        f'packmatch demo: {bundles} sample bundles for "{package.name}" (organization "{organization}")',
        f"  slots: {slots}",
        f"  pass criteria: {rules}",
    ]


def explore_hint(installed: Installed) -> list[str]:
    runs_url = f"{SERVE_URL}/v1/matching/packages/runs?package_config_id={installed.package.id}"
    return [
        "Explore the runs, slot results and match evidence over the HTTP API:",
        "  packmatch serve      (from this directory, or with the same PACKMATCH_DATABASE_URL)",
        f"  open {SERVE_URL}/docs and authorize with this demo API key:",
        f"  {installed.api_key}",
        f'  curl -H "Authorization: Bearer {installed.api_key}" "{runs_url}"',
    ]


def render_report(world: World, installed: Installed, played: Sequence[Played]) -> str:
    slot_names = [slot.document_type for slot in installed.package.document_type_configs]
    lines = [*title_lines(installed.package, world.organization, len(played)), ""]
    lines += render_table(played, slot_names)
    lines += ["", summary_line([p.run for p in played]), "", *explore_hint(installed)]
    return "\n".join(lines)


# --- entry point --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServeOn:
    """Where `packmatch demo --serve` keeps the API running after the report."""

    host: str = "127.0.0.1"
    port: int = 8000


def play(client: Client, world: World, api_key: str, timeout_seconds: float, *, serving: bool = False) -> int:
    """Install the world, submit its bundles, wait for their verdicts and print the report, all over
    the API; unless `serving`, approve one `review` bundle. Then the reviewer's queue."""
    installed = Installed(api_key, install_world(client, world))
    run_ids = submit_bundles(client, installed.package.id, world.bundles)
    runs = wait_for_runs(client, run_ids, timeout_seconds)
    if runs is None:
        print(
            f"packmatch demo: some runs were still running after {timeout_seconds:g} s; "
            "no worker finished them (is the broker reachable?)",
            file=sys.stderr,
        )
        return 1
    played = [Played(bundle, run) for bundle, run in zip(world.bundles, runs, strict=True)]
    print(render_report(world, installed, played))
    print("", *review_lines(client, installed, runs, serving=serving), sep="\n")
    return 0


def approve_first(client: Client, run: r.PackageRun) -> str:
    """Approve one `review` bundle as the demo key's holder; the line that says so."""
    client.runs.review(run.id, "approved", notes="demo: checked")
    return f"Approved {run.id} (its status stays 'review'; the decision is in its 'review' field)."


def review_lines(
    client: Client, installed: Installed, runs: Sequence[r.PackageRun], *, serving: bool = False
) -> list[str]:
    """Approve the first `review` bundle (unless `serving`: the page is for deciding), then show
    the reviewer's queue."""
    waiting = [run for run in runs if run.status is RunStatus.REVIEW]
    if not waiting:
        return []
    lines = [] if serving else [approve_first(client, waiting[0])]
    queue = client.runs.list(
        package_config_id=installed.package.id, status="review", reviewed=False, order="asc", limit=100
    )
    lines.append(f"Reviewer queue (status review, undecided): {queue.pagination.total} run(s)")
    lines += [f"  {run.id}" for run in queue.data]
    lines.append(f"  (packmatch runs pending-review --config {installed.package.id})")
    if not serving:
        lines.append(f"Or review them in a browser: {REVIEW_HINT}")
    return lines


def create_reviewer_key(services: Services, world: World) -> str:
    """A key with the `review` scope alone, for the page; in-process like `create_demo_key`."""
    return services.accounts.create_key(world.organization, frozenset({"review"}), REVIEWER_NAME)


def announce_review_page(server_url: str, reviewer_key: str) -> None:
    """The page's address as the server listens (the port it got for `--port 0`, loopback for a
    wildcard host)."""
    print(
        "",
        f"Review the bundles in a browser: {server_url}/review",
        f"  sign in with this reviewer key (scope review, kept in the tab only): {reviewer_key}",
        "  the API and its worker keep running; Ctrl+C stops them",
        sep="\n",
        flush=True,
    )


def run_demo(
    settings: Settings, *, timeout_seconds: float = TIMEOUT_SECONDS, serve_on: ServeOn | None = None
) -> int:
    """Run the demo on `settings` (embedded defaults: SQLite file, in-memory broker) against the
    API it serves on a free loopback port; with `serve_on`, serve it there instead, leave the
    `review` bundles undecided and keep serving the reviewer page afterwards."""
    world = load_world()
    runtime = build_runtime(settings, migrate_first=True)
    listen = serve_on or ServeOn(port=0)
    try:
        app = create_app(runtime.services, runtime.settings, metrics=runtime.api_metrics())
        with (
            InProcessWorker(runtime.broker, threads=settings.worker_threads),
            LocalServer(app, listen.host, listen.port) as server,
        ):
            api_key = create_demo_key(runtime.services, world)
            with Client(server.url, api_key) as client:
                code = play(client, world, api_key, timeout_seconds, serving=serve_on is not None)
            if code == 0 and serve_on is not None:
                announce_review_page(server.url, create_reviewer_key(runtime.services, world))
                server.serve_until_signalled()
            return code
    finally:
        runtime.close()
