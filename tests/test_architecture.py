"""The shape of the house, checked from the code's own imports.

- Stages are layers: each imports only its own layer and those below it (``LAYERS``), counting
  imports inside functions too; every module of the tree has a layer.
- ``embeddings`` imports nothing from ``rag``.
- No module imports itself back through others (no cycle).
- Opening the folder index loads neither the reader nor ingestion's cleaning rules.
- Only ``rag`` and ``embeddings`` are installed.

Each rule is also run on a graph with one import added that breaks it, so a rule that can no
longer fail is caught too.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Bottom to top: a module may import its own layer and the layers below. The core (records,
# errors, settings, the index contract, the model exports) sits under every stage.
LAYERS = (
    ("embeddings",),
    ("rag.errors", "rag.dates", "rag.source_map", "rag.settings", "rag.types", "rag.protocols", "rag.exports"),
    ("rag.ingest",),
    ("rag.index",),
    ("rag.read",),  # above the index, which must not load the reader; below indexing, which exports it
    ("rag.indexing",),
    ("rag.search",),
    ("rag.answer",),
    ("rag.serve",),
    ("rag.evaluation",),
    ("rag.training",),
    ("rag.cli", "rag", "eval", "app"),  # entry points; ``rag`` is the package's lazy face (rag/__init__.py)
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module an import statement in the file names, at any depth of the code."""
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}  # `from pkg import module`
    return found


def _graph() -> dict[str, set[str]]:
    files = [*ROOT.glob("rag/**/*.py"), *ROOT.glob("embeddings/**/*.py"), *ROOT.glob("eval/*.py"), ROOT / "app.py"]
    modules = {_module_name(f): f for f in files}
    return {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}


def _layer(module: str) -> int | None:
    """The layer of ``module``: the longest entry of LAYERS it is, or lies under (``rag`` only as itself)."""
    found = [(len(entry), n) for n, entries in enumerate(LAYERS) for entry in entries
             if module == entry or (entry != "rag" and module.startswith(entry + "."))]
    return max(found)[1] if found else None


def _edges(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    # A package's __init__ is not an edge to follow: importing rag.x runs rag/__init__ first anyway.
    return {(m, t) for m, targets in graph.items() for t in targets if not m.startswith(t + ".") and t != "rag"}


def upward_imports(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    """Imports of a higher layer than the importer's, and modules with no layer (as (module, "no layer"))."""
    unplaced = {(m, "no layer") for m in graph if _layer(m) is None}
    return unplaced | {(m, t) for m, t in _edges(graph) if (_layer(t) or 0) > (_layer(m) or 0)}


def rag_imports_in_embeddings(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    return {(m, t) for m, t in _edges(graph) if m.split(".")[0] == "embeddings" and t.split(".")[0] == "rag"}


def a_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the modules along it, or None."""
    following: dict[str, set[str]] = {}
    for m, t in _edges(graph):
        following.setdefault(m, set()).add(t)
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(following.get(module, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[module] = 2
        return None

    return next((found for m in sorted(following) if m not in state and (found := visit(m))), None)


def test_the_graph_sees_the_known_imports():
    graph = _graph()  # a guard against a checker that finds nothing and so passes anything
    assert "rag.search.retriever" in graph["rag.answer.assistant"]
    assert "rag.training.calibrate" in graph["rag.training.train"]
    assert "rag.evaluation.run" in graph["rag.cli"]  # imported inside a function
    assert _layer("rag.index.folder") == 3 and _layer("rag") == 11 and _layer("rag.newstage") is None


def test_each_stage_imports_only_the_stages_below_it():
    assert not upward_imports(_graph())


def test_embeddings_depend_on_nothing_in_rag():
    assert not rag_imports_in_embeddings(_graph())


def test_there_is_no_import_cycle():
    assert a_cycle(_graph()) is None


def test_each_rule_fails_when_broken():
    graph = _graph()

    def adding(module: str, target: str) -> dict[str, set[str]]:
        return {**graph, module: graph[module] | {target}}

    assert upward_imports(adding("rag.index.folder", "rag.read.reader")) == {("rag.index.folder", "rag.read.reader")}
    assert upward_imports(adding("rag.types", "rag.cli")) == {("rag.types", "rag.cli")}
    assert upward_imports(adding("rag.index.qdrant", "rag.ingest.near_duplicates")) == set()  # downward: allowed
    assert upward_imports({**graph, "rag.flat_module": set()}) == {("rag.flat_module", "no layer")}
    assert rag_imports_in_embeddings(adding("embeddings.encoder", "rag.settings"))
    assert a_cycle(adding("rag.index.dense", "rag.index.folder")) is not None


def test_opening_the_folder_index_loads_neither_the_reader_nor_the_cleaning_rules():
    probe = ("import sys, rag.index.folder, rag.index.open; "
             "print(sorted(m for m in sys.modules if m.startswith(('rag.read', 'rag.ingest', 'torch'))))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.strip() == "[]"


@pytest.mark.slow  # builds a wheel
def test_only_rag_and_embeddings_are_installed(tmp_path):
    source = tmp_path / "source"  # a copy, so the build leaves nothing in the checkout
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__",
                                                                "eval-results", "runs"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path), str(source)], check=True, capture_output=True)
    [wheel] = tmp_path.glob("*.whl")
    top = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in top if not t.endswith(".dist-info")} == {"rag", "embeddings"}
    names = zipfile.ZipFile(wheel).namelist()
    assert "rag/models/reader/model.safetensors" in names and "rag/data/corpus/000_c3c45a92a98f9be2.txt" in names
