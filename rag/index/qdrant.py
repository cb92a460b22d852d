"""A passage index served by Qdrant: the same searches, filters and hits as an index folder.

``qdrant://HOST:PORT/COLLECTION`` (``qdrants://`` for TLS; the key, if any, in
``QDRANT_API_KEY``) names a collection on a Qdrant server or cluster;
``qdrant:PATH/COLLECTION`` (``qdrant:///abs/path/COLLECTION``) names one in Qdrant's
embedded local mode, a folder on this machine that speaks the same client API.

Qdrant keeps, per passage point, the passage's dense vector, its BM25 document weights
as a sparse vector, and as payload the passage and the document fields that filters
read. Both searches and every filter run inside the engine:

- dense: inner product of normalised vectors, as ``rag.index.dense`` (HNSW on a server);
- BM25: the engine multiplies each query term's count by the passage's weight for it,
  ``tf / (tf + k1 (1 - b + b len / mean len))``, and by Lucene's idf, which Qdrant
  keeps up to date itself as passages come and go (``Modifier.IDF``). Terms are those
  of ``rag.index.bm25.tokenize``, so a collection indexed in one go scores exactly as an
  index folder does. The mean length is the collection's when a batch is added; passages
  added earlier keep the mean of their time, as in other engines that store BM25
  weights per document. Terms are stored as 32-bit hashes (``term_id``);
- filters: a ``Filters`` becomes a Qdrant filter on the payload (``allowed``).

Documents live in a second collection, ``COLLECTION-documents``. A document is written
after all its passages, so it becomes visible, and a re-run after a crash adds whatever
is missing: point ids are hashes of passage and document ids, and writes are upserts.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np

from rag import exports
from rag.dates import day_number
from rag.errors import (
    DocumentNotFoundError,
    IndexLockedError,
    IndexMismatchError,
    IndexNotFoundError,
    IndexWriteError,
    InvalidInputError,
)
from rag.index.bm25 import SETTINGS as BM25_SETTINGS
from rag.index.bm25 import term_weight, tokenize
from rag.protocols import Encoder, Index, Location, Ranking
from rag.settings import ChunkSettings, DenseSettings
from rag.types import Copy, Document, Filters, Hit, Passage

SCHEMES = ("qdrant:", "qdrants:")
FORMAT = 1
_BATCH = 256


def is_qdrant(location: object) -> bool:
    """Whether ``location`` names a Qdrant collection rather than an index folder."""
    return isinstance(location, str) and location.startswith(SCHEMES)


def point_id(key: str) -> int:
    """A stable 63-bit point id for a passage or document id."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "big") >> 1


def term_id(term: str) -> int:
    """A BM25 term's index in the sparse vectors: a 32-bit hash of the stemmed term."""
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest(), "big")


def _connect(location: str):
    """(client, collection, local) for a ``qdrant:`` location; local is True for the embedded local mode."""
    from qdrant_client import QdrantClient

    tls = location.startswith("qdrants:")
    rest = location.split(":", 1)[1]
    if rest.startswith("//") and not rest.startswith("///"):  # qdrant://host:port/collection
        server, _, collection = rest[2:].partition("/")
        if not server or not collection or "/" in collection:
            raise InvalidInputError(f"{location!r}: a server is named qdrant://HOST:PORT/COLLECTION")
        from qdrant_client.http.exceptions import ApiException

        client = QdrantClient(url=f"{'https' if tls else 'http'}://{server}", api_key=os.environ.get("QDRANT_API_KEY"),
                              check_compatibility=False)  # the call below says whether the server answers
        try:
            client.get_collections()  # the client connects lazily: fail here, with the server's name
        except ApiException as e:
            client.close()
            raise IndexNotFoundError(f"cannot reach the Qdrant server at {server}: {e}") from None
        return client, collection, False
    path, _, collection = (rest[2:] if rest.startswith("///") else rest).rpartition("/")  # embedded local mode
    if not path or not collection:
        raise InvalidInputError(f"{location!r}: a local collection is named qdrant:FOLDER/COLLECTION")
    try:
        return QdrantClient(path=path), collection, True
    except RuntimeError as e:  # the local mode lets one client at a time open its folder
        raise IndexLockedError(f"the Qdrant folder {path} is open in another client (Qdrant's local mode allows "
                               "one at a time; a Qdrant server allows many)") from e


class QdrantIndex:
    """Passages in a Qdrant collection, searched like a ``PassageIndex`` (see the module's notes).

    Open one with :meth:`open`, or make a new one with :meth:`create`. It keeps the contract
    of ``rag.protocols.Index``.

    Args:
        client: a ``QdrantClient``.
        collection: the passages' collection; documents are in ``<collection>-documents``.
        embedder: encodes questions (and new passages) into the collection's vector space.
        info: the collection's metadata: model, dimension, chunking, BM25 settings and totals.
    """

    concurrent_parts = False  # one client for both; its local mode scans in this process

    def __init__(self, client: Any, collection: str, embedder: Encoder, info: dict, location: str) -> None:
        self.client = client
        self.collection = collection
        self._location = location
        self.document_collection = f"{collection}-documents"
        self.embedder = embedder
        self.info = info
        self.chunking = ChunkSettings(**info["chunking"])
        self.dimension = int(info["dimension"])
        self.dense = _DenseSearch(self)
        self.sparse = _SparseSearch(self)
        self.documents = _Documents(self)
        self.passages = _Passages(self)

    @classmethod
    def open(cls, location: Location, embedder: Encoder | None = None, backend: str = "auto") -> QdrantIndex:
        """Connect to an existing collection.

        Raises:
            IndexNotFoundError: no such collection.
            IndexMismatchError: it was not written by ``rag index``, or with another embedding model.
        """
        location = str(location)
        client, collection, _ = _connect(location)
        if not client.collection_exists(collection):
            client.close()
            raise IndexNotFoundError(f"no collection {collection!r} at {location}; build it with "
                                     f"`rag index ARTICLES --store {location}`")
        info = client.get_collection(collection).config.metadata or {}
        if info.get("format") != FORMAT:
            client.close()
            raise IndexMismatchError(f"{location} was not written by `rag index` (format {info.get('format')!r})")
        model_name = info["embedding_model"]
        embedder = embedder if embedder is not None else exports.embedder(model_name, backend)
        if embedder.model_name != model_name:
            client.close()
            raise IndexMismatchError(f"{location} was built with {model_name!r}, not {embedder.model_name!r}")
        return cls(client, collection, embedder, info, location)

    @classmethod
    def create(cls, location: Location, embedder: Encoder, chunking: ChunkSettings | None = None,
               dense: DenseSettings | None = None) -> QdrantIndex:
        """Make a new, empty collection (and its documents collection).

        Raises:
            InvalidInputError: the collection exists already (add to it with :meth:`open`), or
                ``dense`` asks for FAISS settings, which a Qdrant collection does not have.
        """
        from qdrant_client import models

        if dense is not None and dense != DenseSettings():
            raise InvalidInputError("the dense index settings (--dense, --hnsw-m, --ef-construction, --ef-search) "
                                    "are a folder index's FAISS settings; a Qdrant collection keeps its own HNSW")
        location = str(location)
        chunking = chunking if chunking is not None else ChunkSettings()
        client, collection, local = _connect(location)
        if client.collection_exists(collection):
            client.close()
            raise InvalidInputError(f"collection {collection!r} exists at {location}; add to it with --update, "
                                    "or delete it first")
        info = {"format": FORMAT, "embedding_model": embedder.model_name, "dimension": embedder.dimension,
                "chunking": asdict(chunking), "bm25": BM25_SETTINGS, "bm25_rows": 0, "bm25_terms": 0}
        client.create_collection(
            collection,
            vectors_config={"dense": models.VectorParams(size=embedder.dimension, distance=models.Distance.DOT)},
            sparse_vectors_config={"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)},
            metadata=info)
        client.create_collection(f"{collection}-documents", vectors_config={})
        if not local:  # payload indexes: the local mode has none
            for field, schema in (("doc_id", models.PayloadSchemaType.KEYWORD),
                                  ("outlet", models.PayloadSchemaType.KEYWORD),
                                  ("authors", models.PayloadSchemaType.KEYWORD),
                                  ("day", models.PayloadSchemaType.INTEGER)):
                client.create_payload_index(collection, field, schema)
        return cls(client, collection, embedder, info, location)

    @classmethod
    def exists(cls, location: Location) -> bool:
        """Whether the collection at ``location`` exists."""
        client, collection, _ = _connect(str(location))
        try:
            return bool(client.collection_exists(collection))
        finally:
            client.close()

    @classmethod
    def writing(cls, location: Location, wait: bool = True) -> AbstractContextManager[object]:
        """Nothing to hold: the server orders concurrent writes itself, and each write is an upsert."""
        return nullcontext()

    @property
    def location(self) -> str:
        return self._location

    @property
    def dense_settings(self) -> None:
        """None: the collection keeps the engine's own HNSW settings."""
        return None

    def check_room(self, documents: Sequence[Document]) -> None:
        """Nothing to check here: the server reports a full disk when it is written to."""

    def save(self) -> None:
        """Nothing to do: every write reached the server when it returned (``wait=True``)."""

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> QdrantIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check_embedder(self) -> None:
        """Raise if the embedder's vectors do not fit the collection.

        Raises:
            IndexMismatchError: another dimension than the collection's.
        """
        if self.embedder.dimension != self.dimension:
            raise IndexMismatchError(f"embedder {self.embedder.model_name!r} gives {self.embedder.dimension}-d "
                                     f"vectors, the collection holds {self.dimension}-d vectors")

    def allowed(self, filters: Filters | None):
        """``filters`` as a Qdrant filter on the passages' payload; None when nothing is filtered."""
        from qdrant_client import models

        if not filters:
            return None
        must: list[models.Condition] = []
        if filters.since or filters.until:
            must.append(models.FieldCondition(key="day", range=models.Range(
                gte=filters.since.toordinal() if filters.since else None,
                lte=filters.until.toordinal() if filters.until else None)))
        for key, values in (("outlet", [s.casefold() for s in filters.sources]),
                            ("authors", [a.casefold() for a in filters.authors]),
                            ("doc_id", list(filters.doc_ids))):
            if values:
                must.append(models.FieldCondition(key=key, match=models.MatchAny(any=values)))
        return models.Filter(must=must)

    def hits(self, ranked: Sequence[tuple[int, float]],
             parts: Mapping[str, Mapping[int, float]] | None = None) -> list[Hit]:
        """(point id, score) pairs, best first, as search hits ranked 1, 2, … (see ``rag.protocols.Index.hits``)

        A passage whose document is not written yet (an add in progress) is left out.
        """
        if not ranked:
            return []
        points = {p.id: p.payload for p in self.client.retrieve(self.collection, [row for row, _ in ranked])}
        doc_ids = {points[row]["doc_id"] for row, _ in ranked if row in points}
        documents = {d.id: d for d in self.documents.many(doc_ids)}
        found: list[Hit] = []
        for row, score in ranked:
            payload = points.get(row)
            if payload is None or payload["doc_id"] not in documents:
                continue
            found.append(Hit.with_parts(_passage(payload), documents[payload["doc_id"]], score, len(found) + 1,
                                        row, parts))
        return found

    def passage_counts(self) -> dict[str, int]:
        """How many passages each document has, by id (one scroll over the passages' ids)."""
        return dict(Counter(p.payload["doc_id"] for p in _scroll(self.client, self.collection, fields=["doc_id"])))

    def known(self, doc_ids: Iterable[str]) -> set[str]:
        """Which of these document ids the collection holds, read in batches."""
        return {d.id for d in self.documents.many(doc_ids)}

    def record_copies(self, copies: Mapping[str, Sequence[Copy]]) -> None:
        """Add copies (near-duplicates found later) to stored documents' ``copies``, by the documents' ids.

        Raises:
            DocumentNotFoundError: an id is not in the collection.
        """
        originals = {d.id: d for d in self.documents.many(copies)}
        for doc_id, more in copies.items():
            if doc_id not in originals:
                raise DocumentNotFoundError(f"no document with id {doc_id!r} in {self.collection!r}")
            found = (*originals[doc_id].copies, *map(tuple, more))
            self.client.set_payload(self.document_collection, {"copies": [list(c) for c in found]},
                                    [point_id(doc_id)], wait=True)

    def add_embedded(self, documents: Sequence[Document], passages: Sequence[Passage], vectors: np.ndarray) -> int:
        """Write documents chunked and encoded already: their passages first, then the documents.

        Returns:
            How many passages were added.
        """
        from qdrant_client import models

        if vectors.shape != (len(passages), self.dimension):
            raise IndexMismatchError(f"vectors of shape {vectors.shape} for {len(passages)} passages "
                                     f"of a {self.dimension}-d collection")
        by_id = {d.id: d for d in documents}
        terms = tokenize([p.text for p in passages]) if passages else []
        rows = int(self.info["bm25_rows"]) + len(passages)
        total_terms = int(self.info["bm25_terms"]) + sum(map(len, terms))
        mean_length = total_terms / rows if rows else 1.0
        points = []
        for passage, vector, words in zip(passages, vectors, terms):
            document = by_id[passage.doc_id]
            counts = Counter(term_id(t) for t in words)
            weights = term_weight(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)),
                                  np.full(len(counts), len(words)), mean_length)
            payload = {"passage_id": passage.id, "doc_id": passage.doc_id, "text": passage.text,
                       "start": passage.start, "end": passage.end, "terms": len(words),
                       "authors": [a.casefold() for a in document.authors()]}
            if (day := day_number(document.date)) is not None:
                payload["day"] = day
            if document.outlet:
                payload["outlet"] = document.outlet.casefold()
            sparse = models.SparseVector(indices=list(counts), values=weights.tolist())
            points.append(models.PointStruct(id=point_id(passage.id), payload=payload,
                                             vector={"dense": vector.tolist(), "bm25": sparse}))
        try:
            for start in range(0, len(points), _BATCH):
                self.client.upsert(self.collection, points[start:start + _BATCH], wait=True)
            self.client.upsert(self.document_collection, [
                models.PointStruct(id=point_id(d.id), vector={}, payload=d.to_dict()) for d in documents], wait=True)
            self._update_totals(rows, total_terms)
        except Exception as e:  # the client raises its transport's errors; a re-run completes the write
            raise IndexWriteError(f"writing to Qdrant collection {self.collection!r} failed: {e}") from e
        return len(points)

    def remove(self, doc_ids: Sequence[str]) -> int:
        """Delete documents and their passages, by id; returns how many passages were removed.

        Raises:
            InvalidInputError: ``doc_ids`` is a lone string.
            DocumentNotFoundError: an id is not in the collection.
        """
        from qdrant_client import models

        if isinstance(doc_ids, str):
            raise InvalidInputError(f"remove takes a list of document ids, got the string {doc_ids!r}")
        present = {d.id for d in self.documents.many(doc_ids)}
        missing = [i for i in doc_ids if i not in present]
        if missing:
            raise DocumentNotFoundError(f"no document with id {missing[0]!r} in {self.collection!r}")
        chosen = models.Filter(must=[models.FieldCondition(key="doc_id", match=models.MatchAny(any=list(doc_ids)))])
        lengths = [p.payload["terms"] for p in _scroll(self.client, self.collection, chosen, ["terms"])]
        self.client.delete(self.document_collection, [point_id(i) for i in doc_ids], wait=True)
        self.client.delete(self.collection, models.FilterSelector(filter=chosen), wait=True)
        self._update_totals(int(self.info["bm25_rows"]) - len(lengths), int(self.info["bm25_terms"]) - sum(lengths))
        return len(lengths)

    def _update_totals(self, rows: int, terms: int) -> None:
        self.info = {**self.info, "bm25_rows": rows, "bm25_terms": terms}
        self.client.update_collection(self.collection, metadata=self.info)


def _passage(payload: dict) -> Passage:
    return Passage(id=payload["passage_id"], doc_id=payload["doc_id"], text=payload["text"],
                   start=payload["start"], end=payload["end"])


def _scroll(client: Any, collection: str, chosen: Any = None, fields: Sequence[str] | None = None) -> Iterator[Any]:
    """Every point of a collection (that passes ``chosen``), with its whole payload or only ``fields``."""
    offset = None
    while True:
        points, offset = client.scroll(collection, scroll_filter=chosen, limit=_BATCH, offset=offset,
                                       with_payload=True if fields is None else list(fields))
        yield from points
        if offset is None:
            return


def _ranking(points) -> Ranking:
    return (np.fromiter((p.id for p in points), dtype=np.int64, count=len(points)),
            np.fromiter((p.score for p in points), dtype=np.float32, count=len(points)))


class _DenseSearch:
    """Nearest passages by inner product, searched by the engine."""

    def __init__(self, index: QdrantIndex) -> None:
        self.index = index

    def search_batch(self, questions: Sequence[str], k: int, allowed=None) -> list[Ranking]:
        from qdrant_client import models

        vectors = self.index.embedder.encode(list(questions))
        requests = [models.QueryRequest(query=v.tolist(), using="dense", limit=k, filter=allowed) for v in vectors]
        return [_ranking(r.points) for r in self.index.client.query_batch_points(self.index.collection, requests)]


class _SparseSearch:
    """BM25, scored by the engine from the stored weights and its own idf (see the module's notes)."""

    def __init__(self, index: QdrantIndex) -> None:
        self.index = index

    def search_batch(self, questions: Sequence[str], k: int, allowed=None) -> list[Ranking]:
        from qdrant_client import models

        queries = [Counter(term_id(t) for t in terms) for terms in tokenize(questions)]
        requests = [models.QueryRequest(query=models.SparseVector(indices=list(q),
                                                                  values=[float(c) for c in q.values()]),
                                        using="bm25", limit=k, filter=allowed) for q in queries if q]
        responses = iter(self.index.client.query_batch_points(self.index.collection, requests) if requests else [])
        empty = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
        return [_ranking(next(responses).points) if q else empty for q in queries]


class _Documents(Mapping[str, Document]):
    """The collection's documents by id, read from the engine when asked for."""

    def __init__(self, index: QdrantIndex) -> None:
        self.index = index

    def many(self, doc_ids) -> list[Document]:
        ids = [point_id(i) for i in dict.fromkeys(doc_ids)]
        found = []
        for start in range(0, len(ids), _BATCH):
            found += [Document(**p.payload) for p in self.index.client.retrieve(self.index.document_collection,
                                                                              ids[start:start + _BATCH])]
        return found

    def __getitem__(self, doc_id: str) -> Document:
        found = self.many([doc_id])
        if not found:
            raise KeyError(doc_id)
        return found[0]

    def __len__(self) -> int:
        return self.index.client.count(self.index.document_collection, exact=True).count

    def __iter__(self) -> Iterator[str]:
        return (d.id for d in self.values())

    def values(self):
        return [Document(**p.payload) for p in _scroll(self.index.client, self.index.document_collection)]


class _Passages:
    """The collection's passages: sized and iterable, as ``PassageIndex.passages``."""

    def __init__(self, index: QdrantIndex) -> None:
        self.index = index

    def __len__(self) -> int:
        return self.index.client.count(self.index.collection, exact=True).count

    def __iter__(self) -> Iterator[Passage]:
        return (_passage(p.payload) for p in _scroll(self.index.client, self.index.collection))


if TYPE_CHECKING:  # mypy checks that this backend keeps the contract of rag.protocols.Index
    _contract: type[Index] = QdrantIndex
