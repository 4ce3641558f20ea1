"""The tutorial's explanatory pictures, as SVG text (rendered by JupyterLab, no plotting library).

- `pipeline_call_svg`: what happens between a pipeline call and a step
  container (a sequence diagram);
- `host_svg`: the host, the Docker engine and what is mounted into a step
  container;
- `runner_svg`: the runner's threads and queue;
- `status_flow_svg`: how status events reach the live panel (and fetch_status);
- `phases_svg`: a timeline whose bars tell a step's start-up from its work;
- `step_states_svg`: a step's states in the reader's runner and what moves it;
- `stack_svg`: a stack, its components, their flavors, and the commands that make them;
- `placement_svg`: where a swarm placed each step, node by node.

Timelines with time ticks come from `orchestrator.status.drawing` (the live
panel draws the same ones). Pure functions: strings in, a string out.
"""

from __future__ import annotations

from typing import Iterable, List, Mapping, Optional, Sequence, Tuple

from orchestrator.status.drawing import GanttBar, gantt_svg
from orchestrator.status.drawing import esc as _esc

_FONT = 'font-family="sans-serif" font-size="12"'
_ARROW = ('<defs><marker id="{id}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
          'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
          'fill="#374151"/></marker></defs>')


def _svg(width: int, height: int, body: Iterable[str], marker: str = "arrow") -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" {_FONT}>' + _ARROW.format(id=marker)
            + "".join(body) + "</svg>")


def _box(x: float, y: float, w: float, h: float, lines: Sequence[str], fill: str = "#ffffff",
         stroke: str = "#374151", bold_first: bool = True, size: int = 12, dashed: bool = False
         ) -> str:
    dash = ' stroke-dasharray="4 3"' if dashed else ""
    parts = [f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="6" fill="{fill}" '
             f'stroke="{stroke}"{dash}/>']
    for i, line in enumerate(lines):
        weight = ' font-weight="bold"' if (i == 0 and bold_first) else ""
        parts.append(f'<text x="{x + 8}" y="{y + 16 + i * (size + 4)}" font-size="{size}"'
                     f'{weight}>{_esc(line)}</text>')
    return "".join(parts)


def _arrow(x1: float, y1: float, x2: float, y2: float, label: str = "", marker: str = "arrow",
           dashed: bool = False, label_dy: float = -4, both: bool = False) -> str:
    dash = ' stroke-dasharray="5 3"' if dashed else ""
    start = f' marker-start="url(#{marker})"' if both else ""
    parts = [f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#374151"{dash}{start} '
             f'marker-end="url(#{marker})"/>']
    if label:
        parts.append(f'<text x="{(x1 + x2) / 2}" y="{(y1 + y2) / 2 + label_dy}" '
                     f'text-anchor="middle" font-size="11" fill="#111827">{_esc(label)}</text>')
    return "".join(parts)


# --------------------------------------------------------------------------
# From a pipeline call to a step container
# --------------------------------------------------------------------------

# (from lifeline, to lifeline, label, dashed = a reply); None as "from" = a note on "to"
PIPELINE_CALL: Tuple[Tuple[Optional[int], int, str, bool], ...] = (
    (0, 0, "my_pipeline(...): compile steps, settings, graph -> a snapshot", False),
    (0, 1, "store the snapshot", False),
    (0, 2, "build the step image FROM the parent image (skip_build: use it as it is)", False),
    (0, 1, "upload the code archive (the source root) to the artifact store", False),
    (0, 1, "create a placeholder run (initializing)", False),
    (0, 3, "submit_pipeline(snapshot, stack, environments, placeholder_run)", False),
    (3, 4, "create + start a container per step: image, entrypoint, env, mounts", False),
    (4, 4, "python -m zenml.entrypoints.entrypoint --step_name ... --snapshot_id ...", False),
    (4, 1, "load the snapshot, download and unpack the code into /app", False),
    (4, 4, "load the stack (imports the orchestrator's flavor module), run the step", False),
    (4, 1, "store the outputs (artifact store), record the step run (store)", False),
    (4, 3, "the container exits (exit code)", True),
    (3, 0, "submit_pipeline returns (blocking) or hands back wait_for_completion", True),
)
LIFELINES = ("your notebook\n(ZenML client)", "ZenML store +\nartifact store",
             "image builder", "orchestrator\n(submit_pipeline)", "step container")


def pipeline_call_svg(width: int = 900) -> str:
    """A sequence diagram: a pipeline call, ZenML, the orchestrator and one step container."""
    columns = len(LIFELINES)
    gap = (width - 40) / columns
    xs = [20 + gap * i + gap / 2 for i in range(columns)]
    top, row = 56, 30
    height = top + row * (len(PIPELINE_CALL) + 1) + 10
    body: List[str] = []
    for x, name in zip(xs, LIFELINES):
        lines = name.split("\n")
        body.append(_box(x - gap / 2 + 8, 6, gap - 16, 40, lines, fill="#eef2ff", size=11))
        body.append(f'<line x1="{x}" y1="46" x2="{x}" y2="{height - 6}" stroke="#9ca3af" '
                    'stroke-dasharray="3 3"/>')
    for i, (source, target, label, reply) in enumerate(PIPELINE_CALL):
        y = top + row * (i + 1) - 8
        if source == target:
            x = xs[target]
            anchor = "end" if target == columns - 1 else "start"
            dx = -10 if anchor == "end" else 10
            body.append(f'<circle cx="{x}" cy="{y}" r="4" fill="#374151"/>'
                        f'<text x="{x + dx}" y="{y + 4}" text-anchor="{anchor}" '
                        f'font-size="11">{_esc(label)}</text>')
            continue
        x1, x2 = xs[source], xs[target]
        body.append(_arrow(x1, y, x2 - (6 if x2 > x1 else -6), y, dashed=reply))
        body.append(f'<text x="{min(x1, x2) + 8}" y="{y - 5}" font-size="11">'
                    f'{_esc(label)}</text>')
    return _svg(width, height, body)


# --------------------------------------------------------------------------
# The host, the engine and a step container
# --------------------------------------------------------------------------


def host_svg(package_mount: bool = False, width: int = 900) -> str:
    """This machine, the Docker engine, and what a step container gets from the host.

    Args:
        package_mount: also show the `orchestrator` package mounted read-only
            (what `my_docker` adds so that its flavor imports in every container).
    """
    hx, hw, cx, cw = 10, 370, 560, 330
    body = [
        _box(hx, 10, hw, 300, ["this machine (the host)"], fill="#f9fafb"),
        _box(hx + 12, 40, hw - 24, 56, ["your notebook's kernel: the ZenML client",
                                        "calls the pipeline; submit_pipeline runs here"],
             fill="#eef2ff", size=11),
        _box(hx + 12, 110, hw - 24, 70, ["ZenML's local stores (under ZENML_CONFIG_PATH)",
                                         "SQLite store: snapshots, runs, step records",
                                         "artifact store: outputs, code archives"],
             fill="#ecfdf5", size=11),
        _box(hx + 12, 194, hw - 24, 56, ["the project folder (source root, zenml init)",
                                         "your steps, my_orchestrator.py: archived"],
             fill="#fefce8", size=11),
        _box(hx + 12, 262, hw - 24, 40, ["Docker engine (dockerd), through its socket"],
             fill="#e0f2fe", size=11),
        _box(cx, 10, cw, 300, ["a step container (one per step)"], fill="#f0f9ff"),
        _box(cx + 12, 40, cw - 24, 40, ["image: ZenML's build, or the parent image"],
             fill="#ffffff", size=11, bold_first=False),
        _box(cx + 12, 88, cw - 24, 40, ["/app: the code archive, unpacked"],
             fill="#fefce8", size=11, bold_first=False),
        _box(cx + 12, 136, cw - 24, 56, ["the local stores, read-write, same path",
                                         "(ZENML_LOCAL_STORES_PATH)"],
             fill="#ecfdf5", size=11, bold_first=False),
        _box(cx + 12, 200, cw - 24, 56, ["environment: ZenML's variables + the run id",
                                         "user: your uid:gid"],
             fill="#ffffff", size=11, bold_first=False),
    ]
    if package_mount:
        body.append(_box(cx + 12, 262, cw - 24, 40, ["my_docker: its package, read-only"],
                         fill="#fde68a", size=11, bold_first=False, dashed=True))
    else:
        body.append(_box(cx + 12, 262, cw - 24, 40, ["no Docker socket, not privileged"],
                         fill="#ffffff", size=11, bold_first=False, dashed=True))
    body += [
        _arrow(hx + hw - 12, 150, cx + 10, 160, "bind mount"),
        _arrow(hx + hw - 12, 222, cx + 10, 108, "code archive", dashed=True, label_dy=14),
        _arrow(hx + hw - 12, 282, cx, 282, "create, start, logs, wait"),
    ]
    return _svg(width, 320, body)


# --------------------------------------------------------------------------
# The runner's threads and queue
# --------------------------------------------------------------------------


def runner_svg(width: int = 900) -> str:
    """The runner: one loop decides, one thread per container waits, a queue joins them."""
    body = [
        _box(10, 20, 300, 190, ["the loop (submit_pipeline's thread)",
                                "1. ready_steps(...) -> start those",
                                "   (client.containers.run, detach)",
                                "2. ended.get(): wait for an end",
                                "3. update states: completed / failed",
                                "   -> skip, stop or retry others",
                                "4. until nothing is pending or running",
                                "the only code that changes `states`"],
             fill="#eef2ff", size=11),
        _box(380, 150, 130, 60, ["queue `ended`", "(step, attempt,", " exit code)"],
             fill="#fefce8", size=11),
    ]
    for i in range(3):
        y = 20 + i * 68
        body.append(_box(580, y, 300, 56, [f"follower thread of step {i + 1}",
                                           "logs(stream=True): print each line",
                                           "wait() -> put (step, attempt, code)"],
                         fill="#f0f9ff", size=11))
        body.append(_arrow(580, y + 44, 512, 180, "put" if i == 2 else "", label_dy=14))
        body.append(_arrow(310, 34 + i * 8, 578, y + 12, "start" if i == 0 else "",
                           dashed=True, label_dy=-6))
    body.append(_arrow(380, 180, 312, 180, "get"))
    body.append('<text x="10" y="232" font-size="11" fill="#374151">Threads never decide: '
                'they only report. So the states change in one place, in order, and the '
                'loop can be read (and tested) like a sequential program.</text>')
    return _svg(width, 244, body)


# --------------------------------------------------------------------------
# How status reaches the panel
# --------------------------------------------------------------------------


def status_flow_svg(width: int = 900) -> str:
    """Sources -> events -> the pure reducer -> one RunStatus -> every view."""
    body = [
        _box(10, 10, 250, 56, ["Docker's event stream (a thread)",
                               "create, start, die, oom: by label"], fill="#e0f2fe", size=11),
        _box(10, 80, 250, 56, ["ZenML's store, polled (a thread)",
                               "step records: started, completed, failed"], fill="#ecfdf5",
             size=11),
        _box(10, 150, 250, 56, ["container logs (a thread each)",
                                "the last line of every step"], fill="#fefce8", size=11),
        _box(330, 70, 220, 76, ["events -> apply(status, event)",
                                "orchestrator.status.reducer:", "pure, the one place a",
                                "step's phase is decided"], fill="#eef2ff", size=11),
        _box(620, 10, 270, 46, ["the live panel (ipywidgets)", "live_panel(), watch_run()"],
             fill="#ffffff", size=11),
        _box(620, 80, 270, 46, ["the text view", "python -m orchestrator.status"],
             fill="#ffffff", size=11),
        _box(620, 150, 270, 46, ["fetch_status (ZenML asks)", "orchestrator.status.fetch"],
             fill="#ffffff", size=11),
    ]
    for y in (38, 108, 178):
        body.append(_arrow(260, y, 328, 108))
    for y in (33, 103, 173):
        body.append(_arrow(550, 108, 618, y))
    body.append('<text x="330" y="170" font-size="11">RunStatus: every step\'s phase,</text>'
                '<text x="330" y="184" font-size="11">container, times, last line</text>')
    return _svg(width, 216, body)


# --------------------------------------------------------------------------
# Start-up against work
# --------------------------------------------------------------------------

PHASE_STATES = {"start-up": "starting", "work": "running", "after": "stopping"}


def phases_svg(rows: Sequence[Tuple[str, Mapping[str, Tuple[float, float]]]], *,
               title: str = "", until: Optional[float] = None, width: int = 760) -> str:
    """A timeline whose bars tell each step's start-up, work and teardown apart.

    Args:
        rows: (step, {"start-up": (start, end), "work": (...), "after": (...)}),
            seconds from a common origin; any part may be missing.
        until: where the time axis ends.
    """
    drawn = []
    for label, parts in rows:
        bars = []
        for part, (start, end) in parts.items():
            bars.append(GanttBar(start, end, state=PHASE_STATES.get(part, part),
                                 title=f"{label}: {part} {start:.1f}-{end:.1f} s "
                                       f"({end - start:.1f} s)"))
        drawn.append((label, bars))
    return gantt_svg(drawn, until=until, width=width, title=title)


def phases_legend() -> str:
    """A one-line legend for `phases_svg`."""
    from orchestrator.status.drawing import legend_svg

    return legend_svg(list(PHASE_STATES.values()),
                      names={v: k for k, v in PHASE_STATES.items()})


# --------------------------------------------------------------------------
# A step's states in your runner (notebook 5)
# --------------------------------------------------------------------------

# state -> (x, y, fill) on the picture
_STATES = {
    "pending": (10, 112, "#e5e7eb"),
    "running": (310, 112, "#93c5fd"),
    "completed": (610, 20, "#86efac"),
    "stopped": (610, 112, "#d8b4fe"),
    "failed": (610, 204, "#fca5a5"),
    "retrying": (310, 248, "#fde68a"),
    "skipped": (10, 248, "#f3f4f6"),
}
# (x1, y1, x2, y2, label lines, label x, label y, anchor)
_MOVES = (
    (150, 130, 308, 130, ("upstreams completed,", "a slot free (ready_steps)"), 229, 102, "middle"),
    (450, 124, 608, 44, ("exit 0",), 520, 72, "end"),
    (450, 130, 608, 130, ("stop, Ctrl-C,", "FAIL_FAST"), 529, 112, "middle"),
    (450, 138, 608, 216, ("exit code not 0", "(137: killed)"), 500, 204, "start"),
    (608, 232, 452, 262, ("a retry left:", "retry_delay seconds"), 540, 270, "start"),
    (380, 246, 380, 150, ("delay over, a slot free:", "attempt + 1"), 372, 190, "end"),
    (80, 150, 80, 246, ("it needs a failed step", "(after_failure)"), 88, 190, "start"),
)


def step_states_svg(width: int = 760) -> str:
    """A step's states in the reader's runner, and what moves it from one to the next."""
    body = [_box(x, y, 140, 36, [name], fill=fill) for name, (x, y, fill) in _STATES.items()]
    for x1, y1, x2, y2, lines, lx, ly, anchor in _MOVES:
        body.append(_arrow(x1, y1, x2, y2))
        body += [f'<text x="{lx}" y="{ly + 13 * n}" font-size="10.5" text-anchor="{anchor}" '
                 f'fill="#111827">{_esc(line)}</text>' for n, line in enumerate(lines)]
    body.append('<text x="10" y="312" font-size="11" fill="#374151">completed, stopped, '
                'skipped, and failed with no retry left, are final: the run is over when every '
                'step is in one of them.</text>')
    return _svg(width, 322, body)


# --------------------------------------------------------------------------
# Stacks, components, flavors (notebook 1)
# --------------------------------------------------------------------------


def stack_svg(width: int = 900) -> str:
    """A stack is components; a component is a flavor plus its options; a flavor is classes."""
    body = [
        _box(10, 10, 200, 150, ["stack  my_stack", "what a pipeline runs on:",
                                "one component of each", "kind it needs"],
             fill="#eef2ff", size=11),
        _box(300, 10, 270, 64, ["orchestrator  my_docker_orchestrator",
                                "a component: flavor my_docker", "+ its options (config)"],
             fill="#e0f2fe", size=11),
        _box(300, 96, 270, 64, ["artifact store  default",
                                "a component: flavor local", "(outputs on this disk)"],
             fill="#ecfdf5", size=11),
        _box(640, 10, 250, 150, ["flavor  my_docker",
                                 "a class found by import path:",
                                 "orchestrator.my_docker_orchestrator",
                                 "  .MyDockerOrchestratorFlavor",
                                 "  config_class: the options",
                                 "  implementation_class: the code",
                                 "  that runs the steps"],
             fill="#fefce8", size=11),
        _arrow(210, 42, 298, 42),
        _arrow(210, 128, 298, 128),
        _arrow(570, 42, 638, 60, "is a"),
    ]
    commands = [
        ("zenml orchestrator flavor register orchestrator.my_docker_orchestrator."
         "MyDockerOrchestratorFlavor", "records the flavor (its import path)"),
        ("zenml orchestrator register my_docker_orchestrator -f my_docker",
         "makes a component of that flavor"),
        ("zenml stack register my_stack -o my_docker_orchestrator -a default",
         "puts components together"),
        ("zenml stack set my_stack", "makes it the stack pipelines run on"),
    ]
    for i, (command, what) in enumerate(commands):
        y = 186 + i * 18
        body.append(f'<text x="10" y="{y}" font-size="11" font-family="monospace">'
                    f'{_esc(command)}</text><text x="{width - 10}" y="{y}" font-size="11" '
                    f'text-anchor="end" fill="#374151">{_esc(what)}</text>')
    return _svg(width, 186 + len(commands) * 18, body)


# --------------------------------------------------------------------------
# Where a swarm placed the steps (notebook 8)
# --------------------------------------------------------------------------


def placement_svg(nodes: Mapping[str, str], placed: Mapping[str, str], width: int = 760) -> str:
    """One column per node (its name and what it offers), the steps it ran inside it.

    Args:
        nodes: node host name -> what it offers, in words ("2.0 GiB, 2 CPU").
        placed: step name -> the host name of the node its last attempt ran on
            (a step on a node not in `nodes` gets a column of its own).
    """
    names = list(nodes) + sorted({node for node in placed.values() if node not in nodes})
    if not names:
        raise ValueError("no node to draw")
    gap = 16
    column = (width - gap * (len(names) + 1)) / len(names)
    rows = max([sum(1 for node in placed.values() if node == name) for name in names] + [1])
    height = 56 + rows * 34 + 12
    body: List[str] = []
    for index, name in enumerate(names):
        x = gap + index * (column + gap)
        body.append(_box(x, 6, column, height - 12, [name, nodes.get(name, "")],
                         fill="#f0f9ff", size=11))
        steps = sorted(step for step, node in placed.items() if node == name)
        for row, step in enumerate(steps):
            body.append(_box(x + 10, 50 + row * 34, column - 20, 26, [step], fill="#93c5fd",
                             bold_first=False, size=11))
    return _svg(width, height, body)
