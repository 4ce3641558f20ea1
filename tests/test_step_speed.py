"""What runs inside a step container now, checked on the real engine (issue "Per-step cost
near the floor").

Step containers run `orchestrator.running.step_entrypoint` (ZenML's own step
code, warmed up before the step may start, printing a done line) and start
early, waiting at a gate until their upstream steps succeeded. These tests
check what that must not change: a step never starts its work before its
upstream steps succeeded, outputs and logs are stored, retries get fresh
containers, timeouts count from the gate, waiting containers of steps that
will not run are removed, exit codes and ZenML's record stay true, the done
line shows nowhere. A waiting container whose orchestrator is gone leaves.
"""

import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from zenml.client import Client
from zenml.config import DockerSettings
from zenml.enums import ExecutionStatus

from orchestrator.errors import StepFailedError
from orchestrator.running.step_entrypoint import ALIVE_FILE, DONE_LINE_PREFIX, ORPHANED_EXIT_CODE
from orchestrator.running.step_logs import run_log_dir
from orchestrator.running.step_timing import read_timings
from orchestrator.zenml_records import epoch_seconds
from tests.conftest import imported_from_project

PARENT_IMAGE = "my-docker/zenml-parent:0.98.0-py3.11"
NO_BUILD = {"docker": DockerSettings(skip_build=True, parent_image=PARENT_IMAGE)}
REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def speed(project_dir):
    """tests/speed_pipelines.py, imported from the project folder."""
    yield from imported_from_project(project_dir, "speed_pipelines")


def latest_run(pipeline_name):
    return Client().get_pipeline(pipeline_name).last_run


def timings_by_step(run):
    found = {}
    for timing in read_timings(run_log_dir(str(run.id))):
        found.setdefault(timing.step, []).append(timing)
    return found


def waiting_for(**environment):
    """NO_BUILD settings whose step containers get `environment`."""
    return {**NO_BUILD, "orchestrator": {"run_args": {"environment": environment}}}


def test_a_step_started_early_does_its_work_only_after_its_upstream_succeeded(
        speed, run_containers, monkeypatch):
    from zenml.config.global_config import GlobalConfiguration

    from orchestrator.running import runner

    # The upstream step works until the early container says it is warmed up
    # (its ready line reached the orchestrator), however slow the machine is.
    ready = f"ready-{uuid.uuid4().hex[:8]}"
    handle = runner.DagRunner._handle

    def noting_ready(self, event):
        if isinstance(event, runner._Ready) and event.step_name == "second":
            (Path(GlobalConfiguration().local_stores_path) / ready).touch()
        return handle(self, event)

    monkeypatch.setattr(runner.DagRunner, "_handle", noting_ready)
    settings = waiting_for(**{speed.WAIT_ENV: ready})
    settings["orchestrator"]["keep_containers"] = True
    run = speed.gated_chain.with_options(settings=settings)(seconds=2.0)
    kept = {c.labels["io.my-docker.step"]: c for c in run_containers(run.id)}
    for container in kept.values():
        container.remove(force=True)
    assert run.status == ExecutionStatus.COMPLETED
    source, second = run.steps["slow_source"], run.steps["second"]
    source_done = source.output.load()
    second_started = second.output.load()
    timings = timings_by_step(run)
    (early,) = timings["second"]
    # Its container existed, and warmed up, while the upstream step still worked ...
    assert early.started_early
    assert early.docker_created < source_done
    stages = {stage: wall for stage, wall, _ in early.inside["stages"]}
    assert stages["stack and step module"] < source_done  # imports done while waiting
    # ... and yet its step started only after the upstream step's success was recorded.
    assert early.gate_opened >= epoch_seconds(source.end_time)
    assert epoch_seconds(second.start_time) >= epoch_seconds(source.end_time)
    assert second_started > source_done
    # It waited with a lower CPU weight, and got Docker's default back at its gate.
    assert early.lowered_cpu
    assert kept["second"].attrs["HostConfig"]["CpuShares"] == runner.DEFAULT_CPU_SHARES


def test_a_container_that_dies_while_waiting_is_replaced_by_a_fresh_one(speed, run_containers,
                                                                       caplog):
    """Its death is no attempt of the step (before, the step failed when its gate opened)."""
    crashed = f"crashed-{uuid.uuid4().hex[:8]}"
    settings = waiting_for(**{speed.CRASH_ENV: crashed, speed.WAIT_ENV: crashed})
    run = speed.gated_chain.with_options(settings=settings)(seconds=2.0)
    assert run.status == ExecutionStatus.COMPLETED
    assert "early container ended before the step could start (exit code 3" in caplog.text
    (timing,) = timings_by_step(run)["second"]
    assert timing.attempt == 1 and not timing.started_early  # a fresh container, same attempt
    assert run.steps["second"].output.load() > run.steps["slow_source"].output.load()
    assert run_containers(run.id) == []


def test_outputs_logs_and_record_are_kept_and_the_done_line_shows_nowhere(speed, caplog):
    run = speed.unterminated_output.with_options(settings=NO_BUILD)()
    assert run.status == ExecutionStatus.COMPLETED
    assert run.steps["add_one"].output.load() == 8
    for step_run in run.steps.values():
        assert step_run.status == ExecutionStatus.COMPLETED
    stored = "".join(Path(logs.uri).read_text()
                     for logs in run.steps["print_without_newline"].log_collection or []
                     if logs.uri and Path(logs.uri).is_file())
    assert "no newline at the end" in stored  # ZenML stored the step's own output
    assert DONE_LINE_PREFIX not in stored
    folder = run_log_dir(str(run.id))
    log = (folder / "print_without_newline.1.log").read_text()
    assert "no newline at the end" in log  # the step's unterminated last line is kept
    for path in folder.glob("*.log"):
        assert DONE_LINE_PREFIX not in path.read_text(), path
    assert DONE_LINE_PREFIX not in caplog.text
    assert "no newline at the end" in caplog.text
    timings = timings_by_step(run)
    for step in ("print_without_newline", "add_one"):
        (timing,) = timings[step]
        assert timing.inside is not None, step  # the done line reached the runner
        assert timing.success_known is not None and timing.removed is not None


def test_a_retried_step_gets_a_fresh_container_and_its_downstream_step_waits(
        speed, run_containers):
    run = speed.retried_chain.with_options(settings=NO_BUILD)()
    assert run.status == ExecutionStatus.COMPLETED
    assert run.steps["add_one"].output.load() == 3
    timings = timings_by_step(run)
    attempts = timings["flaky_on_first_attempt"]
    assert [t.attempt for t in attempts] == [1, 2]
    assert attempts[0].container != attempts[1].container
    assert not attempts[1].started_early  # a retry starts when it is due, fresh
    # The failed attempt reported no stages (no done line), yet its warm-up's end
    # is known: the orchestrator saw its ready line (the timeline splits its bar).
    assert attempts[0].inside is None and attempts[0].ready_seen is not None
    assert attempts[0].start_returned <= attempts[0].ready_seen <= attempts[0].exit_seen
    (downstream,) = timings["add_one"]
    assert downstream.started_early
    assert downstream.gate_opened >= attempts[1].success_known
    assert run_containers(run.id) == []


def test_a_timeout_counts_from_the_gate_not_from_the_wait(speed, run_containers):
    run = speed.long_wait_short_step.with_options(settings=NO_BUILD)(wait=8.0, timeout=5.0)
    assert run.status == ExecutionStatus.COMPLETED, "the 8 s wait was counted as the step's time"
    (timing,) = timings_by_step(run)["sleep_a_little"]
    assert timing.started_early and timing.gate_opened - timing.start_returned > 5
    assert run_containers(run.id) == []


def test_the_waiting_container_of_a_skipped_step_is_removed(project_dir, run_containers,
                                                            docker_client, caplog):
    from orchestrator.running.labels import STARTED_EARLY_LABEL
    from orchestrator.teaching.examples import failing_pipeline

    with pytest.raises(StepFailedError):
        failing_pipeline.with_options(settings=NO_BUILD)()
    run = latest_run("failing_pipeline")
    assert "[after_failure] container" in caplog.text and "started early" in caplog.text
    assert "after_failure" not in run.steps  # it never ran
    assert run.steps["independent"].status == ExecutionStatus.COMPLETED
    assert not (run_log_dir(str(run.id)) / "after_failure.1.log").exists()
    assert "after_failure" not in timings_by_step(run)  # no attempt of the step
    # Its container's times stay in the record, marked, for the timeline.
    (waited,) = [t for t in read_timings(run_log_dir(str(run.id)), given_up=True)
                 if t.step == "after_failure"]
    assert waited.given_up and waited.started_early and waited.gate_opened is None
    assert waited.start_returned <= waited.removed
    assert run_containers(run.id) == []
    assert docker_client.containers.list(
        ignore_removed=True, all=True, filters={"label": [f"{STARTED_EARLY_LABEL}=true",
                                     f"io.my-docker.pipeline-run-id={run.id}"]}) == []


def test_interrupting_the_client_removes_waiting_containers_too(project_dir, docker_client):
    """A waiting container (join_two waits for two 60 s steps) goes with the rest on Ctrl-C."""
    import signal
    import textwrap

    from orchestrator.running.labels import STARTED_EARLY_LABEL

    code = textwrap.dedent("""
        from orchestrator.teaching.examples import long_pipeline
        long_pipeline(seconds=60)
    """)
    process = subprocess.Popen([sys.executable, "-c", code], cwd=project_dir,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        waiting = []
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not waiting:
            waiting = docker_client.containers.list(ignore_removed=True, filters={"label": [
                f"{STARTED_EARLY_LABEL}=true", f"io.my-docker.client-pid={process.pid}",
                "io.my-docker.step=join_two"]})
            if process.poll() is not None:
                raise AssertionError(f"client ended early:\n{process.stdout.read()}")
            time.sleep(0.5)
        assert waiting, "join_two's container was never started early"
        time.sleep(2)  # join_two waits at its gate (and maybe long_left, long_right)
    finally:
        os.killpg(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    assert re.search(r"removing \d waiting one\(s\)", output), output[-2000:]
    left = docker_client.containers.list(ignore_removed=True, all=True, filters={
        "label": f"io.my-docker.client-pid={process.pid}"})
    assert left == []


def test_a_waiting_container_leaves_when_its_orchestrator_is_gone(docker_client, parent_image,
                                                                  tmp_path):
    """Its gate folder's alive file went stale (the orchestrator was killed): it exits."""
    folder = tmp_path / "gates"
    folder.mkdir()
    (folder / ALIVE_FILE).touch()
    stale = time.time() - 3600
    os.utime(folder / ALIVE_FILE, (stale, stale))
    code = ("from orchestrator.running.step_entrypoint import wait_for_gate; "
            "wait_for_gate('/gates/never-opened')")
    started = time.monotonic()
    output = None
    container = docker_client.containers.run(
        parent_image, ["python", "-c", code], detach=True,
        volumes={str(folder): {"bind": "/gates", "mode": "ro"},
                 str(REPO_ROOT / "orchestrator"): {"bind": "/opt/pkg/orchestrator", "mode": "ro"}},
        environment={"PYTHONPATH": "/opt/pkg"})
    try:
        result = container.wait(timeout=60)
        output = container.logs().decode()
    finally:
        container.remove(force=True)
    assert result["StatusCode"] == ORPHANED_EXIT_CODE, output
    assert "orchestrator that started this container is gone" in output
    assert time.monotonic() - started < 30


def test_the_step_entrypoint_keeps_zenmls_exit_codes(project_dir):
    """A failing step still ends its container with exit code 1 and ZenML records it failed."""
    from orchestrator.teaching.examples import failing_pipeline

    with pytest.raises(StepFailedError) as raised:
        failing_pipeline.with_options(settings=NO_BUILD)()
    (failure,) = [f for f in raised.value.failures if f.step_name == "fail_with"]
    assert failure.exit.exit_code == 1
    run = latest_run("failing_pipeline")
    assert run.steps["fail_with"].status == ExecutionStatus.FAILED
    (timing,) = timings_by_step(run)["fail_with"]
    assert timing.inside is None  # no done line for a failed step
    assert timing.docker_finished is not None and timing.removed is not None
