"""What the text around an answer says about it, by rules: answer types, and the question's key words nearby.

Two checks a reader's logits do not make, each a pure function of strings:

- **Answer-type agreement.** "How many" wants a number, "when" a date or time, "who" a person
  or an organisation, "where" a place. :func:`expected_type` reads the question's wh-phrase,
  :func:`span_types` what a span looks like (a number, a date, a name), and
  :func:`type_agreement` says +1 (fits), -1 (cannot fit) or 0 (cannot tell).
- **Key words near the answer.** An answer to "What is the population of Kabul?" should
  stand near "Kabul". :func:`key_words` splits a question into the names it asks about and its
  other content words; :func:`share_near` gives the share of them found within a window of
  characters around the span.
"""

from __future__ import annotations

import re
from typing import Literal

AnswerType = Literal["number", "date", "entity", "place"]

NEAR = 200  # characters either side of a span that count as near it

_EXPECTED_PATTERNS: tuple[tuple[str, AnswerType], ...] = (
    (r"\b(?:how (?:many|much|old|long|far|large|big|tall|high|often)|what (?:number|percentage|proportion|"
     r"share|amount|age)|by how much)\b", "number"),
    (r"\b(?:when|what (?:year|date|day|month|time|decade|century)|which (?:year|date|day|month|decade|century)|"
     r"since when|until when)\b", "date"),
    (r"\b(?:where|what (?:country|city|province|town|region|village|place|state|district)|"
     r"which (?:country|city|province|town|region|village|place|state|district))\b", "place"),
    (r"\b(?:who|whom|whose)\b", "entity"),
)
_EXPECTED = tuple((re.compile(pattern, re.IGNORECASE), kind) for pattern, kind in _EXPECTED_PATTERNS)

_NUMBER_WORDS = ("one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
                 "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety "
                 "hundred hundreds thousand thousands million millions billion billions dozen dozens half "
                 "quarter several few couple percent")
_NUMBER = re.compile(rf"\d|\b(?:{'|'.join(_NUMBER_WORDS.split())})\b", re.IGNORECASE)
_MONTHS = ("january february march april may june july august september october november december "
           "jan feb mar apr jun jul aug sep sept oct nov dec")
_DATE = re.compile(
    rf"\b(?:1[5-9]\d\d|20\d\d|\d\d?(?:st|nd|rd|th)|(?:{'|'.join(_MONTHS.split())})\.?|monday|tuesday|wednesday|"
    r"thursday|friday|saturday|sunday|today|yesterday|tomorrow|ago|since|century|centuries|decade|decades|"
    r"\d+s|years?|months?|weeks?|days?|morning|evening|night|noon|midnight|o'clock|[ap]\.?m\.?|spring|summer|"
    r"autumn|fall|winter|era|period)\b|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}", re.IGNORECASE)
_CAPITALISED = re.compile(r"\b[A-Z][\w'’-]*")

_STOP = frozenset("""a about above after again against all also am an and any are as at be because been before
being below between both but by can could did do does doing done down during each else ever few for from further
had has have having he her here hers herself him himself his how however i if in into is it its itself just let
many me more most much my myself no nor not now of off on once one only or other our ours out over own same she
should so some such than that the their theirs them themselves then there these they this those through to too
under until up upon us very was we were what when where which while who whom whose why will with within without
would you your yours according called said say says year years did does name named""".split())
_WORD = re.compile(r"[\w'’-]+")


def expected_type(question: str) -> AnswerType | None:
    """The kind of answer the question's wh-phrase asks for, or None (a "what" or "why" question)."""
    return next((kind for pattern, kind in _EXPECTED if pattern.search(question)), None)


def span_types(span: str) -> set[AnswerType]:
    """What a span could be: "number" (digits, number words), "date", "entity" and "place" (a capitalised word)."""
    found: set[AnswerType] = set()
    if _NUMBER.search(span):
        found.add("number")
    if _DATE.search(span):
        found.add("date")
    if _CAPITALISED.search(span):
        found |= {"entity", "place"}
    return found


def type_agreement(question: str, span: str) -> int:
    """+1 if the span has the type the question asks for, -1 if it cannot have it, 0 if that cannot be told.

    A "who" or "where" answer without a capital may still fit ("the province's police chief"),
    so it scores 0, unless it is only a number or date, which scores -1.
    """
    wanted = expected_type(question)
    if wanted is None:
        return 0
    kinds = span_types(span)
    if wanted in kinds:
        return 1
    if wanted in ("entity", "place"):
        return -1 if kinds & {"number", "date"} else 0
    return -1


def _stem(word: str) -> str:
    """A crude stem: the first five letters, lower case ("governors" and "governor" meet)."""
    return word.lower().rstrip("'’s")[:5]


def key_words(question: str) -> tuple[set[str], set[str]]:
    """The question's names (capitalised words past its first) and its other content words, as stems."""
    words = _WORD.findall(question)
    names = {_stem(w) for i, w in enumerate(words) if i > 0 and w[:1].isupper() and w.lower() not in _STOP}
    content = {_stem(w) for w in words if w.lower() not in _STOP and len(w) > 2} - names
    return names, content


def share_near(stems: set[str], text: str, start: int, end: int, window: int = NEAR) -> float:
    """The share of ``stems`` found in ``text`` within ``window`` characters of [start, end); 1.0 if none asked."""
    if not stems:
        return 1.0
    around = {_stem(w) for w in _WORD.findall(text[max(0, start - window):end + window])}
    return len(stems & around) / len(stems)


_SENTENCE_END = re.compile(r"[.!?][\"'”’)]?\s+(?=[A-Z\"'“‘(])|\n\s*\n")


def sentence_around(text: str, start: int, end: int) -> tuple[int, int]:
    """The bounds of the sentence (or sentences) that hold the span [start, end) of ``text``."""
    first = max((m.end() for m in _SENTENCE_END.finditer(text, 0, start)), default=0)
    after = _SENTENCE_END.search(text, end)
    return first, after.start() + 1 if after else len(text)


def share_in_sentence(stems: set[str], text: str, start: int, end: int) -> float:
    """The share of ``stems`` found in the sentence that holds the span; 1.0 if none asked."""
    lo, hi = sentence_around(text, start, end)
    return share_in(stems, text[lo:hi])


def share_in(stems: set[str], text: str) -> float:
    """The share of ``stems`` found anywhere in ``text``; 1.0 if none asked."""
    return share_near(stems, text, 0, len(text), 0)


def echo(question: str, span: str) -> float:
    """The share of the span's content words that the question already holds: an answer rarely repeats it."""
    words = {_stem(w) for w in _WORD.findall(span) if w.lower() not in _STOP}
    if not words:
        return 0.0
    return len(words & {_stem(w) for w in _WORD.findall(question)}) / len(words)
