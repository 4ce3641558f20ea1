"""Real pipelines on the real engine: one container per step, settings, errors.

Every test here runs through ZenML (a private store, the stack registered with
the four reference commands) and the Docker engine; nothing is mocked.
"""

import os

import pytest
from zenml.client import Client
from zenml.config import DockerSettings
from zenml.enums import ExecutionStatus

from orchestrator.errors import (
    DockerEngineUnavailableError,
    ImageNotFoundError,
    InvalidSettingsError,
    StepFailedError,
)
from orchestrator.running.labels import PIPELINE_RUN_ID_LABEL, STEP_LABEL
from orchestrator.teaching.examples import demo_pipeline, failing_pipeline, settings_pipeline

KEEP = {"orchestrator": {"keep_containers": True}}


def latest_run(pipeline_name):
    return Client().get_pipeline(pipeline_name).last_run


def remove(containers):
    for container in containers:
        container.remove(force=True)


def test_each_step_runs_in_its_own_container(project_dir, run_containers):
    run = demo_pipeline.with_options(settings=KEEP)(count=5, seconds=1)
    containers = run_containers(run.id)
    try:
        assert run.status == ExecutionStatus.COMPLETED
        assert run.steps["total"].output.load() == 60  # 2 * (2 * (1+...+5))
        steps = sorted(c.labels[STEP_LABEL] for c in containers)
        assert steps == ["double_left", "double_right", "load_numbers", "total"]
        assert len({c.id for c in containers}) == 4
        for container in containers:
            assert container.labels[PIPELINE_RUN_ID_LABEL] == str(run.id)
            assert container.attrs["State"]["ExitCode"] == 0
            host_config = container.attrs["HostConfig"]
            assert not host_config["Privileged"]
            assert container.attrs["Config"]["User"] == f"{os.getuid()}:{os.getgid()}"
            binds = " ".join(host_config["Binds"] or [])
            assert "docker.sock" not in binds
            assert len(host_config["Binds"]) == 2  # ZenML's local stores + our package
    finally:
        remove(containers)


def test_parallel_branches_overlap_in_time(project_dir):
    run = demo_pipeline(count=3, seconds=4)
    left, right = run.steps["double_left"], run.steps["double_right"]
    assert left.start_time < right.end_time and right.start_time < left.end_time


def test_containers_are_removed_after_a_run(project_dir, run_containers):
    run = demo_pipeline(count=2, seconds=0)
    assert run.status == ExecutionStatus.COMPLETED
    assert run_containers(run.id) == []


def test_failing_step_names_step_exit_code_and_last_lines(project_dir, run_containers):
    with pytest.raises(StepFailedError) as raised:
        failing_pipeline()
    message = str(raised.value)
    assert "Step 'fail_with' failed" in message
    assert "exit code 1" in message
    assert "this step fails on purpose" in message
    assert "after_failure" in message  # skipped downstream is reported
    run = latest_run("failing_pipeline")
    assert run.status == ExecutionStatus.FAILED
    assert run.steps["fail_with"].status == ExecutionStatus.FAILED
    assert run.steps["independent"].status == ExecutionStatus.COMPLETED
    assert "after_failure" not in run.steps
    assert run_containers(run.id) == []


def test_settings_reach_docker_run(project_dir, run_containers):
    settings = {
        "orchestrator": {
            "keep_containers": True,
            "run_args": {
                "environment": {"MY_FLAG": "from-run-args"},
                "mem_limit": "300m",
                "labels": {"team": "tutorial"},
            },
        }
    }
    run = settings_pipeline.with_options(settings=settings)()
    containers = run_containers(run.id)
    try:
        assert run.steps["read_environment"].output.load() == "from-run-args"
        assert run.steps["report_user"].output.load() == f"{os.getuid()}:{os.getgid()}"
        for container in containers:
            assert container.attrs["HostConfig"]["Memory"] == 300 * 1024 * 1024
            assert container.labels["team"] == "tutorial"
    finally:
        remove(containers)


def test_misspelled_run_arg_is_a_clear_error(project_dir):
    settings = {"orchestrator": {"run_args": {"mem_limt": "1g"}}}
    with pytest.raises(InvalidSettingsError, match="Did you mean 'mem_limit'"):
        settings_pipeline.with_options(settings=settings)()


def test_missing_image_is_a_clear_error(project_dir):
    settings = {"orchestrator": {"run_args": {"image": "my-docker/no-such-image:1"}}}
    with pytest.raises(ImageNotFoundError, match="does not exist on this Docker engine"):
        settings_pipeline.with_options(settings=settings)()


def test_missing_parent_image_is_a_clear_error(project_dir):
    docker = DockerSettings(parent_image="my-docker/no-such-parent:1")
    with pytest.raises(ImageNotFoundError, match="python -m orchestrator.machine.base_image"):
        settings_pipeline.with_options(settings={"docker": docker})()


def test_engine_down_is_a_clear_error(project_dir, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///tmp/my-docker-no-engine.sock")
    with pytest.raises(Exception) as raised:
        settings_pipeline()
    message = str(raised.value)
    # The socket is not the system engine's, so setting up the system engine would not help:
    # the advice is to start the engine meant to listen there, or to stop choosing it.
    assert "No Docker engine answers at unix:///tmp/my-docker-no-engine.sock" in message, message
    assert "start the engine that should listen there" in message, message
    assert "unset it" in message, message
    assert "systemctl" not in message, message
    assert "Traceback" not in message


def test_connect_error_type(monkeypatch):
    from orchestrator.machine.engine import connect

    monkeypatch.setenv("DOCKER_HOST", "unix:///tmp/my-docker-no-engine.sock")
    with pytest.raises(DockerEngineUnavailableError):
        connect(timeout=2)


def test_a_schedule_is_refused_with_a_clear_message(project_dir):
    from zenml.config.schedule import Schedule

    with pytest.raises(ValueError, match="does not support scheduling"):
        settings_pipeline.with_options(schedule=Schedule(cron_expression="* * * * *"))()
