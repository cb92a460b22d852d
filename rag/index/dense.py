"""Dense retrieval: passage vectors in FAISS, exact below a size, HNSW above it.

Vectors are unit length, so inner product is cosine similarity. Which FAISS index holds
them is chosen by size (:func:`choose_kind`): a flat index searches exactly and is fast
enough below ``HNSW_FROM`` passages; above it an HNSW graph answers far faster at a small
loss of recall against exact search (``python -m eval.scale --crossover ...`` measures both).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import faiss
import numpy as np

from rag.protocols import Encoder, Ranking
from rag.settings import HNSW_FROM, DenseSettings

# A filter that lets through fewer rows than this share is searched exactly over those rows:
# a graph walk would find too few of them.
EXACT_BELOW_SHARE = 0.02


def choose_kind(settings: DenseSettings, passages: int) -> str:
    """The FAISS index kind for an index of ``passages`` passages."""
    if settings.kind != "auto":
        return settings.kind
    return "hnsw" if passages >= HNSW_FROM else "flat"


def new_faiss_index(dimension: int, kind: str, settings: DenseSettings) -> faiss.Index:
    """An empty inner-product index of that kind."""
    if kind == "flat":
        return faiss.IndexFlatIP(dimension)
    index = faiss.IndexHNSWFlat(dimension, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = settings.ef_construction
    index.hnsw.efSearch = settings.ef_search
    return index


def read_faiss(path: Path) -> faiss.Index:
    """A saved FAISS index, its vectors memory-mapped, not read (``IO_FLAG_MMAP_IFC``; HNSW's graph is read):
    a million 384-d vectors open in milliseconds instead of 1.4 s, and take memory only as pages are touched."""
    return faiss.read_index(str(path), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_MMAP_IFC)


def kind_of(vectors: faiss.Index) -> str:
    return "hnsw" if isinstance(vectors, faiss.IndexHNSW) else "flat"


class DenseIndex:
    """Search passage vectors by a question's embedding, over the vectors of several segments.

    Args:
        parts: each segment's FAISS index, in row order: part i's row r is row
            ``sum(sizes of parts before i) + r``.
        dimension: the vectors' size (needed when there are no parts).
        embedder: encodes questions into the same space.
        settings: search settings (``ef_search`` for HNSW).
    """

    def __init__(self, parts: Sequence[faiss.Index], dimension: int, embedder: Encoder,
                 settings: DenseSettings | None = None) -> None:
        self.parts = list(parts)
        self.dimension = dimension
        self.offsets = np.cumsum([0, *(p.ntotal for p in self.parts)])
        self.embedder = embedder
        self.settings = settings if settings is not None else DenseSettings()

    @property
    def size(self) -> int:
        return int(self.offsets[-1])

    @property
    def kind(self) -> str:
        """The kind of the largest part, which decides search speed."""
        return kind_of(max(self.parts, key=lambda p: p.ntotal)) if self.parts else "flat"

    def search_batch(self, questions: Sequence[str], k: int, allowed: np.ndarray | None = None) -> list[Ranking]:
        """For each question, (rows, cosine scores) of its ``k`` nearest passages, best first.

        Args:
            questions: the questions.
            k: passages per question.
            allowed: a bool mask over rows (a resolved filter); only rows marked True are returned.
        """
        return self.search_vectors(self.embedder.encode(list(questions)), k, allowed)

    def search_vectors(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[Ranking]:
        """As :meth:`search_batch`, for query vectors already encoded: each part searched, the best k kept."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        found = [_search(part, queries, k, None if allowed is None else allowed[start:end], self.settings)
                 for part, start, end in zip(self.parts, self.offsets, self.offsets[1:])]
        results = []
        for i in range(len(queries)):
            rows = np.concatenate([np.zeros(0, dtype=np.int64),
                                   *(r[i][0] + start for r, start in zip(found, self.offsets))])
            scores = np.concatenate([np.zeros(0, dtype=np.float32), *(r[i][1] for r in found)])
            best = np.lexsort((rows, -scores))[:k]
            results.append((rows[best], scores[best]))
        return results


def _search(vectors: faiss.Index, queries: np.ndarray, k: int, allowed: np.ndarray | None,
            settings: DenseSettings) -> list[Ranking]:
    """The ``k`` nearest rows of one FAISS index per query, among the ``allowed`` ones."""
    passing = vectors.ntotal if allowed is None else int(allowed.sum())
    k = min(k, passing)
    if k == 0:
        return [(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)) for _ in queries]
    if allowed is not None and passing < EXACT_BELOW_SHARE * vectors.ntotal:
        return _exact_over(vectors, queries, k, np.flatnonzero(allowed))
    if kind_of(vectors) == "hnsw":
        # faiss's stubs (faiss/__init__.pyi) lack SearchParametersHNSW and IDSelectorBitmap's array form.
        params = faiss.SearchParametersHNSW(efSearch=max(settings.ef_search, k))  # type: ignore[attr-defined]
    else:
        params = faiss.SearchParameters()
    if allowed is not None:  # the filter applies inside the search, so k passing rows come back
        params.sel = faiss.IDSelectorBitmap(np.packbits(allowed, bitorder="little"))  # type: ignore[call-arg,arg-type]
    scores, rows = vectors.search(queries, k, params=params)
    return [(r[r >= 0], s[r >= 0]) for r, s in zip(rows, scores)]


def _exact_over(vectors: faiss.Index, queries: np.ndarray, k: int, rows: np.ndarray) -> list[Ranking]:
    """Exact search over the given rows only (their vectors gathered from the index)."""
    scores = queries @ vectors.reconstruct_batch(rows).T
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return [(rows[t], scores[i, t]) for i, t in enumerate(top)]
