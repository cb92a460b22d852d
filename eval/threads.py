"""Thread settings on a quiet and on a busy machine: `ask` p50/p95 per setting, one table.

    python -m eval.threads [--questions 40] [--rounds 2]

Each setting runs in its own process, since OpenMP reads its variables when torch loads:
the server's path (ONNX Runtime query embedding, PyTorch bf16 reading) with 1 or 2 intra-op
threads, OpenMP waiting as libgomp does by default (``GOMP_SPINCOUNT=300000``), spinning
(``OMP_WAIT_POLICY=ACTIVE``), spinning briefly (``GOMP_SPINCOUNT=20000``, what
``configure_entry_point`` sets) or sleeping (``PASSIVE``); and the one-off
path (ONNX Runtime reading, which never spins) with 1 or 2 threads. Each is timed on the
bundled gold questions, asked one at a time, first with nothing else running, then beside
a competing load: another process asking questions in a loop with the default settings.
Settings take turns, in a different order each round. The choice is the setting with the
best p95 under load that costs at most 10 % of p50 when quiet against the fastest quiet
setting. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from eval.results import write_json
from rag.errors import run_guarded
from rag.settings import configure_entry_point

SETTINGS = {  # the OpenMP variables each setting runs with (libgomp's; 300000 is its own spin count)
    "torch bf16, 2 threads, OpenMP default": {"path": "serve", "threads": 2, "env": {"GOMP_SPINCOUNT": "300000"}},
    "torch bf16, 2 threads, spinning": {"path": "serve", "threads": 2, "env": {"OMP_WAIT_POLICY": "ACTIVE",
                                                                                "GOMP_SPINCOUNT": "infinity"}},
    "torch bf16, 2 threads, short spin (ours)": {"path": "serve", "threads": 2, "env": {"GOMP_SPINCOUNT": "20000"}},
    "torch bf16, 2 threads, passive": {"path": "serve", "threads": 2, "env": {"OMP_WAIT_POLICY": "PASSIVE",
                                                                              "GOMP_SPINCOUNT": "0"}},
    "torch bf16, 1 thread": {"path": "serve", "threads": 1, "env": {}},
    "onnx, 2 threads": {"path": "onnx", "threads": 2, "env": {}},
    "onnx, 1 thread": {"path": "onnx", "threads": 1, "env": {}},
}


def worker(path: str, questions: int) -> None:
    """Time ``questions`` gold questions, one at a time, after a warm-up; print the seconds as JSON.

    Both runtimes take their thread count from ``OMP_NUM_THREADS``, set by the caller.
    """
    from rag.answer.assistant import Assistant
    from rag.evaluation.gold import BUNDLED_GOLD, load_gold
    from rag.indexing.bundled import default_index
    from rag.read import runtime
    from rag.read.reader import Reader
    from rag.search.retriever import Retriever

    gold = [g.question for g in load_gold(BUNDLED_GOLD)]
    reader = runtime.reader(backend="onnx") if path == "onnx" else Reader()
    assistant = Assistant(Retriever(default_index(backend="onnx")), reader)
    for q in gold[:5]:
        assistant.ask(q)
    seconds = []
    for q in gold[:questions]:
        started = time.perf_counter()
        assistant.ask(q)
        seconds.append(time.perf_counter() - started)
    print(json.dumps(seconds))


def competitor() -> None:
    """Ask the gold questions in a loop, with the default settings, until killed."""
    from rag.answer.assistant import Assistant
    from rag.evaluation.gold import BUNDLED_GOLD, load_gold
    from rag.indexing.bundled import default_index
    from rag.read.reader import Reader
    from rag.search.retriever import Retriever

    gold = [g.question for g in load_gold(BUNDLED_GOLD)]
    assistant = Assistant(Retriever(default_index(backend="onnx")), Reader())
    print("ready", flush=True)
    while True:
        for q in gold:
            assistant.ask(q)


def _run_setting(setting: dict, questions: int) -> list[float]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(setting["env"], OMP_NUM_THREADS=str(setting["threads"]))
    done = subprocess.run([sys.executable, "-m", "eval.threads", "--worker", setting["path"],
                           "--questions", str(questions)], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(questions: int, rounds: int) -> dict:
    from embeddings import DEFAULT_MODEL, Embedder
    from rag.evaluation.metrics import latency_summary
    from rag.indexing.bundled import default_index
    from rag.indexing.workflow import export_models

    default_index()  # built, and the ONNX exports made, before anything is timed
    export_models(Embedder(DEFAULT_MODEL))
    seconds: dict[str, dict[str, list[float]]] = {name: {"quiet": [], "loaded": []} for name in SETTINGS}
    names = list(SETTINGS)
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            seconds[name]["quiet"] += _run_setting(SETTINGS[name], questions)
        load = subprocess.Popen([sys.executable, "-m", "eval.threads", "--competitor"], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        try:
            load.stdout.readline()  # "ready": its models are loaded and it is asking
            for name in reversed(order):
                seconds[name]["loaded"] += _run_setting(SETTINGS[name], questions)
        finally:
            load.kill()
            load.wait()
    result = {name: {when: latency_summary(s) for when, s in by.items()} for name, by in seconds.items()}
    fastest_quiet = min(r["quiet"]["p50"] for r in result.values())
    eligible = [name for name, r in result.items() if r["quiet"]["p50"] <= 1.10 * fastest_quiet]
    return {"cpus": os.cpu_count(), "questions": questions, "rounds": rounds, "settings": SETTINGS,
            "results": result, "chosen": min(eligible, key=lambda name: result[name]["loaded"]["p95"])}


def table(result: dict) -> str:
    lines = [f"{'setting':<36}{'quiet p50':>10}{'p95':>8}{'loaded p50':>12}{'p95':>8}   (ms)"]
    for name, r in result["results"].items():
        lines.append(f"{name:<36}{1000 * r['quiet']['p50']:>10.0f}{1000 * r['quiet']['p95']:>8.0f}"
                     f"{1000 * r['loaded']['p50']:>12.0f}{1000 * r['loaded']['p95']:>8.0f}")
    lines.append(f"chosen (best p95 under load, at most 10 % slower when quiet): {result['chosen']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=40, help="timed questions per setting and condition")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("eval-results/threads.json"))
    parser.add_argument("--worker", choices=("serve", "onnx"), help=argparse.SUPPRESS)
    parser.add_argument("--competitor", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    configure_entry_point()
    if args.worker:
        worker(args.worker, args.questions)
        return 0
    if args.competitor:
        competitor()
        return 0
    return run_guarded(report, args)


def report(args: argparse.Namespace) -> None:
    result = run(args.questions, args.rounds)
    write_json(args.out, result)
    print(table(result))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
