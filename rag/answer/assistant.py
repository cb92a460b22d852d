"""The question-answering pipeline: retrieve passages, read them, answer with numbered citations."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from rag.answer import about_articles
from rag.answer.conversation import read_question
from rag.read.normalize import normalize_answer
from rag.read.reader import Reader
from rag.search.retriever import Retriever
from rag.settings import DEFAULT_K, DEFAULT_MODE, Mode, check_positive_int
from rag.types import Alternative, Answer, Citation, CitedPassage, Filters, Hit, Reading, Response, Turn

MAX_ALTERNATIVES = 2  # other answers shown beside one of low confidence
NEAR_TIE = 0.25  # margins (logits) within which two answers tie; see choose_answer


class Assistant:
    """Answers questions from an index of articles, citing the passages it used.

    Args:
        retriever: finds the passages.
        reader: extracts the answer; the shipped reader by default.
        k: passages retrieved and read per question.
        spans_per_question: candidate answers the reader returns before they are merged.
    """

    def __init__(self, retriever: Retriever, reader: Reader | None = None, k: int = DEFAULT_K,
                 spans_per_question: int = 10) -> None:
        self.retriever = retriever
        self.reader = reader if reader is not None else Reader()
        self.k = check_positive_int("k", k)
        self.spans_per_question = check_positive_int("spans_per_question", spans_per_question)

    @classmethod
    def default(cls, reader: Reader | str | Path | None = None, **settings) -> Assistant:
        """An assistant over the bundled sample corpus."""
        return cls(Retriever.default(), _reader(reader), **settings)

    @classmethod
    def load(cls, index_dir: str | Path, reader: Reader | str | Path | None = None, mode: Mode = DEFAULT_MODE,
             **settings) -> Assistant:
        """An assistant over an index folder or a Qdrant collection (``rag.search.retriever.open_index``);
        ``reader`` is a Reader, a model path or name."""
        return cls(Retriever.load(index_dir, mode=mode), _reader(reader), **settings)

    def ask(self, question: str, k: int | None = None, mode: Mode | None = None,
            filters: Filters | None = None, history: Sequence[Turn] = ()) -> Response:
        """Answer one question, after the conversation ``history`` if any; see :meth:`ask_batch`."""
        return self.ask_batch([question], k, mode, filters, histories=[history])[0]

    def ask_batch(self, questions: Sequence[str], k: int | None = None, mode: Mode | None = None,
                  filters: Filters | None = None,
                  histories: Sequence[Sequence[Turn]] | None = None) -> list[Response]:
        """Answer questions, retrieving and reading them in batches.

        Args:
            questions: non-empty questions.
            k: passages to read per question; the assistant's ``k`` if None.
            mode: retrieval mode for this call; the retriever's if None.
            filters: answer only from documents that pass these (dates, outlets, authors, ids).
            histories: for each question, the conversation before it (oldest turn first). A
                question that leans on it ("Who leads it?") is read as one that stands alone
                (``rag.answer.conversation``), and that one is searched and read.

        Returns:
            One :class:`Response` per question, with the question as asked and as read.
            ``answer`` is None when no span clears the reader's threshold; the citations are
            then the closest passages.
        """
        if histories is not None and len(histories) != len(questions):
            raise ValueError(f"{len(histories)} histories for {len(questions)} questions")
        read = [read_question(q, h) for q, h in zip(questions, histories)] if histories else list(questions)
        started = time.perf_counter()
        hits = self.retrieve_batch(read, k, mode, filters)
        responses = self.answer_batch(read, hits, retrieve_seconds=time.perf_counter() - started)
        return [replace(r, question=q, question_as_read=as_read)
                for r, q, as_read in zip(responses, questions, read)]

    def retrieve_batch(self, questions: Sequence[str], k: int | None = None, mode: Mode | None = None,
                       filters: Filters | None = None) -> list[list[Hit]]:
        """The first step of :meth:`ask_batch`: the passages to read for each question."""
        k = self.k if k is None else check_positive_int("k", k)
        return self.retriever.search_batch(questions, k, mode, filters)

    def answer_batch(self, questions: Sequence[str], hits: Sequence[Sequence[Hit]],
                     retrieve_seconds: float = 0.0) -> list[Response]:
        """The second step of :meth:`ask_batch`: read each question's passages and answer it.

        Args:
            questions: the questions.
            hits: for each question, the passages retrieved for it.
            retrieve_seconds: the retrieval time of the batch, for the responses' timings.
        """
        started = time.perf_counter()
        fields = [about_articles.asked_about(q) for q in questions]
        to_read = [i for i, name in enumerate(fields) if name is None]  # the others are about the articles
        readings = dict(zip(to_read, self.reader.read_batch([questions[i] for i in to_read],
                                                            [[h.passage for h in hits[i]] for i in to_read],
                                                            top_k=self.spans_per_question)))
        n = max(1, len(questions))
        share = {"retrieve": retrieve_seconds / n, "read": (time.perf_counter() - started) / n}
        timings = {**share, "total": share["retrieve"] + share["read"]}
        responses = []
        for i, (q, hs) in enumerate(zip(questions, hits)):
            field = fields[i]
            responses.append(self._respond(q, list(hs), readings[i], dict(timings)) if field is None
                             else _respond_about(q, list(hs), field, dict(timings)))
        return responses

    def _respond(self, question: str, hits: list[Hit], reading: Reading, timings: dict[str, float]) -> Response:
        if reading.decision == "abstain":  # also when there were no passages to read
            return Response(question, None, reading.no_answer.confidence, _cite(hits, None, {}), (), timings)
        rank = {h.passage.id: h.rank for h in hits}
        best, support = choose_answer(reading, rank, self.reader.threshold)
        found: dict[str, Answer] = {}
        for answer in best:  # best first: each passage is cited with its own best span of the answer
            found.setdefault(answer.passage_id, answer)
        citations = _cite(hits, best[0], found)
        article = {p.hit.passage.id: c.number for c in citations for p in c.passages}
        shown = [best]
        for group in support:  # other answers, not the same one with other boundaries
            if len(shown) > MAX_ALTERNATIVES:
                break
            if group[0].passage_id in article and not any(_same_answer(group, other) for other in shown):
                shown.append(group)
        alternatives = tuple(Alternative(g[0].text, g[0].confidence, article[g[0].passage_id], g[0].passage_id,
                                         g[0].start, g[0].end) for g in shown[1:])
        return Response(question, best[0].text, best[0].confidence, citations, alternatives, timings)


def choose_answer(reading: Reading, rank: dict[str, int],
                  threshold: float) -> tuple[list[Answer], list[list[Answer]]]:
    """The answer to give, from a reading that decided to answer: its spans, best first, and every
    distinct answer (spans grouped by normalised text), best first.

    The best span wins. Answers within :data:`NEAR_TIE` of it tie, and the tie goes to the
    answer more passages hold, then to the better-ranked passage: a choice that bf16 rounding
    (which moves a margin by less than 0.1) cannot flip. Choosing by summed support instead
    rewards fragments that recur (``docs/reader.md`` has the measurement).

    Args:
        reading: the reader's result for one question, with ``decision == "answer"``.
        rank: each read passage's retrieval rank, by passage id.
        threshold: the reader's threshold; spans below it are never chosen.
    """
    groups: dict[str, list[Answer]] = {}
    for answer in reading.answers:
        groups.setdefault(normalize_answer(answer.text) or answer.text, []).append(answer)
    support = sorted(groups.values(), key=lambda g: -g[0].score)
    cleared = [g for g in support if g[0].score >= threshold]
    near = [g for g in cleared if g[0].score >= cleared[0][0].score - NEAR_TIE]
    best = max(near, key=lambda g: (len({a.passage_id for a in g}), -min(rank.get(a.passage_id, 0) for a in g),
                                    g[0].score))
    return best, support


def _respond_about(question: str, hits: list[Hit], name: str, timings: dict[str, float]) -> Response:
    """A question about the articles themselves (``rag.answer.about_articles``): the field, its paragraph
    cited first."""
    found = about_articles.answer(name, hits, question)
    if found is None:
        return Response(question, None, 1.0, _cite(hits, None, {}), (), timings)
    hit, start, end, confidence = found
    cited = CitedPassage(hit, start, end)
    citations = _cite([h for h in hits if h.document.id != hit.document.id or h.passage.id != hit.passage.id],
                      None, {})
    own = next((c for c in citations if c.document.id == hit.document.id), None)
    first = Citation(1, hit.document, (cited, *(own.passages if own else ())))
    rest = tuple(Citation(n, c.document, c.passages)
                 for n, c in enumerate((c for c in citations if c.document.id != hit.document.id), 2))
    return Response(question, hit.passage.text[start:end], confidence, (first, *rest), (), timings)


def _same_answer(one: list[Answer], other: list[Answer]) -> bool:
    """Whether two groups of spans name the same thing: one's text holds the other's, or their spans overlap."""
    a, b = normalize_answer(one[0].text), normalize_answer(other[0].text)
    return (a in b or b in a) or any(x.passage_id == y.passage_id and x.start < y.end and y.start < x.end
                                     for x in one for y in other)


def _reader(reader: Reader | str | Path | None) -> Reader:
    return reader if isinstance(reader, Reader) else Reader(reader)


def _cite(hits: list[Hit], answer: Answer | None, found: dict[str, Answer]) -> tuple[Citation, ...]:
    """Citations numbered once per article: the answer's article first, then the others in rank order.

    Within an article, the answer's own passage comes first, then the others in rank order;
    each passage carries its own best span of the answer, if it holds one.
    """
    ordered = sorted(hits, key=lambda h: (answer is None or h.passage.id != answer.passage_id, h.rank))
    by_article: dict[str, list[CitedPassage]] = {}
    for hit in ordered:
        span = found.get(hit.passage.id)
        by_article.setdefault(hit.document.id, []).append(
            CitedPassage(hit, span.start if span else None, span.end if span else None))
    documents = {h.document.id: h.document for h in hits}
    return tuple(Citation(number, documents[doc_id], tuple(passages))
                 for number, (doc_id, passages) in enumerate(by_article.items(), 1))
