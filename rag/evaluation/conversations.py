"""Conversational gold: dialogues whose follow-ups lean on earlier turns, and their scoring.

A dialogue is one JSONL line: ``{"id", "doc", "turns": [{"question", "answers"}, ...]}``,
``doc`` naming the article every turn is answered from. The follow-ups (every turn after
the first) are chosen so that asked alone they cannot be answered ("Who leads it?"). The
bundled set (``rag/data/conversations_bundled.jsonl``) was written on the bundled corpus.

Scoring asks every dialogue in one running conversation, as a chat would: each turn after
the turns before it, each earlier answer the assistant's own. It reports the follow-ups'
EM/F1 read from the conversation, and asked alone (the same question without its history);
and how many first turns, each asked right after the previous dialogue (a new topic), the
rewriting changed: it should change none.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from rag.answer.assistant import Assistant
from rag.errors import RagError
from rag.evaluation.gold import parse_jsonl
from rag.evaluation.metrics import best_over_gold
from rag.types import Turn

BUNDLED_CONVERSATIONS = Path(str(files("rag") / "data" / "conversations_bundled.jsonl"))


@dataclass(frozen=True)
class GoldTurn:
    """One turn: the question as a user would ask it, and every acceptable answer."""

    question: str
    answers: tuple[str, ...]


@dataclass(frozen=True)
class Dialogue:
    """Questions asked in a row about one article (``doc``: its file name, title or id)."""

    id: str
    doc: str
    turns: tuple[GoldTurn, ...]


def _dialogue(record: dict) -> Dialogue:
    turns = tuple(GoldTurn(t["question"], tuple(t["answers"])) for t in record["turns"])
    return Dialogue(str(record["id"]), record["doc"], turns)


def load_dialogues(path: str | Path) -> list[Dialogue]:
    """Read conversational gold JSONL.

    Raises:
        RagError: the file is missing or a line is malformed (the message names the line).
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise RagError(f"cannot read conversational gold {path}: {e.strerror or e}") from e
    dialogues = []
    for number, dialogue in parse_jsonl(lines, path, "{id, doc, turns: [{question, answers}]}", _dialogue):
        if len(dialogue.turns) < 2 or not all(t.question.strip() and t.answers for t in dialogue.turns):
            raise RagError(f"{path}:{number}: a dialogue needs two turns or more, each with a question and answers")
        dialogues.append(dialogue)
    if not dialogues:
        raise RagError(f"no dialogues in {path}")
    return dialogues


def evaluate_conversations(assistant: Assistant, dialogues: list[Dialogue]) -> dict:
    """Follow-up EM/F1 with the conversation and asked alone, and first turns the rewriting changed."""
    history: list[Turn] = []
    records: list[dict[str, Any]] = []
    first_changed: list[dict[str, str]] = []
    first_turns: list[dict[str, Any]] = []
    for dialogue in dialogues:
        for number, turn in enumerate(dialogue.turns):
            response = assistant.ask(turn.question, history=history)
            history.append(Turn(turn.question, response.answer))
            if number == 0:
                first_turns.append({"dialogue": dialogue.id, "question": turn.question, "answer": response.answer,
                                    "em": best_over_gold(response.answer, turn.answers)[0]})
                if response.question_as_read != turn.question:
                    first_changed.append({"dialogue": dialogue.id, "question": turn.question,
                                          "read_as": response.question_as_read})
                continue
            alone = assistant.ask(turn.question)
            em, f1 = best_over_gold(response.answer, turn.answers)
            em_alone, f1_alone = best_over_gold(alone.answer, turn.answers)
            records.append({"dialogue": dialogue.id, "question": turn.question,
                            "read_as": response.question_as_read, "answer": response.answer, "em": em, "f1": f1,
                            "answer_alone": alone.answer, "em_alone": em_alone, "f1_alone": f1_alone})
    return {
        "dialogues": len(dialogues),
        "follow_ups": len(records),
        "with_rewriting": {"em": statistics.mean(r["em"] for r in records),
                           "f1": statistics.mean(r["f1"] for r in records)},
        "asked_alone": {"em": statistics.mean(r["em_alone"] for r in records),
                        "f1": statistics.mean(r["f1_alone"] for r in records)},
        "rewritten": sum(r["read_as"] != r["question"] for r in records),
        "first_turns_em": statistics.mean(t["em"] for t in first_turns),
        "first_turns_changed": first_changed,
        "first_turns": first_turns,
        "records": records,
    }
