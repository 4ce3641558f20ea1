"""Finding the reader's answers: in the saved notebooks, and in this kernel's inputs.

The pieces of earlier notebooks come from the notebooks the reader saved:
the exercise cells (tagged ``exercise``) of each piece's notebook, next to
this one, are read, and each piece found is run on its own and checked; a
piece not written yet, failing its check, or in a notebook that is missing
(renamed, copied) is replaced by the reference solution, with a note that
says why. This notebook's own answers come from the cell the reader just ran
(the kernel's latest input that defines the piece). Nothing here changes the
notebooks: they are only read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

from orchestrator.teaching.checked_pieces import (
    checked_piece,
    reference_piece,
    reference_source,
)
from orchestrator.teaching.checks import ExerciseCheckError
from orchestrator.teaching.exercise_cells import extract_piece, is_unwritten_in
from orchestrator.teaching.piece_plan import (
    EXERCISE_TAG,
    NOTEBOOK_FILES,
    PIECES,
    Piece,
    defined_name,
)


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


def saved_piece(name: str, notebooks_dir: Optional[Path]) -> Piece:
    """The reader's piece from the saved notebook where it is written, else the reference.

    The reference stands in, unchecked, when the notebook is missing, the
    piece is not written in it, or the reader's piece fails its check (the
    `Piece`'s note says which).

    Raises:
        ValueError: the notebook's file is not JSON.
    """
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


def saved_source(name: str, notebooks_dir: Optional[Path]) -> str:
    """A piece's text as saved in its notebook (not checked), else the reference's."""
    path = Path(notebooks_dir) / NOTEBOOK_FILES[PIECES[name]] if notebooks_dir else None
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


def cell_source_defining(name: str) -> Optional[str]:
    """The latest input of this IPython kernel that defines what piece `name` defines.

    Returns None outside IPython, or when no input defines it.
    """
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
