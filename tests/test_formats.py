"""The formats news collections come in: PDF, RSS and Atom feeds, WARC archives; each read from a real file."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from eval.html_extraction import PAGES, holds
from rag.errors import IngestError
from rag.ingest import read_documents, read_file
from rag.types import CitedPassage, Hit, Passage

STORY = ["Floods close the valley road",
         "By Ana Lee",
         "RIVERTON, 9 April 2024 - Heavy rain closed the valley road on Tuesday, the council said.",
         "Engineers expect the road to reopen on Friday once the water has gone down."]
SECOND_PAGE = "The council will pay for the repairs from its emergency fund, which holds 2 million euros."


def _pdf(path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title(STORY[0])
    pdf.set_author("Ana Lee")
    pdf.set_font("helvetica", size=11)
    pdf.add_page()
    for line in STORY:
        pdf.multi_cell(0, 8, line, new_x="LMARGIN", new_y="NEXT")
    pdf.add_page()
    pdf.multi_cell(0, 8, SECOND_PAGE, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))


def _cite(doc, phrase: str) -> CitedPassage:
    passage = Passage("p", doc.id, doc.text, 0, len(doc.text))
    at = doc.text.index(phrase)
    return CitedPassage(Hit(passage, doc, 1.0, 1), at, at + len(phrase))


def test_pdf_pages_are_read_in_order_and_a_citation_names_its_page(tmp_path):
    _pdf(tmp_path / "floods.pdf")
    doc, = read_file(tmp_path / "floods.pdf")
    assert (doc.title, doc.author) == (STORY[0], "Ana Lee")
    assert "Heavy rain closed the valley road on Tuesday" in doc.text and "emergency fund" in doc.text
    assert len(doc.pages) == 2
    assert _cite(doc, "Heavy rain closed the valley road").page() == 1
    assert _cite(doc, "emergency fund").page() == 2
    assert _cite(doc, "emergency fund").to_dict()["page"] == 2


def test_a_broken_pdf_is_one_clear_error(tmp_path):
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.7\nnot really a pdf")
    with pytest.raises(IngestError, match="broken.pdf: not a readable PDF"):
        read_file(tmp_path / "broken.pdf")


RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>The Valley Post</title><link>https://valleypost.test/</link>
<item><title>Floods close the valley road</title><link>https://valleypost.test/floods</link>
<author>ana@valleypost.test (Ana Lee)</author><pubDate>Tue, 09 Apr 2024 08:30:00 GMT</pubDate>
<description><![CDATA[<p>Heavy rain closed the valley road on Tuesday, the council said.</p>
<p>Engineers expect it to reopen on Friday.</p>]]></description></item>
<item><title>School reopens after repairs</title><link>https://valleypost.test/school</link>
<pubDate>Wed, 10 Apr 2024 07:00:00 GMT</pubDate>
<description>The primary school in Riverton reopened on Wednesday after two weeks of repairs to its roof.</description>
</item></channel></rss>"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Riverton Wire</title><id>urn:riverton</id>
<updated>2024-04-11T09:00:00Z</updated>
<entry><title>Bridge inspection finds cracks</title><id>urn:riverton:1</id>
<link href="https://wire.test/bridge"/><author><name>Tom Reyes</name></author><updated>2024-04-11T09:00:00Z</updated>
<content type="html">&lt;p&gt;Inspectors found cracks in the old bridge on Thursday and closed it to lorries.&lt;/p&gt;
</content>
</entry></feed>"""


def test_rss_and_atom_feeds_give_one_article_per_item(tmp_path):
    (tmp_path / "valley.rss").write_text(RSS)
    (tmp_path / "wire.atom").write_text(ATOM)
    docs = {d.title: d for d in read_documents([tmp_path])}
    assert set(docs) == {"Floods close the valley road", "School reopens after repairs",
                         "Bridge inspection finds cracks"}
    floods = docs["Floods close the valley road"]
    assert (floods.url, floods.outlet, floods.date) == ("https://valleypost.test/floods", "The Valley Post",
                                                        "2024-04-09")
    assert floods.text == ("Heavy rain closed the valley road on Tuesday, the council said.\n\n"
                           "Engineers expect it to reopen on Friday.")
    bridge = docs["Bridge inspection finds cracks"]
    assert (bridge.author, bridge.outlet, bridge.url) == ("Tom Reyes", "Riverton Wire", "https://wire.test/bridge")


def test_a_file_that_is_no_feed_is_one_clear_error(tmp_path):
    (tmp_path / "notes.xml").write_text("this is not <xml at all")
    with pytest.raises(IngestError, match="notes.xml: not an RSS or Atom feed"):
        read_file(tmp_path / "notes.xml")


PAGE = """<!DOCTYPE html><html><head><title>{title}</title><meta property="og:site_name" content="The Valley Post">
</head><body><nav><a href="/">Home</a> <a href="/news">News</a></nav><article><h1>{title}</h1>
<p class="byline">By Ana Lee</p>{paragraphs}</article><footer>Contact us</footer></body></html>"""


def _warc(path: Path, gzip: bool) -> None:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=gzip)
        pages = [("https://valleypost.test/floods", STORY[0], STORY[2:]),
                 ("https://valleypost.test/school", "School reopens after repairs",
                  ["The primary school in Riverton reopened on Wednesday after two weeks of repairs to its roof.",
                   "Pupils had been taught in the town hall while builders replaced the tiles."])]
        for uri, title, paragraphs in pages:
            body = PAGE.format(title=title, paragraphs="".join(f"<p>{p}</p>" for p in paragraphs)).encode()
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(uri, "response", payload=io.BytesIO(body),
                                                          http_headers=headers,
                                                          warc_headers_dict={"WARC-Date": "2024-04-12T10:00:00Z"}))
        image = StatusAndHeaders("200 OK", [("Content-Type", "image/png")], protocol="HTTP/1.1")
        writer.write_record(writer.create_warc_record("https://valleypost.test/logo.png", "response",
                                                      payload=io.BytesIO(b"\x89PNG"), http_headers=image))


@pytest.mark.parametrize("name", ["crawl.warc", "crawl.warc.gz"])
def test_a_warc_archive_gives_one_article_per_html_response_with_url_and_crawl_date(tmp_path, name):
    _warc(tmp_path / name, gzip=name.endswith(".gz"))
    docs = read_file(tmp_path / name)
    assert [d.url for d in docs] == ["https://valleypost.test/floods", "https://valleypost.test/school"]
    assert all(d.crawled == "2024-04-12T10:00:00Z" and d.outlet == "The Valley Post" for d in docs)
    floods = docs[0]
    assert "Heavy rain closed the valley road on Tuesday" in floods.text
    assert "By Ana Lee" in floods.text and "Home" not in floods.text and "Contact us" not in floods.text


def test_a_file_that_is_no_warc_is_one_clear_error(tmp_path):
    (tmp_path / "crawl.warc").write_text("hello")
    with pytest.raises(IngestError, match="crawl.warc: not a WARC archive"):
        read_file(tmp_path / "crawl.warc")


EXPECTED = json.loads((PAGES / "expected.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("page", sorted(EXPECTED))
def test_a_saved_news_page_keeps_its_article_and_facts_and_drops_the_furniture(page):
    doc, = read_file(PAGES / page)
    expected = EXPECTED[page]
    assert [s for s in expected["article"] if not holds(doc.text, s)] == []
    assert [name for name, s in expected["facts"].items() if not holds(doc.text, s)] == []
    assert [s for s in expected["furniture"] if holds(doc.text, s)] == []
    found = {"title": doc.title, "author": doc.author, "date": doc.date[:10], "outlet": doc.outlet}
    assert found == expected["metadata"]
