"""Render a Response as chat HTML: the answer, its confidence, numbered citations, highlighted passages.

Article text is untrusted. Every piece of it is HTML-escaped, and the characters that
Markdown would act on are written as character references, so a passage holding
``<script>`` or ``[link](javascript:...)`` shows up as the text it is.
"""

from __future__ import annotations

import html

from rag.types import Citation, Response

_MARKDOWN = {ch: f"&#{ord(ch)};" for ch in "\\`*_{}[]()#+-.!|~:$"}


def escape(text: str) -> str:
    """Text that renders literally in a Markdown-with-HTML view (such as Gradio's Chatbot)."""
    escaped = html.escape(text, quote=True)
    return "".join(_MARKDOWN.get(ch, ch) for ch in escaped).replace("\n", "<br>")


def _source(c: Citation) -> str:
    doc = c.hit.document
    date = f", {escape(doc.date)}" if doc.date else ""
    return f"<b>[{c.number}]</b> {escape(doc.title)}{date} <small>— {escape(doc.url or doc.source)}</small>"


def _passage(c: Citation) -> str:
    text = c.hit.passage.text
    if c.answer_start is None:
        return escape(text)
    return (escape(text[:c.answer_start]) + "<mark>" + escape(text[c.answer_start:c.answer_end])
            + "</mark>" + escape(text[c.answer_end:]))


def response_html(response: Response) -> str:
    """The chat reply for one response."""
    if response.answer is None:
        head = ("<p><b>No answer found</b> in the articles "
                f"(confidence that they do not say: {response.confidence:.0%}). The closest passages:</p>")
    else:
        cited = " ".join(f"[{c.number}]" for c in response.citations if c.answer_start is not None)
        head = (f"<p><b class='answer'>{escape(response.answer)}</b> {cited}<br>"
                f"<small>confidence {response.confidence:.0%}</small></p>")
    sources = "<br>".join(_source(c) for c in response.citations)
    passages = "".join(
        f"<details><summary>[{c.number}] {escape(c.hit.document.title)}</summary><p>{_passage(c)}</p></details>"
        for c in response.citations)
    return f"{head}<p>{sources}</p>{passages}"
