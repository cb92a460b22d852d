"""`rag index --ray ADDRESS` on a real Ray cluster of two nodes on loopback, one of them killed mid-build.

The head runs on 127.0.0.3 and a worker node on 127.0.0.4 (``eval.servers.LocalRay``), each a
``ray start`` process; the build runs as a user would run it, as a ``rag index`` process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eval.servers import LocalRay
from rag.index.folder import PassageIndex
from rag.indexing.bundled import corpus_dir
from rag.ingest import read_documents

pytestmark = pytest.mark.slow


def _articles(folder: Path, n: int) -> Path:
    """``n`` distinct articles from the bundled corpus's paragraphs: each a different pair, so none is a copy."""
    from itertools import combinations

    paragraphs = [p for d in read_documents([corpus_dir()]) for p in d.text.split("\n\n") if len(p.split()) > 25]
    pairs = list(combinations(range(len(paragraphs)), 2))[::3]
    assert len(pairs) >= n
    folder.mkdir()
    for i, (a, b) in enumerate(pairs[:n]):
        first, second = paragraphs[a], paragraphs[b]
        (folder / f"{i:03d}.txt").write_text(f"Dispatch {i} from the north\n\nReport number {i}. {first}\n\n"
                                             f"{second}\n", encoding="utf-8")
    return folder


def _index(args: list[str], cwd: Path, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rag.cli", "index", *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def test_a_two_node_build_survives_a_killed_node_and_equals_one_process(tmp_path):
    articles = _articles(tmp_path / "articles", 120)
    local = _index([str(articles), "--out", str(tmp_path / "local")], tmp_path)
    assert local.wait(timeout=600) == 0, local.stderr.read()
    with LocalRay(workers=1, cpus=1) as cluster:
        assert sorted(cluster.alive_nodes()) == ["127.0.0.3", "127.0.0.4"]
        build = _index([str(articles), "--out", str(tmp_path / "ray"), "--ray", cluster.address,
                        "--ray-workers", "2"], tmp_path, env={**cluster.env, "RAY_NODE_IP_ADDRESS": "127.0.0.3"})
        deadline = time.monotonic() + 120
        while not cluster.busy_workers("127.0.0.4"):  # the worker node has taken on part of the build
            assert build.poll() is None, build.stderr.read()
            assert time.monotonic() < deadline, "the worker node never got any work"
            time.sleep(0.2)
        for pid in cluster.raylet_pids("127.0.0.4"):
            os.kill(pid, signal.SIGKILL)
        assert build.wait(timeout=900) == 0, build.stderr.read()
        assert cluster.alive_nodes() == ["127.0.0.3"]  # the build finished on the head alone
    one, ray = PassageIndex.open(tmp_path / "local"), PassageIndex.open(tmp_path / "ray")
    assert list(ray.documents.values()) == list(one.documents.values())  # every document, once, in order
    assert len(ray.documents) == 120 and list(ray.passages) == list(one.passages)
