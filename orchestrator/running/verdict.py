"""How one attempt of a step ended: the rule both runners share.

`my_docker` sees an attempt end as a container's exit, `my_swarm` as a Swarm
task's end; either way the same questions decide what the attempt was, in
this order:

1. Did the step succeed? ZenML's record of the step, written by the step
   itself, has the last word; the exit code decides only where there is no
   record. (A step that calls `sys.exit(0)` exits 0, yet ZenML recorded a
   failure.) Success is every outcome ZenML counts as one
   (`recorded_outcome`): completed, and also cached (the step found an
   earlier run's outputs inside its container and reused them) or skipped.
2. Did it run past its timeout? Then a failure says so.
3. Were we stopping it (a stop request, a fail-fast, a timeout we already
   told about)? Then it was stopped.
4. Did someone else ask to stop the run (`zenml pipeline runs stop`, the
   panel's Stop) before this runner noticed? Then it was stopped too, and
   the runner now stops the rest of the run.
5. Otherwise it failed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional

from orchestrator.running.containers import ContainerExit

# ZenML's step statuses that mean the step's outputs exist: the values of
# `ExecutionStatus.is_successful` (tests/test_verdict.py checks they agree).
# A step ZenML finds in its cache inside the container records CACHED, not
# COMPLETED, and exits 0: that is a success like any other.
SUCCESSFUL_RECORDS = frozenset({"completed", "cached", "skipped"})


def recorded_outcome(status: Any) -> bool:
    """Whether a step's recorded status (a ZenML `ExecutionStatus` or its value) is a success.

    Any other status, finished or not, is not: a step whose container ended
    while its record still says "running" did not complete.
    """
    return str(getattr(status, "value", status)) in SUCCESSFUL_RECORDS


class Verdict(enum.Enum):
    SUCCEEDED = "succeeded"
    STOPPED = "stopped"  # the runner was stopping it
    STOPPED_ELSEWHERE = "stopped elsewhere"  # a stop requested from another process ended it
    FAILED = "failed"


@dataclass(frozen=True)
class Judgement:
    """What an attempt was, and how to tell it.

    Attributes:
        verdict: what the attempt was.
        ended: how it ended, with the reason a failure is told by (a timeout,
            or an exit code that disagrees with ZenML's record).
        note: something worth a log line although the verdict stands (the
            container failed while shutting down after its step completed).
    """

    verdict: Verdict
    ended: ContainerExit
    note: Optional[str] = None


def judge_attempt(ended: ContainerExit, *, stopping: bool, stop_known: bool,
                  recorded_success: Callable[[], Optional[bool]],
                  stop_requested: Callable[[], bool],
                  timed_out_after: Optional[float] = None,
                  what: str = "container") -> Judgement:
    """Decide what an attempt that ended was (the rules in the module docstring).

    Args:
        ended: how its container or task ended.
        stopping: the runner was stopping this attempt.
        stop_known: the runner already knows the run is being stopped.
        recorded_success: asks ZenML whether the step recorded success
            (True/False, see `recorded_outcome`) or could not be asked (None); called only when
            the attempt ended without an error of the runner's.
        stop_requested: asks ZenML whether a stop of the run was requested;
            called only when nothing else has decided.
        timed_out_after: the timeout (seconds) the attempt ran past, if it did.
        what: what ran the attempt, for messages ("container", "task").
    """
    note = None
    succeeded = False
    if ended.error is None:
        recorded = recorded_success()
        succeeded = ended.succeeded if recorded is None else recorded
        if recorded and not ended.succeeded:
            note = f"{what} exited with {ended.describe()} after the step had completed"
    if succeeded:
        return Judgement(Verdict.SUCCEEDED, ended, note)
    if timed_out_after:
        ended = replace(ended, error=f"timed out after {timed_out_after:g} s ({ended.describe()})")
    if stopping:
        return Judgement(Verdict.STOPPED, ended)
    if not stop_known and not timed_out_after and stop_requested():
        return Judgement(Verdict.STOPPED_ELSEWHERE, ended)
    if ended.succeeded:
        ended = replace(ended, exit_code=-1, error=(
            f"its {what} exited with code 0, but ZenML did not record the step as completed "
            "(did the step call sys.exit() or os._exit()?)"))
    return Judgement(Verdict.FAILED, ended)
