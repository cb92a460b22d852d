"""Calibrate a reader's confidence and no-answer threshold on the held-out training slice.

    python -m rag.training.calibrate --reader runs/reader --data ../shared/qa-train

The slice is the ~2% of paragraphs that ``rag.training.data.is_held_out`` keeps out of
training. Each held-out question is read with its own paragraph and, at the training
negative rate, with a paragraph that does not hold its answer. Then:

- confidence is a logistic fit (Platt scaling) of "the best span is right" (F1 >= 0.5)
  on the best span's margin over no-answer;
- the threshold is the margin that maximises mean F1 when abstaining scores 1 on a
  question without an answer and 0 on one with an answer.

Both go into the reader's ``reader.json``, with the held-out EM/F1. SQuAD dev is never used.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from rag.evaluation.metrics import best_over_gold
from rag.reader import Reader
from rag.settings import configure_entry_point
from rag.training.data import DEFAULT_MIX, TrainSettings, held_out_pairs
from rag.types import Answer

logger = logging.getLogger(__name__)


def best_threshold(margins: np.ndarray, f1_if_answered: np.ndarray, has_answer: np.ndarray) -> tuple[float, float]:
    """The margin threshold with the best mean F1, abstaining below it; returns (threshold, F1)."""
    candidates = np.unique(np.concatenate([margins, [np.inf]]))
    best = (-np.inf, 0.0)
    for t in candidates:
        answered = margins >= t
        f1 = np.where(answered, f1_if_answered, (~has_answer).astype(float)).mean()
        if f1 > best[1] + 1e-12:
            best = (float(t), float(f1))
    return best


def calibrate(reader_dir: Path, data_dir: Path, mix: dict[str, float] | None = None) -> dict:
    """Fit confidence and threshold for the reader in ``reader_dir`` and record them in its reader.json."""
    from sklearn.linear_model import LogisticRegression

    info_path = reader_dir / "reader.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {}  # a reader from elsewhere
    defaults = TrainSettings(mix=DEFAULT_MIX)
    training = info.get("training", {})
    pairs = held_out_pairs(data_dir, mix or training.get("mix", defaults.mix),
                           training.get("negative_rate", defaults.negative_rate), training.get("seed", defaults.seed))
    reader = Reader(reader_dir, threshold=-np.inf)
    results = reader.read_batch([q for q, _, _ in pairs], [[p] for _, p, _ in pairs], top_k=1)
    margins, em_answered, f1_answered = [], [], []
    for (_, _, golds), answers in zip(pairs, results):
        span = next(a for a in answers if isinstance(a, Answer))
        margins.append(span.score)
        em, f1 = best_over_gold(span.text, golds) if golds else (0.0, 0.0)
        em_answered.append(em)
        f1_answered.append(f1)
    margins = np.array(margins)
    f1s = np.array(f1_answered)
    has_answer = np.array([bool(g) for _, _, g in pairs])
    fit = LogisticRegression(C=1e4).fit(margins[:, None], (f1s >= 0.5).astype(int))
    threshold, f1_with_abstain = best_threshold(margins, f1s, has_answer)
    answered = margins >= threshold
    calibration = {
        "scale": float(fit.coef_[0, 0]),
        "offset": float(fit.intercept_[0]),
        "threshold": threshold,
        "held_out": {
            "pairs": len(pairs),
            "with_answer": int(has_answer.sum()),
            "span_em_on_answerable": float(np.array(em_answered)[has_answer].mean()),
            "span_f1_on_answerable": float(f1s[has_answer].mean()),
            "f1_with_no_answer": f1_with_abstain,
            "no_answer_precision": float((~answered & ~has_answer).sum() / max(1, (~answered).sum())),
            "no_answer_recall": float((~answered & ~has_answer).sum() / max(1, (~has_answer).sum())),
        },
    }
    info["calibration"] = calibration
    info_path.write_text(json.dumps(info, indent=2) + "\n")
    logger.info("calibration: %s", json.dumps(calibration))
    return calibration


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reader", type=Path, required=True,
                        help="reader folder: one trained here, or any extractive QA model saved locally")
    parser.add_argument("--mix", type=json.loads, help="JSON {file stem: fraction}; default: the reader's training mix")
    parser.add_argument("--data", type=Path, required=True, help="the training data folder")
    args = parser.parse_args(argv)
    configure_entry_point(verbose=True)
    print(json.dumps(calibrate(args.reader, args.data, args.mix), indent=2))


if __name__ == "__main__":
    main()
