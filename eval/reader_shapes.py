"""What each batch shape the reader meets costs a long-lived process, and what reading in few shapes costs in time.

    python -m eval.reader_shapes [--rounds 2]

Under bf16 the reader runs on oneDNN, which compiles kernels for every (batch, width) shape it
meets and keeps them for the life of the process, so a server reading batches of every size
grows with each new shape. The reader now pads each batch to one of ``BATCH_SIZES`` windows.
Two parts, in processes of their own (PyTorch, the server's precision):

1. memory: the heap (RssAnon, after ``malloc_trim``) before and after forward passes at every
   width for every batch size 1-32, against the sizes of ``BATCH_SIZES`` only, each in a fresh
   process;
2. time: `ask` on the bundled gold questions (the server's reading path) with batches read at
   every size (as before) and padded to ``BATCH_SIZES``, the two alternating question by question.

Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

from eval.process_memory import memory_mb
from eval.results import write_json
from rag.errors import run_guarded
from rag.settings import configure_entry_point

WIDTHS = range(64, 385, 64)  # the reader pads windows to a multiple of 64 tokens, at most 384
EVERY_SIZE = tuple(range(1, 33))  # the reader's batch size is 32


def _reader_forward():
    import numpy as np

    from rag.read.runtime import reader

    model = reader(backend="torch")
    model.load()

    def forward(batch: int, width: int) -> None:
        ids = np.full((batch, width), 1000, dtype=np.int64)
        model._forward({"input_ids": ids, "attention_mask": np.ones_like(ids)})

    return model, forward


def _heap_mb() -> float:
    """This process's heap after handing its free pages back (glibc), MB."""
    import ctypes

    ctypes.CDLL("libc.so.6").malloc_trim(0)
    return memory_mb()["RssAnon"]


def memory_worker(sizes: str) -> None:
    """Print, as JSON, the heap before and after reading every shape of ``sizes`` ("all" or "shipped")."""
    from rag.read.reader import BATCH_SIZES

    model, forward = _reader_forward()
    forward(1, 64)
    before = _heap_mb()
    shapes = [(b, w) for b in (EVERY_SIZE if sizes == "all" else BATCH_SIZES) for w in WIDTHS]
    random.Random(0).shuffle(shapes)
    for batch, width in shapes:
        forward(batch, width)
    print(json.dumps({"precision": model.precision, "shapes": len(shapes), "heap_before_mb": before,
                      "heap_after_mb": _heap_mb()}))


def time_worker(rounds: int) -> None:
    """Print, as JSON, the seconds of each gold question asked with batches at every size and at BATCH_SIZES."""
    import rag.read.reader as reading
    from rag.answer.assistant import Assistant
    from rag.evaluation.gold import BUNDLED_GOLD, load_gold
    from rag.indexing.bundled import default_index
    from rag.search.retriever import Retriever

    variants = {"every": EVERY_SIZE, "shipped": reading.BATCH_SIZES}
    questions = [g.question for g in load_gold(BUNDLED_GOLD)]
    assistant = Assistant(Retriever(default_index()), reading.Reader())
    for question in questions[:10]:  # warm both
        for sizes in variants.values():
            reading.BATCH_SIZES = sizes
            assistant.ask(question)
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for i, question in enumerate(questions):
            for name in list(variants)[::1 if i % 2 else -1]:
                reading.BATCH_SIZES = variants[name]
                started = time.perf_counter()
                assistant.ask(question)
                seconds[name].append(time.perf_counter() - started)
    print(json.dumps(seconds))


def _child(*args: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "eval.reader_shapes", *args], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def run(rounds: int) -> dict:
    memory = {sizes: _child("--worker-memory", sizes) for sizes in ("all", "shipped")}
    asks = _child("--worker-time", str(rounds))
    p50 = {name: statistics.median(seconds) for name, seconds in asks.items()}
    return {"memory": memory,
            "ask": {"questions": len(asks["every"]), "p50_s": p50,
                    "p95_s": {name: statistics.quantiles(seconds, n=20)[-1] for name, seconds in asks.items()},
                    "p50_ratio": p50["shipped"] / p50["every"]}}


def table(result: dict) -> str:
    lines = [f"{'batch sizes read':<30}{'shapes':>7}{'heap before':>13}{'after':>8}{'growth':>8}  (MB)"]
    for name, label in (("all", "every size 1-32 (before)"), ("shipped", "BATCH_SIZES (shipped)")):
        m = result["memory"][name]
        lines.append(f"{label:<30}{m['shapes']:>7}{m['heap_before_mb']:>13.0f}{m['heap_after_mb']:>8.0f}"
                     f"{m['heap_after_mb'] - m['heap_before_mb']:>8.0f}")
    a = result["ask"]
    lines += ["", f"ask, {a['questions']} questions each, alternating: every size p50 "
                  f"{1000 * a['p50_s']['every']:.1f} / "
                  f"p95 {1000 * a['p95_s']['every']:.1f} ms; BATCH_SIZES p50 {1000 * a['p50_s']['shipped']:.1f} / "
                  f"p95 {1000 * a['p95_s']['shipped']:.1f} ms; p50 ratio {a['p50_ratio']:.3f}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="passes over the gold questions when timing")
    parser.add_argument("--out", type=Path, default=Path("eval-results/reader_shapes.json"))
    parser.add_argument("--worker-memory", choices=("all", "shipped"), help=argparse.SUPPRESS)
    parser.add_argument("--worker-time", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    configure_entry_point()
    if args.worker_memory:
        memory_worker(args.worker_memory)
        return 0
    if args.worker_time:
        time_worker(args.worker_time)
        return 0
    return run_guarded(report, args)


def report(args: argparse.Namespace) -> None:
    result = run(args.rounds)
    print(table(result))
    write_json(args.out, result)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
