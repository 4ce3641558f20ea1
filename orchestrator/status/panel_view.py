"""The live panel's view: its ipywidgets, laid out and drawn from a `RunStatus`.

The view only draws: `PanelView.render(status)` puts the run's header,
progress, the tab shown (graph, timeline, steps, resources) and every
started step's log into widgets, and the buttons and lists hand the user's
actions to callbacks its owner sets. It starts no thread and reads neither
ZenML's store nor Docker (the log files and the kept stage times it reads
are the runner's files on disk); the run's status comes from its owner. The
HTML of each part is `orchestrator.status.panel_html`'s, one step's log tab
`orchestrator.status.log_view`'s. Following a run, throttling redraws from
the watcher's threads, and carrying out a stop are the controller's, in
`orchestrator.status.widget` (`RunPanel`, `LivePanel`), as a progress bar's
view only renders the progress its model keeps.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from orchestrator.status.drawing import esc, new_id_prefix
from orchestrator.status.log_view import (
    StepLogView,
    attempts_of,
    default_log_step,
    find_step,
)
from orchestrator.status.logs import kept_stage_times
from orchestrator.status.model import RunStatus, StepPhase
from orchestrator.status.panel_html import (
    attempt_word,
    counts_html,
    graph_html,
    header_html,
    progress_colour,
    resources_html,
    table_html,
    timeline_html,
)

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


def run_is_finished(status: RunStatus) -> bool:
    """Whether nothing can be stopped any more (the Stop button is disabled)."""
    return (not status.run_id or status.ended
            or status.zenml_status in ("completed", "failed", "stopped", "cancelled",
                                       "stopping", "cancelling")
            and not any(step.container_alive for step in status.steps))


class PanelView:
    """The ipywidgets of the panel, drawn from a `RunStatus` by `render`.

    `render` may be called from any thread (a lock keeps one redraw at a
    time); when to call it is the owner's choice (`RunPanel` throttles the
    watcher's updates). Actions are handed to callbacks set by the owner
    (`LivePanel`): `on_stop()` for a confirmed stop, `on_pick_run(run_id)`
    for a run picked in the recent runs, `on_refresh_runs()` for the ↻ button;
    `stop_grace()` gives the seconds the confirmation quotes.

    Attributes:
        widget: the panel's outer box, the one to display.
        rendered: the status last drawn.
        draw_seconds: how long the last redraw took (seconds).
        on_render: called with each status drawn (tests, benchmarks).
    """

    def __init__(self, status: Optional[RunStatus] = None, *,
                 hidden_interval: float = 1.0) -> None:
        """Args:
            status: the first status to show (default: "waiting for a run").
            hidden_interval: seconds between redraws of the tabs not shown.
        """
        import ipywidgets as widgets

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
        self._log_views: Dict[str, StepLogView] = {}
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
        self._last_render = 0.0  # time.monotonic() of the last redraw
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

    def close_widgets(self) -> None:
        """Close every widget of the panel (the browser forgets them)."""
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
        """The tab shown ("graph", "timeline", "steps" or "resources")."""
        return TABS[self.tabs.selected_index or 0]

    def render(self, status: RunStatus, now: Optional[float] = None) -> None:
        """Draw `status` now (`RunPanel.update` is the throttled entry point).

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
            f'<span style="margin-right:10px">Stop run <b>{esc(status.run_name)}</b>? '
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
        self._carry_out_stop()

    def _carry_out_stop(self) -> None:
        """Call `on_stop` and say how it went; blocks while it runs (`RunPanel`
        calls it off the kernel's thread). A refused stop may be tried again."""
        try:
            self.on_stop()
        except Exception as error:  # noqa: BLE001 - shown in the panel
            self._stopping = False
            self.show_message(f"⚠ {esc(str(error))}", error=True)
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
                self._log_views[name] = StepLogView(widgets)
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
        auto = default_log_step(status)
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
        step = find_step(status, self.log_step)
        options: List[Tuple[str, int]] = []
        if step is not None:
            for number, attempt in attempts_of(step):
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
            step = find_step(status, name)
            if step is None:
                continue
            numbers = [number for number, _ in attempts_of(step)]
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
