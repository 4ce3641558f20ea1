"""Property-based checks of the pure pieces, on graphs and states Hypothesis generates.

The fixed examples in `orchestrator.teaching.checks` say what a piece must do
on a few cases a reader can see; these say it for every case of a kind
(MiniTorch's lesson: an answer tuned to a few examples does not pass them).
Each function states the rule as plain code, runs the reader's function on
generated cases through `_Checker.holds_for_all`, and fails with the
smallest case Hypothesis finds. They run in a few seconds at most.

The graphs are small (up to seven steps, named a, b, c ...): big enough for
every shape that matters (chains, diamonds, ties, independent steps),
small enough that a failing case can be read at a glance.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

from hypothesis import strategies as st

Graph = Dict[str, List[str]]
NAMES = "abcdefg"
STEP_STATES = ("pending", "running", "completed", "failed", "skipped", "stopped")
LIVE = ("created", "running", "restarting")


@st.composite
def graphs(draw: Any, min_steps: int = 1, max_steps: int = 7) -> Graph:
    """A pipeline graph {step: [upstream steps]} without cycles, listed in any order."""
    count = draw(st.integers(min_steps, max_steps))
    names = list(NAMES[:count])
    along = draw(st.permutations(names))  # an order the graph respects
    upstreams = {step: sorted(draw(st.sets(st.sampled_from(along[:i])))) if i else []
                 for i, step in enumerate(along)}
    listed = draw(st.permutations(names))  # the order the pipeline lists its steps
    return {step: upstreams[step] for step in listed}


@st.composite
def cyclic_graphs(draw: Any) -> Graph:
    """A graph with a cycle: a graph plus one edge that points back."""
    graph = draw(graphs(min_steps=2))
    steps = list(graph)
    first, second = draw(st.lists(st.sampled_from(steps), min_size=2, max_size=2, unique=True))
    graph[first] = sorted(set(graph[first]) | {second})
    graph[second] = sorted(set(graph[second]) | {first})
    return graph


def _needs(graph: Graph, step: str) -> set:
    """Every step `step` needs, directly or not."""
    found, todo = set(), list(graph[step])
    while todo:
        up = todo.pop()
        if up not in found:
            found.add(up)
            todo.extend(graph[up])
    return found


def _calling(function: Callable, *args: Any) -> Tuple[Any, Optional[str]]:
    """(result, None), or (None, "raised ...") when the reader's function raised."""
    try:
        return function(*args), None
    except Exception as error:  # noqa: BLE001 - shown to the reader as the answer
        return None, f"it raised {type(error).__name__}: {error}"


# --------------------------------------------------------------------------
# run_order (notebook 2)
# --------------------------------------------------------------------------


def stable_order_problem(graph: Graph, order: Any) -> Optional[str]:
    """What is wrong with `order` for `graph`, or None: the rule, step by step."""
    if not isinstance(order, list) or sorted(order) != sorted(graph):
        return "not every step exactly once"
    placed: set = set()
    for position, step in enumerate(order):
        ready = [s for s in graph if s not in placed and set(graph[s]) <= placed]
        if step not in ready:
            return f"{step!r} at position {position} comes before one of its upstream steps"
        if step != ready[0]:
            return (f"at position {position} the steps that may go next are {ready}: "
                    f"{ready[0]!r}, listed first, goes first, not {step!r}")
        placed.add(step)
    return None


def run_order_properties(c: Any, run_order: Callable) -> None:
    def problem(graph: Graph) -> Optional[Tuple[str, Any]]:
        order, raised = _calling(run_order, {k: list(v) for k, v in graph.items()})
        wrong = raised or stable_order_problem(graph, order)
        return None if wrong is None else (f"run_order({graph!r})", f"{order!r}: {wrong}")

    c.holds_for_all(graphs(), "every step once, after its upstream steps; among the steps "
                    "that may go next, the one listed first", "the same pipeline must always "
                    "run in the same order, and a step never before its inputs exist", problem)

    def cycle_problem(graph: Graph) -> Optional[Tuple[str, Any]]:
        try:
            order = run_order({k: list(v) for k, v in graph.items()})
        except ValueError:
            return None
        except Exception as error:  # noqa: BLE001
            return f"run_order({graph!r})", f"it raised {type(error).__name__}: {error}"
        return f"run_order({graph!r})", order

    c.holds_for_all(cyclic_graphs(), "any graph with a cycle raises ValueError",
                    "such a pipeline can never run: say so before starting anything",
                    cycle_problem, max_examples=30)


# --------------------------------------------------------------------------
# ready_steps (notebook 4)
# --------------------------------------------------------------------------


@st.composite
def scheduling_moments(draw: Any) -> Tuple[Graph, Dict[str, str], int]:
    graph = draw(graphs())
    states = {step: draw(st.sampled_from(STEP_STATES)) for step in graph}
    return graph, states, draw(st.integers(1, 4))


def expected_ready(graph: Graph, states: Dict[str, str], cap: int) -> List[str]:
    """The rule: pending steps whose upstream steps all completed, in pipeline order,
    at most as many as there are free slots (the cap minus the running steps)."""
    free = cap - sum(1 for state in states.values() if state == "running")
    ready = [step for step in graph if states[step] == "pending"
             and all(states[up] == "completed" for up in graph[step])]
    return ready[:max(free, 0)]


def ready_steps_properties(c: Any, ready_steps: Callable) -> None:
    def problem(case: Tuple[Graph, Dict[str, str], int]) -> Optional[Tuple[str, Any]]:
        graph, states, cap = case
        got, raised = _calling(ready_steps, {k: list(v) for k, v in graph.items()},
                               dict(states), cap)
        want = expected_ready(graph, states, cap)
        if raised is None and isinstance(got, (list, tuple)) and list(got) == want:
            return None
        return (f"ready_steps({graph!r}, {states!r}, max_parallelism={cap})",
                f"{raised or list(got or [])!r} (expected {want!r})")

    c.holds_for_all(scheduling_moments(), "on any graph and states: the pending steps whose "
                    "upstream steps all completed, in pipeline order, one per free slot",
                    "a step starts only when its inputs exist, and never more containers run "
                    "than max_parallelism", problem, max_examples=80)


# --------------------------------------------------------------------------
# stage 2's submit_pipeline (notebook 2)
# --------------------------------------------------------------------------


@st.composite
def runs_with_failures(draw: Any) -> Tuple[Graph, Tuple[str, ...]]:
    """A graph and the steps that fail in it (none, one or two)."""
    graph = draw(graphs())
    failing = draw(st.lists(st.sampled_from(list(graph)), max_size=2, unique=True))
    return graph, tuple(failing)


def submit_pipeline_properties(c: Any, problem_of: Callable[[Graph, Tuple[str, ...]],
                                                            Optional[str]]) -> None:
    """`problem_of(graph, failing)`: what went wrong in one run (None: nothing)."""

    def problem(case: Tuple[Graph, Tuple[str, ...]]) -> Optional[Tuple[str, Any]]:
        graph, failing = case
        found = problem_of(graph, failing)
        return None if found is None else (f"steps {graph!r}, failing {list(failing)!r}", found)

    c.holds_for_all(runs_with_failures(), "on any graph, with any steps failing: each step "
                    "that needs no failed step runs once, after its upstream steps, in its "
                    "own environment with the run's id; the others never run; a failure "
                    "raises at the end", "the order and the skipping must hold for every "
                    "pipeline, not only the examples", problem, max_examples=60)


# --------------------------------------------------------------------------
# after_failure (notebook 5)
# --------------------------------------------------------------------------


@st.composite
def failures(draw: Any) -> Tuple[Any, str, Graph, Dict[str, str]]:
    from zenml.enums import ExecutionMode

    graph = draw(graphs())
    states = {step: draw(st.sampled_from(("pending", "running", "completed", "skipped")))
              for step in graph}
    failed = draw(st.sampled_from(list(graph)))
    states[failed] = "failed"
    mode = draw(st.sampled_from([ExecutionMode.FAIL_FAST, ExecutionMode.STOP_ON_FAILURE,
                                 ExecutionMode.CONTINUE_ON_FAILURE]))
    return mode, failed, graph, states


def expected_after_failure(mode: Any, failed: str, graph: Graph,
                           states: Dict[str, str]) -> Tuple[List[str], List[str]]:
    """ZenML's execution modes: (sorted steps to stop, sorted steps to skip)."""
    from zenml.enums import ExecutionMode

    pending = sorted(step for step in graph if states[step] == "pending")
    if mode == ExecutionMode.FAIL_FAST:
        return sorted(step for step in graph if states[step] == "running"), pending
    if mode == ExecutionMode.STOP_ON_FAILURE:
        return [], pending
    return [], [step for step in pending if failed in _needs(graph, step)]


def after_failure_properties(c: Any, after_failure: Callable) -> None:
    def problem(case: Tuple[Any, str, Graph, Dict[str, str]]) -> Optional[Tuple[str, Any]]:
        mode, failed, graph, states = case
        got, raised = _calling(after_failure, mode, failed,
                               {k: list(v) for k, v in graph.items()}, dict(states))
        want = expected_after_failure(mode, failed, graph, states)
        if raised is None and isinstance(got, tuple) and len(got) == 2:
            mine = (sorted(got[0]), sorted(got[1]))
            if mine == want:
                return None
            got = mine
        return (f"after_failure(ExecutionMode.{mode.name}, {failed!r}, {graph!r}, {states!r})",
                f"{raised or got!r} (expected (to_stop, to_skip) = {want!r})")

    c.holds_for_all(failures(), "on any graph, any mode: FAIL_FAST stops what runs and skips "
                    "what waits, STOP_ON_FAILURE skips what waits, CONTINUE_ON_FAILURE skips "
                    "only what needs the failed step", "the execution mode is the pipeline's "
                    "promise about what a failure does to the other steps", problem,
                    max_examples=80)


# --------------------------------------------------------------------------
# retry_delay (notebook 5)
# --------------------------------------------------------------------------


def retry_delay_properties(c: Any, retry_delay: Callable) -> None:
    from zenml.config.retry_config import StepRetryConfig

    cases = st.tuples(st.integers(1, 4), st.integers(0, 10), st.integers(1, 4),
                      st.integers(1, 7))

    def problem(case: Tuple[int, int, int, int]) -> Optional[Tuple[str, Any]]:
        max_retries, delay, backoff, attempt = case
        policy = StepRetryConfig(max_retries=max_retries, delay=delay, backoff=backoff)
        got, raised = _calling(retry_delay, policy, attempt)
        want = None if attempt > max_retries else delay * backoff ** (attempt - 1)
        right = raised is None and (got is None if want is None else (
            got is not None and not isinstance(got, bool) and abs(got - want) < 1e-9))
        if right:
            return None
        return (f"retry_delay(StepRetryConfig(max_retries={max_retries}, delay={delay}, "
                f"backoff={backoff}), failed_attempt={attempt})", f"{raised or got!r} "
                f"(expected {want!r})")

    c.holds_for_all(cases, "for any policy and attempt: delay * backoff ** (attempt - 1) "
                    "while retries are left, else None", "a retry too early hits the same "
                    "passing fault; one too many, or one too few, breaks the policy the "
                    "step asked for", problem, max_examples=80)


# --------------------------------------------------------------------------
# merge_status (notebook 6)
# --------------------------------------------------------------------------


@st.composite
def status_facts(draw: Any) -> Tuple[Any, Dict[str, Any], Dict[str, str], bool]:
    from zenml.enums import ExecutionStatus as S

    steps = list(NAMES[:draw(st.integers(1, 4))])
    run = draw(st.sampled_from([S.INITIALIZING, S.RUNNING, S.COMPLETED, S.FAILED,
                                S.STOPPING, S.STOPPED]))
    recorded = {step: draw(st.sampled_from([S.RUNNING, S.COMPLETED, S.FAILED, S.STOPPED]))
                for step in steps if draw(st.booleans())}
    containers = {step: draw(st.sampled_from(("created", "running", "exited")))
                  for step in steps if draw(st.booleans())}
    return run, recorded, containers, draw(st.booleans())


def expected_status(run: Any, recorded: Dict[str, Any], containers: Dict[str, str],
                    client_alive: bool) -> Tuple[Any, Dict[str, Any]]:
    """The rule: a live container means RUNNING; a container that ended without its step
    recording an end means FAILED; a finished run keeps its record; a run being stopped
    is STOPPING until its last container ended, then STOPPED; a run whose client is gone
    has FAILED (nothing will start its next steps)."""
    from zenml.enums import ExecutionStatus as S

    steps = dict(recorded)
    for step, state in containers.items():
        if state in LIVE:
            steps[step] = S.RUNNING
        elif not (step in steps and steps[step].is_finished):
            steps[step] = S.FAILED
    if run.is_finished:
        return run, steps
    live = any(state in LIVE for state in containers.values())
    if run in (S.STOPPING, S.STOPPED):
        return (S.STOPPING if live else S.STOPPED), steps
    if not client_alive:
        return S.FAILED, steps
    return S.RUNNING, steps


def merge_status_properties(c: Any, merge_status: Callable) -> None:
    def problem(case: Tuple[Any, Dict[str, Any], Dict[str, str], bool]) -> Optional[Tuple[str, Any]]:
        run, recorded, containers, alive = case
        got, raised = _calling(merge_status, run, dict(recorded), dict(containers), alive)
        want = expected_status(run, recorded, containers, alive)
        if raised is None and isinstance(got, tuple) and len(got) == 2:
            mine = (got[0], dict(got[1]))
            if mine == want:
                return None
            got = (str(mine[0]), {k: str(v) for k, v in mine[1].items()})
        shown = {k: str(v) for k, v in recorded.items()}
        return (f"merge_status({run!s}, {shown!r}, {containers!r}, client_alive={alive})",
                f"{raised or got!r} (expected {str(want[0])}, "
                f"{ {k: str(v) for k, v in want[1].items()}!r})")

    c.holds_for_all(status_facts(), "for any record, containers and client: the run's and "
                    "the steps' status by the rule", "fetch_status is what the dashboard, "
                    "the panel and `zenml pipeline runs` believe: a run said RUNNING after "
                    "it stopped, or COMPLETED while a step runs, misleads all of them",
                    problem, max_examples=80)
