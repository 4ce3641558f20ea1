"""One attempt's output, followed while its container runs: kept, shown, its marker lines read.

The static runner (`runner`) and a dynamic run's isolated steps
(`isolated_containers`) follow a step container's output the same way, with
`step_logs`'s pieces: every byte goes to the attempt's log file exactly as
printed (`StepLogFile`); the client's log gets it as lines (`LineSplitter`: a
progress bar's carriage returns fold into one line), tracebacks folded to
their exception line (`TracebackFolder`); the last lines shown are kept for a
failure message. The orchestrator's marker lines ("ready", "done", see
`step_entrypoint`) are neither: `MarkerFilter` takes them out and the caller
gets their words. Every byte is handled once, so a step that prints without
end costs time in proportion to what it printed.
"""

from __future__ import annotations

import collections
import json
from dataclasses import dataclass
from typing import Any, Callable, Deque, Dict, List, Optional

from orchestrator.running.containers import StepContainer
from orchestrator.running.step_logs import LineSplitter, MarkerFilter, StepLogFile, TracebackFolder

# How many of the lines shown are kept for a failure message (which shows the
# last few that mean something: `run_outcome.FAILURE_TAIL_LINES`).
SHOWN_LINES_KEPT = 32


@dataclass
class AttemptOutput:
    """What an attempt printed, as far as its end is concerned.

    Attributes:
        folder: the traceback folder its lines went through (its `exception`
            is the last exception line the step printed).
        shown: its last lines as the client's log showed them.
    """

    folder: TracebackFolder
    shown: Deque[str]

    @property
    def last_lines(self) -> tuple:
        return tuple(self.shown)


def follow_output(container: StepContainer, log_file: StepLogFile, *,
                  show_line: Callable[[str], None], done_marker: Optional[str] = None,
                  on_marker: Callable[[str], None] = lambda words: None) -> AttemptOutput:
    """Stream a container's output until its stream ends; the log file is closed after.

    Args:
        container: the attempt's started container.
        log_file: the attempt's log file (closed when this returns or raises).
        show_line: called with each line the client's log shows.
        done_marker: the run's marker (`RunPlan.done_marker`); None: there are
            no marker lines, every byte is the step's.
        on_marker: called with the words of each marker line (its kind, a
            space, what it reports), in the order they came.

    Raises:
        whatever `StepContainer.follow_output` raises (an engine that stopped
        answering for longer than `containers.ENGINE_RETRY_SECONDS`).
    """
    folder = TracebackFolder()
    markers = MarkerFilter(done_marker)
    lines = LineSplitter()
    shown: Deque[str] = collections.deque(maxlen=SHOWN_LINES_KEPT)

    def show(new_lines: List[str]) -> None:
        for line in new_lines:
            if not line.strip():
                continue
            container.keep_tail(line)
            for visible in folder.feed(line):
                shown.append(visible)
                show_line(visible)

    def on_chunk(chunk: bytes) -> None:
        for piece in markers.feed(chunk):
            if isinstance(piece, bytes):
                log_file.write_bytes(piece)
                show(lines.feed(piece))
            else:
                on_marker(piece)

    try:
        container.follow_output(on_chunk)
        held = markers.rest()
        log_file.write_bytes(held)
        show(lines.feed(held) + lines.rest())
    finally:
        log_file.close()
    return AttemptOutput(folder, shown)


def parse_report(text: str) -> Optional[Dict[str, Any]]:
    """The stage times a done line carries (JSON, see `step_entrypoint`), if readable."""
    try:
        report = json.loads(text.strip())
    except ValueError:
        return None
    return report if isinstance(report, dict) else None
