"""Find the passages that answer a question: dense, BM25, or both fused by reciprocal rank."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from embeddings import Embedder
from rag.index import PassageIndex
from rag.settings import DEFAULT_K, DEFAULT_MODE, check_mode, check_positive_int, check_questions
from rag.types import Hit

Mode = Literal["hybrid", "dense", "bm25"]  # rag.settings.MODES


class Retriever:
    """Ranks the passages of a :class:`PassageIndex` for questions.

    Args:
        index: the passages to search.
        mode: ``"hybrid"`` (default) fuses the dense and BM25 rankings with reciprocal rank
            fusion; ``"dense"`` and ``"bm25"`` use one of them.
        rrf_k: the constant of reciprocal rank fusion, score = sum of 1 / (rrf_k + rank).
        candidates: how deep each ranking is read before fusion.
    """

    def __init__(self, index: PassageIndex, mode: Mode = DEFAULT_MODE, rrf_k: int = 60, candidates: int = 50) -> None:
        self.index = index
        self.mode = check_mode(mode)
        self.rrf_k = check_positive_int("rrf_k", rrf_k)
        self.candidates = check_positive_int("candidates", candidates)

    @classmethod
    def load(cls, path: str | Path, embedder: Embedder | None = None, backend: str = "auto", **settings) -> Retriever:
        """A retriever over the index saved at ``path`` (see ``rag index``); ``backend`` as for ``PassageIndex.load``."""
        return cls(PassageIndex.load(path, embedder, backend), **settings)

    @classmethod
    def default(cls, backend: str = "auto", **settings) -> Retriever:
        """A retriever over the bundled sample corpus, its index built on first use."""
        from rag.bundled import default_index

        return cls(default_index(backend=backend), **settings)

    def search(self, question: str, k: int = DEFAULT_K, mode: Mode | None = None) -> list[Hit]:
        """The ``k`` best passages for one question, best first."""
        return self.search_batch([question], k, mode)[0]

    def search_batch(self, questions: Sequence[str], k: int = DEFAULT_K, mode: Mode | None = None) -> list[list[Hit]]:
        """The ``k`` best passages for each question.

        Args:
            questions: non-empty questions.
            k: hits per question (fewer when the index is smaller or nothing matches).
            mode: overrides the retriever's mode for this call.

        Raises:
            InvalidInputError: an empty question, a bad ``k`` or an unknown mode.
        """
        mode = check_mode(self.mode if mode is None else mode)
        check_positive_int("k", k)
        check_questions(questions)
        if not questions or not self.index.passages:
            return [[] for _ in questions]
        depth = max(k, self.candidates) if mode == "hybrid" else k
        dense = self._dense(questions, depth) if mode in ("dense", "hybrid") else None
        sparse = self.index.bm25.search_batch(questions, depth) if mode in ("bm25", "hybrid") else None
        results = []
        for i in range(len(questions)):
            if mode == "dense":
                ranked = list(zip(*dense[i]))
            elif mode == "bm25":
                ranked = list(zip(*sparse[i]))
            else:
                ranked = self._fuse([dense[i], sparse[i]])
            results.append([self._hit(int(row), float(score), rank)
                            for rank, (row, score) in enumerate(ranked[:k], 1)])
        return results

    def _dense(self, questions: Sequence[str], k: int):
        self.index.check_embedder()
        scores, rows = self.index.vectors.search(self.index.embedder.encode(questions), min(k, len(self.index.passages)))
        return [(r[r >= 0], s[r >= 0]) for r, s in zip(rows, scores)]

    def _fuse(self, rankings: Sequence[tuple]) -> list[tuple[int, float]]:
        """Reciprocal rank fusion of (rows, scores) rankings.

        Passages ranked (1, 2) and (2, 1) tie under RRF; the tie goes to the one whose
        scores, each divided by the top score of its ranking, add up to more, so a clear
        win in one ranking beats a near-tie in the other.
        """
        fused: dict[int, list[float]] = {}
        for rows, scores in rankings:
            top = float(scores[0]) if len(scores) and scores[0] > 0 else 1.0
            for rank, (row, score) in enumerate(zip(rows, scores), 1):
                entry = fused.setdefault(int(row), [0.0, 0.0])
                entry[0] += 1.0 / (self.rrf_k + rank)
                entry[1] += float(score) / top
        return [(row, rrf) for row, (rrf, _) in
                sorted(fused.items(), key=lambda item: (-item[1][0], -item[1][1], item[0]))]

    def _hit(self, row: int, score: float, rank: int) -> Hit:
        passage = self.index.passages[row]
        return Hit(passage=passage, document=self.index.documents[passage.doc_id], score=score, rank=rank)

