"""The import graph of api/ and billing/ has no cycle between packages, and billing borrows no
feature internals from api.

Built with `ast` from the source (nothing is imported): every `import`/`from … import` in a
module (type-only imports under `if TYPE_CHECKING:` included: they are dependencies too), with
relative imports resolved, collapsed to packages: `api.ledger.writer` → `api.ledger`. A module
directly under a root (`api.state`, `billing.webhooks`) is its own node."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROOTS = ("api", "billing")
# What billing may not reach into: another feature's internals.
BILLING_FORBIDDEN = ("api.admin", "api.proxy")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, target] if target else base)


def imports_of(path: Path) -> Iterator[str]:
    """Every module `path` imports (a `from pkg import name` also counts `pkg.name`, which
    is a module when it names one)."""
    module = module_name(path)
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                target = _resolve(module, path.name == "__init__.py", node.level, node.module)
            else:
                target = node.module or ""
            yield target
            for alias in node.names:
                yield f"{target}.{alias.name}"


def node_of(module: str, modules: set[str]) -> str | None:
    """The package node a module belongs to, or None outside api/ and billing/."""
    parts = module.split(".")
    if parts[0] not in ROOTS:
        return None
    while parts and ".".join(parts) not in modules:
        parts.pop()  # `from api.x import name`: `api.x.name` is not a module
    if not parts:
        return None
    return ".".join(parts[:2])


def build_graph() -> tuple[dict[str, set[str]], dict[tuple[str, str], list[str]]]:
    """Package → packages it imports; and, per edge, the module imports behind it."""
    files = [p for root in ROOTS for p in (ROOT / root).rglob("*.py")]
    modules = {module_name(p) for p in files}
    graph: dict[str, set[str]] = {}
    why: dict[tuple[str, str], list[str]] = {}
    for path in files:
        source = module_name(path)
        src = node_of(source, modules)
        assert src is not None
        graph.setdefault(src, set())
        for imported in imports_of(path):
            dst = node_of(imported, modules)
            if dst is None or dst == src or dst in ROOTS or src in ROOTS:
                continue  # the root packages' own __init__ modules import nothing of note
            graph[src].add(dst)
            why.setdefault((src, dst), []).append(f"{source} -> {imported}")
    return graph, why


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the components with more than one node (cycles)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def describe(component: list[str], graph: dict[str, set[str]], why: dict) -> str:
    members = set(component)
    lines = [" <-> ".join(component)]
    for src in component:
        for dst in sorted(graph[src] & members):
            lines.append(f"  {src} -> {dst}: " + "; ".join(why[src, dst][:3]))
    return "\n".join(lines)


def test_the_graph_sees_real_imports() -> None:
    graph, _ = build_graph()
    assert "api.ledger" in graph["api.proxy"]
    assert "api.db" in graph["api.ledger"]


def test_no_import_cycle_between_packages() -> None:
    graph, why = build_graph()
    cycles = strongly_connected(graph)
    assert not cycles, "import cycles between packages:\n" + "\n".join(
        describe(c, graph, why) for c in cycles
    )


def test_billing_borrows_no_feature_internals() -> None:
    graph, why = build_graph()
    borrowed = [
        line
        for src in graph
        if src.startswith("billing")
        for dst in graph[src]
        if dst.startswith(BILLING_FORBIDDEN)
        for line in why[src, dst]
    ]
    assert not borrowed, "billing imports another feature's internals:\n" + "\n".join(borrowed)


def test_tarjan_finds_a_planted_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(graph) == [["a", "b", "c"]]
