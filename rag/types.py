"""The frozen records that carry data from ingestion to the UI.

Offsets are always character offsets: ``document.text[passage.start:passage.end] ==
passage.text``, and an answer's ``doc_start``/``doc_end`` point into the document, so a
citation can always be found and highlighted.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import date
from pathlib import PurePosixPath
from typing import Literal

from rag.errors import InvalidInputError
from rag.source_map import to_source

Copy = tuple[str, "str | None", "str | None"]  # (source, outlet, url) of a near-duplicate stored as one document
# An article's head: its first lines (paragraphs of the cleaned text), which hold the headline,
# byline, dateline and masthead. Ingestion reads metadata there; answers about an article cite it there.
HEAD_LINES = 12


@dataclass(frozen=True)
class Document:
    """One cleaned article. ``id`` is a hash of ``text``: the same article always gets the same id.

    ``source_map`` leads from ``text`` back to the file it was read from (``rag.source_map``);
    ``pages`` are the offsets in that source where each page of a PDF begins; ``copies`` are
    the other places the same story was found (another outlet's wire copy, say), each
    ``(source, outlet, url)``, kept when near-duplicates are stored once.
    """

    id: str
    title: str
    text: str
    source: str
    author: str | None = None
    date: str | None = None  # ISO 8601
    url: str | None = None
    outlet: str | None = None  # the publication or site
    publisher: str | None = None  # the organisation behind it, as a masthead names it
    crawled: str | None = None  # when a web archive fetched it, ISO 8601
    source_map: tuple[int, ...] = ()
    pages: tuple[int, ...] = ()
    copies: tuple[Copy, ...] = ()

    def __post_init__(self) -> None:  # lists, as JSON and Arrow give them back, become tuples
        for name in ("source_map", "pages"):
            if not isinstance(getattr(self, name), tuple):
                object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        if not isinstance(self.copies, tuple) or any(not isinstance(c, tuple) for c in self.copies):
            object.__setattr__(self, "copies", tuple(tuple(c) for c in self.copies))

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> dict:
        """The article as the API and ``--json`` show it: its metadata and its file's name, never a path
        on the machine that indexed it."""
        return {"doc_id": self.id, "title": self.title, "outlet": self.outlet, "publisher": self.publisher,
                "author": self.author, "date": self.date, "url": self.url, "file_name": file_name(self.source),
                "copies": [{"file_name": file_name(source), "outlet": outlet, "url": url}
                           for source, outlet, url in self.copies]}

    def authors(self) -> list[str]:
        """The byline's names: "A and B" or "A, B" name two authors."""
        if not self.author:
            return []
        return [a.strip() for part in self.author.split(" and ") for a in part.split(",") if a.strip()]

    def to_record(self) -> dict[str, str | None]:
        """Every field as text or None (the tuples as JSON): a row for SQLite or Arrow."""
        return {f.name: json.dumps(getattr(self, f.name), separators=(",", ":")) if f.name in _JSON_FIELDS
                else getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_record(cls, record: dict) -> Document:
        """The inverse of :meth:`to_record`; a field missing from ``record`` takes its default."""
        return cls(**{name: json.loads(value) if name in _JSON_FIELDS and isinstance(value, str) else value
                      for name, value in record.items() if value is not None or name not in _JSON_FIELDS})


DOCUMENT_FIELDS = tuple(f.name for f in fields(Document))
_JSON_FIELDS = ("source_map", "pages", "copies")


@dataclass(frozen=True)
class Passage:
    """A span of a document: ``text == document.text[start:end]``."""

    id: str
    doc_id: str
    text: str
    start: int
    end: int

    def to_dict(self) -> dict:
        return asdict(self)


def file_name(source: str) -> str:
    """The file name in a source (a path, on any system, or ``feed.jsonl:3``), without its folders."""
    return PurePosixPath(source.replace("\\", "/")).name


def parse_date(value: str | date | None, what: str) -> date | None:
    """A date written ``YYYY-MM-DD`` (or a ``date``, or None) as a ``date``; ``what`` names it in the error.

    Raises:
        InvalidInputError: it is not such a date.
    """
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

    Plain data: each index turns it into its own form (a mask over rows, a Qdrant filter, SQL)
    and applies it inside retrieval, so a filtered query still gets ``k`` hits when ``k``
    passages pass.

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
        object.__setattr__(self, "since", parse_date(self.since, "since"))
        object.__setattr__(self, "until", parse_date(self.until, "until"))
        for name in ("sources", "authors", "doc_ids"):
            object.__setattr__(self, name, _names(getattr(self, name), name))
        if self.since and self.until and self.since > self.until:
            raise InvalidInputError(f"since ({self.since}) is after until ({self.until})")

    def __bool__(self) -> bool:
        return any((self.since, self.until, self.sources, self.authors, self.doc_ids))


@dataclass(frozen=True)
class Hit:
    """A retrieved passage with its document, its score under the retrieval mode, and its 1-based rank.

    ``dense_score`` (cosine similarity to the question) and ``bm25_score`` are the scores of
    each search the retriever ran, None where that search did not run or did not rank the
    passage among its candidates; the answer verifier reads them (``rag.answer.verifier``).
    """

    passage: Passage
    document: Document
    score: float
    rank: int
    dense_score: float | None = None
    bm25_score: float | None = None

    @classmethod
    def with_parts(cls, passage: Passage, document: Document, score: float, rank: int, row: int,
                   parts: Mapping[str, Mapping[int, float]] | None) -> Hit:
        """A hit whose part scores are looked up by its ``row`` in ``parts`` (see ``Index.hits``)."""
        parts = parts or {}
        return cls(passage, document, score, rank, parts.get("dense", {}).get(row), parts.get("bm25", {}).get(row))

    def to_dict(self) -> dict:
        """The JSON shape of a search hit (``rag search --json``, ``/api/search``): its document and its
        passage, in the shapes a citation gives them."""
        return {"document": self.document.describe(), "passage": CitedPassage(self).to_dict()}


@dataclass(frozen=True)
class Answer:
    """An extracted span. ``start``/``end`` index the passage, ``doc_start``/``doc_end`` the document.

    ``score`` is the span's logit sum minus the no-answer logit sum of the same window, so it is
    comparable across passages; ``confidence`` maps it to a probability of being right.
    """

    text: str
    score: float
    confidence: float
    passage_id: str
    doc_id: str
    start: int
    end: int
    doc_start: int
    doc_end: int


@dataclass(frozen=True)
class NoAnswer:
    """The reader's explicit "the passages do not answer this".

    ``score`` is how far the best span fell short of the no-answer threshold (margin units);
    ``confidence`` is the calibrated probability that no span given is right.
    """

    score: float
    confidence: float


@dataclass(frozen=True)
class Reading:
    """What the reader made of one question's passages.

    ``answers`` are the distinct spans found, best first, whether or not they clear the
    threshold. ``decision`` is "answer" when the best of them clears it, else "abstain" (also
    when there was nothing to read); ``no_answer`` says how sure an abstention is.
    """

    answers: tuple[Answer, ...]
    no_answer: NoAnswer
    decision: Literal["answer", "abstain"]

    @property
    def answer(self) -> Answer | None:
        """The span to show, or None when the reader abstains."""
        return self.answers[0] if self.decision == "answer" else None


@dataclass(frozen=True)
class CitedPassage:
    """A retrieved passage as a source; ``answer_start``/``answer_end`` index its text where it holds the answer."""

    hit: Hit
    answer_start: int | None = None
    answer_end: int | None = None

    def source_span(self) -> tuple[int, int] | None:
        """Where the answer (or, in a passage without it, the passage) is in the article's source
        (``rag.source_map``); None for a document read without a map."""
        p = self.hit.passage
        if self.answer_start is None or self.answer_end is None:
            return to_source(self.hit.document.source_map, p.start, p.end)
        return to_source(self.hit.document.source_map, p.start + self.answer_start, p.start + self.answer_end)

    def page(self) -> int | None:
        """The page (from 1) of a PDF that :meth:`source_span` begins on; None for other sources."""
        span = self.source_span()
        pages = self.hit.document.pages
        return bisect.bisect_right(pages, span[0]) if pages and span else None

    def to_dict(self) -> dict:
        p = self.hit.passage
        span = self.source_span()
        return {"passage_id": p.id, "rank": self.hit.rank, "score": self.hit.score, "text": p.text,
                "start": p.start, "end": p.end, "answer_start": self.answer_start, "answer_end": self.answer_end,
                "source_start": span[0] if span else None, "source_end": span[1] if span else None,
                "page": self.page()}


@dataclass(frozen=True)
class Citation:
    """One numbered source article of a response, with the retrieved passages of it that were read.

    Articles are numbered once each: the one holding the answer first, then in rank order.
    """

    number: int
    document: Document
    passages: tuple[CitedPassage, ...]

    @property
    def holds_answer(self) -> bool:
        return any(p.answer_start is not None for p in self.passages)

    def to_dict(self) -> dict:
        return {"number": self.number, "document": self.document.describe(),
                "passages": [p.to_dict() for p in self.passages]}


@dataclass(frozen=True)
class Alternative:
    """Another answer the reader found, shown beside an answer of low confidence."""

    answer: str
    confidence: float
    citation: int  # the number of the article it comes from
    passage_id: str
    start: int  # offsets into that passage's text
    end: int


@dataclass(frozen=True)
class Turn:
    """An earlier turn of a conversation: the question as the user asked it, and the answer given
    (None when there was none)."""

    question: str
    answer: str | None = None


@dataclass(frozen=True)
class Response:
    """What ``Assistant.ask`` returns: ``answer`` is None when nothing cleared the threshold.

    ``question`` is the question as asked; ``question_as_read`` the one searched and read,
    rewritten from the conversation when it leaned on earlier turns ("Who leads it?"), else
    the same.

    ``confidence`` is the calibrated probability that the answer is right, or, with no
    answer, that no passage held one; ``level`` puts it in words: "high", "medium" or "low",
    on the answer verifier's held-out cut-offs (``rag.answer.verifier``), or, without one, on
    ``rag.settings.CONFIDENCE_LEVELS``. ``margin`` is the reader's margin of the best span
    (None when nothing was read), kept to measure the verifier against it.
    ``alternatives`` are the next best distinct answers, each from a cited article.
    ``ruled_out`` says why the passages rule out the answer the reader found
    (``rag.answer.evidence.contradiction``), when they do; the assistant then abstains (told
    not to abstain, it gives that answer at confidence 0).
    ``timings`` are seconds per question for the stages ``retrieve``, ``read`` and
    ``total``; in a batch, the batch's time divided among its questions.
    """

    question: str
    answer: str | None
    confidence: float
    citations: tuple[Citation, ...]
    alternatives: tuple[Alternative, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
    question_as_read: str = ""
    level: str = ""
    margin: float | None = None
    ruled_out: str = ""

    def __post_init__(self) -> None:
        if not self.question_as_read:
            object.__setattr__(self, "question_as_read", self.question)
        if not self.level:
            from rag.settings import confidence_level

            object.__setattr__(self, "level", confidence_level(self.confidence))

    def to_dict(self) -> dict:
        """The JSON shape of ``rag ask --json`` and ``POST /api/ask``: plain text, never HTML.
        ``answer_confidence`` is the chance the answer is right (null with no answer);
        ``no_answer_confidence`` the chance the articles hold none (null with an answer); ``level``
        puts whichever is given in words; ``ruled_out`` why the passages rule out the answer the
        reader found (null when they do not)."""
        answered = self.answer is not None
        return {
            "question": self.question,
            "question_as_read": self.question_as_read,
            "answer": self.answer,
            "answer_confidence": round(self.confidence, 4) if answered else None,
            "no_answer_confidence": None if answered else round(self.confidence, 4),
            "level": self.level,
            "ruled_out": self.ruled_out or None,
            "alternatives": [{"answer": a.answer, "answer_confidence": round(a.confidence, 4),
                              "citation": a.citation} for a in self.alternatives],
            "citations": [c.to_dict() for c in self.citations],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }
