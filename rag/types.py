"""The frozen records that carry data from ingestion to the UI.

Offsets are always character offsets: ``document.text[passage.start:passage.end] ==
passage.text``, and an answer's ``doc_start``/``doc_end`` point into the document, so a
citation can always be found and highlighted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Document:
    """One cleaned article. ``id`` is a hash of ``text``: the same article always gets the same id."""

    id: str
    title: str
    text: str
    source: str
    author: str | None = None
    date: str | None = None
    url: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


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


@dataclass(frozen=True)
class Hit:
    """A retrieved passage with its document, its score under the retrieval mode, and its 1-based rank."""

    passage: Passage
    document: Document
    score: float
    rank: int

    def to_dict(self) -> dict:
        """The JSON shape of ``rag search --json``: the passage with its document's metadata."""
        d = self.document
        return {"rank": self.rank, "score": self.score, "doc_id": d.id, "passage_id": self.passage.id,
                "title": d.title, "source": d.source, "author": d.author, "date": d.date, "url": d.url,
                "passage": self.passage.text, "start": self.passage.start, "end": self.passage.end}


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
class Citation:
    """A numbered source of a response: a retrieved hit and, where it holds the answer, where.

    ``answer_start``/``answer_end`` index ``hit.passage.text``; both are None when the
    passage does not hold the answer.
    """

    number: int
    hit: Hit
    answer_start: int | None = None
    answer_end: int | None = None

    def to_dict(self) -> dict:
        return {"number": self.number, **self.hit.to_dict(),
                "answer_start": self.answer_start, "answer_end": self.answer_end}


@dataclass(frozen=True)
class Response:
    """What ``Assistant.ask`` returns: ``answer`` is None when nothing cleared the threshold.

    ``confidence`` is the calibrated probability that the answer is right, or, with no
    answer, that no passage held one. ``timings`` are seconds per question for the stages
    ``retrieve``, ``read`` and ``total``; in a batch, the batch's time divided among its questions.
    The retrieved hits are the citations' hits, in citation order.
    """

    question: str
    answer: str | None
    confidence: float
    citations: tuple[Citation, ...]
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The JSON shape of ``rag ask --json``: plain text, never HTML."""
        return {
            "question": self.question,
            "answer": self.answer,
            "confidence": round(self.confidence, 4),
            "citations": [c.to_dict() for c in self.citations],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }
