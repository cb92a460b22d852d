"""Decide whether to answer, and how sure to say it is: a small model on features of the reader's output.

Selective question answering after Kamath, Jia and Liang (ACL 2020): a calibrator trained on
held-out reader outputs (``rag.training.verifier``) predicts whether the chosen answer is right
from what the reader, the retriever and the text around the span say about it
(:data:`FEATURES`). Its probability is the confidence shown; below ``levels["low"]`` the
assistant abstains. The cut-offs of "high" and "medium" are set on held-out data so that high
answers were right at least 95 % of the time and medium ones at least 80 %.

The model is a logistic regression on standardised features, chosen over gradient-boosted
trees and a small MLP because it held up best on training sets it never saw (leave one set
out; ``docs/reader.md``). It is stored as plain numbers in ``verifier.json`` beside the reader
it was trained for, so it runs with numpy alone, in microseconds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.answer import evidence
from rag.errors import ModelLoadError
from rag.read.normalize import normalize_answer
from rag.types import Answer, Hit

FILE_NAME = "verifier.json"

FEATURES = (
    "margin",        # the answer's best span: margin over the window's no-answer (logits)
    "gap",           # that margin minus the best other answer's (not the same one with other bounds; capped)
    "share",         # softmax share of the answer (all its bounds) among all candidates and no-answer
    "support",       # passages that hold a span of the same answer
    "log_rank",      # log of the retrieval rank of the answer's passage
    "fused",         # the passage's retrieval score over the best one's
    "dense",         # cosine similarity of question and the answer's passage
    "dense_top",     # the best cosine similarity among the passages read
    "bm25",          # the passage's BM25 score over the best one's (0 when BM25 did not rank it)
    "type",          # answer-type agreement: +1, -1, or 0 (rag.answer.evidence)
    "type_asked",    # whether the question asks for a type at all
    "names_near",    # share of the question's names within 200 characters of the span
    "names_in",      # share of them anywhere in the passage
    "names_sentence",  # share of them in the sentence that holds the span
    "words_near",    # share of its other content words within 200 characters
    "words_sentence",  # share of them in the sentence that holds the span
    "echo",          # share of the span's words that the question already holds
    "log_words",     # log of the answer's length in words
)
GAP_CAP = 10.0


def relative_scores(hits: Sequence[Hit]) -> dict[str, float]:
    """Each hit's retrieval score over the best hit's, by passage id (1.0 for the best)."""
    top = max((h.score for h in hits), default=0.0)
    return {h.passage.id: h.score / top if top > 0 else 0.0 for h in hits}


def features(question: str, group: Sequence[Answer], groups: Sequence[Sequence[Answer]],
             hits: Sequence[Hit]) -> np.ndarray:
    """The :data:`FEATURES` of one candidate answer.

    Args:
        question: the question as read.
        group: the candidate's spans (one answer, possibly in several passages), best first.
        groups: every distinct answer of the reading, the candidate among them, each best first.
        hits: the passages read, as retrieved.
    """
    best = group[0]
    hit = next((h for h in hits if h.passage.id == best.passage_id), None)
    same = [same_answer(g, group) for g in groups]
    others = [g[0].score for g, s in zip(groups, same) if not s]
    margins = np.array([g[0].score for g in groups] + [0.0])
    top = margins.max()
    mass = np.exp(margins - top)
    share = float(mass[:-1][np.array(same, dtype=bool)].sum() / mass.sum()) if any(same) else 0.0
    dense = [h.dense_score for h in hits if h.dense_score is not None]
    bm25_top = max((h.bm25_score for h in hits if h.bm25_score is not None), default=0.0)
    text = hit.passage.text if hit is not None else ""
    names, words = evidence.key_words(question)
    # Retrieval scores to two decimals: each backend (FAISS, pgvector, Qdrant), and a question
    # embedded alone or in a batch, computes them to a different last bit, and the confidence must
    # not depend on that (``rag eval`` gives the same report from every backend).
    fused = round(relative_scores(hits)[hit.passage.id], 2) if hit is not None else 0.0
    cosine = round(hit.dense_score, 2) if hit is not None and hit.dense_score is not None else 0.0
    bm25 = round((hit.bm25_score or 0.0) / bm25_top, 2) if hit is not None and bm25_top > 0 else 0.0
    return np.array([
        best.score,
        min(best.score - max(others), GAP_CAP) if others else GAP_CAP,
        share,
        len({a.passage_id for a in group}),
        math.log(hit.rank) if hit is not None else math.log(len(hits) + 1),
        fused,
        cosine,
        round(max(dense, default=0.0), 2),
        bm25,
        evidence.type_agreement(question, best.text),
        float(evidence.expected_type(question) is not None),
        evidence.share_near(names, text, best.start, best.end),
        evidence.share_in(names, text),
        evidence.share_in_sentence(names, text, best.start, best.end),
        evidence.share_near(words, text, best.start, best.end),
        evidence.share_in_sentence(words, text, best.start, best.end),
        evidence.echo(question, best.text),
        math.log(1 + len(best.text.split())),
    ], dtype=np.float64)


def same_answer(one: Sequence[Answer], other: Sequence[Answer]) -> bool:
    """Whether two groups of spans name the same thing: one's text holds the other's, or their spans overlap."""
    a, b = normalize_answer(one[0].text), normalize_answer(other[0].text)
    if a and b and (a in b or b in a):
        return True
    return any(x.passage_id == y.passage_id and x.start < y.end and y.start < x.end for x in one for y in other)


@dataclass(frozen=True)
class Verifier:
    """A trained answer-or-abstain model and its confidence levels.

    Args:
        mean, scale: each feature's standardisation.
        coef, intercept: the logistic regression on the standardised features.
        levels: the lowest probability of each level, "high", "medium" and "low"; below
            "low" the assistant abstains.
        retrieval_weight: how much the retrieval score weighs beside the reader's margin when
            choosing between candidate answers (``rag.answer.assistant.choose_answer``).
        info: what training recorded (data, held-out figures), as read from the file.
    """

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    levels: dict[str, float]
    retrieval_weight: float = 0.0
    info: dict | None = None

    @classmethod
    def load(cls, path: str | Path) -> Verifier:
        """The verifier saved at ``path`` (a ``verifier.json``).

        Raises:
            ModelLoadError: the file cannot be read, or is not a verifier of these features.
        """
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ModelLoadError(f"cannot read the answer verifier {path}: {e}") from e
        return cls.load_dict(data, str(path))

    @classmethod
    def load_dict(cls, data: dict, where: str = "the answer verifier") -> Verifier:
        """A verifier from its JSON form (what ``verifier.json`` holds).

        Raises:
            ModelLoadError: it is not a verifier of these features.
        """
        if tuple(data.get("features", ())) != FEATURES:
            raise ModelLoadError(f"{where} was trained on other features; retrain it with "
                                 "python -m rag.training.verifier")
        try:
            model = data["model"]
            mean, scale, coef = (np.array(model[name], dtype=np.float64) for name in ("mean", "scale", "coef"))
            if any(a.shape != (len(FEATURES),) for a in (mean, scale, coef)):
                raise ValueError(f"expected {len(FEATURES)} numbers per array")
            return cls(mean, scale, coef, float(model["intercept"]), {k: float(v) for k, v in data["levels"].items()},
                       float(data.get("retrieval_weight", 0.0)), data)
        except (ValueError, KeyError, TypeError) as e:
            raise ModelLoadError(f"{where} is not a readable verifier: {e}") from e

    @classmethod
    def beside(cls, reader_dir: str | Path) -> Verifier | None:
        """The verifier trained for the reader in ``reader_dir``, or None if it has none."""
        path = Path(reader_dir) / FILE_NAME
        return cls.load(path) if path.is_file() else None

    def probability(self, x: np.ndarray) -> float:
        """The probability that the candidate with features ``x`` is right."""
        z = float((x - self.mean) / self.scale @ self.coef + self.intercept)
        return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))

    def level(self, probability: float) -> str | None:
        """"high", "medium" or "low" for an answer of this probability, or None: abstain."""
        return next((name for name in ("high", "medium", "low") if probability >= self.levels[name]), None)
