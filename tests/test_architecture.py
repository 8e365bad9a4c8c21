"""The architecture's rules, checked on the code as it is (docs/architecture.md draws them):
the layers of ``.importlinter`` hold, no module takes part in an import cycle, only
``townsquare.settings`` reads the environment, and no package imports another's private names."""
from __future__ import annotations

import ast
from pathlib import Path

import grimp
import pytest
from importlinter.cli import lint_imports

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "townsquare"


def _modules() -> dict[str, Path]:
    out = {}
    for f in sorted(SRC.rglob("*.py")):
        parts = f.relative_to(SRC.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def test_layers_contract_is_kept(monkeypatch):
    monkeypatch.chdir(REPO)
    assert lint_imports(config_filename=str(REPO / ".importlinter"), no_cache=True) == 0


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    graph = grimp.build_graph("townsquare")
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    assert _cycles(edges) == []


def test_only_settings_reads_the_environment():
    readers = []
    for name, path in _modules().items():
        if name == "townsquare.settings":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "putenv")
                    and isinstance(node.value, ast.Name) and node.value.id == "os"):
                readers.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert readers == []


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_no_private_names_across_packages():
    found = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.ImportFrom) and node.module
                    and node.module.startswith("townsquare")):
                continue
            if _package(node.module) == _package(name):
                continue
            found += [f"{path.relative_to(REPO)}:{node.lineno} {node.module}.{a.name}"
                      for a in node.names
                      if a.name.startswith("_") and not a.name.startswith("__")]
    assert found == []


def test_readme_layout_names_every_package():
    readme = (REPO / "README.md").read_text()
    layout = readme[readme.index("## Layout"):]
    packages = sorted(p.name for p in SRC.iterdir() if (p / "__init__.py").exists())
    missing = [p for p in packages if f"src/townsquare/{p}/" not in layout]
    assert missing == []
