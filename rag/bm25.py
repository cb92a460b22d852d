"""BM25 over passages, with bm25s: English stopwords removed, Snowball-stemmed tokens."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np
import Stemmer

from rag.fusion import Ranking

logger = logging.getLogger(__name__)
# bm25s sets its own logger to DEBUG when imported; put it back to the default so its
# per-call debug lines do not reach the application's handlers.
logging.getLogger("bm25s").setLevel(logging.NOTSET)

SETTINGS = {"library": "bm25s", "method": "lucene", "k1": 1.5, "b": 0.75, "stopwords": "en",
            "stemmer": "snowball-english"}


class BM25Index:
    """Sparse retrieval: row i is passage row i, as in the ``DenseIndex`` beside it, with the same search."""

    def __init__(self, model: bm25s.BM25, size: int) -> None:
        self._model = model
        self.size = size

    @staticmethod
    def _tokenize(texts: Sequence[str]) -> list[list[str]]:
        return bm25s.tokenize(list(texts), stopwords=SETTINGS["stopwords"], stemmer=Stemmer.Stemmer("english"),
                              return_ids=False, show_progress=False)

    @classmethod
    def build(cls, texts: Sequence[str]) -> BM25Index:
        model = bm25s.BM25(method=SETTINGS["method"], k1=SETTINGS["k1"], b=SETTINGS["b"])
        if texts:
            model.index(cls._tokenize(texts), show_progress=False)
        return cls(model, len(texts))

    def save(self, folder: Path) -> None:
        if self.size:
            self._model.save(str(folder))
        else:
            folder.mkdir(parents=True, exist_ok=True)

    @classmethod
    def load(cls, folder: Path) -> BM25Index:
        if not (folder / "params.index.json").exists():  # saved from an empty index
            return cls.build([])
        # Memory-mapped, as the dense vectors are: the score matrix stays in the page cache.
        model = bm25s.BM25.load(str(folder), mmap=True, show_progress=False)
        return cls(model, int(model.scores["num_docs"]))

    def search_batch(self, questions: Sequence[str], k: int, allowed: np.ndarray | None = None) -> list[Ranking]:
        """For each question, (rows, BM25 scores) of up to ``k`` passages with a positive score, best first.

        Args:
            questions: the questions.
            k: passages per question.
            allowed: a bool mask over rows (a resolved filter); only rows marked True are returned.
        """
        k = min(k, self.size if allowed is None else int(allowed.sum()))
        empty = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
        if k == 0:
            return [empty for _ in questions]
        mask = None if allowed is None else allowed.astype(np.float32)
        results = []
        for tokens in self._tokenize(questions):
            known = [t for t in tokens if t in self._model.vocab_dict]
            if not known:  # no question word occurs anywhere in the corpus
                results.append(empty)
                continue
            ids, scores = self._model.retrieve([known], k=k, show_progress=False, weight_mask=mask)
            keep = scores[0] > 0
            results.append((ids[0][keep].astype(np.int64), scores[0][keep].astype(np.float32)))
        return results
