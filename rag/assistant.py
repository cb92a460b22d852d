"""The question-answering pipeline: retrieve passages, read them, answer with numbered citations."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from rag.normalize import normalize_answer
from rag.reader import Reader
from rag.retriever import Mode, Retriever
from rag.settings import DEFAULT_K, DEFAULT_MODE, check_positive_int
from rag.types import Answer, Citation, Hit, NoAnswer, Response


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
        """An assistant over the index saved in ``index_dir``; ``reader`` is a Reader, a model path or name."""
        return cls(Retriever.load(index_dir, mode=mode), _reader(reader), **settings)

    def ask(self, question: str, k: int | None = None, mode: Mode | None = None) -> Response:
        """Answer one question; see :meth:`ask_batch`."""
        return self.ask_batch([question], k, mode)[0]

    def ask_batch(self, questions: Sequence[str], k: int | None = None, mode: Mode | None = None) -> list[Response]:
        """Answer questions, retrieving and reading them in batches.

        Args:
            questions: non-empty questions.
            k: passages to read per question; the assistant's ``k`` if None.
            mode: retrieval mode for this call; the retriever's if None.

        Returns:
            One :class:`Response` per question. ``answer`` is None when no span clears the
            reader's threshold; the citations are then the closest passages.
        """
        k = self.k if k is None else check_positive_int("k", k)
        started = time.perf_counter()
        hits = self.retriever.search_batch(questions, k, mode)
        retrieved = time.perf_counter()
        readings = self.reader.read_batch(questions, [[h.passage for h in hs] for hs in hits],
                                          top_k=self.spans_per_question)
        read = time.perf_counter()
        share = {"retrieve": (retrieved - started) / max(1, len(questions)),
                 "read": (read - retrieved) / max(1, len(questions))}
        return [self._respond(q, hs, reading, {**share, "total": share["retrieve"] + share["read"]})
                for q, hs, reading in zip(questions, hits, readings)]

    def _respond(self, question: str, hits: list[Hit], reading: list[Answer | NoAnswer],
                 timings: dict[str, float]) -> Response:
        if isinstance(reading[0], NoAnswer):  # also when there were no passages to read
            return Response(question, None, reading[0].confidence, _cite(hits, None, {}), timings)
        threshold = self.reader.threshold
        groups: dict[str, list[Answer]] = {}
        for answer in reading:
            if isinstance(answer, Answer):
                groups.setdefault(normalize_answer(answer.text) or answer.text, []).append(answer)
        # The best supported answer wins: among answers that clear the threshold, the one
        # whose spans across passages add up to the most confidence.
        eligible = [g for g in groups.values() if g[0].score >= threshold]
        best = max(eligible, key=lambda g: (sum(a.confidence for a in g), g[0].confidence))
        found: dict[str, Answer] = {}
        for answer in best:  # best first: each passage is cited with its own best span of the answer
            found.setdefault(answer.passage_id, answer)
        return Response(question, best[0].text, best[0].confidence, _cite(hits, best[0], found), timings)


def _reader(reader: Reader | str | Path | None) -> Reader:
    return reader if isinstance(reader, Reader) else Reader(reader)


def _cite(hits: list[Hit], answer: Answer | None, found: dict[str, Answer]) -> tuple[Citation, ...]:
    """Numbered citations: the answer's own passage first, then the other hits in rank order."""
    ordered = sorted(hits, key=lambda h: (answer is None or h.passage.id != answer.passage_id, h.rank))
    spans = [found.get(hit.passage.id) for hit in ordered]
    return tuple(Citation(number, hit, span.start if span else None, span.end if span else None)
                 for number, (hit, span) in enumerate(zip(ordered, spans), 1))
