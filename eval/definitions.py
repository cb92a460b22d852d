"""Acronym questions ("What does X stand for?"): the reader alone against the spelled-out rule.

Every question of the training sets that ``rag.answer.definitions.asked_acronym`` recognises is
read with its own paragraph, as the reader's span and as the assistant now answers it: the long
form where the paragraph spells the acronym out ("Long Form (X)"), else the reader's span. The
rule is fitted to nothing, so every question is held out for it; the reader trained on all but
the held-out paragraphs (``rag.training.data.is_held_out``), so its figures on the others are
flattering, and the held-out slice is reported apart.

    python -m eval.definitions --data ../shared/qa-train --out runs/definitions.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from rag.answer.definitions import asked_acronym, spelled_out
from rag.evaluation.gold import load_squad
from rag.evaluation.metrics import best_over_gold
from rag.read.reader import Reader
from rag.settings import configure_entry_point
from rag.training.data import is_held_out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the training data folder (../shared/qa-train)")
    parser.add_argument("--out", type=Path, help="write the figures and every question's answers as JSON here")
    args = parser.parse_args(argv)
    configure_entry_point()
    questions = [(path.stem, q) for path in sorted(args.data.glob("*.json")) for q in load_squad(path)
                 if q.answers and asked_acronym(q.question)]
    readings = Reader().read_batch([q.question for _, q in questions], [[q.context] for _, q in questions], top_k=1)
    rows = []
    for (name, q), reading in zip(questions, readings):
        span = reading.answers[0].text if reading.answers else None
        found = spelled_out(asked_acronym(q.question) or "", q.context)
        rule = q.context[found[0]:found[1]] if found else None
        rows.append({"set": name, "question": q.question, "gold": list(q.answers), "held_out": is_held_out(q.context),
                     "reader": span, "rule": rule, "reader_em_f1": best_over_gold(span, q.answers),
                     "rule_em_f1": best_over_gold(rule, q.answers) if rule else None,
                     "combined_em_f1": best_over_gold(rule if rule else span, q.answers)})
    report = {}
    for slice_name, chosen in (("held out", [r for r in rows if r["held_out"]]), ("all", rows)):
        fired = [r for r in chosen if r["rule"] is not None]
        report[slice_name] = {
            "questions": len(chosen), "rule_fires": len(fired),
            "reader": _mean([r["reader_em_f1"] for r in chosen]),
            "with_rule": _mean([r["combined_em_f1"] for r in chosen]),
            "where_rule_fires": {"reader": _mean([r["reader_em_f1"] for r in fired]),
                                 "rule": _mean([r["rule_em_f1"] for r in fired])},
        }
    print(f"{'slice':<10}{'questions':>10}{'rule fires':>11}{'reader EM/F1':>16}{'with rule EM/F1':>18}"
          f"{'where it fires: reader':>24}{'rule':>14}")
    for name, r in report.items():
        w = r["where_rule_fires"]
        print(f"{name:<10}{r['questions']:>10}{r['rule_fires']:>11}{_pair(r['reader']):>16}{_pair(r['with_rule']):>18}"
              f"{_pair(w['reader']):>24}{_pair(w['rule']):>14}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"report": report, "questions": rows}, indent=2) + "\n")


def _mean(pairs: list[tuple[float, float]]) -> dict[str, float]:
    return {"em": 100 * float(np.mean([p[0] for p in pairs])) if pairs else 0.0,
            "f1": 100 * float(np.mean([p[1] for p in pairs])) if pairs else 0.0}


def _pair(score: dict[str, float]) -> str:
    return f"{score['em']:.1f}/{score['f1']:.1f}"


if __name__ == "__main__":
    main()
