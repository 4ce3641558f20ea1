"""How a dynamic run is stopped, wherever the stop comes from.

- Ctrl-C, SIGTERM or SIGHUP in the process orchestrating the run
  (`interrupt_stops_the_run`): the run is marked STOPPING and its containers
  stopped in the background, then the pipeline function is interrupted;
- a stop requested from anywhere (`zenml pipeline runs stop`, the panel's
  Stop): noticed by the orchestrating process (`stop_watcher`), which tells
  ZenML's runner to start nothing new and stops the run's steps;
- `zenml pipeline runs stop` itself, in any process (`stop_dynamic_run`,
  ZenML's `_stop_run`): the run's isolated step records are marked STOPPING
  and their containers stopped; a run whose orchestrating process is gone is
  ended there.

Each step record is marked STOPPING before its container stops, so that
ZenML records the step STOPPED, not FAILED.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from typing import TYPE_CHECKING, Any, Iterator
from uuid import UUID

from zenml.enums import ExecutionStatus

from orchestrator.machine.engine import connect
from orchestrator.running.isolated_containers import DynamicRun, stop_dynamic_containers
from orchestrator.running.labels import find_containers
from orchestrator.running.signals import handling
from orchestrator.zenml_records import run_status

if TYPE_CHECKING:
    from zenml.models import PipelineRunResponse

logger = logging.getLogger("orchestrator.my_docker_orchestrator")

# How often the host looks for a stop requested from another process.
STOP_CHECK_SECONDS = 2.0
# Grace before SIGKILL when the user interrupts the client: they are waiting.
INTERRUPT_GRACE_SECONDS = 2
# A run's statuses once a stop was requested.
RUN_STOP_STATES = (ExecutionStatus.STOPPING, ExecutionStatus.STOPPED)


@contextlib.contextmanager
def interrupt_stops_the_run(run: DynamicRun) -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP stop the run's containers first, then interrupt.

    Without this, ZenML's runner catches the KeyboardInterrupt in the
    pipeline function and waits for every running isolated step to *finish*
    before it records the run failed. Here the run is marked STOPPING and its
    containers are stopped (grace INTERRUPT_GRACE_SECONDS) in the background,
    so ZenML's wait ends within seconds and the steps end STOPPED. Signals
    can only be handled in the main thread; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop_in_background() -> None:
        if run.pipeline_run_id is not None:
            with contextlib.suppress(Exception):  # the run may have ended meanwhile
                from zenml.orchestrators.publish_utils import publish_pipeline_run_status_update

                publish_pipeline_run_status_update(
                    pipeline_run_id=UUID(run.pipeline_run_id), status=ExecutionStatus.STOPPING,
                    status_reason="The client was interrupted.")
        run.stop_all(grace_seconds=INTERRUPT_GRACE_SECONDS)

    def interrupt(signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        logger.warning("Interrupted (%s): stopping the run's step containers.", name)
        threading.Thread(target=stop_in_background, daemon=True,
                         name="my-docker-interrupt").start()
        raise KeyboardInterrupt(name)

    with handling((signal.SIGINT, signal.SIGTERM, signal.SIGHUP), interrupt):
        yield


@contextlib.contextmanager
def stop_watcher(run: DynamicRun, runner: Any) -> Iterator[None]:
    """Notice a stop requested from anywhere (`zenml pipeline runs stop`).

    ZenML's runner does not look at its run's status, and with a local store
    a step's heartbeat does not carry it either; so the host looks, every
    STOP_CHECK_SECONDS. On a stop, ZenML's runner is told to start nothing
    new and the run's steps are stopped. The same look notes steps that run
    inline, on the host.
    """
    from zenml.exceptions import RunStoppedException

    done = threading.Event()

    def watch() -> None:
        while not done.wait(STOP_CHECK_SECONDS):
            try:
                status = run_status(run.pipeline_run_id)
                run.note_inline_steps()
            except Exception:  # noqa: BLE001 - a busy store: look again later
                continue
            if status in RUN_STOP_STATES:
                logger.warning("Run %s is %s: stopping its steps.", run.run_name, status.value)
                runner.request_shutdown(RunStoppedException("The run was stopped."))
                run.stop_all()
                return

    thread = threading.Thread(target=watch, name="my-docker-stop-watcher", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()


def stop_dynamic_run(run: "PipelineRunResponse", *, graceful: bool, grace_seconds: int) -> int:
    """ZenML's `_stop_run` for a dynamic run, from any process (`zenml pipeline runs stop`).

    ZenML has marked the run STOPPING. Its isolated steps' records are marked
    STOPPING and their containers stopped (SIGTERM then SIGKILL, or SIGKILL
    at once); the orchestration process notices within STOP_CHECK_SECONDS and
    ends the run. If that process is gone, the run is ended here.

    Returns:
        How many containers were running.
    """
    from orchestrator.running.orphans import settle_if_orphaned

    client = connect()
    containers = (find_containers(client, orchestrator_run_id=run.orchestrator_run_id)
                  if run.orchestrator_run_id
                  else find_containers(client, pipeline_run_id=str(run.id)))
    running = stop_dynamic_containers(containers, graceful=graceful,
                                      grace_seconds=grace_seconds)
    settle_if_orphaned(run.id)
    return running
