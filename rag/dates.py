"""Dates as news articles write them, and as filters compare them: written once for every stage.

Ingestion finds an article's date in its first lines (:func:`dates_in`), the answer stage
finds the dateline again to cite it, and every index compares dates as day numbers
(:func:`day_number`), so a filter means the same on a folder, Qdrant or any later backend.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date

_MONTHS = {m: i for i, m in enumerate(
    "january february march april may june july august september october november december".split(), 1)}
_DATE_PATTERNS = (
    (re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)"), ("y", "m", "d")),
    (re.compile(r"\b(\d{1,2})\.(\d{1,2})\.(\d{4})\b"), ("d", "m", "y")),
    (re.compile(r"\b(\d{1,2}) ([A-Z][a-z]+),? (\d{4})\b"), ("d", "M", "y")),
    (re.compile(r"\b([A-Z][a-z]+)\.? (\d{1,2}),? (\d{4})\b"), ("M", "d", "y")),
)


def dates_in(text: str) -> Iterator[tuple[int, int, str]]:
    """Every full date written in ``text``: (start, end, ISO date), in order of the patterns, then of position."""
    for pattern, order in _DATE_PATTERNS:
        for match in pattern.finditer(text):
            parts = dict(zip(order, match.groups()))
            month = _MONTHS.get(parts["M"].lower()) if "M" in parts else int(parts["m"])
            try:
                yield match.start(), match.end(), date(int(parts["y"]), month or 0, int(parts["d"])).isoformat()
            except ValueError:
                continue


def day_number(iso: str | None) -> int | None:
    """The day an ISO 8601 date (or date and time) falls on, as a proleptic ordinal; None if there is none."""
    if not iso:
        return None
    try:
        return date.fromisoformat(iso[:10]).toordinal()
    except ValueError:
        return None
