"""Questions about the articles themselves are answered from their metadata, with the byline or dateline cited."""

from __future__ import annotations

import pytest

from rag.answer import about_articles
from rag.answer.assistant import Assistant
from rag.read.reader import Reader
from rag.types import Document, Hit, Passage
from tests.conftest import doc_by_title


@pytest.mark.parametrize("question, field", [
    ("Who wrote the article on the IMU?", "author"),
    ("Who reported the Afghanistan Today story?", "author"),
    ("When was the article about the alliance published?", "date"),
    ("Which outlet published the story on Kunduz?", "outlet"),
    ("Who publishes Afghanistan Today?", "publisher"),
    ("Where was the Dostum story filed?", "place"),
    ("Who reported the attack on the governor's office?", None),  # about the news, not the article
    ("Who is the spokesman for Dostum's party?", None),
    ("When did the Taliban seize power?", None),
    ("Where was Tohir Yuldosh killed?", None),
])
def test_questions_about_an_article_are_told_apart_from_questions_about_the_news(question, field):
    assert about_articles.asked_about(question) == field


def test_each_field_is_found_where_the_article_writes_it(corpus_docs):
    at = doc_by_title(corpus_docs, "Dostum and Noor")
    found = {name: about_articles.locate(at, name) for name in about_articles.FIELDS}
    assert {name: at.text[s:e] for name, (s, e) in found.items()} == {
        "author": "Waheed Orya", "date": "21.07.2015", "outlet": "Afghanistan Today",
        "publisher": "Media in Cooperation and Transition", "place": "Mazar-e Sharif"}
    rfe = doc_by_title(corpus_docs, "IMU-Taliban")
    assert about_articles.locate(rfe, "date") is None and about_articles.locate(rfe, "place") is None
    start, end = about_articles.locate(rfe, "author")
    assert rfe.text[start - 2:end + 2] == "\n\nAbubakar Siddique\n\n"  # the byline (at the end here), not the note


def test_the_article_a_question_names_is_chosen_and_sure_even_when_retrieval_leans_elsewhere(corpus_docs):
    at, rfe = doc_by_title(corpus_docs, "Dostum and Noor"), doc_by_title(corpus_docs, "IMU-Taliban")

    def hit(doc, rank):
        return Hit(Passage(f"{doc.id}-{rank}", doc.id, doc.text[:50], 0, 50), doc, 1.0, rank)

    found = about_articles.answer("publisher", [hit(rfe, 1), hit(rfe, 2), hit(at, 3)],
                                  "Who publishes Afghanistan Today?")
    cited, start, end, confidence = found
    assert cited.passage.text[start:end] == "Media in Cooperation and Transition" and confidence == 1.0
    _, _, _, confidence = about_articles.answer("author", [hit(rfe, 1), hit(at, 2)], "Who wrote the article?")
    assert confidence == 1 / (1 + 1 / 2)  # names neither: the first article's share of 1/rank


def test_a_wire_dateline_gives_the_place_before_the_date():
    doc = Document("d", "t", "Floods close the road\n\nKABUL, July 21, 2015 (Reuters) - Heavy rain closed the road.",
                   "s", date="2015-07-21")
    start, end = about_articles.locate(doc, "place")
    assert doc.text[start:end] == "KABUL"


def _first_citation(response):
    cited = response.citations[0].passages[0]
    return cited.hit.passage.text[cited.answer_start:cited.answer_end], cited


@pytest.mark.slow
@pytest.mark.parametrize("question, expected, title", [
    ("Who reported the Afghanistan Today story?", "Waheed Orya", "Dostum and Noor"),
    ("Who wrote the article about the IMU-Taliban alliance?", "Abubakar Siddique", "IMU-Taliban"),
    ("When was the article on the Dostum and Noor alliance published?", "21.07.2015", "Dostum and Noor"),
    ("Which outlet published the article about Dostum and Noor?", "Afghanistan Today", "Dostum and Noor"),
    ("Which outlet published the story about the IMU-Taliban alliance?", "RFE/RL", "IMU-Taliban"),
    ("Who publishes Afghanistan Today?", "Media in Cooperation and Transition", "Dostum and Noor"),
    ("Where was the story on the alliance between Noor and Dostum filed?", "Mazar-e Sharif", "Dostum and Noor"),
])
def test_the_bundled_articles_answer_questions_about_themselves(retriever, question, expected, title):
    response = Assistant(retriever, Reader()).ask(question)
    assert response.answer == expected and response.level == "high"
    text, cited = _first_citation(response)
    assert text == expected and title in cited.hit.document.title
    source = open(cited.hit.document.source, encoding="utf-8").read()
    start, end = cited.source_span()
    assert source[start:end] == expected  # found in the original file by its offsets


@pytest.mark.slow
def test_an_article_that_does_not_say_when_it_was_published_gets_no_answer(retriever):
    response = Assistant(retriever, Reader()).ask("When was the RFE/RL article about the IMU published?")
    assert response.answer is None
