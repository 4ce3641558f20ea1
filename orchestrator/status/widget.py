"""A live panel of a pipeline run, for JupyterLab (ipywidgets 8).

What Dagster's and Airflow's run views taught users to expect, over the
status model of `orchestrator.status`:

- the run's name and outcome, a progress bar with counts, a **Stop** button
  (with a confirmation; ZenML's own stop path, as `zenml pipeline runs stop`)
  and the **recent runs** (picking one shows that run instead);
- tabs: the **graph** of the run's own DAG, each step coloured by its phase;
  the **timeline**, one bar per attempt from its container's start to its
  exit; the **steps** table; the **resources**, CPU and memory of each
  container against its limits;
- the **log** of the step (and attempt) chosen below, its whole output so
  far, followed while it runs.

It updates from the background threads of `orchestrator.status.watcher`,
so the kernel is never blocked and the user writes no threads (widget
changes made from a background thread reach the browser while a cell is
still executing: the browser test checks this). Redraws are throttled, more
so the longer a redraw takes (a 100-step pipeline), and only the tab shown
is drawn.

In a notebook, watch the run the next cell starts::

    from orchestrator.status.widget import live_panel

    with live_panel():
        my_pipeline()        # the panel appears above and updates live

or attach to a run started elsewhere (another process, a terminal)::

    watch_run("latest")      # or a run's name or id; None waits for the next run

The panel stops updating and releases its threads and Docker connections when
the run is over (failed runs included), when another run is picked, or when
the widget is closed (`panel.close()`). Outside a notebook kernel (a terminal,
a script) the same calls print each step's change of state as a line and the
final table; `repr(panel)` is always the plain-text table. For a live table
in a terminal see `orchestrator.status.cli.follow_in_terminal`.

This module is the panel's controller and its entry points: `LivePanel`
finds and follows a run (a `RunWatcher`), switches runs, finishes, and
carries out the Stop button's action; `RunPanel` feeds the view from the
watcher's threads, throttled; `live_panel`, `run_with_panel` and `watch_run`
are what a notebook calls. The widgets and their drawing are
`orchestrator.status.panel_view`'s, the HTML of each part
`orchestrator.status.panel_html`'s.
"""

from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from orchestrator.status.docker_events import DockerEvents
from orchestrator.status.drawing import esc
from orchestrator.status.model import RunStatus
from orchestrator.status.next_run import NextRun
from orchestrator.status.panel_html import WAITING_TITLE
from orchestrator.status.panel_view import PanelView
from orchestrator.status.text import TerminalPrinter, render_text
from orchestrator.status.watcher import RunWatcher
from orchestrator.zenml_records import resolve_run

# How often the recent runs are read again while a run is followed (seconds).
RECENT_RUNS_SECONDS = 10.0
# A redraw may take at most this share of the time between redraws: a big
# pipeline is redrawn less often instead of keeping a core busy.
_MAX_DRAW_SHARE = 0.25


def in_notebook_kernel() -> bool:
    """Whether we run in a Jupyter kernel, where widgets can be shown."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class RunPanel(PanelView):
    """The panel's view as the watcher's threads drive it: `update` may be called
    from any thread.

    Renders at most every `min_interval` seconds (longer when a redraw is
    slow; a burst of log lines becomes one redraw), and always renders the
    latest status last. A confirmed stop runs `on_stop` on a thread of its
    own (ZenML's stop path blocks up to the run's grace period), so the
    kernel stays free. Everything drawn is `PanelView`'s.
    """

    def __init__(self, status: Optional[RunStatus] = None, *, min_interval: float = 0.1,
                 hidden_interval: float = 1.0) -> None:
        """Args:
            status: the first status to show (default: "waiting for a run").
            min_interval: seconds between redraws at least (a slow redraw
                makes it longer).
            hidden_interval: seconds between redraws of the tabs not shown.
        """
        self.min_interval = min_interval
        self._pending: Optional[RunStatus] = None
        self._timer: Optional[threading.Timer] = None
        super().__init__(status, hidden_interval=hidden_interval)

    # -- updates, throttled ------------------------------------------------------
    def update(self, status: RunStatus) -> None:
        """Show `status` now, or soon if the last redraw was very recent."""
        with self._lock:
            self._pending = status
            interval = max(self.min_interval, self.draw_seconds / _MAX_DRAW_SHARE)
            wait = self._last_render + interval - time.monotonic()
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

    def close(self, widgets: bool = False) -> None:
        """Cancel a pending redraw; with `widgets`, close every widget of the panel too."""
        with self._lock:
            self._timer_cancel()
            self._pending = None
        if widgets:
            self.close_widgets()

    def block_ended(self, status: Optional[RunStatus]) -> None:
        """The `live_panel` block ended: a pending redraw is dropped for `status`
        (None: nothing new), drawn at once, then Stop is allowed (`PanelView.block_ended`)."""
        with self._lock:
            if status is not None:
                self._timer_cancel()
                self._pending = None
            super().block_ended(status)

    # -- the stop's action ---------------------------------------------------------
    def _carry_out_stop(self) -> None:
        """Stop the run off the kernel's thread, and say how it went in the panel."""
        threading.Thread(target=super()._carry_out_stop, name="live-panel-stop",
                         daemon=True).start()


def _still_running(run_id: str) -> bool:
    """Whether ZenML's record says the run goes on (a run submitted with synchronous=False)."""
    from orchestrator.zenml_records import run_status

    try:
        return not run_status(run_id).is_finished
    except Exception:  # noqa: BLE001 - a busy store: take it as over, as before
        return False


def recent_run_choices(limit: int = 10) -> List[Tuple[str, str]]:
    """The latest runs of this ZenML store as (label, run id), newest first.

    The label is "name · status · started HH:MM:SS".
    """
    from orchestrator.zenml_records import recent_runs

    choices = []
    for run in recent_runs(limit):
        status = str(getattr(run.status, "value", run.status))
        created = getattr(run, "created", None)
        when = created.strftime("%H:%M:%S") if created is not None else ""
        choices.append((f"{run.name} · {status} · {when}", str(run.id)))
    return choices


class LivePanel:
    """A panel bound to one run: the watcher (model) plus a view.

    In a notebook kernel the view is a `RunPanel` (ipywidgets); anywhere
    else it prints each step's change of state as a line (and the final
    table when the run is over). `repr()` is the plain-text table.
    """

    def __init__(self, *, poll_seconds: float = 1.0, widgets: Optional[bool] = None,
                 stream: Any = None, recent: int = 10) -> None:
        self.poll_seconds = poll_seconds
        self.recent = recent
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
        self._run: Any = None
        self._runs_read_at = 0.0
        self.closed = False
        if self.view is not None:
            self.view.on_stop = self.stop_run
            self.view.on_pick_run = self._picked
            self.view.on_refresh_runs = self.refresh_recent_runs
            self.view.stop_grace = self._stop_grace
            self.view.widget.observe(self._widget_closed, names="comm")

    # -- the model -------------------------------------------------------------
    @property
    def status(self) -> RunStatus:
        """The run's status now (an empty placeholder until a run is found)."""
        watcher = self.watcher
        return watcher.status if watcher is not None else self._placeholder

    def _show(self, status: RunStatus) -> None:
        if self.view is not None:
            if self.watcher is not None and status.run_id != self.watcher.run_id:
                return  # a watcher we left behind (another run was picked)
            self.view.update(status)
            if time.monotonic() - self._runs_read_at > RECENT_RUNS_SECONDS:
                self.refresh_recent_runs(background=True)
        elif self._printer is not None and status.run_id:
            self._printer.show(status)

    def attach(self, run: Any, events: Optional[DockerEvents] = None) -> "LivePanel":
        """Follow `run` (a ZenML run, its id or name, or "latest").

        Args:
            events: Docker's event stream, already open (see `NextRun`).
        """
        found = resolve_run(run) if isinstance(run, str) else run
        with self._lock:
            if self.watcher is not None or self.closed:
                if events is not None:
                    events.close()
                return self
            self._run = found
            self.watcher = RunWatcher(found, poll_seconds=self.poll_seconds, events=events)
        self._follow(self.watcher)
        return self

    def _follow(self, watcher: RunWatcher) -> None:
        watcher.subscribe(self._show)
        watcher.subscribe(self._when_ended)
        self._show(watcher.status)
        watcher.start()
        if self.view is not None:
            self.refresh_recent_runs(background=True)

    def attach_next(self, timeout: Optional[float] = None, *,
                    started_here: bool = False) -> "LivePanel":
        """Follow the next run started after this call (by this process, if
        `started_here`), found in the background."""
        self._next = NextRun(started_here=started_here)
        if self.view is not None:
            self.refresh_recent_runs(background=True)

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

    def switch_to(self, run: Any) -> "LivePanel":
        """Show another run instead (a ZenML run, its id or name): as `watch_run(run)` would.

        The current run's watcher is stopped first (the run itself goes on).
        """
        found = resolve_run(run) if isinstance(run, str) else run
        self._cancel.set()  # no longer looking for the next run
        with self._lock:
            old, self.watcher = self.watcher, None
        if old is not None:
            old.stop()
        with self._lock:
            if self.closed:
                return self
            self._run = found
            self.watcher = RunWatcher(found, poll_seconds=self.poll_seconds)
        self._follow(self.watcher)
        return self

    def _picked(self, run_id: str) -> None:
        """A run picked in the recent runs: switch in the background (the kernel stays free)."""
        if self.view is not None:
            self.view.show_message("Showing the run picked in recent runs…")

        def switch() -> None:
            try:
                self.switch_to(run_id)
            except Exception as error:  # noqa: BLE001 - shown in the panel
                if self.view is not None:
                    self.view.show_message(f"⚠ could not show that run: "
                                           f"{esc(str(error))}", error=True)
            else:
                if self.view is not None:
                    self.view.show_message("")

        threading.Thread(target=switch, name="live-panel-switch-run", daemon=True).start()

    def _when_ended(self, status: RunStatus) -> None:
        if status.ended:
            self._finished(status)
            if self.view is not None and self.watcher is not None \
                    and status.run_id == self.watcher.run_id:
                self.refresh_recent_runs(background=True)

    def _finished(self, status: RunStatus) -> None:
        with self._lock:
            printer, self._printer = self._printer, None
        if printer is not None:
            printer.final(status)

    def finish(self) -> RunStatus:
        """The pipeline call returned: take the final reading and stop watching.

        A run that goes on after its pipeline call returned (submitted with
        `synchronous=False`) is followed on until it is over.
        """
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
                self.view.block_ended(self._placeholder)
            return self._placeholder
        if _still_running(self.watcher.run_id):
            if self.view is not None:
                self.view.block_ended(None)  # the run goes on: Stop works from here
            return self.watcher.status  # detached: the watcher ends with the run
        status = self.watcher.finish()
        if self.view is not None:
            self.view.block_ended(status)
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

    def close(self) -> None:
        """Stop following and close the widgets: nothing of the panel is left running."""
        if self.closed:
            return
        self.closed = True
        self.stop()
        if self._next is not None:
            self._next.close()
        if self.view is not None:
            self.view.close(widgets=True)

    def _widget_closed(self, change: Dict[str, Any]) -> None:
        if change.get("new") is None:
            self.close()

    # -- actions -------------------------------------------------------------
    def stop_run(self) -> None:
        """Stop the watched run as `zenml pipeline runs stop` does (blocks up to the grace).

        Raises:
            orchestrator.StopRefused: ZenML refused (e.g. the
                run is already finished or being stopped).
            RuntimeError: no run is watched yet.
        """
        from orchestrator.status.control import stop_run

        if self.watcher is None:
            raise RuntimeError("no run is shown yet: nothing to stop")
        stop_run(self.watcher.run_id, graceful=True)

    def _stop_grace(self) -> int:
        from orchestrator.status.control import stop_grace_seconds
        from orchestrator.zenml_records import get_run

        return stop_grace_seconds(get_run(self.watcher.run_id, hydrate=True))

    def refresh_recent_runs(self, background: bool = False) -> None:
        """Read the latest runs again for the recent runs list.

        Done when a run is shown or ends, on the ↻ button, and every
        RECENT_RUNS_SECONDS while a run is followed.
        """
        if self.view is None:
            return
        self._runs_read_at = time.monotonic()

        def read() -> None:
            try:
                self.view.set_recent_runs(recent_run_choices(self.recent))
            except Exception as error:  # noqa: BLE001 - a busy store: the list waits
                self.view.show_message(f"⚠ could not read the recent runs: "
                                       f"{esc(str(error))}", error=True)

        if background:
            threading.Thread(target=read, name="live-panel-recent-runs", daemon=True).start()
        else:
            read()

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
        if self.view is not None and self.view.widget.comm is not None:
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

    The panel follows the first run this process starts after entering (ZenML's
    store is asked every 0.25 s; the run exists before its first container
    starts); a run another process starts on the same store meanwhile is not it.
    When the block ends, normally or with the pipeline's exception, a final
    reading is taken and the watcher stops; the exception is not swallowed.

    Args:
        poll_seconds: how often ZenML is read (Docker events arrive at once).
        wait_timeout: stop looking for a run after this many seconds.
        display: show the panel at once (else use `panel.display()`).
    """
    panel = LivePanel(poll_seconds=poll_seconds)
    if panel.view is not None:
        panel.view.set_busy(True)  # before a run can be found and drawn
    panel.attach_next(timeout=wait_timeout, started_here=True)
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

    Raises:
        LookupError: no run matches `run`.
    """
    panel = LivePanel(poll_seconds=poll_seconds)
    if run is None:
        panel.attach_next(timeout=wait_timeout)
    else:
        panel.attach(run)
    return panel
