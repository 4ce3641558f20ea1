"""The command every step container runs: ZenML's step entrypoint, warmed up and timed.

    python -m orchestrator.running.step_entrypoint <ZenML's step entrypoint arguments>

It runs what ZenML's own ``python -m zenml.entrypoints.entrypoint`` runs, with
the same arguments and the same code, cut in two halves:

1. **warm-up**, which does not depend on any upstream step: import ZenML, open
   the store and load the snapshot, activate the integrations, download the
   pipeline's code, load the stack and import the step's module (the user's
   imports, pandas and the like) and its output materializers;
2. **the step**, ZenML's step launcher: the run and step run records, input
   resolution and loading, the step function, its outputs, publishing.

A container the orchestrator starts early (``MY_DOCKER_GATE`` names its gate
file, in the run's gate folder under ZenML's local stores, see `gates`) waits
between the two halves until that file exists: the orchestrator creates it
once every upstream step succeeded. So warm-up overlaps the upstream
steps, and the step itself never starts before them. A waiting container
whose orchestrator is gone (the alive file in the gate folder is not touched
any more) leaves without running the step.

Two lines tell the orchestrator how far a container got, each starting with
the run's marker (``MY_DOCKER_DONE_MARKER``): "ready" once the warm-up is
done (a step's timeout counts from then, or from its gate if that opens
later), and "done" with the times of its stages once the step succeeded, so
that the orchestrator starts downstream steps without polling ZenML and can
tell where a step's time went.

Two garbage-collector settings save CPU that every container spent for
nothing: collection is off while the ~1 million long-lived objects of the
imports are created, and they are frozen (`gc.freeze`) before the step and
before exit, so that neither later collections nor the interpreter's shutdown
walk them again (measured: 0.2-0.3 CPU-s less at import, 0.7 CPU-s less at
exit, per container).

This module runs inside step containers: it imports only the standard library
before ZenML, and nothing else of this package.
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import sys
import time
from typing import Any, Dict, List, Optional

# When Python got here (interpreter start-up done), on the container's clock.
_STARTED = time.time()
_STARTED_CPU = time.process_time()

MODULE = "orchestrator.running.step_entrypoint"
# Set by the orchestrator in a container started early: the gate file to wait for.
GATE_ENV = "MY_DOCKER_GATE"
# In the gate folder: touched by the orchestrator while it runs.
ALIVE_FILE = ".orchestrator-alive"
# A waiting container leaves when the alive file is older than this.
ORPHANED_AFTER_SECONDS = 60.0
# Exit code of a container that left its gate because the orchestrator was gone.
ORPHANED_EXIT_CODE = 75
# Set by the orchestrator: the marker that starts the ready and done lines.
DONE_MARKER_ENV = "MY_DOCKER_DONE_MARKER"
READY, DONE = "ready", "done"
# How every done marker starts (a per-run token follows), so that views of a
# container's output (the live panel) can leave the line out.
DONE_LINE_PREFIX = "my_docker step done:"


class StageClock:
    """Wall-clock time (epoch seconds) and process CPU seconds at the end of each stage."""

    def __init__(self) -> None:
        self.stages: List[List[Any]] = []
        self.process_started = _process_start_time()

    def mark(self, stage: str) -> None:
        self.stages.append([stage, round(time.time(), 4), round(time.process_time(), 4)])

    def report(self) -> Dict[str, Any]:
        """What the orchestrator reads from the done line (see `step_timing`)."""
        times = os.times()
        return {
            "process_started": self.process_started,
            "python_ready": [round(_STARTED, 4), round(_STARTED_CPU, 4)],
            "stages": self.stages,
            "children_cpu": round(times.children_user + times.children_system, 4),
        }


def _process_start_time() -> Optional[float]:
    """When this process was created (epoch seconds, as psutil reads it), or None."""
    from orchestrator.running.orchestration_record import process_start_time

    started = process_start_time(os.getpid())
    return None if started is None else round(started, 4)


def wait_for_gate(gate: str) -> None:
    """Return once `gate` exists; leave the process if the orchestrator is gone.

    Polls (2 ms, doubling to 50 ms): a bind-mounted folder has no portable
    change notification, and a poll costs microseconds.

    Raises:
        SystemExit: with ORPHANED_EXIT_CODE, when the alive file next to the
            gate was not touched for ORPHANED_AFTER_SECONDS.
    """
    alive = os.path.join(os.path.dirname(gate), ALIVE_FILE)
    delay, next_alive_check = 0.002, time.monotonic() + 1.0
    while not os.path.exists(gate):
        if time.monotonic() >= next_alive_check:
            next_alive_check = time.monotonic() + 1.0
            if _orphaned(alive):
                print("The orchestrator that started this container is gone: "
                      "leaving without running the step.", flush=True)
                raise SystemExit(ORPHANED_EXIT_CODE)
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _orphaned(alive: str) -> bool:
    try:
        return time.time() - os.stat(alive).st_mtime > ORPHANED_AFTER_SECONDS
    except OSError:
        return True  # the run's gate folder was removed: its orchestrator ended


def _warm_up(config: Any, clock: StageClock) -> bool:
    """Everything of ZenML's step entrypoint that no upstream step's result changes.

    Returns:
        True if ZenML's own preparation (snapshot, integrations, code) completed;
        False if a part of it failed: the step then runs ZenML's whole
        entrypoint after the gate, where the error surfaces as it always would.
    """
    from zenml.client import Client
    from zenml.integrations.registry import integration_registry
    from zenml.utils import source_utils

    try:
        snapshot = config.snapshot
        clock.mark("store and snapshot")
        integration_registry.activate_integrations()
        config.prepare_code_environment()
        clock.mark("code")
    except Exception:  # noqa: BLE001 - raised again, in its place, after the gate
        return False
    try:
        Client().active_stack  # noqa: B018 - loads the stack and its flavors (ours too)
        step = snapshot.step_configurations[config.entrypoint_args["step_name"]]
        source_utils.load(step.spec.source)  # the step's module and the user's imports
        for output in step.config.outputs.values():
            for materializer in output.materializer_source:
                source_utils.load(materializer)
        import zenml.orchestrators.step_launcher
        import zenml.orchestrators.step_runner  # noqa: F401
    except Exception:  # noqa: BLE001 - ZenML's launcher loads these again and reports
        pass
    clock.mark("stack and step module")
    return True


def _time_step_function(clock: StageClock) -> None:
    """Mark the start and end of the step function itself (ZenML's `call_entrypoint`)."""
    from zenml.steps.base_step import BaseStep

    original = BaseStep.call_entrypoint

    def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
        clock.mark("run record and inputs")
        try:
            return original(self, *args, **kwargs)
        finally:
            clock.mark("step function")

    BaseStep.call_entrypoint = timed  # type: ignore[method-assign]


def say(marker: str, words: str) -> None:
    """Write one marker line into the container's output, after all the step printed.

    ``\n<marker> <words>\n`` in a single write to the file descriptor, so
    that no other output lands inside it and whatever wraps `sys.stdout`
    cannot change it; the leading newline puts it on a line of its own even
    after output without one (the runner's `MarkerFilter` takes the whole
    line, that newline included, out of the kept log).
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    os.write(1, f"\n{marker} {words}\n".encode("utf-8"))


_REPLACED: List[Any] = []


def unbuffered_output() -> None:
    """Make every print of the step reach Docker at once, as PYTHONUNBUFFERED=1 does.

    Python buffers stdout in 8 KiB blocks when it is not a terminal (a
    container's is a pipe), so a step killed for memory or by a timeout
    loses its last lines: the ones that say what it was doing. Unless the
    environment already sets PYTHONUNBUFFERED (the user, the image), this
    process writes its output unbuffered from here on, and the variable is set
    for the processes the step starts. Must run before ZenML is imported
    (its log handlers keep the streams they find).
    """
    if os.environ.get("PYTHONUNBUFFERED"):
        return
    os.environ["PYTHONUNBUFFERED"] = "1"
    import io

    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        try:
            stream.flush()
            raw = io.FileIO(stream.fileno(), "w", closefd=False)
        except (OSError, ValueError, AttributeError):
            continue  # no such stream (closed, not a file): nothing to lose
        unbuffered = io.TextIOWrapper(raw, encoding=stream.encoding, errors=stream.errors,
                                      write_through=True)
        _REPLACED.append(stream)  # kept: collecting it would close the file descriptor
        setattr(sys, name, unbuffered)
        setattr(sys, f"__{name}__", unbuffered)


def main(arguments: List[str]) -> None:
    """Run one step like ZenML's step entrypoint, warmed up before its gate.

    Raises:
        Whatever ZenML's entrypoint raises (the step failed): Python prints it
        and the container exits with code 1, as with ZenML's own command.
    """
    import argparse

    clock = StageClock()
    gc.disable()
    from zenml.entrypoints.base_entrypoint_configuration import (
        ENTRYPOINT_CONFIG_SOURCE_OPTION,
        BaseEntrypointConfiguration,
    )
    from zenml.entrypoints.step_entrypoint_configuration import StepEntrypointConfiguration
    from zenml.execution.pipeline.utils import prevent_pipeline_execution
    from zenml.utils import source_utils

    clock.mark("import zenml")
    # As zenml.entrypoints.entrypoint.main does, so that importing the user's
    # module never runs a whole pipeline.
    with prevent_pipeline_execution():
        parser = argparse.ArgumentParser(prog=f"python -m {MODULE}")
        parser.add_argument(f"--{ENTRYPOINT_CONFIG_SOURCE_OPTION}", required=True)
        known, remaining = parser.parse_known_args(arguments)
        config_class = source_utils.load_and_validate_class(
            known.entrypoint_config_source, expected_class=BaseEntrypointConfiguration)
        config = config_class(arguments=remaining)
        warm = isinstance(config, StepEntrypointConfiguration) and _warm_up(config, clock)
        _time_step_function(clock)
        gc.freeze()  # the imports live as long as the process: no collection needs to see them
        gc.enable()
        marker = os.environ.get(DONE_MARKER_ENV)
        if marker:
            say(marker, READY)
        gate = os.environ.get(GATE_ENV)
        if gate:
            wait_for_gate(gate)
            clock.mark("waited for upstream steps")
        if warm:
            # The rest of StepEntrypointConfiguration.run(), after the warm-up.
            snapshot = config.snapshot
            config._run_step(step=config.step, snapshot=snapshot)
            config.post_run(pipeline_name=snapshot.pipeline_configuration.name,
                            step_name=config.entrypoint_args["step_name"])
        else:
            config.run()
        clock.mark("outputs, publish, teardown")
    if marker:
        say(marker, f"{DONE} {json.dumps(clock.report())}")


if __name__ == "__main__":
    # Registered first, so it runs last, after ZenML's own exit handlers: the
    # interpreter's shutdown then skips the frozen objects.
    atexit.register(gc.freeze)
    unbuffered_output()
    main(sys.argv[1:])
