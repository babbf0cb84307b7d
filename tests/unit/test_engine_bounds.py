"""The text bounds bound: upper never below the score rapidfuzz computes, lower never above."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from packmatch.engine.bounds import BOUNDED_SCORERS, TextFeatures
from packmatch.engine.normalise import normalise_text
from packmatch.engine.strategies import SCORERS

WORDS = [
    "acme",
    "ltd",
    "acme-ltd",
    "ocean",
    "oceans",
    "blue",
    "a",
    "ab",
    "ba",
    "b",
    "12",
    "é",
    "straße",
    "ＡＢ",
]
TEXTS = (
    st.one_of(
        st.lists(st.sampled_from(WORDS), min_size=1, max_size=6).map(" ".join),
        st.text(alphabet="ab c1é\u00a0", min_size=1, max_size=12),
        st.text(min_size=1, max_size=12),
        st.just("a" * 300 + " b"),
    )
    .map(normalise_text)
    .filter(lambda text: text is not None)
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(BOUNDED_SCORERS)), TEXTS, st.lists(TEXTS, min_size=1, max_size=8))
def test_bounds_are_never_on_the_wrong_side_of_the_score(scorer: str, query: str, texts: list[str]) -> None:
    bound = TextFeatures.build(texts).for_query(query, scorer)
    assert bound is not None
    upper, lower = bound.upper(np.arange(len(texts))), bound.lower(np.arange(len(texts)))
    scores = [SCORERS[scorer](query, text) for text in texts]
    assert all(u >= s for u, s in zip(upper.tolist(), scores, strict=True)), (upper, scores)
    assert all(lo <= s for lo, s in zip(lower.tolist(), scores, strict=True)), (lower, scores)


@pytest.mark.parametrize("scorer", ["partial_ratio", "WRatio"])
def test_scorers_without_a_bound_get_none(scorer: str) -> None:
    assert TextFeatures.build(["acme"]).for_query("acme", scorer) is None


def test_a_bound_rules_out_a_text_with_other_letters() -> None:
    features = TextFeatures.build(["nordic atlas freight gmbh", "acme logistics ltd", "acme ltd"])
    bound = features.for_query("acme ltd", "token_set_ratio")
    assert bound is not None
    assert bound.upper(np.array([0, 1, 2])).tolist()[0] < 60
    assert bound.upper(np.array([1, 2])).tolist() == [100.0, 100.0]
