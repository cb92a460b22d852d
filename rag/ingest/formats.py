"""One reader per kind of file a news collection comes in, each giving ``Document`` records.

- ``.txt``, ``.md``: one article, cleaned by the line rules of ``rag.ingest.cleaning``;
- ``.html``: one article, found by trafilatura (main text, author, date, site name, URL);
  the lines it drops inside the article (byline, dateline, captions) and an "about the
  author" note or copyright line after it are kept as well, since they state facts;
- ``.jsonl``: one article per line (``text`` and optional ``title``, ``url``, ``date``,
  ``author``, ``outlet``);
- ``.pdf``: one article, its pages' text in order (pypdf); ``Document.pages`` says where
  each page begins, so a citation can name its page;
- ``.rss``, ``.atom``, ``.xml`` feeds: one article per item (feedparser), the item's link,
  author and date kept;
- ``.warc``, ``.warc.gz`` web archives: one article per HTML response (warcio), read as
  ``.html`` is, its URL and crawl date kept.

Every document's ``source_map`` leads back to its source (``rag.source_map``): the file's
text for .txt and .md, the file's markup for .html, the record's ``text`` for .jsonl, the
pages' text for .pdf, the item's content for a feed, the response's markup for WARC.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rag.errors import IngestError
from rag.ingest.cleaning import clean, find_date
from rag.source_map import TextBuilder, align, compose, to_source, visible_text
from rag.types import Document

OnSkip = Callable[[str], None]


def document_id(text: str) -> str:
    """A stable id from the cleaned text: the same article always gets the same id."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def decode(data: bytes, path: Path | str) -> str:
    """Text from bytes: UTF-8 when it is, else the encoding charset-normalizer finds.

    NUL bytes mean binary data, unless a byte-order mark says UTF-16 or UTF-32.
    """
    from charset_normalizer import from_bytes

    if b"\x00" in data[:8192]:
        best = from_bytes(data).best()
        if best is None or not best.bom:
            raise IngestError(f"{path}: binary file, not text")
        return str(best)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        best = from_bytes(data).best()
    if best is None:
        raise IngestError(f"{path}: cannot tell its text encoding")
    return str(best)


def make_document(raw: str, source: str, title: str | None = None, author: str | None = None,
                  date: str | None = None, url: str | None = None, outlet: str | None = None,
                  markdown: bool = False, inner_map: tuple[int, ...] | None = None,
                  pages: tuple[int, ...] = (), crawled: str | None = None) -> Document | None:
    """Clean ``raw`` into a document; metadata given wins over what the text says.

    Args:
        inner_map: where ``raw`` itself comes from, when it is not the source (see ``rag.source_map.compose``).
    """
    cleaned = clean(raw, title, markdown)
    if not cleaned.text.strip():
        return None
    first_line = cleaned.text.split("\n", 1)[0]
    return Document(
        id=document_id(cleaned.text),
        title=(title or cleaned.title or first_line[:120]).strip(),
        text=cleaned.text,
        source=source,
        author=author or cleaned.author,
        date=(find_date([date]) or date) if date else cleaned.date,
        url=url,
        outlet=outlet or cleaned.outlet,
        publisher=cleaned.publisher,
        source_map=cleaned.source_map if inner_map is None else compose(cleaned.source_map, inner_map),
        pages=pages,
        crawled=crawled,
    )


def read_text(raw: str, source: str) -> list[Document]:
    doc = make_document(raw, source)
    return [doc] if doc else []


def read_markdown(raw: str, source: str) -> list[Document]:
    heading = re.search(r"^#\s+(.+)$", raw, re.MULTILINE)
    doc = make_document(raw, source, heading.group(1).strip() if heading else None, markdown=True)
    return [doc] if doc else []


def read_jsonl(raw: str, source: str, on_skip: OnSkip) -> list[Document]:
    docs = []
    for lineno, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            text = record["text"]
            if not isinstance(text, str):
                raise TypeError("'text' is not a string")
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            on_skip(f"{source}:{lineno}: each line must be a JSON object with a 'text' string ({e})")
            continue
        url = record.get("url")
        doc = make_document(text, url or f"{source}:{lineno}", record.get("title"), record.get("author"),
                            record.get("date"), url, record.get("outlet"))
        if doc:
            docs.append(doc)
    return docs


# Tables off: a page laid out in tables would come back whole, menus and all (eval.html_extraction).
_FACT_AFTER = re.compile(r"©|\bcopyright\b|\ball rights reserved\b", re.IGNORECASE)
_CHROME = re.compile(r"<(nav|footer|aside|form|menu)\b.*?</\1\s*>", re.DOTALL | re.IGNORECASE)


def _article_lines(html: str, visible: str, visible_map: tuple[int, ...], main_text: str, title: str | None,
                   author: str | None) -> tuple[str, tuple[int, ...]]:
    """The lines of a page's visible text that make up its article, and their map into ``visible``.

    The article runs from its headline (the last line before the extractor's text that the
    title holds) or else the first line the extractor kept, to the last one it kept, every
    line between them included (bylines, datelines and captions are there); after it, a line
    that starts with the author's name (a note about them) or states a copyright is kept
    too. Nothing inside the page's navigation, footer, sidebars or forms is article, but a
    copyright line.
    """
    def norm(line: str) -> str:
        return " ".join(line.split())

    chrome = [(m.start(), m.end()) for m in _CHROME.finditer(html)]

    def in_chrome(start: int, end: int) -> bool:
        span = to_source(visible_map, start, end)
        return span is not None and any(lo <= span[0] < hi for lo, hi in chrome)

    kept = {norm(line) for line in main_text.splitlines() if line.strip()}
    lines = [(m.start(), m.end(), norm(m.group())) for m in re.finditer(r"[^\n]+", visible) if m.group().strip()]
    lines = [line for line in lines if _FACT_AFTER.search(line[2]) or not in_chrome(line[0], line[1])]
    inside = [i for i, (_, _, text) in enumerate(lines) if text in kept]
    if not inside:
        return "", ()
    headline = [i for i in range(inside[0]) if title and len(lines[i][2].split()) >= 3 and lines[i][2] in norm(title)]
    chosen = list(range(headline[-1] if headline else inside[0], inside[-1] + 1))
    chosen += [i for i in range(inside[-1] + 1, len(lines))
               if (author and lines[i][2].startswith(author)) or _FACT_AFTER.search(lines[i][2])]
    built = TextBuilder(visible)
    for i in chosen:
        built.copy(lines[i][0], lines[i][1])
        built.insert("\n")
    return built.text(), built.map()


def extract(html: str, url: str | None = None) -> Any:
    """trafilatura's article and metadata of a page (a ``trafilatura.settings.Document``), or None if it finds none.

    Comments and tables (menus, share rows, league tables beside the story) are left out.
    """
    import trafilatura
    from trafilatura.settings import Document as Extracted

    found = trafilatura.bare_extraction(html, url=url, with_metadata=True, include_comments=False,
                                        include_tables=False)
    return found if isinstance(found, Extracted) else None


def read_html(html: str, source: str, url: str | None = None, crawled: str | None = None) -> list[Document]:
    """One article from a page: trafilatura finds it and its metadata, the line rules clean it."""
    found = extract(html, url)
    visible, visible_map = visible_text(html)
    if found is None or not (found.text or "").strip():  # no article found: the visible text, by the line rules
        doc = make_document(visible, source, url=url, inner_map=visible_map, crawled=crawled)
        return [doc] if doc else []
    article, article_map = _article_lines(html, visible, visible_map, found.text, found.title, found.author)
    if not article:  # the extractor's text is not line for line in the page: map it word by word
        article, article_map = found.text, align(found.text, visible)
    title, outlet = _title_and_outlet(found.title, found.sitename, article)
    doc = make_document(article, source, title, found.author, found.date, url or found.url, outlet,
                        inner_map=compose(article_map, visible_map), crawled=crawled)
    return [doc] if doc else []


def _title_and_outlet(title: str | None, site: str | None, article: str) -> tuple[str | None, str | None]:
    """The headline and the outlet, from a page title such as "The Valley Post: Floods close the road" when
    the article's first line is the headline inside it; the site name, where the page gives one, is the outlet."""
    headline = article.split("\n", 1)[0].strip()
    if not title or headline == title or len(headline.split()) < 3 or headline not in title:
        return title, site
    rest = title.replace(headline, "").strip(" |:-–—·")
    return headline, site or (rest if 0 < len(rest.split()) <= 6 else None)


def read_pdf(data: bytes, source: str) -> list[Document]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        texts = [page.extract_text() or "" for page in reader.pages]
        info = reader.metadata
        title, author = (info.title or None, info.author or None) if info else (None, None)
    except (PdfReadError, ValueError, KeyError) as e:
        raise IngestError(f"{source}: not a readable PDF ({e})") from None
    try:
        created = info.creation_date.date().isoformat() if info and info.creation_date else None
    except ValueError:  # a malformed date in the document information: the text may still say one
        created = None
    pages, at = [], 0
    for text in texts:
        pages.append(at)
        at += len(text) + 2
    doc = make_document("\n\n".join(texts), source, title, author, created, pages=tuple(pages))
    return [doc] if doc else []


def _iso(parsed: Sequence[int] | None) -> str | None:
    """A feed's parsed time (a ``time.struct_time``) as ISO 8601 in UTC."""
    if not parsed:
        return None
    year, month, day, hour, minute, second = parsed[:6]
    return datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc).isoformat()


def read_feed(data: bytes, source: str) -> list[Document]:
    """One article per item of an RSS or Atom feed: its content (or summary), link, author and date."""
    import feedparser

    feed = feedparser.parse(data)
    if feed.bozo and not feed.entries:
        raise IngestError(f"{source}: not an RSS or Atom feed ({feed.bozo_exception})")
    outlet = feed.feed.get("title") or None
    docs = []
    for n, entry in enumerate(feed.entries, 1):
        content = entry["content"][0]["value"] if entry.get("content") else entry.get("summary", "")
        visible, visible_map = visible_text(content)
        published = _iso(entry.get("published_parsed") or entry.get("updated_parsed"))
        link = entry.get("link") or None
        doc = make_document(visible, link or f"{source}#{n}", entry.get("title") or None, entry.get("author") or None,
                            published, link, outlet, inner_map=visible_map)
        if doc:
            docs.append(doc)
    return docs


def read_warc(data: bytes, source: str, on_skip: OnSkip) -> list[Document]:
    """One article per HTML response of a WARC archive (gzipped or not), with its URL and crawl date."""
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    docs = []
    try:
        for record in ArchiveIterator(io.BytesIO(data)):
            if record.rec_type != "response" or not record.http_headers:
                continue
            if "html" not in (record.http_headers.get_header("Content-Type") or "").lower():
                continue
            uri = record.rec_headers.get_header("WARC-Target-URI")
            crawled = record.rec_headers.get_header("WARC-Date")
            try:
                html = decode(record.content_stream().read(), uri)
            except IngestError as e:
                on_skip(f"{source}: {e}")
                continue
            found = read_html(html, uri, url=uri, crawled=crawled)
            if not found:
                on_skip(f"{source}: {uri}: no text in it")
            docs += found
    except ArchiveLoadFailed as e:
        raise IngestError(f"{source}: not a WARC archive ({e})") from None
    return docs
