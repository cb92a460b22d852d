"""The gold set and the eval suite."""

import json

import pytest

from rag.errors import RagError
from rag.evaluation.gold import BUNDLED_GOLD, from_doc, load_gold, squad_corpus
from tests.conftest import doc_by_title


def test_gold_set_is_large_varied_and_verbatim(corpus_docs):
    gold = load_gold(BUNDLED_GOLD)
    assert len(gold) >= 80 and len({g.id for g in gold}) == len(gold)
    kinds = [g.kind for g in gold]
    assert kinds.count("paraphrase") >= 15
    assert kinds.count("no_answer") >= 10
    assert kinds.count("disambiguation") >= 5
    for title in ("Dostum and Noor", "IMU-Taliban"):
        doc = doc_by_title(corpus_docs, title)
        assert sum(from_doc(doc, g.doc) for g in gold) >= 25
    for g in gold:
        if g.answerable:
            [doc] = [d for d in corpus_docs if from_doc(d, g.doc)]
            for answer in g.answers:
                assert answer in doc.text, (g.id, answer)
        else:
            assert g.doc is None


def test_malformed_gold_lines_are_reported_with_their_number(tmp_path):
    path = tmp_path / "gold.jsonl"
    path.write_text('{"id": 1, "question": "q?", "answers": [], "doc": null}\n{"id": 2, "question": "q?"}\n')
    with pytest.raises(RagError, match=r"gold.jsonl:2"):
        load_gold(path)
    path.write_text('{"id": 1, "question": "q?", "answers": ["x"], "doc": null}\n')
    with pytest.raises(RagError, match=r"gold.jsonl:1"):
        load_gold(path)


def test_squad_json_becomes_a_corpus_and_gold(tmp_path):
    path = tmp_path / "mini.json"
    path.write_text(json.dumps({"data": [{"title": "Rivers", "paragraphs": [
        {"context": "The Nile is long.", "qas": [{"id": "a", "question": "What is long?",
                                                 "answers": [{"text": "The Nile", "answer_start": 0}]}]},
        {"context": "The Amazon is wide.", "qas": [
            {"id": "b", "question": "What is wide?", "answers": [{"text": "Amazon", "answer_start": 4}]},
            {"id": "c", "question": "What is deep?", "answers": [], "is_impossible": True}]}]}]}))
    documents, gold = squad_corpus(path)
    assert [d.text for d in documents] == ["The Nile is long.", "The Amazon is wide."]
    assert [(g.id, g.answers, g.kind) for g in gold] == [
        ("a", ("The Nile",), "squad"), ("b", ("Amazon",), "squad"), ("c", (), "no_answer")]
    assert from_doc(documents[1], gold[1].doc) and not from_doc(documents[0], gold[1].doc)


@pytest.mark.slow
def test_rag_eval_writes_report_and_plot(tmp_path):
    from rag.cli import main

    out = tmp_path / "report.json"
    assert main(["eval", "--sample", "12", "--seed", "1", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert set(report["retrieval"]) == {"dense", "bm25", "hybrid, rrf", "hybrid, convex 0.3 dense",
                                        "hybrid, convex 0.5 dense", "hybrid, convex 0.7 dense"}
    assert report["retrieval"]["hybrid, rrf"]["top10"] >= report["retrieval"]["hybrid, rrf"]["top1"]
    assert len(report["records"]) == 12
    e2e = report["end_to_end"]
    assert 0 <= e2e["em"] <= e2e["f1"] <= 1
    assert e2e["em"] <= e2e["em_at_3"] <= 1 and all(r["em"] <= r["em_at_3"] for r in report["records"])
    assert set(e2e["latency_seconds"]) == {"retrieve", "read", "total"}
    png = out.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


@pytest.mark.slow
def test_compare_haystack_runs_both_readers_on_the_same_passages(tmp_path):
    from eval.compare_haystack import main

    out = tmp_path / "compare.json"
    assert main(["--questions", "6", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    for name in ("ours", "haystack"):
        assert report[name]["answerable"] == 6 and 0 <= report[name]["f1_answerable"] <= 100
        assert report[name]["read_latency_s"]["p50"] > 0
    assert report["ours"]["em_answerable"] > 0 and report["haystack"]["em_answerable"] > 0  # the spokesman, at least
    ratio = report["ours"]["read_latency_s"]["p50"] / report["haystack"]["read_latency_s"]["p50"]
    assert report["latency_ratio_ours_to_haystack"] == pytest.approx(ratio)
