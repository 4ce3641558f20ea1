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
"""

from __future__ import annotations

import html
import sys
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from orchestrator.status.docker_events import DockerEvents
from orchestrator.status.drawing import new_id_prefix
from orchestrator.status.logs import LogTail, kept_stage_times, log_path
from orchestrator.status.model import RunStatus, StepPhase, StepStatus
from orchestrator.status.next_run import NextRun
from orchestrator.status.panel_html import (  # noqa: F401 - public names of the panel
    BADGE_COLOURS,
    OUTCOME_COLOURS,
    WAITING_TITLE,
    attempt_word,
    badge,
    counts_html,
    graph_html,
    header_html,
    log_html,
    progress_colour,
    resources_html,
    table_html,
    timeline_html,
)
from orchestrator.status.records import resolve_run
from orchestrator.status.text import TerminalPrinter, format_clock, render_text
from orchestrator.status.watcher import RunWatcher

_BAR_STYLE = {"completed": "success", "failed": "danger", "stopped": "warning"}
# Rules the inline styles of widgets cannot say: the panel fits any width from
# 360 px (JupyterLab at 800 px with its file browser open leaves ~370 px).
PANEL_CSS = """<style>
.my-docker-run-panel { box-sizing: border-box; max-width: 100%; min-width: 0; }
.my-docker-run-panel .jupyter-widgets { box-sizing: border-box; min-width: 0; }
.my-docker-run-panel .widget-html-content { min-width: 0; }
.my-docker-run-panel .md-log-title-box .widget-html-content,
.my-docker-run-panel .md-timeline-tab .widget-html-content { line-height: 1.4; }
.my-docker-run-panel .md-header .widget-html-content { white-space: normal;
  line-height: 1.5; overflow-wrap: anywhere; }
.my-docker-run-panel .md-runs select { min-width: 0; }
.my-docker-run-panel .md-stop { flex: none !important; }
.my-docker-run-panel .md-log-view > .widget-html-content { flex: none; overflow: visible;
  height: auto; line-height: normal; }
.my-docker-run-panel .widget-tab, .my-docker-run-panel .jupyter-widget-tab { min-width: 0;
  max-width: 100%; }
.my-docker-run-panel .lm-TabBar-tab { min-width: 0 !important; }
.my-docker-run-panel .md-steps td.md-last-line { overflow-wrap: anywhere; }
</style>"""
TABS = ("graph", "timeline", "steps", "resources")
_TAB_TITLES = ("Graph", "Timeline", "Steps", "Resources")
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


def run_is_finished(status: RunStatus) -> bool:
    """Whether nothing can be stopped any more (the Stop button is disabled)."""
    return (not status.run_id or status.ended
            or status.zenml_status in ("completed", "failed", "stopped", "cancelled",
                                       "stopping", "cancelling")
            and not any(step.container_alive for step in status.steps))


class RunPanel:
    """The ipywidgets view of a `RunStatus`; `update` may be called from any thread.

    Renders at most every `min_interval` seconds (longer when a redraw is
    slow; a burst of log lines becomes one redraw), and always renders the
    latest status last. Actions are handed to callbacks set by the owner
    (`LivePanel`): `on_stop()` for a confirmed stop, `on_pick_run(run_id)`
    for a run picked in the recent runs, `on_refresh_runs()` for the ↻ button.

    Attributes:
        rendered: the status last drawn.
        draw_seconds: how long the last redraw took.
        on_render: called with each status drawn (tests, benchmarks).
    """

    def __init__(self, status: Optional[RunStatus] = None, *, min_interval: float = 0.1,
                 hidden_interval: float = 1.0) -> None:
        """Args:
            status: the first status to show (default: "waiting for a run").
            min_interval: seconds between redraws at least (a slow redraw
                makes it longer).
            hidden_interval: seconds between redraws of the tabs not shown.
        """
        import ipywidgets as widgets

        self.min_interval = min_interval
        self.on_stop: Optional[Callable[[], None]] = None
        self.on_pick_run: Optional[Callable[[str], None]] = None
        self.on_refresh_runs: Optional[Callable[[], None]] = None
        self.stop_grace: Optional[Callable[[], int]] = None
        self.on_render: Optional[Callable[[RunStatus], None]] = None
        self.rendered: Optional[RunStatus] = None
        self.draw_seconds = 0.0

        # -- the panel's own style rules (widths, wrapping), scoped by its classes
        self._css = widgets.HTML(PANEL_CSS, layout=widgets.Layout(display="none"))
        # -- the top row: run, outcome, recent runs, stop; it wraps on a narrow
        # page, the Stop button first to stay (it never shrinks)
        self.header = widgets.HTML(layout=widgets.Layout(flex="1 1 260px", min_width="0"))
        self.header.add_class("md-header")
        self.runs = widgets.Dropdown(options=[], value=None, description="recent runs",
                                     layout=widgets.Layout(flex="1 1 200px", width="auto",
                                                           max_width="340px", min_width="0"),
                                     style={"description_width": "initial"})
        self.runs.add_class("md-runs")
        self.refresh_runs = widgets.Button(icon="refresh", tooltip="read the recent runs again",
                                           layout=widgets.Layout(width="34px", flex="none"))
        self.stop_button = widgets.Button(description="Stop run", icon="stop",
                                          button_style="danger", disabled=True,
                                          tooltip="stop this run (asks first)",
                                          layout=widgets.Layout(width="110px", flex="none"))
        self.stop_button.add_class("md-stop")
        controls = widgets.HBox([self.runs, self.refresh_runs, self.stop_button],
                                layout=widgets.Layout(align_items="center", flex="1 1 300px",
                                                      justify_content="flex-end",
                                                      min_width="0", max_width="100%"))
        top = widgets.HBox([self.header, controls],
                           layout=widgets.Layout(align_items="center", flex_flow="row wrap"))
        # -- the confirmation, shown when Stop is clicked
        self.confirm_text = widgets.HTML()
        self.confirm_yes = widgets.Button(description="Stop the run", button_style="danger")
        self.confirm_yes.add_class("md-confirm-stop")
        self.confirm_no = widgets.Button(description="Cancel")
        self.confirm = widgets.HBox([self.confirm_text, self.confirm_yes, self.confirm_no],
                                    layout=widgets.Layout(display="none", align_items="center",
                                                          flex_flow="row wrap"))
        self.confirm.add_class("md-confirm")
        self.message = widgets.HTML()
        self.message.add_class("md-message")
        # -- progress
        self.bar = widgets.IntProgress(min=0, max=1, value=0, bar_style="info",
                                       layout=widgets.Layout(width="auto", height="14px"))
        self.counts = widgets.HTML()
        # -- the tabs
        self.graph = widgets.HTML()
        self.graph.add_class("md-graph-tab")
        self.timeline = widgets.HTML()
        self.timeline.add_class("md-timeline-tab")
        self.table = widgets.HTML(layout=widgets.Layout(overflow="auto"))
        self.table.add_class("md-steps-tab")
        self.resources = widgets.HTML()
        self.resources.add_class("md-resources-tab")
        self.tabs = widgets.Tab(children=[self.graph, self.timeline, self.table, self.resources],
                                titles=_TAB_TITLES)
        self.tabs.add_class("md-tabs")
        # -- the log of one step
        # One tab per step that started, each with its own log: a tab picked
        # while the kernel is busy (the cell running the pipeline) is shown by
        # the browser at once, as it already holds every step's log.
        self.log_tabs = widgets.Tab(children=[], titles=())
        self.log_tabs.add_class("md-log-tabs")
        self.log_attempt = widgets.Dropdown(
            options=[], value=None, description="attempt",
            layout=widgets.Layout(width="auto", max_width="100%"),
            style={"description_width": "initial"})
        self.log_attempt.add_class("md-log-attempt")
        self._log_hint = widgets.HTML(
            '<div style="color:#757575;font-size:12px">Each step\'s whole output, once '
            "it started: pick its tab below.</div>")
        log_box = widgets.VBox([self._log_hint, self.log_tabs, self.log_attempt])
        self._log_views: Dict[str, _LogView] = {}
        self._log_order: List[str] = []
        self._auto_log: Optional[str] = None  # the step the panel chose itself, last

        self.widget = widgets.VBox(
            [self._css, top, self.confirm, self.message, self.bar, self.counts, self.tabs,
             log_box],
            layout=widgets.Layout(border="1px solid #e0e0e0", padding="6px 10px",
                                  width="100%"),
        )
        self.widget.add_class("my-docker-run-panel")

        self._svg_ids = new_id_prefix("md")  # this panel's own ids in its drawings
        self._stages: Dict[Any, Any] = {}
        self._stages_of: Optional[str] = None
        self._lock = threading.RLock()
        self._pending: Optional[RunStatus] = None
        self._timer: Optional[threading.Timer] = None
        self._last_render = 0.0
        self._stale: Dict[str, bool] = dict.fromkeys(TABS, True)
        self._drawn_at: Dict[str, float] = dict.fromkeys(TABS, 0.0)
        self.hidden_interval = hidden_interval
        self.busy = False  # the kernel is busy running the pipeline: clicks wait for it
        self._log_chosen = False  # the user picked a step: no automatic choice any more
        self._attempt_chosen = False  # the user picked an attempt: it stays shown
        self._quiet = False  # set while options are changed by code, not by the user
        self._stopping = False

        self.stop_button.on_click(lambda _: self._ask_to_stop())
        self.confirm_yes.on_click(lambda _: self._confirmed_stop())
        self.confirm_no.on_click(lambda _: self._hide_confirmation())
        self.refresh_runs.on_click(lambda _: self.on_refresh_runs and self.on_refresh_runs())
        self.runs.observe(self._run_picked, names="value")
        self.tabs.observe(self._tab_changed, names="selected_index")
        self.log_tabs.observe(self._log_step_picked, names="selected_index")
        self.log_attempt.observe(self._log_attempt_picked, names="value")
        self.render(status or RunStatus(run_id=""))

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
            for part in self._all_widgets():
                if part.comm is not None:
                    part.close()

    def _all_widgets(self) -> List[Any]:
        """The panel's widgets, innermost first (the outer box last)."""
        found: List[Any] = []

        def visit(widget: Any) -> None:
            for child in getattr(widget, "children", ()):
                visit(child)
            found.append(widget)

        visit(self.widget)
        return found

    # -- drawing -----------------------------------------------------------------
    @property
    def selected_tab(self) -> str:
        return TABS[self.tabs.selected_index or 0]

    def render(self, status: RunStatus, now: Optional[float] = None) -> None:
        """Draw `status` now, unthrottled; `update` is the entry point for watcher threads.

        The tab shown is drawn every time; the others at most every
        `hidden_interval` seconds (and at once when picked, or when the run
        ends). They are drawn at all because a tab picked while the kernel
        is busy (the cell running the pipeline) is shown by the browser
        before the kernel hears of it.
        """
        with self._lock:
            started = time.perf_counter()
            previous = self.rendered
            new_run = previous is None or previous.run_id != status.run_id
            if new_run:
                self._new_run()
            self.header.value = header_html(status)
            self.bar.max = max(1, len(status.steps))
            self.bar.value = status.finished_count
            if status.ended:
                self.bar.bar_style = _BAR_STYLE.get(status.outcome, "info")
            else:
                self.bar.bar_style = "danger" if status.counts().get(StepPhase.FAILED) else "info"
            # The bar_style names the kind; the colour is the header badge's own.
            self.bar.style.bar_color = progress_colour(status)
            self.counts.value = counts_html(status) if status.run_id else ""
            shown, clock = self.selected_tab, time.monotonic()
            for tab in TABS:
                if tab == shown or new_run or status.ended \
                        or clock - self._drawn_at[tab] >= self.hidden_interval:
                    self._draw_tab(tab, status, now)
                else:
                    self._stale[tab] = True
            self._update_stop_button(status)
            self._update_log_choices(status)
            self._draw_log(status)
            if self.runs.value != (status.run_id or None) and status.run_id:
                self._select_run(status.run_id)
            self.draw_seconds = time.perf_counter() - started
            self._last_render = time.monotonic()
            # Told, then published, only once the whole status is drawn: whoever sees
            # `rendered` change (a test, the benchmark) sees a finished redraw.
            if self.on_render is not None:
                self.on_render(status)
            self.rendered = status

    def render_all(self, status: RunStatus, now: Optional[float] = None) -> None:
        """Draw `status` with every tab (tests, screenshots, the benchmark)."""
        with self._lock:
            self.render(status, now)
            for tab in TABS:
                if self._stale[tab]:
                    self._draw_tab(tab, status, now)

    def _draw_tab(self, tab: str, status: RunStatus, now: Optional[float]) -> None:
        if tab == "graph":
            self.graph.value = graph_html(status, self._svg_ids) if status.run_id else ""
        elif tab == "timeline":
            self.timeline.value = (timeline_html(status, now, self._stage_times(status))
                                   if status.run_id else "")
        elif tab == "steps":
            self.table.value = table_html(status, now) if status.steps else ""
        elif tab == "resources":
            self.resources.value = resources_html(status) if status.run_id else ""
        self._stale[tab] = False
        self._drawn_at[tab] = time.monotonic()

    def _stage_times(self, status: RunStatus) -> Dict[Any, Any]:
        """The containers' warm-up ends and gates, kept by the runner once the run ended.

        Read once per run (again while the file is not there yet); before the
        run ends the timeline draws "warm-up or waiting" where it cannot tell.
        """
        if not status.ended:
            return {}
        if self._stages_of != status.run_id:
            self._stages = kept_stage_times(status.run_id)
            if self._stages:
                self._stages_of = status.run_id
        return self._stages

    def _tab_changed(self, change: Dict[str, Any]) -> None:
        with self._lock:
            tab = self.selected_tab
            if self.rendered is not None and self._stale.get(tab, True):
                self._draw_tab(tab, self.rendered, None)

    # -- stop ----------------------------------------------------------------------
    def set_busy(self, busy: bool) -> None:
        """Whether this kernel is busy running the watched pipeline (a `live_panel` block).

        A click reaches the kernel only once the cell has run, so meanwhile
        the Stop button is off and says how to stop the run instead.
        """
        with self._lock:
            self.busy = busy
            self.stop_button.tooltip = (
                "This kernel is busy running the pipeline, so the button would wait for "
                "the run to end. Interrupt the kernel (the ■ button) to stop it now: the "
                "orchestrator stops and removes its containers. Runs started with "
                "synchronous=False, or in another process, stop here."
                if busy else "stop this run (asks first)")
            if self.rendered is not None:
                self._update_stop_button(self.rendered)

    def block_ended(self, status: Optional[RunStatus]) -> None:
        """The `live_panel` block ended: draw `status` (None: nothing new), then allow Stop.

        In that order, under one lock: were the button let on first, it would
        be on for a moment over a run that has ended but is not drawn so yet
        (a browser saw it on while the cell was still running).
        """
        with self._lock:
            if status is not None:
                self._timer_cancel()
                self._pending = None
                self.render(status)
            self.set_busy(False)

    def _update_stop_button(self, status: RunStatus) -> None:
        finished = run_is_finished(status)
        self.stop_button.disabled = (finished or self._stopping or self.on_stop is None
                                     or self.busy)
        if finished:
            self._hide_confirmation()
        if self._stopping and status.ended:
            self.show_message(f"Stopped on request: the run is {status.outcome}.")

    def _ask_to_stop(self) -> None:
        status = self.rendered
        if status is None or run_is_finished(status):
            return
        try:
            grace = self.stop_grace() if self.stop_grace is not None else None
        except Exception:  # noqa: BLE001 - shown without the number then
            grace = None
        after = f"after {grace} s" if grace is not None else "after the orchestrator's grace"
        self.confirm_text.value = (
            f'<span style="margin-right:10px">Stop run <b>{html.escape(status.run_name)}</b>? '
            f"Running steps get SIGTERM, then SIGKILL {after}; steps not started yet "
            "will not start.</span>")
        self.confirm.layout.display = "flex"

    def _hide_confirmation(self) -> None:
        self.confirm.layout.display = "none"

    def _confirmed_stop(self) -> None:
        self._hide_confirmation()
        if self.on_stop is None or self._stopping:
            return
        self._stopping = True
        self.stop_button.disabled = True
        self.show_message("Stopping the run… (the same as <code>zenml pipeline runs stop</code>)")

        def stop() -> None:
            try:
                self.on_stop()
            except Exception as error:  # noqa: BLE001 - shown in the panel
                self._stopping = False
                self.show_message(f"⚠ {html.escape(str(error))}", error=True)
                if self.rendered is not None:
                    self._update_stop_button(self.rendered)
            else:
                with self._lock:
                    status = self.rendered
                    if status is not None and status.ended:
                        self.show_message(f"Stopped on request: the run is {status.outcome}.")
                    else:
                        self.show_message(
                            "Stop requested (as <code>zenml pipeline runs stop</code>): the "
                            "run's containers are being stopped…")

        threading.Thread(target=stop, name="live-panel-stop", daemon=True).start()

    def show_message(self, text_html: str, error: bool = False) -> None:
        """A line under the top row (the stop's progress, a problem)."""
        colour = "#c62828" if error else "#424242"
        self.message.value = (f'<div style="font-size:12.5px;color:{colour}">{text_html}</div>'
                              if text_html else "")

    # -- recent runs ---------------------------------------------------------------
    def set_recent_runs(self, runs: Sequence[Tuple[str, str]]) -> None:
        """The runs to pick from, as (label, run id), newest first."""
        with self._lock:
            current = self.rendered.run_id if self.rendered is not None else None
            options = list(runs)
            if current and current not in [value for _, value in options]:
                name = self.rendered.run_name or current
                options.insert(0, (f"{name} (shown)", current))
            self._quiet = True
            try:
                self.runs.options = options
                self.runs.value = current if current in [v for _, v in options] else None
            finally:
                self._quiet = False

    def _select_run(self, run_id: str) -> None:
        if run_id in [value for _, value in self.runs.options]:
            self._quiet = True
            try:
                self.runs.value = run_id
            finally:
                self._quiet = False

    def _run_picked(self, change: Dict[str, Any]) -> None:
        if self._quiet or change["new"] is None or self.on_pick_run is None:
            return
        if self.rendered is not None and change["new"] == self.rendered.run_id:
            return
        self.on_pick_run(change["new"])

    def _new_run(self) -> None:
        """Another run is shown: forget the logs, the log choice and any stop in progress."""
        self._quiet = True
        try:
            self.log_tabs.selected_index = None
            self.log_tabs.children = ()
            self.log_tabs.titles = ()
        finally:
            self._quiet = False
        for view in self._log_views.values():
            view.close()
        self._log_views, self._log_order, self._auto_log = {}, [], None
        self._log_chosen = self._attempt_chosen = False
        self._stopping = False
        self.show_message("")
        self._hide_confirmation()

    # -- the log of each step ----------------------------------------------------------
    @property
    def log_step(self) -> Optional[str]:
        """The step whose log tab is picked (as this kernel last heard)."""
        index = self.log_tabs.selected_index
        return self._log_order[index] if index is not None and index < len(
            self._log_order) else None

    def shown_log(self) -> str:
        """The HTML of the picked step's log (title and text), "" when none is picked."""
        step = self.log_step
        return self._log_views[step].html() if step is not None else ""

    def _update_log_choices(self, status: RunStatus) -> None:
        """A tab for every step that started (in the order they did), titles with
        their phases, and the panel's own pick until the user picks a tab."""
        new = [step.name for step in status.steps if step.name not in self._log_views
               and (step.attempts or step.zenml_runs or step.zenml_status)]
        if new:
            import ipywidgets as widgets

            for name in new:
                self._log_views[name] = _LogView(widgets)
                self._log_order.append(name)
            self._quiet = True
            try:
                self.log_tabs.children = tuple(self._log_views[n].box for n in self._log_order)
            finally:
                self._quiet = False
        phases = {step.name: step.phase.value for step in status.steps}
        titles = tuple(f"{name} ({phases.get(name, '?')})" for name in self._log_order)
        if tuple(self.log_tabs.titles) != titles:
            self.log_tabs.titles = titles
        auto = _default_log_step(status)
        failed = auto is not None and status.step(auto).phase == StepPhase.FAILED
        unset = self._auto_log is None or self.log_tabs.selected_index is None
        if not self._log_chosen and auto is not None and auto != self._auto_log \
                and (unset or failed):
            # The panel picks a tab itself only at first, and at the first failure:
            # a tab the user picked while the kernel was busy (it hears of it only
            # once the cell ran) is not taken back by the redraws in between.
            self._auto_log = auto
            self._select_log_tab(auto)
        elif self.log_tabs.selected_index is None and self._log_order:
            self._select_log_tab(self._log_order[0])
        self._update_attempt_choices(status)
        self._log_hint.layout.display = "none" if self._log_order else ""
        self.log_attempt.layout.display = ("" if len(self.log_attempt.options) > 1
                                           else "none")

    def _select_log_tab(self, step: str) -> None:
        self._quiet = True
        try:
            self.log_tabs.selected_index = self._log_order.index(step)
        finally:
            self._quiet = False

    def _update_attempt_choices(self, status: RunStatus) -> None:
        step = _find_step(status, self.log_step)
        options: List[Tuple[str, int]] = []
        if step is not None:
            for number, attempt in _attempts_of(step):
                how = attempt_word(step, attempt, number) if attempt is not None else ""
                options.append((f"attempt {number}" + (f" ({how})" if how else ""), number))
        chosen = self.log_attempt.value
        values = [v for _, v in options]
        if chosen not in values or not self._attempt_chosen:
            chosen = values[0] if values else None  # the latest attempt
        if [tuple(o) for o in self.log_attempt.options] != options \
                or self.log_attempt.value != chosen:
            self._quiet = True
            try:
                self.log_attempt.options = options
                self.log_attempt.value = chosen
            finally:
                self._quiet = False

    def _log_step_picked(self, change: Dict[str, Any]) -> None:
        if self._quiet or change["new"] is None:
            return
        with self._lock:
            self._log_chosen = True
            self._attempt_chosen = False
            if self.rendered is not None:
                self._update_attempt_choices(self.rendered)
                self._draw_log(self.rendered)

    def _log_attempt_picked(self, change: Dict[str, Any]) -> None:
        if self._quiet:
            return
        with self._lock:
            self._log_chosen = self._attempt_chosen = True
            if self.rendered is not None:
                self._draw_log(self.rendered)

    def _draw_log(self, status: RunStatus) -> None:
        """Every step's tab shows its latest attempt's output (the picked attempt in
        the picked tab): all of it at first, then what was added."""
        picked = self.log_step
        for name in self._log_order:
            step = _find_step(status, name)
            if step is None:
                continue
            numbers = [number for number, _ in _attempts_of(step)]
            number = numbers[0] if numbers else None
            if name == picked and self._attempt_chosen and self.log_attempt.value in numbers:
                number = self.log_attempt.value
            if number is not None:
                self._log_views[name].draw(status, step, int(number))

    def show_log(self, step: str, attempt: Optional[int] = None) -> None:
        """Show one step's log (its latest attempt unless `attempt` is given)."""
        with self._lock:
            if self.rendered is not None:
                self._update_log_choices(self.rendered)
            if step not in self._log_views:
                raise KeyError(f"step {step!r} has no log yet; steps with one: "
                               f"{self._log_order}")
            self._log_chosen = True
            self._attempt_chosen = attempt is not None
            self._log_views[step].forget()  # read the file again from its start
            self._select_log_tab(step)
            if self.rendered is not None:
                self._update_attempt_choices(self.rendered)
                if attempt is not None:
                    self._quiet = True
                    try:
                        self.log_attempt.value = attempt
                    finally:
                        self._quiet = False
                self._draw_log(self.rendered)


class _LogView:
    """One step's log in the panel: a title line and a box that keeps its end in view.

    The box is the HTML widget's own element, which the browser keeps from
    one redraw to the next (only its content is replaced), laid out as a
    reversed column: its scroll position counts from the end, so the end
    stays in view as lines come (a failed step's log opens on its last
    lines, the exception), and a reader who scrolled up stays as far from
    the end as they were instead of being taken back to it.
    """

    def __init__(self, widgets: Any) -> None:
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
        self.key, self.tail = None, None

    def html(self) -> str:
        return self.title.value + self.text.value

    def close(self) -> None:
        for widget in (self.title, self.text, self.box):
            if widget.comm is not None:
                widget.close()

    def draw(self, status: RunStatus, step: StepStatus, number: int) -> None:
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


def _attempts_of(step: StepStatus) -> List[Tuple[int, Any]]:
    """(number, attempt record) of a step, latest first: its containers where seen,
    else ZenML's step runs."""
    numbers = [a.number for a in step.attempts] or list(
        range(1, max(step.zenml_attempts, len(step.zenml_runs), 1) + 1))
    records: Dict[int, Any] = {i + 1: run for i, run in enumerate(step.zenml_runs)}
    records.update({a.number: a for a in step.attempts})
    return [(number, records.get(number)) for number in reversed(numbers)]


def how_it_went(phase: StepPhase, reason: str, joint: str = " ") -> str:
    """'failed (exit code 1)', 'stopped (exit code 143)': the phase and why, said once."""
    if not reason:
        return phase.value
    if reason.startswith(phase.value):
        return reason
    return f"{phase.value}{joint}({reason})" if joint == " " else f"{phase.value}{joint}{reason}"


def _find_step(status: RunStatus, name: Optional[str]) -> Optional[StepStatus]:
    if name is None:
        return None
    return next((step for step in status.steps if step.name == name), None)


def _default_log_step(status: RunStatus) -> Optional[str]:
    """The step whose log a user most likely wants: the first failed, else a running
    one, else a stopped one (how the stop ended it)."""
    for phases in ((StepPhase.FAILED,), (StepPhase.RUNNING, StepPhase.RETRYING),
                   (StepPhase.STOPPED,)):
        for step in status.steps:
            if step.phase in phases and (step.attempts or step.zenml_runs):
                return step.name
    return None


def _still_running(run_id: str) -> bool:
    """Whether ZenML's record says the run goes on (a run submitted with synchronous=False)."""
    from orchestrator.status.records import run_status

    try:
        return not run_status(run_id).is_finished
    except Exception:  # noqa: BLE001 - a busy store: take it as over, as before
        return False


def recent_run_choices(limit: int = 10) -> List[Tuple[str, str]]:
    """The latest runs of this ZenML store as (label, run id), newest first.

    The label is "name · status · started HH:MM:SS".
    """
    from orchestrator.status.records import recent_runs

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
                                           f"{html.escape(str(error))}", error=True)
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
        from orchestrator.status.records import get_run

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
                                       f"{html.escape(str(error))}", error=True)

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
