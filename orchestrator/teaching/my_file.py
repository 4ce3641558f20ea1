"""The reader's own orchestrator, ``my_orchestrator.py``, grown one notebook at a time.

From notebook 2 to notebook 6 the reader writes small functions (*pieces*)
and each notebook adds them to the same module, ``my_orchestrator.py``,
in the notebook's project folder: the scaffolding of that notebook's stage
(`scaffolds/stageN.py`, given) with the pieces put in at the marked lines.
The file is registered as the flavor ``my_orchestrator`` and runs real
pipelines, one container per step from notebook 3 on.

Where do the pieces of earlier notebooks come from? From the notebooks the
reader saved: notebook 5 reads the exercise cells of notebooks 2-4 next to
it (cells tagged ``exercise``), runs each piece's check on it, and uses it
if it passes. A piece not written yet (still ``...``), or one that fails its
check, is replaced by the reference solution (`orchestrator.teaching.solutions`),
and the notebook says so. So every notebook runs on its own, in any order,
and ends with a file that works.

An exercise cell goes into the file as it is (its imports, constants and
functions; nothing else), like a step's cell into a container: it must
hold its own imports. The checks therefore run on that extracted source,
executed on its own, exactly what the file will contain.
"""

from __future__ import annotations

import ast
import difflib
import html
import inspect
import json
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from orchestrator.teaching import solutions
from orchestrator.teaching.checks import CHECKS, ExerciseCheckError

MODULE = "my_orchestrator"
FLAVOR = "my_orchestrator"
ORCHESTRATOR = "my_orchestrator"
STACK = "my_orchestrator_stack"
SCAFFOLDS = Path(__file__).with_name("scaffolds")
FIRST_STAGE, LAST_STAGE = 2, 6

# piece -> the notebook where the reader writes it
PIECES: Dict[str, int] = {
    "run_order": 2,
    "container_kwargs": 3,
    "ready_steps": 4,
    "after_failure": 5,
    "retry_delay": 5,
    "resource_limits": 5,
    "stop_containers": 5,
    "container_labels": 6,
    "merge_status": 6,
}
NOTEBOOK_FILES = {
    2: "02_anatomy.ipynb",
    3: "03_one_container_per_step.ipynb",
    4: "04_scheduling.ipynb",
    5: "05_failures.ipynb",
    6: "06_watching_live.ipynb",
}
EXERCISE_TAG = "exercise"


@dataclass
class Piece:
    """One piece of the file: its source, the function it defines, and whose it is.

    Attributes:
        origin: "yours" or "reference".
        note: why the reference is used, or where yours came from.
        verified: what its check verified.
    """

    name: str
    source: str
    function: Callable
    origin: str
    note: str
    verified: List[str]

    @property
    def notebook(self) -> int:
        return PIECES[self.name]


# --------------------------------------------------------------------------
# Sources: extracting a piece, telling an unwritten one, the reference
# --------------------------------------------------------------------------


def pieces_of_stage(stage: int) -> List[str]:
    """The pieces the file has at `stage` (in the order the file lists them)."""
    return [name for name, notebook in PIECES.items() if notebook <= stage]


def extract_piece(cell_source: str, name: str) -> Optional[str]:
    """What of an exercise cell goes into the file: imports, constants, functions.

    Returns None when the cell does not define ``name``. Magics and shell
    lines are dropped; so are statements that do something (a print, a call).
    """
    lines = [line for line in cell_source.splitlines()
             if not line.lstrip().startswith(("%", "!"))]
    source = "\n".join(lines)
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    if not any(isinstance(node, ast.FunctionDef) and node.name == name for node in tree.body):
        return None
    kept = []
    for node in tree.body:
        keep = isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef))
        keep = keep or (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant))
        if keep:
            segment = ast.get_source_segment(source, node, padded=True) or ""
            decorators = "".join(f"@{ast.get_source_segment(source, d)}\n"
                                 for d in getattr(node, "decorator_list", []))
            kept.append(decorators + segment)
    return "\n\n".join(kept).strip() + "\n"


def is_unwritten(function: Callable) -> bool:
    """Whether a function's body is still only a docstring and ``...`` (or ``pass``)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return False
    definition = next((n for n in tree.body if isinstance(n, ast.FunctionDef)), None)
    if definition is None:
        return False
    body = [node for node in definition.body
            if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
                    and isinstance(node.value.value, str))]
    return all(isinstance(node, ast.Pass) or (isinstance(node, ast.Expr)
               and isinstance(node.value, ast.Constant) and node.value.value is Ellipsis)
               for node in body)


def is_unwritten_in(source: str, name: str) -> bool:
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            body = [n for n in node.body if not (isinstance(n, ast.Expr) and isinstance(
                n.value, ast.Constant) and isinstance(n.value.value, str))]
            return all(isinstance(n, ast.Pass) or (isinstance(n, ast.Expr) and isinstance(
                n.value, ast.Constant) and n.value.value is Ellipsis) for n in body)
    return False


def _execute(source: str, name: str) -> Optional[Dict[str, Any]]:
    namespace: Dict[str, Any] = {"__name__": f"my_orchestrator_piece_{name}"}
    exec(compile(source, f"<your {name}>", "exec"), namespace)
    return namespace


def reference_source(name: str) -> str:
    """The reference solution's source (from `orchestrator.teaching.solutions`)."""
    return inspect.getsource(getattr(solutions, name))


def reference_piece(name: str, note: str) -> Piece:
    function = getattr(solutions, name)
    return Piece(name, reference_source(name), function, "reference", note,
                 CHECKS[name](function))


def checked_piece(name: str, source: str, where: str) -> Piece:
    """The reader's piece from `source`, run on its own and checked.

    Raises:
        ExerciseCheckError: the piece fails its check, or does not run on its own.
    """
    try:
        namespace = _execute(source, name)
    except Exception as error:
        raise ExerciseCheckError(
            f"{name}: your cell does not run on its own: {type(error).__name__}: {error}\n"
            "  why it matters: the cell goes into my_orchestrator.py as it is, so it must "
            "hold its own imports") from error
    function = namespace[name]
    try:
        verified = CHECKS[name](function)
    except ExerciseCheckError as error:
        if "is not defined" in str(error):
            raise ExerciseCheckError(
                f"{error}\n  (an exercise cell goes into my_orchestrator.py alone, like a "
                "step's cell into a container: import or define what it uses in the cell "
                "itself)") from error
        raise
    return Piece(name, source, function, "yours", where, verified)


def saved_piece(name: str, notebooks_dir: Optional[Path]) -> Piece:
    """The reader's piece from the saved notebook where it is written, else the reference."""
    notebook = PIECES[name]
    file_name = NOTEBOOK_FILES[notebook]
    path = notebooks_dir / file_name if notebooks_dir else None
    if path is None or not path.exists():
        return reference_piece(name, f"{file_name} is not next to this notebook")
    source = None
    for cell in json.loads(path.read_text()).get("cells", []):
        if cell.get("cell_type") == "code" and EXERCISE_TAG in cell.get("metadata", {}).get(
                "tags", []):
            text = "".join(cell.get("source", ""))
            source = extract_piece(text, name) or source
    if source is None or is_unwritten_in(source, name):
        return reference_piece(name, f"not written yet in notebook {notebook} (saved copy)")
    try:
        return checked_piece(name, source, f"from notebook {notebook} (saved copy)")
    except ExerciseCheckError as error:
        first = str(error).splitlines()[0]
        return reference_piece(name, f"yours in notebook {notebook} fails its check ({first})")


# --------------------------------------------------------------------------
# The file
# --------------------------------------------------------------------------


# Each piece's header comment says where it came from (differently in each notebook).
PIECE_HEADER = "# ---- "


def assemble(stage: int, pieces: Dict[str, Piece]) -> str:
    """The text of ``my_orchestrator.py`` at `stage` with these pieces.

    Raises:
        ValueError: a stage without scaffolding, or a piece missing.
    """
    if not FIRST_STAGE <= stage <= LAST_STAGE:
        raise ValueError(f"stages go from {FIRST_STAGE} to {LAST_STAGE}, not {stage}")
    lines = []
    for line in (SCAFFOLDS / f"stage{stage}.py").read_text().splitlines():
        if line.startswith("# ruff: noqa"):
            continue
        if line.startswith("# <<piece:") and line.endswith(">>"):
            name = line[len("# <<piece:"):-2]
            piece = pieces[name]
            whose = "yours" if piece.origin == "yours" else "the reference solution"
            lines.append(f"{PIECE_HEADER}{name} (notebook {piece.notebook}): {whose}; {piece.note} ----")
            lines.extend(piece.source.rstrip().splitlines())
            continue
        lines.append(line)
    return "\n".join(lines) + "\n"


def reference_file(stage: int, wrong: Optional[Dict[str, str]] = None) -> str:
    """The file at `stage` with every reference solution (or the given sources instead)."""
    pieces = {}
    for name in pieces_of_stage(stage):
        source = (wrong or {}).get(name) or reference_source(name)
        pieces[name] = Piece(name, source, getattr(solutions, name), "reference",
                             "reference solution", [])
    return assemble(stage, pieces)


def _cell_source_defining(name: str) -> Optional[str]:
    """The latest input of this IPython kernel that defines function `name`."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    if shell is None:
        return None
    for cell in reversed(shell.user_ns.get("In", [])):
        piece = extract_piece(shell.input_transformer_manager.transform_cell(cell), name) \
            if "def " + name in cell else None
        if piece:
            return piece
    return None


class MyFile:
    """``my_orchestrator.py`` in one notebook: its pieces, checked, and the file itself.

    Use `MyFile.start(stage)` at the top of a notebook, `exercise` in each
    exercise's check cell, then `write` (and `register` once).
    """

    def __init__(self, stage: int, project_dir: Path, notebooks_dir: Optional[Path],
                 pieces: Dict[str, Piece], echo: Callable[[str], None] = print) -> None:
        self.stage = stage
        self.project_dir = Path(project_dir)
        self.notebooks_dir = notebooks_dir
        self.pieces = pieces
        self.echo = echo

    @property
    def path(self) -> Path:
        return self.project_dir / f"{MODULE}.py"

    @classmethod
    def start(cls, stage: int, workspace: Any = None,
              echo: Callable[[str], None] = print) -> "MyFile":
        """The file as this notebook starts: the pieces of earlier notebooks, checked.

        Args:
            stage: this notebook's number (2 to 6; 7 uses the last stage).
            workspace: the notebook's `Workspace` (default: the current one).
        """
        from orchestrator.teaching.notebooks import current_workspace

        workspace = workspace or current_workspace()
        stage_file = min(stage, LAST_STAGE)
        pieces = {}
        earlier = [name for name in pieces_of_stage(stage_file)
                   if PIECES[name] < stage or stage > LAST_STAGE]
        if earlier:
            echo(f"my_orchestrator.py as notebook {stage} starts: the pieces of earlier notebooks")
        for name in earlier:
            piece = saved_piece(name, workspace.notebooks_dir)
            pieces[name] = piece
            whose = "yours" if piece.origin == "yours" else "reference"
            echo(f"  {name:17} notebook {piece.notebook}  {whose:9} {piece.note}")
        return cls(stage_file, workspace.project_dir, workspace.notebooks_dir, pieces, echo)

    def exercise(self, name: str, function: Callable) -> Callable:
        """Check the reader's `function` (or say it is not written and check the reference).

        Returns:
            The function the file will contain (the reader's, or the reference).

        Raises:
            ExerciseCheckError: the reader's function fails the check.
        """
        if name not in PIECES:
            raise ValueError(f"no exercise named {name!r}; they are {list(PIECES)}")
        source = _cell_source_defining(name)
        unwritten = is_unwritten_in(source, name) if source else is_unwritten(function)
        if unwritten:
            self.echo(f"{name}: you have not written it yet (its body is still `...`), so the "
                      "check runs on the reference solution, from "
                      "orchestrator/teaching/solutions.py, and your file gets that one. "
                      "Write yours above and run these two cells again.")
            piece = reference_piece(name, "yours is not written yet")
        else:
            if source is None:  # not in a notebook: the function's own source
                source = textwrap.dedent(inspect.getsource(function))
            piece = checked_piece(name, source, f"written in notebook {PIECES[name]}")
            self.echo(f"{name}: yours passes its check.")
        for item in piece.verified:
            self.echo(f"  ok  {item}")
        self.pieces[name] = piece
        return piece.function

    def missing(self) -> List[str]:
        return [name for name in pieces_of_stage(self.stage) if name not in self.pieces]

    def text(self) -> str:
        """The file's text now (pieces not checked yet use the reference)."""
        pieces = dict(self.pieces)
        for name in self.missing():
            pieces[name] = reference_piece(name, "not checked in this notebook yet")
        return assemble(self.stage, pieces)

    def code(self) -> str:
        """The file's text without the pieces' header comments: what runs.

        Those comments say where each piece came from, in words that differ
        from notebook to notebook for the same code (notebook 7 reads the
        pieces from the saved notebook 6); the saved conformance verdicts
        are keyed by this text (`orchestrator.conformance.saved`).
        """
        return "\n".join(line for line in self.text().splitlines()
                         if not line.startswith(PIECE_HEADER)) + "\n"

    def write(self) -> Path:
        """Write ``my_orchestrator.py`` into the project folder; forget any imported copy.

        Raises:
            RuntimeError: an exercise of this notebook has not been checked yet.
        """
        missing = self.missing()
        if missing:
            raise RuntimeError(f"run the check cell of {', '.join(missing)} first")
        self.path.write_text(self.text())
        sys.modules.pop(MODULE, None)  # ZenML imports the new text next time
        import importlib

        importlib.invalidate_caches()
        mine = [name for name, piece in self.pieces.items() if piece.origin == "yours"]
        self.echo(f"wrote {self.path.name}: stage {self.stage}, {len(self.text().splitlines())} "
                  f"lines; your pieces: {', '.join(mine) or 'none yet'}")
        return self.path

    def added_html(self) -> str:
        """What this notebook added to the file, side by side with the previous stage."""
        after = self.text().splitlines()
        if self.stage == FIRST_STAGE:
            before: List[str] = []
        else:
            previous = {n: p for n, p in self.pieces.items() if PIECES[n] < self.stage}
            before = assemble(self.stage - 1, previous).splitlines()
        differ = difflib.HtmlDiff(wrapcolumn=80)
        table = differ.make_table(before, after, f"stage {self.stage - 1}",
                                  f"stage {self.stage}", context=True, numlines=1)
        style = ("<style>" + differ._styles  # difflib's own colours: added, changed, deleted
                 + "table.diff {font-family: monospace; font-size: 11px; border: none}"
                 "table.diff td {white-space: pre-wrap; vertical-align: top}</style>")
        return (style + "<div style='max-height:480px;overflow:auto;border:1px solid #ddd'>"
                + table + "</div><p><small>Left: the file as the previous notebook left it; "
                "right: as this notebook leaves it. Green: added, yellow: changed, red: "
                "removed.</small></p>")

    def show_added(self) -> None:
        from IPython.display import HTML, display

        display(HTML(self.added_html()))

    def register(self, echo: Callable[[str], None] = print) -> None:
        """Register the file as a flavor, an orchestrator and a stack, and activate it.

        The same commands as the reference ones, with this file's names
        (safe to run again).
        """
        from orchestrator.teaching.notebooks import zenml_command

        zenml_command(f"zenml orchestrator flavor register {MODULE}.MyOrchestratorFlavor",
                      echo=echo, exist_ok=True)
        zenml_command(f"zenml orchestrator register {ORCHESTRATOR} -f {FLAVOR}", echo=echo,
                      exist_ok=True)
        zenml_command(f"zenml stack register {STACK} -o {ORCHESTRATOR} -a default", echo=echo,
                      exist_ok=True)
        zenml_command(f"zenml stack set {STACK}", echo=echo)


def check_exercise(name: str, function: Callable, reference: Callable,
                   check: Callable[[Callable], List[str]],
                   echo: Callable[[str], None] = print) -> Callable:
    """An exercise that is not a piece of my_orchestrator.py: check the reader's function.

    Where the reader has not written it yet, say so and check the reference
    instead (so the notebook still runs), and return the one checked.

    Raises:
        ExerciseCheckError: the reader's function fails the check.
    """
    if is_unwritten(function):
        echo(f"{name}: you have not written it yet (its body is still `...`), so the check "
             "runs on the reference solution, from orchestrator/teaching/solutions.py. Write "
             "yours above and run these two cells again.")
        chosen = reference
    else:
        chosen = function
        echo(f"{name}: yours is being checked.")
    try:
        verified = check(chosen)
    except ExerciseCheckError:
        raise
    except AssertionError as error:  # a notebook's own check says what was wrong
        raise ExerciseCheckError(f"{name}: {error}") from error
    for item in verified:
        echo(f"  ok  {item}")
    return chosen


def side_by_side(left_title: str, left: Any, right_title: str, right: Any,
                 notes: str = "") -> None:
    """Show the reader's piece next to the package's finished version.

    Args:
        left, right: source text, or a function or class (its source is shown).
    """
    from IPython.display import HTML, display

    left_source = left if isinstance(left, str) else inspect.getsource(left)
    right_source = right if isinstance(right, str) else inspect.getsource(right)

    def column(title: str, code: str) -> str:
        return (f"<div style='flex:1;min-width:0'><b>{html.escape(title)}</b>"
                f"<pre style='font-size:11px;overflow:auto;max-height:420px'>"
                f"{html.escape(code)}</pre></div>")

    display(HTML("<div style='display:flex;gap:12px'>" + column(left_title, textwrap.dedent(left_source))
                 + column(right_title, textwrap.dedent(right_source)) + "</div>"
                 + (f"<p>{notes}</p>" if notes else "")))
