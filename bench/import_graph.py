"""The engine's internal import graph, read from the source (nothing is imported): for each module of ``autograder/``
and ``gradekit/``, the engine and kit modules it imports at its top and inside functions, and its layer.

    .venv/bin/python bench/import_graph.py

A module's layer is the longest chain of imports from it down to a module that imports none of the others (layer 0),
counted over its top-level imports, then over all its imports (inside functions too); modules in an import cycle
share a layer, and the cycles are listed. An import under ``if TYPE_CHECKING:`` counts as neither (it never runs).
The counts at the end are every import statement inside a function (the standard library's and third parties' too).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("autograder", "gradekit")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_type_checking(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


class Imports(ast.NodeVisitor):
    """The import statements of one module: (statement, the function it is in or None)."""

    def __init__(self):
        self.found: list[tuple[ast.Import | ast.ImportFrom, str | None]] = []
        self.function: list[str] = []

    def visit_FunctionDef(self, node):
        self.function.append(node.name)
        self.generic_visit(node)
        self.function.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_If(self, node):
        if not is_type_checking(node):
            self.generic_visit(node)

    def visit_Import(self, node):
        self.found.append((node, self.function[0] if self.function else None))

    visit_ImportFrom = visit_Import


def targets(node: ast.Import | ast.ImportFrom, name: str, is_package: bool, modules: set[str]) -> list[str]:
    """The engine's and kit's modules that one statement imports (the deepest known module each name is in)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = name.split(".") if is_package else name.split(".")[:-1]
            package = package[:len(package) - node.level + 1]
            base = ".".join(package + ([base] if base else []))
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
    found = []
    for full in names:
        parts = full.split(".")
        for i in range(len(parts), 0, -1):
            if ".".join(parts[:i]) in modules:
                found.append(".".join(parts[:i]))
                break
    return list(dict.fromkeys(found))


def read() -> dict[str, dict]:
    paths = sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))
    modules = {module_name(p): p for p in paths}
    graph = {}
    for name, path in modules.items():
        visitor = Imports()
        visitor.visit(ast.parse(path.read_text(), str(path)))
        top, inside, lazy = {}, {}, 0
        for node, function in visitor.found:
            lazy += function is not None
            for target in targets(node, name, path.name == "__init__.py", set(modules)):
                if target == name:
                    continue
                if function is None:
                    top.setdefault(target, None)
                else:
                    inside.setdefault(target, []).append(function)
        graph[name] = {"top": list(top), "inside": {t: sorted(set(f)) for t, f in inside.items() if t not in top},
                       "lazy": lazy}
    return graph


def components(edges: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components (Tarjan), each a cycle when it has more than one module."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            out.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in edges:
        if v not in index:
            visit(v)
    return out


def layers(edges: dict[str, list[str]]) -> tuple[dict[str, int], list[list[str]]]:
    """Each module's layer (cycles collapsed to one node) and the cycles."""
    sccs = components(edges)
    of = {v: i for i, c in enumerate(sccs) for v in c}
    layer: dict[int, int] = {}
    for i, component in enumerate(sccs):  # Tarjan emits a component after every component it reaches
        below = [layer[of[w]] for v in component for w in edges[v] if of[w] != i]
        layer[i] = 1 + max(below) if below else 0
    return {v: layer[of[v]] for v in edges}, [c for c in sccs if len(c) > 1]


def short(name: str) -> str:
    return name.removeprefix("autograder.") if name.startswith("autograder.") else name


def main() -> int:
    graph = read()
    top_layer, top_cycles = layers({m: g["top"] for m, g in graph.items()})
    all_layer, all_cycles = layers({m: g["top"] + list(g["inside"]) for m, g in graph.items()})
    print("module (layer: top-level imports / all imports; in-function import statements)")
    print("  top:    engine/kit modules imported at the module's top")
    print("  inside: those imported only inside functions (the functions)\n")
    for name in sorted(graph, key=lambda m: (all_layer[m], top_layer[m], m)):
        g = graph[name]
        print(f"{name}  (layer {top_layer[name]} / {all_layer[name]}; in-function imports {g['lazy']})")
        if g["top"]:
            print(f"  top:    {', '.join(short(t) for t in sorted(g['top']))}")
        if g["inside"]:
            inside = [f"{short(t)} ({', '.join(f)})" for t, f in sorted(g["inside"].items())]
            print(f"  inside: {', '.join(inside)}")
    print("\ncycles, top-level imports:", "; ".join(" <-> ".join(map(short, c)) for c in top_cycles) or "none")
    print("cycles, all imports:      ", "; ".join(" <-> ".join(map(short, c)) for c in all_cycles) or "none")
    print("\nin-function import statements per module (all of them, standard library and third parties too):")
    counts = sorted(((g["lazy"], m) for m, g in graph.items() if g["lazy"]), key=lambda c: (-c[0], c[1]))
    for count, name in counts:
        print(f"  {count:3d}  {name}")
    engine = sum(g["lazy"] for m, g in graph.items() if m.startswith("autograder"))
    kit = sum(g["lazy"] for m, g in graph.items() if m.startswith("gradekit"))
    print(f"  total: autograder {engine}, gradekit {kit}")
    print(f"  engine/kit edges only inside functions: {sum(len(g['inside']) for g in graph.values())}")
    print(f"\ndepth (highest layer): top-level imports {max(top_layer.values())}, all imports {max(all_layer.values())}")
    for label, layer in (("top-level", top_layer), ("all", all_layer)):
        per = {}
        for m, n in layer.items():
            per[n] = per.get(n, 0) + 1
        print(f"  modules per layer, {label}: " + ", ".join(f"{n}: {per[n]}" for n in sorted(per)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
