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


def test_a_bad_jsonl_line_is_skipped_and_named_and_the_rest_is_read(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"text": "First article about the harvest."}\n{"title": "no text"}\n'
                                        'not json at all\n{"text": "Third article about the rain."}\n')
    skipped = []
    docs = read_file(tmp_path / "bad.jsonl", on_skip=skipped.append)
    assert [d.text for d in docs] == ["First article about the harvest.", "Third article about the rain."]
    assert len(skipped) == 2 and "bad.jsonl:2:" in skipped[0] and "bad.jsonl:3:" in skipped[1]


def test_utf16_and_utf32_with_a_bom_and_windows_1252_are_read(tmp_path):
    text = "Dostum’s party — café owners in Mazar-e Sharif said the alliance was welcome."
    for name, data in (("a.txt", text.encode("utf-16")), ("b.txt", text.encode("utf-32")),
                       ("c.txt", text.encode("utf-8-sig"))):
        (tmp_path / name).write_bytes(data)
        assert read_file(tmp_path / name)[0].text == text
    long = ("Café owners said the café would stay open. " * 20).strip()
    (tmp_path / "d.txt").write_bytes(long.encode("cp1252"))
    assert read_file(tmp_path / "d.txt")[0].text == long


def test_a_file_over_the_size_limit_is_refused_before_reading(tmp_path):
    (tmp_path / "dump.txt").write_text("word " * 300_000)  # 1.5 MB
    with pytest.raises(IngestError, match=r"dump.txt: 1.5 MB, over the size limit of 1 MB"):
        read_file(tmp_path / "dump.txt", max_bytes=1_000_000)
    skipped = []
    (tmp_path / "ok.txt").write_text("A short article about the harvest.")
    docs = read_documents([tmp_path], on_skip=skipped.append, max_file_bytes=1_000_000)
    assert len(docs) == 1 and len(skipped) == 1 and "over the size limit" in skipped[0]


def test_binary_and_unsupported_files_are_skipped_not_fatal(tmp_path):
    (tmp_path / "good.txt").write_text("A real article about the harvest.\n\nFarmers expect a good year.")
    (tmp_path / "image.txt").write_bytes(b"\x89PNG\x00\x00\x01binary")
    skipped = []
    docs = read_documents([tmp_path, tmp_path / "image.txt"], on_skip=skipped.append)
    assert len(docs) == 1
    assert skipped == [f"{tmp_path / 'image.txt'}: binary file, not text"]  # once, though named twice


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
