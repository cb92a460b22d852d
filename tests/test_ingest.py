import json

import pytest

from rag.errors import EmptyCorpusError, IngestError
from rag.ingest import clean_text, find_date, read_documents, read_file
from tests.conftest import doc_by_title

FURNITURE = ["Accessibility links", "Breaking News", "Our other projects", "Media in Cooperation and Transition",
             "Brunnenstraße 9", "16x9 Image", "available for republishing", "undesirable organization",
             "could face fines or imprisonment", "To find out more, click here", "\nXS\n", "\nLG"]


def test_seed_articles_lose_furniture_and_keep_real_sentences(corpus_docs):
    assert len(corpus_docs) == 2
    for doc in corpus_docs:
        for junk in FURNITURE:
            assert junk not in doc.text, junk
    rfe = doc_by_title(corpus_docs, "IMU-Taliban")
    at = doc_by_title(corpus_docs, "Dostum and Noor")
    assert "its erstwhile leader Tohir Yuldosh in a U.S. drone attack in western Pakistan in 2009" in rfe.text
    assert rfe.text.rstrip().endswith("a weekly newsletter that unpacks the key issues in Afghanistan.")
    assert "Dr Zabih Fetrat, a spokesman for Dostum's Party" in at.text
    assert at.text.rstrip().endswith("it would be more effective and better,” he said.")
    # The caption was printed twice on the page; the article keeps it once.
    assert rfe.text.count("pose for a photo in the northern Kunduz Province") == 1


def test_seed_articles_metadata(corpus_docs):
    at = doc_by_title(corpus_docs, "Dostum and Noor")
    assert at.title == "Dostum and Noor announce new alliance to fight Taliban in the north"
    assert at.author == "Waheed Orya"
    assert at.date == "2015-07-21"
    assert at.text.startswith(at.title)
    rfe = doc_by_title(corpus_docs, "IMU-Taliban")
    assert rfe.title == "In Afghanistan, IMU-Taliban Alliance Chips Away At The Stone"
    assert rfe.author == "Abubakar Siddique"


def test_ids_are_stable_and_duplicates_collapse(tmp_path, corpus_docs):
    doc = corpus_docs[0]
    (tmp_path / "a.txt").write_text(doc.text)
    (tmp_path / "copy.txt").write_text(doc.text)
    again = read_documents([tmp_path])
    assert [d.id for d in again] == [doc.id]


def test_markdown_html_and_jsonl(tmp_path):
    (tmp_path / "a.md").write_text("# Floods hit the valley\n\nHeavy rain flooded the valley on Monday.\n")
    (tmp_path / "b.html").write_text(
        "<html><head><title>Site | Bridge</title><meta name='author' content='Ana Lee'>"
        "<meta property='article:published_time' content='2024-03-05T10:00:00Z'></head><body>"
        "<nav>Home News Sport</nav><article><h1>New bridge opens</h1><p>The bridge opened on Friday.</p>"
        "<script>alert(1)</script><p>It cost 3 million.</p></article><footer>Contact us</footer></body></html>")
    (tmp_path / "c.jsonl").write_text(
        json.dumps({"text": "The council met in May.", "title": "Council meets", "url": "https://x.test/c",
                    "date": "2020-05-01", "author": "Bo Chan"}) + "\n\n"
        + json.dumps({"text": "Second story text here."}) + "\n")
    docs = {d.title: d for d in read_documents([tmp_path])}
    assert docs["Floods hit the valley"].text.startswith("Floods hit the valley\n\nHeavy rain")
    bridge = docs["New bridge opens"]
    assert "Home News" not in bridge.text and "alert" not in bridge.text and "Contact" not in bridge.text
    assert "It cost 3 million." in bridge.text
    assert (bridge.author, bridge.date) == ("Ana Lee", "2024-03-05")
    council = docs["Council meets"]
    assert (council.source, council.url, council.date, council.author) == (
        "https://x.test/c", "https://x.test/c", "2020-05-01", "Bo Chan")
    assert any(d.source.endswith("c.jsonl:3") for d in docs.values())


def test_bad_jsonl_line_names_the_line(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{"title": "no text"}\n')
    with pytest.raises(IngestError, match=r"bad.jsonl:2"):
        read_file(tmp_path / "bad.jsonl")


def test_binary_and_unsupported_files_are_skipped_not_fatal(tmp_path):
    (tmp_path / "good.txt").write_text("A real article about the harvest.\n\nFarmers expect a good year.")
    (tmp_path / "image.txt").write_bytes(b"\x89PNG\x00\x00\x01binary")
    skipped = []
    docs = read_documents([tmp_path, tmp_path / "image.txt"], on_skip=lambda p, why: skipped.append(why))
    assert len(docs) == 1
    assert skipped and all("binary" in why for why in skipped)


def test_missing_path_and_empty_corpus(tmp_path):
    with pytest.raises(IngestError, match="no such file or folder"):
        read_documents([tmp_path / "missing"])
    (tmp_path / "empty.txt").write_text("   \n")
    with pytest.raises(EmptyCorpusError):
        read_documents([tmp_path])


def test_dates_and_clean_text_keep_sentences_with_furniture_words():
    assert find_date(["21.07.2015 | Mazar-e Sharif"]) == "2015-07-21"
    assert find_date(["Published March 5, 2024"]) == "2024-03-05"
    assert find_date(["31.02.2015"]) is None
    text, _ = clean_text("Title of the story here\n\nShare\n\nShare prices fell sharply on Monday.\nMenu\n")
    assert "Share prices fell sharply on Monday." in text
    assert "\nShare\n" not in text and "Menu" not in text
