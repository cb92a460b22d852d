"""Questions about what an acronym stands for, answered from where the text spells it out.

"What does IMU stand for?" over a text that writes "the Islamic Movement of Uzbekistan (IMU)"
has one right answer, the full name, and the extractive reader often picks a word of it instead
("Uzbekistan"). :func:`asked_acronym` recognises the question ("What does X stand for?",
"What is X short for?", "What is the acronym X?", and "What is (the) X?" when X is written like
an acronym), and :func:`spelled_out` finds "Long Form (X)" in a passage with the algorithm of
Schwartz and Hearst (PSB 2003): the long form is the shortest run of words before the
parenthesis whose letters hold the acronym's, in order, the first letter starting a word.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.types import Hit

_ACRONYM = r"[A-Za-z][\w&./-]{0,11}"
_QUESTIONS = tuple(re.compile(p, re.IGNORECASE) for p in (
    rf"^\s*what\s+(?:does|do|did)\s+(?:the\s+(?:acronym\s+|abbreviation\s+)?)?(?P<x>{_ACRONYM})\s+stands?\s+for\b",
    rf"^\s*what\s+(?:is|was)\s+(?:the\s+)?(?P<x>{_ACRONYM})\s+(?:short|an\s+abbreviation)\s+for\b",
    rf"^\s*what\s+(?:is|was)\s+the\s+(?:acronym|abbreviation)\s+(?P<x>{_ACRONYM})\s*\??\s*$",
    rf"^\s*what\s+(?:is|was)\s+the\s+full\s+(?:name|form)\s+of\s+(?:the\s+)?(?P<x>{_ACRONYM})\s*\??\s*$",
    rf"^\s*what\s+does\s+(?:the\s+)?(?P<x>{_ACRONYM})\s+mean\s*\??\s*$",
))
# "What is the IMU?" asks for the full name only when the name is written like an acronym.
_WHAT_IS = re.compile(rf"^\s*what\s+(?:is|was|are)\s+(?:the\s+|an?\s+)?(?P<x>{_ACRONYM})\s*\??\s*$", re.IGNORECASE)


def looks_like_acronym(word: str) -> bool:
    """At least two capitals and more capitals than lower-case letters ("IMU", "RFE/RL", "SARS-CoV-2")."""
    upper = sum(c.isupper() for c in word)
    return upper >= 2 and upper > sum(c.islower() for c in word)


def asked_acronym(question: str) -> str | None:
    """The acronym a question asks the full name of, or None."""
    for pattern in _QUESTIONS:
        match = pattern.match(question)
        if match:
            return match.group("x").rstrip(".?")
    match = _WHAT_IS.match(question)
    if match and looks_like_acronym(match.group("x")):
        return match.group("x")
    return None


def long_form(acronym: str, before: str) -> int | None:
    """Where in ``before`` (the text before "(acronym)") the long form starts, or None.

    First each letter of the acronym must start a word, in order ("Short Message Systems");
    failing that, Schwartz and Hearst's rule: only the first letter must start a word
    ("Radio Free Europe/Radio Liberty" for RFE/RL).
    """
    letters = [c.lower() for c in acronym if c.isalnum()]
    if not letters:
        return None
    starts = [m.start() for m in re.finditer(r"[^\W_]+", before)]
    s = len(letters) - 1
    for start in reversed(starts):
        if before[start].lower() == letters[s]:
            s -= 1
            if s < 0:
                return start
    s, i = len(letters) - 1, len(before) - 1
    while s >= 0:
        c = letters[s]
        # the acronym's first letter must start a word; the others may be anywhere in one
        while i >= 0 and (before[i].lower() != c or (s == 0 and i > 0 and before[i - 1].isalnum())):
            i -= 1
        if i < 0:
            return None
        i -= 1
        s -= 1
    return before.rfind(" ", 0, i + 2) + 1  # the start of the word it stopped in (0: none before it)


def spelled_out(acronym: str, text: str) -> tuple[int, int] | None:
    """The character span of the acronym's long form in ``text``, from its first "Long Form (acronym)"; or None."""
    for match in re.finditer(rf"\(\s*{re.escape(acronym)}\s*[),;]", text):
        head = text[:match.start()].rstrip()
        limit = min(len(acronym) + 5, 2 * len(acronym))  # Schwartz-Hearst: at most this many words back
        window_start = len(head) - len(" ".join(head.split(" ")[-limit:]))
        before = head[window_start:]
        start = long_form(acronym, before)
        if start is None:
            continue
        start += window_start
        end = window_start + len(before)
        while start < end and not text[start].isalnum():
            start += 1
        if end - start > len(acronym):
            return start, end
    return None


def find(acronym: str, hits: Sequence[Hit]) -> tuple[Hit, int, int] | None:
    """The best-ranked passage that spells the acronym out, and the long form's span in it."""
    for hit in sorted(hits, key=lambda h: h.rank):
        span = spelled_out(acronym, hit.passage.text)
        if span is not None:
            return hit, *span
    return None
