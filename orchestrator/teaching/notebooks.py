"""Small helpers the tutorial notebooks share, so each notebook stays about its topic.

Every notebook runs in a private ZenML workspace: its own ZenML config folder
(SQLite store and artifact store inside it) and its own project folder. That
keeps the notebooks independent of each other, of the order they run in, and
of the reader's own ZenML setup. ZenML reads ``ZENML_CONFIG_PATH`` when its
global configuration is first created (the first ``Client()``, pipeline call
or command in the process) and keeps it; `use_private_workspace` runs before
anything imports ``zenml``, to be safe (this module itself imports it only
inside functions). A terminal does not share the kernel's environment:
`terminal_command` gives the line to paste there, with the workspace's
``ZENML_CONFIG_PATH``.

The rest is presentation: showing the package's real source code, showing a
pipeline graph and a timeline of step runs as SVG (drawn by
`orchestrator.status.drawing`, the live panel's drawings), and printing a one-line JSON summary that tests read back from an
executed notebook.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

from orchestrator.machine.local_store import seed_local_store
from orchestrator.machine.stack import REFERENCE_COMMANDS, run_zenml
from orchestrator.machine.stack import register_stack as register_stack_in

# The drawings belong to the status package (the live panel draws them too);
# the notebooks import them from here under the same names as before.
from orchestrator.status.drawing import (  # noqa: F401
    STATE_COLOURS,
    dag_levels,
    dag_svg,
    timeline_svg,
)

__all__ = [
    "REFERENCE_COMMANDS", "Workspace", "use_private_workspace", "current_workspace",
    "zenml_command", "terminal_command",
    "register_stack", "show_source", "dag_svg", "timeline_svg", "show_svg",
    "step_times", "max_overlap", "emit_summary", "read_summary",
]

# Tests find a notebook's results by this prefix in the executed notebook's output.
SUMMARY_PREFIX = "NOTEBOOK_SUMMARY "

_ENVIRONMENT = {
    "ZENML_ANALYTICS_OPT_IN": "false",
    # Plain log lines: readable in any viewer and easy to check.
    "ZENML_LOGGING_COLORS_DISABLED": "true",
    "ZENML_ENABLE_REPO_INIT_WARNINGS": "false",
    # Plain Python tracebacks: they name the failing line of the notebook.
    "ZENML_ENABLE_RICH_TRACEBACK": "false",
    # `!zenml ...` runs in a pseudo-terminal; a dumb one gets plain lines
    # instead of spinner animations that fill the cell's output.
    "TERM": "dumb",
}


@dataclass(frozen=True)
class Workspace:
    """Where one notebook keeps its ZenML state.

    Attributes:
        name: the notebook's name, used in folder names.
        root: the folder holding everything below.
        config_dir: ``ZENML_CONFIG_PATH``: the SQLite store and artifact store.
        project_dir: the project folder (``zenml init`` runs here); the
            notebook's working directory, and the source root whose files
            ZenML sends to step containers.
        notebooks_dir: the folder the notebook was started in (its own
            folder in JupyterLab, nbmake and papermill), where the other
            notebooks of the tutorial are read from (`orchestrator.teaching.reader_answers`).
    """

    name: str
    root: Path
    config_dir: Path
    project_dir: Path
    notebooks_dir: Optional[Path] = None


_current: Optional[Workspace] = None


def use_private_workspace(name: str, root: Optional[str] = None) -> Workspace:
    """Give this Python process its own ZenML config and project folder.

    Sets the environment variables ZenML reads (``ZENML_CONFIG_PATH`` when its
    global configuration is first created), creates the
    folders and makes the project folder the working directory. Calling it
    again in the same kernel returns the same workspace.

    Args:
        name: a short name for the notebook (e.g. ``"01_setup"``).
        root: a folder to create the workspace in; by default a new temporary
            folder, so that two runs of the same notebook never share state.

    Raises:
        RuntimeError: zenml was imported before, with another (or no) private
            config: the kernel must be restarted.
    """
    global _current
    if _current is not None:
        os.chdir(_current.project_dir)
        return _current
    if "zenml" in sys.modules:
        raise RuntimeError(
            "zenml was imported before the private workspace was set up, so it "
            f"already uses the config at {os.environ.get('ZENML_CONFIG_PATH') or '~/.config/zenml'}. "
            "Restart the kernel and run the notebook from the top."
        )
    if root:
        base = Path(root).expanduser().resolve() / name
        if base.exists() and any(base.iterdir()):
            raise RuntimeError(
                f"{base} is not empty: a workspace folder must start empty. "
                "Remove it or choose another root."
            )
        base.mkdir(parents=True, exist_ok=True)
    else:
        base = Path(tempfile.mkdtemp(prefix=f"my-docker-{name}-"))
    workspace = Workspace(
        name=name,
        root=base,
        config_dir=base / "zenml-config",
        project_dir=base / "project",
        notebooks_dir=Path.cwd(),
    )
    workspace.config_dir.mkdir(exist_ok=True)
    workspace.project_dir.mkdir(exist_ok=True)
    seed_local_store(workspace.config_dir)  # ZenML's store, ready (saves its creation)
    os.environ["ZENML_CONFIG_PATH"] = str(workspace.config_dir)
    os.environ.update(_ENVIRONMENT)
    # `!zenml ...` in a notebook must run the zenml of this kernel's Python.
    bin_dir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if path.split(os.pathsep)[:1] != [bin_dir]:
        os.environ["PATH"] = os.pathsep.join([bin_dir, path]) if path else bin_dir
    os.chdir(workspace.project_dir)
    _current = workspace
    return workspace


def current_workspace() -> Workspace:
    """The workspace `use_private_workspace` set up in this process.

    Raises:
        RuntimeError: none was set up yet.
    """
    if _current is None:
        raise RuntimeError("call use_private_workspace() first.")
    return _current


def zenml_command(command: str, echo: Callable[[str], None] = print,
                  exist_ok: bool = False) -> Any:
    """Run one ``zenml ...`` command line inside this process, showing it.

    It is the same command line interface a terminal runs, called in-process
    (`orchestrator.machine.stack.run_zenml`): a new ``zenml`` process costs
    several seconds just to import ZenML.

    Args:
        command: the command line, starting with ``zenml``.
        echo: where the command line is shown.
        exist_ok: a register command whose object already exists is not an
            error (so a notebook cell can be run twice).

    Raises:
        ValueError: the line does not start with ``zenml``.
        Exception: whatever the command raised (ZenML's own error).
    """
    import click
    from zenml.exceptions import EntityExistsError

    echo(f"$ {command}")
    sys.stdout.flush()
    try:
        return run_zenml(command, in_process=True)
    except (EntityExistsError, click.ClickException) as error:
        if not (exist_ok and (isinstance(error, EntityExistsError)
                              or "already exists" in str(error))):
            raise
        echo("  (already registered)")
        return None


def terminal_command(command: str, workspace: Optional[Workspace] = None) -> str:
    """`command` as a line to paste into a terminal that sees this notebook's ZenML state.

    A terminal does not share the kernel's environment: without the
    workspace's ``ZENML_CONFIG_PATH`` it reads ``~/.config/zenml``, where the
    notebook's stacks and runs are not.

    Raises:
        RuntimeError: no workspace yet.
    """
    import shlex

    workspace = workspace or _current
    if workspace is None:
        raise RuntimeError("call use_private_workspace() first.")
    return (f"cd {shlex.quote(str(workspace.project_dir))} && "
            f"ZENML_CONFIG_PATH={shlex.quote(str(workspace.config_dir))} "
            f"ZENML_ANALYTICS_OPT_IN=false {command}")


def register_stack(workspace: Optional[Workspace] = None,
                   echo: Callable[[str], None] = print) -> None:
    """``zenml init`` and the four reference commands in the workspace's project.

    Safe to run again: a command whose effect is already there is skipped
    (and says so), so re-running a notebook cell never fails on "already
    exists". See `orchestrator.machine.stack.register_stack`.

    Raises:
        RuntimeError: no workspace yet, or the registration failed.
    """
    workspace = workspace or _current
    if workspace is None:
        raise RuntimeError("call use_private_workspace() first.")
    register_stack_in(workspace.project_dir, echo=echo, in_process=True)


# --------------------------------------------------------------------------
# Showing code
# --------------------------------------------------------------------------


def show_source(obj: Any, lines: Optional[Tuple[int, int]] = None) -> Any:
    """Display the real source of a module, class or function, highlighted.

    Read from the installed package with `inspect`, so what a reader sees is
    what runs, never a copy that drifts. Outside a notebook it prints.

    Args:
        obj: what to show.
        lines: optionally only these (1-based, inclusive) lines of it.
    """
    if not (inspect.ismodule(obj) or inspect.isclass(obj) or inspect.isroutine(obj)):
        # ZenML's @step and @pipeline objects keep the decorated function.
        obj = getattr(obj, "entrypoint", obj)
    source, first = inspect.getsourcelines(obj)
    if lines is not None:
        start, end = lines
        source = source[start - 1:end]
        first += start - 1
    path = Path(inspect.getsourcefile(obj) or "?")
    try:
        shown = path.relative_to(Path(__file__).resolve().parents[1])
    except ValueError:
        shown = path.name
    header = f"# {shown}, lines {first}-{first + len(source) - 1}\n"
    text = header + "".join(source)
    try:
        from IPython.display import Code, display

        display(Code(text, language="python"))
    except ImportError:  # pragma: no cover - plain Python
        print(text)
    return None


# --------------------------------------------------------------------------
# Pictures (hand-made SVG: no plotting library is needed)
# --------------------------------------------------------------------------

def show_svg(svg: str) -> None:
    """Display an SVG string in a notebook (prints a note outside one)."""
    try:
        from IPython.display import SVG, display

        display(SVG(svg))
    except ImportError:  # pragma: no cover - plain Python
        print(f"<svg of {len(svg)} characters>")


# --------------------------------------------------------------------------
# Reading runs
# --------------------------------------------------------------------------


class LogCollector(logging.Handler):
    """Keeps every message logged to one logger, for a notebook's checks.

    A notebook mechanic, kept out of the reader's way: notebook 2 counts the
    lines the reader's orchestrator logs before each step.
    """

    def __init__(self, logger_name: str) -> None:
        super().__init__()
        self.messages: List[str] = []
        logging.getLogger(logger_name).addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def take(self, prefix: str) -> List[str]:
        """The messages so far that start with `prefix`; then forget every message."""
        found = [message for message in self.messages if message.startswith(prefix)]
        self.messages.clear()
        return found


def step_times(run: Any, steps: Optional[Iterable[str]] = None) -> List[Tuple[str, float, float]]:
    """(step, start, end) of a run's finished steps, in seconds since the first start.

    The times are ZenML's: recorded inside each step's container around the
    step function, so they leave out container start and ``import zenml``.
    """
    wanted = set(steps) if steps is not None else None
    found = [
        (name, step.start_time, step.end_time)
        for name, step in run.steps.items()
        if (wanted is None or name in wanted) and step.start_time and step.end_time
    ]
    if not found:
        return []
    origin = min(start for _, start, _ in found)
    rows = [(name, (s - origin).total_seconds(), (e - origin).total_seconds()) for name, s, e in found]
    return sorted(rows, key=lambda r: (r[1], r[0]))


def max_overlap(intervals: Iterable[Tuple[float, float]]) -> int:
    """The most intervals that are open at the same moment."""
    events = []
    for start, end in intervals:
        events.append((start, 1))
        events.append((end, -1))
    best = current = 0
    for _, change in sorted(events, key=lambda e: (e[0], e[1])):  # ends before starts on ties
        current += change
        best = max(best, current)
    return best


def emit_summary(summary: Mapping[str, Any]) -> None:
    """Print the notebook's results as one JSON line that tests read back."""
    print(SUMMARY_PREFIX + json.dumps(dict(summary), sort_keys=True, default=str))


def read_summary(notebook: Mapping[str, Any]) -> Dict[str, Any]:
    """The summary an executed notebook printed with `emit_summary` (an nbformat dict).

    Raises:
        LookupError: the notebook printed no summary (it did not run to the end).
    """
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            text = output.get("text", "")
            if isinstance(text, list):
                text = "".join(text)
            for line in text.splitlines():
                if line.startswith(SUMMARY_PREFIX):
                    return json.loads(line[len(SUMMARY_PREFIX):])
    raise LookupError("the notebook printed no summary line; did it run to the end?")
