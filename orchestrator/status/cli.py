"""A run's step status in a terminal: `python -m orchestrator.status` and `follow_in_terminal`.

``python -m orchestrator.status [RUN|latest] [--follow] [--next] [--timeline]
[--logs]`` (the command runs `main` through `orchestrator.status`'s
``__main__``) prints a run's status table (and with ``--timeline`` its text
Gantt chart) once, or keeps it current until the run is over;
`follow_in_terminal` does the same from Python (the demo uses it). This module
only wires the pieces: `orchestrator.status.watcher` finds and follows the run,
`orchestrator.status.text` prints it.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, List, Optional, Sequence, TextIO

from orchestrator.status.model import RunStatus
from orchestrator.status.text import TerminalPrinter, render_text, render_timeline
from orchestrator.status.watcher import read_status, watcher_for


def follow_in_terminal(run: Optional[str] = None, stream: Optional[TextIO] = None, *,
                       poll_seconds: float = 1.0, wait_timeout: Optional[float] = None,
                       color: Optional[bool] = None, timeline: bool = False,
                       record: Optional[List[Dict[str, Any]]] = None) -> RunStatus:
    """Print a run's status table and keep it current until the run is over.

    On a terminal the table is redrawn in place; on a pipe or a file (CI
    logs) each step's change of state is printed as one line and the full
    table once at the end.

    Args:
        run: "latest", a run's id or name, or None for the next run started
            after this call (start the pipeline elsewhere, e.g. in another
            terminal or a subprocess).
        stream: where to print (sys.stdout by default).
        wait_timeout: how long to wait for the next run when `run` is None.
        timeline: also draw the text timeline (one bar per attempt).

    Returns:
        The final status.
    """
    stream = stream or sys.stdout
    tty = hasattr(stream, "isatty") and stream.isatty()
    color = tty if color is None else color
    if run is None:
        print("Waiting for the next pipeline run to start...", file=stream, flush=True)
    watcher = watcher_for(run, wait_timeout=wait_timeout, poll_seconds=poll_seconds,
                          record=record)
    printer = TerminalPrinter(stream, tty=tty, color=color, timeline=timeline)
    printer.show(watcher.status)
    watcher.subscribe(printer.show)
    try:
        watcher.wait()
    except KeyboardInterrupt:
        watcher.stop()
        raise
    finally:
        watcher.stop()
    printer.final(watcher.status)
    return watcher.status


def main(argv: Optional[Sequence[str]] = None) -> int:
    """`python -m orchestrator.status [RUN|latest] [--follow] [--next] [--timeline] [--logs]`."""
    parser = argparse.ArgumentParser(
        prog="python -m orchestrator.status",
        description="Show the status of a pipeline run's steps (their containers and "
                    "ZenML's record), once or live until the run is over.")
    parser.add_argument("run", nargs="?", default="latest",
                        help="run name, id or id prefix, or 'latest' (default)")
    parser.add_argument("--follow", "-f", action="store_true",
                        help="keep the table current until the run is over")
    parser.add_argument("--next", action="store_true",
                        help="wait for the next run to start and follow it")
    parser.add_argument("--wait-timeout", type=float, default=None, metavar="SECONDS",
                        help="with --next: give up after this long")
    parser.add_argument("--poll", type=float, default=1.0, metavar="SECONDS",
                        help="how often to read ZenML (Docker events arrive at once)")
    parser.add_argument("--timeline", "-t", action="store_true",
                        help="also draw a timeline: one bar per step attempt, from its "
                             "container's start to its exit")
    parser.add_argument("--logs", action="store_true",
                        help="print every step's full output (each attempt), as kept "
                             "by the orchestrator, instead of the table")
    parser.add_argument("--record", metavar="FILE",
                        help="write every input seen (Docker events, ZenML readings) "
                             "as JSON, for bug reports and test fixtures")
    args = parser.parse_args(argv)
    record: Optional[List[Dict[str, Any]]] = [] if args.record else None
    try:
        if args.logs:
            return print_logs(args.run)
        if args.follow or args.next:
            final = follow_in_terminal(None if args.next else args.run,
                                       poll_seconds=args.poll, timeline=args.timeline,
                                       wait_timeout=args.wait_timeout, record=record)
        else:
            final = read_status(args.run, record=record)
            print(render_text(final, color=sys.stdout.isatty()))
            if args.timeline:
                print()
                print(render_timeline(final, color=sys.stdout.isatty()))
    except LookupError as error:
        print(f"error: {error.args[0]}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        if not _is_unreachable_store(error):
            raise
        print(f"error: ZenML's store does not answer ({_store_url()}). "
              "If it is ZenML's local server, start it again (`zenml login --local`), or go "
              "back to the local SQLite store (`zenml logout`).", file=sys.stderr)
        return 2
    if args.record:
        with open(args.record, "w") as handle:
            json.dump(_recording(final, record or []), handle, indent=1, default=str)
    return 0


def _is_unreachable_store(error: BaseException) -> bool:
    """Whether `error` (or what caused it) is a connection to ZenML's server that failed."""
    import requests

    seen = error
    while seen is not None:
        if isinstance(seen, (requests.exceptions.ConnectionError, ConnectionError)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _store_url() -> str:
    try:
        from zenml.config.global_config import GlobalConfiguration

        return str(GlobalConfiguration().store_configuration.url)
    except Exception:  # noqa: BLE001 - shown without it then
        return "its URL unknown"


def print_logs(run: str, stream: Optional[TextIO] = None) -> int:
    """Print the kept output of every step attempt of `run`, in the order they started.

    A detached run's orchestration log (`orchestration.log`) comes first.

    Returns:
        0, or 2 when the orchestrator kept no log for the run.

    Raises:
        LookupError: no such run.
    """
    from orchestrator.running.orchestration_record import LOG_NAME
    from orchestrator.running.step_logs import run_log_dir
    from orchestrator.zenml_records import resolve_run

    stream = stream or sys.stdout
    found = resolve_run(run)
    folder = run_log_dir(str(found.id))
    files = sorted(folder.glob("*.log"),
                   key=lambda path: (path.name != LOG_NAME, path.stat().st_mtime)) \
        if folder.is_dir() else []
    if not files:
        print(f"error: no step output kept for run {found.name} (looked in {folder}); "
              "it did not run on the my_docker orchestrator, or ran before logs were kept.",
              file=sys.stderr)
        return 2
    for path in files:
        print(f"===== {path.stem} ({path}) =====", file=stream)
        stream.write(path.read_text(encoding="utf-8", errors="replace"))
    stream.flush()
    return 0


def _recording(status: RunStatus, inputs: List[Dict[str, Any]]) -> Dict[str, Any]:
    """A replayable record: the run's plan and every input, in order."""
    return {
        "run_id": status.run_id,
        "run_name": status.run_name,
        "pipeline_name": status.pipeline_name,
        "execution_mode": status.execution_mode,
        "steps": {s.name: {"upstream": list(s.upstream), "max_retries": s.max_retries}
                  for s in status.steps},
        "inputs": inputs,
    }
