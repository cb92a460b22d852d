"""Citations point into the original file: a span of a cleaned document maps back to the same text."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from rag.ingest import read_file
from rag.ingest.formats import make_document
from rag.source_map import TextBuilder, compose, to_source, visible_text

_SPACE = re.compile(r"[\s\u200b]+")


def _same_up_to_whitespace(a: str, b: str) -> bool:
    return _SPACE.sub(" ", a).strip() == _SPACE.sub(" ", b).strip()


words = st.text(alphabet=st.characters(codec="utf-8", categories=("L", "N", "P")), min_size=1, max_size=8)
spaces = st.sampled_from([" ", "  ", "\t", "\u00a0", " \u200b ", "\u202f"])
line = st.lists(st.tuples(words, spaces), min_size=1, max_size=8).map(
    lambda parts: "".join(w + s for w, s in parts).rstrip())
furniture = st.sampled_from(["Share", "Menu", "XS", "LG", "Advertisement", "• Print", "We use cookies here."])
raw_article = st.lists(st.one_of(line, line, line, furniture, st.just("")), min_size=1, max_size=14).flatmap(
    lambda lines: st.sampled_from(["\n", "\r\n", "\n\n"]).map(lambda end: end.join(lines)))


@settings(max_examples=300, deadline=None)
@given(raw_article, st.data())
def test_any_span_within_a_paragraph_is_the_same_text_in_the_source(raw, data):
    doc = make_document(raw, "article.txt")
    if doc is None:
        return
    paragraphs = [(m.start(), m.end()) for m in re.finditer(r"[^\n]+", doc.text)]
    lo, hi = data.draw(st.sampled_from(paragraphs))
    start = data.draw(st.integers(lo, hi - 1))
    end = data.draw(st.integers(start + 1, hi))
    if not doc.text[start:end].strip():
        return
    source_start, source_end = to_source(doc.source_map, start, end)
    assert _same_up_to_whitespace(raw[source_start:source_end], doc.text[start:end])


def test_a_span_across_paragraphs_covers_the_dropped_lines_between_them():
    raw = "First line of the story.\nShare\nSecond line of it."
    doc = make_document(raw, "a.txt")
    assert doc.text == "First line of the story.\n\nSecond line of it."
    start, end = to_source(doc.source_map, doc.text.index("story"), doc.text.index(" of it"))
    assert raw[start:end] == "story.\nShare\nSecond line"


def test_the_bundled_articles_cite_their_files(corpus_docs):
    for doc in corpus_docs:
        raw = open(doc.source, encoding="utf-8").read()
        for phrase in ("Dr Zabih Fetrat", "Waheed Orya", "21.07.2015", "Tohir Yuldosh", "Abubakar Siddique",
                       "Media in Cooperation and Transition"):
            at = doc.text.find(phrase)
            if at >= 0:
                start, end = to_source(doc.source_map, at, at + len(phrase))
                assert raw[start:end] == phrase


def test_html_maps_to_the_markup_entities_and_tags_included(tmp_path):
    page = ("<html><head><title>x</title></head><body><nav>Home</nav><article><h1>Council&#x27;s bridge opens "
            "after a long wait</h1><p>The council&#x27;s <b>new bridge</b> opened on Friday after three years of "
            "work on the eastern bank of the river.</p><p>It cost 3 million euros &amp; took 200 workers to build, "
            "the council said in a statement on Friday.</p></article></body></html>")
    (tmp_path / "bridge.html").write_text(page)
    doc, = read_file(tmp_path / "bridge.html")
    for phrase in ("council's new bridge opened", "3 million euros & took 200 workers"):
        at = doc.text.index(phrase)
        start, end = to_source(doc.source_map, at, at + len(phrase))
        assert _same_up_to_whitespace(visible_text(page[start:end])[0], phrase)


def test_compose_and_builder_merge_what_runs_on():
    built = TextBuilder("a  b\nc")
    built.copy(0, 1)
    built.insert(" ")
    built.copy(3, 4)
    built.insert("\n")
    built.copy(5, 6)
    assert built.text() == "a b\nc" and built.map() == (0, 0, 1, 2, 3, 3)  # "\n" is the source's own: merged
    assert compose((0, 10, 5), (8, 100, 4, 12, 200, 10)) == (0, 102, 2, 2, 200, 3)
