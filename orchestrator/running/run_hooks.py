"""`RunHooks`: how a run loop tells the world what happens, without knowing ZenML.

The run loops (`runner.DagRunner` for containers, the swarm runner for
Swarm tasks) report every log line, step end and run end through these hooks,
and ask through them whether a stop was requested or a step recorded its
success. The base class does nothing (it prints), so that the loops run in
tests as they are; `reporting.ZenmlRunHooks` is the one that reads and keeps
ZenML's record.
"""

from __future__ import annotations

from typing import Optional

from orchestrator.running.containers import ContainerExit
from orchestrator.running.scheduler import DagScheduler, StepState


class RunHooks:
    """How the runner reports to the outside world; every method is optional.

    The orchestrator subclasses this to publish statuses to ZenML; tests can
    use it as is.
    """

    def log(self, message: str) -> None:
        print(message, flush=True)

    def step_line(self, step_name: str, line: str) -> None:
        self.log(f"[{step_name}] {line}")

    def stop_requested(self) -> bool:
        """Whether someone asked (from anywhere) to stop this run."""
        return False

    def completed_steps(self) -> set:
        """Steps whose success is already recorded, though their container may
        still be shutting down (ZenML's teardown takes about a second)."""
        return set()

    def recorded_end(self, step_name: str) -> bool:
        """Whether the step's latest attempt already recorded that it ended."""
        return False

    def recorded_success(self, step_name: str) -> Optional[bool]:
        """Whether the step recorded its own success; None if nobody records.

        Asked when a step's container exits: where the exit code and the
        record disagree (a step that called `sys.exit(0)` before returning),
        the record wins.
        """
        return None

    def attempt_ended(self, step_name: str, attempt: int, ended: ContainerExit,
                      state: StepState) -> None:
        """A container ended; `state` is the step's state in the scheduler after it."""

    def record_stopping(self) -> None:
        """The client was interrupted; the run's containers are about to be stopped."""

    def run_stopping(self) -> None:
        """Record the run as stopping before its containers are stopped, as a stop
        request does: ZenML inside a container that gets SIGTERM then records its
        step STOPPED, not FAILED (an interrupt is the user's stop, README says).
        Stopping the containers matters more than the record: errors are logged."""
        try:
            self.record_stopping()
        except Exception as error:  # noqa: BLE001
            self.log(f"Could not record the run as stopping in ZenML: {error}")

    def run_interrupted(self) -> None:
        """The client was interrupted; everything has been stopped and removed."""

    def run_crashed(self, reason: str) -> None:
        """The run could not go on (`reason`); everything has been stopped and removed."""

    def run_aborted(self, *, crashed: bool, reason: str) -> None:
        """Record an interrupted or crashed run; a failure to record it is logged, not raised
        (the containers are already gone, and the caller re-raises what stopped the run)."""
        try:
            if crashed:
                self.run_crashed(reason)
            else:
                self.run_interrupted()
        except Exception as error:  # noqa: BLE001
            self.log(f"Could not record the run's end in ZenML: {error}")

    def run_ended(self, scheduler: DagScheduler) -> None:
        """Every step reached a final state."""

    def run_reference(self) -> str:
        """How a user names this run to `python -m orchestrator.status`."""
        return "latest"
