"""Scores: SQuAD answer metrics (official v1.1 normalisation) and the one percentile every latency figure uses."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from rag.read.normalize import normalize_answer


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


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """p50 and p95 of timings, by ``numpy.percentile`` (linear interpolation), for every latency table."""
    if not seconds:
        raise ValueError("no timings to summarise")
    p50, p95 = np.percentile(np.asarray(seconds, dtype=float), [50, 95])
    return {"p50": float(p50), "p95": float(p95)}
