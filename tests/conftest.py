"""Shared fixtures: a private ZenML store, a project folder, a real Docker engine.

ZenML reads ZENML_CONFIG_PATH once, when it is first imported, so the test
session's own config folder is chosen here, at import time, before any test
module imports zenml. Everything a test session creates (store, artifacts,
registered flavor and stack) lives in a temporary folder and disappears with it.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests import leftovers

REPO_ROOT = Path(__file__).resolve().parents[1]
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="my-docker-tests-"))
os.environ["ZENML_CONFIG_PATH"] = str(_SESSION_DIR / "zenml-config")
os.environ["ZENML_ANALYTICS_OPT_IN"] = "false"
os.environ.setdefault("ZENML_LOGGING_COLORS_DISABLED", "true")
os.environ.setdefault("ZENML_ENABLE_REPO_INIT_WARNINGS", "false")

# The reference registration commands, exactly as users type them.
REFERENCE_COMMANDS = [
    "zenml orchestrator flavor register orchestrator.my_docker_orchestrator.MyDockerOrchestratorFlavor",
    "zenml orchestrator register my_docker_orchestrator -f my_docker",
    "zenml stack register my_stack -o my_docker_orchestrator -a default",
    "zenml stack set my_stack",
]


def zenml_cli(command: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run a `zenml ...` command line in `cwd`, failing loudly with its output."""
    args = command.split()
    args[0] = str(Path(sys.executable).with_name("zenml"))
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=os.environ.copy())
    if result.returncode != 0:
        raise AssertionError(
            f"`{command}` failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def pytest_collection_modifyitems(config, items):
    """A user who is not root does not run the tests marked `needs_root` (they
    mount file systems, create network interfaces, start a second dockerd):
    they are deselected, counted in pytest's summary, and named at the end
    with the command that runs them."""
    if os.geteuid() == 0:
        return
    kept, needs_root = [], []
    for item in items:
        (needs_root if item.get_closest_marker("needs_root") else kept).append(item)
    if needs_root:
        config.hook.pytest_deselected(items=needs_root)
        items[:] = kept
        config._my_docker_needs_root = len(needs_root)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    count = getattr(config, "_my_docker_needs_root", 0)
    if count:
        terminalreporter.line(
            f"{count} test(s) need root and were not run: sudo python -m pytest -m needs_root tests")


@pytest.fixture(scope="session")
def docker_client():
    """A client of the real engine (started if needed, as in `.ci/run`)."""
    from orchestrator.machine.engine import ensure_engine

    return ensure_engine()


@pytest.fixture(scope="session")
def parent_image(docker_client):
    """The offline parent image, tagged with ZenML's default parent name."""
    from orchestrator.machine.base_image import ensure_parent_image

    return ensure_parent_image(client=docker_client)


@pytest.fixture(scope="session")
def project_dir(parent_image):
    """A user's project folder outside this repository, set up with the four
    reference commands, and made the working directory for the session."""
    project = _SESSION_DIR / "project"
    project.mkdir()
    zenml_cli("zenml init", project)
    for command in REFERENCE_COMMANDS:
        zenml_cli(command, project)
    previous = os.getcwd()
    os.chdir(project)
    from zenml.client import Client

    Client().activate_root(project)  # this process too uses the project's stack
    Client().activate_stack("my_stack")
    yield project
    os.chdir(previous)


def session_run_ids():
    """Ids of every pipeline run recorded in this session's private store."""
    from zenml.client import Client

    return [str(run.id) for run in Client().list_pipeline_runs(size=1000).items]


# A test that asks for one of these may create containers.
ENGINE_FIXTURES = frozenset({"docker_client", "parent_image", "project_dir", "run_containers"})


@pytest.fixture(scope="session", autouse=True)
def _no_containers_left_behind(request):
    """After the whole session, no container it created may remain on the engine.

    Every container that was not on the engine when the session started counts,
    labelled by the orchestrator or not (`tests/leftovers.py`, shared with the
    notebook suite); they are reported, then removed. The session's folder goes
    too. A session of pure tests only (none asked for an engine fixture) made
    no container: it neither checks nor removes anything, so that running the
    fast tests beside a real-engine session cannot remove that session's work.
    """
    uses_engine = any(ENGINE_FIXTURES & set(getattr(item, "fixturenames", ()))
                      for item in request.session.items)
    if not uses_engine:
        yield
        shutil.rmtree(_SESSION_DIR, ignore_errors=True)
        return
    baseline = leftovers.take_baseline()
    yield
    try:
        owned = session_run_ids() if (_SESSION_DIR / "zenml-config").exists() else []
    except Exception:  # noqa: BLE001 - no store was ever created: no run of ours
        owned = []
    try:
        found = leftovers.remove_new_containers(baseline, owned_run_ids=owned)
    finally:
        shutil.rmtree(_SESSION_DIR, ignore_errors=True)
    assert not found, leftovers.report(found)


@pytest.fixture
def run_containers(docker_client):
    """Returns a function listing the containers of one pipeline run (by label)."""
    from orchestrator.running.labels import find_containers

    def _list(pipeline_run_id):
        return find_containers(docker_client, pipeline_run_id=str(pipeline_run_id))

    return _list
