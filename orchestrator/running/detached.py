"""Runs that do not block: a detached orchestration process on the host, and its watchdog.

With `synchronous=False` the pipeline call returns as soon as the run is
submitted. ZenML's remote orchestrators hand the run to a cluster; ours
hands it to a process of its own on this machine, in a new session, so
that it outlives the terminal or notebook kernel that started it (neither
Ctrl-C nor a closed terminal reaches it):

    client (the pipeline call) --spawns--> watchdog --spawns--> orchestration process
                                           (this module's    (runs the pipeline as a
                                            `main`, light)    synchronous run would)

- The orchestration process runs the pipeline exactly as the client would,
  with the flavor's run function that the submission names (`run_functions`:
  `my_docker`'s `pipeline_run.run_pipeline` or `dynamic.run_dynamic_pipeline`,
  `my_swarm`'s swarm run with its cluster's options), so a detached run is
  stopped like any other: `zenml pipeline runs stop`, or a SIGTERM to it (the
  run then ends STOPPED). Its output goes to
  `<run folder>/orchestration.log`, which `python -m orchestrator.status RUN
  --logs` prints; ZenML also keeps it as the run's orchestrator logs.
- The watchdog waits for it. If it dies without ending the run (SIGKILL, the
  out-of-memory killer), the watchdog ends the run: its containers (on
  `my_swarm`: its services) are removed and it is recorded FAILED, with the
  reason (`orphans`, with the flavor's `remove` function, which the run's
  orchestration record names). Signals
  sent to the watchdog are passed on to the orchestration process.
- Should both die, the next command that looks at the run on this machine
  ends it (`orphans`).

`python -m orchestrator.running.detached SUBMISSION` is the watchdog; the
client writes SUBMISSION (ZenML's environment for the run, readable only by
the user) and the orchestration process deletes it once read. This module
imports nothing heavy at module level: the watchdog stays small.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from orchestrator.running.orchestration_record import (
    LOG_NAME,
    process_start_time,
    read_record,
    write_record,
)
from orchestrator.running.step_logs import run_log_dir

if TYPE_CHECKING:
    from orchestrator.running.request import RunRequest
    from orchestrator.running.run_functions import RunFunctions

SUBMISSION_NAME = "submission.json"
_MODULE = "orchestrator.running.detached"
_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])


# -- in the client ----------------------------------------------------------------


def start_detached_run(request: "RunRequest", functions: "RunFunctions") -> int:
    """Check what can be checked quickly, hand the run to a detached process, return.

    Settings and images are checked here (`functions.check`), so that a
    mistake fails the pipeline call itself; the orchestration process then
    makes the run's plan, which the engine (or the swarm) checks (what it
    refuses fails the run, recorded with the reason).

    The submission holds the request's ZenML ids and environments and names
    the flavor's run functions; the orchestration process loads the snapshot
    and the stack again, resolves the same request from them
    (`RunRequest.resolve`) and calls `functions.run`.

    Returns:
        The pid of the detached process (the watchdog).

    Raises:
        InvalidSettingsError, ImageNotFoundError: the run cannot start.
    """
    from zenml.logger import get_logger

    from orchestrator.running.reporting import claim_orchestrator_run_id

    logger = get_logger("orchestrator.my_docker_orchestrator")
    run, step_environments = request.placeholder_run, request.step_environments
    assert run is not None, "a detached run needs ZenML's record of the run"
    _check_before_detaching(request, functions)
    claim_orchestrator_run_id(run)  # `zenml pipeline runs stop` works from now on
    run_dir = run_log_dir(str(run.id))
    run_dir.mkdir(parents=True, exist_ok=True)
    submission = run_dir / SUBMISSION_NAME
    _write_private(submission, {
        "run_functions": functions.to_json(),
        "snapshot_id": str(request.snapshot.id),
        "run_id": str(run.id),
        "environment": dict(request.environment),
        "step_environments": None if step_environments is None else {
            name: dict(environment) for name, environment in step_environments.items()},
        "cwd": os.getcwd(),
        "source_root": _source_root(),
        "sys_path": [entry for entry in sys.path if entry and os.path.isdir(entry)],
    })
    log_path = run_dir / LOG_NAME
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"==== {time.strftime('%Y-%m-%d %H:%M:%S')} run {run.name} ({run.id}) "
                  f"submitted by pid {os.getpid()}\n")
        log.flush()
        watchdog = subprocess.Popen(
            [sys.executable, "-m", _MODULE, str(submission)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            cwd=os.getcwd(), env=_child_environment(), start_new_session=True,
            close_fds=True,
        )
    # Before the pipeline call returns, the run's record names this process as
    # its submitter: `with live_panel(): pipeline()` follows it from here on.
    if read_record(run_dir) is None:  # the detached process did not write its own yet
        write_record(run_dir, str(run.id), detached=True, log_path=str(log_path),
                     pid=watchdog.pid, submitted_by=os.getpid(),
                     remove_with=None if functions.remove is None else functions.remove.to_json())
    # Reap it when it ends, so it never lingers as a zombie of this process.
    threading.Thread(target=watchdog.wait, name="my-docker-detached-reaper",
                     daemon=True).start()
    logger.info(
        "Run %s goes on in a detached process (pid %d) that outlives this one.\n"
        "  follow it: python -m orchestrator.status %s --follow   (in a notebook: "
        "watch_run(%r))\n"
        "  its log:   %s   (python -m orchestrator.status %s --logs)\n"
        "  stop it:   zenml pipeline runs stop %s",
        run.name, watchdog.pid, run.name, run.name, log_path, run.name, run.name)
    return watchdog.pid


def _check_before_detaching(request: "RunRequest", functions: "RunFunctions") -> None:
    """What would fail the run at once fails the pipeline call instead."""
    from orchestrator.errors import MyDockerError
    from orchestrator.running.reporting import record_failed_run

    try:
        functions.check(request)
    except MyDockerError as error:
        record_failed_run(request.placeholder_run, str(error))
        raise


def _source_root() -> Optional[str]:
    from zenml.utils import source_utils

    try:
        return source_utils.get_source_root()
    except RuntimeError:
        return None


def _write_private(path: Path, data: Dict[str, Any]) -> None:
    """Write JSON only the user can read (it holds ZenML's environment for the run)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(data, handle)


def _child_environment() -> Dict[str, str]:
    """The client's environment, with this package importable and output unbuffered."""
    environment = dict(os.environ)
    paths = [_PACKAGE_PARENT] + [p for p in environment.get("PYTHONPATH", "").split(":") if p]
    environment["PYTHONPATH"] = ":".join(dict.fromkeys(paths))
    environment["PYTHONUNBUFFERED"] = "1"
    environment.setdefault("ZENML_LOGGING_COLORS_DISABLED", "true")
    return environment


# -- the watchdog ----------------------------------------------------------------------


def watchdog(submission: Path) -> int:
    """Run the orchestration process; end the run if that process dies first.

    Returns:
        The orchestration process's exit code (negative: the signal that ended it).
    """
    worker = subprocess.Popen(
        [sys.executable, "-m", _MODULE, "--orchestrate", str(submission)],
        stdin=subprocess.DEVNULL,
    )
    started_at = process_start_time(worker.pid)

    def pass_on(signum: int, frame: Any) -> None:
        try:
            worker.send_signal(signum)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, pass_on)
    code = worker.wait()
    if code != 0:
        _end_run_if_open(submission, worker.pid, started_at, code)
    return code


def _end_run_if_open(submission: Path, pid: int, started_at: Optional[float],
                     code: int) -> None:
    """The orchestration process ended badly: end its run if it did not."""
    run_id = submission.parent.name
    how = (f"was killed by {signal.Signals(-code).name}" if code < 0
           else f"exited with code {code}")
    reason = (f"The detached orchestration process (pid {pid}) {how} before the run "
              "ended; its running steps were stopped and its containers removed.")
    try:
        from orchestrator.running.orphans import settle_if_orphaned

        if settle_if_orphaned(run_id, reason=reason):
            print(f"watchdog: {reason}", flush=True)
    except Exception as error:  # noqa: BLE001 - the last word: say it and leave
        print(f"watchdog: could not end run {run_id}: {error}", flush=True)
    finally:
        submission.unlink(missing_ok=True)


# -- the orchestration process --------------------------------------------------------


def orchestrate(submission: Path) -> int:
    """Run the submitted pipeline run here, as a synchronous run would.

    Returns:
        0 when the run completed, 1 when it did not (the reason is in the log
        and in ZenML's record).
    """
    data = json.loads(submission.read_text(encoding="utf-8"))
    submission.unlink(missing_ok=True)  # ZenML's environment is not left on disk
    os.chdir(data["cwd"])
    sys.path[:0] = [entry for entry in data["sys_path"] if entry not in sys.path]
    os.environ.update(data["environment"])

    from uuid import UUID

    from zenml.client import Client
    from zenml.execution.pipeline.utils import prevent_pipeline_execution
    from zenml.stack import Stack
    from zenml.utils import source_utils

    from orchestrator.errors import MyDockerError, RunStoppedError
    from orchestrator.running.request import RunRequest
    from orchestrator.running.run_functions import RunFunctions

    if data["source_root"]:
        source_utils.set_custom_source_root(data["source_root"])
    client = Client()
    snapshot = client.get_snapshot(UUID(data["snapshot_id"]))
    run = client.get_pipeline_run(UUID(data["run_id"]))
    stack = Stack.from_model(snapshot.stack)
    request = RunRequest.resolve(stack.orchestrator, snapshot, stack,
                                 environment=data["environment"],
                                 step_environments=data["step_environments"],
                                 placeholder_run=run)
    print(f"Orchestrating run {run.name} in pid {os.getpid()}.", flush=True)
    try:
        # Importing the user's modules must not run their pipelines again.
        with prevent_pipeline_execution():
            _run(request, RunFunctions.from_json(data["run_functions"]))
    except (MyDockerError, RunStoppedError) as error:
        print(f"{type(error).__name__}: {error}", flush=True)
        return 1
    except KeyboardInterrupt as interrupt:
        print(f"Stopped ({interrupt or 'interrupted'}).", flush=True)
        return 1
    print(f"Run {run.name} is over.", flush=True)
    return 0


def _run(request: "RunRequest", functions: "RunFunctions") -> None:
    """Call the flavor's run function; a static run's output is kept by ZenML as the
    run's orchestrator logs (a dynamic run's function keeps its own)."""
    from contextlib import nullcontext

    from zenml.utils.logging_utils import is_pipeline_logging_enabled, setup_logging_context

    if request.is_dynamic:
        functions.run(request, detached=True)
        return
    logs = (setup_logging_context(source="orchestrator", pipeline_run=request.placeholder_run)
            if is_pipeline_logging_enabled(request.snapshot.pipeline_configuration)
            else nullcontext())
    with logs:
        functions.run(request, detached=True)


def main(argv: Optional[List[str]] = None) -> int:
    """`python -m orchestrator.running.detached [--orchestrate] SUBMISSION`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "--orchestrate":
        return orchestrate(Path(args[1]))
    return watchdog(Path(args[0]))


if __name__ == "__main__":
    sys.exit(main())
