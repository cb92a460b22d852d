"""Render a Response as chat HTML: an answer card, then one source card per article.

Article text is untrusted. :func:`escape` is the only way text reaches the HTML: every
character that HTML or Markdown would act on becomes a numeric character reference, once,
so a passage holding ``<script>`` or ``[link](javascript:...)`` shows as the text it is, and
an apostrophe shows as an apostrophe. Links are built here from ``http(s)`` URLs only.

Element ids carry a per-response prefix, so ``[n]`` markers and "read the article" links
jump within their own answer even when the chat holds many.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlparse

from rag.types import Citation, Document, Response, file_name

_SNIPPET_CHARS = 300  # of a passage without the answer, shown in its source card

# HTML's five, and every character Markdown (with GFM autolinks and LaTeX) gives a meaning to.
_REFERENCE = {ch: f"&#{ord(ch)};" for ch in "&<>\"'\\`*_{}[]()#+-.!|~:$@="}


def escape(text: str) -> str:
    """Text that renders literally in HTML and in a Markdown-with-HTML view such as Gradio's Chatbot."""
    return "".join(_REFERENCE.get(ch, ch) for ch in text).replace("\n", "<br>")


def _link(url: str | None) -> str | None:
    """``url`` if it is an absolute http(s) URL (never ``javascript:`` or a server path), else None."""
    if not url:
        return None
    parsed = urlparse(url)
    return url if parsed.scheme in ("http", "https") and parsed.netloc else None


def source_name(document: Document) -> str:
    """Where an article comes from, for a reader: its outlet, else its site, else its file name, never a
    server path."""
    if document.outlet:
        return document.outlet
    link = _link(document.url)
    if link:
        return urlparse(link).netloc.removeprefix("www.")
    return file_name(document.source)


def _highlight(text: str, start: int | None, end: int | None, mark_id: str | None = None) -> str:
    if start is None or end is None:
        return escape(text)
    id_attr = f" id='{mark_id}'" if mark_id else ""
    return f"{escape(text[:start])}<mark{id_attr}>{escape(text[start:end])}</mark>{escape(text[end:])}"


def _snippet(text: str, start: int | None, end: int | None) -> str:
    """The paragraph of a passage that holds the answer (highlighted), or its first; "…" where cut."""
    at = start if start is not None else 0
    lo = text.rfind("\n\n", 0, at)
    lo = 0 if lo < 0 else lo + 2
    hi = text.find("\n\n", end if end is not None else at)
    hi = len(text) if hi < 0 else hi
    if start is None and hi - lo > _SNIPPET_CHARS:  # no answer to keep whole: a short opening will do
        hi = text.rfind(" ", lo, lo + _SNIPPET_CHARS) if " " in text[lo:lo + _SNIPPET_CHARS] else lo + _SNIPPET_CHARS
    body = _highlight(text[lo:hi], None if start is None else start - lo, None if end is None else end - lo)
    return ("… " if lo > 0 else "") + body + (" …" if hi < len(text) else "")


def _article(c: Citation, rid: str) -> str:
    """The whole article, with the answer highlighted, or the first cited passage marked, as the jump target."""
    first = c.passages[0]
    target = f"{rid}-a{c.number}"
    doc_text = c.document.text
    if first.answer_start is not None and first.answer_end is not None:
        start = first.hit.passage.start + first.answer_start
        body = _highlight(doc_text, start, start + (first.answer_end - first.answer_start), target)
    else:
        at = first.hit.passage.start
        body = f"{escape(doc_text[:at])}<span id='{target}'></span>{escape(doc_text[at:])}"
    # The summary holds no link (a control inside a control confuses screen readers): opening it scrolls
    # to the target, which the chat's script finds by the summary's class.
    return (f"<details class='rag-article'><summary class='rag-goto-{target}'>Read the article</summary>"
            f"<div class='rag-article-text'>{body}</div></details>")


def _source(c: Citation, rid: str, numbered: bool = True) -> str:
    doc = c.document
    link = _link(doc.url)
    title = escape(doc.title)
    head = f"<a href='{escape(link)}' target='_blank' rel='noopener noreferrer'>{title}</a>" if link else title
    page = c.passages[0].page()
    meta = " · ".join(escape(part) for part in (source_name(doc), doc.author, doc.date, page and f"p. {page}") if part)
    if doc.copies:
        meta += "<br>Also carried by " + ", ".join(_copy(*copy) for copy in doc.copies)
    quotes = [f"<blockquote class='rag-passage'>{_snippet(p.hit.passage.text, p.answer_start, p.answer_end)}"
              "</blockquote>" for p in c.passages]
    passages = quotes[0]
    if len(quotes) > 1:
        more = f"{len(quotes) - 1} more passage{'s' if len(quotes) > 2 else ''} read from this article"
        passages += f"<details class='rag-more'><summary>{more}</summary>{''.join(quotes[1:])}</details>"
    number = f"<span class='rag-num'>[{c.number}]</span> " if numbered else ""
    return (f"<div class='rag-source' id='{rid}-s{c.number}'>"
            f"<div class='rag-source-head'>{number}{head}</div>"
            f"<div class='rag-meta'>{meta}</div>{passages}{_article(c, rid)}</div>")


def _copy(source: str, outlet: str | None, url: str | None) -> str:
    """Another outlet that ran the same story: its name, or its site or file name, linked where it has a URL."""
    link = _link(url)
    name = escape(outlet or source_name(Document("", "", "", source, url=url)))
    return f"<a href='{escape(link)}' target='_blank' rel='noopener noreferrer'>{name}</a>" if link else name


def _cite(number: int, rid: str) -> str:
    return f"<a class='rag-cite' href='#{rid}-s{number}'>[{number}]</a>"


def response_html(response: Response, rid: str | None = None) -> str:
    """The chat reply for one response: the question, the answer card, the numbered sources that hold the
    answer (or an alternative), then the other articles read, apart and unnumbered.

    Args:
        response: what the assistant answered.
        rid: the prefix of this reply's element ids; a fresh one by default.
    """
    rid = rid or f"r{uuid.uuid4().hex[:8]}"
    question = f"<p class='rag-question'>{escape(response.question)}</p>"
    if response.question_as_read != response.question:
        question += (f"<p class='rag-read-as'>Read as: “{escape(response.question_as_read)}” "
                     "(from the conversation) <button type='button' class='rag-as-typed'>Ask it as typed</button>"
                     f"<span class='rag-copy-text'>{escape(response.question)}</span></p>")
    if not response.citations:
        return (f"<div class='rag-card rag-none' id='{rid}'>{question}<p class='rag-answer'><b>No article matches "
                "the limits you set.</b></p><p class='rag-confidence'>Widen the dates or outlets, or clear them.</p>"
                "</div>")
    if response.answer is None:
        why = (f"{escape(response.ruled_out[:1].upper() + response.ruled_out[1:])}."
               if response.ruled_out else "No passage read answers it.")
        head = ("<p class='rag-answer'><b>The articles do not say.</b></p>"
                f"<p class='rag-confidence'>{why} The closest ones, which do not:</p>")
        closest = "".join(_source(c, rid, numbered=False) for c in response.citations)
        return (f"<div class='rag-card rag-no-answer' id='{rid}'>{question}{head}"
                f"<div class='rag-sources rag-closest'>{closest}</div></div>")
    number = next(c.number for c in response.citations if c.holds_answer)
    label = "Possible answer" if response.level == "low" else "Answer"
    head = (f"<p class='rag-answer'><span class='rag-label'>{label}</span> "
            f"<b class='rag-answer-text'>{escape(response.answer)}</b> {_cite(number, rid)}</p>"
            f"<p class='rag-confidence rag-{response.level}'>{response.level.capitalize()} confidence"
            f" · {response.confidence:.0%} {_copy_button(response, number)}</p>")
    if response.level == "low" and response.alternatives:
        items = "".join(f"<li><b>{escape(a.answer)}</b> {_cite(a.citation, rid)} "
                        f"<small>{a.confidence:.0%}</small></li>"
                        for a in response.alternatives)
        head += f"<div class='rag-alternatives'>Other possible answers:<ul>{items}</ul></div>"
    cited = {number} | {a.citation for a in response.alternatives if response.level == "low"}
    sources = "".join(_source(c, rid) for c in response.citations if c.number in cited)
    others = [c for c in response.citations if c.number not in cited]
    if others:
        sources += ("<details class='rag-also'><summary>Also read, without the answer: "
                    f"{len(others)} article{'s' if len(others) > 1 else ''}</summary>"
                    + "".join(_source(c, rid, numbered=False) for c in others) + "</details>")
    return f"<div class='rag-card' id='{rid}'>{question}{head}<div class='rag-sources'>{sources}</div></div>"


def copy_text(response: Response, number: int) -> str:
    """What "Copy" gives, as plain text: the answer, the sentence it stands in, and its source."""
    citation = next(c for c in response.citations if c.number == number)
    cited = next(p for p in citation.passages if p.answer_start is not None)
    text = cited.hit.passage.text
    assert cited.answer_start is not None and cited.answer_end is not None
    stop = text.rfind(". ", 0, cited.answer_start)
    lo = max(stop + 2 if stop >= 0 else 0, text.rfind("\n", 0, cited.answer_start) + 1)
    ends = [i for i in (text.find(". ", cited.answer_end), text.find("\n", cited.answer_end)) if i >= 0]
    hi = min(ends) + 1 if ends else len(text)
    doc = citation.document
    source = ", ".join(part for part in (f"“{doc.title}”", source_name(doc), doc.date, _link(doc.url)) if part)
    return f"{response.answer}\n\n“{' '.join(text[lo:hi].split())}”\n\n{source}"


def _copy_button(response: Response, number: int) -> str:
    plain = escape(copy_text(response, number)).replace("<br>", "&#10;")  # newlines kept as newlines
    # The chat's sanitizer drops data- attributes: the text rides in a hidden span beside the button.
    return f"<button type='button' class='rag-copy'>Copy</button><span class='rag-copy-text'>{plain}</span>"
