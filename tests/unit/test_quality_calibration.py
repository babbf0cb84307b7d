"""Calibration: the Fellegi–Sunter estimates, and the proposal built from them."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from packmatch.domain.models import FieldMapping, InputRow, MatchingConfig, MissingPolicy, ReferenceRow
from packmatch.quality import fellegi_sunter as fs
from packmatch.quality.calibration import _one_match_per_row, calibrate

LEVELS = len(fs.LEVELS)


def _planted(rng: np.random.Generator, m: np.ndarray, u: np.ndarray, share: float, n: int) -> np.ndarray:
    """Pairs drawn from the model: each a match with probability ``share``."""
    matches = rng.random(n) < share
    levels = np.empty((n, len(m)), dtype=np.int64)
    for f in range(len(m)):
        levels[matches, f] = rng.choice(LEVELS, size=int(matches.sum()), p=m[f])
        levels[~matches, f] = rng.choice(LEVELS, size=int((~matches).sum()), p=u[f])
    return levels


def _distribution(rng: np.random.Generator, top: float) -> np.ndarray:
    rest = rng.dirichlet(np.ones(LEVELS - 1)) * (1 - top)
    return np.asarray(np.r_[top, rest], dtype=np.float64)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), share=st.floats(0.2, 0.6), fields=st.integers(3, 5))
def test_em_recovers_a_planted_model(seed: int, share: float, fields: int) -> None:
    rng = np.random.default_rng(seed)
    m = np.array([_distribution(rng, 0.8) for _ in range(fields)])
    u = np.array([np.r_[0.01, _distribution(rng, 0.0)[1:] * 0.99] for _ in range(fields)])
    levels = _planted(rng, m, u, share, 20_000)
    model = fs.estimate_m(levels, fs.estimate_u(_planted(rng, m, u, 0.0, 50_000)))
    assert model.converged
    assert abs(model.match_share - share) < 0.03
    assert np.abs(model.m - m).max() < 0.05


def test_missing_values_are_no_evidence() -> None:
    m = np.array([[0.9, 0.02, 0.02, 0.02, 0.02, 0.02]])
    u = np.array([[0.01, 0.01, 0.01, 0.01, 0.06, 0.9]])
    levels = np.array([[fs.MISSING], [0]], dtype=np.int64)
    probability = fs.match_probability(levels, m, u, 0.1)
    assert probability[0] == 0.1 or abs(probability[0] - 0.1) < 1e-12
    assert probability[1] > 0.9


def test_scores_fall_into_levels_best_first() -> None:
    assert [fs.level_of(s) for s in (1.0, 0.95, 0.9, 0.75, 0.3, 0.0)] == [0, 1, 2, 3, 4, 5]


# --- the proposal ----------------------------------------------------------------------------


def _config(mappings: list[FieldMapping]) -> MatchingConfig:
    now = datetime.now(UTC)
    return MatchingConfig(
        id=uuid.uuid4(),
        organization_id=uuid.uuid4(),
        name="people",
        reference_data_id=uuid.uuid4(),
        field_mappings=tuple(mappings),
        threshold=0.85,
        version=1,
        created_at=now,
        updated_at=now,
    )


def _people(seed: int) -> tuple[list[ReferenceRow], list[InputRow], list[str | None]]:
    """200 people; inputs copy 150 of them (a name typo or blank now and then) and 20 strangers."""
    rng = random.Random(seed)
    names = ["Anna", "Ben", "Carla", "Dirk", "Eva", "Femke", "Gert", "Hanna", "Ivo", "Jana"]
    surnames = [f"Family{i}" for i in range(40)]

    def person() -> dict[str, str]:
        return {
            "given": rng.choice(names),
            "surname": rng.choice(surnames),
            "born": f"19{rng.randint(40, 99)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            "city": rng.choice(["Ghent", "Lille", "Lyon", "Porto"]),
        }

    people = [person() for _ in range(220)]
    reference = [ReferenceRow(f"r{i}", p) for i, p in enumerate(people[:200])]
    inputs, labels = [], []
    for i, p in enumerate(people[:150] + people[200:]):
        values = dict(p)
        if rng.random() < 0.2:
            values["surname"] = values["surname"][:-1] + "x"
        if rng.random() < 0.1:
            values["born"] = ""
        inputs.append(InputRow(document_id=f"d{i}", values=values))
        labels.append(f"r{i}" if i < 150 else None)
    return reference, inputs, labels


MAPPINGS = [
    FieldMapping(
        source="given", target="given", strategy="fuzzy", weight=1, options={"scorer": "jaro_winkler"}
    ),
    FieldMapping(
        source="surname", target="surname", strategy="fuzzy", weight=1, options={"scorer": "jaro_winkler"}
    ),
    FieldMapping(source="born", target="born", strategy="date_range", weight=1),
    FieldMapping(source="city", target="city", strategy="exact", weight=1),
]


def test_the_same_seed_gives_the_same_report() -> None:
    reference, inputs, _ = _people(1)
    first = calibrate(_config(MAPPINGS), reference, inputs, seed=7)
    again = calibrate(_config(MAPPINGS), reference, inputs, seed=7)
    assert first == again


def test_the_proposal_weighs_telling_fields_more_and_ignores_frequent_blanks() -> None:
    reference, inputs, _ = _people(2)
    report = calibrate(_config(MAPPINGS), reference, inputs, seed=1)
    weights = {f.source: f.weight for f in report.fields}
    assert weights["born"] > weights["city"]  # a birth date tells people apart; 4 cities do not
    missing = {m.source: m.missing for m in report.proposal.field_mappings}
    assert missing["born"] is MissingPolicy.IGNORE
    assert missing["city"] is MissingPolicy.MISMATCH
    assert abs(sum(m.weight for m in report.proposal.field_mappings) - 1) < 0.001
    assert all(f.explanation.startswith(f.source) for f in report.fields)


def test_supervised_calibration_counts_m_on_the_labels() -> None:
    reference, inputs, labels = _people(3)
    report = calibrate(_config(MAPPINGS), reference, inputs, labels, seed=1)
    assert report.method == "supervised"
    assert report.after.basis == "labels"
    assert report.after.precision >= 0.99
    assert report.after.f1 >= report.before.f1
    given_name = next(f for f in report.fields if f.source == "given")
    assert given_name.m > 0.95  # the copies never change a given name


def test_the_proposal_is_a_config_body() -> None:
    reference, inputs, _ = _people(4)
    body = calibrate(_config(MAPPINGS), reference, inputs, seed=1).proposal.model_dump(mode="json")
    assert set(body) == {"name", "field_mappings", "threshold"}
    assert 0 <= body["threshold"] <= 1
    assert all(
        set(m) == {"source", "target", "strategy", "weight", "options", "missing"}
        for m in body["field_mappings"]
    )


def test_a_fuzzy_field_keeps_only_the_levels_worth_their_credit() -> None:
    from packmatch.quality.calibration import _cut_level

    u = np.array([[0.001, 0.001, 0.001, 0.05, 0.9, 0.047]])
    telling = fs.Model(np.array([[0.5, 0.3, 0.15, 0.02, 0.02, 0.01]]), u, 0.2, 1, True)
    near_misses = fs.Model(np.array([[0.5, 0.3, 0.002, 0.02, 0.168, 0.01]]), u, 0.2, 1, True)
    assert fs.LEVELS[_cut_level(telling, 0)] == 0.85  # ≥ 0.85 is as telling as agreement, 0.7 is not
    assert fs.LEVELS[_cut_level(near_misses, 0)] == 0.92  # 0.85–0.92 is as common in non-matches


def test_a_rows_pairs_share_one_match_by_their_odds() -> None:
    # Row 0: two pairs the model finds near-certain (e^30 and e^20 odds); row 1: one even pair;
    # row 2: no pair at all.
    row = np.array([0, 0, 1], dtype=np.int64)
    correct, matches = _one_match_per_row(row, np.array([30.0, 20.0, 0.0]), rows=3)
    # The stronger pair is right almost surely: scaling the two probabilities (≈ 1 each) to share
    # 1 would have made each 0.5, and a perfect agreement look wrong half the time.
    assert correct[0] > 0.9999
    assert correct[1] < 1e-4
    assert abs(correct[0] + correct[1] - 1.0) < 1e-9
    assert abs(correct[2] - 0.5) < 1e-12  # odds 1 against "no match" 1
    assert abs(matches - 1.5) < 1e-4


def test_no_pairs_no_matches() -> None:
    correct, matches = _one_match_per_row(np.zeros(0, dtype=np.int64), np.zeros(0), rows=4)
    assert len(correct) == 0
    assert matches == 0.0
