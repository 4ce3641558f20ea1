"""The package's shape: no import cycles, and a flavor module that stays light.

Read from the modules' own source (every `import`, at module level, inside a
function or under `if TYPE_CHECKING:`), so that a cycle is caught before it
bites at run time, and a layer that only names a higher one for its types is
still a cycle.
"""

import ast
import graphlib
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "orchestrator"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set) -> set:
    """The package's modules that `path` imports, at run time or for type
    checking only (a name imported from a package counts as its submodule when
    there is one): an import under `if TYPE_CHECKING:` still ties the modules."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
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


def import_graph() -> dict:
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    modules = set(paths)
    graph = {}
    for name, path in paths.items():
        graph[name] = {m for m in imports_of(path, modules) if m != name}
    return graph


def cycles(graph: dict) -> list:
    """An import cycle (its modules, sorted) as stdlib `graphlib` finds it; [] if none."""
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        return [sorted(set(error.args[1]))]
    return []


def test_the_graph_is_read_from_real_imports():
    graph = import_graph()
    assert "orchestrator.running.scheduler" in graph["orchestrator.running.runner"]
    assert "orchestrator.status.model" in graph["orchestrator.status.watcher"]


def test_no_import_cycle_inside_the_package():
    assert cycles(import_graph()) == []


def package_graph(graph: dict) -> dict:
    """The import graph between the package's parts: its subpackages and its
    top-level modules (`orchestrator.running.x` counts as `orchestrator.running`)."""
    def part(module: str) -> str:
        return ".".join(module.split(".")[:2])

    parts: dict = {}
    for name, deps in graph.items():
        parts.setdefault(part(name), set()).update(part(d) for d in deps if part(d) != part(name))
    return parts


def test_the_packages_import_one_way():
    """Layers, not a web: running and status stand on `zenml_records`, status
    reads swarm's facts and swarm knows nothing of status."""
    parts = package_graph(import_graph())
    assert "orchestrator.zenml_records" in parts["orchestrator.running"]
    assert "orchestrator.swarm" in parts["orchestrator.status"]
    assert cycles(parts) == []


def test_a_cycle_would_be_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_nothing_imports_a_flavor_module_from_below():
    """The flavors hand plain data down (`running.request`): no module below
    them names their classes, not even for type checking."""
    flavors = {"orchestrator.my_docker_orchestrator", "orchestrator.my_swarm_orchestrator"}
    graph = import_graph()
    importers = [name for name, deps in graph.items()
                 if deps & flavors and not name.startswith("orchestrator.teaching")]
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


# The reader's end-of-run cleanup loops in the stage scaffolds: nothing else
# removes that run's containers while they run, and the line stays short.
LIST_WITHOUT_IGNORE_REMOVED_ALLOWED = {
    "orchestrator/teaching/scaffolds/stage4.py", "orchestrator/teaching/scaffolds/stage5.py",
    "orchestrator/teaching/scaffolds/stage6.py",
}


def container_lists_that_fail_on_a_removed_container(root: Path):
    """`containers.list(...)` calls that pass neither `ignore_removed` nor `sparse`.

    docker-py lists, then inspects each container; one removed in between (a run
    cleaning up while a test, a check or the panel looks) raises NotFound from
    the inspect. A CI run failed so (test_conformance, a battery's container).
    """
    found = []
    for folder in ("orchestrator", "tests", "benchmarks"):
        for path in sorted((root / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr == "list"
                        and isinstance(node.func.value, ast.Attribute)
                        and node.func.value.attr in ("containers", "_containers")):
                    keywords = {keyword.arg for keyword in node.keywords}
                    if None not in keywords and not keywords & {"ignore_removed", "sparse"}:
                        found.append(f"{path.relative_to(root)}:{node.lineno}")
    return found


def test_container_lists_do_not_fail_on_a_container_removed_meanwhile():
    root = PACKAGE.parent
    found = [where for where in container_lists_that_fail_on_a_removed_container(root)
             if where.split(":")[0] not in LIST_WITHOUT_IGNORE_REMOVED_ALLOWED]
    assert not found, "pass ignore_removed=True (or sparse=True): " + ", ".join(found)
