"""Shared fixtures: a private ZenML store, a project folder, a real Docker engine.

ZenML reads ZENML_CONFIG_PATH once, when it is first imported, so the test
session's own config folder is chosen here, at import time, before any test
module imports zenml. Everything a test session creates (store, artifacts,
registered flavor and stack) lives in a temporary folder and disappears with it.
"""

import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import pytest

from orchestrator.machine.local_store import seed_local_store
from tests import leftovers, parallel

REPO_ROOT = Path(__file__).resolve().parents[1]
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="my-docker-tests-"))
os.environ["ZENML_CONFIG_PATH"] = str(_SESSION_DIR / "zenml-config")
os.environ["ZENML_ANALYTICS_OPT_IN"] = "false"
os.environ.setdefault("ZENML_LOGGING_COLORS_DISABLED", "true")
os.environ.setdefault("ZENML_ENABLE_REPO_INIT_WARNINGS", "false")
seed_local_store(_SESSION_DIR / "zenml-config")  # the session's ZenML store, ready

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


def _engine_marks(items):
    """Mark the tests that need a Docker engine (`-m "not engine"`: the fast tier)."""
    for item in items:
        if ENGINE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.engine)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Mark engine tests; in a parallel session, group tests by file (a module's
    shared run stays on one worker) and order the groups longest first; and a
    user who is not root does not run the tests marked `needs_root` (they
    mount file systems, create network interfaces, start a second dockerd):
    they are deselected, counted in pytest's summary, and named at the end
    with the command that runs them."""
    _engine_marks(items)
    parallel.group_and_order(config, items)
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


def pytest_configure(config):
    """In the controller of a parallel session (`-n N`), the engine-wide check."""
    leftovers.register_controller_check(config)
    parallel.GroupTimes.register(config)


def imported_from_project(project_dir, module_name):
    """tests/<module_name>.py, copied into the project folder and imported from there (so
    that ZenML ships its steps to the containers as the project's code); a generator for a
    fixture: it forgets the module afterwards."""
    shutil.copy(Path(__file__).with_name(f"{module_name}.py"), project_dir / f"{module_name}.py")
    sys.path.insert(0, str(project_dir))
    try:
        yield importlib.import_module(module_name)
    finally:
        sys.path.remove(str(project_dir))
        sys.modules.pop(module_name, None)


@pytest.fixture(scope="module")
def faults(project_dir):
    """tests/fault_pipelines.py: the faults of the two fault modules."""
    yield from imported_from_project(project_dir, "fault_pipelines")


@pytest.fixture(scope="session", autouse=True)
def _no_containers_left_behind(request):
    """After the whole session, no container it created may remain on the engine.

    Every container that was not on the engine when the session started counts,
    labelled by the orchestrator or not (`tests/leftovers.py`, shared with the
    notebook suite); they are reported, then removed. The session's folder goes
    too. A session of pure tests only (none asked for an engine fixture) made
    no container: it neither checks nor removes anything, so that running the
    fast tests beside a real-engine session cannot remove that session's work.

    In a parallel session's worker, the containers of its own runs (by label)
    are checked here, and the engine-wide check is the controller's, once every
    worker has ended (`leftovers.ControllerCheck`).
    """
    config = request.config
    uses_engine = any(ENGINE_FIXTURES & set(getattr(item, "fixturenames", ()))
                      for item in request.session.items)
    if not uses_engine:
        yield
        shutil.rmtree(_SESSION_DIR, ignore_errors=True)
        return
    worker = parallel.is_worker(config)
    if worker:
        config.workeroutput[parallel.USED_ENGINE] = True
    baseline = None if worker else leftovers.take_baseline()
    yield
    try:
        owned = session_run_ids() if (_SESSION_DIR / "zenml-config").exists() else []
    except Exception:  # noqa: BLE001 - no store was ever created: no run of ours
        owned = []
    try:
        if worker:
            found = leftovers.remove_containers_of(owned, client_pid=os.getpid())
        else:
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


def _project_state():
    """What decides which code a step container gets and which stack runs it:
    ZenML's source root comes from a custom root or the working directory."""
    from zenml.client import Client
    from zenml.utils import source_utils

    return {
        "working directory": os.getcwd(),
        "ZenML's custom source root": source_utils._CUSTOM_SOURCE_ROOT,
        "ZenML's source root": source_utils.get_source_root(),
        "ZENML_REPOSITORY_PATH": os.environ.get("ZENML_REPOSITORY_PATH"),
        "ZenML's project root": str(Client().root),
        "the active stack": Client().active_stack_model.name,
    }


def _restore_project_state(state):
    from zenml.client import Client
    from zenml.utils import source_utils

    os.chdir(state["working directory"])
    source_utils.set_custom_source_root(state["ZenML's custom source root"])
    if state["ZENML_REPOSITORY_PATH"] is None:
        os.environ.pop("ZENML_REPOSITORY_PATH", None)
    else:
        os.environ["ZENML_REPOSITORY_PATH"] = state["ZENML_REPOSITORY_PATH"]
    Client().activate_root(Path(state["ZenML's project root"]))
    Client().activate_stack(state["the active stack"])


_LAST_TEST = {"nodeid": None}


@pytest.fixture(autouse=True)
def _project_state_kept(request):
    """Each test that uses the project starts with the project's state, and a
    test that leaves it changed fails (the state is restored either way).

    Many tests share one worker process: a pipeline run after a test that
    moved the working directory (or ZenML's source root) packs the wrong
    folder as its code, and its steps fail far away with
    `ModuleNotFoundError` (seen in a parallel session). Module fixtures that
    change it on purpose (another stack, a server) count as the state.
    """
    previous, _LAST_TEST["nodeid"] = _LAST_TEST["nodeid"], request.node.nodeid
    if "project_dir" not in request.fixturenames:
        yield
        return
    request.getfixturevalue("project_dir")
    before = _project_state()
    root = before["ZenML's project root"]
    if Path(before["working directory"]) != Path(root) or (
            Path(before["ZenML's source root"]) != Path(root)):
        # Something that asked for no project (a notebook's item, a test of
        # another kind) or a module fixture's teardown left the working
        # directory or ZenML's source root away from the project.
        from zenml.utils import source_utils

        os.chdir(root)
        source_utils.set_custom_source_root(None)
        where = (before["working directory"], before["ZenML's source root"])
        warnings.warn(f"the working directory and ZenML's source root were {where}, not the "
                      f"project {root}, after {previous}: put back before "
                      f"{request.node.nodeid}", stacklevel=1)
        before = _project_state()
    yield
    after = _project_state()
    if after != before:
        _restore_project_state(before)
        changed = {key: (before[key], after[key]) for key in before if before[key] != after[key]}
        pytest.fail(f"{request.node.nodeid} left ZenML's project changed (restored now): "
                    f"{changed}")
