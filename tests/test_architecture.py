"""The shape of the house, checked from the code's own imports.

- The serving core (``rag`` outside ``training``, ``evaluation``, the CLI, the UI and the API) imports
  none of those, nor the scripts in ``eval/`` or ``app.py``.
- ``embeddings`` imports nothing from ``rag``.
- No module imports itself back through others (no cycle), counting imports inside functions too.
- Only ``rag`` and ``embeddings`` are installed.
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
EDGE = ("rag.training", "rag.evaluation", "rag.cli", "rag.serve.ui", "rag.serve.api", "eval", "app")


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


def _is_core(module: str) -> bool:
    return module.split(".")[0] == "rag" and not any(module == e or module.startswith(e + ".") for e in EDGE)


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_the_graph_sees_the_known_imports():
    graph = _graph()  # a guard against a checker that finds nothing and so passes anything
    assert "rag.search.retriever" in graph["rag.answer.assistant"]
    assert "rag.training.calibrate" in graph["rag.training.train"]
    assert "rag.evaluation.run" in graph["rag.cli"]  # imported inside a function


def test_the_core_imports_no_entry_point_training_or_evaluation():
    bad = {(m, i) for m, targets in _graph().items() if _is_core(m) for i in targets if _within(i, EDGE)}
    assert not bad, f"core modules import the edge: {sorted(bad)}"


def test_embeddings_depend_on_nothing_in_rag():
    bad = {(m, i) for m, targets in _graph().items() if m.startswith("embeddings") for i in targets
           if i.split(".")[0] == "rag"}
    assert not bad, f"embeddings imports rag: {sorted(bad)}"


def test_there_is_no_import_cycle():
    # A package's __init__ is not an edge to follow: importing rag.x runs rag/__init__ first anyway.
    graph = {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in _graph().items()}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                cycle = path[path.index(target):] + [target]
                pytest.fail(f"import cycle: {' -> '.join(cycle)}")
            if target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


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
