"""What the conformance kit checks, and how each property is judged (pure: facts in, verdict out).

The battery (`orchestrator.conformance.battery`) runs small pipelines and
collects *facts*: the notes the probe steps wrote (times by the machine's
clock, container ids, cgroup limits), ZenML's records, what the Docker engine
said about each container, and what happened to the processes the kit
started. The functions here turn facts into verdicts. They know nothing of
Docker or ZenML, so unit tests can show each one failing on facts that break
its property (a kit that cannot fail is a defect).

Claims are judged by orderings and overlaps, never by durations, so that
they hold on a loaded machine: "the two branches ran at the same moment",
"nothing started after the failure", "the client ended after the stop".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

# The package's label schema: the live panel reads these labels.
from orchestrator.running.labels import (
    ATTEMPT_LABEL,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    PIPELINE_RUN_ID_LABEL,
    STEP_LABEL,
)

# The shape run's resource request (ResourceSettings) and what Docker must enforce.
REQUESTED_MEMORY_BYTES = 512 * 1024 * 1024
REQUESTED_CPUS = 1.0

# How long a client may take to end after a stop request or Ctrl-C (generous:
# a loaded machine; the steps themselves would run for two minutes).
STOP_EXIT_SECONDS = 60.0


@dataclass(frozen=True)
class Property:
    """One property of an orchestrator the kit checks.

    Attributes:
        key: short name (``--only`` on the command line takes these).
        title: what it means, in a few words.
        notebook: the tutorial notebook where the reader's orchestrator gains it.
    """

    key: str
    title: str
    notebook: int


PROPERTIES: Tuple[Property, ...] = (
    Property("one_container_per_step", "each step runs in a container of its own", 3),
    Property("labels", "step containers carry the run's labels (the live panel can follow)", 6),
    Property("parallel", "independent steps run at the same time", 4),
    Property("mode_fail_fast", "FAIL_FAST: a failure stops running steps, starts nothing", 5),
    Property("mode_stop_on_failure", "STOP_ON_FAILURE: running steps finish, nothing new starts", 5),
    Property("mode_continue_on_failure",
             "CONTINUE_ON_FAILURE: only steps that need the failed one are skipped", 2),
    Property("retry_killed", "a killed step container is retried in a new container", 5),
    Property("resource_limits", "ResourceSettings (CPU, memory) reach Docker as limits", 5),
    Property("stop", "`zenml pipeline runs stop` from another process stops the run", 5),
    Property("interrupt", "Ctrl-C on the client stops its containers and records the run as over", 5),
    Property("nothing_left_behind", "no container of the battery's runs is left on the engine", 3),
    Property("fetch_status", "fetch_status agrees with what happened (running, completed, failed, stopped)", 6),
)
PROPERTY_KEYS: Tuple[str, ...] = tuple(p.key for p in PROPERTIES)
BY_KEY: Dict[str, Property] = {p.key: p for p in PROPERTIES}


def properties_up_to(notebook: int) -> List[str]:
    """The keys of the properties the tutorial's orchestrator has by the end of `notebook`."""
    return [p.key for p in PROPERTIES if p.notebook <= notebook]


@dataclass(frozen=True)
class Verdict:
    """The kit's finding about one property.

    Attributes:
        passed: True or False; None when the property was not checked.
        detail: why, in one or two sentences, with what was observed.
    """

    key: str
    passed: Optional[bool]
    detail: str

    @property
    def mark(self) -> str:
        if self.passed is None and self.detail.startswith("not enforced by this engine"):
            return "n/e"
        return {True: "pass", False: "FAIL", None: "-"}[self.passed]


@dataclass
class RunFacts:
    """What the kit learned about one pipeline run of the battery.

    Attributes:
        notes: note name -> the note a probe step wrote (see `probe.write_note`).
        status: ZenML's final status of the run (its value), None if no run.
        steps: step name -> ZenML's status of its latest step run (value).
        error: what the pipeline call raised, if anything.
        containers: container id -> what the engine said about it while it ran
            (``labels``, ``memory``, ``nano_cpus``).
        run_id: ZenML's id of the run.
    """

    notes: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    status: Optional[str] = None
    steps: Dict[str, str] = field(default_factory=dict)
    error: Optional[str] = None
    containers: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    run_id: Optional[str] = None
    seconds: float = 0.0

    def started(self, name: str) -> bool:
        return f"{name}.started" in self.notes

    def time(self, note: str) -> Optional[float]:
        found = self.notes.get(note)
        return None if found is None else float(found["time"])


@dataclass
class ClientFacts:
    """A run started by another process (the kit's child), then stopped or interrupted.

    Attributes:
        run: the run's facts.
        action_error: what the stop request raised (None: accepted).
        exit_seconds: seconds from the stop request (or Ctrl-C) to the
            client's end; None if it had not ended `STOP_EXIT_SECONDS` later.
        container_running_after: whether the step's container still ran after
            the client ended (and a settling time).
        fetched_while_running: fetch_status while the step ran, as
            (run status, step statuses), or the error it raised.
    """

    run: RunFacts
    action_error: Optional[str] = None
    exit_seconds: Optional[float] = None
    container_running_after: Optional[bool] = None
    fetched_while_running: Any = None


@dataclass
class BatteryFacts:
    """Everything a battery learned, for the judges."""

    runs: Dict[str, RunFacts] = field(default_factory=dict)
    clients: Dict[str, ClientFacts] = field(default_factory=dict)
    # (what, expected (run status, {step: status}), got or error text)
    fetched: List[Tuple[str, Tuple[str, Dict[str, str]], Any]] = field(default_factory=list)
    leftovers: List[str] = field(default_factory=list)  # "name (status)" of containers left
    kit_container_id: Optional[str] = None
    containers_checked: int = 0
    # The engine, as messages name it, and the ResourceSettings it cannot
    # enforce (``memory``, ``cpu_count``): a rootless engine on cgroup v1.
    engine: str = ""
    unenforced: Tuple[str, ...] = ()


# --------------------------------------------------------------------------
# The judges
# --------------------------------------------------------------------------


def judge_one_container_per_step(facts: BatteryFacts) -> Verdict:
    key = "one_container_per_step"
    shape = facts.runs.get("shape")
    if shape is None:
        return Verdict(key, None, "not run")
    seen = {name: shape.notes.get(f"{name}.started") for name in ("branch_a", "branch_b")}
    if not all(seen.values()):
        missing = [name for name, note in seen.items() if not note]
        return Verdict(key, False, f"step(s) {', '.join(missing)} never ran ({_error(shape)})")
    ids = {name: note.get("container_id") for name, note in seen.items()}
    outside = [name for name, cid in ids.items() if not cid or cid == facts.kit_container_id]
    if outside:
        return Verdict(key, False, f"{', '.join(outside)} ran outside any container of its own "
                       f"(pid {seen[outside[0]]['pid']}: in the client's process?)")
    if ids["branch_a"] == ids["branch_b"]:
        return Verdict(key, False, f"both steps ran in the same container {ids['branch_a'][:12]}")
    return Verdict(key, True, "branch_a in " + ids["branch_a"][:12] + ", branch_b in "
                   + ids["branch_b"][:12])


def judge_labels(facts: BatteryFacts) -> Verdict:
    key = "labels"
    checked: List[Tuple[RunFacts, str, int, str]] = []  # (run, step, attempt, container id)
    run = facts.runs.get("shape")
    for name in ("branch_a", "branch_b") if run is not None else ():
        note = run.notes.get(f"{name}.started")
        if note and note.get("container_id"):
            checked.append((run, name, 1, note["container_id"]))
    shape = facts.runs.get("shape")
    if shape is not None:  # the retried step's containers, when the battery had one
        for attempt in (1, 2):
            note = shape.notes.get(f"victim.attempt{attempt}")
            if note and note.get("container_id"):
                checked.append((shape, "victim", attempt, note["container_id"]))
    if not checked:
        return Verdict(key, None if not facts.runs else False, "no step ran in a container")
    for run, step_name, attempt, cid in checked:
        seen = run.containers.get(cid)
        if seen is None:
            return Verdict(key, False, f"the container of {step_name} ({cid[:12]}) was gone "
                           "before the engine could be asked")
        labels = seen.get("labels") or {}
        expected = {MANAGED_BY_LABEL: MANAGED_BY_VALUE, PIPELINE_RUN_ID_LABEL: run.run_id or "?",
                    STEP_LABEL: step_name, ATTEMPT_LABEL: str(attempt)}
        wrong = {k: labels.get(k) for k, v in expected.items() if labels.get(k) != v}
        if wrong:
            shown = ", ".join(f"{k}={v!r} (expected {expected[k]!r})" for k, v in wrong.items())
            return Verdict(key, False, f"container of {step_name} attempt {attempt}: {shown}")
    return Verdict(key, True, f"{len(checked)} container(s) labelled with run, step and attempt")


def judge_parallel(facts: BatteryFacts) -> Verdict:
    key = "parallel"
    shape = facts.runs.get("shape")
    if shape is None:
        return Verdict(key, None, "not run")
    spans = {}
    for name in ("branch_a", "branch_b"):
        start, end = shape.time(f"{name}.started"), shape.time(f"{name}.ended")
        if start is None or end is None:
            return Verdict(key, False, f"{name} did not run to its end ({_error(shape)})")
        spans[name] = (start, end)
    overlap = min(e for _, e in spans.values()) - max(s for s, _ in spans.values())
    if overlap <= 0:
        gap = -overlap
        released = [name for name in spans if f"{name}.alone" in shape.notes]
        why = (f"; {released[0]} stopped waiting when its sibling still had no container "
               f"{shape.time(released[0] + '.alone') - spans[released[0]][0]:.0f} s after "
               f"it began" if released else "")
        return Verdict(key, False, f"the independent steps ran one after the other "
                       f"(the second started {gap:.1f} s after the first ended{why})")
    return Verdict(key, True, f"branch_a and branch_b ran at the same time for {overlap:.1f} s")


def _mode_common(run: Optional[RunFacts], key: str, mode: str) -> Optional[Verdict]:
    if run is None:
        return Verdict(key, None, "not run")
    if not run.started("fail_soon"):
        refused = run.error or "no step ran"
        return Verdict(key, False, f"{mode} did not run: {_first_line(refused)}")
    if "fail_soon.failing" not in run.notes:
        return Verdict(key, False, "fail_soon never reached its failure")
    if run.started("after_fail"):
        return Verdict(key, False, "after_fail started although the step it waits for failed")
    if run.status not in (None, "failed"):
        return Verdict(key, False, f"the run ended as {run.status!r}, not 'failed'")
    return None


def _slow_was_running_at_failure(run: RunFacts) -> bool:
    failed_at = run.time("fail_soon.failing") or 0.0
    started, ended = run.time("slow.started"), run.time("slow.ended")
    return started is not None and started < failed_at and (ended is None or ended > failed_at)


def judge_mode_fail_fast(facts: BatteryFacts) -> Verdict:
    key, run = "mode_fail_fast", facts.runs.get("fail_fast")
    common = _mode_common(run, key, "FAIL_FAST")
    if common is not None:
        return common
    assert run is not None
    if run.started("after_slow"):
        return Verdict(key, False, "after_slow started after the failure")
    if _slow_was_running_at_failure(run):
        if run.time("slow.ended") is not None or run.steps.get("slow") == "completed":
            return Verdict(key, False, "slow was running when fail_soon failed and was left to "
                           "complete instead of being stopped")
        return Verdict(key, True, "slow (running at the failure) was stopped; nothing else started")
    return Verdict(key, True, "nothing else started after the failure (nothing else was running "
                   "then, so nothing had to be stopped)")


def judge_mode_stop_on_failure(facts: BatteryFacts) -> Verdict:
    key, run = "mode_stop_on_failure", facts.runs.get("stop_on_failure")
    common = _mode_common(run, key, "STOP_ON_FAILURE")
    if common is not None:
        return common
    assert run is not None
    if run.started("after_slow"):
        return Verdict(key, False, "after_slow started after the failure")
    if _slow_was_running_at_failure(run):
        if run.time("slow.ended") is None or run.steps.get("slow") != "completed":
            return Verdict(key, False, "slow was running when fail_soon failed and did not "
                           f"complete (ZenML: {run.steps.get('slow')})")
        return Verdict(key, True, "slow (running at the failure) completed; nothing new started")
    return Verdict(key, True, "nothing new started after the failure (nothing else was running "
                   "then)")


def judge_mode_continue_on_failure(facts: BatteryFacts) -> Verdict:
    key, run = "mode_continue_on_failure", facts.runs.get("continue_on_failure")
    common = _mode_common(run, key, "CONTINUE_ON_FAILURE")
    if common is not None:
        return common
    assert run is not None
    for name in ("slow", "after_slow"):
        if run.time(f"{name}.ended") is None or run.steps.get(name) != "completed":
            return Verdict(key, False, f"{name} does not need the failed step but did not "
                           f"complete (ZenML: {run.steps.get(name)})")
    return Verdict(key, True, "slow and after_slow completed; after_fail was skipped")


def judge_retry_killed(facts: BatteryFacts) -> Verdict:
    key, run = "retry_killed", facts.runs.get("shape")
    if run is None:
        return Verdict(key, None, "not run")
    first = run.notes.get("victim.attempt1")
    if first is None:
        return Verdict(key, False, f"the step never ran ({_error(run)})")
    if not first.get("container_id"):
        return Verdict(key, False, "the step did not run in a container: there was none to kill")
    if not run.notes.get("victim.killed"):
        return Verdict(key, False, "the kit could not kill the first attempt's container")
    second = run.notes.get("victim.attempt2")
    if second is None:
        return Verdict(key, False, "the killed container was not retried "
                       f"(run {run.status}: {_first_line(run.error or '')})")
    if second.get("container_id") == first["container_id"]:
        return Verdict(key, False, "the retry ran in the killed container")
    if run.status != "completed":
        return Verdict(key, False, f"retried, but the run ended as {run.status!r}")
    return Verdict(key, True, f"attempt 1 ({first['container_id'][:12]}) killed, attempt 2 "
                   f"succeeded in {str(second.get('container_id'))[:12]}")


def judge_resource_limits(facts: BatteryFacts) -> Verdict:
    key, run = "resource_limits", facts.runs.get("shape")
    if run is None:
        return Verdict(key, None, "not run")
    note = run.notes.get("branch_a.started")
    if note is None:
        return Verdict(key, False, f"branch_a never ran ({_error(run)})")
    limits = note.get("limits") or {}
    memory, cpus = limits.get("memory_bytes"), limits.get("cpus")
    problems, held = [], []
    if "memory" in facts.unenforced:
        pass  # judged below: named, not failed
    elif memory != REQUESTED_MEMORY_BYTES:
        problems.append(f"memory limit {_mib(memory)} (asked for {_mib(REQUESTED_MEMORY_BYTES)})")
    else:
        held.append(_mib(memory))
    if "cpu_count" in facts.unenforced:
        pass
    elif cpus is None or abs(cpus - REQUESTED_CPUS) > 0.01:
        problems.append(f"CPU limit {cpus if cpus is not None else 'none'} (asked for "
                        f"{REQUESTED_CPUS:g})")
    else:
        held.append(f"{cpus:g} CPU")
    if problems:
        return Verdict(key, False, "inside the step's container: " + "; ".join(problems))
    if facts.unenforced:
        engine = f" ({facts.engine})" if facts.engine else ""
        kept = f"; the cgroup enforces {' and '.join(held)}" if held else ""
        return Verdict(key, None, f"not enforced by this engine{engine}: "
                       f"{', '.join(facts.unenforced)}{kept}")
    return Verdict(key, True, f"the container's cgroup enforces {' and '.join(held)}")


def judge_stop(facts: BatteryFacts) -> Verdict:
    key, client = "stop", facts.clients.get("stop")
    if client is None:
        return Verdict(key, None, "not run")
    if not client.run.started("long_stop"):
        return Verdict(key, False, f"the long step never started ({_error(client.run)})")
    if client.action_error:
        return Verdict(key, False, "the stop request failed: " + _first_line(client.action_error))
    if client.run.time("long_stop.ended") is not None:
        return Verdict(key, False, "the step ran to its end: it was not stopped")
    if client.exit_seconds is None:
        return Verdict(key, False, f"the client still ran {STOP_EXIT_SECONDS:.0f} s after the stop")
    if client.container_running_after:
        return Verdict(key, False, "the step's container still ran after the client ended")
    if client.run.status != "stopped":
        return Verdict(key, False, f"the run was recorded as {client.run.status!r}, not 'stopped'")
    return Verdict(key, True, f"the client ended {client.exit_seconds:.1f} s after the stop "
                   "request; the run is recorded as stopped")


def judge_interrupt(facts: BatteryFacts) -> Verdict:
    key, client = "interrupt", facts.clients.get("interrupt")
    if client is None:
        return Verdict(key, None, "not run")
    if not client.run.started("long_interrupt"):
        return Verdict(key, False, f"the long step never started ({_error(client.run)})")
    if client.exit_seconds is None:
        return Verdict(key, False, f"the client still ran {STOP_EXIT_SECONDS:.0f} s after Ctrl-C")
    if client.container_running_after:
        return Verdict(key, False, "the step's container kept running after the client ended")
    if client.run.status not in ("stopped", "failed"):
        return Verdict(key, False, f"the run stays recorded as {client.run.status!r}")
    return Verdict(key, True, f"the client ended {client.exit_seconds:.1f} s after Ctrl-C, its "
                   f"container with it; the run is recorded as {client.run.status}")


def judge_nothing_left_behind(facts: BatteryFacts) -> Verdict:
    key = "nothing_left_behind"
    if not facts.runs and not facts.clients:
        return Verdict(key, None, "not run")
    if facts.leftovers:
        shown = ", ".join(facts.leftovers[:4]) + (" ..." if len(facts.leftovers) > 4 else "")
        return Verdict(key, False, f"{len(facts.leftovers)} container(s) left: {shown} "
                       "(the kit removed them)")
    return Verdict(key, True, f"none of the {facts.containers_checked} step container(s) is left")


def judge_fetch_status(facts: BatteryFacts) -> Verdict:
    key = "fetch_status"
    if not facts.fetched:
        return Verdict(key, None, "not run")
    for what, expected, got in facts.fetched:
        if isinstance(got, str):
            return Verdict(key, False, f"{what}: {_first_line(got)}")
        run_status, steps = got
        exp_run, exp_steps = expected
        if run_status != exp_run:
            return Verdict(key, False, f"{what}: run {run_status!r}, expected {exp_run!r}")
        wrong = {name: (steps or {}).get(name) for name, status in exp_steps.items()
                 if (steps or {}).get(name) != status}
        if wrong:
            shown = ", ".join(f"{n}={v!r} (expected {exp_steps[n]!r})" for n, v in wrong.items())
            return Verdict(key, False, f"{what}: {shown}")
    return Verdict(key, True, "agreed " + ", ".join(what for what, _, _ in facts.fetched))


JUDGES: Dict[str, Callable[[BatteryFacts], Verdict]] = {
    "one_container_per_step": judge_one_container_per_step,
    "labels": judge_labels,
    "parallel": judge_parallel,
    "mode_fail_fast": judge_mode_fail_fast,
    "mode_stop_on_failure": judge_mode_stop_on_failure,
    "mode_continue_on_failure": judge_mode_continue_on_failure,
    "retry_killed": judge_retry_killed,
    "resource_limits": judge_resource_limits,
    "stop": judge_stop,
    "interrupt": judge_interrupt,
    "nothing_left_behind": judge_nothing_left_behind,
    "fetch_status": judge_fetch_status,
}


def judge(facts: BatteryFacts, keys: Sequence[str]) -> Dict[str, Verdict]:
    """The verdict on every property in `keys` (others are reported as not checked)."""
    return {key: (JUDGES[key](facts) if key in keys else Verdict(key, None, "not checked"))
            for key in PROPERTY_KEYS}


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------


def _first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0][:200] if lines else ""


def _error(run: RunFacts) -> str:
    return _first_line(run.error) if run.error else f"run {run.status or 'not recorded'}"


def _mib(value: Any) -> str:
    return "none" if value is None else f"{int(value) / 2**20:g} MiB"


def expected_statuses(kind: str) -> Tuple[str, Mapping[str, str]]:
    """What fetch_status must say about a run of the battery, by what happened to it."""
    return {
        "shape": ("completed", {"branch_a": "completed", "branch_b": "completed"}),
        "shape_with_victim": ("completed", {"branch_a": "completed", "branch_b": "completed",
                                            "victim": "completed"}),
        "continue_on_failure": ("failed", {"slow": "completed", "fail_soon": "failed",
                                           "after_slow": "completed"}),
        "running": ("running", {"long_step": "running"}),
        "stopped": ("stopped", {"long_step": "stopped"}),
    }[kind]
