import json

import pytest

from rag.errors import EmptyCorpusError, IngestError
from rag.ingest import read_documents, read_file
from rag.ingest.cleaning import clean, find_date
from tests.conftest import doc_by_title

# Each bundled article: what ingestion keeps in the text (facts a reader may ask about) and what it drops.
KEPT = {
    "Dostum and Noor": ["Media in Cooperation and Transition", "Brunnenstraße 9, 10119 Berlin, Germany",  # masthead
                        "Dostum and Noor announce new alliance to fight Taliban in the north",  # headline
                        "\n\nWaheed Orya\n\n",  # byline
                        "21.07.2015 | Mazar-e Sharif",  # dateline
                        "Dr Zabih Fetrat, a spokesman for Dostum's Party",
                        "it would be more effective and better,” he said."],
    "IMU-Taliban": ["In Afghanistan, IMU-Taliban Alliance Chips Away At The Stone",
                    "Militants of the Islamic Movement of Uzbekistan (IMU) pose for a photo",  # the caption, once
                    "its erstwhile leader Tohir Yuldosh in a U.S. drone attack in western Pakistan in 2009",
                    "\n\nAbubakar Siddique\n\n",  # byline
                    "Abubakar Siddique, a journalist for RFE/RL's Radio Azadi",  # about the author
                    "a weekly newsletter that unpacks the key issues in Afghanistan."],
}
DROPPED = {
    "Dostum and Noor": ["Our other projects", "available for republishing", "syndicate our content"],
    "IMU-Taliban": ["Accessibility links", "Breaking News", "16x9 Image", "undesirable organization",
                    "could face fines or imprisonment", "To find out more, click here", "\nXS", "\nSM", "\nMD",
                    "\nLG"],
}


@pytest.mark.parametrize("title", sorted(KEPT))
def test_bundled_articles_keep_every_fact_and_drop_the_furniture(corpus_docs, title):
    doc = doc_by_title(corpus_docs, title)
    for fact in KEPT[title]:
        assert fact in doc.text, fact
    for junk in DROPPED[title]:
        assert junk not in doc.text, junk
    assert doc.text.count("pose for a photo in the northern Kunduz Province") <= 1  # printed twice on the page
    assert "  " not in doc.text and "\n\n\n" not in doc.text


def test_bundled_articles_metadata(corpus_docs):
    at = doc_by_title(corpus_docs, "Dostum and Noor")
    assert (at.title, at.author, at.date, at.outlet, at.publisher) == (
        "Dostum and Noor announce new alliance to fight Taliban in the north", "Waheed Orya", "2015-07-21",
        "Afghanistan Today", "Media in Cooperation and Transition")
    rfe = doc_by_title(corpus_docs, "IMU-Taliban")
    assert (rfe.title, rfe.author, rfe.date, rfe.outlet, rfe.publisher) == (
        "In Afghanistan, IMU-Taliban Alliance Chips Away At The Stone", "Abubakar Siddique", None, "RFE/RL", None)


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
    text = clean("Title of the story here\n\nShare\n\nShare prices fell sharply on Monday.\nMenu\n").text
    assert "Share prices fell sharply on Monday." in text
    assert "\nShare\n" not in text and "Menu" not in text


WIRE = ("KABUL (Wire) - Afghan forces retook the district centre of Chahar Dara on Sunday after a week of fighting "
        "with Taliban insurgents, the defence ministry said. The ministry said 40 insurgents were killed and the "
        "main road to Kunduz city was open again. Residents who had fled to the city began to return on Monday, "
        "a provincial council member told reporters. The Taliban said in a statement that its fighters had "
        "withdrawn to spare civilians. The district has changed hands three times since the spring.")
OTHER = ("KABUL (Wire) - Afghan forces launched an operation in Chahar Dara district on Sunday to clear Taliban "
         "insurgents from villages near Kunduz city, the defence ministry said. Officials said the operation "
         "could take weeks, and residents were told to stay indoors. The Taliban have held parts of the district "
         "since the spring, when they briefly cut the main road to the city.")


def test_wire_copies_are_stored_once_with_every_outlet_and_url(tmp_path):
    feed = tmp_path / "wire.jsonl"
    copies = [{"text": f"{headline}\n\n{WIRE}{tail}", "outlet": outlet, "url": url, "title": headline}
              for headline, outlet, url, tail in (
                  ("Afghan forces retake Chahar Dara", "Daily Mirror of Kabul", "https://a.test/1", ""),
                  ("Chahar Dara back in government hands", "Northern Times", "https://b.test/2",
                   " Reporting by staff."),
                  ("Forces retake district near Kunduz", "Gazette", "https://c.test/3", ""))]
    copies.append({"text": f"Operation begins in Chahar Dara\n\n{OTHER}", "outlet": "Gazette", "url": "https://c.test/4"})
    feed.write_text("\n".join(json.dumps(c) for c in copies))
    docs = read_documents([feed])
    assert len(docs) == 2  # the three copies of one story, and the other story on the same district
    story = docs[0]
    assert story.outlet == "Daily Mirror of Kabul"
    assert story.copies == (("https://b.test/2", "Northern Times", "https://b.test/2"),
                            ("https://c.test/3", "Gazette", "https://c.test/3"))
    assert docs[1].url == "https://c.test/4" and docs[1].copies == ()


def test_a_plain_text_story_with_a_byline_gets_its_headline_and_author_not_its_masthead():
    story = "The harbour bridge in Dover reopened on Monday after repairs, the council said.\n"
    short = clean(f"Harbour bridge reopens\n\nBy Nadia Osei\n\n{story}")
    assert (short.title, short.author) == ("Harbour bridge reopens", "Nadia Osei")
    masthead = clean(f"The Dover Gazette\n\nHarbour bridge reopens after repairs\n\nBy Nadia Osei\n\n{story}")
    assert (masthead.title, masthead.author, masthead.publisher) == (
        "Harbour bridge reopens after repairs", "Nadia Osei", "The Dover Gazette")
