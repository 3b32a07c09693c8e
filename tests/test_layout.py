"""The package layout of docs/architecture.md: no import cycles, dependencies one way."""

import ast
import os

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tfgen")


def module_imports(everywhere=False):
    """{module: tfgen modules it imports}: at module level (what makes a cycle), or also
    inside functions (`everywhere`, for the direction of dependencies)."""
    graph = {}
    for directory, _, files in os.walk(ROOT):
        for file in files:
            if not file.endswith(".py"):
                continue
            path = os.path.join(directory, file)
            parts = os.path.relpath(path, os.path.dirname(ROOT))[:-3].split(os.sep)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join(parts)
            with open(path) as f:
                tree = ast.parse(f.read())
            imported = set()
            for node in (ast.walk(tree) if everywhere else tree.body):
                if isinstance(node, ast.Import):
                    imported |= {alias.name for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    imported.add(node.module)
                    imported |= {f"{node.module}.{alias.name}" for alias in node.names}
            graph[name] = imported
    return {name: {m for m in imported if m in graph and m != name} for name, imported in graph.items()}


def find_cycle(graph):
    """One import cycle as a list of modules, or None."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            # A package importing its own submodules is how packages are built, not a cycle.
            if nxt.startswith(node + "."):
                continue
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
            if nxt not in state:
                cycle = visit(nxt, path + [nxt])
                if cycle:
                    return cycle
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node, [node])
            if cycle:
                return cycle
    return None


def test_no_import_cycles():
    assert find_cycle(module_imports()) is None


def test_a_cycle_is_found():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_dependencies_flow_one_way():
    graph = module_imports(everywhere=True)
    # The pure modules import nothing of tfgen; the server, scoring and the latent tools
    # nothing of models.
    for pure in ("tfgen.contract", "tfgen.errors", "tfgen.versions", "tfgen.backend"):
        assert not graph[pure], f"{pure} imports {graph[pure]}"
    for name, imported in graph.items():
        if name.startswith(("tfgen.serving", "tfgen.scoring", "tfgen.data", "tfgen.latent")):
            assert not {m for m in imported if m.startswith(("tfgen.models", "tfgen.training"))}, name
        if name.endswith(".cli") and name != "tfgen.cli":
            assert "tfgen.cli" not in imported, name
