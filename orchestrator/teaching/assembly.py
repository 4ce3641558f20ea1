"""Assembling ``my_orchestrator.py`` from a stage's scaffolding and the pieces.

The scaffolding of each stage (`scaffolds/stageN.py`, given) marks where each
piece goes with a ``# <<piece:NAME>>`` line; a method's mark is indented in
its class's body, and the method goes there indented, its cell's imports at
module level (above the ``your pieces`` ruler). Each piece is preceded by a
header comment that says whose it is. This module only builds the text: which
pieces to use is decided by the caller (`my_file.MyFile`, `reference_file`).
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path
from typing import Dict, List, Optional

from orchestrator.teaching.checked_pieces import reference_function, reference_source
from orchestrator.teaching.piece_plan import FIRST_STAGE, LAST_STAGE, Piece, pieces_of_stage

SCAFFOLDS = Path(__file__).with_name("scaffolds")
# The scaffolding's line above which the methods' imports go.
PIECES_RULER = "# ============================ your pieces"
# Each piece's header comment says where it came from (differently in each notebook).
PIECE_HEADER = "# ---- "


def assemble(stage: int, pieces: Dict[str, Piece]) -> str:
    """The text of ``my_orchestrator.py`` at `stage` with these pieces.

    Args:
        pieces: piece name -> `Piece`, for every piece the stage's scaffolding marks.

    Raises:
        ValueError: a stage without scaffolding.
        KeyError: a piece the scaffolding marks is not in `pieces`.
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
