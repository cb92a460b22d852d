"""Filters (``rag.types.Filters``) as a mask over an index folder's passages.

The dense and sparse searches apply the mask inside retrieval, so a filtered query still
gets ``k`` hits when ``k`` passages pass.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rag.dates import day_number
from rag.types import Document, Filters

_NO_DATE = np.iinfo(np.int32).min


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
        days = (day_number(d.date) for d in documents)
        self.days = np.fromiter((_NO_DATE if day is None else day for day in days), dtype=np.int32,
                                count=len(documents))
        self.outlet_codes: dict[str, int] = {}
        self.outlets = np.fromiter((self.outlet_codes.setdefault(d.outlet.casefold(), len(self.outlet_codes))
                                    if d.outlet else -1 for d in documents), dtype=np.int32, count=len(documents))
        self.by_author: dict[str, list[int]] = {}
        for i, d in enumerate(documents):
            for name in d.authors():
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
