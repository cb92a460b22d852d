"""Turn a window's start/end logits into scored answer spans.

A span (i, j) scores ``start[i] + end[j] - (start[0] + end[0])``: its margin over the
window's own "no answer" ([CLS] at position 0). The margin, unlike the raw logit
sum, means the same in every window and passage, so spans can be compared across them.
Only context tokens may start or end a span, j >= i, and j - i < ``max_answer_tokens``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rag.settings import check_positive_int


@dataclass(frozen=True)
class SpanCandidate:
    """A span in token positions of one window, with its margin over no-answer."""

    score: float
    start: int
    end: int


def best_spans(start_logits: np.ndarray, end_logits: np.ndarray, context: np.ndarray,
               max_answer_tokens: int, top_n: int) -> list[SpanCandidate]:
    """The ``top_n`` best valid spans of one window, best first.

    Args:
        start_logits: shape (seq_len,), the model's start scores.
        end_logits: shape (seq_len,), the model's end scores.
        context: shape (seq_len,) bool, True on the tokens of the passage (not the question,
            special tokens or padding).
        max_answer_tokens: longest span allowed, in tokens.
        top_n: how many spans to return at most.

    Returns:
        Spans with their margin over the window's no-answer score.
    """
    check_positive_int("max_answer_tokens", max_answer_tokens)
    positions = np.flatnonzero(context)
    if positions.size == 0 or top_n < 1:
        return []
    null = float(start_logits[0] + end_logits[0])
    starts = start_logits[positions].astype(np.float64)
    ends = end_logits[positions].astype(np.float64)
    scores = starts[:, None] + ends[None, :]
    # Valid: end at or after start, within the length limit (in token positions, so that
    # a gap in the context mask never lets a span jump over question tokens).
    length = positions[None, :] - positions[:, None]
    scores[(length < 0) | (length >= max_answer_tokens)] = -np.inf
    flat = scores.ravel()
    n = min(top_n, int(np.isfinite(flat).sum()))
    if n == 0:
        return []
    best = np.argpartition(-flat, n - 1)[:n]
    best = best[np.argsort(-flat[best], kind="stable")]
    rows, cols = np.unravel_index(best, scores.shape)
    return [SpanCandidate(float(flat[b]) - null, int(positions[r]), int(positions[c]))
            for b, r, c in zip(best, rows, cols)]
