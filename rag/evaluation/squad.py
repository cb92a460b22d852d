"""Read SQuAD v1.1/v2.0 JSON into typed questions.

Used by reader training, reader calibration, ``rag eval --squad`` and the SQuAD
benchmark, so every consumer sees the same questions in the same order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rag.errors import RagError


@dataclass(frozen=True)
class SquadQuestion:
    """One question over one paragraph; ``answers`` is empty for a no-answer question."""

    id: str
    question: str
    context: str
    answers: tuple[str, ...]
    answer_starts: tuple[int, ...]
    title: str
    source: str


def load_squad(path: str | Path) -> list[SquadQuestion]:
    """Read every question of a SQuAD-format JSON file.

    Args:
        path: a SQuAD v1.1 or v2.0 JSON file.

    Returns:
        The questions in file order; v2.0 impossible questions have no answers.

    Raises:
        RagError: the file is missing or is not SQuAD JSON.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
    except FileNotFoundError as e:
        raise RagError(f"SQuAD file not found: {path}") from e
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise RagError(f"not a SQuAD JSON file (expected {{'data': [...]}}): {path}") from e
    questions = []
    for article_no, article in enumerate(data):
        title = article.get("title") or f"{path.stem} article {article_no}"
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            for qa in paragraph["qas"]:
                answers = [] if qa.get("is_impossible") else qa.get("answers", [])
                questions.append(
                    SquadQuestion(
                        id=str(qa["id"]),
                        question=qa["question"],
                        context=context,
                        answers=tuple(a["text"] for a in answers),
                        answer_starts=tuple(int(a["answer_start"]) for a in answers),
                        title=title,
                        source=path.stem,
                    )
                )
    return questions
