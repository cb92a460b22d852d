"""Fusion functions: pure, on hand-made rankings."""

import numpy as np
import pytest

from rag.search.fusion import convex, min_max, rrf


def ranking(rows, scores):
    return np.array(rows), np.array(scores, dtype=np.float32)


def test_rrf_sums_reciprocal_ranks():
    fused = dict(rrf([ranking([1, 2, 3], [9, 8, 7]), ranking([3, 1], [0.9, 0.8])], k=60))
    assert fused[1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[3] == pytest.approx(1 / 63 + 1 / 61)
    assert fused[2] == pytest.approx(1 / 62)
    assert [row for row, _ in rrf([ranking([1, 2, 3], [9, 8, 7]), ranking([3, 1], [0.9, 0.8])])] == [1, 3, 2]


def test_rrf_breaks_a_rank_tie_by_the_clearer_win():
    # 5 is (1st, 2nd) and 6 is (2nd, 1st); 5 leads the first ranking by far, 6 the second by a hair.
    fused = rrf([ranking([5, 6], [10.0, 1.0]), ranking([6, 5], [0.51, 0.50])])
    assert [row for row, _ in fused] == [5, 6]


def test_convex_weighs_normalised_scores_and_a_missing_passage_gets_nothing():
    dense, sparse = ranking([1, 2, 3], [0.9, 0.5, 0.1]), ranking([3, 4], [20.0, 10.0])
    fused = dict(convex([dense, sparse], [0.7, 0.3]))
    assert fused[1] == pytest.approx(0.7)
    assert fused[2] == pytest.approx(0.7 * 0.5)
    assert fused[3] == pytest.approx(0.3)  # last in dense (0), first in sparse (1)
    assert fused[4] == pytest.approx(0.0)
    assert [row for row, _ in convex([dense, sparse], [0.0, 1.0])][:1] == [3]


def test_fusion_is_deterministic_on_ties_and_empty_rankings():
    empty = ranking([], [])
    assert rrf([empty, empty]) == [] and convex([empty, empty], [0.5, 0.5]) == []
    assert [row for row, _ in convex([ranking([9, 4], [1.0, 1.0])], [1.0])] == [4, 9]
    assert list(min_max(np.array([3.0, 3.0]))) == [1.0, 1.0]
    with pytest.raises(ValueError, match="one non-negative weight per ranking"):
        convex([empty], [0.5, 0.5])
