"""Match quality on messy people and companies: packmatch configs side by side with Splink.

    .venv/bin/python benchmarks/quality.py                          # every kind, level, id or not
    .venv/bin/python benchmarks/quality.py --kinds people --levels hard --size 2000
    .venv/bin/python benchmarks/quality.py --e2e 5000               # + API end to end vs Splink

Data: quality_data.py (deterministic; known truth; 10% of the input rows match nothing). For each
dataset it reports precision, recall and F1 of the best candidate per input row (a row counts as
predicted when its best candidate reaches the threshold; right when that is its true reference row)
for three packmatch configs, each matched by the real engine (`Matcher`, as a worker's slot does):

- ``hand``: what a careful user writes first (fuzzy token_set_ratio names, exact ids and
  postcodes, exact dates, threshold 0.85);
- ``tuned``: the same with ``missing: ignore``, Jaro–Winkler names, ``max_edits: 1`` on ids and
  postcodes and ``allow_day_month_swap``;
- ``calibrated``: ``tuned`` after `packmatch.quality.calibration` (unsupervised: EM on the data),
  at its proposed threshold;
- ``cal-indexed``: ``hand`` with Jaro–Winkler names, calibrated without changing `missing`: none
  of the options that needed the full scan before decision 0013's index step (all indexed now).

Splink (``pip install splink``, the ``bench`` extra) runs its documented link-only recipe on DuckDB
(its tutorial's comparisons, u by random sampling, m by EM on two blocking rules; a pair is a match
at match probability ≥ 0.5), scored the same way: the best pair per input row. Wall times are for
the whole recipe (training + prediction), as packmatch's are for calibration + matching.

``--e2e N``: N reference rows, N corrupted people through the API of a `packmatch serve` process
(upload, config, calibration, PUT, submit runs of 1,000 rows, wait, read every result), against
Splink's wall time on the same data in the same run (quality_e2e.py).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality_data import KINDS, LEVELS, Dataset, generate

from packmatch.domain.models import FieldMapping, InputRow, MatchingConfig, ReferenceRow
from packmatch.engine.scoring import Matcher

Body = dict[str, Any]  # a config body as the API takes it


# --- metrics ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Score:
    precision: float
    recall: float
    f1: float
    seconds: float

    def line(self) -> str:
        return f"P {self.precision:.4f}  R {self.recall:.4f}  F1 {self.f1:.4f}  {self.seconds:6.1f} s"


def score(predicted: Sequence[str | None], truth: Sequence[str | None], seconds: float) -> Score:
    """Best-candidate precision and recall: a wrong prediction counts as a false positive *and*
    (when the row has a true match) a false negative."""
    tp = sum(1 for p, t in zip(predicted, truth, strict=True) if p is not None and p == t)
    fp = sum(1 for p, t in zip(predicted, truth, strict=True) if p is not None and p != t)
    fn = sum(1 for p, t in zip(predicted, truth, strict=True) if t is not None and p != t)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Score(precision, recall, f1, seconds)


# --- packmatch configs -----------------------------------------------------------------------


def _mapping(field: str, strategy: str, weight: float, **options: Any) -> Body:
    return {"source": field, "target": field, "strategy": strategy, "weight": weight, "options": options}


def hand_config(dataset: Dataset) -> Body:
    """What a careful user writes first, from docs/matching.md's advice on weights."""
    if dataset.kind == "people":
        mappings = [
            _mapping("given_name", "fuzzy", 0.2),
            _mapping("surname", "fuzzy", 0.3),
            _mapping("date_of_birth", "date_range", 0.2),
            _mapping("street", "fuzzy", 0.1),
            _mapping("city", "fuzzy", 0.05),
            _mapping("postcode", "exact", 0.1),
        ]
    else:
        mappings = [
            _mapping("company", "fuzzy", 0.4),
            _mapping("street", "fuzzy", 0.15),
            _mapping("city", "fuzzy", 0.05),
            _mapping("postcode", "exact", 0.15),
            _mapping("founded", "date_range", 0.1),
        ]
    key = "person_id" if dataset.kind == "people" else "vat_id"
    if dataset.with_id:
        mappings.append(_mapping(key, "exact", 0.5))
    return {"name": f"{dataset.kind} (hand)", "field_mappings": mappings, "threshold": 0.85}


def tuned_config(dataset: Dataset) -> Body:
    """``hand`` with the issue-16 options: blanks are no evidence, Jaro–Winkler for names, one
    edit allowed in identifiers and postcodes, day and month swaps recognised."""
    body = hand_config(dataset)
    mappings = []
    for mapping in body["field_mappings"]:
        mapping = {**mapping, "missing": "ignore", "options": dict(mapping["options"])}
        if mapping["source"] in ("given_name", "surname", "company"):
            mapping["options"]["scorer"] = "jaro_winkler"
        if mapping["strategy"] == "exact":
            mapping["options"]["max_edits"] = 1
        if mapping["strategy"] == "date_range":
            mapping["options"]["allow_day_month_swap"] = True
        mappings.append(mapping)
    return {**body, "name": f"{dataset.kind} (tuned)", "field_mappings": mappings}


def names_config(dataset: Dataset) -> Body:
    """``hand`` with Jaro–Winkler names only: none of issue 16's other options (decision 0013)."""
    body = hand_config(dataset)
    mappings = []
    for mapping in body["field_mappings"]:
        if mapping["source"] in ("given_name", "surname", "company"):
            mapping = {**mapping, "options": {**mapping["options"], "scorer": "jaro_winkler"}}
        mappings.append(mapping)
    return {**body, "name": f"{dataset.kind} (names)", "field_mappings": mappings}


def domain_config(body: Body) -> MatchingConfig:
    now = datetime.now(UTC)
    return MatchingConfig(
        id=uuid.uuid4(),
        organization_id=uuid.uuid4(),
        name=body["name"],
        reference_data_id=uuid.uuid4(),
        field_mappings=tuple(FieldMapping.model_validate(m) for m in body["field_mappings"]),
        threshold=body.get("threshold", 0.85),
        version=1,
        created_at=now,
        updated_at=now,
    )


def reference_rows(dataset: Dataset) -> list[ReferenceRow]:
    return [ReferenceRow(row["id"], {k: v for k, v in row.items() if k != "id"}) for row in dataset.reference]


def input_rows(dataset: Dataset) -> list[InputRow]:
    return [InputRow(document_id=f"d{i}", values=values) for i, values in enumerate(dataset.inputs)]


def run_packmatch(dataset: Dataset, body: Body) -> tuple[Score, list[str | None]]:
    """Every input row through the engine's `Matcher`, as a worker's slot matches them."""
    started = time.perf_counter()
    matcher = Matcher(domain_config(body), reference_rows(dataset))
    predicted = [matcher.match(row).matched_reference_row_id for row in input_rows(dataset)]
    return score(predicted, dataset.truth, time.perf_counter() - started), predicted


def calibrated_config(dataset: Dataset, body: Body, *, indexed: bool = False) -> tuple[Body, float]:
    """The calibration's proposal for ``body`` (unsupervised), and the seconds it took; ``indexed``
    keeps the config's `missing` policies, so that the proposal stays on the indexed search."""
    from packmatch.quality.calibration import IGNORE_FROM, calibrate

    started = time.perf_counter()
    rows, reference = input_rows(dataset), reference_rows(dataset)
    ignore_from = 2.0 if indexed else IGNORE_FROM
    report = calibrate(domain_config(body), reference, rows, seed=16, ignore_from=ignore_from)
    return report.proposal.model_dump(mode="json"), time.perf_counter() - started


# --- Splink ----------------------------------------------------------------------------------


def _splink_rows(rows: Sequence[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    """Splink's documented preparation: a unique id, text trimmed and lower-cased, nulls for blanks."""
    prepared = []
    for i, row in enumerate(rows):
        clean = {k: (str(v).strip().lower() or None) for k, v in row.items() if k != "id"}
        prepared.append({"unique_id": row.get("id", f"{prefix}{i}"), **clean})
    return prepared


def splink_settings(dataset: Dataset) -> Any:
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    if dataset.kind == "people":
        comparisons = [
            cl.NameComparison("given_name"),
            cl.NameComparison("surname"),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y-%m-%d"),
            cl.JaroWinklerAtThresholds("street", [0.9, 0.7]),
            cl.ExactMatch("city"),
            cl.DamerauLevenshteinAtThresholds("postcode", [1, 2]),
        ]
        rules = [block_on("given_name"), block_on("surname"), block_on("date_of_birth"), block_on("postcode")]
    else:
        comparisons = [
            cl.JaroWinklerAtThresholds("company", [0.95, 0.88, 0.7]),
            cl.JaroWinklerAtThresholds("street", [0.9, 0.7]),
            cl.ExactMatch("city"),
            cl.DamerauLevenshteinAtThresholds("postcode", [1, 2]),
            cl.DateOfBirthComparison("founded", input_is_string=True, datetime_format="%Y-%m-%d"),
        ]
        rules = [block_on("company"), block_on("postcode"), block_on("founded"), block_on("street")]
    key = "person_id" if dataset.kind == "people" else "vat_id"
    if dataset.with_id:
        comparisons.append(cl.DamerauLevenshteinAtThresholds(key, [1, 2]))
        rules.append(block_on(key))
    return SettingsCreator(
        link_type="link_only", comparisons=comparisons, blocking_rules_to_generate_predictions=rules
    )


def run_splink(dataset: Dataset) -> Score:
    from splink import DuckDBAPI, Linker, block_on

    started = time.perf_counter()
    db_api = DuckDBAPI()
    left = db_api.register(_splink_rows(dataset.reference, "r"), dataset_display_name="reference")
    right = db_api.register(_splink_rows(dataset.inputs, "d"), dataset_display_name="inputs")
    linker = Linker([left, right], splink_settings(dataset), log_level=logging.WARNING)
    first = "given_name" if dataset.kind == "people" else "company"
    second = "surname" if dataset.kind == "people" else "postcode"
    day = "date_of_birth" if dataset.kind == "people" else "founded"
    deterministic = [block_on(first, second, day), block_on(first, "postcode")]
    linker.training.estimate_probability_two_random_records_match(deterministic, recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=16)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on(day))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on(first, second))
    pairs = linker.inference.predict(threshold_match_probability=0.5).as_record_list()
    best: dict[str, tuple[float, str]] = {}
    for pair in pairs:
        ref_id, doc_id = _sides(pair)
        if doc_id not in best or pair["match_probability"] > best[doc_id][0]:
            best[doc_id] = (pair["match_probability"], ref_id)
    predicted = [best[f"d{i}"][1] if f"d{i}" in best else None for i in range(len(dataset.inputs))]
    return score(predicted, dataset.truth, time.perf_counter() - started)


def _sides(pair: dict[str, Any]) -> tuple[str, str]:
    if pair["source_dataset_l"] == "reference":
        return pair["unique_id_l"], pair["unique_id_r"]
    return pair["unique_id_r"], pair["unique_id_l"]


def splink_available() -> bool:
    try:
        import splink  # noqa: F401
    except ImportError:
        return False
    return True


# --- the report ------------------------------------------------------------------------------


def run_dataset(dataset: Dataset, with_splink: bool, calibrate: bool) -> dict[str, Score]:
    scores: dict[str, Score] = {}
    scores["hand"], _ = run_packmatch(dataset, hand_config(dataset))
    tuned = tuned_config(dataset)
    scores["tuned"], _ = run_packmatch(dataset, tuned)
    if calibrate:
        for name, base, indexed in (
            ("calibrated", tuned, False),
            ("cal-indexed", names_config(dataset), True),
        ):
            body, seconds = calibrated_config(dataset, base, indexed=indexed)
            result, _ = run_packmatch(dataset, body)
            scores[name] = Score(result.precision, result.recall, result.f1, result.seconds + seconds)
            print(f"    {name} threshold {body['threshold']}", flush=True)
    if with_splink:
        scores["splink"] = run_splink(dataset)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--levels", nargs="+", default=list(LEVELS), choices=list(LEVELS))
    parser.add_argument("--ids", nargs="+", default=["without", "with"], choices=["without", "with"])
    parser.add_argument("--size", type=int, default=1000, help="reference rows per dataset")
    parser.add_argument("--no-splink", action="store_true")
    parser.add_argument("--no-calibration", action="store_true")
    parser.add_argument("--e2e", type=int, default=0, help="also time N people through the API")
    args = parser.parse_args()
    with_splink = not args.no_splink and splink_available()
    print(f"load average {os.getloadavg()[0]:.2f}; splink {'yes' if with_splink else 'not installed'}")
    for kind in args.kinds:
        for level in args.levels:
            for ids in args.ids:
                dataset = generate(kind, level, args.size, with_id=ids == "with")
                print(
                    f"{kind} / {level} / {ids} id ({args.size} reference, {len(dataset.inputs)} input rows)"
                )
                for name, result in run_dataset(dataset, with_splink, not args.no_calibration).items():
                    print(f"  {name:<11} {result.line()}", flush=True)
    if args.e2e:
        from quality_e2e import end_to_end

        end_to_end(args.e2e, with_splink, run_splink, score, names_config)
    print(f"load average {os.getloadavg()[0]:.2f}")


Runner = Callable[[Dataset], Score]

if __name__ == "__main__":
    main()
