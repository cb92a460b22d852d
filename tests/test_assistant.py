"""The whole pipeline on the real bundled models and corpus."""

import json

import pytest

from rag.answer.assistant import Assistant
from rag.cli import main
from rag.index.folder import PassageIndex
from rag.read.reader import Reader
from rag.search.retriever import Retriever
from rag.types import Answer
from tests.conftest import doc_by_title

pytestmark = pytest.mark.slow
SPOKESMAN = "Who is the spokesman for Dostum's party?"
FIFA = "Who won the 2014 FIFA World Cup?"


@pytest.fixture(scope="module")
def reader():
    return Reader()


@pytest.fixture(scope="module")
def assistant(retriever, reader):
    return Assistant(retriever, reader)


def test_shipped_reader_finds_the_governor_in_the_corpus(reader, corpus_index):
    best = reader.read("Who is the governor of Balkh?", corpus_index.passages).answer
    assert isinstance(best, Answer) and "Mohammad Atta Noor" in best.text
    assert best.score >= reader.threshold and 0.3 < best.confidence <= 1.0
    doc = corpus_index.documents[best.doc_id]
    assert doc.text[best.doc_start:best.doc_end] == best.text


def test_the_governor_of_balkh_is_named_while_his_article_is_indexed(corpus_index, reader):
    answer = Assistant(Retriever(corpus_index), reader).ask("Who is the governor of Balkh?").answer
    assert answer == "Mohammad Atta Noor"


def test_without_his_article_the_governor_of_balkh_gets_no_answer(tmp_path, corpus_index, corpus_docs, reader):
    question = "Who is the governor of Balkh?"
    corpus_index.save(tmp_path / "idx")
    index = PassageIndex.open(tmp_path / "idx", corpus_index.embedder)
    index.remove([doc_by_title(corpus_docs, "Dostum and Noor").id])
    response = Assistant(Retriever(index), reader).ask(question)
    assert response.answer is None, f"answered {response.answer!r} ({response.confidence:.0%})"


def test_without_the_verifier_the_reader_alone_answers_the_governor_of_balkh_without_his_article(
        tmp_path, corpus_index, corpus_docs, reader):
    corpus_index.save(tmp_path / "idx")
    index = PassageIndex.open(tmp_path / "idx", corpus_index.embedder)
    index.remove([doc_by_title(corpus_docs, "Dostum and Noor").id])
    response = Assistant(Retriever(index), reader, verifier=None).ask("Who is the governor of Balkh?")
    assert response.answer is not None  # what the verifier (rag.answer.verifier) now abstains on


def test_a_question_the_articles_do_not_answer_gets_no_answer(assistant):
    response = assistant.ask("What is the population of Kabul?")  # they give Afghanistan's, not Kabul's
    assert response.answer is None and response.citations


@pytest.mark.parametrize("verifier", ["beside", None])
@pytest.mark.parametrize("question", ["Who is the governor of Kunduz?", "In what year was Dostum born?"])
def test_an_answer_the_text_itself_rules_out_is_not_given(retriever, reader, question, verifier):
    # the reader's best spans are Noor, whom the articles call Balkh's governor, and "Two years ago"
    response = Assistant(retriever, reader, verifier=verifier).ask(question)
    assert response.answer is None, f"answered {response.answer!r} ({response.confidence:.0%})"
    assert response.citations and response.ruled_out
    assert ("as Balkh's governor, not Kunduz's" if "Kunduz" in question else "” is not a year") in response.ruled_out


def test_rag_ask_says_why_the_articles_rule_an_answer_out(capsys):
    assert main(["ask", "Who is the governor of Kunduz?"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("The articles do not say (the articles name ") and "not Kunduz's). Closest" in first


def test_without_abstaining_an_answer_the_text_rules_out_comes_at_confidence_zero(retriever, reader):
    response = Assistant(retriever, reader, abstain=False).ask("Who is the governor of Kunduz?")
    assert "Noor" in response.answer and response.confidence == 0.0 and response.level == "low"
    assert "not Kunduz's" in response.ruled_out and response.to_dict()["ruled_out"] == response.ruled_out
    assert not any("Noor" in a.answer for a in response.alternatives)


@pytest.mark.parametrize("verifier", ["beside", None])
def test_the_rule_leaves_the_governor_of_balkh_to_the_reader(retriever, reader, verifier):
    assert Assistant(retriever, reader, verifier=verifier).ask("Who is the governor of Balkh?").answer == \
        "Mohammad Atta Noor"


def test_an_acronym_is_answered_with_its_full_name_where_the_text_spells_it_out(assistant):
    response = assistant.ask("What does IMU stand for?")
    assert response.answer == "Islamic Movement of Uzbekistan" and response.level in ("high", "medium")
    cited = response.citations[0].passages[0]
    text = cited.hit.passage.text
    assert text[cited.answer_start:cited.answer_end] == response.answer
    assert text[cited.answer_end:].lstrip().startswith("(IMU)")


def test_the_verifier_decides_and_says_how_sure_it_is(assistant):
    assert assistant.verifier is not None
    response = assistant.ask("Who is the governor of Balkh?")
    assert response.answer == "Mohammad Atta Noor" and response.margin is not None
    assert response.level == assistant.verifier.level(response.confidence)
    answering = Assistant(assistant.retriever, assistant.reader, abstain=False)
    withheld = answering.ask("What is the population of Kabul?")
    assert withheld.answer is not None and withheld.level == "low"
    assert withheld.confidence < assistant.verifier.levels["low"]


def test_after_one_search_alone_the_margin_decides_as_without_a_verifier(corpus_index, reader):
    for mode in ("dense", "bm25"):
        retriever = Retriever(corpus_index, mode=mode)
        shown = [Assistant(retriever, reader, verifier=v).ask("What is the population of Kabul?")
                 for v in ("beside", None)]
        assert (shown[0].answer, shown[0].confidence, shown[0].level) == \
            (shown[1].answer, shown[1].confidence, shown[1].level)


def test_spokesman_answer_is_cited_and_highlighted(assistant):
    response = assistant.ask(SPOKESMAN)
    assert response.answer in ("Zabih Fetrat", "Dr Zabih Fetrat")
    assert 0.0 <= response.confidence <= 1.0
    first = response.citations[0]
    assert first.number == 1 and first.document.title.startswith("Dostum and Noor") and first.holds_answer
    cited = first.passages[0]
    passage = cited.hit.passage
    assert passage.text[cited.answer_start:cited.answer_end] == response.answer
    start = passage.start + cited.answer_start
    assert first.document.text[start:start + len(response.answer)] == response.answer
    # Numbered once per article, every retrieved passage under its own article.
    assert [c.number for c in response.citations] == list(range(1, len(response.citations) + 1))
    assert len({c.document.id for c in response.citations}) == len(response.citations)
    assert sum(len(c.passages) for c in response.citations) == assistant.k
    assert all(p.hit.document.id == c.document.id for c in response.citations for p in c.passages)
    for alt in response.alternatives:  # each alternative points at the article it comes from
        cited = next(p for p in response.citations[alt.citation - 1].passages if p.hit.passage.id == alt.passage_id)
        assert cited.hit.passage.text[alt.start:alt.end] == alt.answer != response.answer
    assert set(response.timings) == {"retrieve", "read", "total"} and response.timings["read"] > 0


def test_no_answer_says_so_and_still_returns_the_closest_passages(assistant):
    response = assistant.ask(FIFA, k=3)
    assert response.answer is None
    assert sum(len(c.passages) for c in response.citations) == 3
    assert not any(c.holds_answer for c in response.citations) and response.alternatives == ()


def test_batch_gives_the_same_answers_as_single_questions(assistant):
    questions = [SPOKESMAN, FIFA, "Which IMU leader was killed in a U.S. drone attack?"]
    batch = assistant.ask_batch(questions)
    assert [r.answer for r in batch] == [assistant.ask(q).answer for q in questions]
    assert batch[2].answer == "Tohir Yuldosh"


def test_saved_index_gives_the_same_answer(tmp_path, corpus_index, reader):
    corpus_index.save(tmp_path / "idx")
    loaded = Assistant.load(tmp_path / "idx", reader=reader)
    assert loaded.ask(SPOKESMAN).answer in ("Zabih Fetrat", "Dr Zabih Fetrat")


def test_rag_ask_prints_answer_and_sources(capsys):
    assert main(["ask", SPOKESMAN]) == 0
    out = capsys.readouterr().out
    assert "Zabih Fetrat" in out.splitlines()[0]
    assert "[1] Dostum and Noor announce new alliance" in out


def test_rag_ask_no_answer_is_plain(capsys):
    assert main(["ask", FIFA]) == 0
    assert capsys.readouterr().out.startswith("The articles do not say. Closest passages:")


def test_rag_ask_json_reads_questions_in_order(tmp_path, capsys):
    questions = tmp_path / "questions.txt"
    questions.write_text(f"{SPOKESMAN}\n\n{FIFA}\n")
    assert main(["ask", "--json", "--questions", str(questions), "Who is Tohir Yuldosh?"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["question"] for r in lines] == ["Who is Tohir Yuldosh?", SPOKESMAN, FIFA]
    spokesman = lines[1]
    assert set(spokesman) == {"question", "question_as_read", "answer", "answer_confidence", "no_answer_confidence",
                              "level", "ruled_out", "alternatives", "citations", "timings"}
    assert spokesman["answer_confidence"] > 0.5 and spokesman["no_answer_confidence"] is None
    assert spokesman["question_as_read"] == SPOKESMAN  # asked without --conversation: each as typed
    first = spokesman["citations"][0]
    assert set(first) == {"number", "document", "passages"}
    assert first["document"]["file_name"] == "000_c3c45a92a98f9be2.txt" and "/" not in json.dumps(first["document"])
    assert first["document"]["outlet"] == "Afghanistan Today"
    cited = first["passages"][0]
    assert cited["text"][cited["answer_start"]:cited["answer_end"]] == spokesman["answer"]
    assert lines[2]["answer"] is None and lines[2]["answer_confidence"] is None
    assert lines[2]["no_answer_confidence"] > 0
    assert all(p["answer_start"] is None for c in lines[2]["citations"] for p in c["passages"])


def test_rag_ask_without_a_question_fails_cleanly(capsys):
    assert main(["ask"]) == 2
    assert capsys.readouterr().err.startswith("error: no question given")
