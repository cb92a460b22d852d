"""The contract every index backend and every encoder keeps; the rest of the package types against it.

An index is a store of documents and their passages with two searches of one shape (dense
and sparse, each ``search_batch(questions, k, allowed) -> rankings``), a way to turn
:class:`~rag.types.Filters` into its own ``allowed`` form, and a few writing primitives
(add passages already embedded, record copies, remove, save). Everything else is built on
these: retrieval and fusion (``rag.search``), and the indexing workflow (``rag.indexing``:
reading, the copy check, chunking and embedding, locally or on Ray).

The folder index (``rag.index.folder.PassageIndex``), PostgreSQL (``rag.index.postgres``)
and the Qdrant collection (``rag.index.qdrant.QdrantIndex``) implement it, and mypy checks
each of them against it (the ``_contract`` line at the end of each module), so a new backend
only has to do the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from typing_extensions import Self

from rag.settings import ChunkSettings, DenseSettings
from rag.types import Copy, Document, Filters, Hit, Passage

# A ranking: row ids (or point ids) and their scores, best first.
Ranking = tuple[np.ndarray, np.ndarray]
# Where an index is: a folder, or a URI that names a collection on a server (``qdrant://…``).
Location = str | Path


@runtime_checkable
class Encoder(Protocol):
    """Turns text into unit-length float32 vectors (``embeddings.Embedder`` is one)."""

    model_name: str
    precision: str  # how passages are encoded ("auto", "fp32", "bf16"); a worker that loads the model reuses it

    @property
    def dimension(self) -> int: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...

    def encode(self, texts: Sequence[str], progress: bool | None = None, passages: bool = False) -> np.ndarray: ...


class SearchPart(Protocol):
    """One search over an index's passages: dense (vectors) or sparse (BM25), the same shape either way."""

    def search_batch(self, questions: Sequence[str], k: int, allowed: Any = None) -> list[Ranking]:
        """For each question, up to ``k`` (rows, scores), best first, among the ``allowed`` passages.

        ``allowed`` is what the index's :meth:`Index.allowed` returned: each backend has its own
        form (a mask over rows, a filter of its engine); None allows every passage.
        """
        ...


class Passages(Protocol):
    """An index's live passages: how many, and each in turn."""

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[Passage]: ...


@runtime_checkable
class Index(Protocol):
    """A searchable store of documents and passages; see the module's notes."""

    @property
    def embedder(self) -> Encoder:
        """Encodes questions, and new passages, into the index's vector space (a server wraps it to take turns)."""
        ...

    @embedder.setter
    def embedder(self, embedder: Encoder) -> None: ...

    @property
    def chunking(self) -> ChunkSettings:
        """How its documents were cut into passages."""
        ...

    @property
    def dense(self) -> SearchPart:
        """Search by the question's vector."""
        ...

    @property
    def sparse(self) -> SearchPart:
        """Search by BM25."""
        ...

    @property
    def documents(self) -> Mapping[str, Document]:
        """The live documents, by id."""
        ...

    @property
    def passages(self) -> Passages:
        """The live passages."""
        ...

    @property
    def dense_settings(self) -> DenseSettings | None:
        """The FAISS settings of a folder index; None for an engine that keeps its own."""
        ...

    @property
    def location(self) -> str | None:
        """Where the index is kept (a folder, a URI), or None for an index only in memory."""
        ...

    @property
    def concurrent_parts(self) -> bool:
        """Whether its dense and sparse searches may run at the same time: true where a server runs
        each (on a connection of its own), so a hybrid search waits for the slower, not for both."""
        ...

    @classmethod
    def open(cls, location: Location, embedder: Encoder | None = None, backend: str = "auto") -> Self:
        """The index at ``location``; ``embedder`` defaults to the model it was built with, run by ``backend``."""
        ...

    @classmethod
    def create(cls, location: Location, embedder: Encoder, chunking: ChunkSettings,
               dense: DenseSettings | None = None) -> Self:
        """A new, empty index to be kept at ``location`` (checked before any work, so nothing is lost)."""
        ...

    @classmethod
    def exists(cls, location: Location) -> bool:
        """Whether an index of this kind is kept at ``location``."""
        ...

    @classmethod
    def writing(cls, location: Location, wait: bool = True) -> AbstractContextManager[object]:
        """Hold the right to write the index at ``location`` (the folder's writer lock; a server needs none)."""
        ...

    def allowed(self, filters: Filters | None) -> Any:
        """``filters`` in this index's own form, for :meth:`SearchPart.search_batch`; None allows all."""
        ...

    def hits(self, ranked: Sequence[tuple[int, float]],
             parts: Mapping[str, Mapping[int, float]] | None = None) -> list[Hit]:
        """(row, score) pairs from a search, best first, as hits ranked 1, 2, …

        ``parts`` holds each search's own scores by row ("dense", "bm25"), which the hits carry
        as ``dense_score`` and ``bm25_score`` (see :func:`rag.types.Hit.with_parts`).
        """
        ...

    def passage_counts(self) -> dict[str, int]:
        """How many passages each live document has, by id."""
        ...

    def known(self, doc_ids: Iterable[str]) -> set[str]:
        """Which of these document ids the index holds, found in one lookup."""
        ...

    def check_embedder(self) -> None:
        """Raise ``IndexMismatchError`` if the embedder's vectors do not fit the index."""
        ...

    def check_room(self, documents: Sequence[Document]) -> None:
        """Before embedding them: raise ``IndexWriteError`` if there is clearly no room to store ``documents``."""
        ...

    def add_embedded(self, documents: Sequence[Document], passages: Sequence[Passage], vectors: np.ndarray) -> int:
        """Add new documents, their passages and the passages' vectors (row r of passage r); returns the
        passages added."""
        ...

    def record_copies(self, copies: Mapping[str, Sequence[Copy]]) -> None:
        """Record more copies (other outlets' near-duplicates) of indexed documents, by the documents' ids."""
        ...

    def remove(self, doc_ids: Sequence[str]) -> int:
        """Remove documents by id; returns how many passages went with them."""
        ...

    def save(self) -> object:
        """Make every change durable at :attr:`location` (crash-safe: the old state or the new, never a mix)."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


class Pipeline(Protocol):
    """Where indexing reads articles and chunks and embeds them: this process (``rag.indexing.local``) or Ray
    (``rag.indexing.ray``). Both give the same documents, passages and vectors."""

    def read(self, paths: Sequence[str | Path], on_skip: Callable[[str], None],
             max_file_bytes: int | None) -> list[Document]:
        """The articles under ``paths``, near-duplicates folded; each file that cannot be read goes to ``on_skip``."""
        ...

    def chunk_and_embed(self, documents: Sequence[Document], embedder: Encoder,
                        chunking: ChunkSettings) -> tuple[list[Passage], np.ndarray]:
        """The documents' passages, in document order, and their vectors (row r of passage r)."""
        ...
