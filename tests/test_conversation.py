"""Follow-up questions read from the conversation: the rules alone (fast), then the assistant, the CLI and
``rag eval`` with the real bundled models."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rag.answer.conversation import read_question
from rag.errors import RagError
from rag.evaluation.conversations import BUNDLED_CONVERSATIONS, load_dialogues
from rag.types import Turn

YULDOSH = Turn("Which IMU leader was killed in a U.S. drone attack?", "Tohir Yuldosh")


@pytest.mark.parametrize("history, question, read", [
    ([YULDOSH], "When was he killed?", "When was Tohir Yuldosh killed?"),  # "which leader": a person's answer
    ([YULDOSH, Turn("When was he killed?", "2009")], "And where?", "Where was Tohir Yuldosh killed?"),  # ellipsis
    ([Turn("Who is Waheed Mozhdah?", "Analyst")], "What does he say?", "What does Waheed Mozhdah say?"),
    ([Turn("Who hosted the Central Asian militants?", "the Taliban")], "Why did they host them?",
     "Why did the Taliban host them?"),  # each kind of pronoun once
    ([Turn("Which movement did Noor and Dostum join?", "the Northern Alliance")], "Whose lead did they follow?",
     "Whose lead did Noor and Dostum follow?"),  # "they": the two the question joined
    ([Turn("What does IMU stand for?", "Uzbekistan")], "Who is it linked to?", "Who is IMU linked to?"),
    ([Turn("When was the attack in Takhar?", "May 28")], "Who was killed there?", "Who was killed in Takhar?"),
    ([Turn("How many Uzbeks live in Afghanistan?", "2.5 million")], "Out of how many people?",
     "Out of how many people (How many Uzbeks live in Afghanistan?)"),
    ([Turn("Which commander's troops clashed for Kabul?", "Dostum")], "What about Mazar-e Sharif?",
     "Which commander's troops clashed for Mazar-e Sharif?"),
    ([Turn("Where were the radical youth educated?", "in Pakistani madrasahs")], "Who said that?",
     "Who said that (Where were the radical youth educated? in Pakistani madrasahs)?"),
    ([Turn("Which city did Rezai say was divided?", "Mazar-e Sharif")], "When?",
     "When did Rezai say was divided?"),  # the "which city" phrase goes, not the word alone
    ([Turn("Who was the police chief killed with?", "General Daud")], "Where did it happen?",
     "Where did it happen (Who was the police chief killed with? General Daud)?"),  # "it" is not the man named
])
def test_a_follow_up_is_read_as_a_question_that_stands_alone(history, question, read):
    assert read_question(question, history) == read


@pytest.mark.parametrize("question", [
    "Which neighbouring countries could the IMU strike from its sanctuaries?",  # "its" is the IMU's
    "Who denies forming a militia?",
    "How many Uzbeks live in Afghanistan?",
    "Where did Noor say he would mobilize the fighters?",
])
def test_a_new_topic_and_a_first_question_are_left_as_asked(question):
    assert read_question(question, []) == question
    assert read_question(question, [YULDOSH, Turn("When was he killed?", "2009")]) == question


def test_the_bundled_conversational_gold_loads_and_bad_lines_are_named(tmp_path):
    dialogues = load_dialogues(BUNDLED_CONVERSATIONS)
    assert len(dialogues) >= 25 and all(2 <= len(d.turns) <= 3 for d in dialogues)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "doc": "a.txt", "turns": [{"question": "Who?", "answers": ["A"]}]}\n')
    with pytest.raises(RagError, match="bad.jsonl:1: a dialogue needs two turns or more"):
        load_dialogues(bad)
    bad.write_text('{"id": "x"}\n')
    with pytest.raises(RagError, match=r"bad.jsonl:1: expected \{id, doc, turns"):
        load_dialogues(bad)


@pytest.mark.slow
def test_the_assistant_answers_a_follow_up_from_the_conversation(retriever):
    from rag.answer.assistant import Assistant

    assistant = Assistant(retriever)
    first = assistant.ask(YULDOSH.question)
    assert first.answer == "Tohir Yuldosh" and first.question_as_read == YULDOSH.question
    follow_up = assistant.ask("When was he killed?", history=[Turn(YULDOSH.question, first.answer)])
    assert follow_up.question == "When was he killed?"
    assert follow_up.question_as_read == "When was Tohir Yuldosh killed?" and follow_up.answer == "2009"
    assert assistant.ask("When was he killed?").answer != "2009"  # alone, it is another man's death
    assert follow_up.to_dict()["question_as_read"] == "When was Tohir Yuldosh killed?"


@pytest.mark.slow
def test_rag_ask_conversation_chains_the_questions():
    run = subprocess.run([sys.executable, "-m", "rag.cli", "ask", "--conversation", "--json", YULDOSH.question,
                          "When was he killed?", "And where?"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    answers = [json.loads(line) for line in run.stdout.splitlines()]
    assert [a["question_as_read"] for a in answers] == [YULDOSH.question, "When was Tohir Yuldosh killed?",
                                                        "Where was Tohir Yuldosh killed?"]
    assert answers[1]["answer"] == "2009" and "western Pakistan" in answers[2]["answer"]
