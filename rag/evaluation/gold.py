"""Gold question sets: the project's JSONL format, or SQuAD JSON turned into a corpus plus questions.

The gold set of the bundled corpus ships with the package, beside the corpus
(``rag/data/gold_bundled.jsonl``), so ``rag eval`` works from any install.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import TypeVar

from rag.errors import RagError
from rag.evaluation.squad import load_squad
from rag.ingest import document_id
from rag.types import Document

Built = TypeVar("Built")

BUNDLED_GOLD = Path(str(files("rag") / "data" / "gold_bundled.jsonl"))


@dataclass(frozen=True)
class GoldQuestion:
    """A question with every acceptable answer span; no answers and ``doc`` None means unanswerable.

    ``doc`` names the source article: a file name, a document title or a document id.
    """

    id: str
    question: str
    answers: tuple[str, ...]
    doc: str | None
    kind: str = "factoid"

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


def parse_jsonl(lines: list[str], path: Path, shape: str, build: Callable[[dict], Built]) -> list[tuple[int, Built]]:
    """Each non-blank line of a gold file, built into a record, with its line number.

    Raises:
        RagError: a line is not JSON, or lacks a field ``build`` needs (the message names the line and ``shape``).
    """
    built = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            built.append((number, build(json.loads(line))))
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise RagError(f"{path}:{number}: expected {shape} ({e})") from e
    return built


def load_gold(path: str | Path) -> list[GoldQuestion]:
    """Read a gold JSONL file: one object per line with id, question, answers, doc (and optional kind).

    Raises:
        RagError: the file is missing or a line is malformed (the message names the line).
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as e:
        hint = " (the bundled gold set ships with the source checkout; pass --gold FILE)" \
            if path == BUNDLED_GOLD else ""
        raise RagError(f"no gold file at {path}{hint}") from e
    except OSError as e:
        raise RagError(f"cannot read gold file {path}: {e.strerror or e}") from e
    gold = []
    for number, item in parse_jsonl(lines, path, "{id, question, answers, doc}", lambda record: GoldQuestion(
            id=str(record["id"]), question=record["question"], answers=tuple(record["answers"]), doc=record["doc"],
            kind=record.get("kind", "factoid" if record["answers"] else "no_answer"))):
        if not item.question.strip() or bool(item.answers) != (item.doc is not None):
            raise RagError(f"{path}:{number}: a question needs text, and answers exactly when it names a doc")
        gold.append(item)
    if not gold:
        raise RagError(f"no questions in {path}")
    return gold


def squad_corpus(path: str | Path) -> tuple[list[Document], list[GoldQuestion]]:
    """SQuAD v1.1/v2.0 JSON as a corpus (one document per paragraph) and its questions as gold."""
    path = Path(path)
    documents: dict[str, Document] = {}
    gold = []
    for q in load_squad(path):
        doc_id = document_id(q.context)
        documents.setdefault(doc_id, Document(id=doc_id, title=q.title, text=q.context,
                                              source=f"{path.name}: {q.title}"))
        gold.append(GoldQuestion(id=q.id, question=q.question, answers=q.answers,
                                 doc=doc_id if q.answers else None, kind="squad" if q.answers else "no_answer"))
    return list(documents.values()), gold


def doc_names(document: Document) -> tuple[str, str, str]:
    """The names a gold ``doc`` may give an article: its id, its title, its file name."""
    return document.id, document.title, Path(document.source).name


def from_doc(document: Document, doc: str | None) -> bool:
    """Whether ``document`` is the gold article named by ``doc`` (file name, title or id)."""
    return doc is not None and doc in doc_names(document)


def holds_answer(text: str, answers: tuple[str, ...]) -> bool:
    """Whether any gold answer appears in ``text`` (case-insensitive), as retrieval top-k accuracy counts it."""
    lowered = text.lower()
    return any(a.lower() in lowered for a in answers)
