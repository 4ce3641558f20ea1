"""Run control on the real engine: execution modes, retries, resources, stop, Ctrl-C.

Each test checks what ZenML recorded and that no container of the run is left.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from zenml.client import Client
from zenml.config import ResourceSettings
from zenml.config.retry_config import StepRetryConfig
from zenml.enums import ExecutionMode, ExecutionStatus, StackComponentType

from orchestrator.errors import StepFailedError
from orchestrator.teaching.examples import (
    failure_modes_pipeline,
    hog_memory_on_first_attempt,
    memory_retry_pipeline,
    settings_pipeline,
)


def latest_run(name):
    return Client().get_pipeline(name).last_run


def statuses(run):
    return {name: step.status for name, step in run.steps.items()}


def run_modes(mode, seconds=20):
    started = time.monotonic()
    with pytest.raises(StepFailedError) as raised:
        failure_modes_pipeline.with_options(execution_mode=mode)(seconds=seconds)
    return latest_run("failure_modes_pipeline"), str(raised.value), time.monotonic() - started


def test_fail_fast_stops_running_steps_and_starts_nothing(project_dir, run_containers):
    run, message, elapsed = run_modes(ExecutionMode.FAIL_FAST, seconds=60)
    steps = statuses(run)
    assert steps["fail_after"] == ExecutionStatus.FAILED
    assert steps["slow_branch"] == ExecutionStatus.STOPPED, steps
    assert "late_branch" not in steps and "after_failure" not in steps
    assert elapsed < 60, "the 60 s step should have been stopped, not awaited"
    assert run.status == ExecutionStatus.FAILED
    assert run_containers(run.id) == []


def test_stop_on_failure_lets_running_steps_finish(project_dir, run_containers):
    run, message, _ = run_modes(ExecutionMode.STOP_ON_FAILURE)
    steps = statuses(run)
    assert steps["slow_branch"] == ExecutionStatus.COMPLETED
    assert "late_branch" not in steps and "after_failure" not in steps
    assert "late_branch" in message  # reported as skipped
    assert run_containers(run.id) == []


def test_continue_on_failure_skips_only_downstream(project_dir, run_containers):
    run, message, _ = run_modes(ExecutionMode.CONTINUE_ON_FAILURE, seconds=5)
    steps = statuses(run)
    assert steps["slow_branch"] == ExecutionStatus.COMPLETED
    assert steps["late_branch"] == ExecutionStatus.COMPLETED
    assert "after_failure" not in steps
    assert run_containers(run.id) == []


def test_container_killed_for_memory_is_retried(project_dir, run_containers, caplog):
    step = hog_memory_on_first_attempt.with_options(
        settings={"resources": ResourceSettings(memory="384MiB")},
        retry=StepRetryConfig(max_retries=2, delay=1, backoff=1),
    )

    from zenml import pipeline

    @pipeline(enable_cache=False, name="memory_retry_pipeline")
    def retried():
        step(megabytes=800)

    run = retried()
    assert run.status == ExecutionStatus.COMPLETED
    assert run.steps["hog_memory_on_first_attempt"].output.load() == 2
    assert "out of memory" in caplog.text and "retrying" in caplog.text
    assert run_containers(run.id) == []


def test_out_of_memory_without_retries_fails_with_a_clear_reason(project_dir, run_containers):
    with pytest.raises(StepFailedError, match="out of memory"):
        memory_retry_pipeline.with_options(
            settings={"resources": ResourceSettings(memory="384MiB")}
        )(megabytes=800)
    run = latest_run("memory_retry_pipeline")
    assert run.status == ExecutionStatus.FAILED
    assert run.steps["hog_memory_on_first_attempt"].status == ExecutionStatus.FAILED
    assert run_containers(run.id) == []


def test_resource_settings_become_container_limits(project_dir, run_containers):
    settings = {
        "orchestrator": {"keep_containers": True},
        "resources": ResourceSettings(cpu_count=1, memory="200MiB"),
    }
    run = settings_pipeline.with_options(settings=settings)()
    containers = run_containers(run.id)
    try:
        assert len(containers) == 2
        for container in containers:
            host_config = container.attrs["HostConfig"]
            assert host_config["NanoCpus"] == 1_000_000_000
            assert host_config["Memory"] == 200 * 1024 * 1024
    finally:
        for container in containers:
            container.remove(force=True)


# -- stopping and interrupting a run started by another process ---------------

LONG_RUN = textwrap.dedent(
    """
    from orchestrator.teaching.examples import long_pipeline
    long_pipeline(seconds=120)
    """
)


def start_long_run(project_dir):
    """Start `long_pipeline` in a separate client process; wait until it runs."""
    process = subprocess.Popen(
        [sys.executable, "-c", LONG_RUN], cwd=project_dir,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )
    client = Client()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        runs = client.list_pipeline_runs(sort_by="desc:created", size=1,
                                         pipeline_name="long_pipeline").items
        if runs:
            run = client.get_pipeline_run(runs[0].id)
            if runs[0].created.timestamp() > STARTED[0] and "long_left" in run.steps \
                    and run.steps["long_left"].status == ExecutionStatus.RUNNING:
                return process, run
        if process.poll() is not None:
            raise AssertionError(f"client ended early:\n{process.stdout.read()}")
        time.sleep(0.5)
    process.kill()
    raise AssertionError("long_pipeline never reached its long steps")


STARTED = [0.0]


@pytest.fixture
def long_run(project_dir):
    STARTED[0] = time.time() - 1
    process, run = start_long_run(project_dir)
    yield process, run
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)


def test_stop_request_stops_the_run(long_run, run_containers, project_dir):
    process, run = long_run
    result = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "zenml"), "pipeline", "runs",
         "stop", str(run.id), "-y"],
        cwd=project_dir, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    output, _ = process.communicate(timeout=60)
    assert process.returncode != 0
    assert "was stopped" in output, output[-3000:]
    run = Client().get_pipeline_run(run.id)
    assert run.status == ExecutionStatus.STOPPED
    assert statuses(run)["long_left"] == ExecutionStatus.STOPPED
    assert "join_two" not in run.steps
    assert run_containers(run.id) == []


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_interrupting_the_client_stops_and_removes_everything(long_run, run_containers,
                                                              signal_number):
    """Ctrl-C in a terminal or JupyterLab's interrupt (SIGINT), or a `kill` (SIGTERM)."""
    process, run = long_run
    interrupted = time.monotonic()
    os.kill(process.pid, signal_number)
    output, _ = process.communicate(timeout=60)
    assert time.monotonic() - interrupted < 30, "the client took too long to stop"
    assert process.returncode != 0
    assert run_containers(run.id) == []
    run = Client().get_pipeline_run(run.id)  # as a stop request leaves it (README)
    assert run.status == ExecutionStatus.STOPPED, run.status
    assert statuses(run)["long_left"] == ExecutionStatus.STOPPED


def _fetch_status(run):
    from zenml.stack import StackComponent

    component = run.stack.components[StackComponentType.ORCHESTRATOR][0]
    orchestrator = StackComponent.from_model(component_model=component)
    return orchestrator.fetch_status(run=Client().get_pipeline_run(run.id), include_steps=True)


def test_fetch_status_follows_the_containers_even_when_the_client_dies(long_run,
                                                                       run_containers):
    process, run = long_run
    pipeline_status, steps = _fetch_status(run)
    assert pipeline_status == ExecutionStatus.RUNNING
    assert steps["long_left"] == ExecutionStatus.RUNNING

    os.killpg(process.pid, signal.SIGKILL)  # no chance to clean up
    process.wait(timeout=30)
    pipeline_status, steps = _fetch_status(run)
    assert steps["long_left"] == ExecutionStatus.RUNNING  # its container still runs
    assert pipeline_status == ExecutionStatus.FAILED  # but nothing can follow it

    # Stopping the orphaned run stops and removes what the client left.
    from zenml.utils.run_utils import stop_run

    stop_run(Client().get_pipeline_run(run.id), graceful=False)
    assert run_containers(run.id) == []
