"""Reading an exercise cell: what of it goes into the file, and whether it is written yet.

An exercise cell goes into ``my_orchestrator.py`` as it is (its imports,
constants, functions and classes; nothing that does something), like a step's
cell into a container; a method's cell gives only its ``def`` and its imports.
A piece is *unwritten* while its body is still a docstring and ``...``: then
the reference solution stands in. Both are read from the cell's syntax tree
(`ast`), never by running the cell, so that a cell that would fail can still be
told apart from one not written.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from typing import Any, List, Optional

from orchestrator.teaching.piece_plan import METHODS, defined_name


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

    `name` is a piece (see `piece_plan.PIECES`); the cell must define what the piece
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
    """A class whose body is only ``...``, or whose methods' bodies all are."""
    if _only_a_placeholder(node.body):
        return True
    methods = [item for item in node.body if isinstance(item, ast.FunctionDef)]
    return bool(methods) and all(_only_a_placeholder(item.body) for item in methods)
