"""Load benchmark: many clients asking `rag serve` at once over HTTP, against one client, in one run.

    python -m eval.load [--clients 16] [--questions 10] [--backend int8]

Starts `rag serve` on a copy of the bundled index on a free loopback port, warms it up,
then (1) one client asks every question used, one after another: the reference answers
and the single-client throughput; (2) ``--clients`` clients ask ``--questions`` each, all
at once. Reports errors, answers that differ from the single client's, p50/p95 latency
and throughput relative to one client. Then, in this process, on the same index, the
ceiling batching sets: the reading time per question of one question alone and of the
server's batches of ``--clients`` (alternating, median of 5): past what batching saves,
more clients gain only what overlapping per-request work (HTTP, JSON) hides. Prints a
table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from eval.results import write_json
from rag.errors import run_guarded
from rag.evaluation.gold import BUNDLED_GOLD, load_gold
from rag.evaluation.metrics import latency_summary
from rag.settings import BACKENDS, DEFAULT_MODE, configure_entry_point


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ask(url: str, question: str) -> tuple[float, str | None, str | None]:
    """(seconds, answer, error) of one POST /api/ask."""
    started = time.perf_counter()
    request = urllib.request.Request(f"{url}/api/ask", data=json.dumps({"question": question}).encode(),
                                     headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            answer = json.loads(response.read())["answer"]
        return time.perf_counter() - started, answer, None
    except Exception as e:  # any failure of a request is counted, whatever it is
        return time.perf_counter() - started, None, f"{type(e).__name__}: {e}"


def _start_server(folder: Path, port: int, backend: str) -> subprocess.Popen:
    server = subprocess.Popen([sys.executable, "-m", "rag.cli", "serve", "--index", str(folder), "--port", str(port),
                               "--backend", backend, "--rate-limit", "0"],  # every client is 127.0.0.1 here
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"rag serve exited: {server.stderr.read()}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/documents", timeout=2).close()
            return server
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit("rag serve did not start within 120 s")


def reading_per_question(folder: Path, questions: list[str], batch: int, backend: str, rounds: int = 5) -> dict:
    """Seconds of reading per question, alone and in batches of ``batch`` as the server reads them (median)."""
    from rag.serve.library import Library

    library = Library(folder, backend=backend)
    questions = questions[:batch]
    hits = library.retrieve(questions, [library.assistant.k] * len(questions), [DEFAULT_MODE] * len(questions))
    library.answer(questions, hits)  # warm up
    alone, together = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        for q, h in zip(questions, hits):
            library.answer([q], [h])
        alone.append((time.perf_counter() - started) / len(questions))
        started = time.perf_counter()
        library.answer(questions, hits)
        together.append((time.perf_counter() - started) / len(questions))
    return {"alone_s": statistics.median(alone), "batched_s": statistics.median(together), "batch": len(questions),
            "saving": statistics.median(alone) / statistics.median(together)}


def run(clients: int, per_client: int, backend: str = "auto", warmup: int = 5) -> dict:
    from rag.indexing.bundled import default_index

    gold = [g.question for g in load_gold(BUNDLED_GOLD)]
    plan = [[gold[(c * per_client + i) % len(gold)] for i in range(per_client)] for c in range(clients)]
    distinct = list(dict.fromkeys(q for questions in plan for q in questions))
    workdir = Path(tempfile.mkdtemp(prefix="rag-load-"))
    try:
        default_index().save(workdir / "index")
        port = _free_port()
        server = _start_server(workdir / "index", port, backend)
        url = f"http://127.0.0.1:{port}"
        try:
            for q in distinct[:warmup]:
                _ask(url, q)
            started = time.perf_counter()
            alone = {q: _ask(url, q) for q in distinct}
            alone_seconds = time.perf_counter() - started
            started = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                together = list(pool.map(lambda questions: [(q, _ask(url, q)) for q in questions], plan))
            together_seconds = time.perf_counter() - started
        finally:
            server.terminate()
            server.wait(timeout=30)
        reading = reading_per_question(workdir / "index", distinct, clients, backend)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results = [(q, r) for client in together for q, r in client]
    single = len(distinct) / alone_seconds
    concurrent = len(results) / together_seconds
    return {
        "backend": backend, "clients": clients, "questions_per_client": per_client,
        "distinct_questions": len(distinct), "cpus": os.cpu_count(),
        "single_client": {"requests": len(distinct), "errors": sum(r[2] is not None for r in alone.values()),
                          "throughput_per_s": single, "latency_s": latency_summary([r[0] for r in alone.values()])},
        "concurrent": {"requests": len(results), "errors": sum(r[2] is not None for _, r in results),
                       "differing_answers": sum(r[2] is None and r[1] != alone[q][1] for q, r in results),
                       "throughput_per_s": concurrent, "latency_s": latency_summary([r[0] for _, r in results])},
        "throughput_ratio": concurrent / single,
        "reading_per_question": reading,
        "error_examples": sorted({r[2] for _, r in results if r[2]})[:3],
    }


def table(result: dict) -> str:
    lines = [f"rag serve --backend {result['backend']}",
             f"{'':<26}{'requests':>9}{'errors':>8}{'differ':>8}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}"]
    for name, key in (("1 client", "single_client"), (f"{result['clients']} clients", "concurrent")):
        r = result[key]
        lines.append(f"{name:<26}{r['requests']:>9}{r['errors']:>8}{r.get('differing_answers', 0):>8}"
                     f"{r['throughput_per_s']:>8.1f}{1000 * r['latency_s']['p50']:>9.0f}"
                     f"{1000 * r['latency_s']['p95']:>9.0f}")
    lines.append(f"throughput, {result['clients']} clients / 1 client: {result['throughput_ratio']:.2f}x "
                 f"on {result['cpus']} CPUs")
    r = result["reading_per_question"]
    lines.append(f"reading per question in this process: {1000 * r['alone_s']:.0f} ms alone, "
                 f"{1000 * r['batched_s']:.0f} ms in batches of {r['batch']} ({r['saving']:.2f}x)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--questions", type=int, default=10, help="questions per client")
    parser.add_argument("--backend", choices=BACKENDS, default="auto",
                        help="the server's --backend (see rag serve --help)")
    parser.add_argument("--out", type=Path, default=Path("eval-results/load.json"))
    args = parser.parse_args(argv)
    configure_entry_point()
    return run_guarded(report, args)


def report(args: argparse.Namespace) -> None:
    result = run(args.clients, args.questions, args.backend)
    write_json(args.out, result)
    print(table(result))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
