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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from embeddings import EmbeddingModelError
from rag import exports
from rag.errors import DocumentNotFoundError, IndexMismatchError, InvalidInputError, ModelLoadError
from rag.index.bm25 import SETTINGS as BM25_SETTINGS
from rag.index.bm25 import BM25Index
from rag.index.dense import DenseIndex
from rag.index.generations import IndexFolder
from rag.index.segment import Segment, merge, merge_plan
from rag.protocols import Encoder, Index, Location
from rag.settings import ChunkSettings, DenseSettings
from rag.types import Copy, Document, Filters, Hit, Passage

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

    Open a saved one with :meth:`open`; build one with ``rag.indexing`` (``index_articles``, or
    ``build_index`` in memory). It keeps the contract of ``rag.protocols.Index``.

    Args:
        segments: the segments, in row order.
        dimension: the vectors' size.
        embedder: encodes questions (and new passages) into the vectors' space.
        chunking: how documents were split into passages.
        dense_settings: the FAISS index kind and its parameters.
    """

    concurrent_parts = False  # both searches use this machine's cores: at once, they would only take turns

    def __init__(self, segments: Sequence[Segment], dimension: int, embedder: Encoder, chunking: ChunkSettings,
                 dense_settings: DenseSettings | None = None) -> None:
        for segment in segments:
            if segment.vectors.ntotal != segment.rows or segment.postings.size != segment.rows:
                raise IndexMismatchError(f"a segment has {segment.rows} passages, {segment.vectors.ntotal} vectors "
                                         f"and {segment.postings.size} BM25 rows")
            if segment.vectors.d != dimension:
                raise IndexMismatchError(f"a segment holds {segment.vectors.d}-d vectors, the index {dimension}-d")
        self.segments = list(segments)
        self.chunking = chunking
        self._location: Path | None = None
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
    def embedder(self) -> Encoder:
        return self.dense.embedder

    @embedder.setter
    def embedder(self, embedder: Encoder) -> None:
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

    def hits(self, ranked: Sequence[tuple[int, float]],
             parts: Mapping[str, Mapping[int, float]] | None = None) -> list[Hit]:
        """(row, score) pairs, best first, as search hits ranked 1, 2, … (see ``rag.protocols.Index.hits``)"""
        found = []
        for rank, (row, score) in enumerate(ranked, 1):
            passage = self.passage(row)
            found.append(Hit.with_parts(passage, self.documents[passage.doc_id], score, rank, row, parts))
        return found

    @classmethod
    def create(cls, location: Location | None, embedder: Encoder, chunking: ChunkSettings | None = None,
               dense: DenseSettings | None = None) -> PassageIndex:
        """A new, empty index, to be saved into the folder ``location`` (None: kept in memory until saved).

        Raises:
            NotAnIndexError: ``location`` holds files that are no index; nothing is touched.
            IndexWriteError: ``location`` cannot be written.
        """
        if location is not None:
            folder = IndexFolder(location)
            folder.check_target()  # before any work: never write into a folder of someone's files
            folder.check_writable()
        index = cls([], _dimension(embedder), embedder, chunking if chunking is not None else ChunkSettings(), dense)
        index._location = None if location is None else Path(location)
        return index

    @classmethod
    def exists(cls, location: Location) -> bool:
        """Whether the folder ``location`` holds a committed index."""
        return IndexFolder(location).is_index()

    @classmethod
    def writing(cls, location: Location, wait: bool = True) -> AbstractContextManager[object]:
        """The folder's writer lock (see ``rag.index.generations``); ``wait=False`` fails at once if it is held."""
        return IndexFolder(location).writer(wait=wait)

    @property
    def dense_settings(self) -> DenseSettings:
        return self.dense.settings

    @property
    def location(self) -> str | None:
        """The folder this index was opened from or last saved to; None for an index only in memory."""
        return None if self._location is None else str(self._location)

    def known(self, doc_ids: Iterable[str]) -> set[str]:
        """Which of these document ids the index holds."""
        return {doc_id for doc_id in doc_ids if doc_id in self.documents}

    def record_copies(self, copies: Mapping[str, Sequence[Copy]]) -> None:
        """Record more copies of indexed documents (near-duplicates found later), by the documents' ids;
        they are shown on the documents' source cards and saved in the manifest.

        Raises:
            DocumentNotFoundError: an id is not in the index.
        """
        by_segment: list[dict[str, Sequence[Copy]]] = [{} for _ in self.segments]
        for doc_id, more in copies.items():
            at = next((i for i in reversed(range(len(self.segments))) if self.segments[i].holds(doc_id)), None)
            if at is None:
                raise DocumentNotFoundError(f"no document with id {doc_id!r} in the index")
            by_segment[at][doc_id] = more
        self.segments = [s.with_copies(more) if more else s for s, more in zip(self.segments, by_segment)]
        self._refresh()

    def add_embedded(self, documents: Sequence[Document], passages: Sequence[Passage], vectors: np.ndarray) -> int:
        """Add new documents, chunked and encoded (``rag.indexing``), as a new segment.

        Nothing already indexed is touched: the cost is that of the new documents.

        Args:
            documents: documents the index does not hold.
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

    def check_room(self, documents: Sequence[Document]) -> None:
        """Raise ``IndexWriteError`` if the folder's disk lacks room for the next save with ``documents`` added."""
        if self._location is not None:
            IndexFolder(self._location).check_space(self.estimated_bytes(documents))

    def save(self, path: Location | None = None) -> Path:
        """Write the index as a new generation of the folder ``path``, crash-safe; see ``rag.index.generations``.

        Segments read from disk are hard-linked, new ones written; small and mostly-deleted
        segments are merged first (see :data:`MOST_SEGMENTS`). The folder must be missing,
        empty, or an index already. Takes the folder's writer lock (re-entrant, so a caller
        that holds it for an update keeps it).

        Args:
            path: the folder; by default the one the index was opened from or last saved to.

        Returns:
            The folder.

        Raises:
            InvalidInputError: no ``path`` for an index that has none.
            NotAnIndexError: ``path`` holds something else; it is left untouched.
            IndexWriteError: the folder cannot be written; the index there is unchanged.
        """
        if path is None:
            if self._location is None:
                raise InvalidInputError("this index is only in memory: save it to a folder with save(path)")
            path = self._location
        plan = merge_plan(self.segments, MOST_SEGMENTS)
        if plan:
            merged = merge([self.segments[i] for i in plan], self.dense.settings)
            logger.info("merging %d segments into one of %d passages", len(plan), merged.rows)
            kept = [s for i, s in enumerate(self.segments) if i not in plan]
            self.segments = kept + ([merged] if merged.rows else [])
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
        self._location = Path(path)
        return self._location

    @classmethod
    def open(cls, location: Location, embedder: Encoder | None = None, backend: str = "auto") -> PassageIndex:
        """Open the live generation of an index folder, every file checked against the manifest.

        Args:
            location: the index folder.
            embedder: the query encoder; by default the model the manifest names.
            backend: how that default runs (see ``rag.exports``): "auto", "torch" or "onnx".

        Raises:
            IndexNotFoundError: no index at ``path``.
            IndexMismatchError: a file is missing or corrupt, or disagrees with the manifest or the embedder.
        """
        path = location
        folder, manifest = IndexFolder(path).open()
        try:
            chunking = ChunkSettings(**manifest["chunking"])
            expected = int(manifest["passages"])
            model_name = manifest["embedding_model"]
            dimension = int(manifest["dimension"])
            dense_settings = DenseSettings(**{k: v for k, v in manifest.get("dense", {}).items() if k != "built"})
            entries = [(str(e["name"]), int(e["passages"]), [str(d) for d in e["deleted"]], dict(e.get("copies", {})))
                       for e in manifest["segments"]]
        except (KeyError, TypeError, ValueError, InvalidInputError) as e:
            raise IndexMismatchError(f"corrupt manifest.json in {path}: {e}") from e
        embedder = embedder if embedder is not None else exports.embedder(model_name, backend)
        if embedder.model_name != model_name:
            raise IndexMismatchError(f"index {path} was built with {model_name!r}, "
                                     f"not {embedder.model_name!r}; rebuild it or query it with that model")
        try:
            segments = []
            for name, rows, deleted, copies in entries:  # their files were all checked against the manifest
                segment = Segment.load(folder / name, name, _files_under(manifest["files"], name), deleted, copies)
                if segment.rows != rows:
                    raise IndexMismatchError(f"{path}: segment {name} holds {segment.rows} passages, "
                                             f"but the manifest says {rows}")
                segments.append(segment)
            index = cls(segments, dimension, embedder, chunking, dense_settings)
            index._location = Path(path)
        except (RuntimeError, json.JSONDecodeError, TypeError, ValueError, OSError, sqlite3.Error) as e:
            raise IndexMismatchError(f"corrupt index file in {path}: {e}") from e
        if len(index.passages) != expected:
            raise IndexMismatchError(f"{path}: {len(index.passages)} passages, but the manifest says {expected}")
        return index

    def close(self) -> None:
        """Nothing to release: the files are memory-mapped, and unmapped with the index."""

    def __enter__(self) -> PassageIndex:
        return self

    def __exit__(self, *exc: object) -> None:
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


def _dimension(embedder: Encoder) -> int:
    """The embedder's vector size; loading it here turns its load error into the package's own."""
    try:
        return embedder.dimension
    except EmbeddingModelError as e:
        raise ModelLoadError(str(e)) from e


if TYPE_CHECKING:  # mypy checks that this backend keeps the contract of rag.protocols.Index
    _contract: type[Index] = PassageIndex
