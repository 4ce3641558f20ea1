"""Dynamic pipelines (ZenML 0.98, `@pipeline(dynamic=True)`) on the real engine and store.

ZenML runs the pipeline function on the host; each isolated step runs in a
container of its own, built like a static pipeline's step container. Each
test checks what ZenML recorded and that no container of the run is left.
"""

import io
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from zenml.client import Client
from zenml.config import DockerSettings, ResourceSettings
from zenml.enums import ExecutionMode, ExecutionStatus

from orchestrator.errors import RunStoppedError
from orchestrator.running.isolated_futures import prompt_isolated_futures
from orchestrator.running.labels import (
    ATTEMPT_LABEL,
    PIPELINE_RUN_ID_LABEL,
    STEP_LABEL,
    STEP_RUN_ID_LABEL,
)
from orchestrator.running.step_logs import log_file_name, run_log_dir
from orchestrator.status.events import parse_docker_time
from orchestrator.status.model import StepPhase
from orchestrator.status.watcher import read_status
from orchestrator.status.widget import LivePanel
from orchestrator.teaching.dynamic_examples import (
    dynamic_fail_fast,
    dynamic_fan_out,
    dynamic_hanging,
    dynamic_memory_hog,
    dynamic_sleepers,
)

PARENT_IMAGE = "my-docker/zenml-parent:0.98.0-py3.11"
NO_BUILD = {"docker": DockerSettings(skip_build=True, parent_image=PARENT_IMAGE)}
ISOLATED_STEPS = {"make_items", "square_1", "square_2", "map:square:0", "map:square:1",
                  "add_loop", "add_all"}


def step_records(run_id):
    return {s.name: s for s in Client().list_run_steps(pipeline_run_id=run_id, size=100).items}


def open_records(run_id):
    return [(s.name, s.status) for s in step_records(run_id).values()
            if not ExecutionStatus(s.status).is_finished]


def test_waiting_on_an_isolated_future_is_prompt_only_while_a_run_goes_on():
    """The optional patch of ZenML's private future wait: on, then restored."""
    from zenml.execution.pipeline.dynamic.outputs import _IsolatedStepFuture

    original = _IsolatedStepFuture.__dict__["_wait_for_step_to_finish"]
    with prompt_isolated_futures(0.5):
        assert _IsolatedStepFuture.__dict__["_wait_for_step_to_finish"] is not original
        with prompt_isolated_futures(0.5):  # a second run in the same process
            pass
        assert _IsolatedStepFuture.__dict__["_wait_for_step_to_finish"] is not original
    assert _IsolatedStepFuture.__dict__["_wait_for_step_to_finish"] is original
    with prompt_isolated_futures(None):  # future_poll_seconds=None: ZenML's own wait
        assert _IsolatedStepFuture.__dict__["_wait_for_step_to_finish"] is original


def test_a_loop_of_submits_and_a_map_over_runtime_data_run_each_isolated_step_in_its_own_container(
        project_dir, run_containers):
    """The issue's first "done when": every isolated step in a distinct, labelled
    container built like a static step's; the inline step on the host; the
    status views following the run with steps appearing as they are created."""
    lines = io.StringIO()
    panel = LivePanel(widgets=False, stream=lines, poll_seconds=0.5)
    panel.attach_next(timeout=300)
    kept = {**NO_BUILD, "orchestrator": {"keep_containers": True}}
    run = dynamic_fan_out.with_options(settings=kept)(count=2, seconds=1.0)
    status = panel.finish()
    containers = run_containers(run.id)
    try:
        run = Client().get_pipeline_run(run.id)
        assert run.status == ExecutionStatus.COMPLETED
        records = step_records(run.id)
        assert records["add_all"].output.load() == 10  # (1 + 4) from the loop + (1 + 4) mapped
        by_step = {c.labels[STEP_LABEL]: c for c in containers}
        assert set(by_step) == ISOLATED_STEPS, sorted(by_step)
        assert len({c.id for c in containers}) == len(containers) == len(ISOLATED_STEPS)
        assert "describe" in records and "describe" not in by_step  # inline, on the host
        for name, container in by_step.items():
            labels = container.labels
            assert labels[STEP_RUN_ID_LABEL] == str(records[name].id)
            assert labels[PIPELINE_RUN_ID_LABEL] == str(run.id)
            assert labels[ATTEMPT_LABEL] == "1"
            host_config = container.attrs["HostConfig"]
            assert container.attrs["Config"]["User"] == f"{os.getuid()}:{os.getgid()}"
            assert not host_config.get("Privileged")
            assert not any("docker.sock" in bind for bind in host_config.get("Binds") or [])
            env = dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])
            assert env["PYTHONPATH"].startswith("/opt/my_docker/src")
            # The step ran in this very container: it printed the container's host name.
            log = (run_log_dir(str(run.id)) / log_file_name(name, 1)).read_text()
            assert f"host={container.attrs['Config']['Hostname']}" in log, log[-2000:]
        # The views followed the run: the squares appeared after make_items ran (its
        # "completed" may be told a moment after them: ZenML's record is polled, while
        # the squares' containers are Docker events; both are in the text).
        text = lines.getvalue()
        assert text.index("make_items: running") < text.index("square_1:"), text
        assert "make_items: completed" in text, text
        assert {step.name for step in status.steps} == ISOLATED_STEPS | {"describe"}
        assert all(step.phase == StepPhase.COMPLETED for step in status.steps), status.phases
    finally:
        for container in containers:
            container.remove(force=True)


def test_max_parallelism_caps_the_isolated_containers_running_at_once(project_dir,
                                                                      run_containers):
    capped = {**NO_BUILD, "orchestrator": {"max_parallelism": 1, "keep_containers": True}}
    run = dynamic_sleepers.with_options(settings=capped)(count=2, seconds=3.0)
    containers = run_containers(run.id)
    try:
        assert run.status == ExecutionStatus.COMPLETED
        lives = sorted((parse_docker_time(c.attrs["State"]["StartedAt"]),
                        parse_docker_time(c.attrs["State"]["FinishedAt"]),
                        c.labels[STEP_LABEL]) for c in containers)
        assert [step for _, _, step in lives][-1] == "after_sleepers"
        for (_, ended, first), (started, _, second) in zip(lives, lives[1:]):
            assert ended <= started, f"{second} started before {first} ended: {lives}"
    finally:
        for container in containers:
            container.remove(force=True)


def test_a_step_past_its_timeout_is_stopped_recorded_and_retried_as_a_new_step_run(
        project_dir, run_containers):
    """One run: attempt 1 hangs past its timeout, is stopped and recorded as
    retried (ZenML's word for a failed attempt that gets another); attempt 2 is a new step run in a new container and completes.

    The timeout counts from the container's start, which includes loading ZenML:
    on a loaded 2-core CI machine that alone took over 30 s, so attempt 2 gets
    60 s. The timeout and its message are the same whatever the value."""
    timed = {**NO_BUILD, "orchestrator": {"timeout_seconds": 60, "stop_grace_seconds": 2}}
    started = time.monotonic()
    run = dynamic_hanging.with_options(settings=timed)(seconds=600, retries=1)
    assert time.monotonic() - started < 400, "the 600 s sleep should have been cut"
    assert run.status == ExecutionStatus.COMPLETED
    attempts = sorted((s for s in Client().list_run_steps(pipeline_run_id=run.id, size=100).items
                       if s.name == "sleeps_unless_retried"), key=lambda s: s.created)
    assert [ExecutionStatus(s.status) for s in attempts] == [ExecutionStatus.RETRIED,
                                                             ExecutionStatus.COMPLETED]
    assert "timed out after 60 s" in attempts[0].exception_info.message
    assert attempts[1].output.load() == 2
    folder = run_log_dir(str(run.id))  # one container per attempt, each with its log
    assert "attempt 1" in (folder / log_file_name("sleeps_unless_retried", 1)).read_text()
    assert "attempt 2" in (folder / log_file_name("sleeps_unless_retried", 2)).read_text()
    assert run_containers(run.id) == []


def test_a_container_killed_for_memory_fails_its_step_with_that_reason(project_dir,
                                                                       run_containers):
    small = {**NO_BUILD, "resources": ResourceSettings(memory="256MiB")}
    with pytest.raises(Exception, match="out of memory"):
        dynamic_memory_hog.with_options(settings=small)(megabytes=700)
    run = Client().get_pipeline("dynamic_memory_hog").last_run
    assert run.status == ExecutionStatus.FAILED
    record = step_records(run.id)["hog_memory"]
    assert record.status == ExecutionStatus.FAILED
    assert "out of memory" in record.exception_info.message
    assert run_containers(run.id) == []


def test_fail_fast_stops_the_other_isolated_steps(project_dir, run_containers):
    with pytest.raises(Exception, match="gave up after"):
        dynamic_fail_fast.with_options(settings=NO_BUILD,
                                       execution_mode=ExecutionMode.FAIL_FAST)(seconds=120)
    run = Client().get_pipeline("dynamic_fail_fast").last_run
    records = step_records(run.id)
    assert records["fail_soon"].status == ExecutionStatus.FAILED
    assert records["slow"].status == ExecutionStatus.STOPPED
    # Its own record, not the call's wall clock (container starts are slow on a busy machine).
    slow = records["slow"]
    assert (slow.end_time - slow.start_time).total_seconds() < 110, \
        "the 120 s step should have been stopped"
    assert run.status == ExecutionStatus.FAILED
    assert run_containers(run.id) == []


# -- stopping and interrupting a dynamic run started by another process --------------

SLEEPERS_CLIENT = textwrap.dedent(
    """
    import sys
    from zenml.config import DockerSettings
    from orchestrator.teaching.dynamic_examples import dynamic_sleepers
    dynamic_sleepers.with_options(settings={"docker": DockerSettings(
        skip_build=True, parent_image=%r)})(count=2, seconds=float(sys.argv[1]),
                                            retries=int(sys.argv[2]))
    """ % PARENT_IMAGE
)


def wait_for_running_sleepers(process, since, timeout=240):
    """The sleepers' run once both sleepers run in their containers."""
    client = Client()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = client.list_pipeline_runs(sort_by="desc:created", size=1,
                                         pipeline_name="dynamic_sleepers").items
        if runs and runs[0].created.timestamp() > since:
            records = step_records(runs[0].id)
            if all(name in records and records[name].status == ExecutionStatus.RUNNING
                   for name in ("sleeper_0", "sleeper_1")):
                return runs[0]
        if process.poll() is not None:
            raise AssertionError(f"client ended early:\n{process.stdout.read()}")
        time.sleep(0.5)
    process.kill()
    raise AssertionError("the sleepers never ran")


def start_sleepers(project_dir, seconds=120, retries=0):
    """A client process running `dynamic_sleepers`, once both sleepers run."""
    since = time.time() - 1
    process = subprocess.Popen(
        [sys.executable, "-c", SLEEPERS_CLIENT, str(seconds), str(retries)], cwd=project_dir,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    return process, wait_for_running_sleepers(process, since)


@pytest.fixture
def sleepers_run(project_dir):
    process, run = start_sleepers(project_dir)
    yield process, run
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)


def test_a_dynamic_run_stopped_midway_leaves_no_container(sleepers_run, run_containers,
                                                          project_dir):
    process, run = sleepers_run
    assert len(run_containers(run.id)) == 2
    result = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "zenml"), "pipeline", "runs",
         "stop", str(run.id), "-y"],
        cwd=project_dir, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    output, _ = process.communicate(timeout=90)
    assert process.returncode != 0
    assert "was stopped" in output, output[-3000:]
    assert RunStoppedError.__name__ in output, output[-3000:]
    run = Client().get_pipeline_run(run.id)
    assert run.status == ExecutionStatus.STOPPED
    records = step_records(run.id)
    assert records["sleeper_0"].status == ExecutionStatus.STOPPED
    assert records["sleeper_1"].status == ExecutionStatus.STOPPED
    assert "after_sleepers" not in records
    assert run_containers(run.id) == []


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_interrupting_a_dynamic_run_leaves_no_container(sleepers_run, run_containers,
                                                        signal_number):
    """Ctrl-C in a terminal or JupyterLab's interrupt (SIGINT), or a `kill` (SIGTERM)."""
    process, run = sleepers_run
    interrupted = time.monotonic()
    os.kill(process.pid, signal_number)
    output, _ = process.communicate(timeout=90)
    assert time.monotonic() - interrupted < 30, "the client took too long to stop"
    assert process.returncode != 0
    assert run_containers(run.id) == []
    run = Client().get_pipeline_run(run.id)
    assert run.status == ExecutionStatus.STOPPED, (run.status, output[-3000:])
    assert open_records(run.id) == []
    assert step_records(run.id)["sleeper_0"].status == ExecutionStatus.STOPPED


def test_a_run_whose_client_died_is_ended_when_looked_at_then_zenml_retry_resumes_it(
        project_dir, run_containers):
    """The client is killed (no chance to clean up): the status command ends the
    run (failed, containers removed); `zenml pipeline runs retry` runs it again
    on my_docker (`resume_run`), re-running the steps that failed within their
    retry policy and the steps that never ran."""
    process, run = start_sleepers(project_dir, seconds=40, retries=1)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert len(run_containers(run.id)) == 2  # running on, unwatched
    read_status(run.name)  # python -m orchestrator.status RUN
    run = Client().get_pipeline_run(run.id)
    assert run.status == ExecutionStatus.FAILED
    assert "client process" in (run.get_body().status_reason or "")
    assert run_containers(run.id) == []
    assert step_records(run.id)["sleeper_0"].status == ExecutionStatus.RETRYING

    result = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "zenml"), "pipeline", "runs",
         "retry", str(run.id)],
        cwd=project_dir, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    run = Client().get_pipeline_run(run.id)
    assert run.status == ExecutionStatus.COMPLETED, (result.stdout + result.stderr)[-3000:]
    records = step_records(run.id)
    assert records["sleeper_0"].status == ExecutionStatus.COMPLETED
    assert records["sleeper_0"].version == 2  # a new step run, in a new container
    assert records["after_sleepers"].status == ExecutionStatus.COMPLETED
    assert run_containers(run.id) == []
