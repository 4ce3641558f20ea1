"""The plan of the reader's ``my_orchestrator.py``: its pieces, and where and when each is in it.

A *piece* is what one exercise cell defines: a function, a method (written as
a function whose first argument is ``self``) or classes. This module owns the
table of pieces: the notebook that writes each (`PIECES`), the stages a piece
stays in the file (`UNTIL`), which pieces are methods and of which class
(`METHODS`), the notebook files the pieces are read from, and `Piece`, one
piece as a notebook's file holds it. Every other part of the reader's file
(reading cells, checking, assembling, the notebook's `MyFile`) reads this plan;
it depends on nothing, so it can be read without ZenML or IPython.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List

# The stages of the file: the notebooks that grow it, each with its scaffolding
# (scaffolds/stageN.py). Notebook 7 uses the last.
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
# notebook -> its file, where the pieces it writes are read from once it is saved.
NOTEBOOK_FILES = {
    2: "02_anatomy.ipynb",
    3: "03_one_container_per_step.ipynb",
    4: "04_scheduling.ipynb",
    5: "05_failures.ipynb",
    6: "06_watching_live.ipynb",
}
# The tag of the cells that hold the reader's pieces.
EXERCISE_TAG = "exercise"


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
        """The notebook where the reader writes this piece (2 to 6)."""
        return PIECES[self.name]


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
