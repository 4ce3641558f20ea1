"""How a container run ended, told to its caller: each failed step, and the error raised.

A run that did not succeed raises: `StepFailedError` naming every step that
failed for good (`StepFailure`: how it ended, the error it printed, its last
meaningful lines, where its whole log is) and the steps skipped because of
them, or `RunStoppedError` counting what the stop left. The message is what a
user reads first, in a terminal or a notebook, so it points to the command
that shows every step's output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

from orchestrator.errors import RunStoppedError, StepFailedError
from orchestrator.running.containers import ContainerExit
from orchestrator.running.scheduler import DagScheduler, StepState
from orchestrator.running.step_logs import meaningful_lines

# How many of a failed step's last lines its failure message shows.
FAILURE_TAIL_LINES = 8


@dataclass(frozen=True)
class StepFailure:
    """A step that failed for good: which, how and what it printed last.

    Attributes:
        shown_lines: the step's last lines as the client's log showed them
            (tracebacks folded to their exception line).
        exception: the last exception line the step printed, if any.
        log_path: the file holding the whole output of the last attempt.
    """

    step_name: str
    attempts: int
    exit: ContainerExit
    shown_lines: tuple = ()
    exception: Optional[str] = None
    log_path: Optional[str] = None

    def describe(self) -> str:
        """Which step, how it ended, the error, its last lines and where the rest is."""
        cause = f": {self.exception}" if self.exception else ""
        lines = [line for line in meaningful_lines(list(self.shown_lines))
                 if not line.startswith(self.exception or "\0")]
        tail = "\n".join(f"    {line}" for line in lines[-FAILURE_TAIL_LINES:])
        # The error line is in the first line already; without other lines the
        # step printed nothing but ZenML's own lines and its traceback.
        nothing = "    (nothing but the error above)" if self.exception else "    (no output)"
        text = (f"Step '{self.step_name}' failed{cause}\n"
                f"  how: {self.exit.describe()}, {self.attempts} attempt(s)\n"
                f"  last lines:\n{tail or nothing}")
        if self.log_path:
            text += f"\n  full log: {self.log_path}"
        return text


def raise_unless_succeeded(scheduler: DagScheduler, failures: List[StepFailure],
                           stop_reason: Optional[str], run_reference: str) -> None:
    """Raise if the run did not succeed; return if every step did.

    Args:
        scheduler: the run's scheduler, every step in a final state.
        failures: the steps that failed for good, in the order they failed.
        stop_reason: why the run was stopped, if it was.
        run_reference: how a user names the run to `python -m orchestrator.status`.

    Raises:
        StepFailedError: one or more steps failed (each described, then the
            steps skipped because of them).
        RunStoppedError: the run was stopped (steps completed, stopped while
            running, never started).
    """
    if failures:
        skipped = [s for s in scheduler.steps if scheduler.state(s) == StepState.SKIPPED]
        message = "\n".join(f.describe() for f in failures)
        if skipped:
            message += f"\nSkipped because of the failure: {', '.join(skipped)}"
        message += ("\nEvery step's output: python -m orchestrator.status "
                    f"{run_reference} --logs")
        raise StepFailedError(message, failures)
    if stop_reason is not None:
        counts = scheduler.counts()
        stopped = [s for s in scheduler.steps if scheduler.state(s) == StepState.STOPPED]
        never_started = [s for s in stopped if scheduler.attempts(s) == 0]
        raise RunStoppedError(
            f"The run was stopped ({stop_reason}): "
            f"{counts.get(StepState.COMPLETED, 0)} step(s) completed, "
            f"{len(stopped) - len(never_started)} stopped while running, "
            f"{len(never_started)} never started."
        )
