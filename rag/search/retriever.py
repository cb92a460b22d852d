"""Find the passages that answer a question: dense, BM25, or both fused, within filters."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rag.errors import InvalidInputError
from rag.index.open import open_index
from rag.protocols import Encoder, Index, Location, Ranking
from rag.search.fusion import convex, rrf
from rag.settings import (
    DEFAULT_FUSION,
    DEFAULT_K,
    DEFAULT_MODE,
    FUSIONS,
    Mode,
    check_mode,
    check_positive_int,
    check_questions,
)
from rag.types import Filters, Hit


class Retriever:
    """Ranks the passages of an index (any backend of ``rag.protocols.Index``) for questions.

    It composes the index's parts, each searched the same way (``search_batch(questions, k,
    allowed)``): the dense index, the sparse (BM25) index, and a fusion function of
    ``rag.search.fusion``.

    Args:
        index: the passages to search.
        mode: ``"hybrid"`` (default) fuses the dense and BM25 rankings; ``"dense"`` and
            ``"bm25"`` use one of them.
        fusion: how hybrid fuses them: ``"convex"`` (a weighted sum of min-max-normalised
            scores, the default) or ``"rrf"`` (reciprocal rank fusion).
        rrf_k: the constant of reciprocal rank fusion, score = sum of 1 / (rrf_k + rank).
        dense_weight: under convex fusion, the dense ranking's weight; BM25 gets 1 - dense_weight.
        candidates: how deep each ranking is read before fusion.
    """

    def __init__(self, index: Index, mode: Mode = DEFAULT_MODE, fusion: str = DEFAULT_FUSION,
                 rrf_k: int = 60, dense_weight: float = 0.5, candidates: int = 50) -> None:
        self.index = index
        self.mode = check_mode(mode)
        if fusion not in FUSIONS:
            raise InvalidInputError(f"fusion must be one of {', '.join(FUSIONS)}, got {fusion!r}")
        if not 0.0 <= dense_weight <= 1.0:
            raise InvalidInputError(f"dense_weight must lie in [0, 1], got {dense_weight!r}")
        self.fusion = fusion
        self.rrf_k = check_positive_int("rrf_k", rrf_k)
        self.dense_weight = dense_weight
        self.candidates = check_positive_int("candidates", candidates)

    @classmethod
    def load(cls, location: Location, embedder: Encoder | None = None, backend: str = "auto",
             **settings: Any) -> Retriever:
        """A retriever over the index at ``location``, a folder or a collection (see ``rag.index.open``)."""
        return cls(open_index(location, embedder, backend), **settings)

    @classmethod
    def default(cls, backend: str = "auto", **settings: Any) -> Retriever:
        """A retriever over the bundled sample corpus, its index built on first use."""
        from rag.indexing.bundled import default_index

        return cls(default_index(backend=backend), **settings)

    def search(self, question: str, k: int = DEFAULT_K, mode: Mode | None = None,
               filters: Filters | None = None) -> list[Hit]:
        """The ``k`` best passages for one question, best first."""
        return self.search_batch([question], k, mode, filters)[0]

    def search_batch(self, questions: Sequence[str], k: int = DEFAULT_K, mode: Mode | None = None,
                     filters: Filters | None = None) -> list[list[Hit]]:
        """The ``k`` best passages for each question.

        Args:
            questions: non-empty questions.
            k: hits per question (fewer when fewer passages pass the filters or match).
            mode: overrides the retriever's mode for this call.
            filters: search only documents that pass these; applied inside each search, so
                k hits come back whenever k passages pass.

        Raises:
            InvalidInputError: an empty question, a bad ``k`` or an unknown mode.
        """
        mode = check_mode(self.mode if mode is None else mode)
        check_positive_int("k", k)
        check_questions(questions)
        if not questions or not self.index.passages:
            return [[] for _ in questions]
        allowed = self.index.allowed(filters)
        depth = max(k, self.candidates) if mode == "hybrid" else k
        rankings: list[Sequence[Ranking]]
        if mode == "dense":
            self.index.check_embedder()
            rankings = [[r] for r in self.index.dense.search_batch(questions, depth, allowed)]
        elif mode == "bm25":
            rankings = [[r] for r in self.index.sparse.search_batch(questions, depth, allowed)]
        else:
            self.index.check_embedder()
            rankings = list(zip(*self._both(questions, depth, allowed)))
        parts = ("dense", "bm25") if mode == "hybrid" else (mode,)
        return [self.index.hits(self._fuse(r)[:k], {part: dict(zip(rows.tolist(), scores.tolist()))
                                                    for part, (rows, scores) in zip(parts, r)})
                for r in rankings]

    def _both(self, questions: Sequence[str], depth: int, allowed: Any) -> tuple[list[Ranking], list[Ranking]]:
        """The dense and the sparse rankings; at the same time where the index's server runs each."""
        index = self.index
        if not index.concurrent_parts:
            return index.dense.search_batch(questions, depth, allowed), index.sparse.search_batch(questions, depth,
                                                                                                  allowed)
        with ThreadPoolExecutor(1) as pool:
            sparse = pool.submit(index.sparse.search_batch, questions, depth, allowed)
            dense = index.dense.search_batch(questions, depth, allowed)
            return dense, sparse.result()

    def _fuse(self, rankings: Sequence[Ranking]) -> list[tuple[int, float]]:
        if len(rankings) == 1:
            rows, scores = rankings[0]
            return [(int(row), float(score)) for row, score in zip(rows, scores)]
        if self.fusion == "convex":
            return convex(rankings, (self.dense_weight, 1.0 - self.dense_weight))
        return rrf(rankings, self.rrf_k)
