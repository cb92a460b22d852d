"""Fusing rankings: pure functions from several (rows, scores) rankings to one.

A ranking is a pair of arrays, row ids and their scores, best first, as
each search part of an index returns them (``rag.protocols.SearchPart``). Each function
returns ``[(row, fused score), ...]``, best first, ties broken by row id, so that the same
input always gives the same order.

- :func:`rrf`, reciprocal rank fusion (Cormack et al., 2009): it reads ranks only, so the
  scales of the scores do not matter;
- :func:`convex`, a weighted sum of min-max-normalised scores (Bruch et al., 2023, found it
  at least as good as RRF once its weight is tuned): it keeps how far ahead a passage is.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rag.protocols import Ranking


def rrf(rankings: Sequence[Ranking], k: int = 60) -> list[tuple[int, float]]:
    """Reciprocal rank fusion: each passage scores the sum of 1 / (k + rank) over the rankings.

    Passages ranked (1, 2) and (2, 1) tie under RRF; the tie goes to the one whose scores,
    each divided by the top score of its ranking, add up to more, so a clear win in one
    ranking beats a near-tie in the other.
    """
    fused: dict[int, list[float]] = {}
    for rows, scores in rankings:
        top = float(scores[0]) if len(scores) and scores[0] > 0 else 1.0
        for rank, (row, score) in enumerate(zip(rows, scores), 1):
            entry = fused.setdefault(int(row), [0.0, 0.0])
            entry[0] += 1.0 / (k + rank)
            entry[1] += float(score) / top
    ordered = sorted(fused.items(), key=lambda item: (-item[1][0], -item[1][1], item[0]))
    return [(row, total) for row, (total, _) in ordered]


def min_max(scores: np.ndarray) -> np.ndarray:
    """Scores mapped onto [0, 1] by their own minimum and maximum; all 1 when they are equal."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return scores
    low, high = scores.min(), scores.max()
    return np.ones_like(scores) if high == low else (scores - low) / (high - low)


def convex(rankings: Sequence[Ranking], weights: Sequence[float]) -> list[tuple[int, float]]:
    """A weighted sum of each ranking's min-max-normalised scores; a passage a ranking lacks gets 0 from it.

    Args:
        rankings: the rankings to fuse.
        weights: one non-negative weight per ranking (say, alpha and 1 - alpha).
    """
    if len(weights) != len(rankings) or any(w < 0 for w in weights):
        raise ValueError(f"convex fusion takes one non-negative weight per ranking, got {list(weights)}")
    fused: dict[int, float] = {}
    for (rows, scores), weight in zip(rankings, weights):
        for row, score in zip(rows, min_max(scores)):
            fused[int(row)] = fused.get(int(row), 0.0) + weight * float(score)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))
