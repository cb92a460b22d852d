from rag.render import escape, response_html
from rag.types import Citation, Document, Hit, Passage, Response


def _response(passage: str, answer: str | None, start=None, end=None) -> Response:
    document = Document("d", "T <b>itle</b>", passage, "a.txt", date="2020-01-01", url="https://x.test/a?b=1&c=2")
    hit = Hit(Passage("d-0", "d", passage, 0, len(passage)), document, 1.0, 1)
    return Response("q?", answer, 0.87, (Citation(1, hit, start, end),), {})


def test_untrusted_article_text_is_shown_as_text():
    evil = "<script>alert('x')</script> **bold** [click](javascript:alert(1)) <img src=x onerror=alert(1)>"
    html = response_html(_response(evil, None))
    assert "<script" not in html and "<img" not in html
    assert "**" not in html and "](" not in html  # Markdown syntax is neutralised too
    assert "&lt;script&gt;" in html
    assert "T &lt;b&gt;itle&lt;/b&gt;" in html


def test_answer_is_bold_with_confidence_and_highlighted_in_its_passage():
    passage = "Dr Zabih Fetrat, a spokesman, said so."
    html = response_html(_response(passage, "Zabih Fetrat", 3, 15))
    assert "<b class='answer'>Zabih Fetrat</b> [1]" in html
    assert "confidence 87%" in html
    assert "<mark>Zabih Fetrat</mark>" in html
    assert "<details><summary>[1] T" in html


def test_no_answer_says_so_plainly():
    html = response_html(_response("Nothing relevant.", None))
    assert html.startswith("<p><b>No answer found</b>")
    assert "<mark>" not in html


def test_escape_keeps_newlines_visible():
    assert escape("a\nb") == "a<br>b"
