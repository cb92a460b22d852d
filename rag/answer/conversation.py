"""Follow-up questions read in the light of the conversation so far (conversational QA, as in CoQA and QuAC).

A question that leans on the turn before it ("When was he killed?", "And where?", "Who
leads it?") is rewritten into one that stands alone, by rules over that turn: its question
(as it was read) and its answer. A question that refers to nothing before it (a new topic)
is left as asked, and so is every first question.

The rules, the first that applies:

1. "What about X?", "And X?": the previous question with the name it asked about replaced by
   X ("Which commander's troops clashed for Kabul?", "What about Mazar-e Sharif?").
2. Ellipsis, only a question word ("And where?", "Why?"): the previous question with its
   question word, or its "which city" phrase, replaced ("When was Tohir Yuldosh killed?" ->
   "Where was ...").
3. A fragment, a preposition and a question word ("Out of how many people?") or "how many"
   and a noun ("How many provinces first?"): the previous question is put beside it in brackets.
4. Otherwise each kind of pronoun, at its first use, becomes what it refers to, unless a name
   comes before it in the same question (then it refers to that one). "he/she/him/her/his"
   and "it/its": the previous answer when it is a name and the previous question asked for
   one (for he and she, who or "which leader" and the like; for it, which or what; for they,
   any of them), a singular one
   for a singular pronoun; else the name the previous question asked to define ("Who is
   Waheed Mozhdah?": he is Waheed Mozhdah, whatever the answer says of him), else its last
   name other than the answer (a person's for he and she). "they/them/their": two names
   the previous question joined with "and", else the same as "it". "there": the previous
   answer to "where" or "which province" and the like, else the previous question's last name. A
   possessive becomes "NAME's".
5. "that", "so", "this" as the object of say/tell/mean ("Who said that?"): what was said is
   the previous turn, kept beside the question in brackets for the search and the reader; so
   is the previous turn beside a pronoun that nothing named stands for ("Where did it happen?"
   after "Who was killed with the police chief?").

Names are runs of capitalised words, without a leading question or function word, month or
weekday. ``rag eval`` scores the rules on the conversational gold set
(``rag.evaluation.conversations``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.types import Turn

WH_WORDS = ("who", "whom", "whose", "what", "which", "when", "where", "why", "how many", "how much", "how long",
            "how")
_WH_GROUP = "(" + "|".join(w.replace(" ", r"\s+") for w in WH_WORDS) + r")\b"
_WH = re.compile(r"^\s*(?:and|so|but|then)?\s*,?\s*" + _WH_GROUP, re.I)
_ELLIPSIS = re.compile(r"^\s*(?:and|so|but|then)?\s*,?\s*" + _WH_GROUP + r"\s*(?:then|else|exactly)?\s*\??\s*$", re.I)
_WH_PHRASE = re.compile(r"^\s*(?:which|what|whose)\s+(?:[\w'’-]+\s+){1,3}?(?=(?:did|does|do|is|are|was|were|has|have"
                        r"|had|can|could|will|would)\b)", re.I)  # "Which city " before "did Rezai say ..."
_WHAT_ABOUT = re.compile(r"^\s*(?:(?:and\s+)?(?:what|how)\s+about|and)\s+(.+?)\s*\??\s*$", re.I)
_DEFINITION = re.compile(r"^\s*(?:who|what)\s+(?:is|are|was|were)\s+(.+?)\s*\??\s*$"
                         r"|^\s*what\s+does\s+(.+?)\s+(?:stand\s+for|mean)\s*\??\s*$", re.I)
_FRAGMENT = re.compile(r"^\s*(?:and\s+)?(?:(?:out\s+of|in|on|at|from|for|since|until|between|by|with|among|of|to)\s+"
                       r"(?:which|what|whom|whose|how\s+many|how\s+much|when|where)(?:\s+[a-z]+){0,2}"
                       r"|how\s+(?:many|much)(?:\s+[a-z]+){0,2})\s*\??\s*$", re.I)
_PERSON_NOUNS = re.compile(r"^\s*(?:which|what)\s+(?:\w+\s+)?(?:leader|commander|governor|minister|official|man"
                           r"|woman|general|journalist|analyst|spokesman|spokeswoman|president|author|lawmaker"
                           r"|professor|politician|warlord|chief|person|reporter)s?\b", re.I)
PRONOUNS = {  # kind: pattern
    "person": re.compile(r"\b(he|him|his|she|her|hers)\b", re.I),
    "thing": re.compile(r"\b(it|its)\b", re.I),
    "group": re.compile(r"\b(they|them|their)\b", re.I),
}
_THERE = re.compile(r"\bthere\b", re.I)
_PLACE_NOUNS = re.compile(r"^\s*(?:which|what)\s+(?:\w+\s+)?(?:province|city|country|region|district|village|town"
                          r"|place|area|capital)(?:['’]s)?\b", re.I)
_STATEMENT = re.compile(r"\b(say|said|says|tell|told|mean|means|meant|claim|claimed|report|reported)\s+"
                        r"(that|so|this)\b(?!\s+\w)", re.I)
_NAME = re.compile(r"\b[A-Z][\w'’.-]*(?:\s+(?:of|the|al|bin|de|van|von|-e)?\s*[A-Z][\w'’.-]*)*")
_NOT_NAMES = {w.capitalize() for w in (
    *WH_WORDS, "and", "so", "but", "then", "did", "does", "do", "is", "are", "was", "were", "has", "have", "can",
    "could", "will", "would", "in", "on", "the", "a", "an", "to", "at", "for", "from", "by", "with", "of", "as",
    "january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november",
    "december", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")}
_POSSESSIVE = {"his", "her", "its", "their"}


def names_in(text: str, question: bool = False) -> list[str]:
    """The names in ``text``, in order: runs of capitalised words, without a leading question or function
    word, month or weekday; in a ``question``, not its capitalised first word alone ("Against whom ...")."""
    found = []
    for match in _NAME.finditer(text):
        words = match.group(0).split()
        if question and match.start() == 0 and len(words) == 1:
            continue
        while words and words[0] in _NOT_NAMES:  # "Who Is ..." / "The IMU" / "May 28": not part of the name
            words = words[1:]
        if words:
            found.append(" ".join(words).rstrip(".'’").removesuffix("'s").removesuffix("’s"))
    return found


def read_question(question: str, history: Sequence[Turn]) -> str:
    """``question`` as it stands alone after the conversation ``history`` (oldest first); see the
    module's notes. The question itself when it leans on nothing before it.

    Args:
        question: the question as asked.
        history: the earlier turns, their questions as asked (each is read in turn here).
    """
    earlier: list[tuple[str, str | None]] = []  # each earlier question as read, with its answer
    for turn in history:
        earlier.append((_rewrite(turn.question, earlier), turn.answer))
    return _rewrite(question, earlier)


def _wh(question: str) -> str | None:
    match = _WH.match(question)
    return re.sub(r"\s+", " ", match.group(1).lower()) if match else None


def _defined(question: str) -> str | None:
    """The name that "Who is Waheed Mozhdah?" or "What does IMU stand for?" asks to define (not "Who is the
    governor of Balkh?", which asks for a name)."""
    definition = _DEFINITION.match(question)
    if definition is None:
        return None
    subject = (definition.group(1) or definition.group(2)).strip()
    names = names_in(subject)
    return subject if names and names[0] == subject else None


def _name_in_answer(answer: str | None, singular: bool) -> str | None:
    """The answer as a referent: a name of eight words at most; for a singular pronoun not a list, and of
    "the commander, General Daud" the part with the name."""
    if not answer or len(answer.split()) > 8 or not names_in(answer):
        return None
    if singular and re.search(r"\band\b", answer):
        return None
    if singular and "," in answer:
        answer = [part.strip() for part in answer.split(",") if names_in(part)][-1]
    if answer[0].islower() and answer.split()[0] not in ("the", "a", "an"):  # "killing of Daud"
        return names_in(answer)[-1]
    return answer


def _asked_about(question: str) -> str | None:
    """The name a "Who is X?" / "What does X stand for?" question defines, else the last name in it."""
    defined = _defined(question)
    if defined:
        return defined
    names = names_in(question, question=True)
    return names[-1] if names else None


def _referent(kind: str, previous: str, answer: str | None) -> str | None:
    """What a pronoun of ``kind`` refers to after the turn (``previous``, ``answer``)."""
    defined = _defined(previous)
    wh = _wh(previous)
    asked_for_name = not defined and (wh in ("who", "whom", "whose") if kind == "person"
                                      else wh in ("which", "what") if kind == "thing"  # "it" is not whom "who" named
                                      else wh in ("who", "whom", "whose", "which", "what"))
    if kind == "person" and _PERSON_NOUNS.match(previous):  # "Which IMU leader ...?"
        asked_for_name = True
    if kind == "group":
        pair = re.search(r"\b([A-Z][\w'’-]*(?:\s+[A-Z][\w'’-]*)*)\s+and\s+([A-Z][\w'’-]*(?:\s+[A-Z][\w'’-]*)*)",
                         previous)
        if pair and all(names_in(part) for part in pair.groups()):
            return f"{pair.group(1)} and {pair.group(2)}"
    named = _name_in_answer(answer, singular=kind != "group")
    if asked_for_name and named:
        return named
    if defined:
        return defined
    names = [n for n in names_in(previous, question=True) if not (answer and n in answer)]
    if kind == "person":
        names = [n for n in names if not n.isupper() and "." not in n] or names  # not "IMU", not "U.S"
    return names[-1] if names else None


def _resolve(question: str, previous: str, answer: str | None) -> tuple[str, bool]:
    """The question with its pronouns resolved, and whether one of them could not be."""
    read, unresolved = question, False
    for kind, pattern in PRONOUNS.items():
        match = pattern.search(read)
        if match is None or names_in(read[:match.start()], question=True):  # "Could the IMU strike from its ...?"
            continue
        referent = _referent(kind, previous, answer)
        if referent:
            value = f"{referent}'s" if match.group(1).lower() in _POSSESSIVE else referent
            read = read[:match.start()] + value + read[match.end():]
        else:
            unresolved = True
    there = _THERE.search(read)
    if there and not names_in(read[:there.start()], question=True):
        asked_for_place = _wh(previous) == "where" or bool(_PLACE_NOUNS.match(previous))
        place = answer if asked_for_place and answer else _asked_about(previous)
        if place:
            place = place if re.match(r"(?:in|at|on|near|from)\b", place) else f"in {place}"
            read = read[:there.start()] + place + read[there.end():]
    return read, unresolved


def _rewrite(question: str, earlier: Sequence[tuple[str, str | None]]) -> str:
    if not earlier:
        return question
    previous, answer = earlier[-1]
    about = _WHAT_ABOUT.match(question)
    subject = _asked_about(previous)
    if about and subject and not _ELLIPSIS.match(question):
        named = about.group(1).strip()
        return re.sub(rf"\b(?:the\s+)?{re.escape(subject)}(?:['’]s\b)?", lambda _: named, previous, count=1)
    ellipsis = _ELLIPSIS.match(question)
    before = _WH.match(previous)
    if ellipsis and before:
        wh = re.sub(r"\s+", " ", ellipsis.group(1).lower())
        phrase = _WH_PHRASE.match(previous)
        return (wh.capitalize() + " " + previous[phrase.end() if phrase else before.end(1):].strip()).strip()
    if _FRAGMENT.match(question) and not names_in(question, question=True):
        return f"{question.strip().rstrip(' ?')} ({previous.rstrip(' ?')}?)"
    read, unresolved = _resolve(question, previous, answer)
    context = f"{previous.rstrip(' ?')}? {answer}" if answer else previous.rstrip(" ?")
    statement = _STATEMENT.search(read)
    if statement:
        read = read[:statement.end()] + f" ({context})" + read[statement.end():]
    elif unresolved:  # a pronoun with nothing to stand for: the turn before goes beside it, for the search
        read = f"{read.rstrip(' ?')} ({context})?"
    return read
