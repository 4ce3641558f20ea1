"""The tutorial notebooks: how they are stored, and what they do with other parameters.

`pytest --nbmake notebooks/` runs every notebook as stored (its own checks
are the test). This module adds what nbmake cannot:

* structure checks on the stored files (fast, no Docker): no outputs, a
  `parameters` cell of plain literals first, a private ZenML workspace set up
  before anything imports zenml, self-contained step cells, checks and a
  summary at the end, no absolute paths;
* papermill runs of some notebooks with *different* parameters (a step made
  to fail, another parallelism, a retry that gives up, a threshold the model
  cannot meet), reading the results back from the executed notebook. They use
  small sizes so that they stay well below a full nbmake run.
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
    "05_failures", "06_watching_live", "07_putting_it_together",
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


def test_has_an_exercise_with_solution_and_check_from_the_second_on(notebook):
    text = "\n".join(cell.source for cell in notebook.cells)
    if notebook.cells[0].source.startswith("# 1."):
        return
    assert "## Exercise" in text or "Exercise:" in text
    assert "**Solution" in text
    assert "exercise check passed" in text


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


def test_dag_levels_and_drawing():
    graph = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}
    assert dag_levels(graph) == {"a": 0, "b": 1, "c": 1, "d": 2}
    svg = dag_svg(graph, states={"a": "completed", "b": "failed"})
    assert svg.startswith("<svg") and svg.count("<line") == 4
    assert all(f">{name}</text>" in svg for name in graph)
    assert "#86efac" in svg and "#fca5a5" in svg


def test_timeline_needs_rows_and_shares_a_scale():
    with pytest.raises(ValueError):
        timeline_svg([])
    short = timeline_svg([("a", 0, 1)], until=10)
    assert "10.0 s" in short


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
    summary = read_summary(execute("02_anatomy", tmp_path, a=5, b=7))
    assert summary == {"notebook": "02_anatomy", "status": "completed", "second_sum": 19,
                       "same_process": True, "announced": 3}


@pytest.mark.usefixtures("parent_image")
def test_scheduling_with_two_slots(tmp_path):
    summary = read_summary(execute("04_scheduling", tmp_path, branches=3, seconds=2.0,
                                   parallelism=2))
    assert summary["overlap_sequential"] == 1
    assert summary["overlap_parallel"] == 2, summary
    assert summary["span_ratio"] < 0.9, summary


@pytest.mark.usefixtures("parent_image")
def test_failures_with_a_retry_that_gives_up(tmp_path):
    summary = read_summary(execute(
        "05_failures", tmp_path, modes=["fail_fast"], slow_seconds=12.0,
        flaky_failures=3, max_retries=1, stop_demo=False))
    assert summary["modes"] == {"fail_fast": {
        "first_value": "completed", "slow_branch": "stopped", "late_branch": "skipped",
        "fail_after": "failed", "after_failure": "skipped"}}
    assert summary["trouble"] == {"flaky": "failed", "hungry": "failed"}
    assert summary["flaky_attempts"] is None and summary["stopped"] is None
    assert summary["runs"] == 2


@pytest.mark.usefixtures("parent_image")
def test_panel_shows_a_failing_branch(tmp_path):
    summary = read_summary(execute("06_watching_live", tmp_path, branches=2, seconds=2,
                                   fail_branch=True, watch_elsewhere=False))
    assert summary["outcome"] == "failed"
    assert summary["phases"] == {"source": "completed", "branch_0": "failed",
                                 "branch_1": "completed", "join": "skipped"}


@pytest.mark.usefixtures("parent_image")
def test_notebook_checks_fail_when_a_claim_is_false(tmp_path):
    """The notebooks' checks have teeth: demand an accuracy no model reaches."""
    import papermill

    with pytest.raises(papermill.PapermillExecutionError) as raised:
        execute("07_putting_it_together", tmp_path, min_accuracy=1.01)
    assert raised.value.ename == "AssertionError"
    executed = nbformat.read(tmp_path / "07_putting_it_together.out.ipynb", as_version=4)
    with pytest.raises(LookupError):  # it stopped at the checks, before the summary
        read_summary(executed)
