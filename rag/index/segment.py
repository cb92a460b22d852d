"""A segment: one batch of documents with their passages, vectors and BM25 lists, written once.

An index is a list of segments (``rag.index.folder``), the way Lucene and tantivy keep theirs.
Adding documents adds a segment; nothing already written changes. Removing a document
marks it deleted in the generation's manifest (a tombstone), and searches skip its rows.
Each saved generation of the folder holds its segments as subfolders::

    seg-3f9a0c1b2d4e/
      index.faiss        the segment's vectors (flat, or HNSW when it is large; rag.index.dense)
      passages.sqlite    its documents and passages (rag.index.passage_store)
      bm25/              its inverted lists (rag.index.bm25)

A segment already on disk is hard-linked into the next generation, not copied (copied
only where the file system has no hard links), and its checksums are carried over, so
saving costs in proportion to what changed. Small segments, and segments mostly deleted,
are merged into one at save time (:func:`merge`): their vectors are read back, never
re-encoded.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import faiss
import numpy as np

from rag.index import passage_store
from rag.index.bm25 import Postings
from rag.index.dense import choose_kind, new_faiss_index, read_faiss
from rag.index.filters import DocumentColumns
from rag.index.generations import write_file
from rag.index.passage_store import PassageStore, StoredDocuments, StoredPassages
from rag.settings import DenseSettings
from rag.types import Copy, Document, Passage

logger = logging.getLogger(__name__)

FILES = ("index.faiss", passage_store.FILE, "bm25")


class Segment:
    """Documents, their passages (row r is passage r), vectors and BM25 lists, and which documents are deleted.

    Args:
        documents: by id; a dict, or the documents of a store.
        passages: in row order; a list, or the passages of a store.
        vectors: row r is the vector of passage r.
        postings: row r is passage r.
        name: the folder it was saved as, None until it is saved.
        home: the folder its files are in, when saved.
        files: the checksums of its files, as the manifest lists them (paths inside the segment).
        deleted: the ids of its documents that are deleted.
        copies: more copies of its documents, found after it was written (near-duplicates
            added later, ``rag.indexing.copies``), by document id; saved in the manifest.
    """

    def __init__(self, documents: Mapping[str, Document], passages: Sequence[Passage], vectors: faiss.Index,
                 postings: Postings, name: str | None = None, home: Path | None = None,
                 files: Mapping[str, dict] | None = None, deleted: frozenset[str] = frozenset(),
                 copies: Mapping[str, Sequence[Copy]] | None = None) -> None:
        self.documents = documents
        self.passages = passages
        self.vectors = vectors
        self.postings = postings
        self.name = name
        self.home = home
        self.files = dict(files or {})
        self.deleted = frozenset(deleted)
        self.copies = {doc_id: _as_copies(found) for doc_id, found in (copies or {}).items()}
        self._columns: DocumentColumns | None = None
        self._live: np.ndarray | None = None
        self._live_rows: int | None = None

    @property
    def rows(self) -> int:
        return len(self.passages)

    @classmethod
    def build(cls, documents: Sequence[Document], passages: Sequence[Passage], vectors: np.ndarray,
              dense_settings: DenseSettings) -> Segment:
        """A new segment of ``documents`` (unique ids), their ``passages`` and the passages' ``vectors``
        (row r of passage r)."""
        if len(vectors) != len(passages):
            raise ValueError(f"{len(vectors)} vectors for {len(passages)} passages")
        index = new_faiss_index(vectors.shape[1], choose_kind(dense_settings, len(passages)), dense_settings)
        if len(passages):
            index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        return cls({d.id: d for d in documents}, list(passages), index, Postings.build([p.text for p in passages]))

    @classmethod
    def load(cls, home: Path, name: str, files: Mapping[str, dict], deleted: Sequence[str] = (),
             copies: Mapping[str, Sequence[Copy]] | None = None) -> Segment:
        """Open a saved segment (its files already checked): vectors and lists memory-mapped, passages read by row."""
        store = PassageStore(home / passage_store.FILE)
        return cls(StoredDocuments(store), StoredPassages(store),
                   read_faiss(home / "index.faiss"),
                   Postings.load(home / "bm25"), name, home, files, frozenset(deleted), copies)

    def with_deleted(self, doc_ids: Sequence[str]) -> Segment:
        """This segment with ``doc_ids`` deleted as well (the data is shared, not copied)."""
        return self._changed(self.deleted | set(doc_ids), self.copies)

    def with_copies(self, found: Mapping[str, Sequence[Copy]]) -> Segment:
        """This segment with more copies of some of its documents (the data is shared, not copied)."""
        copies = dict(self.copies)
        for doc_id, more in found.items():
            copies[doc_id] = (*copies.get(doc_id, ()), *_as_copies(more))
        return self._changed(self.deleted, copies)

    def _changed(self, deleted: frozenset[str], copies: Mapping[str, Sequence[Copy]]) -> Segment:
        changed = Segment(self.documents, self.passages, self.vectors, self.postings, self.name, self.home, self.files,
                          deleted, copies)
        changed._columns = self._columns  # they cover deleted documents too, so they still hold
        return changed

    def document(self, doc_id: str) -> Document:
        """One of its documents, with the copies found after it was written."""
        return self._with_copies(self.documents[doc_id])

    def _with_copies(self, document: Document) -> Document:
        more = self.copies.get(document.id)
        return replace(document, copies=(*document.copies, *more)) if more else document

    def holds(self, doc_id: str) -> bool:
        """Whether ``doc_id`` is a live document of this segment."""
        return doc_id not in self.deleted and doc_id in self.documents

    def live(self) -> np.ndarray | None:
        """A bool mask over rows, False where the passage's document is deleted; None when none is."""
        if not self.deleted:
            return None
        if self._live is None:
            if isinstance(self.passages, StoredPassages):
                dead = self.passages.store.rows_of(self.deleted)
            else:
                dead = [row for row, p in enumerate(self.passages) if p.doc_id in self.deleted]
            self._live = np.ones(self.rows, dtype=bool)
            self._live[dead] = False
        return self._live

    def live_rows(self) -> int:
        if self._live_rows is None:
            mask = self.live()
            self._live_rows = self.rows if mask is None else int(mask.sum())
        return self._live_rows

    def columns(self) -> DocumentColumns:
        """The documents' filterable fields (deleted ones too; their rows are masked by :meth:`live`)."""
        if self._columns is None:
            if isinstance(self.documents, StoredDocuments):  # the metadata only, not the texts
                self._columns = DocumentColumns(*self.documents.store.metadata())
            else:
                self._columns = DocumentColumns(list(self.documents.values()), [p.doc_id for p in self.passages])
        return self._columns

    def live_documents(self) -> Iterator[Document]:
        return (self._with_copies(d) for d in self.documents.values() if d.id not in self.deleted)

    def live_passages(self) -> Iterator[Passage]:
        return (p for p in self.passages if p.doc_id not in self.deleted)

    def passage_counts(self) -> dict[str, int]:
        if isinstance(self.passages, StoredPassages):
            counts = self.passages.store.passage_counts()
        else:
            counts = Counter(p.doc_id for p in self.passages)
        return {doc_id: n for doc_id, n in counts.items() if doc_id not in self.deleted}

    def _linkable(self) -> bool:
        """Whether this segment's saved files are all still there, as the manifest listed them."""
        if self.name is None or self.home is None or not self.files:
            return False
        try:
            return all((self.home / path).stat().st_size == entry["bytes"] for path, entry in self.files.items())
        except OSError:
            return False

    def write(self, generation: Path) -> tuple[str, dict[str, dict]]:
        """Put this segment into a new generation folder; returns its name and the checksums already known.

        A saved segment is hard-linked (or, where links are impossible, copied) with its
        checksums carried over; a new one, or one whose files have gone from where it was
        saved, is written, and ``rag.index.generations`` checksums it.
        """
        saved, home = self.name, self.home
        if saved is not None and home is not None and self._linkable():
            for path in self.files:
                destination = generation / saved / path
                destination.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(home / path, destination)
                except OSError:  # no hard links here (another file system kind): a copy does
                    shutil.copyfile(home / path, destination)
            return saved, {f"{saved}/{path}": entry for path, entry in self.files.items()}
        name = f"seg-{uuid.uuid4().hex[:12]}"
        target = generation / name
        target.mkdir()
        write_file(target / "index.faiss", faiss.serialize_index(self.vectors).tobytes())
        passage_store.write(target / passage_store.FILE, self.documents.values(), self.passages)
        self.postings.save(target / "bm25")
        return name, {}


def _as_copies(found: Iterable[Sequence[str | None]]) -> tuple[Copy, ...]:
    """Copies as given, or as JSON gives them back (lists), as ``(source, outlet, url)`` tuples."""
    return tuple((str(source), outlet, url) for source, outlet, url in found)


def merge(segments: Sequence[Segment], dense_settings: DenseSettings) -> Segment:
    """One new segment with the live documents of ``segments``: vectors read back, lists rebuilt from the text."""
    documents: dict[str, Document] = {}
    passages: list[Passage] = []
    vectors: list[np.ndarray] = []
    for segment in segments:
        documents.update((d.id, d) for d in segment.live_documents())
        passages += segment.live_passages()
        mask = segment.live()
        rows = np.arange(segment.rows) if mask is None else np.flatnonzero(mask)
        if len(rows):
            vectors.append(segment.vectors.reconstruct_batch(rows))
    dimension = segments[0].vectors.d
    index = new_faiss_index(dimension, choose_kind(dense_settings, len(passages)), dense_settings)
    if passages:
        index.add(np.concatenate(vectors))
    return Segment(documents, passages, index, Postings.build([p.text for p in passages]))


def merge_plan(segments: Sequence[Segment], most: int) -> list[int]:
    """Which segments to merge at a save (positions): those mostly deleted, and the smallest
    ones while there are more than ``most``; none when there is nothing worth merging.

    Merging the smallest first keeps each passage's rewrites logarithmic in the index's size,
    as tiered merging does in Lucene.
    """
    doomed = {i for i, s in enumerate(segments) if s.rows and s.live_rows() < s.rows / 2}
    by_size = sorted((i for i in range(len(segments)) if i not in doomed), key=lambda i: segments[i].live_rows())
    excess = len(segments) - len(doomed) - most
    if excess > 0:
        doomed |= set(by_size[:excess + 1])  # the merged segment counts as one
    return sorted(doomed)
