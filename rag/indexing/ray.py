"""Reading, cleaning, chunking and embedding articles as a Ray Data pipeline (``pip install -e ".[cluster]"``).

``rag index ARTICLES --ray [ADDRESS]`` runs the reading and embedding of ``rag index`` on Ray,
with the methods of the local pipeline (``rag.indexing.local``): with no address
on a local Ray of ``--ray-workers`` processes, with one on a running cluster (``ray start
--head`` and ``ray start --address=…`` on each node; every node needs this package and the
embedding model installed, and must see the article files at the same paths). The driver
then writes the index through the same workflow as a local build (``rag.indexing.workflow``), so the result is
the same index: the same documents and passages in the same order, and vectors equal up to
floating-point rounding (passages are batched differently).

Two stages, each a Ray Data map:

1. read and clean: one task per block of files, :func:`rag.ingest.read_or_skip` on each;
   what cannot be read comes back as a skip message, as it does locally;
2. chunk and embed: one actor per worker, each holding the embedding model once, one
   CPU thread each.

Between them the driver folds copies and near-duplicates of a story into one document, as
``read_documents`` does. A file whose reading raises is read again (:data:`RETRIES` times,
Ray Data's ``retried_map_errors``), a task whose worker is lost is run again by Ray, and
an embedding actor that dies is restarted and its batch run again; a retried task's rows
replace the failed attempt's, and documents and passages are keyed by id, so a retry
never duplicates one.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from embeddings import Embedder
from rag.errors import EmptyCorpusError
from rag.indexing.local import LocalPipeline
from rag.ingest import iter_article_files, near_duplicates, read_or_skip
from rag.protocols import Encoder
from rag.settings import DEFAULT_MAX_FILE_BYTES, ChunkSettings
from rag.types import DOCUMENT_FIELDS, Document, Passage

logger = logging.getLogger(__name__)

RETRIES = 3
_DOCUMENTS_PER_BATCH = 16

FileReader = Callable[[Path, Callable[[str], None], "int | None"], list[Document]]


def _read_rows(row: dict, read: FileReader, max_file_bytes: int | None) -> list[dict]:
    """Stage 1: one file's documents as rows, or its skip messages.

    The worker reads the file by its absolute path; sources and messages name it as the
    user did, as a local run does.
    """
    def as_given(text: str) -> str:
        return row["given"] + text[len(row["path"]):] if text.startswith(row["path"]) else text

    skipped: list[str] = []
    documents = read(Path(row["path"]), skipped.append, max_file_bytes)
    rows = [{"order": row["order"], "n": n, "skip": None, **d.to_record(), "source": as_given(d.source)}
            for n, d in enumerate(documents)]
    return rows + [{"order": row["order"], "n": -1, "skip": as_given(message), **dict.fromkeys(DOCUMENT_FIELDS)}
                   for message in skipped]


class _ChunkAndEmbed:
    """Stage 2, one per worker: the embedding model, loaded once; a batch of documents in, their passages out."""

    def __init__(self, model: str, precision: str, chunking: ChunkSettings) -> None:
        import torch

        torch.set_num_threads(1)
        self.embedder = Embedder(model, precision=precision)
        self.chunking = chunking

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        documents = [Document.from_record({f: _plain(batch[f][i]) for f in DOCUMENT_FIELDS})
                     for i in range(len(batch["id"]))]
        order = dict(zip((d.id for d in documents), batch["order"].tolist()))
        passages, vectors = LocalPipeline(progress=False).chunk_and_embed(documents, self.embedder, self.chunking)
        return {"order": np.array([order[p.doc_id] for p in passages], dtype=np.int64),
                "n": np.array([int(p.id.rsplit("-", 1)[1]) for p in passages], dtype=np.int64),
                "id": np.array([p.id for p in passages], dtype=object),
                "doc_id": np.array([p.doc_id for p in passages], dtype=object),
                "text": np.array([p.text for p in passages], dtype=object),
                "start": np.array([p.start for p in passages], dtype=np.int64),
                "end": np.array([p.end for p in passages], dtype=np.int64),
                "vector": vectors.reshape(len(passages), self.embedder.dimension)}


def _plain(value):
    """A column value as Python: None for missing text fields, str otherwise."""
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


class RayPipeline:
    """Runs ``rag index``'s reading and embedding on Ray (see ``rag.protocols.Pipeline``); use as a context manager.

    Args:
        address: a running cluster's address (``ray://…`` or ``HOST:PORT``); None starts a
            local Ray of ``workers`` CPUs, shut down again on exit.
        workers: how many tasks and embedding actors run at once.
        progress: show Ray Data's progress bars.
    """

    def __init__(self, address: str | None = None, workers: int = 2, progress: bool = False) -> None:
        import ray

        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        self._started = not ray.is_initialized()
        if self._started:
            ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False,
                     logging_level=logging.WARNING, log_to_driver=False)
        import ray.data

        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = progress
        context.print_on_execution_start = False
        context.retried_map_errors = True  # a reading task that raises is run again, RETRIES times at most
        context.max_map_retries = RETRIES

    def __enter__(self) -> RayPipeline:
        return self

    def __exit__(self, *exc) -> None:
        import ray

        if self._started:
            ray.shutdown()

    def read(self, paths: Sequence[str | Path], on_skip: Callable[[str], None],
             max_file_bytes: int | None = DEFAULT_MAX_FILE_BYTES, read: FileReader = read_or_skip) -> list[Document]:
        """As ``LocalPipeline.read`` (``rag.ingest.read_documents``), each file read by a Ray task.

        Args:
            paths: files and folders, as every worker sees them.
            on_skip: called once for each file, or .jsonl line, that is skipped.
            max_file_bytes: refuse larger files before reading them; None for no limit.
            read: reads one file (``read_or_skip``'s signature); a test passes one that fails.

        Raises:
            IngestError: a path does not exist.
            EmptyCorpusError: no readable article was found.
        """
        import ray.data

        files = iter_article_files(paths)
        items = [{"order": i, "path": str(f.resolve()), "given": str(f)} for i, f in enumerate(files)]
        rows = []
        if items:
            dataset = ray.data.from_items(items, override_num_blocks=min(len(items), 4 * self.workers))
            rows = dataset.flat_map(functools.partial(_read_rows, read=read, max_file_bytes=max_file_bytes)).take_all()
        documents: list[Document] = []
        for row in sorted(rows, key=lambda r: (r["order"], r["n"])):
            if row["skip"] is not None:
                on_skip(row["skip"])
            else:
                documents.append(Document.from_record({f: row[f] for f in DOCUMENT_FIELDS}))
        if not documents:
            raise EmptyCorpusError(f"no readable article under {', '.join(map(str, paths))}")
        return near_duplicates.merge(documents)

    def chunk_and_embed(self, documents: Sequence[Document], embedder: Encoder,
                        chunking: ChunkSettings) -> tuple[list[Passage], np.ndarray]:
        """As ``LocalPipeline.chunk_and_embed``, on the workers: passages in document order, and their vectors.

        Each worker loads ``embedder``'s model (by name) with its precision.
        """
        import ray.data

        if not documents:
            return [], np.zeros((0, embedder.dimension), dtype=np.float32)
        items = [{"order": i, **d.to_record()} for i, d in enumerate(documents)]
        dataset = ray.data.from_items(items, override_num_blocks=min(len(items), 4 * self.workers))
        rows = dataset.map_batches(_ChunkAndEmbed, fn_constructor_args=(embedder.model_name, embedder.precision,
                                                                        chunking),
                                   batch_size=_DOCUMENTS_PER_BATCH, batch_format="numpy", num_cpus=1,
                                   compute=ray.data.ActorPoolStrategy(min_size=1, max_size=self.workers)).take_all()
        rows.sort(key=lambda r: (r["order"], r["n"]))
        passages = [Passage(id=r["id"], doc_id=r["doc_id"], text=r["text"], start=int(r["start"]), end=int(r["end"]))
                    for r in rows]
        vectors = np.stack([r["vector"] for r in rows]).astype(np.float32) if rows else \
            np.zeros((0, embedder.dimension), dtype=np.float32)
        return passages, vectors
