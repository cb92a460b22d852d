"""Turn a window's start/end logits into answer spans: score, then snap to words, then trim.

A span (i, j) scores ``start[i] + end[j] - (start[0] + end[0])``: its margin over the
window's own "no answer" ([CLS] at position 0). The margin, unlike the raw logit
sum, means the same in every window and passage, so spans can be compared across them.
Only context tokens may start or end a span, j >= i, and j - i < ``max_answer_tokens``.

A :class:`SpanPrior`, fitted on held-out data (``rag.training.calibrate``), adds what the
logits do not know: how long answers are (a log prior on the span's length in tokens), and
that an answer rarely runs across a sentence end (a penalty, so that only a span the model
is sure of still does).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from rag.settings import check_positive_int

_EDGE_PUNCTUATION = frozenset(",;:")


@dataclass(frozen=True)
class SpanPrior:
    """What decoding adds to a span's margin beyond the logits.

    Args:
        length_log_prior: item L - 1 is added to spans of L tokens (0 for longer spans).
        crossing_penalty: subtracted from a span that runs across a sentence end.
    """

    length_log_prior: tuple[float, ...] = ()
    crossing_penalty: float = 0.0


_SENTENCE_END = frozenset(".!?")


def sentence_ends(offsets: list[tuple[int, int]], text: str, context: np.ndarray) -> np.ndarray:
    """True on each context token that ends a sentence: ".", "!" or "?" before a space and a capital.

    ``offsets`` index ``text`` (the passage), as a window's offsets do on its context tokens.
    "U.S. drone" or "3.5" end nothing; "Mr. Smith" does, which the penalty's softness allows for.
    """
    ends = np.zeros(len(offsets), dtype=bool)
    for t in np.flatnonzero(context):
        start, end = offsets[t]
        if end - start == 1 and text[start] in _SENTENCE_END:
            after = text[end:end + 3]
            ends[t] = len(after) >= 2 and after[0].isspace() and (after[1].isupper() or after[1] in "\"'“‘")
    return ends


@dataclass(frozen=True)
class SpanCandidate:
    """A span in token positions of one window, with its margin over no-answer."""

    score: float
    start: int
    end: int


def best_spans(start_logits: np.ndarray, end_logits: np.ndarray, context: np.ndarray,
               max_answer_tokens: int, top_n: int, prior: SpanPrior | None = None,
               sentence_end: np.ndarray | None = None) -> list[SpanCandidate]:
    """The ``top_n`` best valid spans of one window, best first.

    Args:
        start_logits: shape (seq_len,), the model's start scores.
        end_logits: shape (seq_len,), the model's end scores.
        context: shape (seq_len,) bool, True on the tokens of the passage (not the question,
            special tokens or padding).
        max_answer_tokens: longest span allowed, in tokens.
        top_n: how many spans to return at most.
        prior: length prior and sentence-crossing penalty, added to the margins.
        sentence_end: shape (seq_len,) bool, the tokens that end a sentence (see
            :func:`sentence_ends`); needed for the crossing penalty.

    Returns:
        Spans with their margin over the window's no-answer score (plus the prior).
    """
    check_positive_int("max_answer_tokens", max_answer_tokens)
    positions = np.flatnonzero(context)
    if positions.size == 0 or top_n < 1:
        return []
    null = float(start_logits[0] + end_logits[0])
    # Only the band of spans that start at context token r and end at one of the next
    # max_answer_tokens context tokens can be valid: an n x width table, not n x n.
    n = positions.size
    rows = np.arange(n)[:, None]
    cols = rows + np.arange(min(max_answer_tokens, n))[None, :]
    inside = cols < n
    cols = np.minimum(cols, n - 1)
    scores = start_logits[positions].astype(np.float64)[:, None] + end_logits[positions].astype(np.float64)[cols]
    # Lengths in token positions, so that a gap in the context mask never lets a span jump
    # over question tokens.
    length = positions[cols] - positions[rows]
    if prior is not None and prior.length_log_prior:
        table = np.zeros(max(max_answer_tokens, len(prior.length_log_prior)))
        table[:len(prior.length_log_prior)] = prior.length_log_prior
        scores += table[np.clip(length, 0, len(table) - 1)]
    if prior is not None and prior.crossing_penalty and sentence_end is not None:
        ends = sentence_end[positions].astype(np.int64)
        before = np.cumsum(ends) - ends  # sentence ends strictly before each position
        scores -= prior.crossing_penalty * ((before[cols] - before[rows]) > 0)
    scores[~inside | (length >= max_answer_tokens)] = -np.inf
    flat = scores.ravel()  # in (start, end) order
    k = min(top_n, int(np.isfinite(flat).sum()))
    if k == 0:
        return []
    # The k best, exact ties going to the earlier span: every entry that reaches the k-th
    # score, sorted by score and then by place.
    kth = np.partition(flat, flat.size - k)[flat.size - k]
    tied = np.flatnonzero(flat >= kth)
    best = tied[np.lexsort((tied, -flat[tied]))][:k]
    first, offset = np.unravel_index(best, scores.shape)
    return [SpanCandidate(float(flat[b]) - null, int(positions[r]), int(positions[r + d]))
            for b, r, d in zip(best, first, offset)]


def snap_to_words(start: int, end: int, context: np.ndarray, word_ids: list[int | None]) -> tuple[int, int]:
    """Widen a token span to whole words: a span never starts or ends inside a word.

    Args:
        start, end: the span's first and last token positions.
        context: as for :func:`best_spans`.
        word_ids: each token's word index (the tokenizer's ``word_ids``).
    """
    n = len(word_ids)
    while start > 0 and context[start - 1] and word_ids[start - 1] == word_ids[start]:
        start -= 1
    while end + 1 < n and context[end + 1] and word_ids[end + 1] == word_ids[end]:
        end += 1
    return start, end


def trim_edges(text: str, start: int, end: int) -> tuple[int, int]:
    """Drop separators, and the spaces they leave, at a span's edges ("Dr Zabih Fetrat," -> "Dr Zabih Fetrat").

    Works on character offsets into ``text``, and never empties the span.
    """
    while end - start > 1 and (text[end - 1] in _EDGE_PUNCTUATION or text[end - 1].isspace()):
        end -= 1
    while end - start > 1 and (text[start] in _EDGE_PUNCTUATION or text[start].isspace()):
        start += 1
    return start, end


# "..., the spokesman said", "Nadia Osei said", "..., according to officials": words about who
# said it, which the reader's spans run on into. Only at the very end of a span.
_ATTRIBUTION_TAIL = re.compile(
    r"(?:,?\s+according\s+to\b.*|,\s+(?:the\s+|a\s+|an\s+)?[\w'’. -]{0,40}?\s+(?:said|says|told\s+\w+)"
    r"|\s+(?:said|says|added|told\s+\w+))\W*$", re.IGNORECASE)


def trim_attribution(text: str, start: int, end: int) -> tuple[int, int]:
    """Cut an attribution tail off a span ("2028, the spokesman said." -> "2028"); never empties it."""
    match = _ATTRIBUTION_TAIL.search(text, start, end)
    if match is None or match.start() <= start:
        return start, end
    return trim_edges(text, start, match.start())
