"""GET /metrics: run, slot and HTTP counters, and the gauges read from the database and broker."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from packmatch.api.app import create_app
from packmatch.bootstrap import Runtime
from packmatch.domain.monitoring import QueueDepth, RunsInFlight
from packmatch.metrics import PrometheusMetrics, StateCollector, metrics_registry
from tests.e2e.conftest import Api, invoice

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_a_finished_run_is_counted_by_status_with_its_duration(api: Api) -> None:
    pkg = api.shipment_world(("required",))
    assert api.run(pkg, {"invoice": [invoice()]}).json()["status"] == "passed"
    samples = scrape(api.client)
    assert value(samples, "packmatch_runs_accepted_total") == 1
    assert value(samples, "packmatch_runs_finalized_total", status="passed") == 1
    assert value(samples, "packmatch_run_duration_seconds_count", status="passed") == 1
    assert value(samples, "packmatch_slot_duration_seconds_count", status="matched") == 1
    assert value(samples, "packmatch_runs_in_flight") == 0
    assert value(samples, "packmatch_oldest_running_run_age_seconds") == 0


def test_http_requests_are_labelled_with_route_templates_not_ids(api: Api) -> None:
    pkg = api.shipment_world(("required",))
    run = api.run(pkg, {"invoice": [invoice()]}).json()
    api.get(run["links"]["self"])
    api.get("/v1/nothing/here")
    samples = scrape(api.client)
    runs_route = "/v1/matching/packages/runs"
    assert value(samples, "packmatch_http_requests_total", method="POST", route=runs_route, status="200") == 1
    one_run = {"method": "GET", "route": runs_route + "/{run_id}"}
    assert value(samples, "packmatch_http_requests_total", **one_run, status="200") == 1
    assert value(samples, "packmatch_http_request_duration_seconds_count", **one_run) == 1
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert value(samples, "packmatch_http_requests_total", **unmatched) == 1
    assert not any(run["id"].removeprefix("run_") in str(labels) for _, labels in samples)


def test_runs_waiting_for_a_worker_show_as_in_flight_and_queued(
    make_runtime: Callable[..., Runtime], sqlite_url: str
) -> None:
    runtime = make_runtime(database_url=sqlite_url)  # no worker: accepted runs wait
    app = create_app(runtime.services, runtime.settings, metrics=runtime.api_metrics())
    with TestClient(app) as client:
        api = Api(client, runtime, runtime.services.accounts.create_key("acme", frozenset({"read", "write"})))
        pkg = api.shipment_world()
        documents = {"invoice": [invoice()], "delivery_note": [invoice()]}
        for _ in range(2):
            assert api.run(pkg, documents, wait=0).status_code == 202
        samples = scrape(client)
    assert value(samples, "packmatch_runs_in_flight") == 2
    assert value(samples, "packmatch_oldest_running_run_age_seconds") > 0
    queue = runtime.settings.queue_name
    assert value(samples, "packmatch_queue_messages", queue=queue, state="ready") == 4  # two slots a run
    assert value(samples, "packmatch_queue_messages", queue=queue, state="dead") == 0
    assert value(samples, "packmatch_state_probe_up", probe="queues") == 1


def test_a_probe_that_fails_is_reported_down_and_the_scrape_still_answers() -> None:
    def database_down() -> RunsInFlight:
        raise ConnectionError("database is down")

    def one_queue() -> list[QueueDepth]:
        return [QueueDepth("packmatch", 3, 1, 0, 2.5)]

    now = datetime(2026, 1, 1, tzinfo=UTC)
    registry = metrics_registry(process=False)
    registry.register(StateCollector(database_down, one_queue, lambda: now + timedelta(seconds=1)))
    collected = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in registry.collect()
        for sample in family.samples
    }
    assert value(collected, "packmatch_state_probe_up", probe="runs") == 0
    assert value(collected, "packmatch_state_probe_up", probe="queues") == 1
    assert ("packmatch_runs_in_flight", ()) not in collected
    assert value(collected, "packmatch_queue_messages", queue="packmatch", state="delayed") == 1
    assert value(collected, "packmatch_queue_oldest_message_age_seconds", queue="packmatch") == 2.5


def test_an_app_without_the_runtimes_metrics_counts_its_own_requests(
    make_runtime: Callable[..., Runtime], sqlite_url: str
) -> None:
    runtime = make_runtime(database_url=sqlite_url)
    with TestClient(create_app(runtime.services, runtime.settings)) as client:
        client.get("/healthz")
        samples = scrape(client)
    healthz = {"method": "GET", "route": "/healthz", "status": "200"}
    assert value(samples, "packmatch_http_requests_total", **healthz) == 1
    assert ("packmatch_runs_in_flight", ()) not in samples
    assert isinstance(client.app.state.metrics, PrometheusMetrics)  # type: ignore[attr-defined]
