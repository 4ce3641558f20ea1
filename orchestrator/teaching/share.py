"""How much of the reader's final orchestrator file the reader writes.

``python -m orchestrator.teaching.share`` prints where the reader's file is
kept (beside the notebooks, `my_file.KEPT_FOLDER`), the code lines of each
piece the reader writes and of each stage's scaffolding, and, as its last
line, ``reader share: R of T code lines (P%)`` for the final file with every
reference solution in place (R: the code lines inside the pieces).

A code line is a line with code on it: blank lines, comment lines and
docstrings do not count, in the pieces or in the scaffolding alike.
"""

from __future__ import annotations

import argparse
import ast
import io
import tokenize
from pathlib import Path
from typing import Dict, List, Optional, Set

from orchestrator.teaching.assembly import reference_file
from orchestrator.teaching.checked_pieces import reference_source
from orchestrator.teaching.my_file import KEPT_FOLDER, MODULE
from orchestrator.teaching.piece_plan import FIRST_STAGE, LAST_STAGE, PIECES, UNTIL, pieces_of_stage


def _docstring_lines(tree: ast.AST) -> Set[int]:
    lines: Set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = getattr(node, "body", [])
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                lines.update(range(body[0].lineno, body[0].end_lineno + 1))
    return lines


def code_lines(source: str) -> int:
    """Lines that hold code: not blank, not only a comment, not part of a docstring."""
    import textwrap

    source = textwrap.dedent(source)
    docstrings = _docstring_lines(ast.parse(source))
    with_code: Set[int] = set()
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENDMARKER}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in skip:
            with_code.update(range(token.start[0], token.end[0] + 1))
    return len(with_code - docstrings)


def piece_lines() -> Dict[str, int]:
    """Code lines of each piece's reference solution."""
    return {name: code_lines(reference_source(name)) for name in PIECES}


def stage_table() -> List[Dict[str, int]]:
    """Per stage (notebook 2 to 6): the reader's lines written there, and the given lines."""
    pieces = piece_lines()
    rows = []
    for stage in range(FIRST_STAGE, LAST_STAGE + 1):
        total = code_lines(reference_file(stage))
        in_pieces = sum(pieces[name] for name in pieces_of_stage(stage))
        written_here = sum(pieces[name] for name, notebook in PIECES.items() if notebook == stage)
        rows.append({"stage": stage, "file": total, "pieces": in_pieces,
                     "written_here": written_here, "given": total - in_pieces})
    return rows


def kept_file(notebooks_dir: Optional[Path] = None) -> Path:
    """Where notebooks keep the reader's file (default: the repository's notebooks/)."""
    if notebooks_dir is None:
        notebooks_dir = Path(__file__).resolve().parents[2] / "notebooks"
    return Path(notebooks_dir) / KEPT_FOLDER / f"{MODULE}.py"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.teaching.share",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", type=Path, default=None,
                        help="the folder the notebooks ran in (default: the repository's)")
    args = parser.parse_args(argv)
    path = kept_file(args.notebooks)
    state = "" if path.exists() else "  (not written yet: run notebook 6 or 7 from this folder)"
    print(f"your file: {path}{state}")
    if path.exists():
        imports = [line.strip() for line in path.read_text().splitlines()
                   if line.strip().startswith(("import orchestrator", "from orchestrator"))]
        print("imports from the package: " + (", ".join(imports) if imports else "none"))
    pieces = piece_lines()
    print("pieces you write (code lines of the reference solution):")
    for name, count in pieces.items():
        until = UNTIL.get(name)
        later = f"  (in the file up to stage {until}; then a later version)" if until else ""
        print(f"  notebook {PIECES[name]}  {name:23} {count:3}{later}")
    print("per stage: the file's code lines, yours (written up to then), given")
    for row in stage_table():
        print(f"  stage {row['stage']}: {row['file']:4} lines, {row['pieces']:3} yours "
              f"({row['written_here']} written in notebook {row['stage']}), {row['given']:3} given")
    total = code_lines(reference_file(LAST_STAGE))
    mine = sum(pieces[name] for name in pieces_of_stage(LAST_STAGE))  # the final file's
    print(f"reader share: {mine} of {total} code lines ({100 * mine / total:.0f}%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
