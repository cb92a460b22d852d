"""Benchmark the assistant's speed on each path: warm latency per stage, cold start, and what start-up imports.

    python -m eval.latency [--questions 50] [--cold-runs 5]

Warm: one Assistant per path over the bundled corpus (PyTorch fp32, PyTorch bf16 where the
CPU has it, ONNX Runtime, ONNX Runtime with the int8 reader), the gold questions asked one
at a time with the paths taking turns question by question (and the PyTorch path once more
without the answer verifier, as it answered before it), so every ratio is measured in
one run on the same load; p50 and p95 per stage (``rag.evaluation.metrics.latency_summary``,
as ``rag eval``), and how many answers differ from PyTorch fp32's. Cold: `rag ask` as a
fresh process per backend, index and model exports cached, median of ``--cold-runs``; and
the ten slowest imports of one such start, from ``python -X importtime``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from eval.results import write_json
from rag.errors import run_guarded
from rag.evaluation.gold import BUNDLED_GOLD, load_gold
from rag.evaluation.metrics import latency_summary
from rag.settings import configure_entry_point

STAGES = ("retrieve", "read", "total")


def _paths() -> dict:
    """The assistants to compare, by name, over one index of the bundled corpus."""
    from embeddings import DEFAULT_MODEL, Embedder
    from embeddings.encoder import cpu_has_bf16
    from rag.answer.assistant import Assistant
    from rag.indexing.bundled import default_index
    from rag.indexing.workflow import export_models
    from rag.read import runtime
    from rag.read.reader import Reader
    from rag.search.retriever import Retriever

    default_index()  # built, and the models exported, before anything is timed
    export_models(Embedder(DEFAULT_MODEL))
    torch_index = default_index(backend="torch")
    onnx_index = default_index(backend="onnx")
    paths = {"torch fp32": Assistant(Retriever(torch_index), Reader(precision="fp32"))}
    if cpu_has_bf16():
        paths["torch bf16"] = Assistant(Retriever(torch_index), Reader(precision="bf16"))
    precision = "bf16" if cpu_has_bf16() else "fp32"
    # the path before the answer verifier (rag.answer.verifier): the reader's margin threshold decides
    paths[f"torch {precision}, no verifier"] = Assistant(Retriever(torch_index), Reader(precision=precision),
                                                         verifier=None)
    paths["onnx"] = Assistant(Retriever(onnx_index), runtime.reader(backend="onnx"))
    paths["onnx, int8 reader (--backend int8)"] = Assistant(Retriever(onnx_index), runtime.reader(backend="int8"))
    paths["serve (onnx query, bf16 read)"] = Assistant(Retriever(onnx_index), Reader())
    assert onnx_index.embedder.onnx_file is not None and DEFAULT_MODEL == onnx_index.embedder.model_name
    return paths


def warm_latency(questions: list[str], warmup: int = 5) -> dict:
    paths = _paths()
    for assistant in paths.values():
        for q in questions[:warmup]:
            assistant.ask(q)
    seconds = {name: {stage: [] for stage in STAGES} for name in paths}
    answers: dict[str, list] = {name: [] for name in paths}
    for i, q in enumerate(questions):
        names = list(paths)
        for name in names[i % len(names):] + names[:i % len(names)]:  # a different path goes first each time
            started = time.perf_counter()
            response = paths[name].ask(q)
            seconds[name]["total"].append(time.perf_counter() - started)
            seconds[name]["retrieve"].append(response.timings["retrieve"])
            seconds[name]["read"].append(response.timings["read"])
            answers[name].append(response.answer)
    reference = answers["torch fp32"]
    return {name: {**{stage: latency_summary(v) for stage, v in stages.items()},
                   "answers_differing_from_torch_fp32": sum(a != b for a, b in zip(answers[name], reference))}
            for name, stages in seconds.items()}


def cold_start(runs: int, question: str, backend: str) -> dict:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "rag.cli", "ask", question, "--backend", backend], check=True,
                       capture_output=True)
        times.append(time.perf_counter() - started)
    return {"runs": times, "median": statistics.median(times)}


def top_imports(question: str, n: int = 10) -> list[dict]:
    """The slowest imports (cumulative) of one `rag ask` start on the default backend."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "rag.cli", "ask", question],
                          capture_output=True, text=True, check=True)
    rows = []
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "cumulative" not in line:
            _, cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
            if not name.startswith(" "):
                rows.append({"module": name.strip(), "seconds": int(cumulative) / 1e6})
    top_level = [r for r in rows if "." not in r["module"]]
    return sorted(top_level, key=lambda r: -r["seconds"])[:n]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=50, help="timed questions (from the bundled gold set)")
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("eval-results/latency.json"))
    args = parser.parse_args(argv)
    configure_entry_point()
    return run_guarded(report, args)


def report(args: argparse.Namespace) -> None:
    gold = load_gold(BUNDLED_GOLD)
    questions = [g.question for g in (gold * (1 + args.questions // len(gold)))[:args.questions]]
    warm = warm_latency(questions)
    cold = {backend: cold_start(args.cold_runs, questions[0], backend) for backend in ("onnx", "torch")}
    imports = top_imports(questions[0])
    result = {"questions": len(questions), "warm_seconds": warm, "cold_start_seconds": cold, "top_imports": imports}
    write_json(args.out, result)
    print(f"warm ask, {len(questions)} questions, paths alternating (ms)")
    print(f"  {'path':<32}{'retrieve p50':>13}{'read p50':>10}{'total p50':>11}{'total p95':>11}{'answers differ':>16}")
    for name, w in warm.items():
        print(f"  {name:<32}{1000 * w['retrieve']['p50']:>13.1f}{1000 * w['read']['p50']:>10.1f}"
              f"{1000 * w['total']['p50']:>11.1f}{1000 * w['total']['p95']:>11.1f}"
              f"{w['answers_differing_from_torch_fp32']:>16}")
    for backend, c in cold.items():
        print(f"cold start of `rag ask --backend {backend}` (s), median of {args.cold_runs}: {c['median']:.2f}  "
              f"(runs: {', '.join(f'{t:.2f}' for t in c['runs'])})")
    print("slowest imports of a `rag ask` start (cumulative s): "
          + ", ".join(f"{r['module']} {r['seconds']:.2f}" for r in imports))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
