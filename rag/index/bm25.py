"""BM25 over passages kept in segments, scored with the statistics of the whole index.

Each segment of an index (see ``rag.index.segment``) holds its own inverted lists
(:class:`Postings`): for every term, the rows that contain it and how often, plus each
row's length. Nothing in them depends on the rest of the index, so a segment is written
once and never changed. What BM25 needs from the whole collection (how many passages hold
a term, the mean passage length) is summed over the segments when a question is scored,
as Lucene does, so a passage scores the same whichever segment it sits in. Scoring is
Lucene's BM25 (idf ``log(1 + (N - df + .5) / (df + .5))``), the method bm25s calls
"lucene"; text is split by bm25s's tokenizer, English stopwords removed, Snowball-stemmed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np
import Stemmer
from scipy import sparse

from rag.protocols import Ranking

logger = logging.getLogger(__name__)
# bm25s sets its own logger to DEBUG when imported; put it back to the default so its
# per-call debug lines do not reach the application's handlers.
logging.getLogger("bm25s").setLevel(logging.NOTSET)

K1, B = 1.5, 0.75
SETTINGS = {"method": "lucene", "k1": K1, "b": B, "stopwords": "en", "stemmer": "snowball-english",
            "tokenizer": "bm25s"}
_ARRAYS = ("starts", "rows", "counts", "lengths")


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """Each text's terms: lower-cased words, English stopwords removed, Snowball-stemmed."""
    return bm25s.tokenize(list(texts), stopwords=SETTINGS["stopwords"], stemmer=Stemmer.Stemmer("english"),
                          return_ids=False, show_progress=False)


def term_weight(counts: np.ndarray, lengths: np.ndarray, mean_length: float) -> np.ndarray:
    """BM25's weight of a term in passages, before its idf: ``tf / (tf + k1 (1 - b + b len / mean len))``.

    Args:
        counts: how often the term occurs in each passage (tf).
        lengths: each passage's length in terms.
        mean_length: the mean passage length of the collection.
    """
    counts = np.asarray(counts, dtype=np.float64)
    return counts / (counts + K1 * (1 - B + B * np.asarray(lengths, dtype=np.float64) / mean_length))


class Postings:
    """The inverted lists of one segment: term -> (rows, counts), and each row's length in terms.

    Args:
        terms: the vocabulary; term ``terms[j]`` has the list ``starts[j]:starts[j + 1]``.
        starts: where each term's list begins in ``rows`` and ``counts`` (one more entry than terms).
        rows: the rows holding each term, list after list.
        counts: how often the term occurs in that row.
        lengths: each row's number of terms.
    """

    def __init__(self, terms: Sequence[str], starts: np.ndarray, rows: np.ndarray, counts: np.ndarray,
                 lengths: np.ndarray) -> None:
        self.column = {term: j for j, term in enumerate(terms)}
        self.starts, self.rows, self.counts, self.lengths = starts, rows, counts, lengths

    @property
    def size(self) -> int:
        return len(self.lengths)

    @classmethod
    def build(cls, texts: Sequence[str]) -> Postings:
        tokens = tokenize(texts)
        column: dict[str, int] = {}
        ids = [[column.setdefault(t, len(column)) for t in row] for row in tokens]
        lengths = np.fromiter(map(len, ids), dtype=np.int32, count=len(ids))
        flat = np.fromiter((j for row in ids for j in row), dtype=np.int64, count=int(lengths.sum()))
        by_row = np.repeat(np.arange(len(ids), dtype=np.int32), lengths)
        matrix = sparse.csc_matrix((np.ones(len(flat), dtype=np.float32), (by_row, flat)),
                                   shape=(len(ids), len(column)))
        matrix.sum_duplicates()
        return cls(list(column), matrix.indptr.astype(np.int64), matrix.indices.astype(np.int32),
                   matrix.data.astype(np.float32), lengths)

    def save(self, folder: Path) -> None:
        folder.mkdir()
        (folder / "terms.json").write_text(json.dumps(list(self.column), ensure_ascii=False))
        for name in _ARRAYS:
            np.save(folder / f"{name}.npy", getattr(self, name))

    @classmethod
    def load(cls, folder: Path) -> Postings:
        """Read a saved segment's lists, memory-mapped: only the lists a question needs are paged in."""
        terms = json.loads((folder / "terms.json").read_text())
        starts, rows, counts, lengths = (np.load(folder / f"{name}.npy", mmap_mode="r") for name in _ARRAYS)
        if len(starts) != len(terms) + 1 or len(rows) != len(counts) or (len(rows) and starts[-1] != len(rows)):
            raise ValueError(f"the BM25 lists in {folder} do not fit together")
        return cls(terms, starts, rows, counts, lengths)


class BM25Index:
    """BM25 search over the rows of several segments, numbered one after the other.

    Args:
        parts: each segment's postings, in row order: part i's row r is row
            ``sum(sizes of parts before i) + r``.
    """

    def __init__(self, parts: Sequence[Postings]) -> None:
        self.parts = list(parts)
        self.offsets = np.cumsum([0, *(p.size for p in self.parts)])
        self.size = int(self.offsets[-1])
        self._mean_length = sum(float(p.lengths.sum()) for p in self.parts) / self.size if self.size else 1.0

    @classmethod
    def build(cls, texts: Sequence[str]) -> BM25Index:
        return cls([Postings.build(texts)])

    def scores(self, terms: Sequence[str]) -> np.ndarray:
        """Every row's BM25 score for a question's terms (a term given twice counts twice)."""
        total = np.zeros(self.size, dtype=np.float32)
        for term in terms:
            lists = [(part, offset, part.starts[j], part.starts[j + 1])
                     for part, offset in zip(self.parts, self.offsets)
                     if (j := part.column.get(term)) is not None]
            frequency = sum(int(end - start) for _, _, start, end in lists)
            if not frequency:
                continue
            idf = np.log1p((self.size - frequency + 0.5) / (frequency + 0.5))
            for part, offset, start, end in lists:
                rows = np.asarray(part.rows[start:end])
                counts = np.asarray(part.counts[start:end])
                weights = term_weight(counts, part.lengths[rows], self._mean_length)
                total[offset + rows] += (idf * weights).astype(np.float32)
        return total

    def search_batch(self, questions: Sequence[str], k: int, allowed: np.ndarray | None = None) -> list[Ranking]:
        """For each question, (rows, BM25 scores) of up to ``k`` passages with a positive score, best first.

        Args:
            questions: the questions.
            k: passages per question.
            allowed: a bool mask over rows (a resolved filter); only rows marked True are returned.
        """
        results = []
        for terms in tokenize(questions) if self.size and k > 0 else [[] for _ in questions]:
            scores = self.scores(terms)
            if allowed is not None:
                scores[~allowed] = 0
            candidates = np.flatnonzero(scores > 0)
            if len(candidates) > k:
                candidates = candidates[np.argpartition(-scores[candidates], k - 1)[:k]]
            best = candidates[np.lexsort((candidates, -scores[candidates]))]
            results.append((best.astype(np.int64), scores[best]))
        return results
