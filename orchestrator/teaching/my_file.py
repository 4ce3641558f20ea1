"""The reader's own orchestrator, ``my_orchestrator.py``, as one notebook grows it.

From notebook 2 to notebook 6 the reader writes functions and methods
(*pieces*: a method is written as a function whose first argument is
``self``, and goes, indented, into its class at the marked line; its check
calls it with a stand-in for ``self``) and each notebook adds them to the
same module, ``my_orchestrator.py``, in the notebook's project folder: the
scaffolding of that notebook's stage with the pieces put in at the marked
lines. The file is registered as the flavor ``my_orchestrator`` and runs
real pipelines, one container per step from notebook 3 on.

This module is what a notebook uses: `MyFile` (start the file with the
pieces of earlier notebooks, check each exercise, write, show what was
added, register), `check_exercise` for the exercises that are not pieces,
and `side_by_side`. The parts it is made of, one responsibility each:

- `piece_plan`: which notebook writes which piece, and the stages that hold it;
- `exercise_cells`: what of a cell goes into the file, and whether it is written;
- `checked_pieces`: a piece run on its own and checked, or the reference in its place;
- `reader_answers`: the reader's answers, from the saved notebooks and this kernel;
- `assembly`: the file's text, from a stage's scaffolding and the pieces.

A piece not written yet (still ``...``), or one that fails its check, is
replaced by the reference solution (`orchestrator.teaching.solutions`), and
the notebook says so. So every notebook runs on its own, in any order, and
ends with a file that works.
"""

from __future__ import annotations

import difflib
import html
import inspect
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from orchestrator.teaching.assembly import PIECE_HEADER, assemble
from orchestrator.teaching.checked_pieces import checked_piece, reference_piece
from orchestrator.teaching.checks import ExerciseCheckError
from orchestrator.teaching.exercise_cells import is_unwritten, is_unwritten_in
from orchestrator.teaching.piece_plan import (
    FIRST_STAGE,
    LAST_STAGE,
    PIECES,
    Piece,
    piece_written_in,
    pieces_of_stage,
)
from orchestrator.teaching.reader_answers import cell_source_defining, saved_piece, saved_source

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
# The reader's file is also kept here, beside the notebooks (ignored by git), so
# that it outlives the kernel's temporary workspace and can be registered and
# run outside the notebooks.
KEPT_FOLDER = "my_orchestrator"


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
        self.failed: set = set()  # this notebook's pieces whose last check failed

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
        source = cell_source_defining(piece_name)
        unwritten = is_unwritten_in(source, piece_name) if source else is_unwritten(function)
        if unwritten:
            piece = reference_piece(piece_name, "yours is not written yet")
            self.echo(reference_banner(name, piece.verified))
        else:
            if source is None:  # not in a notebook: the function's own source
                source = textwrap.dedent(inspect.getsource(function))
            try:
                piece = checked_piece(piece_name, source, f"written in notebook {self.stage}")
            except ExerciseCheckError:
                self.failed.add(piece_name)
                raise
            self.echo(yours_passed(name, piece.verified))
        self.failed.discard(piece_name)
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
            RuntimeError: an exercise of this notebook has not been checked yet,
                or its check failed.
        """
        missing = self.missing()
        failed = [name for name in missing if name in self.failed]
        if failed:
            raise RuntimeError(
                f"the check of {', '.join(failed)} failed above: correct it and run its cell and "
                "its check cell again (or put `...` back as its body: the reference then "
                "stands in)")
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
                    previous[name] = Piece(name, saved_source(name, self.notebooks_dir), None,
                                           "reference", "as the previous notebook left it", [])
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
