"""Run the conformance battery on a registered stack and collect the facts the judges need.

The battery is a fixed set of small pipelines (`orchestrator.conformance.probe`),
run on the stack's orchestrator exactly as a user would run theirs:

* ``shape``: two independent steps that wait for each other, one with
  ``ResourceSettings``, and (for the retry property) a third whose first
  container the kit kills (SIGKILL) -> one container per step, labels,
  parallel overlap, resource limits, retry, fetch_status of a completed run;
* ``fail_fast``, ``stop_on_failure``, ``continue_on_failure``: the same
  failing pipeline in each execution mode (in FAIL_FAST the step next to
  the failure goes on until the kit releases it, `notes.RELEASE_SECONDS` after
  the failed step's container ended);
* two runs started by other processes (``python -m
  orchestrator.conformance.child``): one stopped with ZenML's stop (what
  ``zenml pipeline runs stop`` does), one interrupted with SIGINT (Ctrl-C);
  fetch_status while one runs and after it was stopped;
* at the end: is any container of these runs left on the engine?

Only the runs the requested properties need are made. The kit removes what
an orchestrator leaves behind (after noting it), kills what it cannot stop,
and restores the active stack and source root it changed.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

from orchestrator.conformance.notes import NoteWatcher
from orchestrator.conformance.properties import (
    STOP_EXIT_SECONDS,
    BatteryFacts,
    ClientFacts,
    RunFacts,
    expected_statuses,
    judge_parallel,
)

PROBE_PREFIX = "my_docker_conformance_probe"
PROBE_SOURCE = Path(__file__).with_name("probe.py")
KIT_FOLDER = "my_docker_conformance"

# How long a probe step waits for a sibling that a parallel orchestrator runs
# at the same time. Generous: on a loaded machine two containers started
# together reached their step ~30 s apart (load average 30 on 2 cores), and a
# shorter wait judged a parallel orchestrator sequential. Only an orchestrator
# that runs steps one at a time waits it in full, once (unless the kit sees
# that the sibling has no container at all: `notes.ALONE_AFTER_SECONDS`).
SIBLING_WAIT_SECONDS = 90.0
# ... and when the shape run showed that the orchestrator runs steps one at a time.
SEQUENTIAL_WAIT_SECONDS = 2.0
# In FAIL_FAST, `slow` lingers after the failure until the kit releases it
# (`notes.RELEASE_SECONDS` after fail_soon's container has exited), at most
# FAIL_FAST_LINGER_SECONDS (steps in no container).
FAIL_FAST_LINGER_SECONDS = 180.0
CLIENT_START_TIMEOUT = 240.0
LONG_STEP_SECONDS = 600.0
SETTLE_SECONDS = 6.0

# Which runs each property needs.
NEEDS = {
    "one_container_per_step": {"shape"},
    "labels": {"shape"},
    "parallel": {"shape"},
    "resource_limits": {"shape"},
    "retry_killed": {"shape", "retry"},
    "mode_fail_fast": {"fail_fast"},
    "mode_stop_on_failure": {"stop_on_failure"},
    "mode_continue_on_failure": {"continue_on_failure"},
    "stop": {"stop"},
    "interrupt": {"interrupt"},
    "fetch_status": {"shape", "continue_on_failure", "stop"},
    "nothing_left_behind": set(),
}


class ConformanceSetupError(RuntimeError):
    """The battery could not be set up (no such stack, no ZenML project, ...)."""


# --------------------------------------------------------------------------
# Where the battery runs: stack, source root, the probe module
# --------------------------------------------------------------------------


@contextlib.contextmanager
def battery_environment(stack_name: str, token: str) -> Iterator[Dict[str, Any]]:
    """Make `stack_name` this process's active stack and the probe module importable.

    The stack is chosen with ZenML's ``ZENML_ACTIVE_STACK_ID`` variable (for
    this process and the kit's children only; nothing is written to the
    project's or global configuration), the probe module is copied into the
    project's source root (ZenML ships the source root to step containers),
    and everything is put back afterwards. The module's name is the
    battery's own (`token`), so that batteries run at the same time in one
    project (one per stack) never share or remove each other's file.

    Raises:
        ConformanceSetupError: no ZenML project here, or no such stack.
    """
    from zenml.client import Client
    from zenml.constants import ENV_ZENML_ACTIVE_STACK_ID
    from zenml.utils import source_utils

    root = Client.find_repository()
    if root is None:
        raise ConformanceSetupError(
            "No ZenML project here: run the conformance kit in your project folder "
            "(where `zenml init` ran), so that step containers get its code.")
    try:
        stack = Client().get_stack(stack_name)
    except KeyError as error:
        raise ConformanceSetupError(
            f"No stack named {stack_name!r}: `zenml stack list` shows the registered ones.") from error
    previous_stack = os.environ.get(ENV_ZENML_ACTIVE_STACK_ID)
    previous_root = getattr(source_utils, "_CUSTOM_SOURCE_ROOT", None)
    module_name = f"{PROBE_PREFIX}_{token}"
    probe_path = Path(root) / f"{module_name}.py"
    os.environ[ENV_ZENML_ACTIVE_STACK_ID] = str(stack.id)
    source_utils.set_custom_source_root(str(root))
    try:
        probe_path.write_text(PROBE_SOURCE.read_text())
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        importlib.invalidate_caches()
        module = importlib.import_module(module_name)
        yield {"stack": stack, "root": str(root), "probe": module, "module": module_name}
    finally:
        if previous_stack is None:
            os.environ.pop(ENV_ZENML_ACTIVE_STACK_ID, None)
        else:
            os.environ[ENV_ZENML_ACTIVE_STACK_ID] = previous_stack
        source_utils.set_custom_source_root(previous_root)
        probe_path.unlink(missing_ok=True)
        sys.modules.pop(module_name, None)


def kit_folder(token: str) -> Path:
    """A new folder for the notes of one battery, under ZenML's local stores path.

    Every local orchestrator mounts that path into its step containers at
    the same path (the store and artifact store live there), so the probe
    steps and the kit see the same files.
    """
    from zenml.config.global_config import GlobalConfiguration

    folder = Path(GlobalConfiguration().local_stores_path) / KIT_FOLDER / token
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o777)  # steps may run as another uid than the kit
    return folder


# --------------------------------------------------------------------------
# The battery
# --------------------------------------------------------------------------


def runs_needed(keys: Sequence[str]) -> set:
    needed: set = set()
    for key in keys:
        needed |= NEEDS[key]
    return needed


def collect_facts(stack_name: str, keys: Sequence[str], *, image: Optional[str] = None,
                  echo: Callable[[str], None] = print) -> BatteryFacts:
    """Run the pipelines the properties `keys` need on `stack_name`; return what happened.

    Raises:
        ConformanceSetupError: see `battery_environment`.
    """
    from zenml.config import DockerSettings

    from orchestrator.conformance.image import step_image
    from orchestrator.machine.engine import connect, read_engine_facts

    docker_client = connect()
    image = image or step_image(docker_client)
    needed = runs_needed(keys)
    facts = BatteryFacts()
    engine = read_engine_facts(docker_client)
    facts.engine = engine.name
    facts.unenforced = tuple(name for name, held in (("memory", engine.memory_limit),
                                                     ("cpu_count", engine.cpu_limit)) if not held)
    token = uuid.uuid4().hex[:12]
    with battery_environment(stack_name, token) as env:
        probe, root = env["probe"], env["root"]
        facts.kit_container_id = probe.container_id()
        base = kit_folder(token)
        watcher = NoteWatcher(docker_client)
        children: Dict[str, subprocess.Popen] = {}
        settings = {"docker": DockerSettings(parent_image=image, skip_build=True)}
        try:
            def start_child(name: str) -> subprocess.Popen:
                return _start_child(base / name, f"long_{name}", root, image, env["stack"].id,
                                    base / f"{name}.log", env["module"])

            for name in ("stop", "interrupt"):  # they start slowly: first
                if name in needed:
                    client_facts = ClientFacts(run=RunFacts())
                    facts.clients[name] = client_facts
                    watcher.watch(name, base / name, client_facts.run)
                    children[name] = start_child(name)
            if "shape" in needed:
                victim = "retry" in needed
                echo("conformance: independent steps (containers, labels, overlap, limits"
                     + (", a killed container)" if victim else ")"))
                # Waiting for the sibling only matters to judge the overlap.
                sibling_wait = SIBLING_WAIT_SECONDS if "parallel" in keys else 0.5
                facts.runs["shape"] = _run(probe.shape_pipeline, settings, base / "shape", watcher,
                                           "shape", wait_seconds=sibling_wait,
                                           with_victim=victim)
            wait = SIBLING_WAIT_SECONDS
            if "shape" in facts.runs and judge_parallel(facts).passed is False:
                wait = SEQUENTIAL_WAIT_SECONDS  # it runs steps one at a time: don't wait in vain
            for mode in ("fail_fast", "stop_on_failure", "continue_on_failure"):
                if mode in needed:
                    echo(f"conformance: a failing step in execution mode {mode}")
                    linger = FAIL_FAST_LINGER_SECONDS if mode == "fail_fast" else 1.0
                    facts.runs[mode] = _run(probe.modes_pipeline, settings, base / mode, watcher,
                                            mode, execution_mode=mode, wait_seconds=wait,
                                            linger_seconds=linger)
            if children:
                echo("conformance: stop and interrupt runs started by other processes")
                _stop_and_interrupt(facts, children, base, watcher, "fetch_status" in keys,
                                    start_child)
            if "fetch_status" in keys:
                _fetch_checkpoints(facts)
            watcher.sync()
            if "nothing_left_behind" in keys:
                echo("conformance: looking for containers left behind")
                _leftovers(facts, docker_client)
        finally:
            _end_children(children)
            watcher.close()
            _remove_containers_of(facts, docker_client)  # whatever is still there, even on error
            shutil.rmtree(base, ignore_errors=True)
            docker_client.close()
    return facts


def _run(pipeline: Any, settings: Dict[str, Any], folder: Path, watcher: NoteWatcher,
         key: str, execution_mode: Optional[str] = None, **parameters: Any) -> RunFacts:
    """Run one battery pipeline in this process; a failure is a fact, not an error."""
    facts = RunFacts()
    watcher.watch(key, folder, facts)
    options: Dict[str, Any] = {"settings": settings}
    if execution_mode:
        from zenml.enums import ExecutionMode

        options["execution_mode"] = ExecutionMode(execution_mode)
    started = time.time()
    result = None
    try:
        result = pipeline.with_options(**options)(folder=str(folder), **parameters)
    except Exception as error:  # noqa: BLE001 - the battery's failures are facts
        facts.error = f"{type(error).__name__}: {error}"
    facts.seconds = time.time() - started
    watcher.sync()
    run_id = _run_id_of(facts, result)
    _read_record(facts, run_id)
    return facts


def _run_id_of(facts: RunFacts, result: Any) -> Optional[str]:
    for note in facts.notes.values():
        if note.get("pipeline_run_id"):
            return str(note["pipeline_run_id"])
    if result is not None and getattr(result, "id", None):
        return str(result.id)
    return None  # no step ran and the call failed: nothing to read


def _read_record(facts: RunFacts, run_id: Optional[str]) -> None:
    """ZenML's record of the run: its status and each step's latest status."""
    if run_id is None:
        return
    from zenml.client import Client

    facts.run_id = run_id
    run = Client().get_pipeline_run(run_id)
    facts.status = run.status.value
    facts.steps = {name: step.status.value for name, step in run.steps.items()}


def _start_child(folder: Path, name: str, root: str, image: str, stack_id: Any,
                 log_path: Path, module: str) -> subprocess.Popen:
    """Start a long run in another process, as someone in a terminal would."""
    from zenml.constants import ENV_ZENML_ACTIVE_STACK_ID

    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o777)
    environment = dict(os.environ, **{ENV_ZENML_ACTIVE_STACK_ID: str(stack_id)})
    command = [sys.executable, "-m", "orchestrator.conformance.child", "--root", root,
               "--module", module, "--folder", str(folder), "--name", name, "--image", image,
               "--seconds", str(LONG_STEP_SECONDS)]
    with log_path.open("w") as log:
        # Its own session: a Ctrl-C meant for this process never reaches it;
        # the kit sends the child its own SIGINT.
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=root,
                                env=environment, start_new_session=True)


def _wait_for_start(children: Dict[str, subprocess.Popen], facts: BatteryFacts,
                    watcher: NoteWatcher, base: Path,
                    restart: Callable[[str], subprocess.Popen]) -> None:
    """Wait until each child's long step runs; a child that died before that gets one restart.

    Many ZenML processes starting at once (several batteries, their
    children) can trip over ZenML's shared global configuration file; a
    second start is not affected by the orchestrator under test, which a
    second failure would be.
    """
    deadline = time.monotonic() + CLIENT_START_TIMEOUT
    waiting, restarted = set(children), set()
    while waiting and time.monotonic() < deadline:
        watcher.sync()
        for name in list(waiting):
            if facts.clients[name].run.started(f"long_{name}"):
                waiting.discard(name)
            elif children[name].poll() is not None:
                first = _tail(base / f"{name}.log")
                if name in restarted:
                    waiting.discard(name)
                    facts.clients[name].run.error = first
                else:
                    restarted.add(name)
                    (base / f"{name}.first.log").write_text(first)
                    children[name] = restart(name)
        time.sleep(0.2)
    for name in waiting:
        facts.clients[name].run.error = "the long step did not start within " \
            f"{CLIENT_START_TIMEOUT:.0f} s: " + _tail(base / f"{name}.log")


def _stop_and_interrupt(facts: BatteryFacts, children: Dict[str, subprocess.Popen],
                        base: Path, watcher: NoteWatcher, fetch: bool,
                        restart: Callable[[str], subprocess.Popen]) -> None:
    from zenml.client import Client
    from zenml.utils.run_utils import stop_run

    _wait_for_start(children, facts, watcher, base, restart)
    acted: Dict[str, float] = {}
    stopper = facts.clients.get("stop")
    if stopper is not None and stopper.run.started("long_stop"):
        run_id = stopper.run.notes["long_stop.started"].get("pipeline_run_id")
        stopper.run.run_id = run_id
        if fetch:
            stopper.fetched_while_running = _fetch(run_id)
            facts.fetched.append(("while running", expected_statuses("running"),
                                  stopper.fetched_while_running))
        acted["stop"] = time.monotonic()
        try:  # what `zenml pipeline runs stop <run> -y` does (forceful by default)
            stop_run(Client().get_pipeline_run(run_id), graceful=False)
        except Exception as error:  # noqa: BLE001 - e.g. NotImplementedError
            stopper.action_error = f"{type(error).__name__}: {error}"
    interrupted = facts.clients.get("interrupt")
    if interrupted is not None and interrupted.run.started("long_interrupt"):
        interrupted.run.run_id = interrupted.run.notes["long_interrupt.started"].get(
            "pipeline_run_id")
        acted["interrupt"] = time.monotonic()
        os.kill(children["interrupt"].pid, signal.SIGINT)
    for name, at in acted.items():
        client_facts = facts.clients[name]
        if client_facts.action_error:  # the stop was refused: nothing to wait for
            children[name].kill()
            children[name].wait(timeout=30)
            client_facts.container_running_after = True
            continue
        try:
            children[name].wait(timeout=max(0.0, at + STOP_EXIT_SECONDS - time.monotonic()))
            client_facts.exit_seconds = time.monotonic() - at
        except subprocess.TimeoutExpired:
            client_facts.exit_seconds = None
        note = client_facts.run.notes.get(f"long_{name}.started") or {}
        client_facts.container_running_after = _still_running(watcher.docker,
                                                              note.get("container_id"))
    watcher.sync()
    for client_facts in facts.clients.values():
        _read_record(client_facts.run, client_facts.run.run_id)


def _still_running(docker_client: Any, cid: Optional[str], settle: float = 6.0) -> bool:
    """Whether container `cid` still runs after up to `settle` seconds."""
    if not cid:
        return False
    deadline = time.monotonic() + settle
    while True:
        try:
            running = docker_client.api.inspect_container(cid)["State"]["Running"]
        except Exception:  # noqa: BLE001 - gone
            return False
        if not running or time.monotonic() > deadline:
            return bool(running)
        time.sleep(0.5)


def _fetch(run_id: Optional[str]) -> Any:
    """The orchestrator's fetch_status of a run: (status, {step: status}) or the error text."""
    if run_id is None:
        return "the run was not recorded"
    from zenml.client import Client
    from zenml.enums import StackComponentType
    from zenml.stack import StackComponent

    try:
        run = Client().get_pipeline_run(run_id)
        model = run.stack.components[StackComponentType.ORCHESTRATOR][0]
        orchestrator = StackComponent.from_model(model)
        status, steps = orchestrator.fetch_status(run=run, include_steps=True)
    except Exception as error:  # noqa: BLE001 - NotImplementedError and friends
        return f"{type(error).__name__}: {error}"
    return (status.value if status is not None else None,
            {name: value.value for name, value in (steps or {}).items()})


def _fetch_checkpoints(facts: BatteryFacts) -> None:
    """fetch_status of finished runs whose outcome the battery knows."""
    shape = facts.runs.get("shape")
    if shape is not None and shape.status == "completed":
        kind = "shape_with_victim" if "victim.attempt1" in shape.notes else "shape"
        facts.fetched.append(("a completed run", expected_statuses(kind), _fetch(shape.run_id)))
    cont = facts.runs.get("continue_on_failure")
    if cont is not None and cont.status == "failed" and "after_slow.ended" in cont.notes:
        facts.fetched.append(("a failed run", expected_statuses("continue_on_failure"),
                              _fetch(cont.run_id)))
    stopper = facts.clients.get("stop")
    if stopper is not None and stopper.run.status == "stopped":
        facts.fetched.append(("a stopped run", expected_statuses("stopped"),
                              _fetch(stopper.run.run_id)))


def _all_runs(facts: BatteryFacts) -> List[RunFacts]:
    return list(facts.runs.values()) + [c.run for c in facts.clients.values()]


def _container_ids(facts: BatteryFacts) -> set:
    ids = set()
    for run in _all_runs(facts):
        ids |= {n["container_id"] for n in run.notes.values() if n.get("container_id")}
        ids |= set(run.containers)
    ids.discard(facts.kit_container_id)
    return ids


def _leftovers(facts: BatteryFacts, docker_client: Any) -> None:
    """Which containers of the battery's runs are still on the engine (after a settling time)."""
    from orchestrator.running.labels import find_containers

    ids = _container_ids(facts)
    facts.containers_checked = len(ids)
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        left = {}
        for cid in ids:
            try:
                attrs = docker_client.api.inspect_container(cid)
                left[cid] = f"{attrs['Name'].lstrip('/')[:40]} ({attrs['State']['Status']})"
            except Exception:  # noqa: BLE001 - gone: good
                pass
        for run in _all_runs(facts):
            if run.run_id:
                for container in find_containers(docker_client, pipeline_run_id=run.run_id):
                    left[container.id] = f"{container.name[:40]} ({container.status})"
        if not left or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    facts.leftovers = sorted(left.values())


def _end_children(children: Dict[str, subprocess.Popen], grace_seconds: float = 60.0) -> None:
    """Ctrl-C to each child run still going (its orchestrator stops its containers), then SIGKILL.

    A child killed at once would leave its step container running: the kit
    knows a container only once its step wrote a note.
    """
    running = [child for child in children.values() if child.poll() is None]
    for child in running:
        child.send_signal(signal.SIGINT)
    deadline = time.monotonic() + grace_seconds
    for child in running:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=30)


def _remove_containers_of(facts: BatteryFacts, docker_client: Any) -> None:
    """Remove every container of the battery's runs still on the engine."""
    from orchestrator.running.labels import find_containers

    ids = _container_ids(facts)
    for run in _all_runs(facts):
        if run.run_id:
            with contextlib.suppress(Exception):
                ids |= {c.id for c in find_containers(docker_client, pipeline_run_id=run.run_id)}
    for cid in ids:
        with contextlib.suppress(Exception):
            docker_client.api.remove_container(cid, force=True)


def _tail(path: Path, lines: int = 6) -> str:
    try:
        text = path.read_text().strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:])
