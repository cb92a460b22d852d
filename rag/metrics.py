"""SQuAD answer metrics, with the normalisation of the official v1.1 evaluation script."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation and the articles a/an/the, and squeeze whitespace (as the official script)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1_score(prediction: str, gold: str) -> float:
    """Token-overlap F1 of the normalised strings."""
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    common = Counter(pred_tokens) & Counter(gold_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(pred_tokens)
    recall = overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def best_over_gold(prediction: str | None, golds: Sequence[str]) -> tuple[float, float]:
    """(EM, F1) of a prediction against the best-matching gold answer.

    No gold answers means the question has no answer: abstaining (``None``) scores 1, any span 0.
    """
    if not golds:
        return (1.0, 1.0) if prediction is None else (0.0, 0.0)
    if prediction is None:
        return 0.0, 0.0
    return max(exact_match(prediction, g) for g in golds), max(f1_score(prediction, g) for g in golds)
