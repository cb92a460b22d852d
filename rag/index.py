"""A passage index is a folder you can read.

    index.faiss       dense vectors; row i is passage i
    passages.jsonl    one passage per line, in row order
    documents.jsonl   the cleaned documents the passages come from
    bm25/             bm25s sparse index over the same passages, same row order
    manifest.json     embedding model, dimension, metric, chunking, counts, versions

Saves write a temporary sibling folder and rename it into place, so a crash never
leaves half an index. Loading checks every file against the manifest.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import faiss
import numpy as np

from embeddings import Embedder, EmbeddingModelError
from rag.bm25 import SETTINGS as BM25_SETTINGS
from rag.bm25 import BM25Index
from rag.chunking import Chunker, ChunkSettings
from rag.errors import IndexMismatchError, IndexNotFoundError, InvalidInputError, ModelLoadError
from rag.types import Document, Passage

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
FILES = ("manifest.json", "index.faiss", "passages.jsonl", "documents.jsonl", "bm25")


def _versions() -> dict[str, str]:
    found = {}
    for package in ("rag-news-qa", "faiss-cpu", "sentence-transformers", "bm25s", "transformers", "torch"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found


def _write_jsonl(path: Path, records: Sequence[dict]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


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
            progress: show a progress bar while embedding (by default only for many passages).
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
        passages = self._chunker().chunk_all(new)
        if passages:
            self.vectors.add(self.embedder.encode([p.text for p in passages], progress=progress))
        self.documents.update((d.id, d) for d in new)
        self.passages += passages
        self.bm25 = BM25Index.build([p.text for p in self.passages])
        return len(passages)

    def remove(self, doc_ids: Sequence[str]) -> int:
        """Drop documents and their passages by id; returns how many passages were removed.

        Raises:
            InvalidInputError: ``doc_ids`` is a lone string, or an id is not in the index.
        """
        if isinstance(doc_ids, str):
            raise InvalidInputError(f"remove takes a list of document ids, got the string {doc_ids!r}")
        missing = [i for i in doc_ids if i not in self.documents]
        if missing:
            raise InvalidInputError(f"no document with id {missing[0]!r} in the index")
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
            "format_version": FORMAT_VERSION,
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

    def save(self, path: str | Path) -> Path:
        """Write the index folder atomically, replacing any index already there."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
        try:
            tmp.mkdir()
            faiss.write_index(self.vectors, str(tmp / "index.faiss"))
            _write_jsonl(tmp / "passages.jsonl", [p.to_dict() for p in self.passages])
            _write_jsonl(tmp / "documents.jsonl", [d.to_dict() for d in self.documents.values()])
            self.bm25.save(tmp / "bm25")
            # The manifest goes last: a folder with a manifest is a finished index.
            (tmp / "manifest.json").write_text(json.dumps(self.manifest(), indent=2) + "\n")
            old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:8]}"
            if path.exists():
                path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return path

    @classmethod
    def load(cls, path: str | Path, embedder: Embedder | None = None) -> PassageIndex:
        """Open a saved index and check it against its manifest.

        Args:
            path: the index folder.
            embedder: the query encoder; by default the model the manifest names.

        Raises:
            IndexNotFoundError: no folder, or a file of the index is missing.
            IndexMismatchError: a file is corrupt or disagrees with the manifest or the embedder.
        """
        path = Path(path)
        if not path.is_dir():
            raise IndexNotFoundError(f"no index folder at {path}")
        for name in FILES:
            if not (path / name).exists():
                raise IndexNotFoundError(f"{path} is not a complete index: {name} is missing")
        try:
            manifest = json.loads((path / "manifest.json").read_text())
            chunking = ChunkSettings(**manifest["chunking"])
            expected = int(manifest["passages"])
            model_name = manifest["embedding_model"]
            dimension = int(manifest["dimension"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise IndexMismatchError(f"corrupt manifest.json in {path}: {e}") from e
        if manifest.get("format_version") != FORMAT_VERSION:
            raise IndexMismatchError(f"index format {manifest.get('format_version')!r} in {path}, "
                                     f"this version reads {FORMAT_VERSION}; rebuild it with `rag index`")
        embedder = embedder if embedder is not None else Embedder(model_name)
        if embedder.model_name != model_name:
            raise IndexMismatchError(f"index {path} was built with {model_name!r}, "
                                     f"not {embedder.model_name!r}; rebuild it or query it with that model")
        try:
            vectors = faiss.read_index(str(path / "index.faiss"))
            passages = [Passage(**p) for p in _read_records(path / "passages.jsonl")]
            documents = [Document(**d) for d in _read_records(path / "documents.jsonl")]
            bm25 = BM25Index.load(path / "bm25")
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
