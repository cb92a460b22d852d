"""Benchmark the assistant's speed: warm per-question latency, and the cold start of `rag ask`.

    python -m eval.latency [--questions 50] [--cold-runs 3]

Warm: one Assistant over the bundled corpus, a few warm-up questions, then the gold
questions one at a time; p50 and p95 per stage (``rag.evaluation.metrics.latency_summary``,
the same percentile as ``rag eval``). Cold: `rag ask` run as a fresh process (models loaded
from disk, index from the cache), timed end to end.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from rag.cli import run_guarded
from rag.evaluation.gold import BUNDLED_GOLD, load_gold
from rag.evaluation.metrics import latency_summary
from rag.settings import configure_entry_point


def warm_latency(questions: list[str], warmup: int = 5) -> dict:
    from rag.assistant import Assistant

    assistant = Assistant.default()
    for q in questions[:warmup]:
        assistant.ask(q)
    stages: dict[str, list[float]] = {"retrieve": [], "read": [], "total": []}
    for q in questions:
        started = time.perf_counter()
        response = assistant.ask(q)
        stages["total"].append(time.perf_counter() - started)
        stages["retrieve"].append(response.timings["retrieve"])
        stages["read"].append(response.timings["read"])
    return {stage: latency_summary(v) for stage, v in stages.items()}


def cold_start(runs: int, question: str) -> dict:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "rag.cli", "ask", question], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return {"runs": times, "median": statistics.median(times)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=50, help="timed questions (from the bundled gold set)")
    parser.add_argument("--cold-runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("eval-results/latency.json"))
    args = parser.parse_args(argv)
    configure_entry_point()
    return run_guarded(report, args)


def report(args: argparse.Namespace) -> None:
    gold = load_gold(BUNDLED_GOLD)
    questions = [g.question for g in (gold * (1 + args.questions // len(gold)))[:args.questions]]
    cold = cold_start(args.cold_runs, questions[0])  # first, while the page cache is least warm
    warm = warm_latency(questions)
    result = {"questions": len(questions), "warm_seconds": warm, "cold_start_seconds": cold}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"warm ask, {len(questions)} questions (ms)      p50      p95")
    for stage, t in warm.items():
        print(f"  {stage:<34}{1000 * t['p50']:8.1f} {1000 * t['p95']:8.1f}")
    print(f"cold start of `rag ask` (s), median of {args.cold_runs}: {cold['median']:.2f}  "
          f"(runs: {', '.join(f'{t:.2f}' for t in cold['runs'])})")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
