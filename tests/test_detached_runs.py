"""Runs that do not block (`synchronous=False`) on the real engine and store.

The pipeline call returns once the run is submitted; a detached orchestration
process goes on with it, outlives the client, writes a log the status command
prints, is stopped by `zenml pipeline runs stop`, and, should it die, its run
is ended (failed, containers removed) instead of staying "running".
"""

import io
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest
from zenml.client import Client
from zenml.enums import ExecutionStatus

from orchestrator.running.labels import CLIENT_HOST_LABEL, CLIENT_PID_LABEL, client_is_gone
from orchestrator.running.orchestration_record import (
    OrchestrationRecord,
    process_is_alive,
    process_start_time,
    read_record,
    write_record,
)
from orchestrator.running.step_logs import run_log_dir
from orchestrator.status.cli import print_logs
from orchestrator.status.watcher import read_status
from orchestrator.status.widget import watch_run

PARENT_IMAGE = "my-docker/zenml-parent:0.98.0-py3.11"

# A client that submits a run and exits. ZenML is warmed up first, as in a
# notebook kernel after its first cells (opening the store and loading
# ZenML's integrations takes seconds the first time in a process).
CLIENT = textwrap.dedent(
    """
    import json, sys, time
    from zenml.client import Client
    from zenml.config import DockerSettings
    from zenml.integrations.registry import integration_registry
    from orchestrator.teaching.dynamic_examples import dynamic_sleepers
    from orchestrator.teaching.examples import long_pipeline

    Client().zen_store
    integration_registry.activate_integrations()
    settings = {"docker": DockerSettings(skip_build=True, parent_image=%r),
                "orchestrator": {"synchronous": False}}
    kind, seconds = sys.argv[1], float(sys.argv[2])
    if kind == "dynamic":
        pipeline, kwargs = dynamic_sleepers, {"count": 2, "seconds": seconds}
    else:
        pipeline, kwargs = long_pipeline, {"seconds": seconds}
    started = time.monotonic()
    run = pipeline.with_options(settings=settings)(**kwargs)
    took = time.monotonic() - started
    print("SUBMITTED " + json.dumps({"id": str(run.id), "name": run.name, "seconds": took,
                                     "status": run.status.value}), flush=True)
    """ % PARENT_IMAGE
)
LONG_STEPS = {"static": ("long_left", "long_right"), "dynamic": ("sleeper_0", "sleeper_1")}


def submit(project_dir, kind, seconds):
    """Submit a run from a client process that then exits; what it printed."""
    result = subprocess.run([sys.executable, "-c", CLIENT, kind, str(seconds)], cwd=project_dir,
                            capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    line = next((line for line in output.splitlines() if line.startswith("SUBMITTED ")), None)
    assert line, output[-3000:]
    assert "goes on in a detached process" in output, output[-3000:]
    return json.loads(line[len("SUBMITTED "):])


def step_statuses(run_id):
    return {s.name: ExecutionStatus(s.status)
            for s in Client().list_run_steps(pipeline_run_id=run_id, size=100).items}


def wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def run_status(run_id):
    return ExecutionStatus(Client().get_pipeline_run(run_id).status)


def wait_until_long_steps_run(kind, run_id):
    wait_for(lambda: all(step_statuses(run_id).get(name) == ExecutionStatus.RUNNING
                         for name in LONG_STEPS[kind]), 300, "the long steps to run")


# -- which process orchestrates a run, and whether it lives (no Docker) ------------------


def test_the_orchestration_record_is_read_back(tmp_path):
    record = write_record(tmp_path / "run", "run-id", detached=True)
    assert read_record(tmp_path / "run") == record
    assert record.pid == os.getpid() and record.detached
    assert record.log_path == str(tmp_path / "run" / "orchestration.log")
    assert record.process_is_alive()
    assert read_record(tmp_path / "nothing") is None


def test_an_exited_process_is_gone_even_before_it_is_reaped():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    started_at = process_start_time(child.pid)
    wait_for(lambda: not process_is_alive(child.pid, started_at), 30, "the child to exit")
    assert child.poll() is None or child.returncode == 0  # possibly not reaped yet: a zombie
    labels = {CLIENT_HOST_LABEL: socket.gethostname(), CLIENT_PID_LABEL: str(child.pid)}
    assert client_is_gone(labels)
    child.wait()


def test_a_reused_pid_is_not_taken_for_the_orchestration_process():
    mine = process_start_time(os.getpid())
    assert process_is_alive(os.getpid(), mine)
    assert not process_is_alive(os.getpid(), mine - 3600)  # same pid, another process


def test_a_process_on_another_machine_is_assumed_alive():
    record = OrchestrationRecord(run_id="r", pid=2**22 - 1, started_at=None, host="elsewhere")
    assert record.process_is_alive()


def test_a_detached_runs_record_names_its_submitter_after_the_process_rewrites_it(tmp_path):
    """The submitting process writes the first record (naming the watchdog and
    itself); the detached process's own record keeps the submitter."""
    watchdog = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        first = write_record(tmp_path, "run-id", detached=True, pid=watchdog.pid,
                             submitted_by=os.getpid())
        assert first.pid == watchdog.pid and first.process_is_alive()
        again = write_record(tmp_path, "run-id", detached=True, supervisor_pid=watchdog.pid)
        assert again.pid == os.getpid() and again.submitted_by == os.getpid()
        assert write_record(tmp_path, "another-run").submitted_by is None
    finally:
        watchdog.kill()
        watchdog.wait()


def test_live_panel_counts_a_run_this_process_submitted_but_not_one_its_child_started(
        tmp_path, monkeypatch):
    """`with live_panel(): pipeline()` follows a run this kernel submitted with
    synchronous=False (orchestrated by a grandchild), and not a run that a
    script it started (`!python other.py`) orchestrates."""
    from orchestrator.status import next_run

    monkeypatch.setattr(next_run, "run_log_dir", lambda run_id: tmp_path / run_id)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert next_run._orchestrated_here("none-yet") is None
        write_record(tmp_path / "submitted", "submitted", detached=True, pid=child.pid,
                     submitted_by=os.getpid())
        assert next_run._orchestrated_here("submitted") is True
        write_record(tmp_path / "childs", "childs", pid=child.pid)
        assert next_run._orchestrated_here("childs") is False
        write_record(tmp_path / "mine", "mine")
        assert next_run._orchestrated_here("mine") is True
    finally:
        child.kill()
        child.wait()


# -- detached runs on the real engine ---------------------------------------------------


@pytest.mark.parametrize("kind", ["static", "dynamic"])
def test_a_mistake_in_the_settings_fails_the_non_blocking_call_itself(project_dir, kind):
    from zenml.config import DockerSettings

    from orchestrator.errors import InvalidSettingsError
    from orchestrator.teaching.dynamic_examples import dynamic_sleepers
    from orchestrator.teaching.examples import long_pipeline

    pipeline = dynamic_sleepers if kind == "dynamic" else long_pipeline
    wrong = {"docker": DockerSettings(skip_build=True, parent_image=PARENT_IMAGE),
             "orchestrator": {"synchronous": False, "run_args": {"mem_limt": "1g"}}}
    with pytest.raises(InvalidSettingsError, match="mem_limit"):
        pipeline.with_options(settings=wrong)(seconds=1)
    run = Client().get_pipeline(pipeline.name).last_run
    assert run.status == ExecutionStatus.FAILED
    assert read_record(run_log_dir(str(run.id))) is None  # nothing was detached


@pytest.mark.parametrize("kind", ["static", "dynamic"])
def test_a_non_blocking_run_returns_at_once_outlives_its_client_and_is_followed_to_its_end(
        project_dir, run_containers, kind):
    submitted = submit(project_dir, kind, seconds=15)
    run_id = submitted["id"]
    # The client process has exited; the call returned with the run submitted,
    # not finished (how fast it returns: benchmarks/detached_and_dynamic.py).
    assert not ExecutionStatus(submitted["status"]).is_finished, submitted
    record = wait_for(lambda: read_record(run_log_dir(run_id)), 60, "the orchestration record")
    assert record.detached and process_is_alive(record.pid, record.started_at)
    # Its steps run after the client is gone, and the panel follows them to the end.
    wait_until_long_steps_run(kind, run_id)
    panel = watch_run(submitted["name"], poll_seconds=0.5)
    assert panel.wait(timeout=600), "the run did not end"
    assert panel.status.outcome == "completed", panel.text()
    assert run_status(run_id) == ExecutionStatus.COMPLETED
    # ZenML records the run as completed when its last step publishes its end,
    # while that step's container still finishes ZenML's teardown; the
    # orchestration process removes it before it exits: nothing is left then.
    wait_for(lambda: not process_is_alive(record.pid, record.started_at), 60,
             "the orchestration process to exit")
    assert run_containers(run_id) == []
    # The detached process wrote its log, which the status command prints first.
    logs = io.StringIO()
    assert print_logs(submitted["name"], logs) == 0
    text = logs.getvalue()
    assert text.startswith("===== orchestration"), text[:500]
    assert f"Orchestrating run {submitted['name']}" in text and "is over" in text, text[:3000]


def zenml_stop(project_dir, run_id):
    return subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "zenml"), "pipeline", "runs",
         "stop", run_id, "-y"],
        cwd=project_dir, capture_output=True, text=True, timeout=120,
    )


@pytest.mark.parametrize("kind", ["static", "dynamic"])
def test_a_non_blocking_run_can_be_stopped_as_soon_as_the_call_returns(project_dir, kind,
                                                                      run_containers):
    """The call prints "stop it: zenml pipeline runs stop RUN": that works at once,
    before any step has started (ZenML refuses to stop a run whose record has no
    orchestrator run id, which only a step's start wrote before)."""
    run_id = submit(project_dir, kind, seconds=120)["id"]
    assert Client().get_pipeline_run(run_id).orchestrator_run_id
    result = zenml_stop(project_dir, run_id)
    assert result.returncode == 0, result.stdout + result.stderr
    wait_for(lambda: run_status(run_id).is_finished, 120, "the run to end")
    assert run_status(run_id) == ExecutionStatus.STOPPED
    assert not any(status == ExecutionStatus.COMPLETED and name in LONG_STEPS[kind]
                   for name, status in step_statuses(run_id).items())
    wait_for(lambda: run_containers(run_id) == [], 60, "the containers to go")


def test_a_detached_run_is_stopped_by_zenml_pipeline_runs_stop(project_dir, run_containers):
    submitted = submit(project_dir, "dynamic", seconds=120)
    run_id = submitted["id"]
    wait_until_long_steps_run("dynamic", run_id)
    result = zenml_stop(project_dir, run_id)
    assert result.returncode == 0, result.stdout + result.stderr
    wait_for(lambda: run_status(run_id).is_finished, 90, "the run to end")
    assert run_status(run_id) == ExecutionStatus.STOPPED
    steps = step_statuses(run_id)
    assert steps["sleeper_0"] == steps["sleeper_1"] == ExecutionStatus.STOPPED
    assert "after_sleepers" not in steps
    wait_for(lambda: run_containers(run_id) == [], 30, "the containers to go")
    record = read_record(run_log_dir(run_id))
    wait_for(lambda: not process_is_alive(record.pid, record.started_at), 60,
             "the orchestration process to exit")


@pytest.mark.parametrize("kind, target", [("static", "process"), ("dynamic", "process"),
                                          ("dynamic", "process group")])
def test_killing_the_detached_process_fails_the_run_and_removes_its_containers(
        project_dir, run_containers, kind, target):
    """SIGKILL leaves the orchestration process no chance to clean up: its
    watchdog ends the run at once; if the watchdog is killed too, the next
    look at the run (here the status command's) ends it."""
    submitted = submit(project_dir, kind, seconds=120)
    run_id = submitted["id"]
    wait_until_long_steps_run(kind, run_id)
    record = read_record(run_log_dir(run_id))
    assert len(run_containers(run_id)) >= 2
    if target == "process":
        os.kill(record.pid, signal.SIGKILL)
    else:
        os.killpg(os.getpgid(record.pid), signal.SIGKILL)
        time.sleep(5)
        assert not run_status(run_id).is_finished  # nobody has looked yet
        read_status(submitted["name"])  # python -m orchestrator.status RUN
    wait_for(lambda: run_status(run_id).is_finished and all(
        status.is_finished for status in step_statuses(run_id).values()), 60,
        "the run and its steps to be ended")
    run = Client().get_pipeline_run(run_id)
    assert run.status == ExecutionStatus.FAILED
    reason = run.get_body().status_reason or ""
    assert f"pid {record.pid}" in reason, reason
    # Static: the step was stopped. Dynamic: it failed, so that a retry of the
    # run may run it again (ZenML re-runs failed steps within their retry policy).
    ended = ExecutionStatus.STOPPED if kind == "static" else ExecutionStatus.FAILED
    assert step_statuses(run_id)[LONG_STEPS[kind][0]] == ended
    assert run_containers(run_id) == []
