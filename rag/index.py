"""A passage index: dense vectors and BM25 over the passages of a set of documents.

Each saved generation of an index folder (see ``rag.store`` for the crash-safe layout) holds:

    index.faiss       dense vectors (flat or HNSW, see ``rag.dense``); row i is passage i
    passages.sqlite   the passages, in row order, and the cleaned documents they come from
                      (``rag.passage_store``: read by row, never loaded whole)
    bm25/             bm25s sparse index over the same passages, same row order
    manifest.json     embedding model, dimension, metric, chunking, counts, versions, checksums

Loading checks every file against the manifest.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import faiss
import numpy as np

from embeddings import Embedder, EmbeddingModelError
from rag import fast_models, passage_store
from rag.bm25 import SETTINGS as BM25_SETTINGS
from rag.bm25 import BM25Index
from rag.chunking import Chunker, ChunkSettings
from rag.dense import DenseIndex, choose_kind, new_faiss_index
from rag.errors import (
    DocumentNotFoundError,
    IndexMismatchError,
    InvalidInputError,
    ModelLoadError,
)
from rag.filters import DocumentColumns, Filters
from rag.passage_store import PassageStore, StoredDocuments, StoredPassages
from rag.settings import DenseSettings
from rag.store import IndexFolder, write_file
from rag.types import Document, Hit, Passage

logger = logging.getLogger(__name__)


def _versions() -> dict[str, str]:
    found = {}
    for package in ("rag-news-qa", "faiss-cpu", "sentence-transformers", "bm25s", "transformers", "torch"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found


def _read_records(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


class PassageIndex:
    """Passages of a set of documents, searchable by dense vectors and by BM25.

    Build one with :meth:`build`, or open a saved one with :meth:`load`.
    """

    def __init__(self, documents: Sequence[Document] | Mapping[str, Document], passages: Sequence[Passage],
                 vectors: faiss.Index, embedder: Embedder, chunking: ChunkSettings, bm25: BM25Index | None = None,
                 dense_settings: DenseSettings | None = None) -> None:
        if vectors.ntotal != len(passages):
            raise IndexMismatchError(f"{vectors.ntotal} vectors for {len(passages)} passages")
        # A loaded index reads both from its store on demand (rag.passage_store); a built or
        # changed one holds them as a dict and a list.
        self.documents: Mapping[str, Document] = documents if isinstance(documents, Mapping) \
            else {d.id: d for d in documents}
        self.passages: Sequence[Passage] = passages if isinstance(passages, StoredPassages) else list(passages)
        self.dense = DenseIndex(vectors, embedder, dense_settings)
        self.chunking = chunking
        self.sparse = bm25 if bm25 is not None else BM25Index.build([p.text for p in self.passages])
        self._columns: DocumentColumns | None = None

    @property
    def embedder(self) -> Embedder:
        return self.dense.embedder

    @embedder.setter
    def embedder(self, embedder: Embedder) -> None:
        self.dense.embedder = embedder

    def allowed(self, filters: Filters | None) -> np.ndarray | None:
        """The passage rows that pass ``filters``, as a bool mask; None when nothing is filtered."""
        if not filters:
            return None
        if self._columns is None:  # built on the first filtered search after a change
            if isinstance(self.documents, StoredDocuments):  # the metadata only, not the texts
                self._columns = DocumentColumns(*self.documents.store.metadata())
            else:
                self._columns = DocumentColumns(list(self.documents.values()), [p.doc_id for p in self.passages])
        return self._columns.allowed(filters)

    def passage_counts(self) -> dict[str, int]:
        """How many passages each document has, by id (counted by the store when loaded)."""
        if isinstance(self.passages, StoredPassages):
            return self.passages.store.passage_counts()
        return dict(Counter(p.doc_id for p in self.passages))

    def hit(self, row: int, score: float, rank: int) -> Hit:
        """Passage row ``row`` as a search hit."""
        passage = self.passages[row]
        return Hit(passage=passage, document=self.documents[passage.doc_id], score=score, rank=rank)

    @classmethod
    def build(cls, documents: Sequence[Document], embedder: Embedder | None = None,
              chunking: ChunkSettings | None = None, progress: bool | None = None,
              dense_settings: DenseSettings | None = None) -> PassageIndex:
        """Chunk, embed and index documents.

        Args:
            documents: cleaned documents (see ``rag.ingest.read_documents``).
            embedder: the encoder; the bundled all-MiniLM-L6-v2 by default.
            chunking: passage settings; the defaults of ``ChunkSettings`` otherwise.
            progress: show progress bars while chunking and embedding (by default only while embedding many passages).
            dense_settings: the FAISS index kind and its parameters (by default chosen by size).
        """
        embedder = embedder if embedder is not None else Embedder()
        chunking = chunking if chunking is not None else ChunkSettings()
        dense_settings = dense_settings if dense_settings is not None else DenseSettings()
        unique = list({d.id: d for d in documents}.values())
        passages = Chunker(chunking, embedder.count_tokens).chunk_all(unique, progress=bool(progress))
        kind = choose_kind(dense_settings, len(passages))
        vectors = new_faiss_index(_dimension(embedder), kind, dense_settings)
        if passages:
            vectors.add(embedder.encode([p.text for p in passages], progress=progress, passages=True))
        return cls(unique, passages, vectors, embedder, chunking, dense_settings=dense_settings)

    def add(self, documents: Sequence[Document], progress: bool | None = None) -> int:
        """Index documents not yet in the index (by id); returns how many passages were added.

        Dense vectors of existing passages are kept; the BM25 index is rebuilt (it takes
        milliseconds even for thousands of passages).
        """
        new = [d for d in {d.id: d for d in documents}.values() if d.id not in self.documents]
        if not new:
            return 0
        self.check_embedder()
        self._editable()
        passages = Chunker(self.chunking, self.embedder.count_tokens).chunk_all(new, progress=bool(progress))
        if passages:
            vectors = self.embedder.encode([p.text for p in passages], progress=progress, passages=True)
            kind = choose_kind(self.dense.settings, self.dense.size + len(passages))
            if kind != self.dense.kind:  # grown past the size where search turns approximate
                self.dense.vectors = self._rebuilt(kind, np.arange(self.dense.size))
            self.dense.vectors.add(vectors)
        self.documents.update((d.id, d) for d in new)
        self.passages += passages
        self.sparse = BM25Index.build([p.text for p in self.passages])
        self._columns = None
        return len(passages)

    def _editable(self) -> None:
        """Before a change: documents and passages as a dict and a list (read whole from the store once)."""
        if not isinstance(self.documents, dict):
            self.documents = {d.id: d for d in self.documents.values()}
        if not isinstance(self.passages, list):
            self.passages = list(self.passages)

    def _rebuilt(self, kind: str, rows: np.ndarray) -> faiss.Index:
        """A new FAISS index of ``kind`` holding the vectors of ``rows`` (read back, never re-encoded)."""
        vectors = new_faiss_index(self.dense.vectors.d, kind, self.dense.settings)
        if len(rows):
            vectors.add(self.dense.vectors.reconstruct_batch(rows))
        return vectors

    def remove(self, doc_ids: Sequence[str]) -> int:
        """Drop documents and their passages by id; returns how many passages were removed.

        Raises:
            InvalidInputError: ``doc_ids`` is a lone string.
            DocumentNotFoundError: an id is not in the index.
        """
        if isinstance(doc_ids, str):
            raise InvalidInputError(f"remove takes a list of document ids, got the string {doc_ids!r}")
        missing = [i for i in doc_ids if i not in self.documents]
        if missing:
            raise DocumentNotFoundError(f"no document with id {missing[0]!r} in the index")
        self._editable()
        gone = set(doc_ids)
        keep = np.array([row for row, p in enumerate(self.passages) if p.doc_id not in gone], dtype=np.int64)
        if self.dense.kind == "flat":  # rows removed in place: the others move up, nothing is re-encoded
            dropped = np.setdiff1d(np.arange(self.dense.size), keep)
            self.dense.vectors.remove_ids(faiss.IDSelectorBatch(dropped))
        else:  # an HNSW graph cannot drop nodes: a new graph over the kept vectors, read back
            self.dense.vectors = self._rebuilt("hnsw", keep)
        removed = len(self.passages) - len(keep)
        self.passages = [self.passages[row] for row in keep]
        for doc_id in gone:
            del self.documents[doc_id]
        self.sparse = BM25Index.build([p.text for p in self.passages])
        self._columns = None
        return removed

    def manifest(self) -> dict:
        return {
            "embedding_model": self.embedder.model_name,
            "dimension": self.dense.vectors.d,
            "normalized": True,
            "metric": "inner_product",
            "faiss_index": type(self.dense.vectors).__name__,
            "dense": {**self.dense.settings.to_dict(), "built": self.dense.kind},
            "passages": len(self.passages),
            "documents": len(self.documents),
            "chunking": asdict(self.chunking),
            "bm25": BM25_SETTINGS,
            "versions": _versions(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    def estimated_bytes(self, documents: Sequence[Document] = ()) -> int:
        """A generous guess of a saved generation's size, with ``documents`` added, to check disk room first."""
        text = sum(len(d.text.encode("utf-8")) for d in [*self.documents.values(), *documents])
        passages = len(self.passages) + text // 400  # about 600 characters a passage, with overlap
        return 4 * text + passages * (self.dense.vectors.d * 4 + 300) + (1 << 20)

    def save(self, path: str | Path) -> Path:
        """Write the index as a new generation of the folder ``path``, crash-safe; see ``rag.store``.

        The folder must be missing, empty, or an index already. Takes the folder's writer
        lock (re-entrant, so a caller that holds it for an update keeps it).

        Returns:
            ``path``.

        Raises:
            NotAnIndexError: ``path`` holds something else; it is left untouched.
            IndexWriteError: the folder cannot be written; the index there is unchanged.
        """

        def write(folder: Path) -> dict:
            write_file(folder / "index.faiss", faiss.serialize_index(self.dense.vectors).tobytes())
            passage_store.write(folder / passage_store.FILE, self.documents.values(), self.passages)
            self.sparse.save(folder / "bm25")
            return self.manifest()

        IndexFolder(path).commit(write)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, embedder: Embedder | None = None, backend: str = "auto") -> PassageIndex:
        """Open the live generation of an index folder, every file checked against the manifest.

        Args:
            path: the index folder.
            embedder: the query encoder; by default the model the manifest names.
            backend: how that default runs (see ``rag.fast_models``): "auto", "torch" or "onnx".

        Raises:
            IndexNotFoundError: no index at ``path``.
            IndexMismatchError: a file is missing or corrupt, or disagrees with the manifest or the embedder.
        """
        folder, manifest = IndexFolder(path).open()
        try:
            chunking = ChunkSettings(**manifest["chunking"])
            expected = int(manifest["passages"])
            model_name = manifest["embedding_model"]
            dimension = int(manifest["dimension"])
            dense_settings = DenseSettings(**{k: v for k, v in manifest.get("dense", {}).items() if k != "built"})
        except (KeyError, TypeError, ValueError, InvalidInputError) as e:
            raise IndexMismatchError(f"corrupt manifest.json in {path}: {e}") from e
        stored = (folder / passage_store.FILE).exists()
        files = ("index.faiss", "bm25", *((passage_store.FILE,) if stored else ("passages.jsonl", "documents.jsonl")))
        missing = [name for name in files if not (folder / name).exists()]
        if missing:
            raise IndexMismatchError(f"{path} is not a complete index: {missing[0]} is missing")
        embedder = embedder if embedder is not None else fast_models.embedder(model_name, backend)
        if embedder.model_name != model_name:
            raise IndexMismatchError(f"index {path} was built with {model_name!r}, "
                                     f"not {embedder.model_name!r}; rebuild it or query it with that model")
        try:
            # Memory-mapped: the vectors stay in the page cache, not in this process's heap.
            vectors = faiss.read_index(str(folder / "index.faiss"), faiss.IO_FLAG_MMAP)
            if stored:
                store = PassageStore(folder / passage_store.FILE)
                passages, documents = StoredPassages(store), StoredDocuments(store)
            else:  # format 2, read whole; the next save writes the store
                passages = [Passage(**p) for p in _read_records(folder / "passages.jsonl")]
                documents = [Document(**d) for d in _read_records(folder / "documents.jsonl")]
                known = {d.id for d in documents}
                orphan = next((p for p in passages if p.doc_id not in known), None)
                if orphan is not None:
                    raise IndexMismatchError(f"{path}: passage {orphan.id} belongs to no document in documents.jsonl")
            bm25 = BM25Index.load(folder / "bm25")
        except (RuntimeError, json.JSONDecodeError, TypeError, ValueError, OSError, sqlite3.Error) as e:
            raise IndexMismatchError(f"corrupt index file in {path}: {e}") from e
        if vectors.d != dimension:
            raise IndexMismatchError(f"index.faiss has dimension {vectors.d}, manifest says {dimension}")
        for what, count in (("index.faiss vectors", vectors.ntotal), ("stored passages", len(passages)),
                            ("bm25 rows", bm25.size)):
            if count != expected:
                raise IndexMismatchError(f"{path}: {count} {what}, but the manifest says {expected} passages")
        return cls(documents, passages, vectors, embedder, chunking, bm25, dense_settings)

    def check_embedder(self) -> None:
        """Load the embedder, and raise if its vectors do not fit the index.

        Raises:
            ModelLoadError: the embedding model cannot be loaded.
            IndexMismatchError: its vectors have another dimension than the index's.
        """
        dimension = _dimension(self.embedder)
        if dimension != self.dense.vectors.d:
            raise IndexMismatchError(f"embedder {self.embedder.model_name!r} gives {dimension}-d "
                                     f"vectors, the index holds {self.dense.vectors.d}-d vectors")


def _dimension(embedder: Embedder) -> int:
    """The embedder's vector size; loading it here turns its load error into the package's own."""
    try:
        return embedder.dimension
    except EmbeddingModelError as e:
        raise ModelLoadError(str(e)) from e
