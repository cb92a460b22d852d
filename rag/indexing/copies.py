"""The copy check: which new articles are near-duplicates of articles an index holds already.

Another outlet's copy of a wire story, added after the original (``rag index --update``, an
upload), is recorded as one more copy of the indexed article instead of being indexed twice.
The check uses only the index's public search (``rag.protocols.Index``), so it works the same
on every backend: the index's own BM25 finds candidates (the new article's first
:data:`QUERY_WORDS` words as the question, :data:`CANDIDATES` passages deep), and each
candidate article is compared as ingestion compares two new ones
(``rag.ingest.near_duplicates``: Jaccard similarity of word 5-shingles at least its threshold).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.ingest.near_duplicates import THRESHOLD, shingles, similarity
from rag.protocols import Index
from rag.types import Document

QUERY_WORDS = 24  # the headline and lede: enough to find a copy, cheap to search
CANDIDATES = 5
_WORD = re.compile(r"[^\W_]+")


def copies_in(index: Index, documents: Sequence[Document]) -> dict[str, str]:
    """Which of ``documents`` are near-duplicates of an article ``index`` holds: document id -> that article's id.

    Args:
        index: any index.
        documents: documents the index does not hold (by id).
    """
    if not documents or not len(index.passages):
        return {}
    queries = [" ".join(_WORD.findall(d.text)[:QUERY_WORDS]) for d in documents]
    found: dict[str, str] = {}
    for doc, (rows, scores) in zip(documents, index.sparse.search_batch(queries, CANDIDATES, index.allowed(None))):
        own = shingles(doc.text)
        candidates = {hit.document.id: hit.document for hit in index.hits(list(zip(rows.tolist(), scores.tolist())))}
        match = next((doc_id for doc_id, other in candidates.items()
                      if similarity(shingles(other.text), own) >= THRESHOLD), None)
        if match is not None:
            found[doc.id] = match
    return found
