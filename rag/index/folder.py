"""A passage index: dense vectors and BM25 over the passages of a set of documents, in segments.

The index is a list of segments (``rag.index.segment``), each one batch of documents with their
passages, vectors and BM25 lists, written once. Rows are numbered across segments, one
after the other. Adding documents adds a segment; removing one marks it deleted. Either
costs in proportion to the change, and so does saving: each saved generation of an index
folder (see ``rag.index.generations`` for the crash-safe layout) holds

    seg-…/            each segment, hard-linked from the generation before when unchanged
    manifest.json     embedding model, dimension, chunking, counts, versions, the segments
                      and their deleted documents, and the checksum of every file

Loading checks every file against the manifest.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from embeddings import Embedder, EmbeddingModelError
from rag.read import runtime as fast_models
from rag.index import passage_store
from rag.index.bm25 import SETTINGS as BM25_SETTINGS
from rag.index.bm25 import BM25Index, Postings
from rag.indexing.chunking import ChunkSettings
from rag.index.dense import DenseIndex, read_faiss
from rag.errors import (
    DocumentNotFoundError,
    IndexMismatchError,
    InvalidInputError,
    ModelLoadError,
)
from rag.index.filters import Filters
from rag.ingest import near_duplicates
from rag.index.passage_store import PassageStore, StoredDocuments, StoredPassages
from rag.index.segment import Segment, chunk_and_embed, merge, merge_plan
from rag.settings import DenseSettings
from rag.index.generations import IndexFolder
from rag.types import Document, Hit, Passage

logger = logging.getLogger(__name__)

# More segments than this are merged at a save, smallest first (see rag.index.segment.merge_plan).
MOST_SEGMENTS = 10


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


class LiveDocuments(Mapping[str, Document]):
    """The documents of an index's segments that are not deleted, by id."""

    def __init__(self, segments: Sequence[Segment]) -> None:
        self._segments = segments

    def __getitem__(self, doc_id: str) -> Document:
        for segment in reversed(self._segments):  # a document removed and added again lives in the newer
            if segment.holds(doc_id):
                return segment.document(doc_id)
        raise KeyError(doc_id)

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and any(s.holds(doc_id) for s in self._segments)

    def __len__(self) -> int:
        return sum(len(s.documents) - len(s.deleted) for s in self._segments)

    def __iter__(self) -> Iterator[str]:
        return (d.id for d in self.values())

    def values(self):  # one query per segment, not one per id
        return [d for s in self._segments for d in s.live_documents()]


class LivePassages:
    """The passages of an index's segments whose documents are not deleted, in row order.

    Sized and iterable; a passage by row is ``PassageIndex.passage(row)``.
    """

    def __init__(self, segments: Sequence[Segment]) -> None:
        self._segments = segments

    def __len__(self) -> int:
        return sum(s.live_rows() for s in self._segments)

    def __iter__(self) -> Iterator[Passage]:
        for segment in self._segments:
            yield from segment.live_passages()


class PassageIndex:
    """Passages of a set of documents, searchable by dense vectors and by BM25.

    Build one with :meth:`build`, or open a saved one with :meth:`load`.

    Args:
        segments: the segments, in row order.
        dimension: the vectors' size.
        embedder: encodes questions (and new passages) into the vectors' space.
        chunking: how documents were split into passages.
        dense_settings: the FAISS index kind and its parameters.
    """

    def __init__(self, segments: Sequence[Segment], dimension: int, embedder: Embedder, chunking: ChunkSettings,
                 dense_settings: DenseSettings | None = None) -> None:
        for segment in segments:
            if segment.vectors.ntotal != segment.rows or segment.postings.size != segment.rows:
                raise IndexMismatchError(f"a segment has {segment.rows} passages, {segment.vectors.ntotal} vectors "
                                         f"and {segment.postings.size} BM25 rows")
            if segment.vectors.d != dimension:
                raise IndexMismatchError(f"a segment holds {segment.vectors.d}-d vectors, the index {dimension}-d")
        self.segments = list(segments)
        self.chunking = chunking
        self.dense = DenseIndex([], dimension, embedder, dense_settings)
        self._refresh()

    def _refresh(self) -> None:
        """After the segments changed: searches over the new list, and the views on it."""
        self.dense = DenseIndex([s.vectors for s in self.segments], self.dense.dimension, self.dense.embedder,
                                self.dense.settings)
        self.sparse = BM25Index([s.postings for s in self.segments])
        self.documents: Mapping[str, Document] = LiveDocuments(self.segments)
        self.passages = LivePassages(self.segments)
        masks = [s.live() for s in self.segments]
        self._live = None if all(m is None for m in masks) else np.concatenate(
            [np.ones(s.rows, dtype=bool) if m is None else m for s, m in zip(self.segments, masks)])

    @property
    def embedder(self) -> Embedder:
        return self.dense.embedder

    @embedder.setter
    def embedder(self, embedder: Embedder) -> None:
        self.dense.embedder = embedder

    @property
    def rows(self) -> int:
        """Passage rows in all segments, those of deleted documents included until they are merged away."""
        return self.dense.size

    def allowed(self, filters: Filters | None) -> np.ndarray | None:
        """The passage rows that may be returned: not deleted, and passing ``filters``; None when all may."""
        if not filters:
            return self._live
        passing = np.concatenate([np.zeros(0, dtype=bool), *(s.columns().allowed(filters) for s in self.segments)])
        return passing if self._live is None else passing & self._live

    def passage_counts(self) -> dict[str, int]:
        """How many passages each live document has, by id (counted by the stores when loaded)."""
        return {doc_id: n for s in self.segments for doc_id, n in s.passage_counts().items()}

    def passage(self, row: int) -> Passage:
        """The passage at ``row``."""
        i = int(np.searchsorted(self.dense.offsets, row, side="right")) - 1
        return self.segments[i].passages[row - int(self.dense.offsets[i])]

    def hits(self, ranked: Sequence[tuple[int, float]]) -> list[Hit]:
        """(row, score) pairs, best first, as search hits ranked 1, 2, …"""
        found = []
        for rank, (row, score) in enumerate(ranked, 1):
            passage = self.passage(row)
            found.append(Hit(passage=passage, document=self.documents[passage.doc_id], score=score, rank=rank))
        return found

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
        index = cls([], _dimension(embedder), embedder, chunking if chunking is not None else ChunkSettings(),
                    dense_settings)
        index.add(documents, progress)
        return index

    def add(self, documents: Sequence[Document], progress: bool | None = None) -> int:
        """Index documents not yet in the index (by id), as a new segment; returns how many passages were added.

        Nothing already indexed is touched: the cost is that of the new documents.
        """
        new = self.new_documents(documents)
        if not new:
            return 0
        self.check_embedder()
        return self.add_embedded(new, *chunk_and_embed(new, self.embedder, self.chunking, progress))

    def new_documents(self, documents: Sequence[Document]) -> list[Document]:
        """Those of ``documents`` not in the index yet, each id once, in their order.

        One that is a near-duplicate of an indexed article (another outlet's copy of a wire
        story, ``rag.ingest.near_duplicates``) is left out too, and recorded as a copy of that
        article, which is shown on its source card from now on and saved with the index.
        """
        unique = [d for d in {d.id: d for d in documents}.values() if d.id not in self.documents]
        found = near_duplicates.copies_in(self, unique)
        if found:
            by_segment: list[dict[str, list]] = [{} for _ in self.segments]
            for doc, original in found.items():
                at = next(i for i in reversed(range(len(self.segments))) if self.segments[i].holds(original))
                by_segment[at].setdefault(original, []).append((doc.source, doc.outlet, doc.url))
            self.segments = [s.with_copies(more) if more else s for s, more in zip(self.segments, by_segment)]
            self._refresh()
        return [d for d in unique if d not in found]

    def add_embedded(self, documents: Sequence[Document], passages: Sequence[Passage], vectors: np.ndarray) -> int:
        """Add documents already chunked and encoded elsewhere (see ``rag.indexing.ray``), as a new segment.

        Args:
            documents: new documents (see :meth:`new_documents`).
            passages: their passages, chunked with this index's chunking.
            vectors: row r is the vector of ``passages[r]``, from this index's embedding model.

        Returns:
            How many passages were added.
        """
        if vectors.ndim != 2 or vectors.shape[1] != self.dense.dimension:
            raise IndexMismatchError(f"vectors of shape {vectors.shape} for a {self.dense.dimension}-d index")
        if not passages:
            return 0
        segment = Segment.build(documents, passages, vectors, self.dense.settings)
        self.segments.append(segment)
        self._refresh()
        return segment.rows

    def remove(self, doc_ids: Sequence[str]) -> int:
        """Mark documents deleted, by id; returns how many passages were removed.

        Their rows are skipped by every search from now on, and dropped from disk when their
        segment is merged; no vector is rebuilt.

        Raises:
            InvalidInputError: ``doc_ids`` is a lone string.
            DocumentNotFoundError: an id is not in the index.
        """
        if isinstance(doc_ids, str):
            raise InvalidInputError(f"remove takes a list of document ids, got the string {doc_ids!r}")
        missing = [i for i in doc_ids if i not in self.documents]
        if missing:
            raise DocumentNotFoundError(f"no document with id {missing[0]!r} in the index")
        before = len(self.passages)
        gone = set(doc_ids)
        held = [[d for d in gone if s.holds(d)] for s in self.segments]
        self.segments = [s.with_deleted(ids) if ids else s for s, ids in zip(self.segments, held)]
        self._refresh()
        return before - len(self.passages)

    def manifest(self, segments: Sequence[dict]) -> dict:
        return {
            "embedding_model": self.embedder.model_name,
            "dimension": self.dense.dimension,
            "normalized": True,
            "metric": "inner_product",
            "dense": {**self.dense.settings.to_dict(), "built": self.dense.kind},
            "passages": len(self.passages),
            "documents": len(self.documents),
            "segments": list(segments),
            "chunking": asdict(self.chunking),
            "bm25": BM25_SETTINGS,
            "versions": _versions(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    def estimated_bytes(self, documents: Sequence[Document] = ()) -> int:
        """A generous guess of what the next save writes, with ``documents`` added, to check disk room first.

        Segments read from disk are linked, not written; only new segments and merges take room.
        """
        plan = merge_plan(self.segments, MOST_SEGMENTS)
        text = sum(len(d.text.encode("utf-8")) for d in documents)
        text += sum(len(d.text.encode("utf-8")) for i, s in enumerate(self.segments) if s.name is None or i in plan
                    for d in s.live_documents())
        passages = text // 400  # about 600 characters a passage, with overlap
        return 4 * text + passages * (self.dense.dimension * 4 + 300) + (1 << 20)

    def save(self, path: str | Path) -> Path:
        """Write the index as a new generation of the folder ``path``, crash-safe; see ``rag.index.generations``.

        Segments read from disk are hard-linked, new ones written; small and mostly-deleted
        segments are merged first (see :data:`MOST_SEGMENTS`). The folder must be missing,
        empty, or an index already. Takes the folder's writer lock (re-entrant, so a caller
        that holds it for an update keeps it).

        Returns:
            ``path``.

        Raises:
            NotAnIndexError: ``path`` holds something else; it is left untouched.
            IndexWriteError: the folder cannot be written; the index there is unchanged.
        """
        plan = merge_plan(self.segments, MOST_SEGMENTS)
        if plan:
            merged = merge([self.segments[i] for i in plan], self.dense.settings)
            logger.info("merging %d segments into one of %d passages", len(plan), merged.rows)
            self.segments = [s for i, s in enumerate(self.segments) if i not in plan] + ([merged] if merged.rows else [])
            self._refresh()

        def write(folder: Path) -> dict:
            entries, known = [], {}
            for segment in self.segments:
                name, files = segment.write(folder)
                known.update(files)
                entries.append({"name": name, "passages": segment.rows, "deleted": sorted(segment.deleted),
                                **({"copies": segment.copies} if segment.copies else {})})
            return {**self.manifest(entries), "files": known}

        IndexFolder(path).commit(write)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, embedder: Embedder | None = None, backend: str = "auto") -> PassageIndex:
        """Open the live generation of an index folder, every file checked against the manifest.

        Args:
            path: the index folder.
            embedder: the query encoder; by default the model the manifest names.
            backend: how that default runs (see ``rag.read.runtime``): "auto", "torch" or "onnx".

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
            entries = manifest.get("segments")
            if entries is not None:
                entries = [(str(e["name"]), int(e["passages"]), [str(d) for d in e["deleted"]], dict(e.get("copies", {})))
                           for e in entries]
        except (KeyError, TypeError, ValueError, InvalidInputError) as e:
            raise IndexMismatchError(f"corrupt manifest.json in {path}: {e}") from e
        embedder = embedder if embedder is not None else fast_models.embedder(model_name, backend)
        if embedder.model_name != model_name:
            raise IndexMismatchError(f"index {path} was built with {model_name!r}, "
                                     f"not {embedder.model_name!r}; rebuild it or query it with that model")
        try:
            if entries is None:  # formats 2 and 3: one unsegmented index, made a segment; the next save writes 4
                segments = [_unsegmented(folder, path)]
            else:
                segments = []
                for name, rows, deleted, copies in entries:  # their files were all checked against the manifest
                    segment = Segment.load(folder / name, name, _files_under(manifest["files"], name), deleted,
                                           copies)
                    if segment.rows != rows:
                        raise IndexMismatchError(f"{path}: segment {name} holds {segment.rows} passages, "
                                                 f"but the manifest says {rows}")
                    segments.append(segment)
            index = cls(segments, dimension, embedder, chunking, dense_settings)
        except (RuntimeError, json.JSONDecodeError, TypeError, ValueError, OSError, sqlite3.Error) as e:
            raise IndexMismatchError(f"corrupt index file in {path}: {e}") from e
        if len(index.passages) != expected:
            raise IndexMismatchError(f"{path}: {len(index.passages)} passages, but the manifest says {expected}")
        return index

    def close(self) -> None:
        """Nothing to release (the files are memory-mapped and unmapped with the index); here so that either
        kind of index, this or a ``QdrantIndex``, can be used in a ``with`` block."""

    def __enter__(self) -> PassageIndex:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def check_embedder(self) -> None:
        """Load the embedder, and raise if its vectors do not fit the index.

        Raises:
            ModelLoadError: the embedding model cannot be loaded.
            IndexMismatchError: its vectors have another dimension than the index's.
        """
        dimension = _dimension(self.embedder)
        if dimension != self.dense.dimension:
            raise IndexMismatchError(f"embedder {self.embedder.model_name!r} gives {dimension}-d "
                                     f"vectors, the index holds {self.dense.dimension}-d vectors")


def _files_under(files: Mapping[str, dict], name: str) -> dict[str, dict]:
    """The manifest's checksums of one segment's files, by path inside the segment."""
    prefix = f"{name}/"
    return {path[len(prefix):]: entry for path, entry in files.items() if path.startswith(prefix)}


def _unsegmented(folder: Path, path: str | Path) -> Segment:
    """A format-2 or format-3 generation (one index.faiss, bm25s lists, passages) as one unsaved segment.

    Its BM25 lists are rebuilt from the passages' text, once.
    """
    stored = (folder / passage_store.FILE).exists()
    files = ("index.faiss", *((passage_store.FILE,) if stored else ("passages.jsonl", "documents.jsonl")))
    missing = [name for name in files if not (folder / name).exists()]
    if missing:
        raise IndexMismatchError(f"{path} is not a complete index: {missing[0]} is missing")
    vectors = read_faiss(folder / "index.faiss")
    if stored:
        store = PassageStore(folder / passage_store.FILE)
        documents: Mapping[str, Document] = StoredDocuments(store)
        passages: Sequence[Passage] = StoredPassages(store)
    else:
        passages = [Passage(**p) for p in _read_records(folder / "passages.jsonl")]
        documents = {d.id: d for d in (Document(**d) for d in _read_records(folder / "documents.jsonl"))}
        orphan = next((p for p in passages if p.doc_id not in documents), None)
        if orphan is not None:
            raise IndexMismatchError(f"{path}: passage {orphan.id} belongs to no document in documents.jsonl")
    if vectors.ntotal != len(passages):
        raise IndexMismatchError(f"{path}: {vectors.ntotal} index.faiss vectors for {len(passages)} passages")
    logger.info("reading an index of an older format at %s: its BM25 lists are rebuilt now, and "
                "the next save writes the current format", path)
    return Segment(documents, passages, vectors, Postings.build([p.text for p in passages]))


def _dimension(embedder: Embedder) -> int:
    """The embedder's vector size; loading it here turns its load error into the package's own."""
    try:
        return embedder.dimension
    except EmbeddingModelError as e:
        raise ModelLoadError(str(e)) from e
