"""The resources of the synchronous `Client`: typed methods that send what `routes` builds.

Lists come two ways: `list(...)` gives one page (`.data`, `.pagination`), `iter(...)` every item
of every page, following `next_cursor`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar

from packmatch import responses as r
from packmatch.client import routes
from packmatch.client.calls import Call, model, params
from packmatch.client.errors import WaitTimeout
from packmatch.client.uploads import Progress, csv_upload

T = TypeVar("T")
Body = Mapping[str, Any]


class Sender(Protocol):
    def send(self, call: Call[T]) -> T: ...


def paged(sender: Sender, call: Callable[[str | None], Call[Any]]) -> Iterator[Any]:
    cursor: str | None = None
    while True:
        page = sender.send(call(cursor))
        yield from page.data
        cursor = page.pagination.next_cursor
        if not page.pagination.has_more or cursor is None:
            return


class Resource:
    def __init__(self, sender: Sender) -> None:
        self._s = sender


class ReferenceData(Resource):
    def create(
        self, name: str, rows: Sequence[Body], *, idempotency_key: str | None = None
    ) -> r.ReferenceData:
        return self._s.send(routes.create_reference_data(name, rows, idempotency_key))

    def upload_csv(
        self,
        file: str | Path | IO[bytes],
        *,
        name: str | None = None,
        progress: Progress | None = None,
        idempotency_key: str | None = None,
    ) -> r.ReferenceData:
        """Multipart upload, streamed; `progress(sent_bytes, total_bytes)` after each chunk."""
        fields = {"name": name} if name else None
        with csv_upload(routes.REF, model(r.ReferenceData), file, fields, progress, idempotency_key) as call:
            return self._s.send(call)

    def list(self, **query: Any) -> r.ReferenceDataList:
        return self._s.send(routes.list_reference_data(**query))

    def iter(self, **query: Any) -> Iterator[r.ReferenceData]:
        return paged(self._s, lambda cursor: routes.list_reference_data(**query, cursor=cursor))

    def get(self, ref_id: str) -> r.ReferenceData:
        return self._s.send(routes.get_reference_data(ref_id))

    def rows(self, ref_id: str, **query: Any) -> Iterator[r.ReferenceRow]:
        return paged(self._s, lambda cursor: routes.reference_rows(ref_id, **query, cursor=cursor))

    def delete(self, ref_id: str, *, idempotency_key: str | None = None) -> r.Deleted:
        return self._s.send(routes.delete_reference_data(ref_id, idempotency_key))


class _Configs(Resource):
    path: str
    one: type[Any]  # the subclasses' models; their methods' answers are those
    many: type[Any]

    def create(self, body: Body, *, idempotency_key: str | None = None) -> Any:
        return self._s.send(routes.create(self.path, self.one, body, idempotency_key))

    def list(self, **query: Any) -> Any:
        return self._s.send(routes.listing(self.path, self.many, **query))

    def iter(self, **query: Any) -> Iterator[Any]:
        return paged(self._s, lambda cursor: routes.listing(self.path, self.many, **query, cursor=cursor))

    def get(self, config_id: str) -> Any:
        return self._s.send(routes.get(f"{self.path}/{config_id}", self.one))

    def replace(self, config_id: str, body: Body, *, idempotency_key: str | None = None) -> Any:
        return self._s.send(routes.replace(f"{self.path}/{config_id}", self.one, body, idempotency_key))

    def delete(self, config_id: str, *, idempotency_key: str | None = None) -> r.Deleted:
        return self._s.send(routes.delete(f"{self.path}/{config_id}", idempotency_key))


class MatchingConfigs(_Configs):
    """`create`/`get`/`replace` answer `responses.MatchingConfig`; `iter` yields them."""

    path, one, many = routes.MC, r.MatchingConfig, r.MatchingConfigList


class PackageConfigs(_Configs):
    """`create`/`get`/`replace` answer `responses.PackageConfig`; `iter` yields them."""

    path, one, many = routes.PKG, r.PackageConfig, r.PackageConfigList


FINAL_POLL = (0.1, 2.0)  # first and longest pause between two GETs while waiting


class Runs(Resource):
    def submit(
        self,
        package_config_id: str,
        input_documents: Body,
        *,
        wait: float | None = None,
        idempotency_key: str | None = None,
    ) -> r.PackageRun:
        """202 at once (`status` running), or the final run when `wait` seconds suffice (else WaitTimeout)."""
        started = time.monotonic()
        run = self._s.send(routes.submit_run(package_config_id, input_documents, wait, idempotency_key))
        if wait is None or run.status != "running":
            return run
        return self.wait_final(run.id, timeout=max(0.0, wait - (time.monotonic() - started)))

    def submit_batch(
        self, runs: Sequence[Body], *, atomic: bool = False, idempotency_key: str | None = None
    ) -> r.PackageRunBatch:
        return self._s.send(routes.submit_batch(runs, atomic, idempotency_key))

    def get(self, run_id: str) -> r.PackageRun:
        return self._s.send(routes.get(f"{routes.RUNS}/{run_id}", r.PackageRun))

    def etag(self, run_id: str) -> str:
        """The run's current `ETag`: pass it as `review(..., if_match=)` to refuse a lost update."""
        return self._s.send(routes.etag(f"{routes.RUNS}/{run_id}"))

    def wait_final(self, run_id: str, timeout: float = 60.0) -> r.PackageRun:
        """GET the run until its status is final; `WaitTimeout` after `timeout` seconds."""
        deadline, pause = time.monotonic() + timeout, FINAL_POLL[0]
        while (run := self.get(run_id)).status == "running":
            left = deadline - time.monotonic()
            if left <= 0:
                raise WaitTimeout(run_id, timeout)
            time.sleep(min(pause, left))
            pause = min(pause * 2, FINAL_POLL[1])
        return run

    def list(self, **query: Any) -> r.PackageRunList:
        return self._s.send(routes.listing(routes.RUNS, r.PackageRunList, **query))

    def iter(self, **query: Any) -> Iterator[r.PackageRun]:
        """E.g. `iter(status="review", reviewed=False)`, newest first."""
        return paged(
            self._s, lambda cursor: routes.listing(routes.RUNS, r.PackageRunList, **query, cursor=cursor)
        )

    def review(
        self,
        run_id: str,
        decision: str,
        *,
        notes: str | None = None,
        if_match: str | None = None,
        idempotency_key: str | None = None,
    ) -> r.PackageRun:
        return self._s.send(routes.review_run(run_id, decision, notes, if_match, idempotency_key))

    def reviews(self, run_id: str) -> Iterator[r.RunReviewRecord]:
        path = f"{routes.RUNS}/{run_id}/reviews"
        return paged(self._s, lambda cursor: routes.listing(path, r.RunReviewList, cursor=cursor))


FINAL_EVALUATION = ("done", "error")


class Evaluations(Resource):
    """Evaluations of one matching config on labelled rows: `create` (JSON rows, or the config's
    review decisions), `upload_csv`, then `wait` for the report."""

    def create(
        self,
        config_id: str,
        rows: Sequence[Body] | None = None,
        *,
        from_reviews: bool = False,
        idempotency_key: str | None = None,
    ) -> r.Evaluation:
        """`rows`: `[{"values": {…}, "reference_row_id": "…" | None}, …]`; or `from_reviews=True`."""
        return self._s.send(routes.create_evaluation(config_id, rows, from_reviews, idempotency_key))

    def upload_csv(
        self,
        config_id: str,
        file: str | Path | IO[bytes],
        *,
        progress: Progress | None = None,
        idempotency_key: str | None = None,
    ) -> r.Evaluation:
        """A CSV file with a `reference_row_id` column (blank: no match), streamed as a multipart `file`."""
        path = routes.evaluations(config_id)
        with csv_upload(path, model(r.Evaluation), file, None, progress, idempotency_key) as call:
            return self._s.send(call)

    def get(self, config_id: str, evaluation_id: str) -> r.Evaluation:
        return self._s.send(routes.get(f"{routes.evaluations(config_id)}/{evaluation_id}", r.Evaluation))

    def list(self, config_id: str, **query: Any) -> r.EvaluationList:
        return self._s.send(routes.listing(routes.evaluations(config_id), r.EvaluationList, **query))

    def iter(self, config_id: str, **query: Any) -> Iterator[r.Evaluation]:
        path = routes.evaluations(config_id)
        return paged(self._s, lambda cursor: routes.listing(path, r.EvaluationList, **query, cursor=cursor))

    def wait(self, config_id: str, evaluation_id: str, timeout: float = 300.0) -> r.Evaluation:
        """GET the evaluation until it is `done` or `error`; `WaitTimeout` after `timeout` seconds."""
        deadline, pause = time.monotonic() + timeout, FINAL_POLL[0]
        while (found := self.get(config_id, evaluation_id)).status not in FINAL_EVALUATION:
            left = deadline - time.monotonic()
            if left <= 0:
                raise WaitTimeout(evaluation_id, timeout, "evaluation")
            time.sleep(min(pause, left))
            pause = min(pause * 2, FINAL_POLL[1])
        return found


class MatchingRuns(Resource):
    def get(self, mr_id: str) -> r.MatchingRun:
        return self._s.send(routes.get(f"{routes.MR}/{mr_id}", r.MatchingRun))

    def results(self, mr_id: str, **query: Any) -> Iterator[r.MatchResult]:
        """Every result, e.g. `results(mr, review_status="pending", limit=1000)`."""
        path = f"{routes.MR}/{mr_id}/results"
        return paged(self._s, lambda cursor: routes.listing(path, r.MatchResultList, **query, cursor=cursor))

    def result(self, mr_id: str, result_id: str) -> r.MatchResult:
        return self._s.send(routes.get(f"{routes.MR}/{mr_id}/results/{result_id}", r.MatchResult))

    def result_etag(self, mr_id: str, result_id: str) -> str:
        return self._s.send(routes.etag(f"{routes.MR}/{mr_id}/results/{result_id}"))

    def review_result(
        self,
        mr_id: str,
        result_id: str,
        status: str,
        *,
        notes: str | None = None,
        reference_row_id: str | None = None,
        if_match: str | None = None,
        idempotency_key: str | None = None,
    ) -> r.MatchResult:
        decision = params(status=status, notes=notes, reference_row_id=reference_row_id)
        return self._s.send(routes.review_result(mr_id, result_id, decision, if_match, idempotency_key))

    def review_results(
        self, mr_id: str, decisions: Sequence[Body], *, idempotency_key: str | None = None
    ) -> r.ReviewedResults:
        """All or nothing: up to 500 `{"result_id", "status", "notes"?, "reference_row_id"?}`."""
        return self._s.send(routes.review_results(mr_id, decisions, idempotency_key))

    def result_reviews(self, mr_id: str, result_id: str) -> Iterator[r.ResultReviewRecord]:
        path = f"{routes.MR}/{mr_id}/results/{result_id}/reviews"
        return paged(self._s, lambda cursor: routes.listing(path, r.ResultReviewList, cursor=cursor))


class Webhooks(Resource):
    def create(
        self,
        url: str,
        *,
        events: Sequence[str] | None = None,
        is_active: bool | None = None,
        secret: str | None = None,
        idempotency_key: str | None = None,
    ) -> r.CreatedWebhook:
        body = {
            k: v
            for k, v in {"url": url, "events": events, "is_active": is_active, "secret": secret}.items()
            if v is not None
        }
        return self._s.send(routes.create(routes.HOOKS, r.CreatedWebhook, body, idempotency_key))

    def list(self, **query: Any) -> r.WebhookList:
        return self._s.send(routes.listing(routes.HOOKS, r.WebhookList, **query))

    def iter(self, **query: Any) -> Iterator[r.Webhook]:
        return paged(
            self._s, lambda cursor: routes.listing(routes.HOOKS, r.WebhookList, **query, cursor=cursor)
        )

    def get(self, hook_id: str) -> r.Webhook:
        return self._s.send(routes.get(f"{routes.HOOKS}/{hook_id}", r.Webhook))

    def replace(self, hook_id: str, body: Body, *, idempotency_key: str | None = None) -> r.Webhook:
        return self._s.send(routes.replace(f"{routes.HOOKS}/{hook_id}", r.Webhook, body, idempotency_key))

    def rotate_secret(self, hook_id: str, *, idempotency_key: str | None = None) -> r.CreatedWebhook:
        return self._s.send(routes.rotate_secret(hook_id, idempotency_key))

    def delete(self, hook_id: str, *, idempotency_key: str | None = None) -> r.Deleted:
        return self._s.send(routes.delete(f"{routes.HOOKS}/{hook_id}", idempotency_key))

    def deliveries(self, hook_id: str, **query: Any) -> Iterator[r.WebhookDelivery]:
        path = f"{routes.HOOKS}/{hook_id}/deliveries"
        return paged(
            self._s, lambda cursor: routes.listing(path, r.WebhookDeliveryList, **query, cursor=cursor)
        )

    def delivery(self, hook_id: str, delivery_id: str) -> r.WebhookDelivery:
        path = f"{routes.HOOKS}/{hook_id}/deliveries/{delivery_id}"
        return self._s.send(routes.get(path, r.WebhookDelivery))

    def redeliver(
        self, hook_id: str, delivery_id: str, *, idempotency_key: str | None = None
    ) -> r.WebhookDelivery:
        return self._s.send(routes.redeliver(hook_id, delivery_id, idempotency_key))
