"""A served library: an index (a folder, or a collection on a server), and the assistant over its newest snapshot.

The chat and the JSON API share one :class:`Library`. Articles added through it go to
disk through the same writer lock and crash-safe save as ``rag index --update``, so
they are there after a restart. While an upload is embedded, questions keep being
answered from the snapshot they started with; the new snapshot replaces it in one
assignment when it is saved. Model work (a batch of questions, or a slice of an
upload's passages) takes :attr:`Library.compute` in turn, so it never runs two
multi-threaded forward passes against each other on the same cores, and an upload
delays a question by one slice at most.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from rag.answer.assistant import Assistant
from rag.errors import ReadOnlyError
from rag.index.folder import PassageIndex
from rag.index.open import as_location, open_index
from rag.indexing.workflow import index_documents, remove_documents
from rag.ingest import near_duplicates, read_or_skip
from rag.protocols import Encoder, Index, Location
from rag.read import runtime
from rag.read.reader import Reader
from rag.search.retriever import Retriever
from rag.serve.batching import MicroBatcher
from rag.settings import DEFAULT_K, DEFAULT_MODE, Mode
from rag.types import Document, Filters, Hit, Response

UPLOAD_MAX_BYTES = 5_000_000  # per file, for the chat and the API
_SLICE = 32  # passages embedded per turn of the compute lock


def default_library_dir() -> Path:
    """Where ``rag serve`` keeps its library without ``--index``: ``$RAG_DATA_DIR``, else the user's data folder."""
    if os.environ.get("RAG_DATA_DIR"):
        return Path(os.environ["RAG_DATA_DIR"]) / "library"
    from platformdirs import user_data_dir

    return Path(user_data_dir("rag-news-qa")) / "library"


class _TakingTurns:
    """An embedder that encodes in slices, each under the library's compute lock."""

    def __init__(self, embedder: Encoder, lock: threading.RLock) -> None:
        self._embedder = embedder
        self._lock = lock
        self.model_name = embedder.model_name
        self.precision = embedder.precision

    @property
    def dimension(self) -> int:
        return self._embedder.dimension

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self._embedder.count_tokens(texts)

    def encode(self, texts: Sequence[str], progress: bool | None = None, passages: bool = False) -> np.ndarray:
        parts = []
        for lo in range(0, max(1, len(texts)), _SLICE):
            if lo:  # Python's locks are not fair: pause outside it, so a waiting question gets its turn
                time.sleep(0.001)
            with self._lock:
                parts.append(self._embedder.encode(texts[lo:lo + _SLICE], progress=False, passages=passages))
        return np.concatenate(parts)


@dataclass(frozen=True)
class AddReport:
    """What an upload did: articles added, articles already there, and what was skipped (one line each)."""

    added: tuple[Document, ...]
    already: tuple[Document, ...]
    skipped: tuple[str, ...]
    passages: int


class Library:
    """An index served to many users at once: a folder, or any backend ``rag.index.open`` names.

    Args:
        location: the index (an index already): a folder, or a collection's URI.
        reader: the reader, a model path or name; the shipped reader by default.
        read_only: refuse uploads and removals.
        k: passages read per question.
        backend: how the models run when ``reader`` is not a Reader (see ``rag.read.runtime``):
            "auto" embeds questions with ONNX Runtime where the export exists and reads with
            PyTorch, in bf16 where the CPU has it natively (there the fastest reader that keeps
            fp32's answers; ``python -m eval.latency``); "torch", "onnx" or "int8" as for ``rag ask``.
    """

    def __init__(self, location: Location, reader: Reader | str | Path | None = None, read_only: bool = False,
                 k: int = DEFAULT_K, backend: str = "auto") -> None:
        self.location = as_location(location) if isinstance(location, str) else location
        self.read_only = read_only
        self.compute = threading.RLock()
        if not isinstance(reader, Reader):
            reader = Reader(reader) if backend == "auto" else runtime.reader(reader, backend)
        index = open_index(self.location, backend=backend)
        self._embedder = _TakingTurns(index.embedder, self.compute)
        index.embedder = self._embedder
        self.assistant = Assistant(Retriever(index, mode=DEFAULT_MODE), reader, k=k)
        self.version = 0  # counts the snapshots swapped in, so a view can tell it is current without a listing
        self._questions: MicroBatcher[tuple[str, int, Mode, Filters | None], Response] = MicroBatcher(
            lambda items: self.ask(*zip(*items)))

    @classmethod
    def open(cls, location: Location | None = None, **settings: Any) -> Library:
        """The library at ``location``; without one, the user's own folder, first filled with the bundled articles."""
        if location is None:
            location = default_library_dir()
            if not PassageIndex.exists(location):
                from rag.indexing.bundled import default_index

                default_index().save(location)
        return cls(location, **settings)

    @property
    def index(self) -> Index:
        """The snapshot questions are answered from now."""
        return self.assistant.retriever.index

    def documents(self) -> list[dict]:
        """The indexed articles, newest snapshot: each described as a citation describes it, with its
        number of passages."""
        index = self.index
        counts = index.passage_counts()
        return [{**d.describe(), "passage_count": counts.get(d.id, 0)} for d in index.documents.values()]

    def retrieve(self, questions: Sequence[str], ks: Sequence[int], modes: Sequence[Mode],
                 assistant: Assistant | None = None,
                 filters: Sequence[Filters | None] | None = None) -> list[list[Hit]]:
        """Passages for questions that may each ask their own k, mode and filters, under the compute lock."""
        with self.compute:
            return self._retrieve(questions, ks, modes, assistant or self.assistant, filters)

    def _retrieve(self, questions: Sequence[str], ks: Sequence[int], modes: Sequence[Mode], assistant: Assistant,
                  filters: Sequence[Filters | None] | None = None) -> list[list[Hit]]:
        """Passages for questions that may each ask their own k, mode and filters: one batch per setting.

        Args:
            questions: the questions.
            ks: passages to retrieve, per question.
            modes: retrieval mode, per question.
            assistant: the snapshot to use.
            filters: per question, the documents it may draw on (None: all).
        """
        settings = list(zip(ks, modes, filters if filters is not None else [None] * len(questions)))
        found: list[list[Hit]] = [[] for _ in questions]
        for k, mode, limits in dict.fromkeys(settings):
            positions = [i for i, setting in enumerate(settings) if setting == (k, mode, limits)]
            for i, hits in zip(positions, assistant.retrieve_batch([questions[i] for i in positions], k, mode, limits)):
                found[i] = hits
        return found

    def ask(self, questions: Sequence[str], ks: Sequence[int], modes: Sequence[Mode],
            filters: Sequence[Filters | None] | None = None) -> list[Response]:
        """Answer questions that may each ask their own k, mode and filters, all from one snapshot."""
        assistant = self.assistant
        started = time.perf_counter()
        with self.compute:
            hits = self._retrieve(questions, ks, modes, assistant, filters)
            return self._answer(questions, hits, time.perf_counter() - started, assistant)

    def ask_one(self, question: str, k: int, mode: Mode, filters: Filters | None = None) -> Response:
        """Answer one question in a batch with whatever other questions (API requests, chats) are waiting."""
        return self._questions.submit((question, k, mode, filters))

    def answer(self, questions: Sequence[str], hits: Sequence[Sequence[Hit]], retrieve_seconds: float = 0.0,
               assistant: Assistant | None = None) -> list[Response]:
        """Read each question's passages and answer it, as one batch."""
        with self.compute:
            return self._answer(questions, hits, retrieve_seconds, assistant or self.assistant)

    def _answer(self, questions: Sequence[str], hits: Sequence[Sequence[Hit]], retrieve_seconds: float,
                assistant: Assistant) -> list[Response]:
        """Read and answer, the compute lock held.

        A batch of several questions read by PyTorch is split in two halves, read at once on
        one thread each: two single-threaded forward passes side by side use two cores better
        than one two-threaded pass (``python -m eval.load`` measures it). A lone question
        keeps every thread.
        """
        if len(questions) < 2 or not assistant.reader.runs_on_torch or (os.cpu_count() or 1) < 2:
            return assistant.answer_batch(questions, hits, retrieve_seconds)
        assistant.reader.load()  # here, once: two threads must not import and load the model at once
        import torch

        def one_thread(part: slice) -> list[Response]:
            torch.set_num_threads(1)  # OpenMP keeps this per thread: it is set in the worker
            return assistant.answer_batch(questions[part], hits[part], retrieve_seconds)

        threads = torch.get_num_threads()
        half = (len(questions) + 1) // 2
        try:
            with ThreadPoolExecutor(2) as pool:
                first, second = pool.map(one_thread, (slice(0, half), slice(half, None)))
        finally:
            torch.set_num_threads(threads)
        return first + second

    def add_files(self, paths: Sequence[Path], names: Sequence[str] | None = None,
                  max_file_bytes: int = UPLOAD_MAX_BYTES) -> AddReport:
        """Read uploaded files and add their articles to the index on disk and to the live snapshot.

        Args:
            paths: the files as stored by the server.
            names: the names their owner gave them (what a source card shows); ``paths``' names by default.
            max_file_bytes: a larger file is skipped, and said so.

        Raises:
            ReadOnlyError: the library is served read-only.
        """
        self.check_writable()
        names = list(names) if names is not None else [Path(p).name for p in paths]
        skipped: list[str] = []
        docs: list[Document] = []
        for path, name in zip(map(Path, paths), names):
            def skip(message: str, path: Path = path, name: str = name) -> None:
                skipped.append(message.replace(str(path), name))

            docs += [replace(d, source=d.source.replace(str(path), name))
                     for d in read_or_skip(path, skip, max_file_bytes)]
        if not docs:
            return AddReport((), (), tuple(skipped), 0)
        # The disk may be newer than our snapshot: the workflow opens the index there, under its writer lock.
        report = index_documents(self.location, near_duplicates.merge(docs), update=True, embedder=self._embedder,
                                 export=False, on_saved=self._swap)
        added = report.added
        return AddReport(added.new, added.copies + added.already, tuple(skipped), added.passages)

    def remove(self, doc_id: str) -> int:
        """Remove one article from the index on disk and from the live snapshot; returns its passage count.

        Raises:
            ReadOnlyError: the library is served read-only.
            DocumentNotFoundError: no article with that id.
        """
        self.check_writable()
        return remove_documents(self.location, [doc_id], embedder=self._embedder, on_saved=self._swap).passages_removed

    def check_writable(self) -> None:
        """Raise ``ReadOnlyError`` if the library is served read-only."""
        if self.read_only:
            raise ReadOnlyError("this library is served read-only: uploads and removals are off")

    def _swap(self, index: Index) -> None:
        old = self.assistant
        self.assistant = Assistant(Retriever(index, mode=old.retriever.mode), old.reader, k=old.k,
                                   spans_per_question=old.spans_per_question, verifier=old.verifier,
                                   abstain=old.abstain)
        self.version += 1
