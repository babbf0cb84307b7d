"""`packmatch demo`: a sample world, a dozen sample bundles through the real pipeline, their verdicts.

The sample world — reference data, one matching config per document type, the "Shipment bundle"
package config and the labelled bundles — is package data (`samples/world.json`). Every demo run
creates it afresh under the organization "demo" and submits the bundles through the services, so
they travel the same Dramatiq pipeline as runs posted over HTTP (here with an in-process worker).
Creating afresh keeps earlier demo runs as they were and makes the verdicts always follow the
bundled data, at the price of one more copy of the world per run.

stdout carries the report alone (the CLI sends logs to stderr); the exit code is 0 when every run
reached a final status, 1 when some were still running at the timeout.

`packmatch demo --serve` leaves every `review` bundle undecided, prints the reviewer page's URL and a
key with the `review` scope, and keeps the API (and its in-process worker) running until Ctrl+C, so
a newcomer clears the queue in a browser (docs/review-page.md).
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from pydantic import model_validator

from packmatch.bootstrap import Runtime, build_runtime
from packmatch.domain.ids import Kind, format_id
from packmatch.domain.models import (
    FieldMapping,
    Frozen,
    InputRow,
    PackageConfig,
    PackageRun,
    PassCriteria,
    Presence,
    RunStatus,
    Slot,
    SlotResult,
)
from packmatch.services.configs import MatchingConfigInput, PackageConfigInput
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


# --- installing the world and playing the bundles ----------------------------------------------


@dataclass(frozen=True)
class Installed:
    """What the demo created: where it lives and how to reach it over the API."""

    organization_id: uuid.UUID
    api_key: str
    package: PackageConfig


@dataclass(frozen=True)
class Played:
    bundle: Bundle
    run: PackageRun


def install_world(services: Services, world: World) -> Installed:
    """Create the world's datasets and configs under its organization (made if needed)."""
    key = services.accounts.create_key(world.organization, API_KEY_SCOPES)
    org = services.accounts.authenticate(key).organization_id
    datasets = {d.name: services.reference_data.create(org, d.name, d.rows).id for d in world.reference_data}
    matching = {
        spec.name: _create_matching(services, org, spec, datasets[spec.reference_data])
        for spec in world.matching_configs
    }
    package = services.configs.create_package(org, _package_input(world.package_config, matching))
    return Installed(org, key, package)


def _create_matching(
    services: Services, organization_id: uuid.UUID, spec: MatchingSpec, dataset_id: uuid.UUID
) -> uuid.UUID:
    data = MatchingConfigInput(spec.name, dataset_id, spec.field_mappings, spec.threshold)
    return services.configs.create_matching(organization_id, data).id


def _package_input(spec: PackageSpec, matching: dict[str, uuid.UUID]) -> PackageConfigInput:
    slots = [
        Slot(
            document_type=d.document_type, matching_config_id=matching[d.matching_config], presence=d.presence
        )
        for d in spec.document_type_configs
    ]
    return PackageConfigInput(spec.name, slots, spec.pass_criteria)


def submit_bundles(services: Services, installed: Installed, bundles: Sequence[Bundle]) -> list[uuid.UUID]:
    org, package_id = installed.organization_id, installed.package.id
    return [services.runs.accept(org, package_id, bundle.input_documents).id for bundle in bundles]


def wait_for_runs(
    services: Services, organization_id: uuid.UUID, run_ids: Sequence[uuid.UUID], timeout_seconds: float
) -> list[PackageRun] | None:
    """Every run once final, in the given order; ``None`` if some are still running at the timeout."""
    deadline = time.monotonic() + timeout_seconds
    final: dict[uuid.UUID, PackageRun] = {}
    while True:
        for run_id in run_ids:
            if run_id not in final:
                run = services.runs.get(organization_id, run_id)
                if run.status is not RunStatus.RUNNING:
                    final[run_id] = run
        if len(final) == len(run_ids):
            return [final[run_id] for run_id in run_ids]
        if time.monotonic() >= deadline:
            return None
        time.sleep(POLL_SECONDS)


# --- the report ---------------------------------------------------------------------------------


def slot_cell(slot: SlotResult) -> str:
    """``matched 0.97``, ``unmatched 0.80``, ``missing``, ``skipped``…"""
    if slot.confidence is None:
        return slot.status.value
    return f"{slot.status.value} {slot.confidence:.2f}"


def render_table(played: Sequence[Played], slot_names: Sequence[str]) -> list[str]:
    """One aligned line per bundle under a header; columns are separated by two spaces or more."""
    rows = [["bundle", "verdict", *slot_names]]
    rows += [[p.bundle.label, p.run.status.value, *(slot_cell(s) for s in p.run.slots)] for p in played]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return [line.rstrip() for line in lines]


def summary_line(runs: Sequence[PackageRun]) -> str:
    counts = Counter(run.status for run in runs)
    parts = [f"{counts[status]} {status.value}" for status in VERDICT_ORDER if counts[status]]
    return f"{len(runs)} bundles: " + ", ".join(parts)


def title_lines(package: PackageConfig, organization: str, bundles: int) -> list[str]:
    slots = ", ".join(f"{s.document_type} {s.presence.value}" for s in package.slots)
    criteria = package.pass_criteria.model_dump()
    rules = ", ".join(f"{name}={json.dumps(value)}" for name, value in criteria.items())
    return [
        f'packmatch demo: {bundles} sample bundles for "{package.name}" (organization "{organization}")',
        f"  slots: {slots}",
        f"  pass criteria: {rules}",
    ]


def explore_hint(installed: Installed) -> list[str]:
    package_id = format_id(Kind.PACKAGE_CONFIG, installed.package.id)
    runs_url = f"{SERVE_URL}/v1/matching/packages/runs?package_config_id={package_id}"
    return [
        "Explore the runs, slot results and match evidence over the HTTP API:",
        "  packmatch serve      (from this directory, or with the same PACKMATCH_DATABASE_URL)",
        f"  open {SERVE_URL}/docs and authorize with this demo API key:",
        f"  {installed.api_key}",
        f'  curl -H "Authorization: Bearer {installed.api_key}" "{runs_url}"',
    ]


def render_report(world: World, installed: Installed, played: Sequence[Played]) -> str:
    slot_names = [slot.document_type for slot in installed.package.slots]
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

    @property
    def page_url(self) -> str:
        return f"http://{self.host}:{self.port}/review"


def play(services: Services, world: World, timeout_seconds: float, *, approve_one: bool = True) -> int:
    """Install the world, submit its bundles, wait for their verdicts and print the report."""
    installed = install_world(services, world)
    run_ids = submit_bundles(services, installed, world.bundles)
    runs = wait_for_runs(services, installed.organization_id, run_ids, timeout_seconds)
    if runs is None:
        print(
            f"packmatch demo: some runs were still running after {timeout_seconds:g} s; "
            "no worker finished them (is the broker reachable?)",
            file=sys.stderr,
        )
        return 1
    played = [Played(bundle, run) for bundle, run in zip(world.bundles, runs, strict=True)]
    print(render_report(world, installed, played))
    print("", *review_lines(services, installed, runs, approve_one=approve_one), sep="\n")
    return 0


def approve_first(services: Services, installed: Installed, run: PackageRun) -> str:
    """Approve one `review` bundle as the demo key's holder; the line that says so."""
    from packmatch.domain.reviews import Reviewer, ReviewStatus

    principal = services.accounts.authenticate(installed.api_key)
    who = Reviewer(key_id=principal.key_id, name=principal.name)
    services.run_reviews.review(
        installed.organization_id, run.id, ReviewStatus.APPROVED, "demo: checked", who
    )
    return (
        f"Approved {format_id(Kind.PACKAGE_RUN, run.id)} (its status stays 'review'; "
        f"the decision is in its 'review' field)."
    )


def review_lines(
    services: Services, installed: Installed, runs: Sequence[PackageRun], *, approve_one: bool = True
) -> list[str]:
    """Approve the first `review` bundle (unless told not to), then show the reviewer's queue."""
    from packmatch.services.runs import RunFilters
    from packmatch.store.pagination import PageRequest

    waiting = [run for run in runs if run.status is RunStatus.REVIEW]
    if not waiting:
        return []
    lines = [approve_first(services, installed, waiting[0])] if approve_one else []
    queue = services.runs.list(
        installed.organization_id,
        PageRequest(limit=100, order="asc"),
        RunFilters(package_config_id=installed.package.id, status=RunStatus.REVIEW, reviewed=False),
    )
    lines.append(f"Reviewer queue (status review, undecided): {queue.total} run(s)")
    lines += [f"  {format_id(Kind.PACKAGE_RUN, run.id)}" for run in queue.items]
    lines.append(
        "  (packmatch runs pending-review --config "
        + format_id(Kind.PACKAGE_CONFIG, installed.package.id)
        + ")"
    )
    return lines


def serve_review_page(runtime: Runtime, world: World, serve_on: ServeOn) -> None:
    """Print the page's URL and a reviewer key, then serve the API until interrupted."""
    import uvicorn

    from packmatch.api.app import create_app

    key = runtime.services.accounts.create_key(world.organization, frozenset({"review"}), REVIEWER_NAME)
    print(
        "",
        f"Review the bundles in a browser: {serve_on.page_url}",
        f"  sign in with this reviewer key (scope review, kept in the tab only): {key}",
        "  the API and its worker keep running; Ctrl+C stops them",
        sep="\n",
        flush=True,
    )
    app = create_app(runtime.services, runtime.settings, metrics=runtime.api_metrics())
    uvicorn.run(
        app, host=serve_on.host, port=serve_on.port, log_config=None, access_log=False, proxy_headers=False
    )


def run_demo(
    settings: Settings, *, timeout_seconds: float = TIMEOUT_SECONDS, serve_on: ServeOn | None = None
) -> int:
    """Run the demo on `settings` (embedded defaults: SQLite file, in-memory broker); with
    `serve_on`, leave the `review` bundles undecided and serve the reviewer page afterwards."""
    world = load_world()
    runtime = build_runtime(settings, migrate_first=True)
    try:
        with InProcessWorker(runtime.broker, threads=settings.worker_threads):
            code = play(runtime.services, world, timeout_seconds, approve_one=serve_on is None)
            if code == 0 and serve_on is not None:
                serve_review_page(runtime, world, serve_on)
            return code
    finally:
        runtime.close()
