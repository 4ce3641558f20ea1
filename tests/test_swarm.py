"""The my_swarm flavor on a real two-node swarm (two engines on this machine), and its pure parts.

The local swarm (`python -m orchestrator.machine.swarm up`, as root: `sudo make
swarm`; CI's set-up starts it for both the root and the unprivileged pass)
has node-a (2 GiB advertised, label size=small) and node-b (8 GiB, size=large)
and a registry on 127.0.0.1:5000. The engine tests fail, never skip, when it
is not up: a missing set-up step must show.

Engine tests (one image build, pushed once, reused): one fan-out run over
both nodes with right outputs, a step placed by its memory reservation, a
step pinned by a constraint and a task killed on its node retried by the
runner, followed live by the panel (from the manager's tasks), which names
each step's node; a too-large reservation refused before anything runs; a
stop request and a client interrupt leaving no service, task or container on
either node, with the terminal view naming each step's node meanwhile.
"""

import importlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from orchestrator.errors import InvalidSettingsError
from orchestrator.running.container_spec import ContainerSpec, ResourceRequest
from orchestrator.running.labels import (
    ATTEMPT_LABEL,
    PIPELINE_LABEL,
    PIPELINE_RUN_ID_LABEL,
    STEP_LABEL,
    label_filters,
)
from orchestrator.status.model import StepPhase
from orchestrator.status.reducer import apply, new_run_status
from orchestrator.status.swarm_source import events_from_task, swarm_manager_of
from orchestrator.swarm.cluster import (
    ClusterStackError,
    SwarmNode,
    check_fits_somewhere,
    check_stores_reachable,
)
from orchestrator.swarm.service_spec import (
    StepPlacement,
    placement_for,
    service_kwargs,
    service_name,
)

GiB = 1 << 30


# -- pure: services, placement, cluster checks ------------------------------------


def test_the_flavor_module_stays_light_inside_step_containers():
    """ZenML imports it in every step's task: none of the running or swarm code comes with it."""
    code = ("import sys, orchestrator.my_swarm_orchestrator; "
            "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] == 'orchestrator')))")
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True).stdout.split())
    assert loaded == {"orchestrator", "orchestrator.my_swarm_orchestrator", "orchestrator.swarm",
                      "orchestrator.swarm.settings"}, loaded


def _spec(**changes):
    values = {
        "image": "127.0.0.1:5000/zenml:p-orchestrator", "entrypoint": ["python", "-m", "x"],
        "command": ["--step_name", "s"], "name": "run-s-abc-1234-a1",
        "labels": {"io.my-docker.step": "s", "io.my-docker.attempt": "1"},
        "environment": {"A": "1"}, "volumes": {"/stores": {"bind": "/stores", "mode": "rw"},
                                         "/pkg": {"bind": "/opt/pkg", "mode": "ro"}},
        "user": "1001:1001", "extra": {"tmpfs": {"/app": "mode=1777"}},
    }
    values.update(changes)
    return ContainerSpec(**values)


def test_a_step_becomes_a_one_shot_service_with_reservations_equal_to_limits():
    placement = placement_for(ResourceRequest(cpu_count=1.5, memory_bytes=3 * GiB, gpu_count=1),
                              ["node.labels.size==large"], "s")
    kwargs = service_kwargs(_spec(), placement, mode="replicated", grace_seconds=7)
    assert (kwargs["mode"].mode, kwargs["mode"].replicas) == ("replicated", 1)
    assert kwargs["restart_policy"]["Condition"] == "none"
    resources = kwargs["resources"]
    assert resources["Reservations"]["MemoryBytes"] == resources["Limits"]["MemoryBytes"] == 3 * GiB
    assert resources["Reservations"]["NanoCPUs"] == resources["Limits"]["NanoCPUs"] == 1_500_000_000
    assert resources["Reservations"]["GenericResources"] == [
        {"DiscreteResourceSpec": {"Kind": "gpu", "Value": 1}}]
    assert kwargs["constraints"] == ["node.labels.size==large"]
    assert kwargs["labels"] == kwargs["container_labels"] == _spec().labels
    assert kwargs["command"] == ["python", "-m", "x"] and kwargs["args"] == ["--step_name", "s"]
    assert kwargs["env"] == ["A=1"] and kwargs["user"] == "1001:1001"
    assert kwargs["networks"] == ["host"] and kwargs["stop_grace_period"] == 7_000_000_000
    mounts = {m["Target"]: m for m in kwargs["mounts"]}
    assert mounts["/stores"]["Type"] == "bind" and not mounts["/stores"]["ReadOnly"]
    assert mounts["/opt/pkg"]["ReadOnly"]
    assert mounts["/app"]["Type"] == "tmpfs" and mounts["/app"]["TmpfsOptions"]["Mode"] == 0o1777


def test_a_job_mode_and_no_resources_reserve_nothing():
    kwargs = service_kwargs(_spec(), StepPlacement(), mode="replicated-job", grace_seconds=0)
    assert kwargs["mode"].mode == "ReplicatedJob"
    assert not kwargs["resources"].get("Reservations") and not kwargs["resources"].get("Limits")


@pytest.mark.parametrize("bad", ["node-b", "node.hostname = ", "==x", 3])
def test_a_malformed_constraint_is_refused_with_the_form_to_use(bad):
    with pytest.raises(InvalidSettingsError, match="key==value"):
        placement_for(ResourceRequest(), [bad], "train")


def test_too_little_memory_is_refused():
    with pytest.raises(InvalidSettingsError, match="6 MiB"):
        placement_for(ResourceRequest(memory_bytes=1024), [], "train")


def test_service_names_are_valid_and_distinct_when_shortened():
    long_a = "a-very-long-pipeline-run-name-2026_11_30-05_58_30_042404-train_model-1-abc-a1"
    long_b = long_a.replace("train_model-1", "train_model-2")
    assert service_name("short-a1") == "short-a1"
    assert len(service_name(long_a)) <= 63 and service_name(long_a) != service_name(long_b)


def _node(name, address, memory=2 * GiB, cpus=2, **extra):
    return SwarmNode(id=name, hostname=name, address=address, state="ready", availability="active",
                     memory_bytes=memory, nano_cpus=int(cpus * 1e9), **extra)


def test_stores_on_this_machine_are_refused_when_a_node_is_elsewhere():
    local = [_node("node-a", "127.0.0.2"), _node("node-b", "127.0.0.3")]
    remote = local + [_node("gpu-box", "10.0.0.7")]
    sqlite = {"store_type": "sql", "store_url": "sqlite:////home/u/zenml.db",
                  "artifact_store_is_local": True, "artifact_path": "/home/u/artifacts"}
    check_stores_reachable(local, shared_paths=False, **sqlite)  # the local swarm: fine
    with pytest.raises(ClusterStackError, match="SQLite.*gpu-box.*zenml login"):
        check_stores_reachable(remote, shared_paths=False, **sqlite)
    server = dict(sqlite, store_type="rest", store_url="https://zenml.example")
    with pytest.raises(ClusterStackError, match="artifact store is a local folder.*gpu-box"):
        check_stores_reachable(remote, shared_paths=False, **server)
    check_stores_reachable(remote, shared_paths=False, **dict(server, artifact_store_is_local=False))
    check_stores_reachable(remote, shared_paths=True, **sqlite)  # NFS, said so


def test_a_zenml_server_on_loopback_is_refused_where_the_nodes_cannot_reach_it():
    local = [_node("node-a", "127.0.0.2"), _node("node-b", "127.0.0.3")]
    remote = local + [_node("gpu-box", "10.0.0.7")]
    shared = {"artifact_store_is_local": False, "artifact_path": "s3://bucket", "shared_paths": False}
    for url in ("http://127.0.0.1:8237", "http://localhost:8237"):  # `zenml login --local`
        check_stores_reachable(local, store_type="rest", store_url=url, reachable_ports=[5000, 8237],
                               **shared)
        with pytest.raises(ClusterStackError, match="loopback.*gpu-box.*means the node itself"):
            check_stores_reachable(remote, store_type="rest", store_url=url, **shared)
    with pytest.raises(ClusterStackError, match=r"port 8300.*reach only its ports 5000, 8237.*"
                                                r"--forward 8300"):
        check_stores_reachable(local, store_type="rest", store_url="http://127.0.0.1:8300",
                               reachable_ports=[8237, 5000], **shared)
    check_stores_reachable(remote, store_type="rest", store_url="https://zenml.example", **shared)
    check_stores_reachable(local, store_type="rest", store_url="http://127.0.0.1:8300",
                           **shared)  # not the local swarm: nothing known about its ports


def test_a_step_no_node_can_hold_is_refused_naming_the_largest_node():
    nodes = [_node("node-a", "127.0.0.2", 2 * GiB), _node("node-b", "127.0.0.3", 8 * GiB)]
    check_fits_somewhere("big", 6 * GiB, None, {}, nodes)
    with pytest.raises(InvalidSettingsError, match=r"'big' reserves 20.0 GiB.*node-b: 8.0 GiB"):
        check_fits_somewhere("big", 20 * GiB, None, {}, nodes)
    with pytest.raises(InvalidSettingsError, match="1 gpu"):
        check_fits_somewhere("train", None, None, {"gpu": 1}, nodes)
    check_fits_somewhere("train", None, None, {"gpu": 1},
                         nodes + [_node("gpu-box", "10.0.0.7", generic_resources={"gpu": 2})])


# -- pure: the manager's tasks as the status model's events ----------------------

RUN = "9f1c2d3e-0000-4000-8000-000000000001"


def _task(state, *, attempt=1, node="n-b-id", exit_code=None, desired="running",
          at="2026-11-30T09:32:22.450891214Z"):
    """A task as Docker's API lists it (the fields we read, shaped as measured on 20.10)."""
    container = {} if state in ("new", "pending") else {
        "ContainerID": "b418abbc4109f727ce3ce818", "PID": 0,
        "ExitCode": 0 if exit_code is None else exit_code}
    return {"ID": f"task{attempt}", "ServiceID": f"svc{attempt}", "NodeID": node,
            "CreatedAt": "2026-11-30T09:32:20.0Z", "DesiredState": desired,
            "Spec": {"ContainerSpec": {"Labels": {
                STEP_LABEL: "train", ATTEMPT_LABEL: str(attempt), PIPELINE_RUN_ID_LABEL: RUN}}},
            "Status": {"Timestamp": at, "State": state, "ContainerStatus": container}}


def _through(*tasks, node="node-b"):
    status = new_run_status(RUN, {"train": {"upstream": [], "max_retries": 1},
                                  "report": {"upstream": ["train"]}})
    for task in tasks:
        for event in events_from_task(task, node if task["NodeID"] else None):
            status = apply(status, event)
    return status


def test_a_tasks_states_become_a_steps_phases_with_its_node_container_and_exit():
    pending = _task("pending", node="")
    status = _through(pending)
    train = status.step("train")
    assert (train.phase, train.node, train.container_id) == (StepPhase.STARTING, None, None)
    status = _through(pending, _task("running", at="2026-11-30T09:32:20.5Z"))
    train = status.step("train")
    assert (train.phase, train.node, train.container_id) == (StepPhase.RUNNING, "node-b",
                                                             "b418abbc4109")
    assert train.started_at == pytest.approx(1796031140.5)
    status = _through(pending, _task("running", at="2026-11-30T09:32:20.5Z"),
                      _task("complete"))
    train = status.step("train")
    assert (train.phase, train.exit_code, train.duration()) == (
        StepPhase.COMPLETED, 0, pytest.approx(1.950891214))
    assert status.step("report").phase == StepPhase.PENDING


def test_a_failed_task_is_retried_a_shut_down_one_stopped_and_repeats_change_nothing():
    failed = _through(_task("running"), _task("failed", exit_code=137))
    assert (failed.step("train").phase, failed.step("train").exit_code) == (
        StepPhase.RETRYING, 137)
    assert apply(failed, events_from_task(_task("failed", exit_code=137), "node-b")[-1]) is failed
    again = _through(_task("running"), _task("failed", exit_code=137),
                     _task("running", attempt=2, node="n-a-id"), node="node-a")
    assert [(a.number, a.node) for a in again.step("train").attempts] == [(1, "node-a"),
                                                                         (2, "node-a")]
    stopping = _through(_task("running", desired="shutdown"))
    assert stopping.step("train").latest.killed
    stopped = _through(_task("running"), _task("shutdown", exit_code=143, desired="shutdown"))
    assert (stopped.step("train").phase, stopped.step("report").phase) == (
        StepPhase.STOPPED, StepPhase.SKIPPED)
    rejected = _through(_task("rejected", node=""))
    assert rejected.step("train").exit_code == -1
    assert events_from_task({"Spec": {"ContainerSpec": {"Labels": {}}}}, None) == []


def test_a_run_is_a_swarm_run_when_its_stacks_orchestrator_is_my_swarm():
    from types import SimpleNamespace

    from zenml.enums import StackComponentType

    def run_on(flavor, configuration):
        component = SimpleNamespace(flavor_name=flavor, configuration=configuration)
        stack = SimpleNamespace(components={StackComponentType.ORCHESTRATOR: [component]})
        return SimpleNamespace(stack=stack)

    assert swarm_manager_of(run_on("my_swarm", {"manager_url": "ssh://u@h"})) == "ssh://u@h"
    assert swarm_manager_of(run_on("my_swarm", {})) == ""  # DOCKER_HOST, else the local swarm
    assert swarm_manager_of(run_on("my_docker", {})) is None
    assert swarm_manager_of(SimpleNamespace(stack=None)) is None  # its stack was deleted


def test_synchronous_false_hands_the_run_to_the_detached_machinery_with_the_swarms_functions(
        tmp_path):
    """The setting means what it means on my_docker; a detached swarm run's submission and
    orchestration record name the swarm's run and removal functions (with the cluster's
    options), which another process loads again from their JSON."""
    from orchestrator.my_swarm_orchestrator import (
        MySwarmOrchestratorConfig,
        MySwarmOrchestratorSettings,
    )
    from orchestrator.running.orchestration_record import write_record
    from orchestrator.running.run_functions import FunctionCall, RunFunctions
    from orchestrator.swarm.pipeline_run import (
        check_swarm_run,
        remove_orphaned_services,
        run_pipeline_on_swarm,
        swarm_run_functions,
    )
    from orchestrator.swarm.settings import SwarmCluster

    assert MySwarmOrchestratorSettings().synchronous is True
    assert MySwarmOrchestratorConfig().is_synchronous
    assert not MySwarmOrchestratorConfig(synchronous=False).is_synchronous
    cluster = SwarmCluster(manager_url="ssh://u@h", shared_paths=False, mount_package=True)
    functions = swarm_run_functions(cluster)
    again = RunFunctions.from_json(json.loads(json.dumps(functions.to_json())))
    assert again == functions
    assert (again.run.load(), again.check.load(), again.remove.load()) == (
        run_pipeline_on_swarm, check_swarm_run, remove_orphaned_services)
    assert again.run.kwargs == {"manager_url": "ssh://u@h", "shared_paths": False,
                                "mount_package": True}
    assert again.remove.kwargs == {"manager_url": "ssh://u@h"}
    # the submitting process's record names the removal; the orchestration process's keeps it
    write_record(tmp_path, "run-id", detached=True, pid=os.getpid(),
                 remove_with=functions.remove.to_json())
    rewritten = write_record(tmp_path, "run-id", detached=True)
    assert FunctionCall.from_json(rewritten.remove_with) == functions.remove
    assert write_record(tmp_path, "another-run").remove_with is None


# -- the real two-node swarm ------------------------------------------------------

PIPELINES = textwrap.dedent(
    '''
    """Pipelines of tests/test_swarm.py (copied into the swarm project: ZenML ships them)."""
    import os
    import socket
    import time

    from zenml import pipeline, step
    from zenml.config import ResourceSettings
    from zenml.config.retry_config import StepRetryConfig


    @step
    def seed() -> int:
        return 10


    @step
    def prints_progress() -> int:
        """Progress in carriage returns, text that is not ASCII, no final newline,
        written to the container's output itself (as a tool the step runs would:
        ZenML wraps sys.stdout in the step's process)."""
        for i in range(2000):
            os.write(1, b"\\rfetching shard %4d [%3d%%]" % (i, i % 100))
        os.write(1, "\\nnot ascii: é ✓ 数据\\nlast line, no newline".encode())
        return 1


    @pipeline(enable_cache=False)
    def progress_pipeline() -> None:
        prints_progress()


    @step
    def part(x: int, k: int) -> str:
        return f"{socket.gethostname()}={x * k}"


    @step(settings={"resources": ResourceSettings(memory="4GiB")})
    def needs_four_gib(x: int) -> str:
        return f"{socket.gethostname()}={x + 1}"


    @step(settings={"orchestrator": {"placement_constraints": ["node.hostname==node-a"]}})
    def pinned_to_a(x: int) -> str:
        return f"{socket.gethostname()}={x + 2}"


    @step(retry=StepRetryConfig(max_retries=1, delay=0))
    def killed_once(x: int) -> str:
        if os.environ.get("MY_DOCKER_STEP_ATTEMPT") == "1":
            print("attempt 1 waits to be killed", flush=True)
            time.sleep(300)
        return f"{socket.gethostname()}={x + 3}"


    @step
    def total(a: str, b: str, c: str, d: str, e: str, f: str) -> str:
        return ";".join([a, b, c, d, e, f])


    @pipeline(enable_cache=False)
    def fan_pipeline():
        x = seed()
        total(part(x, 1), part(x, 2), part(x, 3), needs_four_gib(x), pinned_to_a(x), killed_once(x))


    @step(settings={"orchestrator": {"timeout_seconds": 6}})
    def hangs() -> int:
        print("hangs", flush=True)
        time.sleep(300)
        return 1


    @step(settings={"orchestrator": {"placement_constraints": ["node.labels.size==huge"],
                                     "pending_timeout_seconds": 6}})
    def no_node_fits() -> int:
        return 1


    @pipeline(enable_cache=False, settings={"orchestrator": {"stop_grace_seconds": 2}})
    def deadlines_pipeline():
        hangs()
        no_node_fits()


    @step(settings={"resources": ResourceSettings(memory="20GiB")})
    def needs_twenty_gib() -> int:
        return 1


    @pipeline(enable_cache=False)
    def too_big_pipeline():
        needs_twenty_gib()


    @step(settings={"orchestrator": {"placement_constraints": ["node.hostname==node-a"]}})
    def long_on_a(seconds: int) -> int:
        print("long step on", socket.gethostname(), flush=True)
        time.sleep(seconds)
        return 1


    @step(settings={"orchestrator": {"placement_constraints": ["node.hostname==node-b"]}})
    def long_on_b(seconds: int) -> int:
        print("long step on", socket.gethostname(), flush=True)
        time.sleep(seconds)
        return 2


    @step
    def after(a: int, b: int) -> int:
        return a + b


    @pipeline(enable_cache=False)
    def long_swarm_pipeline(seconds: int = 300):
        after(long_on_a(seconds), long_on_b(seconds))


    if __name__ == "__main__":
        long_swarm_pipeline()
    '''
)


@pytest.fixture(scope="module")
def local_swarm():
    """The local swarm, which the set-up started (`sudo make swarm`); fails if it is not up."""
    from orchestrator.machine.swarm import LocalSwarm

    swarm = LocalSwarm()
    status = swarm.status()
    if not status.up:
        pytest.fail("The local swarm is not up, so the my_swarm tests cannot run. Start it as root: "
                    "`sudo make swarm` (or `sudo python -m orchestrator.machine.swarm up`).\n"
                    + status.describe())
    return swarm


@pytest.fixture(scope="module")
def swarm_project(project_dir, local_swarm):
    """A project whose active stack runs on the swarm: my_swarm orchestrator, the local
    registry as ZenML's container registry, the default artifact store; ZenML's store
    is ZenML's own local server, which every node reaches (as on a real cluster), not
    the session's SQLite file. The server is shut down and the session's store and
    stack are back afterwards."""
    from zenml.client import Client

    from orchestrator.machine.stack import run_zenml
    from orchestrator.machine.zenml_server import (
        port_is_taken,
        start_local_server,
        stop_local_server,
    )

    folder = project_dir.parent / "swarm-project"
    folder.mkdir(exist_ok=True)
    (folder / "swarm_pipelines.py").write_text(PIPELINES)
    os.chdir(folder)
    url = start_local_server()  # fails, saying what to do, if its port is taken
    try:
        store = Client().zen_store
        assert store.type.value == "rest" and store.url == url, store.url
        for command in (  # in this process: a `zenml` process costs seconds to import ZenML
            "zenml init",
            "zenml orchestrator flavor register "
            "orchestrator.my_swarm_orchestrator.MySwarmOrchestratorFlavor",
            "zenml orchestrator register swarm_orchestrator -f my_swarm",
            f"zenml container-registry register swarm_registry -f default "
            f"--uri={local_swarm.registry}",
            "zenml stack register swarm_stack -o swarm_orchestrator -a default -c swarm_registry",
            "zenml stack set swarm_stack",
        ):
            run_zenml(command, in_process=True)
        Client().activate_root(folder)
        Client().activate_stack("swarm_stack")
        sys.path.insert(0, str(folder))
        yield folder, importlib.import_module("swarm_pipelines")
    finally:
        if str(folder) in sys.path:
            sys.path.remove(str(folder))
        sys.modules.pop("swarm_pipelines", None)
        stopped = stop_local_server()
        os.chdir(project_dir)
        Client().activate_root(project_dir)
        Client().activate_stack("my_stack")
    assert stopped and not port_is_taken(), "ZenML's local server still runs"


def _engines(local_swarm):
    return {node.name: local_swarm.client(node.name) for node in local_swarm.nodes}


def what_is_left(local_swarm, run_id):
    """Services, live tasks and containers of one run, on the manager and on every node."""
    manager = local_swarm.client()
    labels = label_filters(pipeline_run_id=str(run_id))
    services = manager.services.list(filters={"label": labels})
    ids = {s.id for s in services}
    left = [f"service {s.name}" for s in services]
    left += [f"task {t['ID']} of a removed service ({t['Status']['State']})" for t in manager.api.tasks()
             if t["ServiceID"] not in ids and t["Spec"]["ContainerSpec"].get("Labels", {}).get(
                 PIPELINE_RUN_ID_LABEL) == str(run_id)]
    for name, engine in _engines(local_swarm).items():
        left += [f"container {c.name} on {name}" for c in
                 engine.containers.list(ignore_removed=True, all=True, filters={"label": labels})]
    return left


def step_output(run, step_name):
    return run.steps[step_name].outputs["output"][0].load()


def test_fan_out_on_both_nodes_placed_by_memory_and_constraints_with_a_killed_task_retried(
        swarm_project, local_swarm, run_containers, capsys):
    """One run shows: outputs right, both nodes used, a 4 GiB reservation on the node that
    offers it, a constraint obeyed, and a task killed on its node retried by the runner.
    The live panel follows it from the manager's tasks, names each step's node and ends
    with the run, its threads released."""
    from zenml.client import Client
    from zenml.enums import ExecutionStatus

    from orchestrator.status.widget import live_panel

    _, pipelines = swarm_project
    result = {}

    def run_it():
        try:
            result["run"] = pipelines.fan_pipeline()
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            result["error"] = error

    with live_panel(display=False, wait_timeout=240) as panel:
        thread = threading.Thread(target=run_it)
        thread.start()
        killed_on, container = _find_container(local_swarm, "killed_once", 1)
        deadline = time.monotonic() + 120
        while b"waits to be killed" not in container.logs() and time.monotonic() < deadline:
            time.sleep(0.3)  # the step itself runs: killing it now fails the attempt, not its start
        live = _wait_for(lambda: panel.status.step("killed_once"),
                         lambda step: "waits to be killed" in step.last_line, seconds=30)
        assert (live.phase, live.node, live.container_id) == (  # read live, through the manager
            StepPhase.RUNNING, killed_on, container.id[:12]), live
        container.kill()
        thread.join(timeout=300)
    assert not thread.is_alive(), "the run did not end after the retry"
    assert "error" not in result, result.get("error")
    run = Client().get_pipeline_run(result["run"].id)
    assert run.status == ExecutionStatus.COMPLETED
    parts = dict(item.split("=")[::-1] for item in step_output(run, "total").split(";"))
    assert sorted(parts) == ["10", "11", "12", "13", "20", "30"]  # every value right
    assert parts["11"] == "node-b", "4 GiB reserved: node-a advertises 2 GiB, only node-b holds it"
    assert parts["12"] == "node-a", "pinned by placement_constraints"
    assert set(parts.values()) == {"node-a", "node-b"}
    log_dir = Path(os.environ["ZENML_CONFIG_PATH"]) / "my_docker" / "runs" / str(run.id)
    assert (log_dir / "killed_once.1.log").read_text().count("waits to be killed") == 1
    assert "waits to be killed" not in (log_dir / "killed_once.2.log").read_text()
    assert json.loads((log_dir / "nodes.json").read_text())["killed_once"]["1"] == killed_on
    assert what_is_left(local_swarm, run.id) == []
    assert run_containers(run.id) == []  # nothing on the machine's own engine either

    status = panel.status  # the panel: every step's node, as the steps themselves saw it
    assert (status.run_id, status.outcome) == (str(run.id), "completed")
    assert set(status.phases.values()) == {StepPhase.COMPLETED}, status.phases
    for name in ("part", "part_2", "part_3", "needs_four_gib", "pinned_to_a", "killed_once"):
        assert status.step(name).node == step_output(run, name).split("=")[0], name
    killed = status.step("killed_once")
    assert [(a.number, a.node, a.phase) for a in killed.attempts][0] == (
        1, killed_on, StepPhase.RETRYING)
    assert killed.attempts[0].container_id == container.id[:12]
    assert {status.step(name).node for name in ("seed", "total")} <= {"node-a", "node-b"}
    assert "NODE" in panel.text().splitlines()[2], panel.text()
    assert panel.watcher.alive_threads == []
    # Outside a notebook the panel prints each step's change of phase: none ever looked
    # failed or stopped (a task's end the poll missed waits for ZenML's word), and the
    # lines name the nodes, the retried step's second attempt included.
    changes = re.findall(r"^\d\d:\d\d:\d\d  (\w+: \w+.*)$", capsys.readouterr().out, re.M)
    shown = "\n".join(changes)
    assert not re.search(r"^\w+: (failed|stopped)", shown, re.M), shown
    assert re.search(r"^killed_once: running +\(container \w+, on " + killed_on, shown, re.M), shown
    assert re.search(r"^killed_once: completed +\(container \w+, on node-\w, attempt 2\)$",
                     shown, re.M), shown


def _wait_for(read, check, seconds):
    """`read()` once `check` holds for it, else the last reading (the assertion shows it).

    A reading that raises KeyError (the panel has not met the run or the step
    yet: on a loaded machine it finds a new run after its first step started)
    counts as not yet; past the deadline the KeyError is raised."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            value = read()
        except KeyError:
            if time.monotonic() >= deadline:
                raise
        else:
            if check(value) or time.monotonic() >= deadline:
                return value
        time.sleep(0.2)


def test_a_steps_kept_log_is_its_output_as_printed(swarm_project):
    """As on my_docker: carriage returns and any text are kept as printed (the
    swarm runner wrote the log line by line, each carriage-return run folded
    into one line). Bytes that are not UTF-8 are not tried: Docker's json-file
    log driver stores them as U+FFFD before anyone reads them."""
    from orchestrator.running.step_logs import log_file_name, run_log_dir

    _, pipelines = swarm_project
    run = pipelines.progress_pipeline()
    printed = (b"".join(b"\rfetching shard %4d [%3d%%]" % (i, i % 100) for i in range(2000))
               + "\nnot ascii: é ✓ 数据\nlast line, no newline".encode())
    log = (run_log_dir(str(run.id)) / log_file_name("prints_progress", 1)).read_bytes()
    assert printed in log, log[-300:]


def test_a_step_no_node_can_hold_fails_before_anything_runs(swarm_project, local_swarm):
    _, pipelines = swarm_project
    with pytest.raises(InvalidSettingsError, match="needs_twenty_gib.*more than any node"):
        pipelines.too_big_pipeline()
    assert local_swarm.client().services.list(
        filters={"label": f"{PIPELINE_LABEL}=too_big_pipeline"}) == []


def test_a_step_past_its_timeout_and_one_no_node_takes_fail_saying_why_and_leave_nothing(
        swarm_project, local_swarm, capsys, caplog):
    from zenml.client import Client
    from zenml.enums import ExecutionMode, ExecutionStatus

    _, pipelines = swarm_project
    started = time.monotonic()
    with pytest.raises(Exception, match="hangs|no_node_fits"):
        pipelines.deadlines_pipeline.with_options(
            execution_mode=ExecutionMode.CONTINUE_ON_FAILURE)()
    assert time.monotonic() - started < 200, "the 300 s sleep should have been cut"
    said = capsys.readouterr().out + caplog.text
    assert "[hangs] FAILED: timed out after 6 s" in said, said[-3000:]
    assert "[no_node_fits] FAILED" in said and "no node could take it within 6 s" in said, \
        said[-3000:]
    run = Client().get_pipeline("deadlines_pipeline").last_run
    assert run.status == ExecutionStatus.FAILED
    assert what_is_left(local_swarm, run.id) == []


def _find_container(local_swarm, step, attempt, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, engine in _engines(local_swarm).items():
            found = engine.containers.list(ignore_removed=True, filters={
                "label": [f"{STEP_LABEL}={step}", f"{ATTEMPT_LABEL}={attempt}"], "status": "running"})
            if found:
                return name, found[0]
        time.sleep(0.3)
    raise AssertionError(f"no running container of {step} attempt {attempt} on any node")


def _start_long_run(folder, since):
    from zenml.client import Client
    from zenml.enums import ExecutionStatus

    # Ctrl-C as in a terminal: SIGINT handled by Python, even where this test process was
    # started with SIGINT ignored (a background job of a non-interactive shell).
    process = subprocess.Popen([sys.executable, "swarm_pipelines.py"], cwd=folder,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        runs = Client().list_pipeline_runs(sort_by="desc:created", size=1,
                                           pipeline_name="long_swarm_pipeline").items
        if runs and runs[0].created.timestamp() > since:
            run = Client().get_pipeline_run(runs[0].id)
            steps = run.steps
            if all(name in steps and steps[name].status == ExecutionStatus.RUNNING
                   for name in ("long_on_a", "long_on_b")):
                return process, run
        if process.poll() is not None:
            raise AssertionError(f"client ended early:\n{process.stdout.read()}")
        time.sleep(0.5)
    os.killpg(process.pid, signal.SIGKILL)
    raise AssertionError("long_swarm_pipeline never reached its long steps")


def _running_everywhere(local_swarm, run):
    """Labelled like step containers: the run's services on the manager, a container per node."""
    labels = label_filters(pipeline_run_id=str(run.id))
    assert len(local_swarm.client().services.list(filters={"label": labels})) == 2
    per_node = {name: [c.labels[STEP_LABEL] for c in engine.containers.list(
                           ignore_removed=True, filters={"label": labels})]
                for name, engine in _engines(local_swarm).items()}
    assert per_node == {"node-a": ["long_on_a"], "node-b": ["long_on_b"]}
    from orchestrator.status.swarm_text import swarm_status_text

    view = swarm_status_text(str(run.id))  # the terminal view names the node of each step
    assert "long_on_a: 1 -> node-a" in view and "long_on_b: 1 -> node-b" in view, view
    assert "after: -" in view, view
    # the common table, read from the manager's tasks: state, container and node of each step
    assert re.search(r"^long_on_a +running +1 +[0-9a-f]{12} +node-a ", view, re.M), view
    assert re.search(r"^long_on_b +running +1 +[0-9a-f]{12} +node-b ", view, re.M), view
    from zenml.client import Client
    from zenml.enums import ExecutionStatus

    # ZenML's refresh (fetch_status) says the same, from the same facts
    orchestrator = Client().active_stack.orchestrator
    assert orchestrator.fetch_status(run, include_steps=True) == (ExecutionStatus.RUNNING, {
        "long_on_a": ExecutionStatus.RUNNING, "long_on_b": ExecutionStatus.RUNNING})


@pytest.mark.parametrize("how", ["stop request", "client interrupt"])
def test_a_stop_and_an_interrupt_leave_nothing_on_either_node(swarm_project, local_swarm, how):
    from zenml.client import Client
    from zenml.enums import ExecutionStatus

    folder, _ = swarm_project
    process, run = _start_long_run(folder, since=time.time() - 1)
    try:
        _running_everywhere(local_swarm, run)
        asked = time.monotonic()
        if how == "stop request":
            result = subprocess.run(
                [os.path.join(os.path.dirname(sys.executable), "zenml"), "pipeline", "runs", "stop",
                 str(run.id), "-y"], cwd=folder, capture_output=True, text=True, timeout=120)
            assert result.returncode == 0, result.stdout + result.stderr
        else:
            os.kill(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=90)
        assert time.monotonic() - asked < 60, "the client took too long to stop"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode != 0
    if how == "stop request":
        assert "was stopped" in output, output[-3000:]
    assert what_is_left(local_swarm, run.id) == []
    run = Client().get_pipeline_run(run.id)
    assert run.status == ExecutionStatus.STOPPED, (run.status, output[-3000:])
    assert {run.steps[name].status for name in ("long_on_a", "long_on_b")} == {ExecutionStatus.STOPPED}
    assert "after" not in run.steps
    assert Client().active_stack.orchestrator.fetch_status(run, include_steps=True) == (
        ExecutionStatus.STOPPED, {"long_on_a": ExecutionStatus.STOPPED,
                                  "long_on_b": ExecutionStatus.STOPPED})


# -- runs that do not block (synchronous=False), as on my_docker -------------------

# A client that submits a long run with synchronous=False, prints it and exits
# (ZenML warmed up first, as in a notebook kernel after its first cells).
DETACHED_CLIENT = textwrap.dedent(
    """
    import json, sys, time
    from zenml.client import Client
    from swarm_pipelines import long_swarm_pipeline

    Client().zen_store
    started = time.monotonic()
    run = long_swarm_pipeline.with_options(
        settings={"orchestrator": {"synchronous": False}})(seconds=int(sys.argv[1]))
    print("SUBMITTED " + json.dumps({"id": str(run.id), "name": run.name,
                                     "seconds": time.monotonic() - started,
                                     "status": run.status.value}), flush=True)
    """
)
LONG_SWARM_STEPS = ("long_on_a", "long_on_b")


def _submit_detached(folder, seconds, timeout=180):
    """Submit long_swarm_pipeline from a client process that then exits; what it printed.

    A client still busy after `timeout` seconds (its call blocked) gets Ctrl-C, so that
    its run removes its services, and the test fails."""
    process = subprocess.Popen([sys.executable, "-c", DETACHED_CLIENT, str(seconds)], cwd=folder,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGINT)
        try:
            output, _ = process.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
        raise AssertionError(f"the pipeline call did not return within {timeout} s:\n"
                             + output[-3000:]) from None
    assert process.returncode == 0, output[-3000:]
    line = next((line for line in output.splitlines() if line.startswith("SUBMITTED ")), None)
    assert line, output[-3000:]
    assert "goes on in a detached process" in output, output[-3000:]
    return json.loads(line[len("SUBMITTED "):])


def _poll(condition, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _run_status(run_id):
    from zenml.client import Client
    from zenml.enums import ExecutionStatus

    return ExecutionStatus(Client().get_pipeline_run(run_id).status)


def _step_statuses(run_id):
    from zenml.client import Client
    from zenml.enums import ExecutionStatus

    return {s.name: ExecutionStatus(s.status)
            for s in Client().list_run_steps(pipeline_run_id=run_id, size=100).items}


def _wait_until_long_steps_run(run_id):
    from zenml.enums import ExecutionStatus

    _poll(lambda: all(_step_statuses(run_id).get(name) == ExecutionStatus.RUNNING
                      for name in LONG_SWARM_STEPS), 240, "the long steps to run")


def _zenml_stop(folder, run_id):
    return subprocess.run([os.path.join(os.path.dirname(sys.executable), "zenml"), "pipeline",
                           "runs", "stop", str(run_id), "-y"], cwd=folder, capture_output=True,
                          text=True, timeout=120)


def _stop_if_unfinished(folder, run_id):
    """A test that failed half-way leaves no run going on (and no service) behind it."""
    if not _run_status(run_id).is_finished:
        _zenml_stop(folder, run_id)


def test_a_non_blocking_swarm_run_returns_at_once_outlives_its_client_and_completes(
        swarm_project, local_swarm):
    from zenml.enums import ExecutionStatus

    from orchestrator.running.orchestration_record import process_is_alive, read_record
    from orchestrator.running.step_logs import run_log_dir
    from orchestrator.status.cli import print_logs

    folder, _ = swarm_project
    submitted = _submit_detached(folder, seconds=15)
    run_id = submitted["id"]
    try:
        # The client process has exited; its call returned with the run submitted, not over.
        assert not ExecutionStatus(submitted["status"]).is_finished, submitted
        record = _poll(lambda: read_record(run_log_dir(run_id)), 60, "the orchestration record")
        assert record.detached and process_is_alive(record.pid, record.started_at)
        _wait_until_long_steps_run(run_id)  # its services run after the client is gone
        _poll(lambda: _run_status(run_id).is_finished, 600, "the run to end")
        assert _run_status(run_id) == ExecutionStatus.COMPLETED, _step_statuses(run_id)
        record = read_record(run_log_dir(run_id))
        _poll(lambda: not process_is_alive(record.pid, record.started_at), 90,
              "the orchestration process to exit")
        assert what_is_left(local_swarm, run_id) == []
        logs = io.StringIO()  # the detached process's log, as `--logs` prints it
        assert print_logs(submitted["name"], logs) == 0
        text = logs.getvalue()
        assert f"Orchestrating run {submitted['name']}" in text and "is over" in text, text[:3000]
    finally:
        _stop_if_unfinished(folder, run_id)


def test_a_non_blocking_swarm_run_is_stopped_by_zenml_pipeline_runs_stop_leaving_no_service(
        swarm_project, local_swarm):
    from zenml.client import Client
    from zenml.enums import ExecutionStatus

    from orchestrator.running.orchestration_record import process_is_alive, read_record
    from orchestrator.running.step_logs import run_log_dir

    folder, _ = swarm_project
    run_id = _submit_detached(folder, seconds=300)["id"]
    try:
        assert Client().get_pipeline_run(run_id).orchestrator_run_id  # stoppable at once
        _wait_until_long_steps_run(run_id)
        result = _zenml_stop(folder, run_id)
        assert result.returncode == 0, result.stdout + result.stderr
        _poll(lambda: _run_status(run_id).is_finished, 120, "the run to end")
        assert _run_status(run_id) == ExecutionStatus.STOPPED
        steps = _step_statuses(run_id)
        assert {steps[name] for name in LONG_SWARM_STEPS} == {ExecutionStatus.STOPPED}, steps
        assert "after" not in steps
        _poll(lambda: what_is_left(local_swarm, run_id) == [], 60, "the services to go")
        record = read_record(run_log_dir(run_id))
        _poll(lambda: not process_is_alive(record.pid, record.started_at), 60,
              "the orchestration process to exit")
    finally:
        _stop_if_unfinished(folder, run_id)


def test_killing_the_detached_process_of_a_swarm_run_fails_it_and_leaves_no_service(
        swarm_project, local_swarm):
    """SIGKILL leaves the orchestration process no chance to clean up: its watchdog
    ends the run, its services removed (as the run's orchestration record says)."""
    from zenml.client import Client
    from zenml.enums import ExecutionStatus

    from orchestrator.running.orchestration_record import read_record
    from orchestrator.running.step_logs import run_log_dir

    folder, _ = swarm_project
    run_id = _submit_detached(folder, seconds=300)["id"]
    try:
        _wait_until_long_steps_run(run_id)
        record = read_record(run_log_dir(run_id))
        assert len(what_is_left(local_swarm, run_id)) >= 2  # its services (and containers) run
        os.kill(record.pid, signal.SIGKILL)
        _poll(lambda: _run_status(run_id).is_finished and all(
            status.is_finished for status in _step_statuses(run_id).values()), 120,
            "the run and its steps to be ended")
        run = Client().get_pipeline_run(run_id)
        assert run.status == ExecutionStatus.FAILED
        reason = run.get_body().status_reason or ""
        assert f"pid {record.pid}" in reason, reason
        assert _step_statuses(run_id)[LONG_SWARM_STEPS[0]] == ExecutionStatus.STOPPED
        _poll(lambda: what_is_left(local_swarm, run_id) == [], 60, "the services to go")
    finally:
        _stop_if_unfinished(folder, run_id)
