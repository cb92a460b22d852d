"""Read articles (.txt .md .html .jsonl; files or folders) into clean ``Document`` records.

Cleaning works line by line and only removes what is clearly page furniture:
navigation and share lines, screen-size pickers, republishing and legal boilerplate,
a masthead above the headline, and repeated image captions. Real sentences stay.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterable
from datetime import date as Date
from pathlib import Path

from rag.errors import EmptyCorpusError, IngestError
from rag.types import Document

logger = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".jsonl")
DEFAULT_MAX_FILE_BYTES = 20_000_000  # a news article is kilobytes; a larger file is a dump, not an article

# Whole lines that are navigation, share buttons or layout widgets.
_FURNITURE_LINE = re.compile(
    r"^(accessibility links|breaking news|skip to (main )?content|our other projects|main menu|menu|search|"
    r"share( this( article| story)?)?( on (facebook|twitter|x|whatsapp|linkedin|email))?|tweet|print|email|"
    r"comments?|related( articles| stories| content)?|read more|advertisement|subscribe|sign in|log in|"
    r"xs|sm|md|lg|xl|\W*\d+x\d+ image|to find out more, click here\.?|click here\.?|back to top)$",
    re.IGNORECASE,
)
# Boilerplate sentences that publishers append to every article.
_BOILERPLATE = re.compile(
    r"(available for republishing|syndicate our content|all rights reserved|"
    r"has been declared an? \W?undesirable organization|could face fines or imprisonment for sharing|"
    r"subscribe to our newsletter|sign up for our newsletter|cookies? (policy|settings)|"
    r"we use cookies)",
    re.IGNORECASE,
)
_WORD = re.compile(r"[^\W_]+")
_STOPWORDS = frozenset(
    "the a an and or of in on at to for with by from as is are was were be has have had it its this that "
    "these those their his her they he she we you i not but".split()
)
_MONTHS = {m: i for i, m in enumerate(
    "january february march april may june july august september october november december".split(), 1)}
_DATE_PATTERNS = (
    (re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)"), ("y", "m", "d")),
    (re.compile(r"\b(\d{1,2})\.(\d{1,2})\.(\d{4})\b"), ("d", "m", "y")),
    (re.compile(r"\b(\d{1,2}) ([A-Z][a-z]+),? (\d{4})\b"), ("d", "M", "y")),
    (re.compile(r"\b([A-Z][a-z]+)\.? (\d{1,2}),? (\d{4})\b"), ("M", "d", "y")),
)
_NAME_LINE = re.compile(r"^(?:By\s+)?([A-Z][\w'’.-]+(?: [A-Z][\w'’.-]+){1,3})$")
_HEAD_LINES = 12


def document_id(text: str) -> str:
    """A stable id from the cleaned text: the same article always gets the same id."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _content_words(line: str) -> list[str]:
    return [w for w in (w.lower() for w in _WORD.findall(line)) if w not in _STOPWORDS and len(w) > 2]


def _looks_like_headline(line: str) -> bool:
    words = line.split()
    return 3 <= len(words) <= 25 and not line.endswith((".", ":", ";", ","))


def find_title(lines: list[str]) -> int | None:
    """Index of the headline among the first lines, or None.

    A headline is a short line, not a sentence, whose words come back in the body.
    Mastheads and addresses share no words with the article, which tells them apart.
    """
    body = set(_content_words(" ".join(lines[_HEAD_LINES // 2:])))
    for i, line in enumerate(lines[:_HEAD_LINES]):
        words = _content_words(line)
        if _looks_like_headline(line) and words and sum(w in body for w in words) / len(words) >= 0.4:
            return i
    return None


def find_date(lines: Iterable[str]) -> str | None:
    """The first date written in the given lines, as ISO ``YYYY-MM-DD``, or None."""
    for line in lines:
        for pattern, order in _DATE_PATTERNS:
            for match in pattern.finditer(line):
                parts = dict(zip(order, match.groups()))
                month = _MONTHS.get(parts["M"].lower()) if "M" in parts else int(parts["m"])
                try:
                    return Date(int(parts["y"]), month or 0, int(parts["d"])).isoformat()
                except ValueError:
                    continue
    return None


def _find_author(lines: list[str], title_at: int | None) -> tuple[str | None, int | None]:
    """A byline: a bare name just under the headline, or a name line followed by a bio starting with it."""
    after_title = range(title_at + 1, min(title_at + 4, len(lines))) if title_at is not None else range(0)
    for i in after_title:
        match = _NAME_LINE.match(lines[i])
        if match and not find_date([lines[i]]):
            return match.group(1), i
    for i in range(len(lines) - 1):
        match = _NAME_LINE.match(lines[i])
        if match and lines[i + 1].startswith(match.group(1) + ","):
            return match.group(1), i
    return None, None


def clean_text(raw: str, title: str | None = None) -> tuple[str, dict[str, str | None]]:
    """Strip page furniture and find the title, author and date.

    Args:
        raw: the article as read from disk.
        title: a title already known (from HTML or JSONL), which then is not searched for.

    Returns:
        The cleaned text (paragraphs separated by a blank line) and a dict with
        ``title``, ``author`` and ``date`` (each None when not found).
    """
    lines = []
    for line in raw.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = re.sub(r"[ \t\u00a0\u2000-\u200b\u202f]+", " ", line).strip()
        line = line.lstrip("•·▪").strip()
        if not line or _FURNITURE_LINE.match(line) or _BOILERPLATE.search(line):
            continue
        if lines and line == lines[-1]:  # a caption or heading printed twice
            continue
        lines.append(line)

    title_at = find_title(lines) if title is None else None
    if title_at is not None:
        title = lines[title_at]
        # Above the headline sits the masthead: short lines that are not sentences.
        head = lines[:title_at]
        if all(len(line.split()) < 12 and not line.endswith(".") for line in head):
            lines = lines[title_at:]
            title_at = 0
    author, author_at = _find_author(lines, title_at)
    if author_at is not None:
        del lines[author_at]  # a bare name line is a byline: metadata, not text
    meta = {"title": title, "author": author, "date": find_date(lines[:_HEAD_LINES])}
    return "\n\n".join(lines), meta


def _decode(data: bytes, path: Path) -> str:
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


def _html_to_text(html: str) -> tuple[str, str | None, dict[str, str | None]]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")

    def meta(*names: str) -> str | None:
        for name in names:
            tag = soup.find("meta", attrs={"property": name}) or soup.find("meta", attrs={"name": name})
            if tag and tag.get("content"):
                return tag["content"].strip()
        return None

    title = meta("og:title") or (soup.title.get_text(strip=True) if soup.title else None)
    found = {"author": meta("author", "article:author"), "url": meta("og:url"),
             "date": meta("article:published_time", "date", "pubdate"), "outlet": meta("og:site_name")}
    for tag in soup(["script", "style", "noscript", "nav", "header", "footer", "aside", "form", "svg"]):
        tag.decompose()
    root = soup.find("article") or soup.body or soup
    h1 = root.find("h1")
    title = h1.get_text(" ", strip=True) if h1 else title
    text = root.get_text("\n", strip=False)
    return text, title, found


def _make_document(raw: str, source: str, title: str | None = None, author: str | None = None,
                   date: str | None = None, url: str | None = None, outlet: str | None = None) -> Document | None:
    text, meta = clean_text(raw, title)
    if not text.strip():
        return None
    first_line = text.split("\n", 1)[0]
    return Document(
        id=document_id(text),
        title=(title or meta["title"] or first_line[:120]).strip(),
        text=text,
        source=source,
        author=author or meta["author"],
        date=(find_date([date]) or date) if date else meta["date"],
        url=url,
        outlet=outlet,
    )


def read_file(path: Path, on_skip: Callable[[str], None] | None = None,
              max_bytes: int | None = DEFAULT_MAX_FILE_BYTES) -> list[Document]:
    """Read one article file (or, for .jsonl, one article per line).

    Args:
        path: the file.
        on_skip: called with a one-line message for each malformed line of a .jsonl file,
            which is skipped while the rest is read; by default a logged warning.
        max_bytes: refuse a larger file before reading it; None for no limit.

    Raises:
        IngestError: the file is too large, binary, undecodable or of an unsupported type.
    """
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise IngestError(f"{path}: unsupported file type {suffix or '(none)'!r} "
                          f"(supported: {', '.join(SUPPORTED_SUFFIXES)})")
    try:
        size = path.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise IngestError(f"{path}: {size / 1e6:.1f} MB, over the size limit of {max_bytes / 1e6:g} MB")
        raw = _decode(path.read_bytes(), path)
    except OSError as e:
        raise IngestError(f"{path}: cannot read it: {e.strerror or e}") from e
    if suffix in (".html", ".htm"):
        text, title, found = _html_to_text(raw)
        doc = _make_document(text, str(path), title, found["author"], found["date"], found["url"],
                             found["outlet"])
        return [doc] if doc else []
    if suffix == ".jsonl":
        return _documents_from_jsonl(raw, path, on_skip or _log_skip)
    if suffix in (".md", ".markdown"):
        heading = re.search(r"^#\s+(.+)$", raw, re.MULTILINE)
        raw = re.sub(r"^#{1,6}\s+", "", raw, flags=re.MULTILINE)
        doc = _make_document(raw, str(path), heading.group(1).strip() if heading else None)
        return [doc] if doc else []
    doc = _make_document(raw, str(path))
    return [doc] if doc else []


def _log_skip(message: str) -> None:
    logger.warning("skipped %s", message)


def _documents_from_jsonl(raw: str, path: Path, on_skip: Callable[[str], None]) -> list[Document]:
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
            on_skip(f"{path}:{lineno}: each line must be a JSON object with a 'text' string ({e})")
            continue
        url = record.get("url")
        doc = _make_document(text, url or f"{path}:{lineno}", record.get("title"), record.get("author"),
                             record.get("date"), url, record.get("outlet"))
        if doc:
            docs.append(doc)
    return docs


def read_or_skip(path: Path, on_skip: Callable[[str], None],
                 max_bytes: int | None = DEFAULT_MAX_FILE_BYTES) -> list[Document]:
    """:func:`read_file`, with a file that cannot be read, or holds no text, reported to ``on_skip`` instead."""
    try:
        found = read_file(path, on_skip, max_bytes)
    except IngestError as e:
        on_skip(str(e))
        return []
    if not found:
        on_skip(f"{path}: no text in it")
    return found


def iter_article_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand files and folders into the article files to read, each once, in a stable order.

    Raises:
        IngestError: a path does not exist.
    """
    files: dict[Path, Path] = {}
    for path in map(Path, paths):
        if not path.exists():
            raise IngestError(f"no such file or folder: {path}")
        if path.is_dir():
            found = sorted(p for p in path.rglob("*")
                           if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
        else:
            found = [path]
        for file in found:
            files.setdefault(file.resolve(), file)
    return list(files.values())


def read_documents(paths: Iterable[str | Path], on_skip: Callable[[str], None] | None = None,
                   progress: bool = False, max_file_bytes: int | None = DEFAULT_MAX_FILE_BYTES) -> list[Document]:
    """Read every article under ``paths``; what cannot be read is skipped and reported, not fatal.

    Args:
        paths: files and folders; folders are searched recursively for supported files.
        on_skip: called once with a one-line message ("where: why") for each file, or
            .jsonl line, that is skipped; by default a logged warning.
        progress: show a progress bar over the files.
        max_file_bytes: refuse larger files before reading them; None for no limit.

    Returns:
        The documents, without duplicates (same cleaned text, same id).

    Raises:
        IngestError: a path does not exist.
        EmptyCorpusError: no readable article was found.
    """
    from tqdm.auto import tqdm

    skip = on_skip or _log_skip
    paths = list(paths)
    files = iter_article_files(paths)
    docs: dict[str, Document] = {}
    for file in tqdm(files, desc="reading", unit="file", disable=not progress or len(files) < 2):
        for doc in read_or_skip(file, skip, max_file_bytes):
            docs.setdefault(doc.id, doc)
    if not docs:
        raise EmptyCorpusError(f"no readable articles in {', '.join(map(str, paths)) or '(nothing given)'}")
    return list(docs.values())
