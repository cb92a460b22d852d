"""The one indexing workflow: articles in, an index out, and a report of what was done.

Every way of filling an index goes through here: ``rag index`` (locally or on Ray), the
server's uploads (``rag.serve.library``), the bundled sample corpus (``rag.indexing.bundled``)
and the in-memory indexes of tests and benchmarks. The steps, on any backend
(``rag.protocols.Index``):

1. read the articles, each story once (``Pipeline.read``: ``rag.ingest`` here, or on Ray);
2. leave out documents the index holds already (by id, a hash of the text);
3. the copy check: a near-duplicate of an indexed article (another outlet's copy of a wire
   story) is recorded as a copy of it, not indexed again (``rag.indexing.copies``);
4. chunk and embed the rest (``Pipeline.chunk_and_embed``), and add them;
5. save, crash-safe, under the index's writer lock; then export the models to ONNX once,
   so that later questions skip torch (``rag.exports``, ``rag.read.runtime``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from embeddings import DEFAULT_MODEL, Embedder
from rag import exports
from rag.errors import InvalidInputError
from rag.index.folder import PassageIndex
from rag.index.open import backend_of
from rag.indexing.copies import copies_in
from rag.indexing.local import LocalPipeline
from rag.protocols import Encoder, Index, Location, Pipeline
from rag.read import runtime
from rag.settings import DEFAULT_MAX_FILE_BYTES, ChunkSettings, DenseSettings
from rag.types import Copy, Document

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Added:
    """What adding documents to an index did.

    Attributes:
        new: documents indexed now.
        copies: near-duplicates of indexed articles, recorded as their copies.
        already: documents the index held already (the same text).
        passages: passages added.
    """

    new: tuple[Document, ...] = ()
    copies: tuple[Document, ...] = ()
    already: tuple[Document, ...] = ()
    passages: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.new or self.copies)


@dataclass(frozen=True)
class IndexReport:
    """What :func:`index_articles` or :func:`index_documents` did.

    Attributes:
        location: where the index is kept (without a password, for a server).
        added: what was added (see :class:`Added`).
        documents: documents in the index now.
        passages: passages in the index now.
        merged: copies of a story among the articles read, folded into one document each.
        skipped: one line ("where: why") for each file or part of one that could not be read.
        seconds: how long it took.
    """

    location: str
    added: Added
    documents: int
    passages: int
    merged: int = 0
    skipped: tuple[str, ...] = field(default=())
    seconds: float = 0.0


@dataclass(frozen=True)
class RemoveReport:
    """What :func:`remove_documents` did: passages removed, and what is left."""

    location: str
    documents_removed: int
    passages_removed: int
    documents: int
    passages: int


def add_documents(index: Index, documents: Sequence[Document], pipeline: Pipeline | None = None) -> Added:
    """Add to an open index the documents it lacks (steps 2-4 of the module's notes); nothing is saved.

    Args:
        index: any index.
        documents: cleaned documents (``rag.ingest.read_documents``).
        pipeline: where to chunk and embed; this process by default.
    """
    unique = list({d.id: d for d in documents}.values())
    held = index.known(d.id for d in unique)
    fresh = [d for d in unique if d.id not in held]
    originals = copies_in(index, fresh)
    if originals:
        copies: dict[str, list[Copy]] = {}
        for doc in fresh:
            if doc.id in originals:
                copies.setdefault(originals[doc.id], []).append((doc.source, doc.outlet, doc.url))
        index.record_copies(copies)
    new = [d for d in fresh if d.id not in originals]
    passages = 0
    if new:
        index.check_embedder()
        index.check_room(new)
        pipeline = pipeline if pipeline is not None else LocalPipeline()
        passages = index.add_embedded(new, *pipeline.chunk_and_embed(new, index.embedder, index.chunking))
    return Added(tuple(new), tuple(d for d in fresh if d.id in originals),
                 tuple(d for d in unique if d.id in held), passages)


def build_index(documents: Sequence[Document], embedder: Encoder | None = None, chunking: ChunkSettings | None = None,
                dense: DenseSettings | None = None, pipeline: Pipeline | None = None) -> PassageIndex:
    """A folder index of ``documents`` in memory (save it with ``save(path)``).

    Args:
        documents: cleaned documents (``rag.ingest.read_documents``).
        embedder: the encoder; the bundled all-MiniLM-L6-v2 by default.
        chunking: passage settings; the defaults of ``ChunkSettings`` otherwise.
        dense: the FAISS index kind and its parameters (by default chosen by size).
        pipeline: where to chunk and embed; this process by default.
    """
    index = PassageIndex.create(None, embedder if embedder is not None else Embedder(), chunking, dense)
    add_documents(index, documents, pipeline)
    return index


def _open_for_update(cls: type[Index], target: Location, embedder: Encoder | None, model: str | None,
                     chunking: ChunkSettings | None, dense: DenseSettings | None) -> Index:
    """The index at ``target``, checked to have the settings asked for (an update keeps the index's own)."""
    if embedder is None and model is not None:
        embedder = Embedder(model)
    index = cls.open(target, embedder)
    kept = [("chunking", chunking, index.chunking), ("dense index settings", dense, index.dense_settings)]
    for what, asked, value in kept:
        if asked is not None and asked != value:
            index.close()
            raise InvalidInputError(f"the index at {target} was built with {what} {value}; an update keeps them "
                                    "(rebuild into a new folder or collection, without updating, to change them)")
    return index


def index_documents(target: Location, documents: Sequence[Document], *, update: bool = False,
                    embedder: Encoder | None = None, model: str | None = None, chunking: ChunkSettings | None = None,
                    dense: DenseSettings | None = None, pipeline: Pipeline | None = None, wait: bool = True,
                    export: bool = True, on_saved: Callable[[Index], None] | None = None) -> IndexReport:
    """Index documents into the index at ``target``: a new one, or with ``update`` the one there.

    Args:
        target: a folder, or a collection's URI (``rag.index.open``).
        documents: cleaned documents (``rag.ingest.read_documents``).
        update: add to the index at ``target`` (a new one is built when there is none); without
            it a new index replaces whatever index is there.
        embedder: the encoder; by default the index's own model for an update, else ``model``.
        model: the embedding model, by name or folder, when no ``embedder`` is given; the bundled
            all-MiniLM-L6-v2 by default.
        chunking: passage settings of a new index (an update keeps the index's own; asking for
            others is an error).
        dense: FAISS settings of a new folder index (likewise).
        pipeline: where to chunk and embed; this process by default.
        wait: wait for another writer of the same folder to finish; if False, fail at once.
        export: export the models to ONNX afterwards, where not done yet.
        on_saved: called with the index once it is saved, the writer lock still held (the
            server swaps in the new snapshot there); the index is then the callback's to close.

    Raises:
        RagError: the target holds something else, is locked (``wait=False``), full, or of
            other settings; the embedding model cannot be loaded. Nothing there is changed.
    """
    started = time.perf_counter()
    cls = backend_of(target)
    with cls.writing(target, wait=wait):
        if update and cls.exists(target):
            index = _open_for_update(cls, target, embedder, model, chunking, dense)
        else:
            if update:
                logger.warning("no index at %s yet: building a new one", target)
            encoder = embedder if embedder is not None else Embedder(model or DEFAULT_MODEL)
            index = cls.create(target, encoder, chunking if chunking is not None else ChunkSettings(), dense)
        handed_over = False
        try:
            added = add_documents(index, documents, pipeline)
            if added.changed or not update:
                index.save()
            report = IndexReport(index.location or str(target), added, len(index.documents), len(index.passages),
                                 seconds=time.perf_counter() - started)
            used = index.embedder
            if on_saved is not None:
                on_saved(index)
                handed_over = True
        finally:
            if not handed_over:
                index.close()
    if export and isinstance(used, Embedder):
        export_models(used)
    return report


def index_articles(target: Location, paths: Sequence[str | Path], *, pipeline: Pipeline | None = None,
                   max_file_bytes: int | None = DEFAULT_MAX_FILE_BYTES, on_skip: Callable[[str], None] | None = None,
                   **options) -> IndexReport:
    """Read the articles under ``paths`` and index them into ``target``: ``rag index``.

    Args:
        target: a folder, or a collection's URI (``rag.index.open``).
        paths: article files and folders (the kinds of ``rag.settings.FORMATS``).
        pipeline: where to read, chunk and embed: this process by default, or a ``RayPipeline``.
        max_file_bytes: refuse larger article files before reading them; None for no limit.
        on_skip: called with each line of what is skipped, as it is skipped.
        **options: as :func:`index_documents` (``update``, ``model``, ``chunking``, ``dense``, ``wait``…).

    Raises:
        IngestError: a path does not exist.
        EmptyCorpusError: no readable article was found.
        RagError: as :func:`index_documents`.
    """
    started = time.perf_counter()
    skipped: list[str] = []

    def skip(message: str) -> None:
        skipped.append(message)
        if on_skip is not None:
            on_skip(message)

    pipeline = pipeline if pipeline is not None else LocalPipeline()
    # The writer's right first: a folder of someone's files, or one that cannot be written, fails before any work.
    with backend_of(target).writing(target, wait=options.get("wait", True)):
        documents = pipeline.read(list(paths), skip, max_file_bytes)
        report = index_documents(target, documents, pipeline=pipeline, **options)
    merged = sum(len(d.copies) for d in documents)
    return IndexReport(report.location, report.added, report.documents, report.passages, merged, tuple(skipped),
                       time.perf_counter() - started)


def remove_documents(target: Location, doc_ids: Sequence[str], *, embedder: Encoder | None = None,
                     wait: bool = True, on_saved: Callable[[Index], None] | None = None) -> RemoveReport:
    """Remove documents, by id, from the index at ``target``, and save it: ``rag remove``.

    Args:
        target: a folder, or a collection's URI.
        doc_ids: the documents' ids (``rag search --json`` shows them).
        embedder: the index's encoder, if one is loaded already.
        wait: wait for another writer of the same folder to finish; if False, fail at once.
        on_saved: called with the index once it is saved, the writer lock still held; the index is
            then the callback's to close.

    Raises:
        IndexNotFoundError: no index at ``target``.
        DocumentNotFoundError: an id is not in the index; nothing is removed.
        InvalidInputError: ``doc_ids`` is a lone string.
    """
    if isinstance(doc_ids, str):
        raise InvalidInputError(f"remove takes a list of document ids, got the string {doc_ids!r}")
    cls = backend_of(target)
    if not cls.exists(target):
        cls.open(target, embedder).close()  # says what is there instead, before any lock is taken
    with cls.writing(target, wait=wait):
        index = cls.open(target, embedder)
        handed_over = False
        try:
            removed = index.remove(doc_ids)
            index.save()
            report = RemoveReport(index.location or str(target), len(set(doc_ids)), removed, len(index.documents),
                                  len(index.passages))
            if on_saved is not None:
                on_saved(index)
                handed_over = True
        finally:
            if not handed_over:
                index.close()
    return report


def export_models(embedder: Embedder, reader_model: str | Path | None = None) -> None:
    """Export the embedder and the reader to ONNX (and the reader's int8 copy) where not done yet.

    Made once per model, after an index is built, so that later questions skip torch.
    """
    exports.export_embedder(embedder)
    runtime.export_reader(reader_model)
