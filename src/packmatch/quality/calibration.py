"""Calibration: weights, `missing` policies and a threshold for a config, learnt from its data.

:func:`calibrate` compares input rows with the reference rows under the config's own strategies and
fits the Fellegi–Sunter model (:mod:`.fellegi_sunter`) to the scores:

1. **Pairs.** *Candidate pairs*: each input row's top candidates under a plain version of the
   config (equal weights, default options: the indexed search, fast), plus its labelled reference
   row when labels are given. *Random pairs*: ``sample_pairs`` input × reference pairs drawn with
   ``seed``, nearly all non-matches.
2. **m and u.** u per field and agreement level from the random pairs. m, as Splink does, by EM
   on *blocked pairs*: for each field, the pairs whose texts are equal in it (at most
   :data:`BLOCK_PAIRS`, drawn with ``seed``), estimating the m of the other fields with u fixed
   (blocking on one field leaves the others independent among non-matches); each field's m is
   the mean over the blocks on the other fields. With labels, m is counted on the labelled
   matches. The share of matches among the candidate pairs is then fitted by EM with m and u
   fixed.
3. **Weights.** A field's evidence runs from log2(m/u) at full agreement to log2(m/u) at
   disagreement; the packmatch weight is that range (in bits), scaled so that the weights sum to
   1. Since a field contributes weight × score, the row confidence is then an affine function of
   the Fellegi–Sunter match weight (exactly, for two-level fields without blanks), so ranking by
   confidence ranks by match weight. A `fuzzy` field's ``min_similarity`` becomes the lowest
   score level whose evidence is worth the credit a linear score gives it (:func:`_cut_level`):
   a street number off by one ("114 Sunset Avenue" vs "115 Sunset Lane", token_set_ratio ≈ 0.8)
   is then no evidence rather than 80% of a match.
4. **Missing.** ``ignore`` when a value is blank in ≥ ``ignore_from`` (default
   :data:`IGNORE_FROM`) of the pairs (a blank is no evidence), else the config's own policy. Pass
   ``ignore_from`` > 1 to keep the config's policies.
5. **Threshold.** On the candidate pairs re-scored by the proposal: the threshold with the best F1
   among those whose precision is ≥ :data:`TARGET_PRECISION`, precision and recall estimated from
   the model's match probabilities (or counted from the labels). An input row matches one
   reference row at most, so a pair's probability of being right is its odds over one plus the
   odds of all its row's pairs (:func:`_one_match_per_row`).

The result is a :class:`CalibrationReport` whose ``proposal`` is a config body the user may PUT;
nothing is applied. Pure: values in, values out (the engine does the scoring).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from packmatch.domain.calibrations import (
    CalibrationReport,
    ConfigProposal,
    Estimate,
    FieldCalibration,
    LevelEstimate,
)
from packmatch.domain.models import (
    FieldMapping,
    InputRow,
    MatchingConfig,
    MissingPolicy,
    ReferenceRow,
    Strategy,
)
from packmatch.engine.normalise import normalise_text
from packmatch.engine.plan import MISSING_REASONS, Plan, confidence, field_scores, make_plan
from packmatch.engine.scoring import Matcher
from packmatch.quality import fellegi_sunter as fs

__all__ = [
    "DEFAULT_SAMPLE_PAIRS",
    "IGNORE_FROM",
    "TARGET_PRECISION",
    "CalibrationReport",
    "ConfigProposal",
    "Estimate",
    "FieldCalibration",
    "LevelEstimate",
    "calibrate",
]

DEFAULT_SAMPLE_PAIRS = 20_000
BLOCK_PAIRS = 20_000  # pairs per blocking field, at most
IGNORE_FROM = 0.02  # a field blank in at least this share of pairs gets `missing: ignore`
TARGET_PRECISION = 0.99
# m is taken as at least this in the weights: data is never perfect, so a field that no match in
# the sample disagrees on is not infinitely telling (its disagreement costs log2(1% / u) at most).
EVIDENCE_FLOOR = 0.01
MIN_WEIGHT = 0.0001
CREDIT_SHARE = 0.9  # see _cut_level  # weights are > 0: a field without evidence keeps this much
DIGITS = 4


def calibrate(
    config: MatchingConfig,
    reference: Sequence[ReferenceRow],
    rows: Sequence[InputRow],
    labels: Sequence[str | None] | None = None,
    *,
    sample_pairs: int = DEFAULT_SAMPLE_PAIRS,
    seed: int = 0,
    ignore_from: float = IGNORE_FROM,
) -> CalibrationReport:
    """Propose weights, `missing` policies and a threshold for ``config`` (module docstring).
    ``labels[i]``, when given, is the reference row id that ``rows[i]`` truly matches, or None."""
    plan = make_plan(config.field_mappings)
    by_id = {row.id: row for row in reference}
    pairs = _candidate_pairs(config, reference, rows, labels, by_id)
    candidate_levels = _levels(plan, rows, pairs)
    random_levels = _levels(plan, rows, _random_pairs(len(rows), reference, sample_pairs, seed))
    u = fs.estimate_u(random_levels)
    if labels is None:
        m, iterations, converged = _blocked_m(plan, rows, reference, u, seed)
        model = fs.estimate_m(candidate_levels, u, m=m)
        model = fs.Model(m, u, model.match_share, iterations, converged)
    else:
        truth = [i for i, (row, ref) in enumerate(pairs) if labels[row] == ref.id]
        model = _supervised(candidate_levels, truth, u)
    blanks = _blank_shares(candidate_levels, random_levels)
    mappings, fields = _propose_mappings(plan, config.field_mappings, model, blanks, ignore_from)
    logit = fs.match_logit(candidate_levels, model.m, model.u, model.match_share)
    outcome = _Outcome(pairs, labels, logit, len(rows))
    after_plan = make_plan(mappings)
    after_conf = _confidences(after_plan, rows, pairs)
    threshold = outcome.best_threshold(after_conf)
    return CalibrationReport(
        method="unsupervised" if labels is None else "supervised",
        rows=len(rows),
        candidate_pairs=len(pairs),
        random_pairs=len(random_levels),
        match_share=round(model.match_share, 6),
        iterations=model.iterations,
        converged=model.converged,
        fields=fields,
        before=outcome.estimate(_confidences(plan, rows, pairs), config.threshold),
        after=outcome.estimate(after_conf, threshold),
        proposal=ConfigProposal(name=config.name, field_mappings=mappings, threshold=threshold),
        explanation=_summary(labels is not None, model, threshold),
    )


# --- pairs -----------------------------------------------------------------------------------

Pair = tuple[int, ReferenceRow]  # (input row index, reference row)


def _plain(config: MatchingConfig) -> MatchingConfig:
    """The config with equal weights and default options: candidates for the sample, indexed."""
    plain = [
        FieldMapping(
            source=m.source, target=m.target, strategy=m.strategy, weight=1.0, options=_plain_options(m)
        )
        for m in config.field_mappings
    ]
    return config.model_copy(update={"field_mappings": tuple(plain), "threshold": 0.0})


def _plain_options(mapping: FieldMapping) -> dict[str, object]:
    keep = {
        Strategy.EXACT: (),
        Strategy.FUZZY: (),
        Strategy.NUMERIC_RANGE: ("tolerance_abs", "tolerance_pct"),
        Strategy.DATE_RANGE: ("tolerance_days", "formats"),
    }[mapping.strategy]
    return {k: v for k, v in mapping.options.items() if k in keep}


def _candidate_pairs(
    config: MatchingConfig,
    reference: Sequence[ReferenceRow],
    rows: Sequence[InputRow],
    labels: Sequence[str | None] | None,
    by_id: dict[str, ReferenceRow],
) -> list[Pair]:
    matcher = Matcher(_plain(config), reference)
    pairs: list[Pair] = []
    for i, row in enumerate(rows):
        ids = [c.reference_row_id for c in matcher.match(row).candidates]
        label = labels[i] if labels is not None else None
        if label is not None and label not in ids:
            ids.append(label)
        pairs.extend((i, by_id[row_id]) for row_id in ids)
    return pairs


def _random_pairs(rows: int, reference: Sequence[ReferenceRow], count: int, seed: int) -> list[Pair]:
    if not rows or not reference or count <= 0:
        return []
    rng = np.random.default_rng(seed)
    left = rng.integers(0, rows, size=count)
    right = rng.integers(0, len(reference), size=count)
    return [(int(i), reference[int(j)]) for i, j in zip(left, right, strict=True)]


def _blocked_pairs(
    source: str,
    target: str,
    rows: Sequence[InputRow],
    reference: Sequence[ReferenceRow],
    rng: np.random.Generator,
) -> list[Pair]:
    """Pairs whose normalised texts are equal in one field, at most :data:`BLOCK_PAIRS`."""
    groups: dict[str, list[int]] = {}
    for j, ref in enumerate(reference):
        text = normalise_text(ref.values.get(target))
        if text is not None:
            groups.setdefault(text, []).append(j)
    pairs = [
        (i, j)
        for i, row in enumerate(rows)
        if (text := normalise_text(row.values.get(source))) is not None
        for j in groups.get(text, ())
    ]
    if len(pairs) > BLOCK_PAIRS:
        pairs = [pairs[k] for k in sorted(rng.choice(len(pairs), BLOCK_PAIRS, replace=False))]
    return [(i, reference[j]) for i, j in pairs]


def _blocked_m(
    plan: Plan, rows: Sequence[InputRow], reference: Sequence[ReferenceRow], u: fs.Table, seed: int
) -> tuple[fs.Table, int, bool]:
    """m of each field: the mean of its EM estimates in the blocks on the other fields."""
    rng = np.random.default_rng(seed)
    total = np.zeros_like(u)
    blocks = np.zeros(len(plan.fields))
    iterations, converged = 0, True
    for f, field in enumerate(plan.fields):
        levels = _levels(plan, rows, _blocked_pairs(field.source, field.target, rows, reference, rng))
        if len(levels) < 10:
            continue
        levels[:, f] = fs.MISSING  # the blocking field is no evidence within its block
        model = fs.estimate_m(levels, u)
        others = np.arange(len(plan.fields)) != f
        total[others] += model.m[others]
        blocks[others] += 1
        iterations = max(iterations, model.iterations)
        converged = converged and model.converged
    m = np.where(
        blocks[:, None] > 0,
        total / np.maximum(blocks, 1)[:, None],
        fs.count_m(np.empty((0, len(u)), dtype=np.int64)),
    )
    return m, iterations, converged


def _levels(plan: Plan, rows: Sequence[InputRow], pairs: Sequence[Pair]) -> fs.Levels:
    levels = np.empty((len(pairs), len(plan.fields)), dtype=np.int64)
    for p, (i, ref) in enumerate(pairs):
        for f, score in enumerate(field_scores(plan, rows[i].values, ref)):
            levels[p, f] = fs.MISSING if score.reason in MISSING_REASONS else fs.level_of(score.score)
    return levels


def _confidences(plan: Plan, rows: Sequence[InputRow], pairs: Sequence[Pair]) -> npt.NDArray[np.float64]:
    return np.array(
        [confidence(plan, field_scores(plan, rows[i].values, ref)) or 0.0 for i, ref in pairs],
        dtype=np.float64,
    )


def _supervised(levels: fs.Levels, truth: list[int], u: fs.Table) -> fs.Model:
    share = len(truth) / len(levels) if len(levels) else 0.0
    return fs.Model(fs.count_m(levels[truth]), u, share, 0, True)


def _blank_shares(*samples: fs.Levels) -> npt.NDArray[np.float64]:
    stacked = np.concatenate(samples)
    if not len(stacked):
        return np.zeros(samples[0].shape[1])
    return np.asarray((stacked == fs.MISSING).mean(axis=0), dtype=np.float64)


# --- the proposal ----------------------------------------------------------------------------


def _propose_mappings(
    plan: Plan,
    mappings: Sequence[FieldMapping],
    model: fs.Model,
    blanks: npt.NDArray[np.float64],
    ignore_from: float,
) -> tuple[list[FieldMapping], list[FieldCalibration]]:
    bits: list[float] = []
    options = []
    for f, mapping in enumerate(mappings):
        cut = _cut_level(model, f) if mapping.strategy is Strategy.FUZZY else len(fs.LEVELS) - 2
        top, bottom = _evidence(model, f, slice(0, 1)), _evidence(model, f, slice(cut + 1, None))
        bits.append(max(top - bottom, 0.0))
        extra: dict[str, object] = {}
        if mapping.strategy is Strategy.FUZZY:
            extra["min_similarity"] = fs.LEVELS[cut]
        options.append({**mapping.options, **extra})
    total = sum(bits) or 1.0
    proposed, fields = [], []
    for f, mapping in enumerate(mappings):
        weight = max(round(bits[f] / total, DIGITS), MIN_WEIGHT)
        missing = MissingPolicy.IGNORE if blanks[f] >= ignore_from else mapping.missing
        proposed.append(
            mapping.model_copy(update={"weight": weight, "options": options[f], "missing": missing})
        )
        fields.append(_field_report(plan.fields[f].key, mapping, model, f, weight, missing, float(blanks[f])))
    return proposed, fields


def _evidence(model: fs.Model, f: int, levels: slice) -> float:
    """log2 m/u of a field's levels taken together (m at least :data:`EVIDENCE_FLOOR`)."""
    m = max(float(model.m[f, levels].sum()), EVIDENCE_FLOOR)
    return math.log2(m / float(model.u[f, levels].sum()))


def _cut_level(model: fs.Model, f: int) -> int:
    """The lowest level a fuzzy field's ``min_similarity`` keeps: a score s ≥ the cut earns s·weight,
    so each kept level's evidence must be worth at least :data:`CREDIT_SHARE` × its lower edge ×
    the field's whole range (full agreement vs the levels cut away); at most the ``≥ 0.7`` level."""
    top = _evidence(model, f, slice(0, 1))
    cut = 0
    for candidate in range(1, 4):
        bottom = _evidence(model, f, slice(candidate + 1, None))
        whole = top - bottom
        if whole <= 0 or any(
            _evidence(model, f, slice(level, level + 1)) - bottom < CREDIT_SHARE * fs.LEVELS[level] * whole
            for level in range(1, candidate + 1)
        ):
            break
        cut = candidate
    return cut


def _field_report(
    key: str,
    mapping: FieldMapping,
    model: fs.Model,
    f: int,
    weight: float,
    missing: MissingPolicy,
    blank: float,
) -> FieldCalibration:
    m, u = float(model.m[f, 0]), float(model.u[f, 0])
    zero_m, zero_u = float(model.m[f, -1]), float(model.u[f, -1])
    levels = [
        LevelEstimate(
            level=name,
            m=round(float(model.m[f, level]), 6),
            u=round(float(model.u[f, level]), 6),
            log2_ratio=round(float(math.log2(model.m[f, level] / model.u[f, level])), 3),
        )
        for level, name in enumerate(fs.LEVEL_NAMES)
    ]
    text = (
        f"{key}: scores 1 for {m:.1%} of matches and {u:.2%} of random pairs, so full agreement is "
        f"{m / u:,.0f}× more likely for a match ({math.log2(m / u):+.1f} bits); a score of 0 is "
        f"{zero_m:.1%} vs {zero_u:.1%} ({math.log2(zero_m / zero_u):+.1f} bits). Weight {weight:g}. "
        f"Blank in {blank:.0%} of the pairs compared: missing {missing.value}."
    )
    return FieldCalibration(
        source=mapping.source,
        target=mapping.target,
        strategy=mapping.strategy,
        m=round(m, 6),
        u=round(u, 6),
        blank_share=round(blank, 4),
        weight=weight,
        missing=missing,
        levels=levels,
        explanation=text,
    )


def _summary(supervised: bool, model: fs.Model, threshold: float) -> str:
    basis = "counted on the labelled matches" if supervised else f"by EM ({model.iterations} iterations)"
    return (
        f"m probabilities {basis}, u from random pairs; weights are each field's evidence in bits "
        f"(log2 m/u at full agreement minus at disagreement), scaled to sum to 1. Threshold {threshold:g}: "
        f"the best F1 with precision ≥ {TARGET_PRECISION:g} on the candidate pairs. Nothing is applied: "
        "PUT the proposal to use it."
    )


class _Outcome:
    """Which candidate pairs are matches: labelled truth, or the model's match probabilities."""

    def __init__(
        self,
        pairs: list[Pair],
        labels: Sequence[str | None] | None,
        logit: npt.NDArray[np.float64],
        rows: int,
    ) -> None:
        self.row = np.array([i for i, _ in pairs], dtype=np.int64)
        self.rows = rows
        self.labelled = labels is not None
        if labels is None:
            self.correct, self.matches = _one_match_per_row(self.row, logit, rows)
        else:
            self.correct = np.array([1.0 if labels[i] == ref.id else 0.0 for i, ref in pairs])
            self.matches = float(sum(1 for label in labels if label is not None))

    def _best(self, conf: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Per row with a candidate: its best confidence and whether that candidate is right."""
        order = np.lexsort((np.arange(len(conf)), -conf, self.row))
        first = order[np.r_[True, self.row[order][1:] != self.row[order][:-1]]] if len(order) else order
        return conf[first], self.correct[first]

    def estimate(self, conf: npt.NDArray[np.float64], threshold: float) -> Estimate:
        best, right = self._best(conf)
        chosen = best >= threshold
        return self._estimate(float(right[chosen].sum()), float(chosen.sum()), threshold)

    def _estimate(self, tp: float, predicted: float, threshold: float) -> Estimate:
        precision = tp / predicted if predicted else 1.0
        recall = min(tp / self.matches, 1.0) if self.matches else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return Estimate(
            basis="labels" if self.labelled else "model",
            threshold=threshold,
            precision=round(precision, DIGITS),
            recall=round(recall, DIGITS),
            f1=round(f1, DIGITS),
        )

    def best_threshold(self, conf: npt.NDArray[np.float64]) -> float:
        best, right = self._best(conf)
        if not len(best):
            return 0.85
        order = np.argsort(-best, kind="stable")
        best, right = best[order], right[order]
        tp = np.cumsum(right)
        predicted = np.arange(1, len(best) + 1)
        precision = tp / predicted
        recall = tp / self.matches if self.matches else np.ones(len(best))
        f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
        # Only cut between distinct confidences, so a threshold takes whole ties.
        cuttable = np.r_[best[1:] < best[:-1], True]
        good = cuttable & (precision >= TARGET_PRECISION)
        pick = int(np.argmax(np.where(good if good.any() else cuttable, f1, -1.0)))
        below = float(best[pick + 1]) if pick + 1 < len(best) else 0.0
        return _between(float(best[pick]), below)


def _one_match_per_row(
    row: npt.NDArray[np.int64], logit: npt.NDArray[np.float64], rows: int
) -> tuple[npt.NDArray[np.float64], float]:
    """Each pair's probability of being its input row's one match, and the expected number of rows
    with a match, when an input row matches one reference row at most: with odds o_j = e^logit_j,
    pair j is the match with probability o_j / (1 + Σ_row o_k) (no match: 1 / (1 + Σ_row o_k)).
    Normalising the pairs' own probabilities instead would let two near-certain pairs of a row
    (the model counts agreeing fields as independent evidence) halve each other, so that even
    perfect agreements looked 50% right and no threshold reached the target precision."""
    if not len(row):
        return np.zeros(0), 0.0
    top = np.full(rows, 0.0)  # the row's largest logit, at least 0 (the no-match term), for stability
    np.maximum.at(top, row, logit)
    odds = np.exp(logit - top[row])
    total = np.exp(-top)  # the no-match term, scaled like the odds
    np.add.at(total, row, odds)
    correct = odds / total[row]
    seen = np.zeros(rows, dtype=bool)
    seen[row] = True
    matched = 1.0 - np.exp(-top) / total
    return np.asarray(correct, dtype=np.float64), float(matched[seen].sum())


def _between(last_in: float, first_out: float) -> float:
    """A round threshold at or below ``last_in`` and, when there is room, above ``first_out``."""
    middle = math.floor((last_in + first_out) / 2 * 10**DIGITS) / 10**DIGITS
    if middle <= first_out:
        middle = math.floor(last_in * 10**DIGITS) / 10**DIGITS
    return float(min(max(middle, 0.0), 1.0))
