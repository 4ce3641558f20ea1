"""One step's log in the live panel, and which step and attempt the panel shows.

`StepLogView` is one step's tab in the panel's log area: a title line and a
box that keeps the end of the output in view. It reads the attempt's log
file as the runner keeps it (`orchestrator.status.logs.LogTail`, polled at
each redraw: no thread of its own) and draws it with
`orchestrator.status.panel_html.log_html`. `attempts_of`, `find_step` and
`default_log_step` are the pure choices over a `RunStatus` that the panel's
view (`orchestrator.status.panel_view`) makes with them. Kept apart from the
view so that the view's module says how the panel is laid out and updated,
and this one how a step's output is followed.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from orchestrator.status.logs import LogTail, log_path
from orchestrator.status.model import RunStatus, StepPhase, StepStatus
from orchestrator.status.panel_html import attempt_word, log_html
from orchestrator.status.text import format_clock


class StepLogView:
    """One step's log in the panel: a title line and a box that keeps its end in view.

    The box is the HTML widget's own element, which the browser keeps from
    one redraw to the next (only its content is replaced), laid out as a
    reversed column: its scroll position counts from the end, so the end
    stays in view as lines come (a failed step's log opens on its last
    lines, the exception), and a reader who scrolled up stays as far from
    the end as they were instead of being taken back to it.
    """

    def __init__(self, widgets: Any) -> None:
        """Args:
            widgets: the `ipywidgets` module (imported by the panel, not here).
        """
        self.title = widgets.HTML()
        self.title.add_class("md-log-title-box")
        self.text = widgets.HTML(layout=widgets.Layout(
            max_height="340px", overflow="auto", display="flex",
            flex_flow="column-reverse", border="1px solid #e0e0e0"))
        self.text.add_class("md-log-view")
        self.box = widgets.VBox([self.title, self.text])
        self.tail: Optional[LogTail] = None
        self.key: Optional[Tuple[str, str, int]] = None
        self.live = False

    def forget(self) -> None:
        """Read the log file again from its start at the next `draw`."""
        self.key, self.tail = None, None

    def html(self) -> str:
        """The HTML shown: the title line, then the text box's content."""
        return self.title.value + self.text.value

    def close(self) -> None:
        """Close the view's widgets (the browser forgets them)."""
        for widget in (self.title, self.text, self.box):
            if widget.comm is not None:
                widget.close()

    def draw(self, status: RunStatus, step: StepStatus, number: int) -> None:
        """Show attempt `number` of `step` of the run in `status`: all of its output
        at first, then only what the file gained since the last call.

        A log folder that cannot be found (no ZenML configuration) or a file not
        written (yet) is said in the box; nothing is raised.
        """
        key = (status.run_id, step.name, number)
        changed = False
        if key != self.key or self.tail is None:
            self.key = key
            try:
                self.tail = LogTail(log_path(status.run_id, step.name, number))
            except Exception:  # noqa: BLE001 - no ZenML configuration to find the folder
                self.tail = None
            changed = True
        tail = self.tail
        if tail is not None and tail.read_new():
            changed = True
        attempt = next((a for a in step.attempts if a.number == number), None)
        live = (attempt is not None and attempt.container_state in ("running", "created")
                and not status.ended)
        title = f"{step.name} · attempt {number}"
        if attempt is not None:
            title += " · " + attempt_word(step, attempt)
            if attempt.started_at:
                title += f" · started {format_clock(attempt.started_at)}"
        head, body = log_html(
            tail.text if tail is not None and changed else "", title=title,
            path=str(tail.path) if tail is not None else "",
            cut=tail.cut if tail is not None else 0, live=live,
            missing=tail is None or not tail.exists, parts=True)
        if self.title.value != head:  # (the attempt's phase changes without new output)
            self.title.value = head
        if changed or self.text.value == "" or self.live != live:
            self.live = live
            self.text.value = log_html(
                tail.text if tail is not None else "", title=title,
                cut=tail.cut if tail is not None else 0, live=live,
                missing=tail is None or not tail.exists, parts=True)[1]


def attempts_of(step: StepStatus) -> List[Tuple[int, Any]]:
    """(number, attempt record) of a step, latest first: its containers where seen,
    else ZenML's step runs."""
    numbers = [a.number for a in step.attempts] or list(
        range(1, max(step.zenml_attempts, len(step.zenml_runs), 1) + 1))
    records: Dict[int, Any] = {i + 1: run for i, run in enumerate(step.zenml_runs)}
    records.update({a.number: a for a in step.attempts})
    return [(number, records.get(number)) for number in reversed(numbers)]


def find_step(status: RunStatus, name: Optional[str]) -> Optional[StepStatus]:
    """The step called `name` in `status`; None when `name` is None or not a step of the run."""
    if name is None:
        return None
    return next((step for step in status.steps if step.name == name), None)


def default_log_step(status: RunStatus) -> Optional[str]:
    """The step whose log a user most likely wants: the first failed, else a running
    one, else a stopped one (how the stop ended it)."""
    for phases in ((StepPhase.FAILED,), (StepPhase.RUNNING, StepPhase.RETRYING),
                   (StepPhase.STOPPED,)):
        for step in status.steps:
            if step.phase in phases and (step.attempts or step.zenml_runs):
                return step.name
    return None
