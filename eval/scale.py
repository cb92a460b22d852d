"""Retrieval at scale: build, update, load and search indexes of 100k to 1M passages, one table.

    python -m eval.scale --passages 100000 1000000 [--queries 200] [--work /tmp/rag-scale]

What it indexes, said plainly because the vectors are not all real:

- passages: real paragraphs (the contexts of ``../shared/qa-train`` and SQuAD dev), cut at
  about 600 characters, repeated until there are enough, each copy told apart by a serial
  word; five passages make one document, with a synthetic date, outlet and author;
- vectors: synthetic. The first ``--real-vectors`` passages are embedded by the real encoder;
  every passage gets a random mix of two of those vectors plus Gaussian noise, renormalised,
  so the vectors spread over the region of real text at no embedding cost;
- questions: real held-out questions of the training data, embedded by the real query
  encoder (ONNX Runtime), so search times include encoding the question.

For each size it reports: build time (FAISS, BM25 and metadata; no embedding), save time,
load time and RSS after load (in a fresh process), search p50/p95 for dense, sparse and
hybrid retrieval and for a filtered hybrid search, dense recall@10 against exact search,
and the time to add 200 new documents (the text of 1,000 passages, words reversed so that
they are new stories, which the chunker cuts into fewer, longer ones; their embedding is
precomputed, so not timed; the check for copies of indexed stories is timed) and to
remove 100 documents, each saved to the index loaded from disk, as an update does; then
the load time and RSS of the changed index. Prints a table and writes JSON after each size;
run again with the same settings, it keeps the sizes already measured (a long run resumes).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from eval.process_memory import memory_mb
from eval.results import write_json
from rag.errors import run_guarded
from rag.settings import configure_entry_point

OUTLETS = ("Reuters", "AP", "RFE/RL", "Afghanistan Today", "BBC", "Al Jazeera", "Le Monde", "Dawn")
PASSAGE_CHARS = 600
PER_DOCUMENT = 5


def base_paragraphs(shared: Path) -> list[str]:
    """Real paragraphs, cut to passage size, without duplicates."""
    from rag.evaluation.squad import load_squad

    texts: dict[str, None] = {}
    for path in [*sorted((shared / "qa-train").glob("*.json")), shared / "squad" / "dev-v1.1.json"]:
        for q in load_squad(path):
            for lo in range(0, len(q.context), PASSAGE_CHARS):
                texts.setdefault(q.context[lo:lo + PASSAGE_CHARS].strip(), None)
    return [t for t in texts if len(t) > 100]


class PrecomputedEmbedder:
    """The real encoder's interface; passages get synthetic vectors near real ones (see module doc)."""

    def __init__(self, real, base: np.ndarray, noise: float, seed: int) -> None:
        self.real, self.base, self.noise = real, base, noise
        self.model_name, self.dimension = real.model_name, real.dimension
        self.rng = np.random.default_rng(seed)

    def count_tokens(self, texts):
        return [len(t.split()) for t in texts]

    def encode(self, texts, progress=None, passages=False):
        if not passages:
            return self.real.encode(texts)
        return near(self.base, len(texts), self.noise, self.rng)


def near(base: np.ndarray, n: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` unit vectors, each a random mix of two rows of ``base`` plus Gaussian noise.

    Mixing spreads the vectors over the region real text occupies; copies of single rows
    would pile up in tight clumps of near-duplicates, which no real archive looks like.
    """
    out = np.empty((n, base.shape[1]), dtype=np.float32)
    for lo in range(0, n, 100_000):
        hi = min(n, lo + 100_000)
        mix = rng.random((hi - lo, 1), dtype=np.float32)
        block = (mix * base[rng.integers(0, len(base), hi - lo)] + (1 - mix) * base[rng.integers(0, len(base), hi - lo)]
                 + rng.normal(0, noise, (hi - lo, base.shape[1])))
        out[lo:hi] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def corpus(paragraphs: list[str], n: int, start: int = 0, fresh: bool = False):
    """``n`` passages in documents of PER_DOCUMENT, from paragraph ``start`` on, with metadata.

    ``fresh``: each paragraph's words in reverse order, so that the documents are new stories
    to the index's near-duplicate check (``rag.ingest.near_duplicates``), not copies of the
    repeated paragraphs already indexed, with the same words for BM25 to search.
    """
    from rag.types import Document, Passage

    def text_of(k: int) -> str:
        paragraph = paragraphs[k % len(paragraphs)]
        return " ".join(reversed(paragraph.split())) if fresh else paragraph

    documents, passages = [], []
    for d in range(start // PER_DOCUMENT, (start + n + PER_DOCUMENT - 1) // PER_DOCUMENT):
        parts = [f"{text_of(d * PER_DOCUMENT + i)} [{d}.{i}]" for i in range(PER_DOCUMENT)]
        text = "\n\n".join(parts)
        doc = Document(f"doc{d:08d}", f"Article {d}", text, f"synthetic/{d}.txt", author=f"Reporter {d % 997}",
                       date=f"{2000 + d % 25}-{1 + d % 12:02d}-{1 + d % 28:02d}", outlet=OUTLETS[d % len(OUTLETS)])
        documents.append(doc)
        offset = 0
        for i, part in enumerate(parts):
            passages.append(Passage(f"{doc.id}-{i}", doc.id, part, offset, offset + len(part)))
            offset += len(part) + 2
    return documents, passages[:n]


def percentiles(seconds: list[float]) -> dict[str, float]:
    return {"p50_ms": 1000 * statistics.median(seconds), "p95_ms": 1000 * float(np.percentile(seconds, 95))}


def measure_load(folder: Path) -> dict:
    """Load the index in a fresh process: its time and resident memory after load."""
    out = subprocess.run([sys.executable, "-m", "eval.scale", "--load-only", str(folder)], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def load_only(folder: Path) -> None:
    from rag.index.folder import PassageIndex

    started = time.perf_counter()
    index = PassageIndex.open(folder)
    seconds = time.perf_counter() - started
    print(json.dumps({"load_s": seconds, "rss_mb": memory_mb()["VmRSS"], "passages": len(index.passages)}))


def run_size(n: int, paragraphs: list[str], base: np.ndarray, questions: list[str], real, work: Path,
             noise: float) -> dict:
    import faiss

    from rag.index.bm25 import Postings
    from rag.index.dense import choose_kind, new_faiss_index
    from rag.index.folder import PassageIndex
    from rag.index.segment import Segment
    from rag.indexing.workflow import add_documents
    from rag.search.retriever import Retriever
    from rag.settings import ChunkSettings, DenseSettings
    from rag.types import Filters

    rng = np.random.default_rng(n)
    documents, passages = corpus(paragraphs, n)
    vectors = near(base, n, noise, rng)
    embedder = PrecomputedEmbedder(real, base, noise, seed=n + 1)
    result: dict = {"passages": n, "documents": len(documents)}

    started = time.perf_counter()
    settings = DenseSettings()
    dense = new_faiss_index(vectors.shape[1], choose_kind(settings, n), settings)
    dense.add(vectors)
    segment = Segment({d.id: d for d in documents}, passages, dense, Postings.build([p.text for p in passages]))
    index = PassageIndex([segment], vectors.shape[1], embedder, ChunkSettings(), dense_settings=settings)
    result["build_s"] = time.perf_counter() - started
    result["dense_kind"] = index.dense.kind

    folder = work / f"index-{n}"
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    index.save(folder)
    result["save_s"] = time.perf_counter() - started
    result.update(measure_load(folder))
    index = PassageIndex.open(folder, embedder)  # as a user's update does: the saved segments are linked

    queries = real.encode(questions)
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    _, truth = exact.search(queries, 10)
    del exact
    found = index.dense.search_vectors(queries, 10)
    result["dense_recall_at_10"] = float(np.mean([len(set(f[0]) & set(t)) / 10 for f, t in zip(found, truth)]))

    retriever = Retriever(index)
    outlet = Filters(sources=(OUTLETS[0],), since="2010-01-01")
    for name, mode, limits in (("dense", "dense", None), ("sparse", "bm25", None), ("hybrid", "hybrid", None),
                               ("hybrid, filtered", "hybrid", outlet)):
        retriever.search(questions[0], k=10, mode=mode, filters=limits)  # warm up
        seconds = []
        for q in questions:
            started = time.perf_counter()
            retriever.search(q, k=10, mode=mode, filters=limits)
            seconds.append(time.perf_counter() - started)
        result[f"search_{name}"] = percentiles(seconds)

    new_documents, _ = corpus(paragraphs, 1000, start=n + PER_DOCUMENT, fresh=True)
    started = time.perf_counter()
    added = add_documents(index, new_documents).passages
    index.save(folder)
    result["add_1000_s"] = time.perf_counter() - started
    result["added_passages"] = added

    doomed = [d.id for d in random.Random(n).sample(documents, 100)]
    started = time.perf_counter()
    index.remove(doomed)
    index.save(folder)
    result["remove_100_docs_s"] = time.perf_counter() - started
    result.update({f"{key}_after_changes": value for key, value in measure_load(folder).items()})
    shutil.rmtree(folder, ignore_errors=True)
    return result


EF_SEARCH = (64, 128, 256, 512, 1024)  # HNSW candidate list sizes tried at each size


def crossover(sizes: list[int], base: np.ndarray, queries: np.ndarray, noise: float) -> list[dict]:
    """Exact against HNSW search at each size and efSearch, alternating query by query: where HNSW pays."""
    import faiss

    from rag.index.dense import new_faiss_index
    from rag.settings import DenseSettings

    rows = []
    for n in sizes:
        vectors = near(base, n, noise, np.random.default_rng(n))
        flat, hnsw = (new_faiss_index(vectors.shape[1], kind, DenseSettings()) for kind in ("flat", "hnsw"))
        flat.add(vectors)
        started = time.perf_counter()
        hnsw.add(vectors)
        row = {"passages": n, "hnsw_build_s": time.perf_counter() - started, "threads": faiss.omp_get_max_threads()}
        variants = {"flat": (flat, None), **{f"hnsw ef {ef}": (hnsw, faiss.SearchParametersHNSW(efSearch=ef))
                                             for ef in EF_SEARCH}}
        seconds: dict[str, list[float]] = {name: [] for name in variants}
        found: dict[tuple[str, int], np.ndarray] = {}
        for i, q in enumerate(queries):
            for name in list(variants)[::1 if i % 2 else -1]:
                index, params = variants[name]
                started = time.perf_counter()
                found[name, i] = index.search(q[None, :], 10, params=params)[1][0]
                seconds[name].append(time.perf_counter() - started)
        for name in variants:
            recall = np.mean([len(set(found[name, i]) & set(found["flat", i])) / 10 for i in range(len(queries))])
            row[name] = {**percentiles(seconds[name]), "recall_at_10": float(recall)}
        rows.append(row)
    return rows


def run(sizes: list[int], crossover_sizes: list[int], shared: Path, n_questions: int, n_real: int, work: Path,
        noise: float, out: Path) -> dict:
    """Each size's results go to ``out`` as soon as they are measured; a rerun with the same
    settings keeps the sizes already there and measures only the others."""
    from embeddings import DEFAULT_MODEL
    from rag import exports
    from rag.training.data import DEFAULT_MIX, held_out_sets

    paragraphs = base_paragraphs(shared)
    real = exports.embedder(DEFAULT_MODEL, "auto")
    base = real.encode(paragraphs[:n_real], passages=True)
    questions = [q for q, _, _ in held_out_sets(shared / "qa-train", DEFAULT_MIX, 0.0, seed=0)][:n_questions]
    work.mkdir(parents=True, exist_ok=True)
    result = {"real_paragraphs": len(paragraphs), "real_vectors": n_real, "noise": noise, "questions": len(questions),
              "cpus": os.cpu_count()}
    done = _earlier(out, result)
    if done:
        print(f"keeping the sizes already measured in {out}: {', '.join(f'{n:,}' for n in sorted(done))}",
              file=sys.stderr)
    for n in sizes:
        if n not in done:
            done[n] = run_size(n, paragraphs, base, questions, real, work, noise)
            write_json(out, {**result, "sizes": [done[m] for m in sizes if m in done], "crossover": []})
    result = {**result, "sizes": [done[n] for n in sizes],
              "crossover": crossover(crossover_sizes, base, real.encode(questions), noise)}
    write_json(out, result)
    return result


def _earlier(out: Path, settings: dict) -> dict[int, dict]:
    """The sizes a run with the same settings already wrote to ``out``, by passage count."""
    try:
        earlier = json.loads(out.read_text())
    except (OSError, ValueError):
        return {}
    if any(earlier.get(key) != value for key, value in settings.items()):
        return {}
    return {s["passages"]: s for s in earlier.get("sizes", [])}


ROWS = (("dense index", "dense_kind", "{}"), ("build (s)", "build_s", "{:.1f}"), ("save (s)", "save_s", "{:.1f}"),
        ("load (s)", "load_s", "{:.2f}"), ("RSS after load (MB)", "rss_mb", "{:.0f}"),
        ("dense recall@10", "dense_recall_at_10", "{:.3f}"), ("add 200 documents (s)", "add_1000_s", "{:.1f}"),
        ("  passages they add", "added_passages", "{:,}"),
        ("remove 100 documents (s)", "remove_100_docs_s", "{:.1f}"),
        ("load after both (s)", "load_s_after_changes", "{:.2f}"),
        ("RSS after that load (MB)", "rss_mb_after_changes", "{:.0f}"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passages", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--crossover", type=int, nargs="*", default=[],
                        help="sizes at which to time exact against HNSW search alone (FAISS only)")
    parser.add_argument("--shared", type=Path, default=Path("../shared"))
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--real-vectors", type=int, default=20_000)
    parser.add_argument("--noise", type=float, default=0.02, help="std of the noise added to each copied vector")
    parser.add_argument("--work", type=Path, default=Path("/tmp/rag-scale"), help="where the indexes are written")
    parser.add_argument("--out", type=Path, default=Path("eval-results/scale.json"))
    parser.add_argument("--load-only", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    configure_entry_point()
    if args.load_only:
        load_only(args.load_only)
        return 0
    return run_guarded(report, args)


def report(args: argparse.Namespace) -> None:
    result = run(args.passages, args.crossover, args.shared, args.queries, args.real_vectors, args.work, args.noise,
                 args.out)
    sizes = result["sizes"]
    print(f"{result['questions']} real questions; passages are real paragraphs repeated; vectors are synthetic "
          f"(mixes of two of the real embeddings of {result['real_vectors']:,} paragraphs, noise {result['noise']})")
    print(f"  {'':<28}" + "".join(f"{s['passages']:>14,}" for s in sizes))
    for label, key, fmt in ROWS:
        print(f"  {label:<28}" + "".join(f"{fmt.format(s[key]):>14}" for s in sizes))
    for name in ("dense", "sparse", "hybrid", "hybrid, filtered"):
        print(f"  {'search ' + name + ' p50/p95 (ms)':<28}"
              + "".join(f"{s['search_' + name]['p50_ms']:>8.1f}/{s['search_' + name]['p95_ms']:<5.0f}" for s in sizes))
    if result["crossover"]:
        print("\nexact (flat) against HNSW search alone, variants alternating query by query, k = 10: "
              "p50 ms / recall@10")
        names = ["flat", *(f"hnsw ef {ef}" for ef in EF_SEARCH)]
        print(f"  {'passages':>10}" + "".join(f"{name:>16}" for name in names) + f"{'HNSW build s':>14}")
        for row in result["crossover"]:
            print(f"  {row['passages']:>10,}" + "".join(f"{row[n]['p50_ms']:>9.2f}/{row[n]['recall_at_10']:.3f}"
                                                     for n in names) + f"{row['hnsw_build_s']:>14.1f}")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
