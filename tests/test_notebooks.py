"""The tutorial notebooks: how they are stored, and what they do with other parameters.

`pytest --nbmake notebooks/` runs every notebook as stored (its own checks
are the test). This module adds what nbmake cannot:

* structure checks on the stored files (fast, no Docker): no outputs, a
  `parameters` cell of plain literals first, a private ZenML workspace set up
  before anything imports zenml, self-contained step cells, checks and a
  summary at the end, no absolute paths;
* the exercises: each is a cell tagged ``exercise``, stored unanswered,
  whose check runs on the reader's own function (never a solution
  redefined in a later cell); for every exercise a papermill run injects a
  wrong answer and the notebook must stop at that exercise's check;
* notebook 2's table of ZenML's orchestrator interface names every part of it;
* papermill runs of some notebooks with *different* parameters (a step made
  to fail, other numbers, a first attempt that fits in memory), reading the
  results back from the executed notebook, and one with a claim made false
  that its checks must catch. They skip the conformance kit
  (``run_kit=False``), which `tests/test_conformance.py` covers, to stay well
  below a full nbmake run.
"""

import ast
import builtins
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from orchestrator.teaching.notebooks import (
    SUMMARY_PREFIX,
    dag_levels,
    dag_svg,
    emit_summary,
    max_overlap,
    read_summary,
    timeline_svg,
    zenml_command,
)

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
EXPECTED = [
    "01_setup", "02_anatomy", "03_one_container_per_step", "04_scheduling",
    "05_failures", "06_watching_live", "07_putting_it_together", "08_swarm",
]


def code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def python_source(cell):
    """A cell's source without IPython magics and shell lines, for `ast`."""
    if cell.source.lstrip().startswith("%%"):
        return ""
    lines = [line for line in cell.source.splitlines() if not line.lstrip().startswith(("!", "%"))]
    return "\n".join(lines)


@pytest.fixture(params=NOTEBOOKS, ids=lambda path: path.stem)
def notebook(request):
    return nbformat.read(request.param, as_version=4)


def test_the_sequence_is_complete():
    assert [path.stem for path in NOTEBOOKS] == EXPECTED


# --------------------------------------------------------------------------
# How the notebooks are stored
# --------------------------------------------------------------------------


def test_stored_without_outputs(notebook):
    for cell in code_cells(notebook):
        assert cell.outputs == [], f"cell with outputs: {cell.source[:80]!r}"
        assert cell.execution_count is None, f"cell with a count: {cell.source[:80]!r}"
    nbformat.validate(notebook)


def test_first_code_cell_is_a_parameters_cell_of_literals(notebook):
    first = code_cells(notebook)[0]
    assert "parameters" in first.metadata.get("tags", []), "the first code cell must be tagged"
    tree = ast.parse(first.source)
    assert tree.body, "the parameters cell is empty"
    for statement in tree.body:
        assert isinstance(statement, ast.Assign), ast.dump(statement)
        ast.literal_eval(statement.value)  # papermill can only override literals
    names = {target.id for statement in tree.body for target in statement.targets}
    assert "workspace_root" in names
    # papermill must see every one (a comment it cannot parse hides the parameter:
    # "Passed unknown parameter" and no entry in `papermill --help-notebook`)
    from papermill.translators import PythonTranslator

    assert {parameter.name for parameter in PythonTranslator.inspect(first)} == names


def test_private_workspace_is_set_up_before_zenml_is_imported(notebook):
    cells = code_cells(notebook)
    setup = next(i for i, cell in enumerate(cells) if "use_private_workspace(" in cell.source)
    for cell in cells[:setup + 1]:
        tree = ast.parse(python_source(cell))
        imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names]
        imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
        assert not any(name.split(".")[0] == "zenml" for name in imported), cell.source[:200]
        assert "orchestrator.teaching.examples" not in imported, "orchestrator.teaching.examples imports zenml"


def test_step_cells_are_self_contained(notebook):
    """A step defined in a notebook runs in a container from its cell alone."""
    for cell in code_cells(notebook):
        source = python_source(cell)
        if not re.search(r"^@step\b", source, re.MULTILINE):
            continue
        tree = ast.parse(source)
        imported = {alias.asname or alias.name for node in ast.walk(tree)
                    if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names}
        used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
        defined = {node.name for node in ast.walk(tree)
                   if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
        defined |= {node.id for node in ast.walk(tree)
                    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)}
        defined |= {arg.arg for node in ast.walk(tree) if isinstance(node, ast.arguments)
                    for arg in node.args + node.kwonlyargs}
        missing = used - imported - defined - set(dir(builtins))
        assert "step" in imported, cell.source[:200]
        assert not missing, f"names from other cells in a step cell: {missing}\n{cell.source[:300]}"


def test_ends_with_checks_and_a_summary(notebook):
    sources = [cell.source for cell in code_cells(notebook)]
    assert "emit_summary(" in sources[-1]
    assert "assert " in sources[-2] and "all checks passed" in sources[-2]


def exercise_cells(notebook):
    return [cell for cell in code_cells(notebook) if "exercise" in cell.metadata.get("tags", [])]


def test_from_the_second_on_exercises_are_checked_on_the_readers_code(notebook):
    """Every exercise is stored unanswered, and no later cell redefines it as a solution."""
    if notebook.cells[0].source.startswith("# 1."):
        return
    exercises = exercise_cells(notebook)
    assert exercises, "notebooks 2-7 have exercises"
    cells = code_cells(notebook)
    for exercise in exercises:
        tree = ast.parse(exercise.source)
        functions = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
        classes = [node for node in tree.body if isinstance(node, ast.ClassDef)]
        if classes:  # a cell of classes: each class's body, or each method's, is `...`
            assert not functions, exercise.source[:200]
            name = classes[-1].name  # the piece: the last class (the config after its settings)
            for node in classes:
                methods = [n for n in node.body if isinstance(n, ast.FunctionDef)]
                for body in [m.body for m in methods] or [node.body]:
                    assert _only_ellipsis(body), \
                        f"{node.name}: stored with its body as `...` (the reader writes it)"
            definition = "class"
        else:
            assert len(functions) == 1, exercise.source[:200]
            name = functions[0].name
            assert _only_ellipsis(functions[0].body), \
                f"{name}: stored with its body as `...` (the reader writes it)"
            definition = "def"
        later = cells[cells.index(exercise) + 1:]
        assert ("exercise(" in later[0].source or "check_exercise(" in later[0].source) \
            and name in later[0].source, f"the cell after {name} checks it"
        for cell in later:
            assert f"{definition} {name}(" not in cell.source, \
                f"{name} is redefined later: a solution cell"


def _only_ellipsis(body):
    """A body of a docstring (or not) and `...`: nothing written."""
    rest = [n for n in body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)
                                    and isinstance(n.value.value, str))]
    return [ast.dump(n) for n in rest] == [ast.dump(ast.Expr(ast.Constant(Ellipsis)))]


def test_exercise_pieces_go_into_the_readers_file_on_their_own():
    """Each piece's cell, as stored, extracts to a module that runs on its own."""
    from orchestrator.teaching.exercise_cells import extract_piece, is_unwritten_in
    from orchestrator.teaching.piece_plan import NOTEBOOK_FILES, PIECES

    for name, number in PIECES.items():
        notebook = nbformat.read(NOTEBOOKS_DIR / NOTEBOOK_FILES[number], as_version=4)
        sources = [extract_piece(cell.source, name) for cell in exercise_cells(notebook)]
        sources = [source for source in sources if source]
        assert len(sources) == 1, f"{name}: one exercise cell in notebook {number}"
        assert is_unwritten_in(sources[0], name)
        exec(compile(sources[0], name, "exec"), {})  # its own imports suffice


def test_the_contract_table_names_every_part_of_zenmls_interface():
    """Notebook 2's table covers ZenML's orchestrator interface as ZenML defines it."""
    from zenml.orchestrators import BaseOrchestrator, ContainerizedOrchestrator
    from zenml.orchestrators.base_orchestrator import BaseOrchestratorConfig

    notebook = nbformat.read(NOTEBOOKS_DIR / "02_anatomy.ipynb", as_version=4)
    table = next(cell.source for cell in notebook.cells
                 if cell.cell_type == "markdown" and "orchestrator interface, all of it" in cell.source)
    internal = {"_abc_impl", "_active_snapshot", "_prepare_run", "_cleanup_run",
                "_validate_execution_mode", "_deprecations", "model_config"}
    members = set()
    for cls in (BaseOrchestrator, ContainerizedOrchestrator, BaseOrchestratorConfig):
        members |= {name for name in vars(cls) if not name.startswith("__")}
    members = (members - internal) | {"settings_class", "get_settings", "validator", "is_local"}
    missing = sorted(name for name in members if f"`{name}" not in table)
    assert not missing, f"the contract table misses {missing}"
    for topic in ("SubmissionResult(wait_for_completion", "schedules", "dynamic pipelines",
                  "isolated steps", "resources", "--graceful"):
        assert topic in table, topic


def test_no_absolute_paths(notebook):
    for cell in notebook.cells:
        for pattern in ("/work/", "/root/", "/home/", "/tmp/my-docker"):
            assert pattern not in cell.source, f"{pattern} in {cell.source[:120]!r}"


def test_reference_commands_appear_verbatim_in_the_first_notebook():
    from orchestrator.teaching.notebooks import REFERENCE_COMMANDS

    cells = [cell.source.strip() for cell in nbformat.read(NOTEBOOKS[0], as_version=4).cells]
    for command in ("zenml init", *REFERENCE_COMMANDS):
        assert f"!{command}" in cells, command


# --------------------------------------------------------------------------
# The helper module's pure parts
# --------------------------------------------------------------------------


def test_max_overlap_counts_simultaneous_intervals():
    assert max_overlap([]) == 0
    assert max_overlap([(0, 1), (1, 2), (2, 3)]) == 1  # touching is not overlapping
    assert max_overlap([(0, 5), (1, 2), (1.5, 3), (4, 6)]) == 3


def test_orchestrator_spans_take_each_steps_last_attempt_from_release_to_done():
    from orchestrator.running.step_timing import AttemptTiming
    from orchestrator.teaching.timing import orchestrator_spans

    timings = [
        AttemptTiming("train_0", 1, started_early=True, start_returned=100.0, gate_opened=110.0,
                      success_known=114.0, exit_seen=115.0),
        AttemptTiming("train_1", 1, start_returned=101.0, exit_seen=105.0),  # failed attempt
        AttemptTiming("train_1", 2, start_returned=106.0, success_known=109.0),
        AttemptTiming("pick", 1, start_returned=120.0),  # never finished: left out
    ]
    assert orchestrator_spans(timings) == [("train_1", 0.0, 3.0), ("train_0", 4.0, 8.0)]
    assert orchestrator_spans([]) == []


@pytest.mark.engine
def test_notebook_7_keys_the_readers_file_as_notebook_6_left_it(tmp_path):
    """The same code gives the same key for the saved verdicts, whatever the pieces' notes say."""
    from orchestrator.conformance.saved import report_key
    from orchestrator.teaching.checked_pieces import reference_piece
    from orchestrator.teaching.my_file import MyFile
    from orchestrator.teaching.notebooks import Workspace

    workspace = Workspace(name="t", root=tmp_path, config_dir=tmp_path, project_dir=tmp_path,
                          notebooks_dir=NOTEBOOKS_DIR)
    sixth = MyFile.start(6, workspace, echo=lambda _: None)
    for name in sixth.missing():  # as notebook 6's exercise cells leave them, unwritten
        sixth.pieces[name] = reference_piece(name, "yours is not written yet")
    seventh = MyFile.start(7, workspace, echo=lambda _: None)
    assert sixth.text() != seventh.text()  # the notes differ ("... (saved copy)")
    assert sixth.code() == seventh.code()
    assert report_key(sixth.code()) == report_key(seventh.code())


def test_dag_levels_and_drawing():
    graph = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}
    assert dag_levels(graph) == {"a": 0, "b": 1, "c": 1, "d": 2}
    svg = dag_svg(graph, states={"a": "completed", "b": "failed"})
    assert svg.startswith("<svg") and svg.count("data-edge=") == 4  # one drawn edge per dependency
    assert all(f">{name}</text>" in svg for name in graph)
    assert "#86efac" in svg and "#fca5a5" in svg


def test_timeline_needs_rows_and_shares_a_scale():
    with pytest.raises(ValueError):
        timeline_svg([])
    short = timeline_svg([("a", 0, 1)], until=10)
    assert "10.0 s" in short


def test_a_retried_steps_attempts_are_drawn_on_one_axis_with_the_gap_between():
    """Attempt 1 (killed: no end time recorded) ends where attempt 2's record starts;
    the delay and the new container's start-up is its own thin bar."""
    from datetime import datetime, timedelta
    from types import SimpleNamespace

    from orchestrator.teaching.timing import attempt_timeline_rows

    t0 = datetime(2026, 12, 7, 12, 0, 0)

    def attempt(version, start, end, status):
        return SimpleNamespace(version=version, start_time=t0 + timedelta(seconds=start),
                               end_time=None if end is None else t0 + timedelta(seconds=end),
                               status=SimpleNamespace(value=status))

    rows = attempt_timeline_rows([attempt(2, 9, 12, "completed"),
                                  attempt(1, 0, 4, "retried")])
    assert [label for label, _ in rows] == ["attempt 1 (retried)", "attempt 2 (completed)"]
    work, gap = rows[0][1]
    assert (work.start, work.end, work.state) == (0, 4, "retried")
    assert (gap.start, gap.end, gap.state) == (4, 9, "retrying")
    assert [(b.start, b.end) for b in rows[1][1]] == [(9, 12)]
    killed = attempt_timeline_rows([attempt(1, 0, None, "retried"), attempt(2, 7, 8, "completed")])
    assert killed[0][1][0].end == 7  # no end recorded: until the next attempt's start
    assert attempt_timeline_rows([]) == []


@pytest.mark.parametrize("picture", ["pipeline_call_svg", "host_svg", "runner_svg",
                                     "status_flow_svg", "step_states_svg", "stack_svg"])
def test_every_picture_is_well_formed_svg(picture):
    from xml.dom.minidom import parseString

    from orchestrator.teaching import pictures

    svg = getattr(pictures, picture)()
    assert parseString(svg).documentElement.tagName == "svg"


def test_the_placement_picture_puts_each_step_in_its_nodes_column():
    from xml.dom.minidom import parseString

    from orchestrator.teaching.pictures import placement_svg

    svg = placement_svg({"node-a": "2.0 GiB", "node-b": "8.0 GiB"},
                        {"seed": "node-a", "big": "node-b", "lost": "node-c"})
    texts = ["".join(node.data for node in text.childNodes)
             for text in parseString(svg).getElementsByTagName("text")]
    # each node's name and offer, then its steps; a node not described gets a column too
    assert texts == ["node-a", "2.0 GiB", "seed", "node-b", "8.0 GiB", "big", "node-c", "",
                     "lost"]
    with pytest.raises(ValueError):
        placement_svg({}, {})


def test_summary_round_trip(capsys):
    emit_summary({"b": 1, "a": [1, 2]})
    line = capsys.readouterr().out.strip()
    assert line.startswith(SUMMARY_PREFIX)
    notebook = {"cells": [{"cell_type": "code", "outputs": [{"text": ["x\n", line + "\n"]}]}]}
    assert read_summary(notebook) == {"a": [1, 2], "b": 1}
    with pytest.raises(LookupError):
        read_summary({"cells": []})


def test_zenml_command_refuses_other_programs():
    with pytest.raises(ValueError, match="not a zenml command"):
        zenml_command("rm -rf /")


def test_workspace_refuses_when_zenml_was_imported_first(tmp_path):
    code = ("import zenml\nfrom orchestrator.teaching.notebooks import use_private_workspace\n"
            f"use_private_workspace('x', root={str(tmp_path)!r})")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0
    assert "Restart the kernel" in result.stderr


def test_workspace_is_private_and_idempotent(tmp_path):
    code = (
        "import os\nfrom orchestrator.teaching.notebooks import use_private_workspace\n"
        f"w = use_private_workspace('nb', root={str(tmp_path)!r})\n"
        "assert use_private_workspace('other') is w\n"
        "assert os.environ['ZENML_CONFIG_PATH'] == str(w.config_dir)\n"
        "assert os.getcwd() == str(w.project_dir)\n"
        "print(w.root)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == tmp_path / "nb"


# --------------------------------------------------------------------------
# Running notebooks with other parameters (real Docker, real ZenML)
# --------------------------------------------------------------------------


def execute(name, tmp_path, **parameters):
    """Run notebook `name` with `parameters` through papermill; return the executed notebook."""
    import papermill

    output = tmp_path / f"{name}.out.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOKS_DIR / f"{name}.ipynb"), str(output),
        parameters={"workspace_root": str(tmp_path / "workspaces"), **parameters},
        cwd=str(NOTEBOOKS_DIR), kernel_name="python3", progress_bar=False,
        execution_timeout=600,
    )
    return nbformat.read(output, as_version=4)


@pytest.mark.usefixtures("parent_image")
def test_anatomy_with_other_numbers(tmp_path):
    summary = read_summary(execute("02_anatomy", tmp_path, a=5, b=7, run_kit=False))
    assert summary == {"notebook": "02_anatomy", "status": "completed", "second_sum": 19,
                       "same_process": True, "announced": 3, "run_order": "reference",
                       "conformance": None}


# Notebook 4 with fewer slots than branches (its default: two for three) is
# notebook 4's own run: its checks demand exactly two branches at once.


@pytest.mark.usefixtures("parent_image")
def test_failures_with_a_first_attempt_that_fits(tmp_path):
    """A step that fits in its memory limit succeeds at once: no retry is made up."""
    summary = read_summary(execute("05_failures", tmp_path, first_megabytes=20, run_kit=False))
    assert summary["retry"] == ["completed"] and summary["attempt"] == 1, summary


@pytest.mark.usefixtures("parent_image")
def test_panel_shows_a_failing_branch_of_the_readers_orchestrator(tmp_path):
    summary = read_summary(execute("06_watching_live", tmp_path, branches=2, seconds=2,
                                   fail_branch=True, run_kit=False))
    assert summary["outcome"] == "failed"
    assert summary["phases"] == {"source": "completed", "branch_0": "failed",
                                 "branch_1": "completed", "join": "skipped"}
    assert summary["fetched"] == "failed"


@pytest.mark.usefixtures("parent_image")
def test_notebook_checks_fail_when_a_claim_is_false(tmp_path):
    """The notebooks' checks have teeth: a claim made false after the run is caught.

    Notebook 2 (the cheapest: one short pipeline in the kernel's process), with
    one cell added before its checks that changes `b` once the run has used
    it: the checks cell must stop the notebook, before its summary."""
    import papermill

    notebook = nbformat.read(NOTEBOOKS_DIR / "02_anatomy.ipynb", as_version=4)
    checks = next(i for i, c in enumerate(notebook.cells)
                  if c.cell_type == "code" and 'print("all checks passed")' in c.source)
    notebook.cells.insert(checks, nbformat.v4.new_code_cell("b = b + 1  # a claim made false"))
    path = tmp_path / "02_anatomy.false.ipynb"
    nbformat.write(notebook, path)
    output = tmp_path / "02_anatomy.out.ipynb"
    with pytest.raises(papermill.PapermillExecutionError) as raised:
        papermill.execute_notebook(
            str(path), str(output),
            parameters={"workspace_root": str(tmp_path / "workspaces"), "run_kit": False},
            cwd=str(NOTEBOOKS_DIR), kernel_name="python3", progress_bar=False,
            execution_timeout=600)
    assert raised.value.ename == "AssertionError"
    executed = nbformat.read(output, as_version=4)
    failed = [c for c in executed.cells if c.cell_type == "code"
              and any(o.get("output_type") == "error" for o in c.get("outputs", ()))]
    assert len(failed) == 1 and 'print("all checks passed")' in failed[0].source
    with pytest.raises(LookupError):  # it stopped at the checks, before the summary
        read_summary(executed)


# --------------------------------------------------------------------------
# Every exercise's check rejects a wrong answer (papermill, real kernels)
# --------------------------------------------------------------------------

# exercise -> (notebook, a wrong answer, what the check must say about it)
WRONG_ANSWERS = {
    "run_order": ("02_anatomy", """
def run_order(upstreams):
    return list(upstreams)  # ignores the graph
""", "after its upstream steps"),
    "MyOrchestratorConfig": ("02_anatomy", """
from zenml.config.base_settings import BaseSettings
from zenml.orchestrators import BaseOrchestratorConfig


class MyOrchestratorSettings(BaseSettings):
    announce: bool = True


class MyOrchestratorConfig(BaseOrchestratorConfig):  # the settings forgotten
    @property
    def is_local(self):
        return True

    @property
    def is_synchronous(self):
        return True
""", "inherits MyOrchestratorSettings"),
    "MyOrchestratorFlavor": ("02_anatomy", """
from zenml.orchestrators import BaseOrchestratorFlavor


class MyOrchestratorFlavor(BaseOrchestratorFlavor):
    @property
    def name(self):
        return "my_docker"  # the package's flavor's name

    @property
    def config_class(self):
        return MyOrchestratorConfig

    @property
    def implementation_class(self):
        return MyOrchestrator
""", "'my_orchestrator'"),
    "get_orchestrator_run_id": ("02_anatomy", """
from uuid import uuid4


def get_orchestrator_run_id(self):
    return str(uuid4())  # a new id on every call: each step a run of its own
""", "the same on every call"),
    "container_kwargs": ("03_one_container_per_step", """
import os

RUN_ID_VARIABLE = "MY_ORCHESTRATOR_RUN_ID"


def container_kwargs(image, entrypoint, arguments, environment, stores_path, run_id):
    environment = dict(environment, MY_ORCHESTRATOR_RUN_ID=run_id,
                       ZENML_LOCAL_STORES_PATH=stores_path)
    return {"image": image, "entrypoint": entrypoint, "command": arguments,
            "environment": environment, "user": f"{os.getuid()}:{os.getgid()}",
            "detach": True}  # forgets to mount the stores
""", "volumes"),
    "follow_container": ("03_one_container_per_step", """
def follow_container(container, echo):
    for line in container.logs(stream=True, follow=True):
        echo(line.decode(errors="replace").rstrip())
    return container.wait()["StatusCode"]  # never removes the container
""", "removed after its end"),
    "ready_steps": ("04_scheduling", """
def ready_steps(upstreams, states, max_parallelism):
    return [s for s in upstreams if states[s] == "pending"
            and all(states[u] == "completed" for u in upstreams[s])]  # ignores the cap
""", "max_parallelism=2"),
    "after_failure": ("05_failures", """
from zenml.enums import ExecutionMode


def after_failure(mode, failed, upstreams, states):
    pending = [s for s in upstreams if states[s] == "pending"]
    return [], pending  # treats FAIL_FAST like STOP_ON_FAILURE
""", "fail_fast"),
    "retry_delay": ("05_failures", """
def retry_delay(retry, failed_attempt):
    if retry is None or failed_attempt > retry.max_retries:
        return None
    return float(retry.delay)  # forgets the backoff
""", "backoff"),
    "resource_limits": ("05_failures", """
def resource_limits(resources):
    limits = {}
    if resources.cpu_count:
        limits["nano_cpus"] = int(resources.cpu_count * 1e9)
    if resources.memory:
        limits["mem_limit"] = int(resources.get_memory(unit="B"))  # no memswap_limit
    return limits
""", "memswap_limit"),
    "stop_containers": ("05_failures", """
def stop_containers(client, label, graceful, grace_seconds):
    containers = client.containers.list(filters={"label": label})
    for container in containers:
        container.stop(timeout=grace_seconds)  # graceful even when asked to kill
    return len(containers)
""", "kills at once"),
    "container_labels": ("06_watching_live", """
def container_labels(run, step_name, attempt):
    return {"my-orchestrator.pipeline-run-id": run.pipeline_run_id,
            "my-orchestrator.step": step_name}  # labels the panel cannot read
""", "io.my-docker.managed-by"),
    "merge_status": ("06_watching_live", """
from zenml.enums import ExecutionStatus


def merge_status(recorded_run, recorded_steps, containers, client_alive):
    return recorded_run, dict(recorded_steps)  # trusts the record alone
""", "killed before it recorded its end"),
    "nodes_that_can_hold": ("08_swarm", """
def nodes_that_can_hold(memory_bytes, nodes):
    return [node.hostname for node in nodes if node.memory_bytes > memory_bytes]
""", "4 GiB: expected ['large', 'medium']"),
    "wire_sweep": ("07_putting_it_together", """
def wire_sweep(loader, trainer, evaluator, pick_best, gammas, test_size):
    X_train, X_test, y_train, y_test = loader(test_size=test_size)
    reports, previous = [], None
    for number, gamma in enumerate(gammas):
        after = [previous] if previous else None
        model = trainer(X_train, y_train, gamma=gamma, id=f"train_{number}", after=after)
        previous = f"train_{number}"  # each trainer waits for the one before
        reports.append(evaluator(model, X_test, y_test, id=f"evaluate_{number}"))
    return pick_best(reports)
""", "needs only the loader"),
}


CHECKED_IN_TUTORIAL_CHECKS = {"run", "start_step", "follow_step", "start_due_retries", "on_end",
                              "check_stop_request", "on_interrupt", "client_is_gone",
                              "fetch_status", "submit_pipeline"}


def test_every_exercise_has_a_wrong_answer_test():
    from orchestrator.teaching.piece_plan import PIECES, defined_name

    found = set()
    for path in NOTEBOOKS:
        for cell in exercise_cells(nbformat.read(path, as_version=4)):
            found |= {node.name for node in ast.parse(cell.source).body
                      if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    found -= {"MyOrchestratorSettings"}  # in the config's cell: checked with it
    assert set(WRONG_ANSWERS) <= found and {defined_name(p) for p in PIECES} <= found
    # The other methods of the reader's file are rejected, wrong answer by wrong
    # answer, by tests/test_tutorial_checks.py (on stand-in runners and the engine);
    # one notebook run per exercise would cost CI minutes for the same check.
    assert found - set(WRONG_ANSWERS) == CHECKED_IN_TUTORIAL_CHECKS


def _stop_gracefully_always(client, label, graceful, grace_seconds):
    containers = client.containers.list(ignore_removed=True, filters={"label": label})
    for container in containers:
        container.stop(timeout=grace_seconds)
    return len(containers)


def _kill_always(client, label, graceful, grace_seconds):
    containers = client.containers.list(ignore_removed=True, filters={"label": label})
    for container in containers:
        container.kill()
    return len(containers)


def _stop_nothing(client, label, graceful, grace_seconds):
    return 0


@pytest.mark.usefixtures("parent_image")
def test_stop_containers_check_tells_a_kill_from_a_graceful_stop():
    """The one check on the engine judges how containers ended, not how long the call took.

    It once measured the call's duration against 8 s while calling with a grace
    of one second, so a stop with a grace period passed as a kill.
    """
    from orchestrator.teaching import solutions
    from orchestrator.teaching.checks import ExerciseCheckError, check_stop_containers

    assert len(check_stop_containers(solutions.stop_containers)) == 5
    wrong = {_stop_gracefully_always: "graceful=False kills at once",
             _kill_always: "graceful=True sends SIGTERM first",
             _stop_nothing: "run A's two containers are stopped"}
    for function, message in wrong.items():
        with pytest.raises(ExerciseCheckError, match=message):
            check_stop_containers(function)


_wrong_runs = {}


def run_with_wrong_answers(name, tmp_path_factory):
    """Notebook `name` with every exercise of WRONG_ANSWERS in it answered wrongly,
    cut after the last one's check cell, run in one kernel that goes on past
    errors (papermill's `allow_errors`); the executed notebook, made once per
    notebook for the module (one kernel per notebook, not per exercise: a kernel
    and a workspace cost half a minute of CPU on 2 cores)."""
    import papermill

    if name in _wrong_runs:
        return _wrong_runs[name]
    folder = tmp_path_factory.mktemp(name)
    notebook = nbformat.read(NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)
    last = 0
    for exercise, (in_notebook, wrong, _) in WRONG_ANSWERS.items():
        if in_notebook != name:
            continue
        cell = next(c for c in exercise_cells(notebook)
                    if f"def {exercise}(" in c.source or f"class {exercise}(" in c.source)
        index = notebook.cells.index(cell)
        cell.source = wrong.strip()
        last = max(last, next(i for i in range(index + 1, len(notebook.cells))
                              if _is_check_cell_of(notebook.cells[i], exercise)))
    notebook.cells = notebook.cells[:last + 1]
    path = folder / f"{name}.wrong.ipynb"
    nbformat.write(notebook, path)
    output = folder / f"{name}.out.ipynb"
    with pytest.raises(papermill.PapermillExecutionError):
        papermill.execute_notebook(
            str(path), str(output), parameters={"workspace_root": str(folder / "w")},
            cwd=str(NOTEBOOKS_DIR), kernel_name="python3", progress_bar=False,
            execution_timeout=600, allow_errors=True)
    _wrong_runs[name] = nbformat.read(output, as_version=4)
    return _wrong_runs[name]


def _is_check_cell_of(cell, exercise):
    return cell.cell_type == "code" and exercise in cell.source and "exercise(" in cell.source


@pytest.mark.usefixtures("parent_image")
@pytest.mark.parametrize("exercise", sorted(WRONG_ANSWERS))
def test_a_wrong_answer_is_rejected_by_its_check(exercise, tmp_path_factory):
    """The check runs on the reader's function: a wrong one fails the check cell
    with what was wrong (in a plain run, the notebook stops there)."""
    name, _, message = WRONG_ANSWERS[exercise]
    executed = run_with_wrong_answers(name, tmp_path_factory)
    check_cell = next(c for c in executed.cells if _is_check_cell_of(c, exercise))
    errors = [o for o in check_cell.outputs if o.get("output_type") == "error"]
    assert errors, f"the check cell of {exercise} did not fail:\n{check_cell.source}"
    assert errors[0].ename == "ExerciseCheckError", (errors[0].ename, errors[0].evalue)
    assert exercise in errors[0].evalue and message in errors[0].evalue, errors[0].evalue
    # Nothing before the exercise failed (the first error of the run is an exercise's).
    first = next(c for c in executed.cells if c.cell_type == "code"
                 and any(o.get("output_type") == "error" for o in c.outputs))
    assert "exercise(" in first.source, first.source


def test_terminal_commands_carry_the_notebooks_zenml_state(tmp_path):
    """A line printed for a terminal sets ZENML_CONFIG_PATH: a terminal does not share the kernel's."""
    import shlex

    from orchestrator.teaching.notebooks import Workspace, terminal_command

    workspace = Workspace(name="t", root=tmp_path, config_dir=tmp_path / "my config",
                          project_dir=tmp_path / "project")
    line = terminal_command("python -m orchestrator.status latest", workspace)
    words = shlex.split(line)
    assert words[:3] == ["cd", str(tmp_path / "project"), "&&"]
    assert f"ZENML_CONFIG_PATH={tmp_path / 'my config'}" in words
    assert line.endswith("python -m orchestrator.status latest")
    with pytest.raises(RuntimeError):
        terminal_command("x")  # no workspace in this process


def test_terminal_hints_in_the_notebooks_are_printed_with_the_environment():
    """Every `python -m orchestrator...` a notebook shows in prose is printed by a cell through
    terminal_command (with ZENML_CONFIG_PATH), except where it needs none (machine.swarm)."""
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        prose = " ".join(c.source for c in notebook.cells if c.cell_type == "markdown")
        code = " ".join(c.source for c in code_cells(notebook))
        for module in ("orchestrator.conformance", "orchestrator.status"):
            if f"python -m {module}" in prose:
                assert f'terminal_command(f"python -m {module}' in code \
                    or f'terminal_command("python -m {module}' in code, (path.name, module)
