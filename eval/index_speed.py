"""Indexing speed: `rag index`'s pipeline against the raw encoder on the same passages, per precision, one run.

    python -m eval.index_speed [--squad ../shared/squad/dev-v1.1.json] [--documents 800]

Takes SQuAD dev paragraphs as documents (only as text to index; no question is asked), cuts
them into passages once, then times, with the variants taking turns: the encoder alone on
those passages, and ``rag.indexing.workflow.build_index`` on the documents (chunking, encoding, BM25),
each in fp32 and, on a CPU with native bf16, in bf16. Then checks that bf16
passage vectors keep retrieval: top-5 accuracy of dense and hybrid search on the bundled
gold set and on the SQuAD questions about these documents. Prints a table, writes JSON.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from eval.results import write_json
from rag.errors import run_guarded
from rag.settings import configure_entry_point


def run(squad: Path, n_documents: int, rounds: int = 2) -> dict:
    from embeddings import Embedder
    from embeddings.encoder import cpu_has_bf16
    from rag.evaluation.gold import BUNDLED_GOLD, load_gold, squad_corpus
    from rag.evaluation.run import convex_variant, evaluate_retrieval
    from rag.indexing.bundled import corpus_dir
    from rag.indexing.chunking import Chunker
    from rag.indexing.workflow import build_index
    from rag.ingest import read_documents
    from rag.search.retriever import Retriever
    from rag.settings import ChunkSettings

    documents, squad_gold = squad_corpus(squad)
    documents = documents[:n_documents]
    ids = {d.id for d in documents}
    squad_gold = [g for g in squad_gold if g.doc in ids]
    precisions = ["fp32", "bf16"] if cpu_has_bf16() else ["fp32"]
    embedders = {p: Embedder(precision=p) for p in precisions}
    texts = [p.text for p in Chunker(ChunkSettings(), embedders["fp32"].count_tokens).chunk_all(documents)]
    for e in embedders.values():
        e.encode(texts[:64], passages=True)  # load and warm up
    seconds: dict[str, list[float]] = {}
    for _ in range(rounds):
        for precision, embedder in embedders.items():
            started = time.perf_counter()
            embedder.encode(texts, progress=False, passages=True)
            seconds.setdefault(f"encoder alone, {precision}", []).append(time.perf_counter() - started)
            started = time.perf_counter()
            build_index(documents, embedder)
            seconds.setdefault(f"rag index pipeline, {precision}", []).append(time.perf_counter() - started)
    speed = {name: len(texts) / min(times) for name, times in seconds.items()}
    ratios = {p: speed[f"rag index pipeline, {p}"] / speed[f"encoder alone, {p}"] for p in precisions}
    retrieval = {}
    bundled = read_documents([corpus_dir()])
    for precision, embedder in embedders.items():
        for corpus, docs, gold in (("bundled", bundled, load_gold(BUNDLED_GOLD)), ("squad", documents, squad_gold)):
            retriever = Retriever(build_index(docs, embedder))
            found = evaluate_retrieval(retriever, gold)
            hybrid = found[convex_variant(retriever.dense_weight)]  # the default fusion
            retrieval[f"{corpus}, {precision}"] = {"dense": 100 * found["dense"]["top5"],
                                                   "hybrid": 100 * hybrid["top5"]}
    return {"documents": len(documents), "passages": len(texts), "passages_per_s": speed,
            "pipeline_to_encoder": ratios, "top5_retrieval": retrieval, "squad_questions": len(squad_gold)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--squad", type=Path, default=Path("../shared/squad/dev-v1.1.json"))
    parser.add_argument("--documents", type=int, default=800)
    parser.add_argument("--out", type=Path, default=Path("eval-results/index_speed.json"))
    args = parser.parse_args(argv)
    configure_entry_point()
    return run_guarded(report, args)


def report(args: argparse.Namespace) -> None:
    result = run(args.squad, args.documents)
    write_json(args.out, result)
    print(f"{result['documents']} documents, {result['passages']} passages (best of 2 rounds, variants alternating)")
    for name, speed in result["passages_per_s"].items():
        print(f"  {name:<32}{speed:8.1f} passages/s")
    for precision, ratio in result["pipeline_to_encoder"].items():
        print(f"  rag index / encoder alone, {precision}: {ratio:.2f}")
    print(f"top-5 retrieval accuracy (bundled gold; {result['squad_questions']} SQuAD questions on these documents)")
    for name, r in result["top5_retrieval"].items():
        print(f"  {name:<16} dense {r['dense']:5.1f}   hybrid {r['hybrid']:5.1f}")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
