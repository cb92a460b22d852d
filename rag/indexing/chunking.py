"""Split documents into sentence-aware passages that keep exact character offsets.

Sentences never cross a paragraph break. A passage gathers whole sentences until the
next one would pass ``max_tokens`` (counted with the embedder's own tokenizer), and
the next passage repeats the last ``overlap_sentences`` sentences of the one before,
so an answer near a boundary is whole in at least one passage. A single sentence
longer than ``max_tokens`` is cut at word boundaries, never dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from rag.settings import ChunkSettings
from rag.types import Document, Passage

TokenCounter = Callable[[Sequence[str]], list[int]]
_PARAGRAPH = re.compile(r"[^\n]+(?:\n[^\n]+)*")  # runs of non-empty lines
_WORDS = re.compile(r"\S+")


def whitespace_token_counter(texts: Sequence[str]) -> list[int]:
    """Counts words; a stand-in for a real tokenizer where none is loaded."""
    return [len(t.split()) for t in texts]


class Chunker:
    """Cuts documents into passages.

    Args:
        settings: passage length and overlap.
        count_tokens: maps texts to token counts; use the embedder's tokenizer so that
            ``max_tokens`` means what the embedder sees.
    """

    def __init__(self, settings: ChunkSettings | None = None, count_tokens: TokenCounter | None = None) -> None:
        self.settings = settings if settings is not None else ChunkSettings()
        self.count_tokens = count_tokens if count_tokens is not None else whitespace_token_counter

    def sentence_spans(self, text: str) -> list[tuple[int, int]]:
        """(start, end) of each sentence, whitespace trimmed, in order, never crossing a paragraph.

        Sentences are found by BlingFire's finite-state sentence breaker, which gives their
        character offsets. It is much faster than pysbd, used before, agrees with it on most
        boundaries, and splits after a closing quote or bracket, where pysbd did not ("... two
        generals. They"); ``docs/results.md`` has the comparison.
        """
        from blingfire import text_to_sentences_and_offsets

        spans = []

        def add(start: int, end: int) -> None:
            piece = text[start:end]
            if piece.strip():
                lead = len(piece) - len(piece.lstrip())
                spans.append((start + lead, start + len(piece.rstrip())))

        for para in _PARAGRAPH.finditer(text):
            base, cursor = para.start(), para.start()
            for start, end in text_to_sentences_and_offsets(para.group())[1]:
                add(cursor, base + start)  # anything the breaker skipped, kept as its own unit
                add(base + start, base + end)
                cursor = base + end
            add(cursor, para.end())
        return spans

    def _split_long(self, text: str, start: int, end: int, tokens: int) -> list[tuple[int, int]]:
        """Cut one over-long sentence into word-aligned pieces of about ``max_tokens``."""
        words = [(m.start() + start, m.end() + start) for m in _WORDS.finditer(text[start:end])]
        pieces = max(2, -(-tokens // self.settings.max_tokens))
        per_piece = -(-len(words) // pieces)
        return [(words[i][0], words[min(i + per_piece, len(words)) - 1][1])
                for i in range(0, len(words), per_piece)]

    def chunk(self, doc: Document) -> list[Passage]:
        """Cut one document into passages, in document order.

        Returns:
            Passages with ids ``{doc.id}-{n}`` and ``doc.text[p.start:p.end] == p.text``.
        """
        spans = self.sentence_spans(doc.text)
        counts = self.count_tokens([doc.text[s:e] for s, e in spans]) if spans else []
        units: list[tuple[int, int, int]] = []
        for (s, e), n in zip(spans, counts):
            if n > self.settings.max_tokens and len(doc.text[s:e].split()) > 1:
                pieces = self._split_long(doc.text, s, e, n)
                units += [(ps, pe, n) for (ps, pe), n in
                          zip(pieces, self.count_tokens([doc.text[ps:pe] for ps, pe in pieces]))]
            else:
                units.append((s, e, n))

        groups: list[tuple[int, int]] = []  # [first, last) unit index of each passage
        first = 0
        while first < len(units):
            last, total = first, 0
            while last < len(units) and (last == first or total + units[last][2] <= self.settings.max_tokens):
                total += units[last][2]
                last += 1
            groups.append((first, last))
            if last == len(units):
                break
            # Overlap, but always move forward: a passage never starts where the last one did.
            first = max(first + 1, last - self.settings.overlap_sentences)

        return [
            Passage(id=f"{doc.id}-{n}", doc_id=doc.id, text=doc.text[units[a][0]:units[b - 1][1]],
                    start=units[a][0], end=units[b - 1][1])
            for n, (a, b) in enumerate(groups)
        ]

    def chunk_all(self, docs: Sequence[Document], progress: bool = False) -> list[Passage]:
        """Passages of every document, in order; ``progress`` shows a bar over the documents."""
        from tqdm.auto import tqdm

        return [p for doc in tqdm(docs, desc="chunking", unit="doc", disable=not progress or len(docs) < 2)
                for p in self.chunk(doc)]
