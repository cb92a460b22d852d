"""A passage index in PostgreSQL: pgvector for the dense search, BM25's inverted lists in a table, every filter in SQL.

``postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE?table=NAME`` (``postgres://`` too) names
the index ``NAME`` in a database; libpq's ``PG*`` variables (``PGPASSWORD``, ``PGHOST``, ...)
fill what the URL leaves out, and other query parameters (``sslmode=require``, say) go to
libpq as they are. Messages name the location without its password.

The index is six tables named after it, made by ``rag index --store``:

    NAME_meta       format, embedding model, dimension, chunking, FAISS-equivalent dense settings
    NAME_documents  each document as a record, and the copies found later
    NAME_passages   row, passage, its length in BM25 terms, and the fields filters read (day,
                    outlet, authors), copied from its document
    NAME_vectors    each passage's pgvector embedding, by row, in a table of its own: an exact
                    search scans the vectors alone (a fifth fewer pages than beside the texts)
    NAME_lists      BM25's inverted lists, packed: for each term and block of ``BLOCK`` rows, one
                    row holding every (passage length, row in the block, count) of the term there
    NAME_stats      the passage and term totals

Searches and filters run in the database and score as the folder index does
(``rag.index.folder``), so hits, ranks and scores are the folder's (within float rounding):

- dense: inner product of unit vectors (pgvector's ``<#>``), exact by a scan below
  ``HNSW_FROM`` passages as the folder's flat index; from there an HNSW index
  (``vector_ip_ops``, the same ``m`` and ``ef_construction``; pgvector caps ``ef_search`` at
  1,000), searched with iterative scans so a filtered question still gets k passages;
- BM25: Lucene's idf and ``rag.index.bm25``'s terms and weights, computed at query time from
  the question's lists and the whole index's statistics. The database sends the few packed
  rows of the question's terms and the scores are summed here, as the folder index sums its
  segments' lists: in SQL, a row per posting, scanning and grouping 24,000 postings took 12x
  the folder's time at 100,000 passages. A filtered search then keeps, in SQL, the best
  passages the filter allows. One difference: the folder index counts a removed document's
  passages in the statistics until its segment is merged, this index never does, so BM25
  scores after a removal differ slightly (under 1 %);
- filters: a WHERE clause on the passage's own copies of its document's day, outlet and authors;
- a hybrid search runs BM25 on a connection of its own while the dense search runs on the
  index's (:meth:`PostgresIndex.search_connection`), so the server works on both at once.

Writes are one transaction: what an indexing run adds, records and removes becomes visible at
:meth:`PostgresIndex.save`, all of it, or, if the writer dies first, none of it. A writer holds
a session advisory lock on the index (:meth:`PostgresIndex.writing`), so two writers take turns
and lose nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

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
    MissingDependencyError,
)
from rag.index.bm25 import SETTINGS as BM25_SETTINGS
from rag.index.bm25 import term_weight, tokenize
from rag.index.dense import choose_kind
from rag.protocols import Encoder, Index, Location, Ranking
from rag.settings import ChunkSettings, DenseSettings
from rag.types import Copy, Document, Filters, Hit, Passage

logger = logging.getLogger(__name__)

SCHEMES = ("postgresql:", "postgres:")
_HELD: dict[tuple[int, str, str], int] = {}  # the writer locks this process holds: (thread, server, table) -> depth
FORMAT = 3  # 2: the vectors moved from the passages to a table of their own; 3: BM25's lists packed by block
BLOCK = 4096  # passage rows per packed list: a term's list is read in at most (rows / BLOCK) + 1 pieces
# Each posting in a packed list, 8 bytes: the passage's length in terms, its row less its block's first
# (under BLOCK, at most 65,536), the term's count there.
POSTING = np.dtype([("length", "<u4"), ("offset", "<u2"), ("tf", "<u2")])
MAX_TF = np.iinfo(np.uint16).max
MAX_EF_SEARCH = 1000  # pgvector's limit on hnsw.ef_search
# A save that added this many passages vacuums the tables, as autovacuum would soon: a bulk load rewrites
# the lists of its last blocks many times over.
VACUUM_FROM = 1000
FILTER_CHUNK = 2000  # a filtered BM25 search asks the database which of its best passages pass, this many at once
_NAME = "abcdefghijklmnopqrstuvwxyz0123456789_"


class Target:
    """A parsed ``postgresql://`` location: what libpq connects to, the index's table name, and a safe name.

    Raises:
        InvalidInputError: no ``table=`` or a table name that is not a plain lower-case identifier.
    """

    def __init__(self, location: Location) -> None:
        text = str(location)
        parts = urlsplit(text)
        query = dict(parse_qsl(parts.query))
        table = query.pop("table", "")
        if not table or table[0].isdigit() or any(c not in _NAME for c in table) or len(table) > 40:
            raise InvalidInputError(f"{self._safe(parts)}: name the index as ?table=NAME (lower-case letters, "
                                    "digits and _, up to 40)")
        self.table = table
        self.conninfo = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))
        self.shown = self._safe(parts)
        self.where = f"{parts.hostname or 'the local socket'}{f':{parts.port}' if parts.port else ''}"

    @staticmethod
    def _safe(parts: Any) -> str:
        """The location as it may be shown: no password."""
        netloc = parts.netloc.rsplit("@", 1)
        user = netloc[0].split(":", 1)[0] + "@" if len(netloc) == 2 else ""
        return urlunsplit((parts.scheme, user + netloc[-1], parts.path, parts.query, ""))

    def name(self, part: str) -> str:
        return f"{self.table}_{part}"

    @property
    def lock_key(self) -> int:
        return int.from_bytes(hashlib.blake2b(f"rag:{self.table}".encode(), digest_size=8).digest(), "big", signed=True)


def is_postgres(location: object) -> bool:
    """Whether ``location`` names a PostgreSQL index."""
    return isinstance(location, str) and location.startswith(SCHEMES)


def _connect(target: Target) -> Any:
    """An autocommit connection with pgvector's types, or one clear error."""
    try:
        import psycopg
        from pgvector.psycopg import register_vector
    except ImportError as e:
        raise MissingDependencyError(f"a PostgreSQL index needs psycopg and pgvector: "
                                     f"pip install \"rag-news-qa[cluster]\" ({e})") from None
    try:
        connection = psycopg.connect(target.conninfo, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as e:
        reason = (str(e).strip().splitlines() or ["no reason given"])[-1].strip()
        if "password" in reason or "authentication" in reason:
            raise IndexNotFoundError(f"the PostgreSQL server at {target.where} refused the login of "
                                     f"{target.shown}: {reason}") from None
        raise IndexNotFoundError(f"cannot reach the PostgreSQL server at {target.where}: {reason}") from None
    # Searches are short queries run often: compiling them (PostgreSQL's JIT) costs more than it saves.
    connection.execute("SET jit = off")
    try:
        register_vector(connection)
    except psycopg.ProgrammingError:  # the type is not there: the extension is not installed in this database
        pass
    return connection


def _has_vector(connection: Any) -> bool:
    return connection.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone() is not None


class PostgresIndex:
    """Passages in PostgreSQL tables, searched like a ``PassageIndex`` (see the module's notes).

    Open one with :meth:`open`, or make a new one with :meth:`create`. It keeps the contract
    of ``rag.protocols.Index``.

    Args:
        connection: a psycopg connection (autocommit; writes open their own transaction).
        target: the parsed location.
        embedder: encodes questions (and new passages) into the index's vector space.
        meta: the index's settings, as ``NAME_meta`` holds them.
    """

    def __init__(self, connection: Any, target: Target, embedder: Encoder, meta: dict) -> None:
        self.connection = connection
        self.target = target
        self.embedder = embedder
        self.meta = meta
        self.chunking = ChunkSettings(**meta["chunking"])
        self.dense_settings = DenseSettings(**meta["dense"])
        self.dimension = int(meta["dimension"])
        self.dense = _DenseSearch(self)
        self.sparse = _SparseSearch(self)
        self.documents = _Documents(self)
        self.passages = _Passages(self)
        self._in_transaction = False
        self._added = 0  # passages added since the last save
        self._searcher: Any = None  # the sparse search's own connection, opened when first needed
        self._searcher_lock = threading.Lock()

    def t(self, part: str) -> str:
        """A table's name (its identifier, safe to put in SQL: the table name is checked)."""
        return self.target.name(part)

    def sql(self, query: str, params: Sequence | Mapping | None = None, connection: Any = None,
            binary: bool = False) -> Any:
        """Run one statement, on the index's connection unless told another, its results in PostgreSQL's
        binary format if asked (bytes as they are, not hex); database errors become this package's."""
        import psycopg

        try:
            return (connection or self.connection).execute(query, params, binary=binary)
        except psycopg.errors.UndefinedTable as e:
            raise IndexNotFoundError(f"no index at {self.target.shown} (it was removed?): {e}") from None
        except psycopg.OperationalError as e:
            raise IndexWriteError(f"the PostgreSQL server at {self.target.where} failed: {e}") from None

    # -- the contract: opening -----------------------------------------------------------------

    @classmethod
    def open(cls, location: Location, embedder: Encoder | None = None, backend: str = "auto") -> PostgresIndex:
        """Connect to an existing index.

        Raises:
            IndexNotFoundError: no such index, or the server cannot be reached or refuses the login.
            IndexMismatchError: the tables were not written by ``rag index``, or with another embedding model.
        """
        target = Target(location)
        connection = _connect(target)
        meta = _read_meta(connection, target)
        if meta is None:
            connection.close()
            raise IndexNotFoundError(f"no index at {target.shown}; build it with `rag index ARTICLES --store URL`")
        model_name = meta["embedding_model"]
        embedder = embedder if embedder is not None else exports.embedder(model_name, backend)
        if embedder.model_name != model_name:
            connection.close()
            raise IndexMismatchError(f"{target.shown} was built with {model_name!r}, not {embedder.model_name!r}")
        return cls(connection, target, embedder, meta)

    @classmethod
    def create(cls, location: Location, embedder: Encoder, chunking: ChunkSettings | None = None,
               dense: DenseSettings | None = None) -> PostgresIndex:
        """A new, empty index; its tables are made in the first write transaction, so they appear at :meth:`save`.

        Raises:
            InvalidInputError: an index of that name exists (add to it with ``--update``).
            IndexNotFoundError: the database lacks the pgvector extension and it cannot be made.
        """
        target = Target(location)
        connection = _connect(target)
        if _read_meta(connection, target) is not None:
            connection.close()
            raise InvalidInputError(f"an index exists at {target.shown}; add to it with --update, or drop its tables")
        if not _has_vector(connection):
            try:
                connection.execute("CREATE EXTENSION IF NOT EXISTS vector")
            except Exception as e:  # psycopg's errors differ by cause; any of them means the same here
                connection.close()
                raise IndexNotFoundError(f"the database at {target.shown} has no pgvector extension and this user "
                                         f"cannot add it ({str(e).strip().splitlines()[0]}): run "
                                         "CREATE EXTENSION vector as its owner") from None
            from pgvector.psycopg import register_vector

            register_vector(connection)
        meta = {"format": FORMAT, "embedding_model": embedder.model_name, "dimension": embedder.dimension,
                "chunking": asdict(chunking if chunking is not None else ChunkSettings()),
                "dense": (dense if dense is not None else DenseSettings()).to_dict(), "bm25": BM25_SETTINGS,
                "hnsw": False}
        index = cls(connection, target, embedder, meta)
        index._begin()
        index._create_tables()
        return index

    @classmethod
    def exists(cls, location: Location) -> bool:
        """Whether an index is at ``location``."""
        target = Target(location)
        connection = _connect(target)
        try:
            return _read_meta(connection, target) is not None
        finally:
            connection.close()

    @classmethod
    @contextmanager
    def writing(cls, location: Location, wait: bool = True) -> Iterator[None]:
        """Hold the index's writer lock (a session advisory lock) while the block runs; re-entrant in a thread,
        as the folder's lock is (reading articles and writing them hold it in turn, one inside the other).

        Raises:
            IndexLockedError: another writer holds it and ``wait`` is False.
        """
        target = Target(location)
        key = (threading.get_ident(), target.conninfo, target.table)
        if key in _HELD:
            _HELD[key] += 1
            try:
                yield
            finally:
                _HELD[key] -= 1
            return
        connection = _connect(target)
        try:
            if not connection.execute("SELECT pg_try_advisory_lock(%s)", (target.lock_key,)).fetchone()[0]:
                if not wait:
                    raise IndexLockedError(f"another process is writing the index at {target.shown}; try again "
                                           "when it is done (or leave out --no-wait to wait)")
                logger.warning("waiting for another process to finish writing the index at %s", target.shown)
                connection.execute("SELECT pg_advisory_lock(%s)", (target.lock_key,))
            _HELD[key] = 1
            yield
        finally:
            _HELD.pop(key, None)
            connection.close()  # ends the session, and with it the lock

    @property
    def location(self) -> str:
        return self.target.shown

    @property
    def concurrent_parts(self) -> bool:
        """True unless a write is open: the sparse search then runs on a connection of its own (see
        :meth:`search_connection`), and the server runs it beside the dense search."""
        return not self._in_transaction

    def search_connection(self) -> Any:
        """The sparse search's connection: its own (opened at first use), so it can run while the dense
        search runs on the index's; the index's own while a write is open, whose rows only it sees."""
        if self._in_transaction:
            return self.connection
        with self._searcher_lock:
            if self._searcher is None:
                self._searcher = _connect(self.target)
            return self._searcher

    def close(self) -> None:
        """Roll back what was not saved, and disconnect."""
        if self._in_transaction:
            try:
                self.connection.execute("ROLLBACK")
            except Exception:  # the connection may be gone already; nothing was saved either way
                pass
            self._in_transaction = False
        self.connection.close()
        if self._searcher is not None:
            self._searcher.close()

    def __enter__(self) -> PostgresIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the contract: reading -----------------------------------------------------------------

    def check_embedder(self) -> None:
        """Raise if the embedder's vectors do not fit the index.

        Raises:
            IndexMismatchError: another dimension than the index's.
        """
        if self.embedder.dimension != self.dimension:
            raise IndexMismatchError(f"embedder {self.embedder.model_name!r} gives {self.embedder.dimension}-d "
                                     f"vectors, the index holds {self.dimension}-d vectors")

    def allowed(self, filters: Filters | None) -> tuple[str, dict] | None:
        """``filters`` as a WHERE clause on the passages (``p``) and its parameters; None when nothing is filtered."""
        if not filters:
            return None
        clauses: list[str] = []
        params: dict[str, Any] = {}
        if filters.since or filters.until:
            clauses.append("p.day IS NOT NULL")
            if filters.since:
                clauses.append("p.day >= %(since)s")
                params["since"] = filters.since.toordinal()
            if filters.until:
                clauses.append("p.day <= %(until)s")
                params["until"] = filters.until.toordinal()
        if filters.sources:
            clauses.append("p.outlet = ANY(%(sources)s)")
            params["sources"] = [s.casefold() for s in filters.sources]
        if filters.authors:
            clauses.append("p.authors && %(authors)s::text[]")
            params["authors"] = [a.casefold() for a in filters.authors]
        if filters.doc_ids:
            clauses.append("p.doc_id = ANY(%(doc_ids)s)")
            params["doc_ids"] = list(filters.doc_ids)
        return " AND ".join(clauses), params

    def hits(self, ranked: Sequence[tuple[int, float]],
             parts: Mapping[str, Mapping[int, float]] | None = None) -> list[Hit]:
        """(row, score) pairs, best first, as search hits ranked 1, 2, … (see ``rag.protocols.Index.hits``)"""
        if not ranked:
            return []
        found = {row: (Passage(pid, doc_id, text, start, end), _document(record, copies))
                 for row, pid, doc_id, text, start, end, record, copies in self.sql(
                     f'SELECT p.row, p.id, p.doc_id, p.text, p.start, p."end", d.record, d.copies '
                     f"FROM {self.t('passages')} p JOIN {self.t('documents')} d ON d.id = p.doc_id "
                     "WHERE p.row = ANY(%s)", ([row for row, _ in ranked],)).fetchall()}
        hits: list[Hit] = []
        for row, score in ranked:
            if row in found:
                passage, document = found[row]
                hits.append(Hit.with_parts(passage, document, score, len(hits) + 1, row, parts))
        return hits

    def known(self, doc_ids: Iterable[str]) -> set[str]:
        """Which of these document ids the index holds, in one query."""
        return {row[0] for row in self.sql(f"SELECT id FROM {self.t('documents')} WHERE id = ANY(%s)",
                                           (list(doc_ids),)).fetchall()}

    def passage_counts(self) -> dict[str, int]:
        """How many passages each document has, by id."""
        return dict(self.sql(f"SELECT doc_id, count(*) FROM {self.t('passages')} GROUP BY doc_id").fetchall())

    # -- the contract: writing -----------------------------------------------------------------

    def _begin(self) -> None:
        if not self._in_transaction:
            self.sql("BEGIN")
            self._in_transaction = True

    def _create_tables(self) -> None:
        t = self.t
        self.sql(f"CREATE TABLE {t('meta')} (key text PRIMARY KEY, value jsonb NOT NULL)")
        self.sql(f"CREATE TABLE {t('documents')} (id text PRIMARY KEY, seq bigserial, record jsonb NOT NULL, "
                 "copies jsonb NOT NULL DEFAULT '[]')")
        self.sql(f'CREATE TABLE {t("passages")} (row bigserial PRIMARY KEY, id text UNIQUE NOT NULL, '
                 f"doc_id text NOT NULL REFERENCES {t('documents')} ON DELETE CASCADE, start integer NOT NULL, "
                 f'"end" integer NOT NULL, text text NOT NULL, length integer NOT NULL, '
                 "day integer, outlet text, authors text[] NOT NULL)")
        self.sql(f"CREATE INDEX ON {t('passages')} (doc_id)")
        self.sql(f"CREATE TABLE {t('vectors')} (row bigint PRIMARY KEY REFERENCES {t('passages')} ON DELETE CASCADE, "
                 f"embedding vector({self.dimension}) NOT NULL)")
        # Vectors stay in the row (not TOASTed beside it), so a scan reads each at once: 4 page reads
        # a passage fewer, and an exact search 2-3x faster.
        self.sql(f"ALTER TABLE {t('vectors')} ALTER COLUMN embedding SET STORAGE PLAIN")
        self.sql(f"CREATE TABLE {t('lists')} (term text NOT NULL, block bigint NOT NULL, postings bytea NOT NULL, "
                 "PRIMARY KEY (term, block))")
        # Out of line but not compressed: a search reads the lists as they are, with no pglz to undo.
        self.sql(f"ALTER TABLE {t('lists')} ALTER COLUMN postings SET STORAGE EXTERNAL")
        self.sql(f"CREATE TABLE {t('stats')} (one boolean PRIMARY KEY DEFAULT true CHECK (one), rows bigint NOT NULL, "
                 "terms bigint NOT NULL)")
        self.sql(f"INSERT INTO {t('stats')} (rows, terms) VALUES (0, 0)")
        self._write_meta()

    def _write_meta(self) -> None:
        for key, value in self.meta.items():
            self.sql(f"INSERT INTO {self.t('meta')} (key, value) VALUES (%s, %s) "
                     "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, json.dumps(value)))

    def check_room(self, documents: Sequence[Document]) -> None:
        """Nothing to check here: the server reports a full disk when it is written to."""

    def add_embedded(self, documents: Sequence[Document], passages: Sequence[Passage], vectors: np.ndarray) -> int:
        """Add documents, their passages and vectors, in the write transaction (visible at :meth:`save`).

        Returns:
            How many passages were added.

        Raises:
            IndexMismatchError: the vectors do not fit the passages or the index.
            InvalidInputError: a passage holds a term more often than a posting counts (nothing is written).
        """
        if vectors.shape != (len(passages), self.dimension):
            raise IndexMismatchError(f"vectors of shape {vectors.shape} for {len(passages)} passages "
                                     f"of a {self.dimension}-d index")
        terms = tokenize([p.text for p in passages]) if passages else []
        counts = [Counter(words) for words in terms]
        for passage, count in zip(passages, counts):
            term, tf = max(count.items(), key=lambda item: item[1], default=("", 0))
            if tf > MAX_TF:
                raise InvalidInputError(f"passage {passage.id} holds {term!r} {tf} times, more than BM25's "
                                        f"lists here count ({MAX_TF}): index it in smaller passages")
        self._begin()
        t = self.t
        by_id = {d.id: d for d in documents}
        with self.connection.cursor() as cursor, cursor.copy(
                f"COPY {t('documents')} (id, record) FROM STDIN") as copy:
            for d in documents:
                copy.write_row((d.id, json.dumps(d.to_record())))
        if not passages:
            return 0
        rows = [r for (r,) in self.sql(f"SELECT nextval(pg_get_serial_sequence('{t('passages')}', 'row')) "
                                       "FROM generate_series(1, %s)", (len(passages),)).fetchall()]
        with self.connection.cursor() as cursor, cursor.copy(
                f'COPY {t("passages")} (row, id, doc_id, start, "end", text, length, day, outlet, authors) '
                "FROM STDIN") as copy:
            for row, passage, words in zip(rows, passages, terms):
                document = by_id[passage.doc_id]
                copy.write_row((row, passage.id, passage.doc_id, passage.start, passage.end, passage.text,
                                len(words), day_number(document.date),
                                document.outlet.casefold() if document.outlet else None,
                                [a.casefold() for a in document.authors()]))
        with self.connection.cursor() as cursor, cursor.copy(
                f"COPY {t('vectors')} (row, embedding) FROM STDIN") as copy:
            for row, vector in zip(rows, vectors):
                copy.write_row((row, _vector_text(vector)))
        lists: dict[tuple[str, int], list[tuple[int, int, int]]] = {}
        for row, words, count in zip(rows, terms, counts):
            for term, tf in count.items():
                lists.setdefault((term, row // BLOCK), []).append((len(words), row % BLOCK, tf))
        # New rows come after every row there, so each list grows at its end and stays in row order. Written
        # in term order, a term's lists lie on few pages of the table, for a search to read.
        keys = sorted(lists)
        self.sql(f"INSERT INTO {t('lists')} AS l (term, block, postings) "
                 "SELECT * FROM unnest(%s::text[], %s::bigint[], %s::bytea[]) "
                 "ON CONFLICT (term, block) DO UPDATE SET postings = l.postings || excluded.postings",
                 ([term for term, _ in keys], [block for _, block in keys],
                  [np.array(lists[key], dtype=POSTING).tobytes() for key in keys]))
        self.sql(f"UPDATE {t('stats')} SET rows = rows + %s, terms = terms + %s",
                 (len(passages), sum(map(len, terms))))
        self._added += len(passages)
        return len(passages)

    def record_copies(self, copies: Mapping[str, Sequence[Copy]]) -> None:
        """Add copies (near-duplicates found later) to stored documents, in the write transaction.

        Raises:
            DocumentNotFoundError: an id is not in the index.
        """
        self._begin()
        for doc_id, more in copies.items():
            updated = self.sql(f"UPDATE {self.t('documents')} SET copies = copies || %s::jsonb WHERE id = %s",
                               (json.dumps([list(c) for c in more]), doc_id))
            if updated.rowcount == 0:
                raise DocumentNotFoundError(f"no document with id {doc_id!r} in {self.target.shown}")

    def remove(self, doc_ids: Sequence[str]) -> int:
        """Delete documents and their passages, by id, in the write transaction; returns the passages removed.

        Raises:
            InvalidInputError: ``doc_ids`` is a lone string.
            DocumentNotFoundError: an id is not in the index.
        """
        if isinstance(doc_ids, str):
            raise InvalidInputError(f"remove takes a list of document ids, got the string {doc_ids!r}")
        ids = list(dict.fromkeys(doc_ids))
        missing = [i for i in ids if i not in self.known(ids)]
        if missing:
            raise DocumentNotFoundError(f"no document with id {missing[0]!r} in {self.target.shown}")
        self._begin()
        t = self.t
        doomed = self.sql(f"SELECT row, text, length FROM {t('passages')} WHERE doc_id = ANY(%s)", (ids,)).fetchall()
        self._drop_postings([row for row, _, _ in doomed], [text for _, text, _ in doomed])
        self.sql(f"DELETE FROM {t('documents')} WHERE id = ANY(%s)", (ids,))
        removed, lengths = len(doomed), sum(length for _, _, length in doomed)
        self.sql(f"UPDATE {t('stats')} SET rows = rows - %s, terms = terms - %s", (removed, lengths))
        return int(removed)

    def _drop_postings(self, rows: Sequence[int], texts: Sequence[str]) -> None:
        """Take these passage rows out of the lists of their terms (found again from their texts)."""
        if not rows:
            return
        t = self.t
        keys = sorted({(term, row // BLOCK) for row, words in zip(rows, tokenize(texts)) for term in words})
        doomed = np.array(rows, dtype=np.int64)
        kept: dict[tuple[str, int], bytes] = {}
        for term, block, postings in self.sql(
                f"SELECT l.term, l.block, l.postings FROM {t('lists')} l JOIN unnest(%s::text[], %s::bigint[]) "
                "AS k(term, block) ON l.term = k.term AND l.block = k.block",
                ([term for term, _ in keys], [block for _, block in keys]), binary=True).fetchall():
            array = np.frombuffer(postings, dtype=POSTING)
            kept[(term, block)] = array[~np.isin(block * BLOCK + array["offset"].astype(np.int64), doomed)].tobytes()
        empty = [key for key, postings in kept.items() if not postings]
        full = [(key, postings) for key, postings in kept.items() if postings]
        self.sql(f"DELETE FROM {t('lists')} l USING unnest(%s::text[], %s::bigint[]) AS k(term, block) "
                 "WHERE l.term = k.term AND l.block = k.block",
                 ([term for term, _ in empty], [block for _, block in empty]))
        self.sql(f"UPDATE {t('lists')} l SET postings = k.postings "
                 "FROM unnest(%s::text[], %s::bigint[], %s::bytea[]) AS k(term, block, postings) "
                 "WHERE l.term = k.term AND l.block = k.block",
                 ([term for (term, _), _ in full], [block for (_, block), _ in full], [p for _, p in full]))

    def save(self) -> None:
        """Commit the write transaction: everything added, recorded and removed since the last save, at once.

        From ``HNSW_FROM`` passages (as the folder index; or always, with ``--dense hnsw``) the
        dense search gets its HNSW index here, once.
        """
        if not self._in_transaction:
            return
        rows = self.sql(f"SELECT rows FROM {self.t('stats')}").fetchone()[0]
        if not self.meta["hnsw"] and choose_kind(self.dense_settings, int(rows)) == "hnsw":
            logger.info("building the HNSW index of %s (%d passages)", self.target.shown, rows)
            self.sql(f"CREATE INDEX ON {self.t('vectors')} USING hnsw (embedding vector_ip_ops) "
                     f"WITH (m = {int(self.dense_settings.hnsw_m)}, "
                     f"ef_construction = {int(self.dense_settings.ef_construction)})")
            self.meta = {**self.meta, "hnsw": True}
            self._write_meta()
        self.sql("COMMIT")
        self._in_transaction = False
        if self._added >= VACUUM_FROM:  # a bulk load: clear the lists it rewrote, and count what is there
            for part in ("lists", "passages", "vectors", "stats"):
                self.sql(f"VACUUM (ANALYZE) {self.t(part)}")
        self._added = 0


def _vector_text(vector: np.ndarray) -> str:
    """A vector as pgvector's text form, exact for float32 (COPY's text format)."""
    return "[" + ",".join(repr(float(x)) for x in np.asarray(vector, dtype=np.float32)) + "]"


def _document(record: dict, copies: list) -> Document:
    document = Document.from_record(record)
    if copies:
        from dataclasses import replace

        document = replace(document, copies=(*document.copies, *(tuple(c) for c in copies)))
    return document


def _read_meta(connection: Any, target: Target) -> dict | None:
    """The index's settings, or None when there is no index of that name."""
    table = target.name("meta")
    if connection.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is None:
        return None
    meta = dict(connection.execute(f"SELECT key, value FROM {table}").fetchall())
    if meta.get("format") != FORMAT:
        older = isinstance(meta.get("format"), int) and meta["format"] < FORMAT
        raise IndexMismatchError(f"{target.shown} was written by an older version of rag (format {meta['format']}, "
                                 f"this one reads {FORMAT}): index the articles again with `rag index --store`"
                                 if older else
                                 f"{target.shown} was not written by `rag index` (format {meta.get('format')!r})")
    return meta


def _ranking(rows: Sequence[tuple[int, float]]) -> Ranking:
    return (np.fromiter((r for r, _ in rows), dtype=np.int64, count=len(rows)),
            np.fromiter((s for _, s in rows), dtype=np.float32, count=len(rows)))


_NOTHING: Ranking = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))


def _sum_in_span(span: int, postings: int) -> bool:
    """Whether BM25 adds a question's scores up in an array over the span of its rows (rows close together:
    under a million apart, or 8 per posting), rather than through a sort of its rows."""
    return span <= max(1 << 20, 8 * postings)


def _where(allowed: tuple[str, dict] | None) -> tuple[str, dict]:
    return (f"WHERE {allowed[0]}", dict(allowed[1])) if allowed else ("", {})


class _DenseSearch:
    """Nearest passages by inner product, in the database (see the module's notes)."""

    def __init__(self, index: PostgresIndex) -> None:
        self.index = index

    def search_batch(self, questions: Sequence[str], k: int, allowed: Any = None) -> list[Ranking]:
        index, t = self.index, self.index.t
        vectors = index.embedder.encode(list(questions))
        where, params = _where(allowed)
        passages = f"JOIN {t('passages')} p ON p.row = v.row" if allowed else ""  # joined only to filter
        hnsw = index.meta["hnsw"]
        if hnsw:  # an index scan orders by distance alone; ties are ordered by row below
            ef_search = min(MAX_EF_SEARCH, max(k, index.dense_settings.ef_search))
            index.sql(f"SET hnsw.ef_search = {int(ef_search)}")
            index.sql("SET hnsw.iterative_scan = relaxed_order")
        order = "distance" if hnsw else "distance, v.row"  # each distance computed once, named in the ORDER BY
        rankings = []
        for vector in vectors:
            rows = index.sql(f"SELECT v.row, v.embedding <#> %(q)s::vector AS distance FROM {t('vectors')} v "
                             f"{passages} {where} ORDER BY {order} LIMIT %(k)s",
                             {**params, "q": _vector_text(vector), "k": k}).fetchall()
            rankings.append(_ranking(sorted(((r, -d) for r, d in rows), key=lambda r: (-r[1], r[0]))))
        return rankings


class _SparseSearch:
    """BM25 from the question's packed lists and the whole index's statistics (see the module's notes)."""

    def __init__(self, index: PostgresIndex) -> None:
        self.index = index

    def search_batch(self, questions: Sequence[str], k: int, allowed: Any = None) -> list[Ranking]:
        connection = self.index.search_connection()
        rankings: list[Ranking] = []
        for terms in tokenize(questions):
            rows, scores = self._scores(terms, connection) if k > 0 else _NOTHING
            if allowed is None and len(rows) > k:  # the best k, chosen as the folder index chooses them
                best = np.argpartition(-scores, k - 1)[:k]
                rows, scores = rows[best], scores[best]
            order = np.lexsort((rows, -scores))  # best first, ties by row, as the folder index breaks them
            rows, scores = rows[order], scores[order]
            rankings.append((rows, scores) if allowed is None else self._allowed(rows, scores, k, allowed, connection))
        return rankings

    def _scores(self, terms: list[str], connection: Any) -> Ranking:
        """(rows, BM25 scores) of every passage holding a term of the question, in row order.

        The arithmetic is ``rag.index.bm25``'s, term by term in the question's order (float64 weights,
        added up in float32), so the scores are the folder index's to the last bit.
        """
        index = self.index
        found = index.sql(
            f"SELECT s.rows, s.terms, l.term, l.block, l.postings FROM {index.t('stats')} s "
            f"LEFT JOIN {index.t('lists')} l ON l.term = ANY(%s)", (sorted(set(terms)),), connection,
            binary=True).fetchall()
        n, total = found[0][0], found[0][1]
        pieces: dict[str, list[tuple[int, bytes]]] = {}
        for _, _, term, block, postings in found:
            if term is not None:
                pieces.setdefault(term, []).append((block, postings))
        if not pieces:
            return _NOTHING
        mean = total / n if n else 1.0
        lists: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # term -> (its rows, its BM25 weights there)
        for term, parts in pieces.items():
            packed = b"".join(p for _, p in parts)
            lengths = np.frombuffer(packed, dtype="<u4")[::2]  # POSTING's fields, as strided views
            offsets, tfs = np.frombuffer(packed, dtype="<u2")[2::4], np.frombuffer(packed, dtype="<u2")[3::4]
            firsts = np.array([block * BLOCK for block, _ in parts], dtype=np.int64)
            rows = np.repeat(firsts, [len(p) // POSTING.itemsize for _, p in parts]) + offsets
            idf = np.log1p((n - len(rows) + 0.5) / (len(rows) + 0.5))
            lists[term] = rows, (idf * term_weight(tfs, lengths, mean)).astype(np.float32)
        low = min(int(rows.min()) for rows, _ in lists.values())
        span = max(int(rows.max()) for rows, _ in lists.values()) - low + 1
        if _sum_in_span(span, sum(len(rows) for rows, _ in lists.values())):
            dense = np.zeros(span, dtype=np.float32)
            for term in terms:  # a term asked twice counts twice
                if term in lists:
                    dense[lists[term][0] - low] += lists[term][1]
            found_at = np.flatnonzero(dense > 0)  # every weight is positive; a mask scans faster than floats
            return found_at + low, dense[found_at]
        rows, where = np.unique(np.concatenate([rows for rows, _ in lists.values()]), return_inverse=True)
        bounds = np.cumsum([0, *(len(r) for r, _ in lists.values())])
        at = {term: where[bounds[i]:bounds[i + 1]] for i, term in enumerate(lists)}
        scores = np.zeros(len(rows), dtype=np.float32)
        for term in terms:
            if term in lists:
                scores[at[term]] += lists[term][1]
        return rows, scores

    def _allowed(self, rows: np.ndarray, scores: np.ndarray, k: int, allowed: tuple[str, dict],
                 connection: Any) -> Ranking:
        """The best ``k`` of these passages (best first) that the filter allows, asked of the database in chunks."""
        index, (where, params) = self.index, allowed
        keep: list[np.ndarray] = []
        for start in range(0, len(rows), FILTER_CHUNK):
            if sum(map(len, keep)) >= k:
                break
            chunk = rows[start:start + FILTER_CHUNK]
            passing = {r for (r,) in index.sql(f"SELECT p.row FROM {index.t('passages')} p "
                                               f"WHERE p.row = ANY(%(rows)s) AND {where}",
                                               {**params, "rows": chunk.tolist()}, connection).fetchall()}
            keep.append(start + np.flatnonzero([r in passing for r in chunk.tolist()]))
        chosen = np.concatenate(keep)[:k] if keep else np.zeros(0, dtype=np.int64)
        return rows[chosen], scores[chosen]


class _Documents(Mapping[str, Document]):
    """The index's documents by id, read from the database when asked for."""

    def __init__(self, index: PostgresIndex) -> None:
        self.index = index

    def __getitem__(self, doc_id: str) -> Document:
        found = self.index.sql(f"SELECT record, copies FROM {self.index.t('documents')} WHERE id = %s",
                               (doc_id,)).fetchone()
        if found is None:
            raise KeyError(doc_id)
        return _document(*found)

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and bool(self.index.known([doc_id]))

    def __len__(self) -> int:
        return int(self.index.sql(f"SELECT count(*) FROM {self.index.t('documents')}").fetchone()[0])

    def __iter__(self) -> Iterator[str]:
        return (d.id for d in self.values())

    def values(self):  # one query, in the order they were added
        return [_document(record, copies) for record, copies in self.index.sql(
            f"SELECT record, copies FROM {self.index.t('documents')} ORDER BY seq").fetchall()]


class _Passages:
    """The index's passages: sized and iterable in row order, as ``PassageIndex.passages``."""

    def __init__(self, index: PostgresIndex) -> None:
        self.index = index

    def __len__(self) -> int:
        return int(self.index.sql(f"SELECT rows FROM {self.index.t('stats')}").fetchone()[0])

    def __iter__(self) -> Iterator[Passage]:
        for pid, doc_id, text, start, end in self.index.sql(
                f'SELECT id, doc_id, text, start, "end" FROM {self.index.t("passages")} ORDER BY row').fetchall():
            yield Passage(pid, doc_id, text, start, end)


if TYPE_CHECKING:  # mypy checks that this backend keeps the contract of rag.protocols.Index
    _contract: type[Index] = PostgresIndex
