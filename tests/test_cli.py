"""The `rag` command, run in-process through its real entry point."""

import json

import pytest

from rag.cli import main


@pytest.mark.slow
def test_index_then_search_json(tmp_path, capsys, corpus_docs):
    articles = tmp_path / "articles"
    articles.mkdir()
    for i, doc in enumerate(corpus_docs):
        (articles / f"{i}.txt").write_text(doc.text)
    (articles / "photo.txt").write_bytes(b"\x00\x01\x02binary")
    (articles / "copy.txt").write_text(f"Republished from Afghanistan Today\n\n{corpus_docs[0].text}")
    out = tmp_path / "idx"
    assert main(["index", str(articles), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("photo.txt: binary file, not text") == 1
    assert "indexed 2 documents" in captured.out and "merged 1 duplicates" in captured.out

    assert main(["search", "Which IMU leader was killed in a U.S. drone attack?", "--index", str(out),
                 "-k", "3", "--json"]) == 0
    hits = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [h["passage"]["rank"] for h in hits] == [1, 2, 3]
    assert set(hits[0]) == {"document", "passage"}  # the shapes a citation uses
    assert {"passage_id", "rank", "score", "text", "start", "end", "answer_start"} <= set(hits[0]["passage"])
    assert {"doc_id", "title", "outlet", "file_name"} <= set(hits[0]["document"])
    assert "Tohir Yuldosh" in hits[0]["passage"]["text"]

    # Only the Afghanistan Today article has a date; limited to 2015, every hit comes from it.
    dated = next(d for d in corpus_docs if d.date)
    assert main(["search", "Which IMU leader was killed in a U.S. drone attack?", "--index", str(out),
                 "-k", "3", "--json", "--since", "2015-01-01", "--until", "2015-12-31"]) == 0
    hits = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(hits) == 3 and {h["document"]["title"] for h in hits} == {dated.title}
    manifest = json.loads((out / (out / "CURRENT").read_text().strip() / "manifest.json").read_text())
    assert manifest["dense"]["built"] == "flat" and manifest["dense"]["kind"] == "auto"

    hnsw = tmp_path / "hnsw"
    assert main(["index", str(articles), "--out", str(hnsw), "--dense", "hnsw", "--ef-search", "40"]) == 0
    capsys.readouterr()
    manifest = json.loads((hnsw / (hnsw / "CURRENT").read_text().strip() / "manifest.json").read_text())
    assert manifest["dense"]["built"] == "hnsw" and manifest["dense"]["ef_search"] == 40
    assert main(["search", "Which IMU leader was killed in a U.S. drone attack?", "--index", str(hnsw),
                 "-k", "3", "--json", "--mode", "dense"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


@pytest.mark.slow
def test_default_index_search_prints_titles(capsys):
    assert main(["search", "Who is the spokesman for Dostum's party?", "-k", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("[1] Dostum and Noor announce new alliance")
    assert "Zabih Fetrat" in out.split("[2]")[0]


@pytest.mark.parametrize("argv, message", [
    (["index", "/no/such/folder", "--out", "{tmp}/x"], "no such file or folder"),
    (["search", "anything", "--index", "{tmp}/none"], "no index folder"),
    (["index", "{tmp}/empty", "--out", "{tmp}/x"], "no readable articles"),
    (["search", "anything", "--since", "March"], "since must be a date written YYYY-MM-DD, got 'March'"),
    (["ask", "anything", "--since", "2016-01-01", "--until", "2015-01-01"], "is after until"),
])
def test_user_mistakes_print_one_line_and_fail(tmp_path, capsys, argv, message):
    (tmp_path / "empty").mkdir()
    assert main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


@pytest.mark.parametrize("argv, message", [
    (["search", "   "], "the question is empty"),
    (["index", "x", "--store", "milvus://localhost/news"], "is no store; name one as postgresql://"),
])
def test_usage_errors_exit_2_with_one_message(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
