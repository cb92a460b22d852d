"""Where each character of a cleaned article came from in its source.

Cleaning drops lines and squeezes whitespace, so an offset into ``Document.text`` is not an
offset into the file. A document keeps the way back: its text is built from verbatim pieces of
the source (runs of a line, copied as they are) and separators that cleaning put in (a space
for a squeezed run of whitespace, a blank line between kept lines). The map lists the verbatim
pieces as flat ``(text_start, source_start, length)`` triples, in text order, with adjacent
pieces merged wherever the source between them is exactly the separator, so a plain article
maps in a few triples per paragraph.

``to_source(start, end)`` turns a span of the text into one of the source whose text equals the
span up to whitespace (a property test checks this for any input).

"The source" is the text of what was read: a .txt or .md file as decoded, an HTML file's
markup, a .jsonl record's ``text``, a PDF's pages as extracted one after another.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence


class TextBuilder:
    """Builds a cleaned text and its map, piece by piece.

    Args:
        source: the source text that verbatim pieces are cut from.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.parts: list[str] = []
        self.length = 0
        self.triples: list[int] = []
        self._inserted = ""  # what was inserted since the last verbatim piece

    def copy(self, source_start: int, source_end: int) -> None:
        """Append ``source[source_start:source_end]`` verbatim."""
        if source_end <= source_start:
            return
        t = self.triples
        if t and self.source[t[-2] + t[-1]:source_start] == self._inserted:
            t[-1] += len(self._inserted) + source_end - source_start  # the separator is the source's own text
        else:
            t += (self.length, source_start, source_end - source_start)
        self.parts.append(self.source[source_start:source_end])
        self.length += source_end - source_start
        self._inserted = ""

    def insert(self, text: str) -> None:
        """Append text that is not in the source (a separator)."""
        self.parts.append(text)
        self.length += len(text)
        self._inserted += text

    def text(self) -> str:
        return "".join(self.parts)

    def map(self) -> tuple[int, ...]:
        return tuple(self.triples)


def to_source(source_map: Sequence[int], start: int, end: int) -> tuple[int, int] | None:
    """The source span of text span ``[start, end)``, or None where the document has no map.

    A span that begins or ends in a separator is widened to the verbatim pieces around it.
    """
    if not source_map or end <= start:
        return None
    starts = source_map[0::3]
    # the piece holding start, or the first after it
    i = bisect.bisect_right(starts, start) - 1
    if i < 0 or start >= starts[i] + source_map[3 * i + 2]:
        i += 1
    # the piece holding end - 1, or the last before it
    j = bisect.bisect_right(starts, end - 1) - 1
    if i >= len(starts) or j < i:
        return None
    text_i, source_i, _ = source_map[3 * i:3 * i + 3]
    text_j, source_j, length_j = source_map[3 * j:3 * j + 3]
    source_start = source_i + max(0, start - text_i)
    source_end = source_j + min(length_j, end - text_j)
    return source_start, source_end


def compose(outer: Sequence[int], inner: Sequence[int]) -> tuple[int, ...]:
    """The map of text -> source from ``outer`` (text -> middle) and ``inner`` (middle -> source).

    Parts of the middle that ``inner`` does not cover (a character that stood for an HTML
    entity, say) are left out, as separators are.
    """
    starts = inner[0::3]
    out: list[int] = []
    for k in range(0, len(outer), 3):
        text_start, middle_start, length = outer[k:k + 3]
        middle_end = middle_start + length
        i = max(0, bisect.bisect_right(starts, middle_start) - 1)
        while i < len(starts) and starts[i] < middle_end:
            m, s, n = inner[3 * i:3 * i + 3]
            lo, hi = max(m, middle_start), min(m + n, middle_end)
            if lo < hi:
                if out and out[-3] + out[-1] == text_start + lo - middle_start and out[-2] + out[-1] == s + lo - m:
                    out[-1] += hi - lo  # continues the last piece in both texts
                else:
                    out += (text_start + lo - middle_start, s + lo - m, hi - lo)
            i += 1
    return tuple(out)


_MARKUP = re.compile(r"<!--.*?-->|<(head|script|style|noscript|template)\b.*?</\1\s*>|<[^>]*>|&#?\w+;",
                     re.DOTALL | re.I)
_BLOCK = re.compile(r"</?(p|br|div|li|ul|ol|h[1-6]|tr|table|blockquote|figure|figcaption|section|article|header|"
                    r"footer|title)\b", re.I)


def visible_text(html: str) -> tuple[str, tuple[int, ...]]:
    """The characters of ``html`` outside tags, entities decoded, and the map from them back to ``html``.

    A block tag (paragraph, line break, heading, list item...) becomes a line break, any other
    tag, comment or script a space; an entity's character is not mapped (it is not the
    source's text), the characters around it are.
    """
    import html as html_module

    built = TextBuilder(html)
    at = 0
    for match in _MARKUP.finditer(html):
        built.copy(at, match.start())
        token = match.group()
        built.insert(html_module.unescape(token) if token.startswith("&") else "\n" if _BLOCK.match(token) else " ")
        at = match.end()
    built.copy(at, len(html))
    return built.text(), built.map()


def align(text: str, source: str, window: int = 20_000) -> tuple[int, ...]:
    """A map from ``text`` to ``source`` for text extracted from it by another tool: each run of
    non-space characters of ``text`` found in ``source`` in order (at most ``window``
    characters past the last one found); a run not found is left unmapped."""
    triples: list[int] = []
    cursor = 0
    for run in re.finditer(r"\S+", text):
        found = source.find(run.group(), cursor, cursor + window + len(run.group()))
        if found < 0:
            continue
        triples += (run.start(), found, len(run.group()))
        cursor = found + len(run.group())
    return tuple(triples)
