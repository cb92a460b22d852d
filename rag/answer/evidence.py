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

Those two are features the verifier weighs. :func:`contradiction` is stricter: it names what
rules a span out altogether, where the text itself says the span answers another question.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
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


# a calendar year: not "What year of college is she in?", "What year is this student?"
_YEAR_QUESTION = re.compile(r"\b(?:what|which) year\b(?!\s+of\b)", re.IGNORECASE)
_YEAR_OF_STUDY = re.compile(r"\b(?:school|college|student|university|residency|grade)\b", re.IGNORECASE)
# words that make a title of another ("Vice President"), not a name it belongs to
_TITLE_PREFIXES = frozenset("vice deputy lieutenant acting former assistant associate executive senior interim".split())
_NAME = r"[A-Z][\w'’.-]*(?:\s+(?:of\s+)?[A-Z][\w'’.-]*)*"  # capitalised words, "of" between them
# "the governor of Kunduz", "president of the United States": a title asked of a name
_TITLE_OF = re.compile(rf"\b([a-z][a-z-]+)\s+of\s+(?:the\s+)?({_NAME})")


def contradiction(question: str, text: str, start: int, end: int, elsewhere: Sequence[str] = ()) -> str | None:
    """Why the span [start, end) of ``text`` cannot answer ``question``, as a clause to show the user ("the
    articles name Noor as Balkh's governor, not Kunduz's"), or None when nothing rules it out.

    - A question for a year ("In what year was Dostum born?") answered without a number ("Two years
      ago"); not a year of study ("What year of college is she in?").
    - A title asked of one name ("Who is the governor of Kunduz?") answered by the holder of that
      title of another name, as the text says right beside the span ("Balkh Governor Mohammad
      Atta Noor", "Noor, governor of Balkh"), or anywhere in ``text`` and the ``elsewhere`` texts
      (the other passages read) for the name the span holds ("Governor Noor" after "Balkh
      Governor Mohammad Atta Noor").

    On the training sets' gold answers (``python -m eval.contradictions``) the year check rules out
    11 of 588 (most ask two things at once, "Who invented the printing press and what year?"),
    the title check 5 of 1,847 right answers and 16 of 1,095 with a name swapped for another of
    the same article, which the paragraph then no longer answers.
    """
    if _YEAR_QUESTION.search(question) and not _YEAR_OF_STUDY.search(question) \
            and not re.search(r"\d", text[start:end]):
        return f"“{text[start:end]}” is not a year"
    asked = _TITLE_OF.search(question)
    if asked is None or asked.group(1) in _STOP:
        return None
    title, name = re.escape(asked.group(1)), asked.group(2)
    lo, hi = sentence_around(text, start, end)
    holders = []  # whose title the text says the span holds ("Balkh" in "Balkh Governor Mohammad Atta Noor")
    before = re.search(rf"({_NAME})(?:'s|’s)?\s+(?i:{title})s?\s*,?\s*(?:[A-Z][\w.-]*\s+){{0,3}}$", text[lo:start])
    if before is not None and text[lo:lo + before.start(1)].strip():  # not the sentence's first word ("Another")
        holders.append(before.group(1))
    after = re.match(rf"\s*,?\s*(?:the\s+)?(?:(?i:{title})\s+of\s+(?:the\s+)?({_NAME})|({_NAME})\s+(?i:{title}))",
                     text[end:hi])
    if after is not None:
        holders.append(after.group(1) or after.group(2))
    named = {_stem(w) for w in _CAPITALISED.findall(text[start:end])} - {_stem(asked.group(1))}
    if not holders and named:
        holders = [h for t in (text, *elsewhere) for h, holder in _title_holders(title, t)
                   if _stem(holder.split()[-1]) in named]  # by surname: many share "Mohammad"
    asked_stems = {_stem(w) for w in _WORD.findall(name)}
    in_question = {w.lower() for w in _WORD.findall(question)}
    holders = [h for h in holders if h.split()[0].lower() not in _STOP | _TITLE_PREFIXES
               and h.split()[-1].lower() not in _TITLE_PREFIXES  # "First Vice President": part of the title
               and not {w.lower() for w in _WORD.findall(h)} <= in_question]  # "the lost colony": no name
    if holders and not any(asked_stems & {_stem(w) for w in _WORD.findall(h)} for h in holders):
        return f"the articles name {text[start:end]} as {holders[0]}'s {asked.group(1)}, not {name}'s"
    return None


def _title_holders(title: str, text: str) -> list[tuple[str, str]]:
    """(whose title, who holds it) wherever ``text`` gives the title ("Balkh Governor Mohammad Atta Noor",
    "Noor, governor of Balkh"); ``title`` is a regex."""
    person = r"[A-Z][\w'’.-]*(?:\s+[A-Z][\w'’.-]*){0,3}"
    found = [(m.group(1), m.group(2)) for m in re.finditer(rf"({_NAME})(?:'s|’s)?\s+(?i:{title})\s+({person})", text)
             if text[:m.start()].strip() and text[:m.start()].rstrip()[-1] not in ".!?\"“"]
    found += [(m.group(2), m.group(1)) for m in re.finditer(
        rf"({person}),\s+(?:the\s+)?(?i:{title})\s+of\s+(?:the\s+)?({_NAME})", text)]
    return found


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
