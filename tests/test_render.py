"""Chat HTML: any text renders as written, nothing can be injected, and the cards say what they should."""

from dataclasses import replace
from html.parser import HTMLParser

from hypothesis import given, settings
from hypothesis import strategies as st

from rag.serve.render import copy_text, escape, response_html, source_name
from rag.types import Alternative, Citation, CitedPassage, Document, Hit, Passage, Response

TAGS = {"div", "p", "span", "b", "a", "mark", "blockquote", "details", "summary", "ul", "li", "small", "br", "button"}
ATTRIBUTES = {"class", "id", "href", "target", "rel", "type"}


class _Parsed(HTMLParser):
    """The text a browser would show (``<br>`` as a newline) and every tag with its attributes."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.tags: list[tuple[str, dict]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "br":
            self.text.append("\n")

    def handle_data(self, data):
        self.text.append(data)


@settings(max_examples=300)
@given(st.text())
def test_any_text_escaped_parses_back_to_itself_with_no_tag(text):
    parsed = _Parsed(escape(text))
    assert "".join(parsed.text) == text
    assert all(tag == "br" and not attrs for tag, attrs in parsed.tags)


def test_apostrophes_quotes_and_markdown_are_escaped_once():
    assert escape("Dostum's") == "Dostum&#39;s"
    assert "".join(_Parsed(escape("Vasquez-Tran said \"*no*\" & [x](y)")).text) == "Vasquez-Tran said \"*no*\" & [x](y)"


def _response(title="Dostum and Noor", passage="Dr Zabih Fetrat, a spokesman, said so.", answer="Zabih Fetrat",
              start=3, end=15, url="https://www.afghanistan-today.org/a?b=1&c=2", author="Waheed Orya",
              confidence=0.87, alternatives=()) -> Response:
    document = Document("d", title, f"Intro line.\n\n{passage}", "/srv/uploads/tmp123/dostum.txt", author=author,
                        date="2015-07-21", url=url)
    hit = Hit(Passage("d-0", "d", passage, 13, 13 + len(passage)), document, 1.0, 1)
    other = Document("e", "Another article", "Something else entirely.", "/data/corpus/004_x.txt")
    other_hit = Hit(Passage("e-0", "e", other.text, 0, len(other.text)), other, 0.5, 2)
    citations = (Citation(1, document, (CitedPassage(hit, start, end),)),
                 Citation(2, other, (CitedPassage(other_hit),)))
    return Response("q?", answer, confidence, citations if answer else tuple(
        Citation(c.number, c.document, tuple(CitedPassage(p.hit) for p in c.passages)) for c in citations),
        alternatives, {})


@settings(max_examples=150)
@given(title=st.text(min_size=1), passage=st.text(min_size=3), author=st.text(), url=st.text())
def test_untrusted_fields_render_as_text_and_inject_nothing(title, passage, author, url):
    html = response_html(_response(title=title, passage=passage, answer=passage[1:3], start=1, end=3, url=url,
                                   author=author), rid="r1")
    parsed = _Parsed(html)
    for tag, attrs in parsed.tags:
        assert tag in TAGS and set(attrs) <= ATTRIBUTES, (tag, attrs)
        href = attrs.get("href")
        assert href is None or href.startswith("#r1-") or (href == url and url.startswith(("http://", "https://")))
    shown = "".join(parsed.text)
    assert title in shown and passage[1:3] in shown


def test_answer_card_confidence_in_words_and_sources_once_per_article():
    html = response_html(_response(), rid="r1")
    parsed = _Parsed(html)
    shown = "".join(parsed.text)
    assert "Answer Zabih Fetrat [1]" in shown and "High confidence · 87%" in shown
    assert "<b class='rag-answer-text'>Zabih Fetrat</b> <a class='rag-cite' href='#r1-s1'>[1]</a>" in html
    assert "<mark>Zabih Fetrat</mark>" in html  # in the passage
    assert "<mark id='r1-a1'>Zabih Fetrat</mark>" in html  # in the whole article, the jump target
    assert shown.startswith("q?") and html.count("class='rag-source'") == 2  # the question first; each article once
    # The article holding the answer is numbered; the other is apart, unnumbered.
    assert "[1] Dostum and Noor" in shown and "[2]" not in shown
    assert "Also read, without the answer: 1 article" in shown and shown.index("Another article") > shown.index("Also")
    # Outlet, author, date and a link; a file name, never a server path.
    assert "afghanistan-today.org · Waheed Orya · 2015-07-21" in shown
    links = [attrs for tag, attrs in parsed.tags if tag == "a" and attrs.get("target") == "_blank"]
    assert links == [{"href": "https://www.afghanistan-today.org/a?b=1&c=2", "target": "_blank",
                      "rel": "noopener noreferrer"}]
    assert "004_x.txt" in shown and "/data/corpus" not in shown and "/srv/uploads" not in shown


def test_low_confidence_is_a_possible_answer_with_alternatives():
    alternatives = (Alternative("Dostum", 0.2, 2, "e-0", 0, 6), Alternative("Noor", 0.1, 1, "d-0", 0, 2))
    shown = "".join(_Parsed(response_html(_response(confidence=0.39, alternatives=alternatives), rid="r1")).text)
    assert "Possible answer Zabih Fetrat [1]" in shown and "Low confidence · 39%" in shown
    assert "Other possible answers:Dostum [2] 20%Noor [1] 10%" in shown
    medium = "".join(_Parsed(response_html(_response(confidence=0.6, alternatives=alternatives))).text)
    assert "Medium confidence · 60%" in medium and "Other possible answers" not in medium


def test_no_answer_says_so_plainly_and_an_empty_filter_says_what_to_change():
    html = response_html(_response(answer=None))
    shown = "".join(_Parsed(html).text)
    assert "The articles do not say." in shown and "The closest ones, which do not:" in shown
    assert "<mark>" not in html and "rag-cite" not in html and "[1]" not in shown and "sure" not in shown
    none = Response("q?", None, 1.0, (), (), {})
    assert "No article matches the limits you set." in "".join(_Parsed(response_html(none)).text)


def test_an_answer_the_articles_rule_out_says_why():
    response = replace(_response(answer=None), ruled_out="the articles name Noor as Balkh's governor, not Kunduz's")
    shown = "".join(_Parsed(response_html(response)).text)
    assert "The articles do not say." in shown
    assert "The articles name Noor as Balkh's governor, not Kunduz's. The closest ones, which do not:" in shown


def test_copy_gives_the_answer_its_sentence_and_its_source_as_plain_text():
    assert copy_text(_response(), 1) == ("Zabih Fetrat\n\n“Dr Zabih Fetrat, a spokesman, said so.”\n\n"
                                         "“Dostum and Noor”, afghanistan-today.org, 2015-07-21, "
                                         "https://www.afghanistan-today.org/a?b=1&c=2")
    html = response_html(_response())
    kept = html[html.index("<span class='rag-copy-text'>"):]
    assert "".join(_Parsed(kept[:kept.index("</span>") + 7]).text) == copy_text(_response(), 1)  # parses back


def test_source_name_is_the_outlet_a_site_or_a_file_name():
    assert source_name(Document("d", "t", "x", "000_c3.txt", outlet="Afghanistan Today")) == "Afghanistan Today"
    doc = Document("d", "t", "x", "C:\\Users\\me\\dover.txt")
    assert source_name(doc) == "dover.txt"
    assert source_name(Document("d", "t", "x", "/tmp/gradio/abc/dover.txt", url="javascript:alert(1)")) == "dover.txt"
    assert source_name(Document("d", "t", "x", "feed.jsonl:3", url="https://www.rferl.org/a/x.html")) == "rferl.org"


def test_a_source_card_names_the_pdf_page_and_every_outlet_that_ran_the_story():
    passage = "Heavy rain closed the valley road."
    document = Document("d", "Floods", passage, "floods.pdf", date="2024-04-09", source_map=(0, 40, len(passage)),
                        pages=(0, 30), copies=(("https://b.test/2", "Northern Times", "https://b.test/2"),
                                               ("wire/floods.txt", None, None)))
    hit = Hit(Passage("d-0", "d", passage, 0, len(passage)), document, 1.0, 1)
    response = Response("q?", "Heavy rain", 0.9, (Citation(1, document, (CitedPassage(hit, 0, 10),)),), (), {})
    parsed = _Parsed(response_html(response, rid="r1"))
    text = "".join(parsed.text)
    assert "floods.pdf · 2024-04-09 · p. 2" in text  # source offset 40 lies on the second page
    assert "Also carried by Northern Times, floods.txt" in text
    assert ("a", {"href": "https://b.test/2", "target": "_blank", "rel": "noopener noreferrer"}) in parsed.tags
