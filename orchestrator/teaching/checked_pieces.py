"""A piece's code, the reader's or the reference's, run on its own and checked.

The file holds exactly the source of each piece, so each is checked as that
source executed on its own (a module of its own, with the stand-ins its check
needs; a method also sees the reference module's names, as in the file it sees
the module's). The reader's piece that passes its check becomes a `Piece` of
theirs; otherwise the reference solution (`orchestrator.teaching.solutions`,
or `class_solutions` for the classes) stands in, checked the same way.
"""

from __future__ import annotations

import inspect
import itertools
import sys
import types
from typing import Any, Dict, Optional

from orchestrator.teaching import solutions
from orchestrator.teaching.checks import CHECKS, STAND_INS, ExerciseCheckError
from orchestrator.teaching.class_solutions import CLASS_SOURCES
from orchestrator.teaching.piece_plan import METHODS, Piece, defined_name

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
