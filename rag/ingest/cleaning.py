"""Clean an article's text: cut page furniture, keep every fact, find its metadata.

Cleaning works line by line and removes only what is clearly furniture: navigation and
share lines, screen-size pickers, cookie, newsletter and republishing prompts, and a caption
printed twice in a row. Whatever states a fact stays in the text, where it can be retrieved
and cited: the headline, the byline, the dateline, a masthead above the headline (the
publisher's name and address), photo captions (once), copyright lines and "about the
author" notes. Whitespace runs become one space and kept lines are joined by a blank line;
``rag.source_map`` records where each piece came from.

Metadata found in the text (each also kept in it):

- title: the first short, non-sentence line among the first lines whose words come back in
  the body (a masthead shares none);
- author: a bare name just under the headline, or a name line followed by a note that starts
  with that name ("Abubakar Siddique, a journalist for ...");
- date: the first full date among the first lines, as ISO 8601;
- publisher: the first line of a masthead above the headline, when it reads as a name;
- outlet: the outlet of an "about the author" note ("a journalist for RFE/RL's Radio
  Azadi" gives RFE/RL), or the name an article quotes its sources as telling at least
  twice ("..., told Afghanistan Today"), which is how reporters name their own outlet.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from rag.dates import dates_in
from rag.source_map import TextBuilder
from rag.types import HEAD_LINES

# Whole lines that are navigation, share buttons or layout widgets.
_FURNITURE_LINE = re.compile(
    r"^(accessibility links|breaking news|skip to (main )?content|our other projects|main menu|menu|search|"
    r"share( this( article| story)?)?( on (facebook|twitter|x|whatsapp|linkedin|email))?|tweet|print|email|"
    r"comments?|related( articles| stories| content)?|read more|advertisement|subscribe|sign in|log in|"
    r"e-?mail this (story|article)|"
    r"xs|sm|md|lg|xl|\W*\d+x\d+ image|to find out more, click here\.?|click here\.?|back to top)$",
    re.IGNORECASE,
)
# Prompts that publishers append to every article: they state nothing about the article.
_PROMPT = re.compile(
    r"(available for republishing|syndicate our content|"
    r"has been declared an? \W?undesirable organization|could face fines or imprisonment for sharing|"
    r"subscribe to our newsletter|sign up for our newsletter|cookies? (policy|settings)|we use cookies)",
    re.IGNORECASE,
)
_WIDGETS = re.compile(r"\s[|·•]\s")
_SPACE = " \t\u00a0\u2000-\u200b\u202f"
_RUN = re.compile(rf"[^{_SPACE}]+")
_LINE = re.compile(r"[^\r\n]+")
_BULLETS = "•·▪"
_WORD = re.compile(r"[^\W_]+")
_STOPWORDS = frozenset(
    "the a an and or of in on at to for with by from as is are was were be has have had it its this that "
    "these those their his her they he she we you i not but".split()
)
_NAME = r"[A-Z][\w'’.-]+(?: [A-Z][\w'’.-]+){1,3}"
_NAME_LINE = re.compile(rf"^(?:By\s+)?({_NAME})$")
_BYLINE = re.compile(rf"^By\s+({_NAME})$")
_AUTHOR_NOTE_OUTLET = re.compile(
    r"\b(?:journalist|correspondent|reporter|writer|editor|columnist|contributor)\s+(?:for|with|at)\s+"
    r"(?:the\s+)?((?:[A-Z][\w/&.-]*)(?:\s+[A-Z][\w/&.-]*)*?)(?:'s?\b|’s?\b|[,.;]|\s+(?:and|who|since)\b|$)")
_TOLD = re.compile(r"\btold ((?:[A-Z][\w/&-]+)(?: [A-Z][\w/&-]+)*)")


@dataclass(frozen=True)
class Cleaned:
    """An article's cleaned text, the map back to its source, and the metadata found in it."""

    text: str
    source_map: tuple[int, ...]
    title: str | None
    author: str | None
    date: str | None
    publisher: str | None
    outlet: str | None


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
    body = set(_content_words(" ".join(lines[HEAD_LINES // 2:])))
    for i, line in enumerate(lines[:HEAD_LINES]):
        words = _content_words(line)
        if _looks_like_headline(line) and words and sum(w in body for w in words) / len(words) >= 0.4:
            return i
    return None


def _headline_above_byline(lines: list[str]) -> int | None:
    """The headline of a plain-text story with a "By NAME" line among its first lines: the nearest line above
    the byline that reads as a headline (a masthead above it is then the publisher, not the title)."""
    byline = next((i for i, line in enumerate(lines[:HEAD_LINES]) if _BYLINE.match(line)), None)
    if byline is None:
        return None
    return next((i for i in range(byline - 1, -1, -1) if _looks_like_headline(lines[i])), None)


def find_date(lines: Iterable[str]) -> str | None:
    """The first date written in the given lines, as ISO ``YYYY-MM-DD``, or None."""
    for line in lines:
        for _, _, iso in dates_in(line):
            return iso
    return None


def _find_author(lines: list[str], title_at: int | None) -> str | None:
    """A byline: a bare name just under the headline, or a name line followed by a note starting with it."""
    after_title = range(title_at + 1, min(title_at + 4, len(lines))) if title_at is not None else range(0)
    for i in after_title:
        match = _NAME_LINE.match(lines[i])
        if match and not find_date([lines[i]]):
            return match.group(1)
    for i in range(len(lines) - 1):
        match = _NAME_LINE.match(lines[i])
        if match and lines[i + 1].startswith(match.group(1) + ","):
            return match.group(1)
    return None


def _find_publisher(head: list[str]) -> str | None:
    """The masthead's first line, when the lines above the headline are a masthead and it reads as a name."""
    if not head or not all(len(line.split()) < 12 and not line.endswith(".") for line in head):
        return None
    first = head[0]
    return first if re.fullmatch(r"[A-Z][\w'’&.-]*(?: [\w'’&.-]+){0,7}", first) and not re.search(r"\d", first) \
        else None


def _find_outlet(lines: list[str], author: str | None) -> str | None:
    for line in lines:
        if author and line.startswith(author + ","):
            match = _AUTHOR_NOTE_OUTLET.search(line)
            if match:
                return match.group(1)
    told = Counter(match.group(1) for line in lines for match in _TOLD.finditer(line))
    named = [name for name, count in told.most_common(1) if count >= 2]
    return named[0] if named else None


def _lines(raw: str, markdown: bool) -> Iterator[tuple[str, list[tuple[int, int]]]]:
    """Each non-blank line of ``raw`` as (its words joined by single spaces, the words' spans in ``raw``)."""
    for line in _LINE.finditer(raw):
        spans = [(line.start() + w.start(), line.start() + w.end()) for w in _RUN.finditer(line.group())]
        if markdown and spans and re.fullmatch("#{1,6}", raw[slice(*spans[0])]):
            spans.pop(0)  # a heading's marks
        while spans:  # a leading bullet is layout, not text
            start, end = spans[0]
            start += len(raw[start:end]) - len(raw[start:end].lstrip(_BULLETS))
            if start < end:
                spans[0] = (start, end)
                break
            spans.pop(0)
        if spans:
            yield " ".join(raw[a:b] for a, b in spans), spans


def clean(raw: str, title: str | None = None, markdown: bool = False) -> Cleaned:
    """Cut the furniture of ``raw``, keep its facts, and find its metadata (see the module's notes).

    Args:
        raw: the article's source text.
        title: a title known already (from HTML or JSONL), which then is not searched for.
        markdown: drop the ``#`` marks of headings.
    """
    kept: list[tuple[str, list[tuple[int, int]]]] = []
    for line, spans in _lines(raw, markdown):
        if _PROMPT.search(line) or all(_FURNITURE_LINE.match(part.strip()) for part in _WIDGETS.split(line)):
            continue  # furniture, or a row of it ("Print | E-mail this story")
        if kept and line == kept[-1][0]:  # a caption or heading printed twice
            continue
        kept.append((line, spans))
    lines = [line for line, _ in kept]

    title_at = None
    if title is None:
        title_at = _headline_above_byline(lines)
        title_at = find_title(lines) if title_at is None else title_at
    publisher = None
    if title_at is not None:
        title = lines[title_at]
        publisher = _find_publisher(lines[:title_at])
    author = _find_author(lines, title_at)

    built = TextBuilder(raw)
    for i, (_, spans) in enumerate(kept):
        if i:
            built.insert("\n\n")
        for j, (start, end) in enumerate(spans):
            if j:
                built.insert(" ")
            built.copy(start, end)
    return Cleaned(text=built.text(), source_map=built.map(), title=title, author=author,
                   date=find_date(lines[:HEAD_LINES]), publisher=publisher, outlet=_find_outlet(lines, author))
