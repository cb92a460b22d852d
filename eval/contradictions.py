"""The answers the assistant rules out (``rag.answer.evidence.contradiction``), checked on gold answers.

Two checks turn a span down whatever the reader's margin: a year question answered without a
number, and a title asked of one name ("the governor of Kunduz") answered by the holder of that
title of another ("Balkh Governor Mohammad Atta Noor"). Both are rules on text, fitted to nothing,
so every question of the training sets can test them. For each question whose gold answer
occurs in its paragraph, the gold span is checked:

- as asked: a gold answer ruled out is a right answer lost;
- with a name swapped for one its article's other paragraphs hold and this one never mentions
  (``rag.training.data.swapped_question``, as the verifier's swapped-name negatives): the
  paragraph no longer answers it, so the gold span ruled out is a wrong answer stopped.

    python -m eval.contradictions --data ../shared/qa-train --out runs/contradictions.json
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections import defaultdict
from pathlib import Path

from rag.answer.evidence import contradiction
from rag.evaluation.gold import load_squad
from rag.settings import configure_entry_point
from rag.training.data import names_in, swapped_question

CHECKS = {
    "year": re.compile(r"\b(?:what|which) year\b", re.IGNORECASE),
    "title": re.compile(r"\b[a-z][a-z-]+\s+of\s+(?:the\s+)?[A-Z]"),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the training data folder (../shared/qa-train)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the names swapped in")
    parser.add_argument("--out", type=Path, help="write the figures and every ruled-out span as JSON here")
    args = parser.parse_args(argv)
    configure_entry_point()
    rng = random.Random(args.seed)
    counts = {check: defaultdict(int) for check in CHECKS}
    ruled_out: list[dict] = []
    for path in sorted(args.data.glob("*.json")):
        questions = [q for q in load_squad(path) if q.answers]
        by_article: dict[str, list[str]] = defaultdict(list)
        for q in questions:
            by_article[q.title].append(q.context)
        for q in questions:
            check = next((name for name, shape in CHECKS.items() if shape.search(q.question)), None)
            start = q.context.find(q.answers[0])
            if check is None or start < 0:
                continue
            end = start + len(q.answers[0])
            found = counts[check]
            found["questions"] += 1
            why = contradiction(q.question, q.context, start, end)
            if why is not None:
                found["right answers ruled out"] += 1
                ruled_out.append({"set": path.stem, "question": q.question, "gold": q.answers[0], "why": why,
                                  "swapped": False})
            others = [n for context in by_article[q.title] if context != q.context for n in names_in(context)]
            swapped = swapped_question(q.question, q.context, others, rng)
            if swapped is None:
                continue
            found["swapped questions"] += 1
            why = contradiction(swapped, q.context, start, end)
            if why is not None:
                found["wrong answers ruled out"] += 1
                ruled_out.append({"set": path.stem, "question": swapped, "gold": q.answers[0], "why": why,
                                  "swapped": True})
    columns = ("questions", "right answers ruled out", "swapped questions", "wrong answers ruled out")
    print(f"{'check':<8}" + "".join(f"{c:>26}" for c in columns))
    for check, found in counts.items():
        print(f"{check:<8}" + "".join(f"{found[c]:>26}" for c in columns))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"seed": args.seed, "counts": counts, "ruled_out": ruled_out}, indent=2) + "\n")


if __name__ == "__main__":
    main()
