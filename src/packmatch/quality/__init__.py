"""Match quality: how good a matching config is, and how to make it better.

- :mod:`.labels`: :class:`LabelledRow`, an input row with the reference row it should match (or none).
- :mod:`.evaluation`: :func:`evaluate` matches labelled rows with the real engine and counts; its
  answer is :class:`packmatch.domain.evaluations.EvaluationReport` (re-exported here).
- :mod:`.fellegi_sunter`: the Fellegi–Sunter model; u from random pairs, m by EM or from labels.
- :mod:`.calibration`: a proposed config (weights, `missing`, threshold) learnt from the data.
- the calibration report lives in :mod:`packmatch.domain.calibrations` (pydantic only, shared with
  `packmatch.responses`, which a client-only install imports without numpy).

Pure like the engine: values in, values out; it imports only :mod:`packmatch.domain` and
:mod:`packmatch.engine`.
"""

from packmatch.domain.evaluations import EvaluationReport, Miss, MissKind, QualityMetrics
from packmatch.quality.evaluation import THRESHOLDS, Outcome, evaluate, outcomes, report
from packmatch.quality.labels import LabelledRow, labels_from_reviews

__all__ = [
    "THRESHOLDS",
    "EvaluationReport",
    "LabelledRow",
    "Miss",
    "MissKind",
    "Outcome",
    "QualityMetrics",
    "evaluate",
    "labels_from_reviews",
    "outcomes",
    "report",
]
