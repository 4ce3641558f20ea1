"""Decide which pipeline step may run next: the pure scheduling state machine.

The runner owns containers, threads and the clock; this module owns only the
rules. Keeping it free of Docker, ZenML, threads and sleeping means every rule
(parallelism, retries, what a failure does to the other steps, stopping) can be
tested exhaustively and quickly with plain numbers for time.

The runner's loop is roughly::

    while not scheduler.is_finished():
        for step in scheduler.ready(now):
            attempt = scheduler.start(step, now)
            ...launch a container...
        ...wait for a container to end, or until scheduler.next_wakeup()...
        scheduler.succeeded(step, now) / failed(step, now, why) / stopped(...)
        ...stop every container named in Outcome.to_stop...
"""

from __future__ import annotations

import graphlib
import heapq
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from orchestrator.errors import MyDockerError

__all__ = [
    "topological_order",
    "DagScheduler",
    "ExecutionMode",
    "Outcome",
    "RetryPolicy",
    "SchedulerError",
    "StepState",
]


class SchedulerError(MyDockerError, ValueError):
    """A pipeline graph that cannot be scheduled, or a forbidden transition.

    Bad input (a cycle, an unknown upstream, a bad setting) is the user's to
    fix; a forbidden transition is a bug in the runner. Both must be loud.
    """


class ExecutionMode(str, Enum):
    """What a step's final failure does to the rest of the run.

    The values are ZenML's own `ExecutionMode` values, so the runner can pass a
    ZenML mode straight through without a mapping table.
    """

    FAIL_FAST = "fail_fast"
    STOP_ON_FAILURE = "stop_on_failure"
    CONTINUE_ON_FAILURE = "continue_on_failure"

    @property
    def starts_nothing_after_failure(self) -> bool:
        """Whether a step's final failure keeps every not-started step from starting."""
        return self is not ExecutionMode.CONTINUE_ON_FAILURE


class StepState(str, Enum):
    """Where a step is in its life; the last four are final."""

    PENDING = "pending"
    RUNNING = "running"
    RETRY_WAIT = "retry_wait"
    STOPPING = "stopping"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    STOPPED = "stopped"

    @property
    def is_final(self) -> bool:
        """Whether the step can no longer change state."""
        return self in _FINAL_STATES


_FINAL_STATES = frozenset(
    {StepState.COMPLETED, StepState.FAILED, StepState.SKIPPED, StepState.STOPPED}
)
_NOT_STARTED = (StepState.PENDING, StepState.RETRY_WAIT)
_ACTIVE = (StepState.RUNNING, StepState.STOPPING)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how late a failed step is tried again.

    Attributes:
        max_retries: extra attempts after the first one.
        delay: seconds to wait before the first retry.
        backoff: factor applied to the delay for every further retry.
    """

    max_retries: int = 0
    delay: float = 0.0
    backoff: float = 1.0

    def __post_init__(self) -> None:
        """Reject settings that would never retry sensibly, at config time."""
        if (
            isinstance(self.max_retries, bool)
            or not isinstance(self.max_retries, int)
            or self.max_retries < 0
        ):
            raise SchedulerError(
                f"max_retries must be a whole number >= 0, got {self.max_retries!r}; "
                "use 0 to run a step only once."
            )
        for name in ("delay", "backoff"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value < 0
            ):
                raise SchedulerError(
                    f"retry {name} must be a finite number >= 0, got {value!r}."
                )

    def retries_after(self, attempts: int) -> bool:
        """Whether a step that failed its attempt number `attempts` gets another one."""
        return attempts <= self.max_retries

    def delay_before_retry(self, retry_number: int) -> float:
        """Seconds to wait before retry number `retry_number` (1-based)."""
        if retry_number < 1:
            raise SchedulerError(
                f"retry numbers start at 1, got {retry_number!r}."
            )
        return float(self.delay * self.backoff ** (retry_number - 1))


@dataclass(frozen=True)
class Outcome:
    """What the runner has to act on after a transition.

    Attributes:
        retry_at: when a failed step will be ready again, if it will be retried.
        to_stop: running steps whose containers the runner must now stop; it
            reports each with `stopped()` (or `succeeded()`/`failed()` if the
            container ended on its own first).
        skipped: steps that just became SKIPPED, for logging.
        stopped: not-started steps that just became STOPPED (on a stop
            request), for logging.
    """

    retry_at: float | None = None
    to_stop: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    stopped: tuple[str, ...] = ()


@dataclass
class _Record:
    """The mutable bookkeeping of one step."""

    state: StepState = StepState.PENDING
    attempts: int = 0
    reason: str | None = None
    retry_at: float | None = None


@dataclass
class _Graph:
    """The validated, immutable shape of a pipeline."""

    steps: tuple[str, ...]
    upstreams: dict[str, frozenset[str]]
    downstreams: dict[str, tuple[str, ...]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)


class DagScheduler:
    """The state of one pipeline run: which steps ran, run, and may run.

    Steps start as soon as all their upstreams completed and a slot is free,
    not in waves. Ties go to the step listed earlier in the pipeline, so with
    `max_parallelism=1` the run is the familiar one-step-at-a-time order.

    A stop request makes running steps STOPPING and every not-started step
    STOPPED (not SKIPPED): they did not run because someone stopped the run,
    not because a step failed, and ZenML reports such steps as stopped too.

    Attributes:
        steps: step names in pipeline order.
        max_parallelism: most steps RUNNING or STOPPING at once.
        mode: what a final failure does to the other steps.
    """

    def __init__(
        self,
        upstreams: Mapping[str, Iterable[str]],
        *,
        max_parallelism: int,
        mode: ExecutionMode | str = ExecutionMode.CONTINUE_ON_FAILURE,
        retries: Mapping[str, RetryPolicy] | None = None,
    ) -> None:
        """Validate the pipeline and settings; every step starts PENDING.

        Raises:
            SchedulerError: on an unknown upstream, a self-dependency, a cycle,
                a bad `max_parallelism` or `mode`, or retries for unknown steps.
        """
        self._graph = _build_graph(upstreams)
        self.steps = self._graph.steps
        self.max_parallelism = _check_parallelism(max_parallelism)
        self.mode = _parse_mode(mode)
        self._retries = _check_retries(retries, self._graph.upstreams)
        self._records = {step: _Record() for step in self.steps}
        self._stop_reason: str | None = None
        self._halted_by: str | None = None
        self._failed_order: list[str] = []

    # ----------------------------------------------------------------- graph

    def upstreams_of(self, step: str) -> frozenset[str]:
        """The steps that must complete before `step` may start."""
        self._check_known(step)
        return self._graph.upstreams[step]

    def downstream_of(self, step: str) -> set[str]:
        """Every step that (transitively) waits for `step`, without itself."""
        self._check_known(step)
        seen: set[str] = set()
        todo = list(self._graph.downstreams[step])
        while todo:
            current = todo.pop()
            if current not in seen:
                seen.add(current)
                todo.extend(self._graph.downstreams[current])
        return seen

    def topological_order(self) -> list[str]:
        """Upstreams before downstreams, otherwise in pipeline order."""
        return list(self._graph.order)

    def levels(self) -> list[list[str]]:
        """Steps grouped by depth (longest path from a root), for drawing."""
        depth: dict[str, int] = {}
        for step in self._graph.order:
            ups = self._graph.upstreams[step]
            depth[step] = 1 + max((depth[u] for u in ups), default=-1)
        layers: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
        for step in self.steps:
            layers[depth[step]].append(step)
        return layers

    # ----------------------------------------------------------------- queries

    def ready(self, now: float) -> list[str]:
        """Steps that may start at `now`, in pipeline order, at most one per free slot.

        A pure query, so the runner may call it as often as it likes.
        """
        if self._stop_reason is not None or self._halted_by is not None:
            return []
        free = self.max_parallelism - self._active_count()
        result: list[str] = []
        for step in self.steps:
            if len(result) >= free:
                break
            if self._may_start(step, now):
                result.append(step)
        return result

    def is_finished(self) -> bool:
        """Whether every step is in a final state, so the run is over."""
        return all(record.state.is_final for record in self._records.values())

    def next_wakeup(self) -> float | None:
        """The earliest time a waiting retry becomes ready, for the runner's sleep."""
        times = [
            record.retry_at
            for record in self._records.values()
            if record.state is StepState.RETRY_WAIT and record.retry_at is not None
        ]
        return min(times, default=None)

    def state(self, step: str) -> StepState:
        """The current state of `step`."""
        return self._record(step).state

    def reason(self, step: str) -> str | None:
        """Why `step` is FAILED, SKIPPED, STOPPED, STOPPING or RETRY_WAIT; else None."""
        return self._record(step).reason

    def attempts(self, step: str) -> int:
        """How many times `step` has been started."""
        return self._record(step).attempts

    def max_attempts(self, step: str) -> int:
        """How many times `step` may be started at most, for "attempt 2/3" logs."""
        self._check_known(step)
        return 1 + self._policy(step).max_retries

    @property
    def stop_requested(self) -> bool:
        """Whether `request_stop` was called."""
        return self._stop_reason is not None

    def snapshot(self) -> dict[str, StepState]:
        """Every step's state, in pipeline order."""
        return {step: self._records[step].state for step in self.steps}

    def counts(self) -> dict[StepState, int]:
        """How many steps are in each state (every state present, maybe 0)."""
        result = dict.fromkeys(StepState, 0)
        for record in self._records.values():
            result[record.state] += 1
        return result

    def failed_steps(self) -> list[str]:
        """FAILED steps, in the order they finally failed."""
        return list(self._failed_order)

    # ----------------------------------------------------------------- transitions

    def start(self, step: str, now: float) -> int:
        """Mark `step` RUNNING and return its attempt number (1-based).

        Any step that `ready` could return may be started, not only the
        first ones: `ready` sets the preferred order, `start` only the rules.

        Raises:
            SchedulerError: if the step may not start now.
        """
        record = self._record(step)
        if self._stop_reason is not None:
            raise SchedulerError(
                f"cannot start step {step!r}: a stop was requested ({self._stop_reason})."
            )
        if self._halted_by is not None:
            raise SchedulerError(
                f"cannot start step {step!r}: step {self._halted_by!r} failed and the "
                f"execution mode {self.mode.value!r} starts no new steps after a failure."
            )
        if not self._may_start(step, now):
            raise SchedulerError(f"cannot start step {step!r}: {self._why_not_ready(step, now)}.")
        if self._active_count() >= self.max_parallelism:
            raise SchedulerError(
                f"cannot start step {step!r}: {self.max_parallelism} step(s) already "
                "running, which is max_parallelism; wait for one to finish."
            )
        record.state = StepState.RUNNING
        record.attempts += 1
        record.reason = None
        record.retry_at = None
        return record.attempts

    def succeeded(self, step: str, now: float) -> None:
        """Mark a RUNNING or STOPPING step COMPLETED; its downstreams may become ready.

        A STOPPING step that finished before its container was stopped did
        its work, so it counts as COMPLETED.
        """
        record = self._require_active(step, "report success for")
        record.state = StepState.COMPLETED
        record.reason = None

    def failed(self, step: str, now: float, reason: str) -> Outcome:
        """Record a failed attempt: retry later, or fail finally and apply the mode.

        Steps are never retried once the run is stopping or (in FAIL_FAST or
        STOP_ON_FAILURE) once another step failed finally, because nothing
        could start the retry.
        """
        record = self._require_active(step, "report failure for")
        if record.state is StepState.RUNNING and self._may_retry(step):
            retry_at = now + self._policy(step).delay_before_retry(record.attempts)
            record.state = StepState.RETRY_WAIT
            record.retry_at = retry_at
            record.reason = reason
            return Outcome(retry_at=retry_at)
        record.state = StepState.FAILED
        record.reason = reason
        self._failed_order.append(step)
        return self._apply_failure(step)

    def stopped(self, step: str, now: float, reason: str | None = None) -> Outcome:
        """Mark a RUNNING or STOPPING step STOPPED once its container was stopped.

        A step stopped without being asked to (someone stopped its container)
        can never complete, so its downstream steps are skipped; returning the
        Outcome lets the runner log them.
        """
        record = self._require_active(step, "report a stop for")
        previous = record.reason if record.state is StepState.STOPPING else None
        record.state = StepState.STOPPED
        record.reason = reason or previous or "the step's container was stopped"
        skipped = self._skip_pending_downstream(step, f"upstream step {step!r} was stopped")
        return Outcome(skipped=skipped)

    def request_stop(self, reason: str) -> Outcome:
        """Stop the run: running steps become STOPPING, not-started ones STOPPED.

        Nothing is ready afterwards. A second request changes nothing and
        returns an empty Outcome.
        """
        if self._stop_reason is not None:
            return Outcome()
        self._stop_reason = reason
        to_stop = self._mark_running_stopping(reason)
        stopped = self._finish_not_started(StepState.STOPPED, reason)
        return Outcome(to_stop=to_stop, stopped=stopped)

    # ----------------------------------------------------------------- internals

    def _apply_failure(self, step: str) -> Outcome:
        """Apply the execution mode to the other steps after `step` finally failed."""
        if not self.mode.starts_nothing_after_failure:
            skipped = self._skip_pending_downstream(step, f"upstream step {step!r} failed")
            return Outcome(skipped=skipped)
        if self._halted_by is None:
            self._halted_by = step
        cause = f"step {step!r} failed and the execution mode is {self.mode.value!r}"
        to_stop: tuple[str, ...] = ()
        if self.mode is ExecutionMode.FAIL_FAST:
            to_stop = self._mark_running_stopping(f"stopped because {cause}")
        skipped = self._finish_not_started(StepState.SKIPPED, f"skipped because {cause}")
        return Outcome(to_stop=to_stop, skipped=skipped)

    def _mark_running_stopping(self, reason: str) -> tuple[str, ...]:
        """Turn every RUNNING step into STOPPING; return them for the runner to stop."""
        changed = []
        for step in self.steps:
            record = self._records[step]
            if record.state is StepState.RUNNING:
                record.state = StepState.STOPPING
                record.reason = reason
                changed.append(step)
        return tuple(changed)

    def _finish_not_started(self, final: StepState, reason: str) -> tuple[str, ...]:
        """Move every PENDING or RETRY_WAIT step to `final`; keep a retry's last error."""
        changed = []
        for step in self.steps:
            record = self._records[step]
            if record.state in _NOT_STARTED:
                if record.state is StepState.RETRY_WAIT:
                    record.reason = (
                        f"{reason} (attempt {record.attempts} had failed: {record.reason})"
                    )
                else:
                    record.reason = reason
                record.state = final
                record.retry_at = None
                changed.append(step)
        return tuple(changed)

    def _skip_pending_downstream(self, step: str, reason: str) -> tuple[str, ...]:
        """SKIP every not-yet-final step below `step`; none of them can run now.

        Downstream steps cannot have started, because `step` never completed.
        """
        below = self.downstream_of(step)
        changed = []
        for other in self.steps:
            if other in below and self._records[other].state is StepState.PENDING:
                self._records[other].state = StepState.SKIPPED
                self._records[other].reason = reason
                changed.append(other)
        return tuple(changed)

    def _may_start(self, step: str, now: float) -> bool:
        """Whether `step` itself is eligible at `now`, ignoring slots and halts."""
        record = self._records[step]
        if record.state is StepState.PENDING:
            return all(
                self._records[up].state is StepState.COMPLETED
                for up in self._graph.upstreams[step]
            )
        if record.state is StepState.RETRY_WAIT:
            return record.retry_at is not None and record.retry_at <= now
        return False

    def _why_not_ready(self, step: str, now: float) -> str:
        """Explain `_may_start` being False, for the runner's error message."""
        record = self._records[step]
        if record.state is StepState.RETRY_WAIT:
            return f"its retry is due at {record.retry_at}, it is {now} now"
        if record.state is StepState.PENDING:
            waiting = [
                up
                for up in self.steps
                if up in self._graph.upstreams[step]
                and self._records[up].state is not StepState.COMPLETED
            ]
            return f"upstream step(s) {waiting} have not completed"
        return f"it is {record.state.value}, only pending or retry-waiting steps can start"

    def _may_retry(self, step: str) -> bool:
        """Whether another attempt is allowed and could still be started."""
        if self._stop_reason is not None or self._halted_by is not None:
            return False
        return self._policy(step).retries_after(self._records[step].attempts)

    def _policy(self, step: str) -> RetryPolicy:
        """The retry policy of `step`; no retries unless configured."""
        return self._retries.get(step, _NO_RETRY)

    def _active_count(self) -> int:
        """Steps holding a slot: RUNNING ones and STOPPING ones not yet gone."""
        return sum(1 for record in self._records.values() if record.state in _ACTIVE)

    def _require_active(self, step: str, action: str) -> _Record:
        """The record of `step`, which must be RUNNING or STOPPING."""
        record = self._record(step)
        if record.state not in _ACTIVE:
            raise SchedulerError(
                f"cannot {action} step {step!r}: it is {record.state.value}, "
                "not running or stopping. This is a bug in the runner."
            )
        return record

    def _record(self, step: str) -> _Record:
        """The record of `step`, loudly refusing unknown names."""
        self._check_known(step)
        return self._records[step]

    def _check_known(self, step: str) -> None:
        """Raise if `step` is not a step of this pipeline."""
        if step not in self._graph.upstreams:
            raise SchedulerError(
                f"unknown step {step!r}; the pipeline's steps are {list(self.steps)}."
            )


_NO_RETRY = RetryPolicy()


def _build_graph(upstreams: Mapping[str, Iterable[str]]) -> _Graph:
    """Validate the upstream mapping and derive downstreams and a stable order."""
    normalised: dict[str, frozenset[str]] = {}
    for step, ups in upstreams.items():
        if isinstance(ups, str):
            raise SchedulerError(
                f"the upstreams of step {step!r} must be a collection of step names, "
                f"got the string {ups!r}; write [{ups!r}] instead."
            )
        normalised[step] = frozenset(ups)
    for step, ups in normalised.items():
        if step in ups:
            raise SchedulerError(
                f"step {step!r} lists itself as an upstream, so it could never start; "
                "remove it from its own upstreams."
            )
        unknown = sorted(ups - normalised.keys())
        if unknown:
            raise SchedulerError(
                f"step {step!r} has upstream(s) {unknown} that are not steps of this "
                f"pipeline (steps: {list(normalised)}); fix the name(s) or add the step(s)."
            )
    steps = tuple(normalised)
    downstreams: dict[str, list[str]] = {step: [] for step in steps}
    for step in steps:
        for up in normalised[step]:
            downstreams[up].append(step)
    graph = _Graph(
        steps=steps,
        upstreams=normalised,
        downstreams={step: tuple(down) for step, down in downstreams.items()},
    )
    graph.order = _stable_topological_order(graph)
    return graph


def topological_order(upstreams: Mapping[str, Iterable[str]]) -> list[str]:
    """Upstream steps before their downstream steps, otherwise in the given order.

    Raises:
        SchedulerError: the graph has a cycle or names unknown upstream steps.
    """
    return list(_build_graph(upstreams).order)


def _stable_topological_order(graph: _Graph) -> list[str]:
    """Upstreams first, always taking the earliest ready step in pipeline order
    (stdlib `graphlib` finds what is ready and any cycle; a heap keeps the order).

    Raises:
        SchedulerError: naming the steps of a cycle if there is one.
    """
    sorter = graphlib.TopologicalSorter(graph.upstreams)
    try:
        sorter.prepare()
    except graphlib.CycleError as error:
        cycle = error.args[1][:-1]  # each step runs after the one before it
        first = cycle.index(min(cycle, key=graph.steps.index))
        cycle = cycle[first:] + cycle[:first]
        arrows = " -> ".join([*cycle, cycle[0]])
        names = ", ".join(repr(step) for step in cycle)
        raise SchedulerError(
            f"steps {names} depend on each other in a cycle ({arrows}, where "
            "'x -> y' means y runs after x), so none of them can ever start; "
            "remove one of these upstream links."
        ) from None
    index = {step: i for i, step in enumerate(graph.steps)}
    heap: list[int] = []
    order: list[str] = []
    while sorter.is_active():
        for step in sorter.get_ready():
            heapq.heappush(heap, index[step])
        step = graph.steps[heapq.heappop(heap)]
        order.append(step)
        sorter.done(step)
    return order


def _check_parallelism(value: int) -> int:
    """Accept only whole numbers >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SchedulerError(
            f"max_parallelism must be a whole number >= 1, got {value!r}; "
            "use 1 to run steps one at a time."
        )
    return value


def _parse_mode(mode: ExecutionMode | str) -> ExecutionMode:
    """Accept an ExecutionMode or its string value (e.g. ZenML's own enum)."""
    try:
        return ExecutionMode(mode)
    except ValueError:
        valid = [m.value for m in ExecutionMode]
        raise SchedulerError(
            f"unknown execution mode {mode!r}; use one of {valid}."
        ) from None


def _check_retries(
    retries: Mapping[str, RetryPolicy] | None, upstreams: Mapping[str, frozenset[str]]
) -> dict[str, RetryPolicy]:
    """Refuse retry policies for steps the pipeline does not have (likely typos)."""
    result = dict(retries or {})
    unknown = sorted(set(result) - upstreams.keys())
    if unknown:
        raise SchedulerError(
            f"retry policies given for unknown step(s) {unknown}; the pipeline's steps "
            f"are {list(upstreams)}. Fix the step name(s)."
        )
    for step, policy in result.items():
        if not isinstance(policy, RetryPolicy):
            raise SchedulerError(
                f"the retry policy of step {step!r} must be a RetryPolicy, got {policy!r}."
            )
    return result
