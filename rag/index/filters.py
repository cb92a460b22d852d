"""Which documents a search may return: a date range, outlets, authors, document ids.

A :class:`Filters` is plain data; an index turns it into a mask over its passages
(:meth:`DocumentColumns.allowed`), and the dense and sparse searches apply that mask inside
retrieval, so a filtered query still gets ``k`` hits when ``k`` passages pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from rag.errors import InvalidInputError
from rag.types import Document

_NO_DATE = np.iinfo(np.int32).min


def _day(value: str | date | None, what: str) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise InvalidInputError(f"{what} must be a date written YYYY-MM-DD, got {value!r}") from None


def _names(values: Iterable[str] | str | None, what: str) -> tuple[str, ...]:
    if values is None:
        return ()
    values = [values] if isinstance(values, str) else list(values)
    if any(not isinstance(v, str) or not v.strip() for v in values):
        raise InvalidInputError(f"{what} must be non-empty names, got {values!r}")
    return tuple(v.strip() for v in values)


@dataclass(frozen=True)
class Filters:
    """Limits on the documents a search returns; each given limit must hold, an empty one allows all.

    Args:
        since, until: the document's date lies in this range, both ends included
            (``date`` objects or ``YYYY-MM-DD`` strings). A document without a date fails a date limit.
        sources: the document's outlet is one of these (compared without case).
        authors: one of these is among the document's authors (compared without case).
        doc_ids: the document is one of these.

    Raises:
        InvalidInputError: a date that is not ``YYYY-MM-DD``, an empty name, or ``since`` after ``until``.
    """

    since: date | None = None
    until: date | None = None
    sources: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    doc_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "since", _day(self.since, "since"))
        object.__setattr__(self, "until", _day(self.until, "until"))
        for name in ("sources", "authors", "doc_ids"):
            object.__setattr__(self, name, _names(getattr(self, name), name))
        if self.since and self.until and self.since > self.until:
            raise InvalidInputError(f"since ({self.since}) is after until ({self.until})")

    def __bool__(self) -> bool:
        return any((self.since, self.until, self.sources, self.authors, self.doc_ids))



def _document_day(document: Document) -> int:
    """The document's date as a day number, or _NO_DATE."""
    try:
        return date.fromisoformat(document.date[:10]).toordinal() if document.date else _NO_DATE
    except ValueError:
        return _NO_DATE


def authors_of(document: Document) -> list[str]:
    """A byline's names: "A and B" or "A, B" name two authors."""
    if not document.author:
        return []
    return [a.strip() for part in document.author.split(" and ") for a in part.split(",") if a.strip()]


class DocumentColumns:
    """The documents' filterable fields as arrays, and each passage's document, to mask passages fast.

    Masking 1M passages takes a few numpy operations, not a Python loop over documents.

    Args:
        documents: the documents, in any order.
        passage_documents: for each passage row, its document's id.
    """

    def __init__(self, documents: Sequence[Document], passage_documents: Sequence[str]) -> None:
        self.position = {d.id: i for i, d in enumerate(documents)}
        self.passage_document = np.fromiter((self.position[d] for d in passage_documents), dtype=np.int32,
                                            count=len(passage_documents))
        self.days = np.fromiter((_document_day(d) for d in documents), dtype=np.int32, count=len(documents))
        self.outlet_codes: dict[str, int] = {}
        self.outlets = np.fromiter((self.outlet_codes.setdefault(d.outlet.casefold(), len(self.outlet_codes))
                                    if d.outlet else -1 for d in documents), dtype=np.int32, count=len(documents))
        self.by_author: dict[str, list[int]] = {}
        for i, d in enumerate(documents):
            for name in authors_of(d):
                self.by_author.setdefault(name.casefold(), []).append(i)

    def allowed(self, filters: Filters | None) -> np.ndarray | None:
        """A bool mask over passage rows that pass ``filters``; None when nothing is filtered."""
        if not filters:
            return None
        passing = np.ones(len(self.days), dtype=bool)
        if filters.since or filters.until:
            passing &= self.days != _NO_DATE
            if filters.since:
                passing &= self.days >= filters.since.toordinal()
            if filters.until:
                passing &= self.days <= filters.until.toordinal()
        if filters.sources:
            codes = [self.outlet_codes[s.casefold()] for s in filters.sources if s.casefold() in self.outlet_codes]
            passing &= np.isin(self.outlets, codes)
        if filters.authors:
            passing &= self._chosen([i for a in filters.authors for i in self.by_author.get(a.casefold(), [])])
        if filters.doc_ids:
            passing &= self._chosen([self.position[i] for i in filters.doc_ids if i in self.position])
        return passing[self.passage_document]

    def _chosen(self, positions: list[int]) -> np.ndarray:
        chosen = np.zeros(len(self.days), dtype=bool)
        chosen[positions] = True
        return chosen
