"""Upper bounds on rapidfuzz scores, from features of each distinct text computed once.

A fuzzy search only needs the exact score of a text that could reach a cutoff; these bounds,
computed for thousands of texts in a few numpy operations, rule most texts out without scoring them.

- The Indel distance (what ``ratio`` normalises: 100·(1 − distance/(|x| + |y|))) is at least the
  *bag distance* Σ_c |count_x(c) − count_y(c)|, since one insertion or deletion changes one count by
  one, and at least ||x| − |y||. Counting characters in buckets (or capping counts) only lowers it.
- ``token_sort_ratio`` is ``ratio`` of the sorted tokens: the same characters, the same bound.
- ``token_set_ratio`` (rapidfuzz 3): with SA, SB the sorted distinct tokens of each side joined by
  spaces and I their common tokens, it is 100 when I is not empty and one side has no other token;
  otherwise the maximum of (1) ``ratio``-like on the differing tokens, whose character counts differ
  exactly as SA's and SB's do and whose length sum is |SA| + |SB|, so the bag bound of SA, SB holds;
  and, when I is not empty, (2) 100·(1 − (|SA| − s)/(|SA| + s)) and the same with SB, where s is the
  length of I's tokens joined by spaces — computed exactly from the common tokens.
- ``partial_ratio`` and ``WRatio`` have no bound here: every text may reach 100.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np
import numpy.typing as npt

from packmatch.engine.arrays import Floats, Postings, Rows

__all__ = ["BOUNDED_SCORERS", "QueryBound", "TextFeatures"]

BOUNDED_SCORERS = frozenset({"ratio", "token_sort_ratio", "token_set_ratio"})

_BINS = 40  # space, a–z, 0–9 and 3 for any other character (by code point)
_BLOCK = 1 << 16  # texts counted per numpy pass while building (bounds the temporary memory)
_MARGIN = 1e-6  # on a bound (0–100): far above the float error of either side's formula
_ASCII_BINS = np.array(
    [
        0 if c == 32 else 1 + c - 97 if 97 <= c <= 122 else 27 + c - 48 if 48 <= c <= 57 else 37 + c % 3
        for c in range(128)
    ],
    dtype=np.int64,
)

Bools = npt.NDArray[np.bool_]
Counts = npt.NDArray[np.uint8]
Lengths = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class TextFeatures:
    """Per distinct text: its length and character counts, and those of its distinct tokens."""

    lengths: Lengths
    counts: Counts
    count_sums: Lengths
    set_lengths: Lengths
    set_counts: Counts
    set_count_sums: Lengths
    token_counts: Lengths
    token_ids: dict[str, int]
    token_texts: Postings

    @classmethod
    def build(cls, texts: Sequence[str]) -> TextFeatures:
        tokens = [text.split() for text in texts]
        distinct = [sorted(set(split)) if len(set(split)) < len(split) else split for split in tokens]
        token_ids, token_texts = _token_postings(distinct)
        lengths, counts = _character_counts(texts)
        set_lengths, set_counts = lengths.copy(), counts.copy()
        # A text without repeated tokens has the same characters as its distinct tokens joined.
        repeats = [
            code for code, (split, kept) in enumerate(zip(tokens, distinct, strict=True)) if split is not kept
        ]
        if repeats:
            set_lengths[repeats], set_counts[repeats] = _character_counts(
                [" ".join(distinct[c]) for c in repeats]
            )
        return cls(
            lengths=lengths,
            counts=counts,
            count_sums=counts.sum(axis=1, dtype=np.int64),
            set_lengths=set_lengths,
            set_counts=set_counts,
            set_count_sums=set_counts.sum(axis=1, dtype=np.int64),
            token_counts=np.fromiter(map(len, distinct), dtype=np.int64, count=len(distinct)),
            token_ids=token_ids,
            token_texts=token_texts,
        )

    @property
    def nbytes(self) -> int:
        counts = self.counts.nbytes + self.set_counts.nbytes
        lengths = sum(
            a.nbytes for a in (self.lengths, self.count_sums, self.set_lengths, self.set_count_sums)
        )
        tokens = self.token_counts.nbytes + self.token_texts.nbytes + 100 * len(self.token_ids)
        return int(counts + lengths + tokens)

    def for_query(self, query: str, scorer: str) -> QueryBound | None:
        """Bounds for ``query`` with ``scorer``, or None when there is no bound for that scorer."""
        return QueryBound.of(self, query, scorer) if scorer in BOUNDED_SCORERS else None


@dataclass(slots=True)
class QueryBound:
    """Upper bounds (0–100) on ``scorer(query, text)`` for the texts of a column, by text code."""

    features: TextFeatures
    scorer: str
    length: int
    counts: Counts
    count_sum: int
    tokens: list[str]
    _shared: tuple[Floats, Floats] | None = None

    @classmethod
    def of(cls, features: TextFeatures, query: str, scorer: str) -> QueryBound:
        tokens = sorted(set(query.split()))
        compared = " ".join(tokens) if scorer == "token_set_ratio" else query
        lengths, counts = _character_counts([compared])
        return cls(features, scorer, int(lengths[0]), counts[0], int(counts[0].sum()), tokens)

    def upper(self, codes: Rows) -> Floats:
        """A bound ≥ the scorer's raw score of the query against each text in ``codes``."""
        f = self.features
        if self.scorer == "token_set_ratio":
            bound = self._token_set_bound(codes)
        else:
            bound = self._bag_bound(f.lengths, f.counts, f.count_sums, codes)
        return np.minimum(bound + _MARGIN, 100.0)

    def lower(self, codes: Rows) -> Floats:
        """A value ≤ the raw score for each text in ``codes``: 0, or for ``token_set_ratio`` the
        ratios it takes the maximum of that follow from the common tokens alone."""
        if self.scorer != "token_set_ratio":
            return np.zeros(len(codes), dtype=np.float64)
        shared_tokens, shared_chars = self._shared_with()
        lower = np.zeros(len(codes), dtype=np.float64)
        common = np.flatnonzero(shared_tokens[codes])
        if len(common):
            sect_ratio, subset = self._sect_ratio(codes[common], shared_tokens, shared_chars)
            lower[common] = np.where(subset, 100.0, np.maximum(sect_ratio - _MARGIN, 0.0))
        return lower

    def _sect_ratio(self, codes: Rows, shared_tokens: Floats, shared_chars: Floats) -> tuple[Floats, Bools]:
        """For texts with common tokens: the larger sect ratio, and whether one side is a subset."""
        f = self.features
        tokens = shared_tokens[codes]
        sect = shared_chars[codes] + tokens - 1
        # 100·(1 − (|S| − s)/(|S| + s)) is larger for the shorter of SA and SB.
        shorter = np.minimum(f.set_lengths[codes], self.length)
        sect_ratio: Floats = 100 - 100 * (shorter - sect) / (shorter + sect)
        return sect_ratio, (tokens == len(self.tokens)) | (tokens == f.token_counts[codes])

    def _token_set_bound(self, codes: Rows) -> Floats:
        f = self.features
        bound = self._bag_bound(f.set_lengths, f.set_counts, f.set_count_sums, codes)
        shared_tokens, shared_chars = self._shared_with()
        common = np.flatnonzero(shared_tokens[codes])
        if not len(common):
            return bound
        sect_ratio, subset = self._sect_ratio(codes[common], shared_tokens, shared_chars)
        bound[common] = np.where(subset, 100.0, np.maximum(bound[common], sect_ratio))
        return bound

    def _bag_bound(self, lengths: Lengths, counts: Counts, sums: Lengths, codes: Rows) -> Floats:
        """100·(1 − d/(|x| + |y|)), d the larger of the bag distance and the length difference.

        Σ|a − b| = Σa + Σb − 2·Σmin(a, b), over the (capped) counts of the texts ``codes``.
        """
        common = np.minimum(np.take(counts, codes, axis=0), self.counts).sum(axis=1, dtype=np.int64)
        bag = sums[codes] + self.count_sum - 2 * common
        text_lengths = lengths[codes]
        distance = np.maximum(bag, np.abs(text_lengths - self.length))
        bound: Floats = 100 - 100 * distance / (text_lengths + self.length)
        return bound

    def _shared_with(self) -> tuple[Floats, Floats]:
        """For every text: how many of the query's tokens it has, and their total length."""
        if self._shared is None:
            size, ids = len(self.features.lengths), self.features.token_ids
            found = [(self.features.token_texts.rows_of(ids[t]), len(t)) for t in self.tokens if t in ids]
            texts = np.concatenate([rows for rows, _ in found] + [np.empty(0, dtype=np.int64)])
            chars = np.concatenate(
                [np.full(len(rows), n, dtype=np.float64) for rows, n in found] + [np.empty(0)]
            )
            tokens: Floats = np.bincount(texts, minlength=size).astype(np.float64)
            self._shared = (tokens, np.bincount(texts, weights=chars, minlength=size).astype(np.float64))
        return self._shared


def _token_postings(distinct: list[list[str]]) -> tuple[dict[str, int], Postings]:
    """An id for every token, and the texts (by code) that hold each token."""
    flat = list(chain.from_iterable(distinct))
    token_ids = {token: i for i, token in enumerate(dict.fromkeys(flat))}
    ids = np.fromiter(map(token_ids.__getitem__, flat), dtype=np.int64, count=len(flat))
    owners = np.repeat(np.arange(len(distinct)), np.fromiter(map(len, distinct), dtype=np.int64))
    return token_ids, Postings.group(ids, len(token_ids), owners.astype(np.int64))


def _character_counts(texts: Sequence[str]) -> tuple[Lengths, Counts]:
    """Each text's length and its character counts in :data:`_BINS` buckets, capped at 255."""
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    counts = np.empty((len(texts), _BINS), dtype=np.uint8)
    for start in range(0, len(texts), _BLOCK):
        block = texts[start : start + _BLOCK]
        points = np.frombuffer("".join(block).encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        bins = np.where(points < 128, _ASCII_BINS[np.minimum(points, 127)], 37 + points % 3)
        owner = np.repeat(np.arange(len(block)), lengths[start : start + len(block)])
        tally = np.bincount(owner * _BINS + bins, minlength=len(block) * _BINS).reshape(len(block), _BINS)
        counts[start : start + len(block)] = np.minimum(tally, 255)
    return lengths, counts
