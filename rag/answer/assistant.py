"""The question-answering pipeline: retrieve passages, read them, answer with numbered citations."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Literal

from rag.answer import about_articles, definitions, evidence
from rag.answer.conversation import read_question
from rag.answer.verifier import Verifier, features, relative_scores, same_answer
from rag.read.normalize import normalize_answer
from rag.read.reader import Reader
from rag.search.retriever import Retriever
from rag.settings import DEFAULT_K, DEFAULT_MODE, Mode, check_positive_int
from rag.types import Alternative, Answer, Citation, CitedPassage, Filters, Hit, Reading, Response, Turn

MAX_ALTERNATIVES = 2  # other answers shown beside one of low confidence
NEAR_TIE = 0.25  # margins (logits) within which two answers tie; see choose_answer
# How often the full name spelled out as "Long Form (X)" was the right answer to "What does X
# stand for?" (57 of 61, ``python -m eval.definitions``); shown as its confidence.
DEFINITION_CONFIDENCE = 0.93


class Assistant:
    """Answers questions from an index of articles, citing the passages it used.

    Args:
        retriever: finds the passages.
        reader: extracts the answer; the shipped reader by default.
        k: passages retrieved and read per question.
        spans_per_question: candidate answers the reader returns before they are merged.
        verifier: decides whether to answer and how sure to say it is
            (``rag.answer.verifier``); by default the one trained for the reader, saved beside
            it; None leaves the decision to the reader's margin threshold, as does a dense or
            BM25 search alone (the verifier learnt from hybrid hits).
        abstain: with a verifier, abstain below its lowest level; False answers every question
            that has a candidate (at level "low"), as risk-coverage measurement needs.
    """

    def __init__(self, retriever: Retriever, reader: Reader | None = None, k: int = DEFAULT_K,
                 spans_per_question: int = 10, verifier: Verifier | None | Literal["beside"] = "beside",
                 abstain: bool = True) -> None:
        self.retriever = retriever
        self.reader = reader if reader is not None else Reader()
        self.k = check_positive_int("k", k)
        self.spans_per_question = check_positive_int("spans_per_question", spans_per_question)
        self.verifier = Verifier.beside(self.reader.model_name) if verifier == "beside" else verifier
        self.abstain = abstain

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
            ``answer`` is None when the verifier puts the best candidate below its lowest
            level (without a verifier: when no span clears the reader's threshold); the
            citations are then the closest passages.
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
        spelled = [_spelled_out(q, hs) if field is None else None for q, hs, field in zip(questions, hits, fields)]
        # the others are about the articles, or ask what an acronym the passages spell out stands for
        to_read = [i for i, name in enumerate(fields) if name is None and spelled[i] is None]
        readings = dict(zip(to_read, self.reader.read_batch([questions[i] for i in to_read],
                                                            [[h.passage for h in hits[i]] for i in to_read],
                                                            top_k=self.spans_per_question)))
        n = max(1, len(questions))
        share = {"retrieve": retrieve_seconds / n, "read": (time.perf_counter() - started) / n}
        timings = {**share, "total": share["retrieve"] + share["read"]}
        responses = []
        for i, (q, hs) in enumerate(zip(questions, hits)):
            field, definition = fields[i], spelled[i]
            if field is not None:
                responses.append(_respond_about(q, list(hs), field, dict(timings)))
            elif definition is not None:
                level = self.verifier.level(DEFINITION_CONFIDENCE) if self.verifier is not None else None
                responses.append(_respond_cited(q, list(hs), *definition, DEFINITION_CONFIDENCE, dict(timings),
                                                level or ""))
            else:
                responses.append(self._respond(q, list(hs), readings[i], dict(timings)))
        return responses

    def _respond(self, question: str, hits: list[Hit], reading: Reading, timings: dict[str, float]) -> Response:
        # The verifier learnt from hybrid hits, which carry both searches' scores; after one search alone
        # (dense or BM25 mode) half its retrieval features are missing, and the margin decides instead.
        hybrid = any(h.dense_score is not None and h.bm25_score is not None for h in hits)
        verifier = self.verifier if hybrid else None
        if not reading.answers or (verifier is None and reading.decision == "abstain"):
            return Response(question, None, reading.no_answer.confidence, _cite(hits, None, {}), (), timings,
                            margin=reading.answers[0].score if reading.answers else None)
        rank = {h.passage.id: h.rank for h in hits}
        if verifier is None:
            best, support = choose_answer(reading, rank, self.reader.threshold)
            confidence, level = best[0].confidence, None
        else:
            best, support = choose_answer(reading, rank, -math.inf, relative_scores(hits), verifier.retrieval_weight)
            confidence = verifier.probability(features(question, best, support, hits))
            level = verifier.level(confidence)
        # An answer the passages rule out is not given, nor another in its place: the reader found them
        # answering with it. (Without abstaining, as risk-coverage asks, it is given at confidence 0.)
        ruled_out = contradicted(question, best, hits) or ""
        if (ruled_out or (verifier is not None and level is None)) and (self.abstain or verifier is None):
            return Response(question, None, 1.0 - confidence, _cite(hits, None, {}), (), timings,
                            margin=best[0].score, ruled_out=ruled_out)
        if ruled_out:
            confidence, level = 0.0, None
        found: dict[str, Answer] = {}
        for answer in best:  # best first: each passage is cited with its own best span of the answer
            found.setdefault(answer.passage_id, answer)
        citations = _cite(hits, best[0], found)
        article = {p.hit.passage.id: c.number for c in citations for p in c.passages}
        shown = [best]
        for group in support:  # other answers, not the same one with other boundaries
            if len(shown) > MAX_ALTERNATIVES:
                break
            if group[0].passage_id in article and not any(same_answer(group, other) for other in shown) \
                    and contradicted(question, group, hits) is None:
                shown.append(group)
        alternatives = tuple(Alternative(g[0].text, self._confidence(verifier, question, g, support, hits),
                                         article[g[0].passage_id], g[0].passage_id, g[0].start, g[0].end)
                             for g in shown[1:])
        return Response(question, best[0].text, confidence, citations, alternatives, timings,
                        level=(level or "low") if verifier is not None else "", margin=best[0].score,
                        ruled_out=ruled_out)

    @staticmethod
    def _confidence(verifier: Verifier | None, question: str, group: list[Answer], groups: list[list[Answer]],
                    hits: list[Hit]) -> float:
        """An answer's confidence: the verifier's probability, or without one the reader's calibrated margin."""
        if verifier is None:
            return group[0].confidence
        return verifier.probability(features(question, group, groups, hits))


def contradicted(question: str, group: Sequence[Answer], hits: Sequence[Hit]) -> str | None:
    """Why the passages read rule out an answer (any of its spans; ``rag.answer.evidence.contradiction``:
    a year question answered without a year, the governor of Balkh given as the governor of Kunduz), or None."""
    texts = {h.passage.id: h.passage.text for h in hits}
    return next((why for a in group if a.passage_id in texts
                 for why in [evidence.contradiction(question, texts[a.passage_id], a.start, a.end,
                                                    [t for i, t in texts.items() if i != a.passage_id])]
                 if why is not None), None)


def choose_answer(reading: Reading, rank: dict[str, int], threshold: float,
                  retrieval: dict[str, float] | None = None,
                  retrieval_weight: float = 0.0) -> tuple[list[Answer], list[list[Answer]]]:
    """The answer to give, from a reading with at least one span: its spans, best first, and every
    distinct answer (spans grouped by normalised text), best first.

    Each span scores its margin plus ``retrieval_weight`` times its passage's retrieval score
    (BERTserini's linear mix of reader and retriever scores; ``rag.training.verifier`` chooses
    the weight on held-out data), so that a span in a weakly retrieved passage needs a clearly
    better margin to beat one in the best passage. The best span wins. Answers within
    :data:`NEAR_TIE` of it tie, and the tie goes to the answer more passages hold, then to the
    better-ranked passage: a choice that bf16 rounding (which moves a margin by less than 0.1)
    cannot flip. Choosing by summed support instead rewards fragments that recur
    (``docs/reader.md`` has the measurement).

    Args:
        reading: the reader's result for one question.
        rank: each read passage's retrieval rank, by passage id.
        threshold: spans whose margin is below it are never chosen (unless none clears it).
        retrieval: each read passage's retrieval score over the best one's (in [0, 1]), by passage id.
        retrieval_weight: the weight of that score, in margin units.
    """
    retrieval = retrieval or {}

    def fused(answer: Answer) -> float:
        return answer.score + retrieval_weight * retrieval.get(answer.passage_id, 0.0)

    groups: dict[str, list[Answer]] = {}
    for answer in sorted(reading.answers, key=lambda a: -fused(a)):
        groups.setdefault(normalize_answer(answer.text) or answer.text, []).append(answer)
    support = sorted(groups.values(), key=lambda g: -fused(g[0]))
    cleared = [g for g in support if g[0].score >= threshold] or support
    near = [g for g in cleared if fused(g[0]) >= fused(cleared[0][0]) - NEAR_TIE]
    best = max(near, key=lambda g: (len({a.passage_id for a in g}), -min(rank.get(a.passage_id, 0) for a in g),
                                    fused(g[0])))
    return best, support


def _respond_about(question: str, hits: list[Hit], name: str, timings: dict[str, float]) -> Response:
    """A question about the articles themselves (``rag.answer.about_articles``): the field, its paragraph
    cited first."""
    found = about_articles.answer(name, hits, question)
    if found is None:
        return Response(question, None, 1.0, _cite(hits, None, {}), (), timings)
    return _respond_cited(question, hits, *found, timings)


def _spelled_out(question: str, hits: Sequence[Hit]) -> tuple[Hit, int, int] | None:
    """Where a passage spells out the acronym the question asks about (``rag.answer.definitions``), or None."""
    acronym = definitions.asked_acronym(question)
    return definitions.find(acronym, hits) if acronym is not None else None


def _respond_cited(question: str, hits: list[Hit], hit: Hit, start: int, end: int, confidence: float,
                   timings: dict[str, float], level: str = "") -> Response:
    """An answer found by rule at ``hit.passage.text[start:end]``: that passage cited first."""
    cited = CitedPassage(hit, start, end)
    citations = _cite([h for h in hits if h.document.id != hit.document.id or h.passage.id != hit.passage.id],
                      None, {})
    own = next((c for c in citations if c.document.id == hit.document.id), None)
    first = Citation(1, hit.document, (cited, *(own.passages if own else ())))
    rest = tuple(Citation(n, c.document, c.passages)
                 for n, c in enumerate((c for c in citations if c.document.id != hit.document.id), 2))
    return Response(question, hit.passage.text[start:end], confidence, (first, *rest), (), timings, level=level)


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
