"""The package's shape: no import cycles, and a flavor module that stays light.

Read from the modules' own source (every `import`, at module level or inside
a function), so that a cycle is caught before it bites at run time.
"""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "orchestrator"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set) -> set:
    """The package's modules that `path` imports at run time (a name imported
    from a package counts as its submodule when there is one)."""
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != "orchestrator":
                found.add(name)
    return found


def _runtime_nodes(tree: ast.AST):
    """Every node, except those under `if TYPE_CHECKING:` (never imported at run time)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and getattr(child.test, "id", "") == "TYPE_CHECKING":
                todo.extend(child.orelse)
                continue
            todo.append(child)


def import_graph() -> dict:
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    modules = set(paths)
    graph = {}
    for name, path in paths.items():
        graph[name] = {m for m in imports_of(path, modules) if m != name}
    return graph


def cycles(graph: dict) -> list:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_is_read_from_real_imports():
    graph = import_graph()
    assert "orchestrator.running.scheduler" in graph["orchestrator.running.runner"]
    assert "orchestrator.status.model" in graph["orchestrator.status.watcher"]


def test_no_import_cycle_inside_the_package():
    assert cycles(import_graph()) == []


def test_a_cycle_would_be_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_nothing_imports_the_flavor_module_from_below():
    graph = import_graph()
    importers = [name for name, deps in graph.items()
                 if "orchestrator.my_docker_orchestrator" in deps
                 and not name.startswith("orchestrator.teaching")]
    assert importers == []


def test_the_flavor_module_stays_light_inside_step_containers():
    """ZenML imports it in every step container: none of our running, status or
    teaching code, and no widgets, comes with it."""
    code = ("import sys, orchestrator.my_docker_orchestrator; "
            "print(' '.join(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('ipywidgets', 'orchestrator'))))")
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True).stdout.split())
    assert loaded <= {"orchestrator", "orchestrator.errors", "orchestrator.my_docker_orchestrator",
                      "orchestrator.running", "orchestrator.running.settings"}, loaded


def test_the_public_names_import_from_the_package():
    import orchestrator

    for name in orchestrator.__all__:
        assert getattr(orchestrator, name) is not None, name
