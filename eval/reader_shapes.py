"""What each batch shape the reader sees costs a long-lived process, and what bounding the shapes costs in time.

    python -m eval.reader_shapes [--rounds 3]

Under bf16 the reader runs on oneDNN, which compiles kernels for every (batch, width) shape it
meets and keeps them for the life of the process. A server reading batches of every size
therefore grows with each new shape. Two parts, each in the reader's own process (PyTorch, the
server's precision):

1. memory: the heap (RssAnon, after ``malloc_trim``) before and after forward passes over
   every batch size 1-32 at every width, against the batch sizes a power-of-two cut leaves
   (1, 2, 4, ..., 32), each in a fresh process;
2. time: 60 random batches (1-32 windows, widths 128-384), each read as one batch and as its
   power-of-two runs (13 -> 8 + 4 + 1), the two alternating, every shape warm; the ratio of
   their totals.

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

from eval.results import write_json
from rag.errors import run_guarded
from rag.settings import configure_entry_point

WIDTHS = range(64, 385, 64)  # the reader pads windows to a multiple of 64 tokens, at most 384
ALL_SIZES = range(1, 33)  # the reader's batch size is 32
POWERS_OF_TWO = (1, 2, 4, 8, 16, 32)


def _runs(n: int) -> list[int]:
    sizes = []
    while n:
        sizes.append(1 << n.bit_length() - 1)
        n -= sizes[-1]
    return sizes


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
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["RssAnon"].split()[0]) / 1024


def memory_worker(sizes: str) -> None:
    """Print, as JSON, the heap before and after reading every shape of ``sizes`` ("all" or "powers")."""
    model, forward = _reader_forward()
    forward(1, 64)
    before = _heap_mb()
    shapes = [(b, w) for b in (ALL_SIZES if sizes == "all" else POWERS_OF_TWO) for w in WIDTHS]
    random.Random(0).shuffle(shapes)
    for batch, width in shapes:
        forward(batch, width)
    print(json.dumps({"precision": model.precision, "shapes": len(shapes), "heap_before_mb": before,
                      "heap_after_mb": _heap_mb()}))


def time_worker(rounds: int) -> None:
    """Print, as JSON, the seconds of each random batch read whole and as power-of-two runs, alternating."""
    _, forward = _reader_forward()
    rng = random.Random(1)
    cases = [(rng.randint(1, 32), rng.choice(WIDTHS[1:])) for _ in range(60)]
    for batch, width in cases:  # every shape of both variants warm
        forward(batch, width)
        for run in _runs(batch):
            forward(run, width)
    whole, runs = [], []
    for _ in range(rounds):
        for batch, width in cases:
            started = time.perf_counter()
            forward(batch, width)
            whole.append(time.perf_counter() - started)
            started = time.perf_counter()
            for run in _runs(batch):
                forward(run, width)
            runs.append(time.perf_counter() - started)
    print(json.dumps({"windows": sum(b for b, _ in cases) * rounds, "whole_s": whole, "runs_s": runs}))


def _child(*args: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "eval.reader_shapes", *args], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def run(rounds: int) -> dict:
    memory = {sizes: _child("--worker-memory", sizes) for sizes in ("all", "powers")}
    timing = _child("--worker-time", str(rounds))
    return {"memory": memory, "time": {"windows": timing["windows"], "whole_s": sum(timing["whole_s"]),
                                       "runs_s": sum(timing["runs_s"]),
                                       "median_ratio": statistics.median(r / w for r, w in zip(timing["runs_s"],
                                                                                               timing["whole_s"])),
                                       "ratio_of_totals": sum(timing["runs_s"]) / sum(timing["whole_s"])}}


def table(result: dict) -> str:
    lines = [f"{'batch sizes read':<28}{'shapes':>7}{'heap before':>13}{'after':>8}{'growth':>8}  (MB)"]
    for name, label in (("all", "every size 1-32"), ("powers", "powers of two (shipped)")):
        m = result["memory"][name]
        lines.append(f"{label:<28}{m['shapes']:>7}{m['heap_before_mb']:>13.0f}{m['heap_after_mb']:>8.0f}"
                     f"{m['heap_after_mb'] - m['heap_before_mb']:>8.0f}")
    t = result["time"]
    lines += ["", f"time of {t['windows']} windows: whole batches {t['whole_s']:.1f} s, power-of-two runs "
                  f"{t['runs_s']:.1f} s; ratio of totals {t['ratio_of_totals']:.3f}, median per batch "
                  f"{t['median_ratio']:.3f}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="passes over the 60 random batches when timing")
    parser.add_argument("--out", type=Path, default=Path("eval-results/reader_shapes.json"))
    parser.add_argument("--worker-memory", choices=("all", "powers"), help=argparse.SUPPRESS)
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
