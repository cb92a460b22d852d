"""Passages and documents in SQLite, read by row when needed, never loaded whole.

One file, ``passages.sqlite``, in each generation of an index folder (see ``rag.index.generations``):

    documents(id, title, text, source, author, date, url, outlet, publisher, crawled, source_map, pages, copies)
    passages(row, id, doc_id, start, end)      row i is row i of the dense and sparse indexes

A passage stores offsets only; its text is cut from its document's, so the text is kept
once. Opening the file reads nothing but its header, so an index of a million passages
opens in milliseconds and holds in memory only what a search returns. The last five
columns came with source maps; a store written before them reads with their defaults.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cached_property
from pathlib import Path

from rag.types import DOCUMENT_FIELDS, Document, Passage

FILE = "passages.sqlite"
MMAP_BYTES = 1 << 40  # the whole file; SQLite caps it at its build's maximum (2 GB in common builds)
_SCHEMA = """
CREATE TABLE documents (id TEXT PRIMARY KEY, title TEXT NOT NULL, text TEXT NOT NULL, source TEXT NOT NULL,
                        author TEXT, date TEXT, url TEXT, outlet TEXT, publisher TEXT, crawled TEXT,
                        source_map TEXT, pages TEXT,
                        copies TEXT) WITHOUT ROWID;
CREATE TABLE passages (row INTEGER PRIMARY KEY, id TEXT NOT NULL, doc_id TEXT NOT NULL REFERENCES documents(id),
                       start INTEGER NOT NULL, "end" INTEGER NOT NULL);
CREATE INDEX passages_by_document ON passages(doc_id);
"""


def write(path: Path, documents: Iterable[Document], passages: Iterable[Passage]) -> None:
    """Write a new store at ``path`` (which must not exist), in one transaction.

    Raises:
        OSError: the disk is full (``errno.ENOSPC``) or the file cannot be written, as for
            any other file of a generation, so ``rag.index.generations`` reports it the same way.
    """
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA foreign_keys = ON")  # a passage of no document is refused, never written
        db.executescript(_SCHEMA)
        with db:
            db.executemany(f"INSERT INTO documents ({', '.join(DOCUMENT_FIELDS)}) "
                           f"VALUES ({', '.join('?' * len(DOCUMENT_FIELDS))})",
                           (list(d.to_record().values()) for d in documents))
            db.executemany('INSERT INTO passages VALUES (?, ?, ?, ?, ?)',
                           ((row, p.id, p.doc_id, p.start, p.end) for row, p in enumerate(passages)))
    except sqlite3.Error as e:
        full = getattr(e, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
        raise OSError(errno.ENOSPC if full else errno.EIO, os.strerror(errno.ENOSPC) if full else str(e)) from e
    finally:
        db.close()


class PassageStore:
    """A read-only view of a store file; safe to share between threads.

    The file is opened once, here, and the connection kept for the store's life: a newer save
    may delete this generation's folder while a question still reads this snapshot (the
    server swaps snapshots as uploads land), and an open file outlives its name. SQLite is
    built serialized (``sqlite3.threadsafety == 3``), so the one connection serves every thread.

    Args:
        path: the ``passages.sqlite`` file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, check_same_thread=False)
        # Read the file through a memory map: its pages are the system's page cache, shared and
        # given back under pressure, where SQLite's own cache would copy up to 2 MB of it per
        # segment into the process's heap.
        self.db.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")

    @cached_property
    def fields(self) -> tuple[str, ...]:
        """The document fields this store has columns for (an older store has fewer)."""
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(documents)")}
        return tuple(f for f in DOCUMENT_FIELDS if f in columns)

    def _document(self, row: Sequence, fields: Sequence[str] | None = None) -> Document:
        return Document.from_record(dict(zip(fields or self.fields, row)))

    def count(self, table: str) -> int:
        return self.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # table: a name of ours

    def document(self, doc_id: str) -> Document | None:
        row = self.db.execute(f"SELECT {', '.join(self.fields)} FROM documents WHERE id = ?", (doc_id,)).fetchone()
        return self._document(row) if row else None

    def has_document(self, doc_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM documents WHERE id = ?", (doc_id,)).fetchone() is not None

    def passage(self, row: int) -> Passage:
        found = self.db.execute('SELECT p.id, p.doc_id, p.start, p."end", '
                                'substr(d.text, p.start + 1, p."end" - p.start) '
                                "FROM passages p JOIN documents d ON d.id = p.doc_id WHERE p.row = ?",
                                (row,)).fetchone()
        if found is None:
            raise IndexError(row)
        passage_id, doc_id, start, end, text = found
        return Passage(passage_id, doc_id, text, start, end)

    def documents(self) -> Iterator[Document]:
        for row in self.db.execute(f"SELECT {', '.join(self.fields)} FROM documents"):
            yield self._document(row)

    def rows_of(self, doc_ids: Iterable[str]) -> list[int]:
        """The passage rows of these documents."""
        ids = list(doc_ids)
        rows: list[int] = []
        for i in range(0, len(ids), 500):  # SQLite caps the number of bound parameters
            chunk = ids[i:i + 500]
            marks = ", ".join("?" * len(chunk))
            rows += [r for (r,) in self.db.execute(f"SELECT row FROM passages WHERE doc_id IN ({marks})",
                                                   chunk)]
        return rows

    def passage_counts(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT doc_id, count(*) FROM passages GROUP BY doc_id"))

    def metadata(self) -> tuple[list[Document], list[str]]:
        """Every document without its text, and each passage row's document id: what filters need."""
        fields = [f for f in self.fields if f not in ("text", "source_map")]
        documents = [self._document([*row, ""], [*fields, "text"])
                     for row in self.db.execute(f"SELECT {', '.join(fields)} FROM documents")]
        return documents, [row[0] for row in self.db.execute("SELECT doc_id FROM passages ORDER BY row")]

    def passages(self) -> Iterator[Passage]:
        """Every passage, in row order, each document's text read once."""
        texts: dict[str, str] = {}
        for passage_id, doc_id, start, end in self.db.execute('SELECT id, doc_id, start, "end" FROM passages '
                                                              "ORDER BY row"):
            if doc_id not in texts:
                texts = {doc_id: self.db.execute("SELECT text FROM documents WHERE id = ?", (doc_id,)).fetchone()[0]}
            yield Passage(passage_id, doc_id, texts[doc_id][start:end], start, end)


class StoredPassages(Sequence[Passage]):
    """The passages of a store as a sequence: ``passages[row]`` reads one row."""

    def __init__(self, store: PassageStore) -> None:
        self.store = store
        self._len = store.count("passages")

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, row):
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(self._len))]
        if row < 0:
            row += self._len
        if not 0 <= row < self._len:
            raise IndexError(row)
        return self.store.passage(row)

    def __iter__(self) -> Iterator[Passage]:
        return self.store.passages()


class StoredDocuments(Mapping[str, Document]):
    """The documents of a store as a read-only mapping by id."""

    def __init__(self, store: PassageStore) -> None:
        self.store = store
        self._len = store.count("documents")

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, doc_id: str) -> Document:
        found = self.store.document(doc_id)
        if found is None:
            raise KeyError(doc_id)
        return found

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and self.store.has_document(doc_id)

    def __iter__(self) -> Iterator[str]:
        return (row[0] for row in self.store.db.execute("SELECT id FROM documents"))

    def values(self):  # one query, not one per id
        return list(self.store.documents())
