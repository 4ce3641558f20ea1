"""A live panel of a pipeline run's steps, for JupyterLab (ipywidgets 8).

The panel is a view over the status model of `orchestrator.status`: one row
per step in pipeline order with a coloured state badge, its container, timings,
exit code and last log line; a progress bar with counts; the run's name and
outcome. It updates from the background threads of `orchestrator.status.watcher`,
so the kernel is never blocked and the user writes no threads. (Widget changes
made from a background thread reach the browser while a cell is still
executing: the browser test checks this.)

In a notebook, watch the run the next cell starts::

    from orchestrator.status.widget import live_panel

    with live_panel():
        my_pipeline()        # the panel appears above and updates live

or attach to a run started elsewhere (another process, a terminal)::

    watch_run("latest")      # or a run's name or id; None waits for the next run

The panel stops updating and releases its threads and Docker connection when
the run is over, failed runs included. Outside a notebook kernel (a terminal,
a script) the same calls print each step's change of state as a line and the
final table; `repr(panel)` is always the plain-text table. For a live table in
a terminal see `orchestrator.status.cli.follow_in_terminal`.
"""

from __future__ import annotations

import html
import sys
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, Optional

from orchestrator.status.model import SUMMARY_ORDER, RunStatus, StepPhase, StepStatus
from orchestrator.status.records import resolve_run
from orchestrator.status.text import TerminalPrinter, format_clock, format_duration, render_text
from orchestrator.status.watcher import DockerEvents, NextRun, RunWatcher

# Badge colours: (background, text). Final states are saturated, waiting ones pale.
BADGE_COLOURS: Dict[StepPhase, tuple] = {
    StepPhase.PENDING: ("#e0e0e0", "#424242"),
    StepPhase.WAITING: ("#eeeeee", "#757575"),
    StepPhase.STARTING: ("#b3e5fc", "#01579b"),
    StepPhase.RUNNING: ("#1e88e5", "#ffffff"),
    StepPhase.RETRYING: ("#fb8c00", "#ffffff"),
    StepPhase.COMPLETED: ("#2e7d32", "#ffffff"),
    StepPhase.FAILED: ("#c62828", "#ffffff"),
    StepPhase.SKIPPED: ("#9e9e9e", "#ffffff"),
    StepPhase.STOPPED: ("#6a1b9a", "#ffffff"),
    StepPhase.CACHED: ("#00838f", "#ffffff"),
}
OUTCOME_COLOURS = {
    "completed": BADGE_COLOURS[StepPhase.COMPLETED],
    "failed": BADGE_COLOURS[StepPhase.FAILED],
    "stopped": BADGE_COLOURS[StepPhase.STOPPED],
    "running": BADGE_COLOURS[StepPhase.RUNNING],
}
_BAR_STYLE = {"completed": "success", "failed": "danger", "stopped": "warning"}
WAITING_TITLE = "waiting for a pipeline run to start…"


def in_notebook_kernel() -> bool:
    """Whether we run in a Jupyter kernel, where widgets can be shown."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def badge(text: str, colours: tuple) -> str:
    background, foreground = colours
    return (f'<span class="md-badge" style="background:{background};color:{foreground};'
            'border-radius:9px;padding:1px 8px;font-size:11px;font-weight:600;'
            f'white-space:nowrap">{html.escape(text)}</span>')


def header_html(status: RunStatus) -> str:
    """The run's name, pipeline and outcome."""
    if not status.run_id:
        return (f'<div style="font-size:14px"><b>{html.escape(status.error or WAITING_TITLE)}'
                '</b></div>')
    outcome = status.outcome
    colours = OUTCOME_COLOURS.get(outcome, BADGE_COLOURS[StepPhase.PENDING])
    pipeline = (f'<span style="color:#616161">pipeline</span> <b>{html.escape(status.pipeline_name)}</b>'
                f' &nbsp;·&nbsp; ' if status.pipeline_name else "")
    return (f'<div style="font-size:14px">{pipeline}<span style="color:#616161">run</span> '
            f'<code>{html.escape(status.run_name or status.run_id)}</code> &nbsp;'
            f'{badge(outcome, colours)}</div>')


def counts_html(status: RunStatus) -> str:
    """'3/4 steps finished: 2 completed, …' with each count in its colour."""
    counts = status.counts()
    parts = [badge(f"{counts[phase]} {phase.value}", BADGE_COLOURS[phase])
             for phase in SUMMARY_ORDER if counts.get(phase)]
    text = (f'<span class="md-progress"><b>{status.finished_count}/{len(status.steps)}</b> '
            f'steps finished</span> &nbsp;{" ".join(parts)}')
    if status.error:
        text += (f'<div style="color:#c62828;font-size:12px">⚠ '
                 f'{html.escape(status.error)}</div>')
    return text


_CELL = "padding:3px 10px 3px 0;text-align:left;vertical-align:middle"
_HEAD = _CELL + ";color:#616161;font-weight:600;border-bottom:1px solid #e0e0e0"


def table_html(status: RunStatus, now: Optional[float] = None) -> str:
    """One row per step, in pipeline order."""
    heads = ["step", "state", "try", "container", "started", "duration", "exit", "last log line"]
    rows = ["<tr>" + "".join(f'<th style="{_HEAD}">{h}</th>' for h in heads) + "</tr>"]
    for step in status.steps:
        rows.append(_row_html(step, now))
    return ('<table class="md-steps" style="border-collapse:collapse;font-size:12.5px;'
            'width:100%;table-layout:auto">' + "".join(rows) + "</table>")


def _row_html(step: StepStatus, now: Optional[float]) -> str:
    line = step.last_line or step.reason
    line_style = ("color:#9e9e9e;font-style:italic" if not step.last_line else "color:#424242")
    exit_code = "" if step.exit_code is None else str(step.exit_code)
    exit_style = "color:#c62828;font-weight:600" if step.exit_code not in (None, 0) else ""
    cells = [
        f'<td style="{_CELL};font-weight:600">{html.escape(step.name)}</td>',
        f'<td style="{_CELL}">{badge(step.phase.value, BADGE_COLOURS[step.phase])}</td>',
        f'<td style="{_CELL}">{step.attempt or ""}</td>',
        f'<td style="{_CELL}"><code>{html.escape(step.container_id or "")}</code></td>',
        f'<td style="{_CELL}">{format_clock(step.start_time)}</td>',
        f'<td style="{_CELL};font-variant-numeric:tabular-nums">'
        f'{format_duration(step.duration(now))}</td>',
        f'<td style="{_CELL};{exit_style}">{exit_code}</td>',
        f'<td style="{_CELL};max-width:520px;overflow:hidden;text-overflow:ellipsis;'
        f'white-space:nowrap;font-family:monospace;font-size:11.5px;{line_style}" '
        f'title="{html.escape(line)}">{html.escape(line)}</td>',
    ]
    return f'<tr data-step="{html.escape(step.name)}" data-state="{step.phase.value}">' \
           + "".join(cells) + "</tr>"


class RunPanel:
    """The ipywidgets view of a `RunStatus`; `update` may be called from any thread.

    Renders at most every `min_interval` seconds (a burst of log lines
    becomes one redraw), and always renders the latest status last.
    """

    def __init__(self, status: Optional[RunStatus] = None, *, min_interval: float = 0.1) -> None:
        import ipywidgets as widgets

        self.min_interval = min_interval
        self.header = widgets.HTML()
        self.bar = widgets.IntProgress(min=0, max=1, value=0, bar_style="info",
                                       layout=widgets.Layout(width="100%", height="14px"))
        self.counts = widgets.HTML()
        self.table = widgets.HTML(layout=widgets.Layout(overflow="auto"))
        self.widget = widgets.VBox(
            [self.header, self.bar, self.counts, self.table],
            layout=widgets.Layout(border="1px solid #e0e0e0", padding="6px 10px",
                                  width="100%"),
        )
        self.widget.add_class("my-docker-run-panel")
        self._lock = threading.Lock()
        self._pending: Optional[RunStatus] = None
        self._timer: Optional[threading.Timer] = None
        self._last_render = 0.0
        self.rendered: Optional[RunStatus] = None  # the status last drawn
        self.on_render: Optional[Callable[[RunStatus], None]] = None
        self.render(status or RunStatus(run_id=""))

    def update(self, status: RunStatus) -> None:
        """Show `status` now, or within `min_interval` if the last redraw was very recent."""
        with self._lock:
            self._pending = status
            wait = self._last_render + self.min_interval - time.monotonic()
            if status.ended or wait <= 0:
                self._timer_cancel()
            elif self._timer is None:
                self._timer = threading.Timer(wait, self._flush)
                self._timer.daemon = True
                self._timer.start()
                return
            else:
                return
        self._flush()

    def _timer_cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _flush(self) -> None:
        with self._lock:
            status, self._pending, self._timer = self._pending, None, None
            if status is None:
                return
            self.render(status)

    def render(self, status: RunStatus, now: Optional[float] = None) -> None:
        """Draw `status` now, unthrottled; `update` is the entry point for watcher threads."""
        self.header.value = header_html(status)
        total = max(1, len(status.steps))
        self.bar.max = total
        self.bar.value = status.finished_count
        if status.ended:
            self.bar.bar_style = _BAR_STYLE.get(status.outcome, "info")
        else:
            self.bar.bar_style = "danger" if status.counts().get(StepPhase.FAILED) else "info"
        self.counts.value = counts_html(status) if status.run_id else ""
        self.table.value = table_html(status, now) if status.steps else ""
        self.rendered = status
        self._last_render = time.monotonic()
        if self.on_render is not None:
            self.on_render(status)


class LivePanel:
    """A panel bound to one run: the watcher (model) plus a view.

    In a notebook kernel the view is a `RunPanel` (ipywidgets); anywhere
    else it prints each step's change of state as a line (and the final
    table when the run is over). `repr()` is the plain-text table.
    """

    def __init__(self, *, poll_seconds: float = 1.0, widgets: Optional[bool] = None,
                 stream: Any = None) -> None:
        self.poll_seconds = poll_seconds
        self.watcher: Optional[RunWatcher] = None
        use_widgets = in_notebook_kernel() if widgets is None else widgets
        self.view: Optional[RunPanel] = RunPanel() if use_widgets else None
        self._printer = None if use_widgets else TerminalPrinter(
            stream or sys.stdout, tty=False, color=False)
        self._finder: Optional[threading.Thread] = None
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._next: Optional[NextRun] = None
        self._placeholder = RunStatus(run_id="")

    # -- the model -------------------------------------------------------------
    @property
    def status(self) -> RunStatus:
        """The run's status now (an empty placeholder until a run is found)."""
        watcher = self.watcher
        return watcher.status if watcher is not None else self._placeholder

    def _show(self, status: RunStatus) -> None:
        if self.view is not None:
            self.view.update(status)
        elif self._printer is not None and status.run_id:
            self._printer.show(status)

    def attach(self, run: Any, events: Optional[DockerEvents] = None) -> "LivePanel":
        """Follow `run` (a ZenML run, its id or name, or "latest").

        Args:
            events: Docker's event stream, already open (see `NextRun`).
        """
        found = resolve_run(run) if isinstance(run, str) else run
        with self._lock:
            if self.watcher is not None:
                if events is not None:
                    events.close()
                return self
            self.watcher = RunWatcher(found, poll_seconds=self.poll_seconds, events=events)
        self.watcher.subscribe(self._show)
        self.watcher.subscribe(self._when_ended)
        self._show(self.watcher.status)
        self.watcher.start()
        return self

    def attach_next(self, timeout: Optional[float] = None) -> "LivePanel":
        """Follow the next run started after this call, found in the background."""
        self._next = NextRun()

        def find() -> None:
            try:
                run = self._next.wait(timeout=timeout, poll_seconds=0.25, cancel=self._cancel)
                if run is not None and not self._cancel.is_set():
                    self.attach(run, events=self._next.take_events())
            finally:
                self._next.close()

        self._finder = threading.Thread(target=find, name="live-panel-find-run", daemon=True)
        self._finder.start()
        return self

    def _when_ended(self, status: RunStatus) -> None:
        if status.ended:
            self._finished(status)

    def _finished(self, status: RunStatus) -> None:
        with self._lock:
            printer, self._printer = self._printer, None
        if printer is not None:
            printer.final(status)

    def finish(self) -> RunStatus:
        """The pipeline call returned: take the final reading and stop watching."""
        self._cancel.set()
        if self._finder is not None:
            self._finder.join(timeout=10)
        if self.watcher is None and self._next is not None:
            run = self._next.find()  # started just before the end of the block
            if run is not None:
                self.attach(run)
        if self.watcher is None:
            self._placeholder = RunStatus(run_id="", error="no pipeline run was started")
            if self.view is not None:
                self.view.render(self._placeholder)
            return self._placeholder
        status = self.watcher.finish()
        if self.view is not None:
            self.view.update(status)
        self._finished(status)
        return status

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until the watched run is over; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.watcher is None:
            if self._cancel.is_set() or (deadline is not None and time.monotonic() > deadline):
                return False
            time.sleep(0.1)
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        return self.watcher.wait(remaining)

    def stop(self) -> None:
        """Stop following (the run goes on); releases threads and connections."""
        self._cancel.set()
        if self.watcher is not None:
            self.watcher.stop()

    # -- display -------------------------------------------------------------
    def text(self) -> str:
        status = self.status
        if not status.run_id:
            return f"({status.error or WAITING_TITLE})"
        return render_text(status)

    def __repr__(self) -> str:
        return self.text()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.text())

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Dict[str, Any]:
        bundle: Dict[str, Any] = {}
        if self.view is not None:
            bundle = dict(self.view.widget._repr_mimebundle_(include=include, exclude=exclude)
                          or {})
        bundle["text/plain"] = self.text()
        return bundle

    def display(self) -> "LivePanel":
        """Show the panel in the current cell's output (a notebook), or nothing."""
        if self.view is not None:
            from IPython.display import display

            display(self)
        else:
            print("Watching the pipeline run… (step changes are printed as they happen)",
                  flush=True)
        return self


@contextmanager
def live_panel(*, poll_seconds: float = 1.0, wait_timeout: Optional[float] = None,
               display: bool = True) -> Iterator[LivePanel]:
    """Show a live panel of the pipeline run started inside the `with` block.

    The panel follows the first run created after entering (ZenML's store is
    asked every 0.25 s; the run exists before its first container starts).
    When the block ends, normally or with the pipeline's exception, a final
    reading is taken and the watcher stops; the exception is not swallowed.

    Args:
        poll_seconds: how often ZenML is read (Docker events arrive at once).
        wait_timeout: stop looking for a run after this many seconds.
        display: show the panel at once (else use `panel.display()`).
    """
    panel = LivePanel(poll_seconds=poll_seconds)
    panel.attach_next(timeout=wait_timeout)
    if display:
        panel.display()
    try:
        yield panel
    finally:
        panel.finish()


def run_with_panel(pipeline: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call `pipeline(*args, **kwargs)` under a live panel; returns its result."""
    with live_panel():
        return pipeline(*args, **kwargs)


def watch_run(run: Optional[str] = "latest", *, poll_seconds: float = 1.0,
              wait_timeout: Optional[float] = None) -> LivePanel:
    """A live panel of a run started elsewhere (another process, a terminal).

    Shown when it is the last expression of a cell (or with `.display()`).

    Args:
        run: "latest", a run's name, id or id prefix; None for the next run
            started after this call.
        wait_timeout: with `run=None`, how long to look for the next run.
    """
    panel = LivePanel(poll_seconds=poll_seconds)
    if run is None:
        panel.attach_next(timeout=wait_timeout)
    else:
        panel.attach(run)
    return panel
