"""The package's import graph: no circle, config a leaf, commands independent.

Every `import` of a lit_gen module counts, at module level or inside a function, so an
import hidden in a function cannot hide a circle either.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lit_gen"
LEAVES = ("lit_gen.config", "lit_gen.errors", "lit_gen.registry", "lit_gen.io")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph() -> dict[str, set[str]]:
    """module -> the lit_gen modules importing it runs (targets and their packages)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        own = set(ancestors(name)) | {name}
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from pkg import sub` imports the submodule when there is one
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names
                                           if f"{node.module}.{a.name}" in modules]
            for t in targets:
                if t.split(".")[0] != "lit_gen" or t not in modules:
                    continue
                # importing a.b.c runs a/__init__ and a/b/__init__ first (except our own)
                edges |= {t, *ancestors(t)} - own
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_package_has_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 50  # the whole package was read
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


@pytest.mark.parametrize("leaf", LEAVES)
def test_leaf_modules_import_no_lit_gen_module_but_errors(leaf):
    assert import_graph()[leaf] - {"lit_gen", "lit_gen.errors"} == set()


def entry_modules() -> set[str]:
    """Modules that are a command's entry point: they define a top-level `main`."""
    out = set()
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        if any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in tree.body):
            out.add(module_name(path))
    return out


def test_commands_do_not_import_each_other():
    graph = import_graph()
    entries = entry_modules()
    assert {"lit_gen.fit", "lit_gen.sample", "lit_gen.evaluate", "lit_gen.sweep.runner",
            "lit_gen.bench", "lit_gen.bench.table"} <= entries

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        return seen

    for cmd in sorted(entries):
        # the modes of one command package (lit_gen.bench.*) may share code with each other
        package = ".".join(cmd.split(".")[:2])
        reached = {m for m in reach(cmd) & entries
                   if m != package and not m.startswith(package + ".")}
        assert not reached, f"{cmd} imports the command(s) {sorted(reached)}"


def test_readme_layout_names_every_file_of_the_package():
    readme = (PACKAGE.parent / "README.md").read_text()
    layout = readme[readme.index("## Layout"):readme.index("## Docker")]
    files = [p.relative_to(PACKAGE) for p in PACKAGE.rglob("*.py")
             if p.name not in ("__init__.py", "__main__.py")]
    missing = [str(f) for f in files if f.stem not in layout]
    assert not missing, f"README's layout does not name {missing}"
    folders = [p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"]
    assert all(f"{name}/" in layout for name in folders)
