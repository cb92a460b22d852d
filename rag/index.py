"""A passage index: dense vectors and BM25 over the passages of a set of documents.

Each saved generation of an index folder (see ``rag.store`` for the crash-safe layout) holds:

    index.faiss       dense vectors; row i is passage i
    passages.jsonl    one passage per line, in row order
    documents.jsonl   the cleaned documents the passages come from
    bm25/             bm25s sparse index over the same passages, same row order
    manifest.json     embedding model, dimension, metric, chunking, counts, versions, checksums

Loading checks every file against the manifest.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import faiss

from embeddings import Embedder, EmbeddingModelError
from rag import fast_models
from rag.bm25 import SETTINGS as BM25_SETTINGS
from rag.bm25 import BM25Index
from rag.chunking import Chunker, ChunkSettings
from rag.errors import DocumentNotFoundError, IndexMismatchError, InvalidInputError, ModelLoadError
from rag.store import IndexFolder, write_file
from rag.types import Document, Passage

logger = logging.getLogger(__name__)

FILES = ("index.faiss", "passages.jsonl", "documents.jsonl", "bm25")


def _versions() -> dict[str, str]:
    found = {}
    for package in ("rag-news-qa", "faiss-cpu", "sentence-transformers", "bm25s", "transformers", "torch"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found


def _jsonl_bytes(records: Sequence[dict]) -> bytes:
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records).encode("utf-8")


def _read_records(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


class PassageIndex:
    """Passages of a set of documents, searchable by dense vectors and by BM25.

    Build one with :meth:`build`, or open a saved one with :meth:`load`.
    """

    def __init__(self, documents: Sequence[Document], passages: Sequence[Passage], vectors: faiss.Index,
                 embedder: Embedder, chunking: ChunkSettings, bm25: BM25Index | None = None) -> None:
        if vectors.ntotal != len(passages):
            raise IndexMismatchError(f"{vectors.ntotal} vectors for {len(passages)} passages")
        self.documents = {d.id: d for d in documents}
        self.passages = list(passages)
        self.vectors = vectors
        self.embedder = embedder
        self.chunking = chunking
        self.bm25 = bm25 if bm25 is not None else BM25Index.build([p.text for p in self.passages])

    @classmethod
    def build(cls, documents: Sequence[Document], embedder: Embedder | None = None,
              chunking: ChunkSettings | None = None, progress: bool | None = None) -> PassageIndex:
        """Chunk, embed and index documents.

        Args:
            documents: cleaned documents (see ``rag.ingest.read_documents``).
            embedder: the encoder; the bundled all-MiniLM-L6-v2 by default.
            chunking: passage settings; the defaults of ``ChunkSettings`` otherwise.
            progress: show progress bars while chunking and embedding (by default only while embedding many passages).
        """
        embedder = embedder if embedder is not None else Embedder()
        chunking = chunking if chunking is not None else ChunkSettings()
        # Cosine similarity: unit vectors in an inner-product index.
        index = cls([], [], faiss.IndexFlatIP(_dimension(embedder)), embedder, chunking)
        index.add(documents, progress=progress)
        return index

    def _chunker(self) -> Chunker:
        return Chunker(self.chunking, self.embedder.count_tokens)

    def add(self, documents: Sequence[Document], progress: bool | None = None) -> int:
        """Index documents not yet in the index (by id); returns how many passages were added.

        Dense vectors of existing passages are kept; the BM25 index is rebuilt (it takes
        milliseconds even for thousands of passages).
        """
        new = [d for d in {d.id: d for d in documents}.values() if d.id not in self.documents]
        if new:
            self.check_embedder()
        passages = self._chunker().chunk_all(new, progress=bool(progress))
        if passages:
            self.vectors.add(self.embedder.encode([p.text for p in passages], progress=progress, passages=True))
        self.documents.update((d.id, d) for d in new)
        self.passages += passages
        self.bm25 = BM25Index.build([p.text for p in self.passages])
        return len(passages)

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
        gone = set(doc_ids)
        keep = [row for row, p in enumerate(self.passages) if p.doc_id not in gone]
        kept_vectors = self.vectors.reconstruct_n(0, self.vectors.ntotal)[keep] if keep else None
        self.vectors = faiss.IndexFlatIP(self.vectors.d)
        if kept_vectors is not None:
            self.vectors.add(kept_vectors)
        removed = len(self.passages) - len(keep)
        self.passages = [self.passages[row] for row in keep]
        for doc_id in gone:
            del self.documents[doc_id]
        self.bm25 = BM25Index.build([p.text for p in self.passages])
        return removed

    def manifest(self) -> dict:
        return {
            "embedding_model": self.embedder.model_name,
            "dimension": self.vectors.d,
            "normalized": True,
            "metric": "inner_product",
            "faiss_index": type(self.vectors).__name__,
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
        return 4 * text + passages * (self.vectors.d * 4 + 300) + (1 << 20)

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
            write_file(folder / "index.faiss", faiss.serialize_index(self.vectors).tobytes())
            write_file(folder / "passages.jsonl", _jsonl_bytes([p.to_dict() for p in self.passages]))
            write_file(folder / "documents.jsonl", _jsonl_bytes([d.to_dict() for d in self.documents.values()]))
            self.bm25.save(folder / "bm25")
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
        except (KeyError, TypeError, ValueError) as e:
            raise IndexMismatchError(f"corrupt manifest.json in {path}: {e}") from e
        missing = [name for name in FILES if not (folder / name).exists()]
        if missing:
            raise IndexMismatchError(f"{path} is not a complete index: {missing[0]} is missing")
        embedder = embedder if embedder is not None else fast_models.embedder(model_name, backend)
        if embedder.model_name != model_name:
            raise IndexMismatchError(f"index {path} was built with {model_name!r}, "
                                     f"not {embedder.model_name!r}; rebuild it or query it with that model")
        try:
            vectors = faiss.read_index(str(folder / "index.faiss"))
            passages = [Passage(**p) for p in _read_records(folder / "passages.jsonl")]
            documents = [Document(**d) for d in _read_records(folder / "documents.jsonl")]
            bm25 = BM25Index.load(folder / "bm25")
        except (RuntimeError, json.JSONDecodeError, TypeError, ValueError, OSError) as e:
            raise IndexMismatchError(f"corrupt index file in {path}: {e}") from e
        if vectors.d != dimension:
            raise IndexMismatchError(f"index.faiss has dimension {vectors.d}, manifest says {dimension}")
        for what, count in (("index.faiss vectors", vectors.ntotal), ("passages.jsonl lines", len(passages)),
                            ("bm25 rows", bm25.size)):
            if count != expected:
                raise IndexMismatchError(f"{path}: {count} {what}, but the manifest says {expected} passages")
        known = {d.id for d in documents}
        orphan = next((p for p in passages if p.doc_id not in known), None)
        if orphan is not None:
            raise IndexMismatchError(f"{path}: passage {orphan.id} belongs to no document in documents.jsonl")
        return cls(documents, passages, vectors, embedder, chunking, bm25)

    def check_embedder(self) -> None:
        """Load the embedder, and raise if its vectors do not fit the index.

        Raises:
            ModelLoadError: the embedding model cannot be loaded.
            IndexMismatchError: its vectors have another dimension than the index's.
        """
        dimension = _dimension(self.embedder)
        if dimension != self.vectors.d:
            raise IndexMismatchError(f"embedder {self.embedder.model_name!r} gives {dimension}-d "
                                     f"vectors, the index holds {self.vectors.d}-d vectors")


def _dimension(embedder: Embedder) -> int:
    """The embedder's vector size; loading it here turns its load error into the package's own."""
    try:
        return embedder.dimension
    except EmbeddingModelError as e:
        raise ModelLoadError(str(e)) from e
