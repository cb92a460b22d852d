"""Selective answering measured: how well a confidence score ranks right answers above wrong ones.

Each question gets the answer the assistant would give and a score; "right" means F1 >= 0.5
against the gold answers, and any answer to a question without one is wrong. Answering only the
questions above a score cut-off trades coverage (the share answered) against risk (the share
of those answered wrongly):

- :func:`risk_coverage`: the curve, one point per cut-off;
- :func:`aurc`: the area under it (lower is better; Geifman and El-Yaniv, 2017);
- :func:`coverage_at`: the largest coverage whose accuracy still reaches a target (90 %, 95 %);
- :func:`auroc`: the chance that a random right answer outscores a random wrong one.
"""

from __future__ import annotations

import numpy as np


def _ordered(scores: np.ndarray, right: np.ndarray) -> np.ndarray:
    """``right`` as floats, in order of descending score (ties in their given order)."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    return np.asarray(right, dtype=np.float64)[order]


def risk_coverage(scores: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(coverage, risk) after answering the 1, 2, … n best-scored questions."""
    ordered = _ordered(scores, right)
    n = np.arange(1, ordered.size + 1)
    return n / max(1, ordered.size), 1.0 - np.cumsum(ordered) / n


def aurc(scores: np.ndarray, right: np.ndarray) -> float:
    """The area under the risk-coverage curve: the mean risk over every coverage."""
    _, risk = risk_coverage(scores, right)
    return float(risk.mean()) if risk.size else 0.0


def coverage_at(scores: np.ndarray, right: np.ndarray, accuracy: float) -> float:
    """The largest share of questions that can be answered, best-scored first, at this accuracy or better."""
    coverage, risk = risk_coverage(scores, right)
    ok = np.flatnonzero(1.0 - risk >= accuracy - 1e-12)
    return float(coverage[ok[-1]]) if ok.size else 0.0


def auroc(scores: np.ndarray, right: np.ndarray) -> float:
    """The probability that a right answer scores above a wrong one (ties count half); nan without both."""
    scores = np.asarray(scores, dtype=np.float64)
    right = np.asarray(right, dtype=bool)
    pos, neg = scores[right], scores[~right]
    if not pos.size or not neg.size:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (pos.size * neg.size))


def summary(scores: np.ndarray, right: np.ndarray) -> dict[str, float]:
    """AUROC, AURC, and coverage at 90 % and 95 % accuracy, with the question count and plain accuracy."""
    return {"questions": int(np.asarray(right).size), "accuracy": float(np.mean(right)) if np.size(right) else 0.0,
            "auroc": auroc(scores, right), "aurc": aurc(scores, right),
            "coverage_at_90": coverage_at(scores, right, 0.90), "coverage_at_95": coverage_at(scores, right, 0.95)}
