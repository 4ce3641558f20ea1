"""Faults that small, real pipelines hit, each fixed as a kind, on the real engine.

Every test here failed before its fix (issue "Right on a real user's
machine"): a step's record against its exit code, container names, the
user's PYTHONPATH, settings the engine refuses, teardown cut short, a stop
during a retry's wait, failure output, the store inside the project, image
build leftovers and step containers for any uid.
"""

import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest
from zenml.client import Client
from zenml.config import DockerSettings, ResourceSettings
from zenml.config.retry_config import StepRetryConfig
from zenml.enums import ExecutionStatus

from orchestrator.errors import InvalidSettingsError, RunStoppedError, StepFailedError
from orchestrator.machine.stack import REFERENCE_COMMANDS

PARENT_IMAGE = "my-docker/zenml-parent:0.98.0-py3.11"
NO_BUILD = {"docker": DockerSettings(skip_build=True, parent_image=PARENT_IMAGE)}


def latest_run(pipeline_name):
    return Client().get_pipeline(pipeline_name).last_run


def test_exit_code_0_without_a_recorded_success_fails_that_step(faults, run_containers):
    with pytest.raises(StepFailedError) as raised:
        faults.early_exit_pipeline.with_options(settings=NO_BUILD)()
    message = str(raised.value)
    assert "Step 'exits_early' failed" in message
    assert "sys.exit" in message
    assert "Step 'needs_value' failed" not in message  # not blamed on the downstream step
    run = latest_run("early_exit_pipeline")
    assert run.status == ExecutionStatus.FAILED
    assert run.steps["exits_early"].status == ExecutionStatus.FAILED
    assert "needs_value" not in run.steps  # never started
    assert run_containers(run.id) == []


def test_step_names_that_differ_only_in_odd_characters_all_run(faults, run_containers):
    run = faults.look_alike_names_pipeline.with_options(settings=NO_BUILD)()
    assert run.status == ExecutionStatus.COMPLETED
    assert len(run.steps) == 5
    assert all(step.output.load() == "ok" for step in run.steps.values())
    assert run_containers(run.id) == []


def test_the_users_pythonpath_is_kept(faults, tmp_path):
    library = tmp_path / "user-lib"
    library.mkdir()
    (library / "user_helpers.py").write_text("GREETING = 'hello from user_helpers'\n")
    library.chmod(0o755)
    settings = {
        "docker": DockerSettings(skip_build=True, parent_image=PARENT_IMAGE,
                                 environment={"PYTHONPATH": "/user-lib"}),
        "orchestrator": {"run_args": {"volumes": {str(library): {"bind": "/user-lib",
                                                                  "mode": "ro"}}}},
    }
    run = faults.user_module_pipeline.with_options(settings=settings)()
    assert run.steps["import_user_module"].output.load() == "hello from user_helpers"

    step_level = faults.python_path.with_options(environment={"PYTHONPATH": "/step-lib"})
    from zenml import pipeline

    @pipeline(enable_cache=False, name="python_path_pipeline", settings=NO_BUILD)
    def step_environment():
        step_level()

    path = step_environment().steps["python_path"].output.load().split(":")
    assert "/step-lib" in path and "/opt/my_docker/src" in path


def test_settings_the_engine_refuses_fail_the_run_before_any_step_starts(faults,
                                                                         run_containers):
    refused = faults.needs_value.with_options(settings={
        "resources": ResourceSettings(memory="64MiB"),
        # Docker refuses a memory limit above the memory+swap limit.
        "orchestrator": {"run_args": {"mem_limit": "1g"}},
    })
    from zenml import pipeline

    @pipeline(enable_cache=False, name="refused_settings_pipeline", settings=NO_BUILD)
    def refused_pipeline():
        refused(faults.say_hello())

    with pytest.raises(InvalidSettingsError, match="needs_value") as raised:
        refused_pipeline()
    assert "swap" in str(raised.value).lower()
    run = latest_run("refused_settings_pipeline")
    assert run.status == ExecutionStatus.FAILED
    assert "swap" in (run.get_body().status_reason or "").lower()
    assert "say_hello" not in run.steps  # nothing ran
    assert run_containers(run.id) == []


def test_a_finishing_step_keeps_its_stored_log_with_zero_stop_grace(faults):
    settings = {**NO_BUILD, "orchestrator": {"stop_grace_seconds": 0}}
    run = faults.two_step_pipeline.with_options(settings=settings)()
    assert run.status == ExecutionStatus.COMPLETED
    for name in ("say_hello", "needs_value"):
        step_logs = [logs for logs in run.steps[name].log_collection
                     if logs.body.source == "step"]
        assert step_logs, f"{name} has no stored step log"
        assert all(Path(logs.body.uri).exists() for logs in step_logs), name
    text = "".join(Path(logs.body.uri).read_text() for logs in
                   run.steps["say_hello"].log_collection)
    assert "hello from the step's own log" in text


def test_stop_while_a_step_waits_to_retry_ends_the_run_stopped(faults, run_containers):
    retried = faults.exits_early.with_options(retry=StepRetryConfig(max_retries=2, delay=60))
    from zenml import pipeline

    @pipeline(enable_cache=False, name="stop_in_retry_pipeline", settings=NO_BUILD)
    def stop_in_retry():
        faults.needs_value(retried())

    stopped = {}

    def stop_when_retrying():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            runs = Client().list_pipeline_runs(pipeline_name="stop_in_retry_pipeline",
                                               sort_by="desc:created", size=1).items
            if runs:
                steps = Client().list_run_steps(pipeline_run_id=runs[0].id).items
                if any(s.status == ExecutionStatus.RETRYING for s in steps):
                    from zenml.utils.run_utils import stop_run

                    stop_run(Client().get_pipeline_run(runs[0].id), graceful=False)
                    stopped["run"] = runs[0].id
                    return
            time.sleep(0.5)

    stopper = threading.Thread(target=stop_when_retrying, daemon=True)
    stopper.start()
    started = time.monotonic()
    with pytest.raises(RunStoppedError):
        stop_in_retry()
    stopper.join(timeout=10)
    assert "run" in stopped, "the step never reached its retry wait"
    assert time.monotonic() - started < 50, "the 60 s retry delay should not be awaited"
    run = Client().get_pipeline_run(stopped["run"])
    assert run.status == ExecutionStatus.STOPPED, run.status
    open_records = [(s.name, s.status) for s in Client().list_run_steps(
        pipeline_run_id=run.id).items if not s.status.is_finished]
    assert open_records == []
    assert run_containers(run.id) == []


FAILING_CLIENT = textwrap.dedent(
    """
    from zenml.config import DockerSettings
    from orchestrator.teaching.examples import failing_pipeline
    failing_pipeline.with_options(settings={"docker": DockerSettings(
        skip_build=True, parent_image=%r)})()
    """ % PARENT_IMAGE
)


def test_a_failing_step_is_told_once_briefly_with_its_log(project_dir):
    result = subprocess.run([sys.executable, "-c", FAILING_CLIENT], cwd=project_dir,
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "ZENML_LOGGING_COLORS_DISABLED": "true"})
    output = result.stdout + result.stderr
    assert result.returncode != 0
    lines = output.splitlines()
    assert len(lines) < 80, f"{len(lines)} lines of output:\n{output}"
    assert "Traceback" not in output.replace("[traceback of", "")
    assert "│" not in output  # no boxed traceback, from the step or the client
    assert output.count("RuntimeError: this step fails on purpose") == 2  # live, summary
    assert "StepFailedError: Step 'fail_with' failed: RuntimeError" in output
    assert "exit code 1" in output
    log_path = next(line.split("full log: ", 1)[1].strip() for line in lines
                    if "full log: " in line)
    full_log = Path(log_path).read_text()
    assert "Traceback (most recent call last)" in full_log
    assert 'raise RuntimeError(message)' in full_log


BAD_INPUT_CLIENT = """
import sys
from zenml.config import DockerSettings
from orchestrator.teaching.examples import chain_pipeline
docker = DockerSettings(skip_build=True, parent_image=%r)
case = sys.argv[1]
orchestrator = {"zero_parallelism": {"max_parallelism": 0},
                "timeout_in_words": {"timeout_seconds": "soon"},
                "memory_in_words": {"run_args": {"mem_limit": "lots"}}}.get(case, {})
if case == "missing_parent_image":
    docker = DockerSettings(parent_image="my-docker/no-such-parent:1")
chain_pipeline.with_options(settings={"docker": docker, "orchestrator": orchestrator})(length=2)
""" % PARENT_IMAGE


@pytest.mark.parametrize("case, told", [
    ("zero_parallelism", "max_parallelism"),
    ("timeout_in_words", "timeout_seconds"),
    ("memory_in_words", "mem_limit='512m'"),
    ("missing_parent_image", "my-docker/no-such-parent:1"),
    ("no_engine", "Docker"),
])
def test_bad_input_is_told_as_a_short_message(project_dir, case, told):
    """Each kind of mistake a user makes before a step runs (settings pydantic
    refuses inside ZenML's compiler, run_args docker-py refuses, a missing
    parent image, no engine): its message, not a screen of library frames."""
    env = {**os.environ, "ZENML_LOGGING_COLORS_DISABLED": "true"}
    if case == "no_engine":
        env["DOCKER_HOST"] = "unix:///tmp/my-docker-no-such-engine.sock"
    result = subprocess.run([sys.executable, "-c", BAD_INPUT_CLIENT, case], cwd=project_dir,
                            capture_output=True, text=True, timeout=300, env=env)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "Traceback" not in output and "│" not in output, output[-5000:]
    assert told in output, output[-3000:]
    assert "traceback hidden: set MY_DOCKER_FULL_TRACEBACKS=1" in output
    assert len(output.splitlines()) < 40, output


def _fresh_project(root: Path, config: Path, umask: int = 0o022) -> dict:
    """A new project folder with its own ZenML config, stack registered."""
    root.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "ZENML_CONFIG_PATH": str(config), "ZENML_ANALYTICS_OPT_IN": "false"}
    zenml = str(Path(sys.executable).with_name("zenml"))
    for command in ["zenml init", *REFERENCE_COMMANDS]:
        subprocess.run([zenml, *command.split()[1:]], cwd=root, env=env, check=True,
                       capture_output=True, preexec_fn=lambda: os.umask(umask))
    return env


@pytest.mark.engine
def test_a_store_inside_the_project_folder_is_warned_about_once(tmp_path):
    project = tmp_path / "project"
    env = _fresh_project(project, project / ".zen-config")
    client = "from orchestrator.teaching.examples import chain_pipeline; " \
             f"from zenml.config import DockerSettings; chain_pipeline.with_options(" \
             f"settings={{'docker': DockerSettings(skip_build=True, parent_image={PARENT_IMAGE!r})}})(length=2)"
    result = subprocess.run([sys.executable, "-c", client], cwd=project, env=env,
                            capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert output.count("is inside the pipeline's source root") == 1, output[-3000:]
    assert "Keep ZENML_CONFIG_PATH outside the project folder" in output


@pytest.mark.needs_root  # the client must write files another uid's container created
def test_any_uid_runs_steps_from_an_image_without_app(tmp_path):
    """A uid that owns nothing in the image (as a docker-group user's would).

    Root only: ZenML's client appends to log files the step (uid 4242) created
    with its own umask, which only root may do. As an unprivileged user the
    containers run as that user's own uid, which every other test covers."""
    project = tmp_path / "project"
    config = tmp_path / "config"
    env = _fresh_project(project, config, umask=0)
    for path in config.rglob("*"):  # the uid writes the store (SQLite ignores the umask)
        path.chmod(0o777 if path.is_dir() else 0o666)
    client = textwrap.dedent(f"""
        import os
        os.umask(0)
        from zenml.config import DockerSettings
        from orchestrator.teaching.examples import settings_pipeline
        run = settings_pipeline.with_options(settings={{
            "docker": DockerSettings(skip_build=True, parent_image={PARENT_IMAGE!r}),
            "orchestrator": {{"run_args": {{"user": "4242:4242"}}}},
        }})()
        print("RESULT", run.status.value, run.steps["report_user"].output.load())
    """)
    result = subprocess.run([sys.executable, "-c", client], cwd=project, env=env,
                            capture_output=True, text=True, timeout=300,
                            preexec_fn=lambda: os.umask(0))
    output = result.stdout + result.stderr
    assert "Permission denied" not in output, output[-3000:]
    assert "RESULT completed 4242:4242" in output, output[-3000:]


def _unlabelled_container_ids(docker_client):
    """What a build leaves behind: containers of a build step. Docker's classic
    builder runs each step in a container made from the previous layer, named
    by its id (``sha256:...``); step containers carry our labels, and other
    containers made while this test runs (other tests of a parallel session,
    a reader's orchestrator) name their image."""
    from orchestrator.running.labels import MANAGED_BY_LABEL

    return {c.id for c in docker_client.containers.list(all=True, ignore_removed=True)
            if MANAGED_BY_LABEL not in c.labels
            and str(c.attrs["Config"].get("Image", "")).startswith("sha256:")}


def test_image_builds_leave_no_container_behind(project_dir, faults, docker_client):
    before = _unlabelled_container_ids(docker_client)
    fresh = DockerSettings(environment={"CACHE_BUSTER": uuid.uuid4().hex})  # an uncached build
    run = faults.two_step_pipeline.with_options(settings={"docker": fresh})()
    assert run.status == ExecutionStatus.COMPLETED
    assert _unlabelled_container_ids(docker_client) - before == set()

    broken = DockerSettings(requirements=["this-package-does-not-exist-4242"],
                            environment={"CACHE_BUSTER": uuid.uuid4().hex})
    with pytest.raises(Exception, match="this-package-does-not-exist-4242|returned a non-zero"):
        faults.two_step_pipeline.with_options(settings={"docker": broken})()
    assert _unlabelled_container_ids(docker_client) - before == set()


def test_a_step_past_its_timeout_is_stopped_recorded_and_retried(faults, run_containers, caplog):
    timed = {**NO_BUILD, "orchestrator": {"timeout_seconds": 8, "stop_grace_seconds": 2}}
    started = time.monotonic()
    with pytest.raises(StepFailedError, match="timed out after 8 s"):
        faults.hanging_pipeline.with_options(settings=timed)()
    assert time.monotonic() - started < 50, "the 60 s sleep should have been cut"
    run = latest_run("hanging_pipeline")
    assert run.status == ExecutionStatus.FAILED
    assert run.steps["sleeps_unless_retried"].status.is_finished
    assert run_containers(run.id) == []

    retried = faults.hanging_pipeline.with_options(
        settings=timed, steps={"sleeps_unless_retried": {
            "retry": StepRetryConfig(max_retries=1, delay=0),
            # a setting of the whole run, set on a step: told, not dropped in silence
            "settings": {"orchestrator": {"stop_grace_seconds": 1}}}})()
    assert retried.status == ExecutionStatus.COMPLETED
    assert retried.steps["sleeps_unless_retried"].output.load() == 2  # the second attempt
    assert "timed out after 8 s" in caplog.text
    assert ("Step 'sleeps_unless_retried' sets the orchestrator setting stop_grace_seconds=1, "
            "which applies to the whole run: the run's value 2 is used") in caplog.text


@pytest.mark.parametrize("stage", [4, 6])
def test_the_readers_file_records_a_run_failed_when_a_step_ends_without_its_record(
        faults, project_dir, run_containers, stage):
    """The tutorial's files (the reference pieces in place) marked such a run failed with
    the run's id as a string: ZenML's store wants a UUID, and the call raised
    `StatementError: 'str' object has no attribute 'hex'` in place of the run's
    failure (a trial on a rootless engine, where every step died before its record)."""
    from orchestrator.teaching.assembly import reference_file
    from tests.test_conformance import _register

    module = f"reader_stage{stage}_record"
    client = Client()
    _register(client, module, project_dir, reference_file(stage))
    try:
        client.activate_stack(module)
        with pytest.raises(RuntimeError) as raised:
            faults.unrecorded_failure_pipeline.with_options(settings=NO_BUILD)()
        assert "dies_before_its_record" in str(raised.value), str(raised.value)
        run = latest_run("unrecorded_failure_pipeline")
        assert run.status == ExecutionStatus.FAILED, run.status
        assert run_containers(run.id) == []
    finally:
        client.activate_stack("my_stack")
        (project_dir / f"{module}.py").unlink(missing_ok=True)
