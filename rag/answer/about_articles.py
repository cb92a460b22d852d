"""Questions about the articles themselves, answered from their metadata, not by the reader.

"Who wrote the article on the IMU?", "When was it published?", "Which outlet ran it?",
"Who publishes it?", "Where was it filed?": the answer is a fact about the article, which
ingestion found (``rag.ingest.cleaning``) and kept in the text as well: the byline, the
dateline's date and place, the outlet, the masthead's publisher. A name that merely appears
in the body is never the answer; the reader, asked "who wrote ...", would give one.

:func:`asked_about` tells such a question by its wording. The retriever finds the article
from the rest of the question as usual; :func:`answer` takes, among the retrieved articles,
one whose outlet, publisher or author the question names ("Who reported the Afghanistan
Today story?"), else the one the passages point to most (each passage counting 1/rank), and
answers with the field as it is
written in the text, and cites the paragraph that holds it, highlighted. Its confidence is
that article's share of the 1/rank weight among the articles the question names as much
(all of them, when it names none): how clearly the question and retrieval point at one article.
An article without that field gets no answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.dates import dates_in
from rag.types import HEAD_LINES, Document, Hit, Passage

FIELDS = ("author", "date", "outlet", "publisher", "place")

_ASKS = (
    ("publisher", re.compile(r"\bpublisher\b|\bwho (?:publishes|owns|runs)\b|"
                             r"\bwhich (?:organi[sz]ation|company|group) (?:publishes|owns|runs|is behind)\b", re.I)),
    ("author", re.compile(r"\bwho (?:wrote|authored|penned)\b|\bwho (?:reported|filed) (?:the|this|that) (?:\w+ )*?"
                          r"(?:story|article|report|piece)\b|"
                          r"\b(?:author|byline|reporter|writer) of (?:the|this|that)\b|"
                          r"\bwho is the (?:author|reporter|writer)\b|\bwritten by whom\b", re.I)),
    ("place", re.compile(r"\bwhere was .*\b(?:filed|reported|written|datelined)\b|\bdateline\b|"
                         r"\bfrom where (?:was|did)\b", re.I)),
    ("date", re.compile(r"\bwhen (?:was|were|did) .*\b(?:published|written|posted|released|publish|come out|appear)\b|"
                        r"\b(?:publication|published|posting) date\b|\bwhat date was .*\bpublished\b|"
                        r"\bwhat day was .*\bpublished\b", re.I)),
    ("outlet", re.compile(r"\b(?:which|what) (?:outlet|publication|newspaper|paper|site|website|news ?(?:site|agency|"
                          r"outlet|organi[sz]ation)|media outlet|magazine)\b|\bwhere was .*\bpublished\b|"
                          r"\bwho (?:published|ran|carried)\b", re.I)),
)


def asked_about(question: str) -> str | None:
    """The metadata field a question asks for ("author", "date", "outlet", "publisher", "place"), or None."""
    return next((name for name, pattern in _ASKS if pattern.search(question)), None)


def _head(document: Document) -> int:
    """Where the first lines of the text end, which hold the byline and dateline."""
    at = 0
    for _ in range(HEAD_LINES):
        found = document.text.find("\n\n", at)
        if found < 0:
            return len(document.text)
        at = found + 2
    return at


def _dateline(document: Document) -> tuple[int, int, int, int] | None:
    """(date start, date end, line start, line end) of the article's date as its text first writes it."""
    if not document.date:
        return None
    head = document.text[:_head(document)]
    for start, end, iso in sorted(dates_in(head)):
        if iso == document.date[:10]:
            line_start = head.rfind("\n", 0, start) + 1
            line_end = head.find("\n", end)
            return start, end, line_start, len(head) if line_end < 0 else line_end
    return None


def _place(document: Document) -> tuple[int, int] | None:
    """The place of a dateline, the line that holds the date ("21.07.2015 | Mazar-e Sharif", "KABUL, July 21 -")."""
    found = _dateline(document)
    if found is None:
        return None
    start, end, line_start, line_end = found
    text = document.text
    for lo, hi in ((line_start, start), (end, line_end)):  # before the date ("KABUL, July 21"), then after it
        for part in re.finditer(r"(?:(?!\s-\s)[^|·•,–—()])+", text[lo:hi]):  # between separators, " - " one
            words = part.group().strip()
            if words and re.fullmatch(r"[A-Z][\w'’.-]*(?:[ -][\w'’.-]+){0,3}", words) and not re.search(r"\d", words):
                at = lo + part.start() + part.group().index(words)
                return at, at + len(words)
    return None


def locate(document: Document, name: str) -> tuple[int, int] | None:
    """Where field ``name`` of ``document`` is written in its text, as (start, end); None if it is not."""
    if name == "date":
        found = _dateline(document)
        return found[:2] if found else None
    if name == "place":
        return _place(document)
    value = getattr(document, name)
    if not value:
        return None
    at = document.text.find(value)
    return (at, at + len(value)) if at >= 0 else None


def paragraph(document: Document, start: int, end: int) -> Passage:
    """The paragraph of ``document`` that holds ``[start, end)``, as a passage of it."""
    lo = document.text.rfind("\n\n", 0, start)
    lo = 0 if lo < 0 else lo + 2
    hi = document.text.find("\n\n", end)
    hi = len(document.text) if hi < 0 else hi
    return Passage(f"{document.id}@{lo}", document.id, document.text[lo:hi], lo, hi)


def _named(question: str, document: Document) -> int:
    """How many of the article's outlet, publisher and author the question names ("the Afghanistan Today story")."""
    asked = question.casefold()
    return sum(1 for value in (document.outlet, document.publisher, document.author)
               if value and value.casefold() in asked)


def answer(name: str, hits: Sequence[Hit], question: str = "") -> tuple[Hit, int, int, float] | None:
    """The answer to a question about field ``name`` as (a hit of the paragraph that states it, the answer's
    start and end in that paragraph, confidence), or None when the article retrieval points to does not state it."""
    weight: dict[str, float] = {}
    documents = {}
    for hit in hits:
        weight[hit.document.id] = weight.get(hit.document.id, 0.0) + 1.0 / hit.rank
        documents[hit.document.id] = hit.document
    if not weight:
        return None
    doc_id = max(weight, key=lambda d: (_named(question, documents[d]), weight[d]))
    document = documents[doc_id]
    span = locate(document, name)
    if span is None:
        return None
    passage = paragraph(document, *span)
    rank = min(h.rank for h in hits if h.document.id == doc_id)
    hit = Hit(passage=passage, document=document, score=weight[doc_id], rank=rank)
    rivals = [d for d in weight if _named(question, documents[d]) == _named(question, document)]
    return hit, span[0] - passage.start, span[1] - passage.start, weight[doc_id] / sum(weight[d] for d in rivals)
