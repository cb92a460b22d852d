"""Past one machine: indexing on Ray, and serving from PostgreSQL and Qdrant, against the single-process parts.

    python -m eval.cluster [--passages 100000] [--index-passages 2000] [--queries 100]

Two parts, measured in one run on this machine:

1. Indexing throughput: reading, cleaning, chunking and embedding (the real encoder, at the
   precision ``rag index`` uses) of the bundled corpus and of ``--index-passages``
   passages' worth of article files (real paragraphs as in ``eval.scale``, five to an
   article), in one process; on a local Ray of 1 worker and of 2 workers; and on a real Ray
   cluster on loopback (``eval.servers.LocalRay``) of 1 node (2 CPUs) and of 2 nodes (1 CPU
   each). Ray's start-up is timed apart from the work. The variants run one after the
   other, so their ratios are only as good as the machine is quiet.
2. Search: the bundled corpus (its real vectors) and ``--passages`` passages (vectors
   synthetic, as ``eval.scale`` makes them; questions real and really encoded) written to
   an index folder, to a real PostgreSQL 18 server with pgvector on loopback
   (``eval.servers.LocalPostgres``) and to a Qdrant collection in Qdrant's embedded local
   mode. For each: the write time (passages per second), dense, BM25 and hybrid search
   p50/p95 (backends alternating question by question) and how many of the folder index's
   top 10 the backend returns (ties at the cut counted as returned); the folder index
   searches exactly, so for dense search this is recall@10 against exact search. Qdrant's
   local mode is a pure-Python engine that scans every point; a Qdrant server would be
   faster: its latencies are the local mode's, not a server's.

Prints a table and writes JSON (``eval-results/cluster.json``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from eval.results import write_json
from eval.scale import base_paragraphs, corpus, near
from rag.errors import run_guarded
from rag.settings import configure_entry_point

MODES = ("dense", "bm25", "hybrid")


def _write_articles(folder: Path, documents) -> None:
    folder.mkdir(parents=True)
    for d in documents:
        (folder / f"{d.id}.txt").write_text(f"{d.title}\n\n{d.text}\n", encoding="utf-8")


INDEXING = ("one process", "local ray, 1 worker", "local ray, 2 workers", "ray cluster, 1 node",
            "ray cluster, 2 nodes")


def indexing(name: str, articles: Path) -> dict:
    """Passages per second of read + clean + chunk + embed: one process; a local Ray of 1 and 2 workers;
    a Ray cluster on loopback of 1 node (2 CPUs) and of 2 nodes (1 CPU each)."""
    from contextlib import nullcontext

    from embeddings import Embedder
    from eval.servers import LocalRay
    from rag.indexing.local import LocalPipeline
    from rag.indexing.ray import RayPipeline
    from rag.ingest import read_documents
    from rag.settings import ChunkSettings

    # Ray reads the auth mode once per process and joins a token cluster by address only if told to:
    # token mode, Ray's own default for a local cluster, is set before Ray first starts here.
    os.environ["RAY_AUTH_MODE"] = "token"
    embedder = Embedder()
    embedder.encode(["warm up"], passages=True)
    row: dict = {"corpus": name}
    started = time.perf_counter()
    documents = read_documents([articles])
    passages, _ = LocalPipeline().chunk_and_embed(documents, embedder, ChunkSettings())
    seconds = time.perf_counter() - started
    row["passages"] = len(passages)
    row["one process"] = {"seconds": seconds, "passages_per_s": len(passages) / seconds}
    variants = [("local ray, 1 worker", None, 1), ("local ray, 2 workers", None, 2),
                ("ray cluster, 1 node", LocalRay(workers=0, cpus=2), 2),
                ("ray cluster, 2 nodes", LocalRay(workers=1, cpus=1), 2)]
    for variant, cluster, workers in variants:
        started = time.perf_counter()
        with cluster if cluster is not None else nullcontext(), \
                RayPipeline(cluster.address if cluster else None, workers=workers) as pipeline:
            ready = time.perf_counter()
            found = pipeline.read([articles], lambda _: None)
            ray_passages, _ = pipeline.chunk_and_embed(found, embedder, ChunkSettings())
            seconds = time.perf_counter() - ready
        if ray_passages != passages:
            raise AssertionError(f"{variant} cut other passages than one process")
        row[variant] = {"seconds": seconds, "passages_per_s": len(passages) / seconds, "start_s": ready - started}
    return row


def _percentiles(seconds: list[float]) -> dict:
    return {"p50_ms": 1000 * statistics.median(seconds), "p95_ms": 1000 * float(np.percentile(seconds, 95))}


def agreement(hits, truth) -> float:
    """The share of the folder index's top hits the collection returns too, a hit with the score of the
    folder's last one counting as returned (passages that tie at the cut may come in either order)."""
    if not truth:
        return 1.0
    ids, last = {h.passage.id for h in truth}, truth[-1].score
    return sum(h.passage.id in ids or abs(h.score - last) <= 1e-5 * max(1.0, abs(last)) for h in hits) / len(truth)


BACKENDS = ("postgresql", "qdrant")


def search(name: str, documents, passages, vectors: np.ndarray, questions: list[str], embedder, work: Path,
           postgres_url: str, backends: tuple[str, ...] = BACKENDS) -> dict:
    """Latency and agreement of PostgreSQL and of a Qdrant collection (local mode) against an index folder of
    the same vectors, and how fast each is written."""
    from rag.index.folder import PassageIndex
    from rag.index.postgres import PostgresIndex
    from rag.index.qdrant import QdrantIndex
    from rag.search.retriever import Retriever
    from rag.settings import ChunkSettings, DenseSettings

    folder = PassageIndex.create(None, embedder, ChunkSettings(), DenseSettings(kind="flat"))
    folder.add_embedded(documents, passages, vectors)
    shutil.rmtree(work / "qdrant", ignore_errors=True)
    row: dict = {"corpus": name, "passages": len(passages)}
    stores = {}
    for backend, location, kind in (("postgresql", postgres_url, PostgresIndex),
                                    ("qdrant", f"qdrant:{work}/qdrant/bench", QdrantIndex)):
        if backend not in backends:
            continue
        started = time.perf_counter()
        store = kind.create(location, embedder, ChunkSettings())
        store.add_embedded(documents, passages, vectors)
        store.save()
        seconds = time.perf_counter() - started
        row[f"{backend} write"] = {"seconds": seconds, "passages_per_s": len(passages) / seconds}
        stores[backend] = store
    retrievers = {(where, mode): Retriever(index, mode=mode)
                  for where, index in (("folder", folder), *stores.items()) for mode in MODES}
    times: dict = {key: [] for key in retrievers}
    found: dict = {}
    for i, question in enumerate(questions):
        for key in list(retrievers)[::1 if i % 2 else -1]:
            started = time.perf_counter()
            hits = retrievers[key].search(question, 10)
            times[key].append(time.perf_counter() - started)
            found[key, i] = hits
    for (where, mode), spent in times.items():
        row[f"{where} {mode}"] = _percentiles(spent)
    for backend in stores:
        for mode in MODES:
            row[f"{backend} {mode} top-10 agreement"] = float(np.mean([
                agreement(found[(backend, mode), i], found[("folder", mode), i]) for i in range(len(questions))]))
    for store in stores.values():
        store.close()
    return row


def run(shared: Path, n_passages: int, index_passages: int, n_questions: int, work: Path, out: Path,
        parts: tuple[str, ...] = ("indexing", "search"), backends: tuple[str, ...] = BACKENDS) -> dict:
    from embeddings import DEFAULT_MODEL
    from rag import exports
    from rag.indexing.bundled import corpus_dir, default_index
    from rag.training.data import DEFAULT_MIX, held_out_sets

    work.mkdir(parents=True, exist_ok=True)
    paragraphs = base_paragraphs(shared)
    questions = [q for q, _, _ in held_out_sets(shared / "qa-train", DEFAULT_MIX, 0.0, seed=0)][:n_questions]
    result: dict = {"cpus": os.cpu_count(), "questions": len(questions), "indexing": [], "search": []}

    articles = work / "articles"
    shutil.rmtree(articles, ignore_errors=True)
    _write_articles(articles, corpus(paragraphs, index_passages)[0])
    for name, folder in (("bundled corpus", corpus_dir()), (f"{index_passages:,} passages of articles", articles)):
        if "indexing" in parts:
            result["indexing"].append(indexing(name, folder))
            write_json(out, result)
    if "search" not in parts:
        return result

    from eval.servers import LocalPostgres

    real = exports.embedder(DEFAULT_MODEL, "auto")
    bundled = default_index()
    rows = np.arange(bundled.rows)
    bundled_vectors = np.vstack([bundled.dense.parts[0].reconstruct(int(r)) for r in rows]) if bundled.rows else None
    with LocalPostgres() as postgres:
        result["search"].append(search("bundled corpus", list(bundled.documents.values()), list(bundled.passages),
                                       bundled_vectors, questions, real, work, postgres.url("bundled"), backends))
        write_json(out, result)
        documents, passages = corpus(paragraphs, n_passages)
        base = real.encode(paragraphs[:20_000], passages=True)
        vectors = near(base, len(passages), 0.02, np.random.default_rng(0))
        result["search"].append(search(f"{n_passages:,} passages", documents, passages, vectors, questions, real,
                                       work, postgres.url("large"), backends))
        write_json(out, result)
    return result


def table(result: dict) -> str:
    lines = ["Indexing: read + clean + chunk + embed, passages/s (Ray start-up apart)"]
    for row in result["indexing"]:
        cells = [f"{v}: {row[v]['passages_per_s']:.1f}" for v in INDEXING if v in row]
        starts = ", ".join(f"{row[v]['start_s']:.1f}" for v in INDEXING[1:] if v in row)
        lines.append(f"  {row['corpus']} ({row['passages']:,} passages)\n    " + "  ".join(cells)
                     + f"\n    (Ray start-up {starts} s)")
    lines.append("Search p50/p95 ms against the index folder; top-10 agreement with it; write passages/s")
    for row in result["search"]:
        lines.append(f"  {row['corpus']}: write " + ", ".join(f"{b} {row[f'{b} write']['passages_per_s']:.0f}/s"
                                                             for b in BACKENDS if f"{b} write" in row))
        for mode in MODES:
            f = row[f"folder {mode}"]
            cells = [f"{b} {row[f'{b} {mode}']['p50_ms']:7.1f}/{row[f'{b} {mode}']['p95_ms']:7.1f} "
                     f"({row[f'{b} {mode} top-10 agreement']:.3f})" for b in BACKENDS if f"{b} {mode}" in row]
            lines.append(f"    {mode:<7} folder {f['p50_ms']:7.1f}/{f['p95_ms']:7.1f}   " + "   ".join(cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared"))
    parser.add_argument("--passages", type=int, default=100_000, help="passages of the search comparison")
    parser.add_argument("--index-passages", type=int, default=2_000,
                        help="passages' worth of articles for the indexing throughput")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--parts", default="indexing,search", help="what to measure: indexing, search or both")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="search backends to measure")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "rag-cluster")
    parser.add_argument("--out", type=Path, default=Path("eval-results/cluster.json"))
    args = parser.parse_args(argv)
    configure_entry_point()

    def go() -> None:
        result = run(args.shared, args.passages, args.index_passages, args.queries, args.work, args.out,
                     tuple(args.parts.split(",")), tuple(args.backends.split(",")))
        print(table(result))
        print(f"wrote {args.out}", file=sys.stderr)

    return run_guarded(go)


if __name__ == "__main__":
    raise SystemExit(main())
