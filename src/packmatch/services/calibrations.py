"""Calibrating a matching config (issue 16): read its reference data, propose a better config.

Synchronous and bounded (docs/api.md): at most :data:`MAX_ROWS` input rows and
:data:`MAX_REFERENCE_ROWS` reference rows, so that a request stays within seconds. Nothing is
written: the answer's ``proposal`` is applied only by the user's own PUT.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from packmatch.domain.ids import Kind, format_id
from packmatch.domain.models import InputRow, MatchingConfig
from packmatch.errors import FieldProblem, NotFound, ValidationFailed
from packmatch.logging import get_logger
from packmatch.quality.calibration import IGNORE_FROM, CalibrationReport, calibrate
from packmatch.services.configs import MATCHING_NOT_FOUND
from packmatch.store import configs as store
from packmatch.store import reference_data as datasets
from packmatch.store.db import Database

log = get_logger(__name__)

MAX_ROWS = 2_000
MAX_REFERENCE_ROWS = 100_000
MAX_SAMPLE_PAIRS = 100_000
KEEP_MISSING = 2.0  # no blank share reaches it: the config's `missing` policies stay


@dataclass(frozen=True)
class CalibrationRequest:
    rows: Sequence[InputRow]
    labels: Sequence[str | None] | None  # None: unsupervised
    sample_pairs: int
    propose_missing: bool = True


@dataclass(frozen=True)
class Calibration:
    config: MatchingConfig
    report: CalibrationReport


class Calibrations:
    def __init__(self, db: Database) -> None:
        self.db = db

    def calibrate(
        self, organization_id: uuid.UUID, config_id: uuid.UUID, request: CalibrationRequest
    ) -> Calibration:
        with self.db.transaction() as conn:
            config = store.get_matching_config(conn, organization_id, config_id)
            if config is None:
                raise NotFound(MATCHING_NOT_FOUND)
            dataset = datasets.get_dataset(conn, organization_id, config.reference_data_id)
            if dataset is None:
                raise NotFound(MATCHING_NOT_FOUND)
            if dataset.row_count > MAX_REFERENCE_ROWS:
                raise ValidationFailed(
                    f"Calibration runs on reference data of at most {MAX_REFERENCE_ROWS:,} rows; "
                    f"this config's has {dataset.row_count:,}."
                )
            reference = datasets.load_rows(conn, config.reference_data_id)
        if request.labels is not None:
            check_labels(request.labels, {row.id for row in reference})
        started = time.perf_counter()
        report = calibrate(
            config,
            reference,
            request.rows,
            request.labels,
            sample_pairs=request.sample_pairs,
            ignore_from=IGNORE_FROM if request.propose_missing else KEEP_MISSING,
        )
        log.info(
            "calibration.completed",
            matching_config_id=format_id(Kind.MATCHING_CONFIG, config.id),
            rows=len(request.rows),
            method=report.method,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return Calibration(config, report)


# Where a label is: (row index, message) → a field problem.
LocateLabel = Callable[[int, str], FieldProblem]


def json_label(index: int, message: str) -> FieldProblem:
    return FieldProblem(f"rows[{index}].reference_row_id", message)


def check_labels(labels: Sequence[str | None], known: set[str], locate: LocateLabel = json_label) -> None:
    """400 naming each row whose label is not a row of the config's reference data (the first 20)."""
    problems = [
        locate(i, f"'{label}' is not a row of this config's reference data.")
        for i, label in enumerate(labels)
        if label is not None and label not in known
    ]
    if problems:
        raise ValidationFailed("Some labels name no reference row.", details=problems[:20])
