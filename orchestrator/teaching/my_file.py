"""The reader's own orchestrator, ``my_orchestrator.py``, grown one notebook at a time.

From notebook 2 to notebook 6 the reader writes functions and methods
(*pieces*: a method is written as a function whose first argument is
``self``, and goes, indented, into its class at the marked line; its check
calls it with a stand-in for ``self``) and each notebook adds them to the
same module, ``my_orchestrator.py``,
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
hold its own imports. A method's cell gives its ``def`` and its imports
(which the file puts at module level): in the file the method also sees
the module's names (and, checked on its own, the reference module's). The checks therefore run on that extracted source,
executed on its own, exactly what the file will contain.
"""

from __future__ import annotations

import ast
import difflib
import html
import inspect
import itertools
import json
import sys
import textwrap
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from orchestrator.teaching import solutions
from orchestrator.teaching.checks import CHECKS, STAND_INS, ExerciseCheckError
from orchestrator.teaching.class_solutions import CLASS_SOURCES

MODULE = "my_orchestrator"
FLAVOR = "my_orchestrator"
ORCHESTRATOR = "my_orchestrator"
STACK = "my_orchestrator_stack"
# The stack's image builder: ZenML's local one, through the `docker build`
# command. Without an image builder, ZenML builds through docker-py, whose
# default (`rm=False`) leaves one stopped container per build step on the
# engine; the command removes them. (The package's orchestrator turns `rm` on
# itself: running/builds.py.)
IMAGE_BUILDER = "my_orchestrator_builder"
SCAFFOLDS = Path(__file__).with_name("scaffolds")
FIRST_STAGE, LAST_STAGE = 2, 6

# piece -> the notebook where the reader writes it. A piece is a function, a
# method, or classes (one cell); its name is what it defines. A piece written
# again in a later notebook (the settings grow) has that notebook after an "@":
# "MyOrchestratorConfig@4" is notebook 4's version of MyOrchestratorConfig.
PIECES: Dict[str, int] = {
    "MyOrchestratorConfig": 2,
    "MyOrchestratorFlavor": 2,
    "run_order": 2,
    "get_orchestrator_run_id": 2,
    "submit_pipeline": 2,
    "container_kwargs": 3,
    "follow_container": 3,
    "MyOrchestratorConfig@4": 4,
    "ready_steps": 4,
    "run": 4,
    "start_step": 4,
    "follow_step": 4,
    "MyOrchestratorConfig@5": 5,
    "after_failure": 5,
    "retry_delay": 5,
    "resource_limits": 5,
    "stop_containers": 5,
    "start_due_retries": 5,
    "on_end": 5,
    "check_stop_request": 5,
    "on_interrupt": 5,
    "container_labels": 6,
    "merge_status": 6,
    "client_is_gone": 6,
    "fetch_status": 6,
}
# Pieces the file holds only up to a stage: from the next one a later version
# (or, for stage 2's in-process submit_pipeline, the scaffolding's container
# loop) takes their place.
UNTIL: Dict[str, int] = {
    "MyOrchestratorConfig": 3,
    "MyOrchestratorConfig@4": 4,
    "submit_pipeline": 2,
}
# Pieces that are methods: the reader writes them as functions whose first
# argument is ``self``; the file puts them, indented, inside this class.
METHODS: Dict[str, str] = {
    "get_orchestrator_run_id": "MyOrchestrator",
    "submit_pipeline": "MyOrchestrator",
    "run": "Runner",
    "start_step": "Runner",
    "follow_step": "Runner",
    "start_due_retries": "Runner",
    "on_end": "Runner",
    "check_stop_request": "Runner",
    "on_interrupt": "Runner",
    "fetch_status": "MyOrchestrator",
}
NOTEBOOK_FILES = {
    2: "02_anatomy.ipynb",
    3: "03_one_container_per_step.ipynb",
    4: "04_scheduling.ipynb",
    5: "05_failures.ipynb",
    6: "06_watching_live.ipynb",
}
EXERCISE_TAG = "exercise"
# The reader's file is also kept here, beside the notebooks (ignored by git), so
# that it outlives the kernel's temporary workspace and can be registered and
# run outside the notebooks.
KEPT_FOLDER = "my_orchestrator"


@dataclass
class Piece:
    """One piece of the file: its source, the function it defines, and whose it is.

    Attributes:
        origin: whose code the file runs: "yours" or "reference".
        note: why the reference is used, or where yours came from.
        verified: what its check verified (on `origin`'s code).
        reader: what became of the reader's own piece: "passed", "not written",
            "fails its check" or "not found" (a notebook missing or renamed).
    """

    name: str
    source: str
    function: Callable
    origin: str
    note: str
    verified: List[str]
    reader: str = "passed"

    @property
    def notebook(self) -> int:
        return PIECES[self.name]


# --------------------------------------------------------------------------
# Sources: extracting a piece, telling an unwritten one, the reference
# --------------------------------------------------------------------------


def pieces_of_stage(stage: int) -> List[str]:
    """The pieces the file has at `stage` (in the order `PIECES` lists them)."""
    return [name for name, notebook in PIECES.items()
            if notebook <= stage <= UNTIL.get(name, LAST_STAGE)]


def defined_name(piece: str) -> str:
    """What a piece defines: "MyOrchestratorConfig@4" defines MyOrchestratorConfig."""
    return piece.split("@")[0]


def piece_written_in(name: str, notebook: int) -> str:
    """The piece that notebook `notebook` writes under the name `name` (a function,
    method or class name): "MyOrchestratorConfig" in notebook 4 is "MyOrchestratorConfig@4".

    Raises:
        ValueError: no exercise of that notebook defines `name`.
    """
    for piece, written_in in PIECES.items():
        if defined_name(piece) == name and written_in == notebook:
            return piece
    raise ValueError(f"notebook {notebook} has no exercise named {name!r}; its exercises are "
                     f"{[defined_name(p) for p, n in PIECES.items() if n == notebook]}")


def _definition(tree: ast.Module, name: str) -> Optional[ast.stmt]:
    """The top-level function or class `name` defines in a parsed cell, if any."""
    return next((node for node in tree.body
                 if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name),
                None)


def _only_a_placeholder(body: List[ast.stmt]) -> bool:
    """A body of only a docstring and ``...`` (or ``pass``): nothing written yet."""
    rest = [node for node in body
            if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
                    and isinstance(node.value.value, str))]
    return all(isinstance(node, ast.Pass) or (isinstance(node, ast.Expr)
               and isinstance(node.value, ast.Constant) and node.value.value is Ellipsis)
               for node in rest)


def extract_piece(cell_source: str, name: str) -> Optional[str]:
    """What of an exercise cell goes into the file: imports, constants, functions, classes.

    `name` is a piece (see `PIECES`); the cell must define what the piece
    names. Returns None when it does not. Magics and shell lines are
    dropped; so are statements that do something (a print, a call).
    """
    lines = [line for line in cell_source.splitlines()
             if not line.lstrip().startswith(("%", "!"))]
    source = "\n".join(lines)
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    if _definition(tree, defined_name(name)) is None:
        return None
    kept = []
    for node in tree.body:
        keep = isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef))
        keep = keep or (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant))
        if name in METHODS:  # a method: its def, and its imports (the file puts them at the top)
            keep = isinstance(node, (ast.Import, ast.ImportFrom)) or (
                isinstance(node, ast.FunctionDef) and node.name == name)
        if keep:
            segment = ast.get_source_segment(source, node, padded=True) or ""
            decorators = "".join(f"@{ast.get_source_segment(source, d)}\n"
                                 for d in getattr(node, "decorator_list", []))
            kept.append(decorators + segment)
    return "\n\n".join(kept).strip() + "\n"


def is_unwritten(function: Any) -> bool:
    """Whether a function's (or a class's) body is still only a docstring and ``...``."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return False
    definition = next((n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))),
                      None)
    return definition is not None and _only_a_placeholder(definition.body)


def is_unwritten_in(source: str, name: str) -> bool:
    """Whether what piece `name` defines in `source` is still only a placeholder.

    A class counts as unwritten when its body is only ``...``, or when each of
    its methods' bodies is (a class given with its methods' signatures); a
    cell of classes, when each of its classes is.
    """
    tree = ast.parse(source)
    definition = _definition(tree, defined_name(name))
    if definition is None:
        return False
    if isinstance(definition, ast.FunctionDef):
        return _only_a_placeholder(definition.body)
    # Classes: the cell is unwritten while every class in it is (one written class is
    # checked, so that the check says what the other still lacks).
    return all(_class_unwritten(node) for node in tree.body if isinstance(node, ast.ClassDef))


def _class_unwritten(node: ast.ClassDef) -> bool:
    if _only_a_placeholder(node.body):
        return True
    methods = [item for item in node.body if isinstance(item, ast.FunctionDef)]
    return bool(methods) and all(_only_a_placeholder(item.body) for item in methods)


_RUNS = itertools.count(1)  # each execution of a cell is a module of its own


def _execute(source: str, name: str) -> Optional[Dict[str, Any]]:
    """Run a piece's source on its own, as a module of its own; its namespace.

    A real module (in `sys.modules`), because pydantic resolves a settings
    class's annotations (``Optional[int]``) through the class's module.
    """
    module = types.ModuleType(f"my_orchestrator_piece_{defined_name(name)}_{next(_RUNS)}")
    sys.modules[module.__name__] = module
    namespace: Dict[str, Any] = vars(module)
    if name in METHODS:
        # A method sees the module's names (queue, time, logger, the other
        # pieces...), as in the file: here the reference module's.
        namespace.update({key: value for key, value in vars(solutions).items()
                          if not key.startswith("__")})
    namespace.update(STAND_INS.get(name, lambda: {})())
    exec(compile(source, f"<your {defined_name(name)}>", "exec"), namespace)
    return namespace


def reference_source(name: str) -> str:
    """The reference solution's source (`orchestrator.teaching.solutions`, or
    `class_solutions` for the class pieces)."""
    if name in CLASS_SOURCES:
        return CLASS_SOURCES[name]
    return inspect.getsource(getattr(solutions, name))


def reference_function(name: str) -> Any:
    """The reference solution itself: a function, or a class executed from its source."""
    if name in CLASS_SOURCES:
        return _execute(CLASS_SOURCES[name], name)[defined_name(name)]
    return getattr(solutions, name)


def reference_piece(name: str, note: str, reader: str = "not written", *,
                    checked: bool = True) -> Piece:
    """The reference standing in for the reader's piece.

    Args:
        checked: run the piece's check on it, for the claims an exercise cell
            shows (`Piece.verified`). A notebook's start lists earlier pieces
            without their claims: it skips the check, which for some pieces
            runs containers (the references pass their checks: tests say so).
    """
    function = reference_function(name)
    return Piece(name, reference_source(name), function, "reference", note,
                 CHECKS[name](function) if checked else [], reader)


def _defines_in_exercise(path: Path, name: str) -> bool:
    """Whether a notebook has an exercise cell that defines `name` (written or not)."""
    try:
        cells = json.loads(path.read_text()).get("cells", [])
    except (OSError, ValueError):
        return False
    defined = defined_name(name)
    return any(cell.get("cell_type") == "code"
               and (f"def {defined}(" in "".join(cell.get("source", ""))
                    or f"class {defined}(" in "".join(cell.get("source", "")))
               for cell in cells)


def where_else(name: str, notebooks_dir: Path, expected: str) -> List[str]:
    """Other notebooks next to this one that define `name` (a renamed or copied notebook)."""
    try:
        candidates = sorted(notebooks_dir.glob("*.ipynb"))
    except OSError:
        return []
    return [path.name for path in candidates
            if path.name != expected and _defines_in_exercise(path, name)]


def checked_piece(name: str, source: str, where: str) -> Piece:
    """The reader's piece from `source`, run on its own and checked.

    Raises:
        ExerciseCheckError: the piece fails its check, or does not run on its own.
    """
    try:
        namespace = _execute(source, name)
    except Exception as error:  # noqa: BLE001 - any error of the reader's cell is shown
        why = ("the cell goes into my_orchestrator.py as it is, so it must hold its own "
               "imports" if isinstance(error, (NameError, ImportError)) else
               "Python could not define what the cell defines, so neither could ZenML when "
               "it imports my_orchestrator.py")
        raise ExerciseCheckError(
            f"{defined_name(name)}: your cell does not run on its own: "
            f"{type(error).__name__}: {error}\n  why it matters: {why}") from None
    function = namespace[defined_name(name)]
    try:
        verified = CHECKS[name](function)
    except ExerciseCheckError as error:
        if "is not defined" in str(error):
            raise ExerciseCheckError(
                f"{error}\n  (an exercise cell goes into my_orchestrator.py alone, like a "
                "step's cell into a container: import or define what it uses in the cell "
                "itself)") from None
        raise
    return Piece(name, source, function, "yours", where, verified)


def saved_piece(name: str, notebooks_dir: Optional[Path]) -> Piece:
    """The reader's piece from the saved notebook where it is written, else the reference."""
    notebook = PIECES[name]
    file_name = NOTEBOOK_FILES[notebook]
    path = notebooks_dir / file_name if notebooks_dir else None
    if path is None or not path.exists():
        note = f"looked for {path or file_name}: no such notebook"
        others = where_else(name, notebooks_dir, file_name) if notebooks_dir else []
        if others:
            note += (f"; {', '.join(others)} defines {name}, but only {file_name} is read: "
                     f"save your answer in {file_name}")
        return reference_piece(name, note, reader="not found", checked=False)
    source = None
    for cell in json.loads(path.read_text()).get("cells", []):
        if cell.get("cell_type") == "code" and EXERCISE_TAG in cell.get("metadata", {}).get(
                "tags", []):
            text = "".join(cell.get("source", ""))
            source = extract_piece(text, name) or source
    if source is None or is_unwritten_in(source, name):
        return reference_piece(name, f"not written yet in {path} (as last saved)",
                               checked=False)
    try:
        return checked_piece(name, source, f"from {file_name} (as last saved)")
    except ExerciseCheckError as error:
        claim = next((line.split(":", 1)[1].strip() for line in str(error).splitlines()
                      if line.strip().startswith("claim:")), str(error).splitlines()[0])
        return reference_piece(name, f"yours in {file_name} fails its check: {claim}",
                               reader="fails its check", checked=False)


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
    lines: List[str] = []
    hoisted: List[str] = []  # the imports of the methods' cells: module level, not in a class
    for line in (SCAFFOLDS / f"stage{stage}.py").read_text().splitlines():
        if line.startswith("# ruff: noqa"):
            continue
        if line.lstrip().startswith("# <<piece:") and line.endswith(">>"):
            indent = line[:len(line) - len(line.lstrip())]  # a method's: its class body's
            name = line.strip()[len("# <<piece:"):-2]
            piece = pieces[name]
            whose = "yours" if piece.origin == "yours" else "the reference solution"
            lines.append(f"{indent}{PIECE_HEADER}{name} (notebook {piece.notebook}): {whose}; "
                         f"{piece.note} ----")
            source = textwrap.dedent(piece.source).rstrip()
            if indent:
                imports, source = _split_imports(source)
                hoisted += [text for text in imports if text not in hoisted]
            lines.extend((indent + text) if text.strip() else "" for text in source.splitlines())
            continue
        lines.append(line)
    hoisted = [text for text in hoisted if text not in lines]  # the scaffolding has it
    if hoisted:
        ruler = next(number for number, line in enumerate(lines) if line.startswith(PIECES_RULER))
        lines[ruler:ruler] = ["# the imports of your methods' cells"] + hoisted + [""]
    return "\n".join(lines) + "\n"


PIECES_RULER = "# ============================ your pieces"


def _split_imports(source: str) -> "tuple[List[str], str]":
    """A method's cell: its import statements (for the module), and the rest."""
    tree = ast.parse(source)
    imports, rest = [], []
    for node in tree.body:
        segment = ast.get_source_segment(source, node) or ""
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imports.append(segment)
        else:
            decorators = "".join(f"@{ast.get_source_segment(source, d)}\n"
                                 for d in getattr(node, "decorator_list", []))
            rest.append(decorators + segment)
    return imports, "\n\n".join(rest)


def reference_file(stage: int, wrong: Optional[Dict[str, str]] = None) -> str:
    """The file at `stage` with every reference solution (or the given sources instead)."""
    pieces = {}
    for name in pieces_of_stage(stage):
        source = (wrong or {}).get(name) or reference_source(name)
        pieces[name] = Piece(name, source, reference_function(name), "reference",
                             "reference solution", [])
    return assemble(stage, pieces)


def _cell_source_defining(name: str) -> Optional[str]:
    """The latest input of this IPython kernel that defines what piece `name` defines."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    if shell is None:
        return None
    defined = defined_name(name)
    for cell in reversed(shell.user_ns.get("In", [])):
        piece = extract_piece(shell.input_transformer_manager.transform_cell(cell), name) \
            if f"def {defined}(" in cell or f"class {defined}(" in cell else None
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
        if stage > LAST_STAGE:  # notebook 7: every piece, for the scoreboard
            earlier = list(PIECES)
        else:
            earlier = [name for name in pieces_of_stage(stage_file) if PIECES[name] < stage]
        if earlier:
            echo(f"my_orchestrator.py as notebook {stage} starts: the pieces of earlier notebooks")
        for name in earlier:
            piece = saved_piece(name, workspace.notebooks_dir)
            pieces[name] = piece
            whose = "YOURS" if piece.origin == "yours" else "REFERENCE (not yours)"
            echo(f"  {name:23} notebook {piece.notebook}  {whose:21} {piece.note}")
        if earlier and workspace.notebooks_dir is not None:
            echo(f"  (read from the saved notebooks in {workspace.notebooks_dir}; save a "
                 "notebook (Ctrl-S) for its answers to count here)")
        return cls(stage_file, workspace.project_dir, workspace.notebooks_dir, pieces, echo)

    def exercise(self, name: str, function: Any) -> Any:
        """Check the reader's `function` (or class; or say it is not written and check
        the reference).

        Args:
            name: what the exercise defines (a function, method or class name).

        Returns:
            What the file will contain (the reader's, or the reference).

        Raises:
            ValueError: this notebook has no exercise of that name.
            ExerciseCheckError: the reader's code fails the check.
        """
        piece_name = piece_written_in(name, self.stage)
        source = _cell_source_defining(piece_name)
        unwritten = is_unwritten_in(source, piece_name) if source else is_unwritten(function)
        if unwritten:
            piece = reference_piece(piece_name, "yours is not written yet")
            self.echo(reference_banner(name, piece.verified))
        else:
            if source is None:  # not in a notebook: the function's own source
                source = textwrap.dedent(inspect.getsource(function))
            piece = checked_piece(piece_name, source, f"written in notebook {self.stage}")
            self.echo(yours_passed(name, piece.verified))
        self.pieces[piece_name] = piece
        return piece.function

    def missing(self) -> List[str]:
        return [name for name in pieces_of_stage(self.stage) if name not in self.pieces]

    def text(self) -> str:
        """The file's text now (pieces not checked yet use the reference)."""
        pieces = dict(self.pieces)
        for name in self.missing():
            pieces[name] = reference_piece(name, "not checked in this notebook yet",
                                           checked=False)
        return assemble(self.stage, pieces)

    def code(self) -> str:
        """The file's text without the pieces' header comments: what runs.

        Those comments say where each piece came from, in words that differ
        from notebook to notebook for the same code (notebook 7 reads the
        pieces from the saved notebook 6); the saved conformance verdicts
        are keyed by this text (`orchestrator.conformance.saved`).
        """
        return "\n".join(line for line in self.text().splitlines()
                         if not line.lstrip().startswith(PIECE_HEADER)) + "\n"

    @property
    def kept_path(self) -> Optional[Path]:
        """Where the file is kept beside the notebooks (None outside a notebook folder)."""
        if self.notebooks_dir is None:
            return None
        return Path(self.notebooks_dir) / KEPT_FOLDER / f"{MODULE}.py"

    def keep(self) -> Optional[Path]:
        """Copy the file beside the notebooks; say so if that folder cannot be written."""
        kept = self.kept_path
        if kept is None:
            return None
        try:
            kept.parent.mkdir(exist_ok=True)
            kept.write_text(self.text())
        except OSError as error:
            self.echo(f"could not keep a copy at {kept}: {error}")
            return None
        return kept

    def scoreboard(self) -> List[Dict[str, str]]:
        """Every piece written up to this stage (also those a later version replaced):
        whose code the file runs (or ran at its stage), and what became of the reader's."""
        rows = []
        for name in [name for name, notebook in PIECES.items() if notebook <= self.stage]:
            piece = self.pieces.get(name)
            if piece is None:
                rows.append({"piece": name, "notebook": str(PIECES[name]), "runs": "reference",
                             "yours": "not checked yet", "note": ""})
                continue
            rows.append({"piece": name, "notebook": str(piece.notebook),
                         "runs": "yours" if piece.origin == "yours" else "reference",
                         "yours": piece.reader, "note": piece.note})
        return rows

    def score_line(self) -> str:
        rows = self.scoreboard()
        mine = sum(1 for row in rows if row["runs"] == "yours")
        return (f"your pieces: {mine} of {len(rows)} (the reference solution stood in for "
                f"{len(rows) - mine})")

    def show_scoreboard(self) -> None:
        """The scoreboard as a table (and its text, for any viewer)."""
        rows = self.scoreboard()
        colour = {"yours": "#bbf7d0", "reference": "#fde68a"}
        body = "".join(
            f"<tr style='background:{colour[row['runs']]}'><td><code>{html.escape(row['piece'])}"
            f"</code></td><td>{row['notebook']}</td><td><b>{row['runs']}</b></td>"
            f"<td>{html.escape(row['yours'])}</td><td><small>{html.escape(row['note'])}"
            "</small></td></tr>" for row in rows)
        table = ("<table><tr><th>piece</th><th>notebook</th><th>whose code runs</th>"
                 "<th>your piece</th><th>why</th></tr>" + body + "</table>")
        try:
            from IPython.display import HTML, display

            display(HTML(table))
        except ImportError:  # pragma: no cover - plain Python
            pass
        for row in rows:
            self.echo(f"  {row['piece']:23} notebook {row['notebook']}  runs {row['runs']:9} "
                      f"yours: {row['yours']}")
        self.echo(self.score_line())

    def write(self) -> Path:
        """Write ``my_orchestrator.py`` into the project folder; forget any imported copy.

        A copy is kept beside the notebooks (`kept_path`), where it outlives the
        kernel.

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
        kept = self.keep()
        self.echo(f"wrote {self.path.name}: stage {self.stage}, {len(self.text().splitlines())} "
                  f"lines; your pieces: {', '.join(mine) or 'none yet'}"
                  + (f"\nkept a copy at {kept}" if kept else ""))
        return self.path

    def added_html(self) -> str:
        """What this notebook added to the file, side by side with the previous stage."""
        after = self.text().splitlines()
        if self.stage == FIRST_STAGE:
            before: List[str] = []
        else:
            previous = {n: p for n, p in self.pieces.items() if PIECES[n] < self.stage}
            for name in pieces_of_stage(self.stage - 1):  # one this stage replaced
                if name not in previous:
                    previous[name] = Piece(name, self._saved_source(name), None, "reference",
                                           "as the previous notebook left it", [])
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

    def _saved_source(self, name: str) -> str:
        """A piece's text as saved in its notebook (not checked), else the reference's."""
        path = (Path(self.notebooks_dir) / NOTEBOOK_FILES[PIECES[name]]
                if self.notebooks_dir else None)
        try:
            cells = json.loads(path.read_text()).get("cells", []) if path else []
        except (OSError, ValueError):
            cells = []
        for cell in cells:
            if EXERCISE_TAG in cell.get("metadata", {}).get("tags", []):
                source = extract_piece("".join(cell.get("source", "")), name)
                if source and not is_unwritten_in(source, name):
                    return source
        return reference_source(name)

    def show_added(self) -> None:
        from IPython.display import HTML, display

        display(HTML(self.added_html()))

    def register(self, echo: Callable[[str], None] = print) -> None:
        """Register the file as a flavor, an orchestrator and a stack, and activate it.

        The same commands as the reference ones, with this file's names, plus
        an image builder that leaves no build container (see IMAGE_BUILDER;
        safe to run again).
        """
        from orchestrator.teaching.notebooks import zenml_command

        zenml_command(f"zenml orchestrator flavor register {MODULE}.MyOrchestratorFlavor",
                      echo=echo, exist_ok=True)
        zenml_command(f"zenml orchestrator register {ORCHESTRATOR} -f {FLAVOR}", echo=echo,
                      exist_ok=True)
        zenml_command(f"zenml image-builder register {IMAGE_BUILDER} -f local "
                      "--use_subprocess_call=True", echo=echo, exist_ok=True)
        zenml_command(f"zenml stack register {STACK} -o {ORCHESTRATOR} -a default "
                      f"-i {IMAGE_BUILDER}", echo=echo, exist_ok=True)
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
    unwritten = is_unwritten(function)
    chosen = reference if unwritten else function
    try:
        verified = check(chosen)
    except ExerciseCheckError:
        raise
    except AssertionError as error:  # a notebook's own check says what was wrong
        raise ExerciseCheckError(f"{name}: your code fails a check.\n  {error}") from None
    echo(reference_banner(name, verified, into_file=False) if unwritten
         else yours_passed(name, verified))
    return chosen


def reference_banner(name: str, verified: List[str], into_file: bool = True) -> str:
    """What a check cell says when the reader's function was not written: nothing of
    theirs was checked, whose code ran instead, and how to be checked."""
    rule = "=" * 78
    gets = ", and my_orchestrator.py gets the reference" if into_file else ""
    lines = [rule,
             f"NOT YOURS: {name} is not written yet (its body is still `...`).",
             "Nothing you wrote was checked. The check below ran the REFERENCE solution",
             f"(orchestrator/teaching/solutions.py){gets}.",
             f"To be checked yourself: write {name} in the cell above, run it, then this cell.",
             rule,
             "what the check verified, on the reference (not on your code):"]
    lines += [f"  reference: {item}" for item in verified]
    lines.append(f"{name}: THE REFERENCE STOOD IN (0 of your lines checked)")
    return "\n".join(lines)


def yours_passed(name: str, verified: List[str]) -> str:
    lines = [f"{name}: YOURS passes its check:"]
    lines += [f"  passed: {item}" for item in verified]
    lines.append(f"{name}: your code passed all {len(verified)} checks")
    return "\n".join(lines)


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
