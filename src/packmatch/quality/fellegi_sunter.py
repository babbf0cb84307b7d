"""The Fellegi–Sunter model of a pair of records, and its m probabilities by expectation–maximisation.

A compared pair has, per field, an *agreement level* (a bin of the field's score, :data:`LEVELS`)
or no level at all (a value missing on a side: no evidence either way). Among true matches level
l of field f occurs with probability m[f, l], among non-matches with u[f, l]. A pair's match
weight is Σ log2(m/u) over its fields with a level, and its match probability follows from that
and the share λ of matches among the pairs.

:func:`estimate_u` counts levels among random pairs (nearly all non-matches); :func:`estimate_m`
runs EM on candidate pairs with u held fixed, as Splink does by default; :func:`count_m` counts them
among labelled matches. Pure numpy, deterministic: the same inputs give the same estimates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "LEVELS",
    "LEVEL_NAMES",
    "MISSING",
    "Model",
    "count_m",
    "estimate_m",
    "estimate_u",
    "level_of",
    "match_logit",
    "match_probability",
]

Levels = npt.NDArray[np.int64]  # (pairs, fields): a level index, or MISSING
Table = npt.NDArray[np.float64]  # (fields, levels)

# Lower edges of the score bins, best first: 1 exactly, then ≥ 0.92, ≥ 0.85, ≥ 0.7, > 0, and 0.
LEVELS = (1.0, 0.92, 0.85, 0.7, 1e-12, 0.0)
LEVEL_NAMES = ("1", "≥ 0.92", "≥ 0.85", "≥ 0.7", "> 0", "0")
MISSING = -1
SMOOTHING = 0.5  # pseudo-count per level, so that no probability is 0
FLOOR = 1e-6


def level_of(score: float) -> int:
    """The bin of a field score in [0, 1] (0 = full agreement)."""
    for level, edge in enumerate(LEVELS):
        if score >= edge:
            return level
    return len(LEVELS) - 1


@dataclass(frozen=True)
class Model:
    """m and u per field and level, the share of matches, and how EM ended."""

    m: Table
    u: Table
    match_share: float
    iterations: int
    converged: bool

    def log2_ratio(self) -> Table:
        return np.log2(self.m / self.u)


def _counts(levels: Levels, fields: int, weights: npt.NDArray[np.float64] | None = None) -> Table:
    counts = np.zeros((fields, len(LEVELS)), dtype=np.float64)
    for f in range(fields):
        present = levels[:, f] >= 0
        w = None if weights is None else weights[present]
        counts[f] = np.bincount(levels[present, f], weights=w, minlength=len(LEVELS))
    return counts


def _normalised(counts: Table, smoothing: float) -> Table:
    counts = counts + smoothing
    return np.asarray(np.maximum(counts / counts.sum(axis=1, keepdims=True), FLOOR), dtype=np.float64)


def estimate_u(levels: Levels) -> Table:
    """u from random pairs: each level's share among the pairs where the field has one."""
    return _normalised(_counts(levels, levels.shape[1]), SMOOTHING)


def count_m(levels: Levels) -> Table:
    """m from known matches: each level's share among them (supervised calibration)."""
    return _normalised(_counts(levels, levels.shape[1]), SMOOTHING)


def _log_likelihoods(levels: Levels, table: Table) -> npt.NDArray[np.float64]:
    logs = np.log(table)
    total = np.zeros(len(levels), dtype=np.float64)
    for f in range(levels.shape[1]):
        present = levels[:, f] >= 0
        total[present] += logs[f, levels[present, f]]
    return total


def match_logit(levels: Levels, m: Table, u: Table, match_share: float) -> npt.NDArray[np.float64]:
    """Each pair's log-odds (natural log) of being a match under the model."""
    share = min(max(match_share, FLOOR), 1 - FLOOR)
    logit = np.log(share / (1 - share)) + _log_likelihoods(levels, m) - _log_likelihoods(levels, u)
    return np.asarray(logit, dtype=np.float64)


def match_probability(levels: Levels, m: Table, u: Table, match_share: float) -> npt.NDArray[np.float64]:
    """Each pair's probability of being a match under the model (Bayes' rule on its levels)."""
    logit = match_logit(levels, m, u, match_share)
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(logit, -700, 700))), dtype=np.float64)


def _initial_m(fields: int) -> Table:
    """A match usually agrees: most mass on the top level, falling by half per level."""
    start = np.array([0.5**level for level in range(len(LEVELS))], dtype=np.float64)
    return np.tile(start / start.sum(), (fields, 1))


def estimate_m(
    levels: Levels,
    u: Table,
    *,
    match_share: float = 0.2,
    m: Table | None = None,
    max_iterations: int = 200,
    tolerance: float = 1e-6,
) -> Model:
    """EM for m and the match share on blocked pairs, with u fixed (from random pairs). With ``m``
    given, only the match share is estimated (m stays fixed)."""
    fixed = m is not None
    m = _initial_m(levels.shape[1]) if m is None else m
    share = match_share
    for iteration in range(1, max_iterations + 1):
        posterior = match_probability(levels, m, u, share)
        new_m = m if fixed else _normalised(_counts(levels, levels.shape[1], posterior), FLOOR)
        new_share = float(posterior.mean()) if len(posterior) else share
        change = max(float(np.abs(new_m - m).max()), abs(new_share - share))
        m, share = new_m, new_share
        if change < tolerance:
            return Model(m, u, share, iteration, True)
    return Model(m, u, share, max_iterations, False)
