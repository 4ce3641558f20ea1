"""The exercise checks: each runs the reader's own function (a piece of ``my_orchestrator.py``).

A check calls the function on small cases whose right answers are known,
and raises `ExerciseCheckError` (an AssertionError, so a notebook cell
fails) with what was asked, what came back and why that is wrong. It
returns the list of what it verified, for the notebook to show.

Every check but `check_stop_containers` is pure. That one talks to the real
Docker engine, through a guard that lets the reader's function see only the
check's own containers, so that a mistake in it cannot stop anyone else's.
"""

from __future__ import annotations

import uuid
from typing import Any, Callable, Dict, List

from orchestrator.teaching import properties
from orchestrator.teaching.check_base import ExerciseCheckError, _Checker, _removed, _shown, _Text  # noqa: F401

__all__ = ["ExerciseCheckError", "CHECKS", "STAND_INS"]


# --------------------------------------------------------------------------
# notebook 2
# --------------------------------------------------------------------------


def check_run_order(run_order: Callable) -> List[str]:
    c = _Checker("run_order")
    cases = {
        "a chain listed backwards": {"c": ["b"], "b": ["a"], "a": []},
        "a diamond": {"join": ["left", "right"], "left": ["src"], "right": ["src"], "src": []},
        "two independent steps": {"x": [], "y": []},
    }
    for what, graph in cases.items():
        order = c.call(run_order, graph)
        c.expect(isinstance(order, list) and sorted(order) == sorted(graph),
                 f"{what}: every step exactly once", order,
                 "a step left out never runs; a step listed twice runs twice")
        position = {step: i for i, step in enumerate(order)}
        late = [(up, step) for step, ups in graph.items() for up in ups
                if position[up] > position[step]]
        c.expect(not late, f"{what}: each step after its upstream steps", order,
                 "a step reads its upstream steps' outputs: they must exist when it starts")
    order = c.call(run_order, {"x": [], "y": [], "z": ["x"]})
    c.expect(order == ["x", "y", "z"], "ties go to the step listed first: ['x', 'y', 'z']",
             order, "the same pipeline must always run in the same order")
    cycle = {"a": ["b"], "b": ["a"]}
    try:
        result = run_order(cycle)
    except ValueError:
        c.verified.append("a cycle (a waits for b, b for a) raises ValueError")
    except Exception as error:  # noqa: BLE001
        c.fail("a cycle raises ValueError", f"run_order({cycle!r})",
               f"it raised {type(error).__name__}: {error}",
               "a clear error, not a crash, for a graph that cannot run")
    else:
        c.fail("a cycle (a waits for b, b for a) raises ValueError", f"run_order({cycle!r})",
               result, "such a pipeline can never run: say so before starting anything")
    properties.run_order_properties(c, run_order)
    return c.verified


# --------------------------------------------------------------------------
# notebook 3
# --------------------------------------------------------------------------


def check_container_kwargs(container_kwargs: Callable) -> List[str]:
    import os

    c = _Checker("container_kwargs")
    environment = {"ZENML_STORE_URL": "sqlite:////stores/zenml.db", "ZENML_ACTIVE_STACK_ID": "s1"}
    given = dict(environment)
    entrypoint = ["python", "-m", "zenml.entrypoints.entrypoint"]
    arguments = ["--step_name", "trainer", "--snapshot_id", "42"]
    kwargs = c.call(container_kwargs, image="img:1", entrypoint=entrypoint,
                    arguments=arguments, environment=given, stores_path="/stores",
                    run_id="run-7")
    c.expect(isinstance(kwargs, dict), "returns a dict of docker-py arguments", kwargs,
             "they are passed on as client.containers.run(**kwargs)")
    c.expect(kwargs.get("image") == "img:1", "image: the step's image", kwargs.get("image"),
             "the step runs in the image ZenML built (or chose) for it")
    c.expect(list(kwargs.get("entrypoint") or []) == entrypoint,
             "entrypoint: ZenML's step entrypoint", kwargs.get("entrypoint"),
             "it is the program that runs one step")
    c.expect(list(kwargs.get("command") or []) == arguments,
             "command: the entrypoint's arguments", kwargs.get("command"),
             "they tell the entrypoint which step of which snapshot to run")
    env = kwargs.get("environment") or {}
    c.expect(isinstance(env, dict) and all(env.get(k) == v for k, v in environment.items()),
             "environment: ZenML's variables, all kept", env,
             "they tell the step where the store is and which stack is active")
    c.expect(env.get("MY_ORCHESTRATOR_RUN_ID") == "run-7",
             "environment: MY_ORCHESTRATOR_RUN_ID = the run id", env.get("MY_ORCHESTRATOR_RUN_ID"),
             "get_orchestrator_run_id() reads it inside the container; every step of a run "
             "must give the same id")
    c.expect(env.get("ZENML_LOCAL_STORES_PATH") == "/stores",
             "environment: ZENML_LOCAL_STORES_PATH = the stores path",
             env.get("ZENML_LOCAL_STORES_PATH"),
             "ZenML in the container must find the local stores where they are mounted")
    c.expect(given == environment, "ZenML's environment dict is left as it was", given,
             "ZenML may hand the same dict to several steps: add to a copy")
    volumes = kwargs.get("volumes") or {}
    bind = volumes.get("/stores") if isinstance(volumes, dict) else None
    c.expect(isinstance(bind, dict) and bind.get("bind") == "/stores" and bind.get("mode") == "rw",
             "volumes: the stores path, read-write, at the same path", volumes,
             "the SQLite store and the artifact store are files on this machine: the step "
             "reads its inputs and writes its outputs there, by the same paths as the client")
    c.expect(kwargs.get("user") == f"{os.getuid()}:{os.getgid()}",
             f"user: your uid:gid ({os.getuid()}:{os.getgid()})", kwargs.get("user"),
             "files the step writes into the stores must belong to you, not to root")
    c.expect(kwargs.get("detach") is True, "detach: True", kwargs.get("detach"),
             "containers.run must return the container at once, so that its output can be "
             "followed while it runs (and, later, several run at once)")
    return c.verified


def check_follow_container(follow_container: Callable, image: str = "") -> List[str]:
    """Runs `follow_container` on real containers of the check's own.

    The first prints a line, works 3 s, prints another and exits with code 3:
    the first line must reach ``echo`` while the container still runs (asked
    of the engine at that moment), the exit code must come back, and the
    container must be gone. The second runs for a minute and its ``echo``
    raises: the container must be gone all the same.
    """
    from orchestrator.conformance.image import step_image
    from orchestrator.machine.engine import connect

    c = _Checker("follow_container")
    client = connect()
    token = uuid.uuid4().hex[:10]
    labels = {"io.my-docker.exercise-check": token}
    image = image or step_image(client)
    script = "echo first; sleep 3; echo second; exit 3"
    made = []
    try:
        container = client.containers.run(image, ["sh", "-c", script], entrypoint=[],
                                          detach=True, labels=labels)
        made.append(container)
        seen: List[Any] = []

        def echo(line: Any) -> None:
            state = client.api.inspect_container(container.id)["State"]["Status"]
            seen.append((line, state))

        given = f"follow_container(<a started container: sh -c {script!r}>, echo)"
        code = c.call_shown(given, follow_container, container, echo)
        c.expect(code == 3, "returns the container's exit code (3)", code,
                 "the exit code is the step's verdict: 0 succeeded, anything else failed")
        lines = [line for line, _ in seen]
        c.expect(lines == ["first", "second"],
                 "echo gets each line of its output, decoded, without its newline", lines,
                 "the step's own lines are what the reader of a run needs to see")
        c.expect(bool(seen) and seen[0][1] == "running",
                 "the first line comes while the container still runs (streamed, not read at "
                 "the end)", [f"{line!r} while {state}" for line, state in seen],
                 "a step that trains for an hour must not be silent for an hour: "
                 "logs(stream=True, follow=True) gives each line as it is written")
        c.expect(_removed(client, container.id), "the container is removed after its end",
                 "still on the engine", "each run would leave one container per step behind")
        second = client.containers.run(image, ["sh", "-c", "echo one; sleep 60"],
                                       entrypoint=[], detach=True, labels=labels)
        made.append(second)

        def failing_echo(line: Any) -> None:
            raise RuntimeError("echo failed (on purpose)")

        try:
            follow_container(second, failing_echo)
        except Exception:  # noqa: BLE001 - raising is fine; leaving the container is not
            pass
        c.expect(_removed(client, second.id),
                 "removed also when something fails while it runs (here: echo raised)",
                 "still on the engine",
                 "an error or a Ctrl-C in the middle of a run must leave no container behind: "
                 "remove it in a `finally`", given="follow_container(<a container that runs "
                 "for a minute>, echo that raises)")
    finally:
        for made_container in made:
            try:
                made_container.remove(force=True)
            except Exception:  # noqa: BLE001 - removed by the function under check
                pass
        client.close()
    return c.verified


# --------------------------------------------------------------------------
# notebook 4
# --------------------------------------------------------------------------


def check_ready_steps(ready_steps: Callable) -> List[str]:
    c = _Checker("ready_steps")
    fan = {"src": [], "b0": ["src"], "b1": ["src"], "b2": ["src"], "join": ["b0", "b1", "b2"]}

    def states(**given: str) -> Dict[str, str]:
        return {step: given.get(step, "pending") for step in fan}

    cases = [
        ("at the start only the source is ready", states(), 4, ["src"],
         "a step needs its upstream steps' outputs"),
        ("once src completed, the three branches, in pipeline order", states(src="completed"),
         4, ["b0", "b1", "b2"], "independent steps start together: the point of this notebook"),
        ("max_parallelism=2: two branches", states(src="completed"), 2, ["b0", "b1"],
         "the cap is how many containers run at once"),
        ("b0 running, cap 2: one more", states(src="completed", b0="running"), 2, ["b1"],
         "running steps take their slots"),
        ("no free slot: nothing", states(src="completed", b0="running", b1="running"), 2, [],
         "the cap holds"),
        ("join waits for every branch", states(src="completed", b0="completed", b1="completed",
                                              b2="running"), 4, [],
         "a join reads all of its inputs"),
        ("a step whose upstream failed is never ready",
         states(src="completed", b0="completed", b1="failed", b2="completed"), 4, [],
         "its input does not exist"),
        ("completed steps never start again", dict.fromkeys(fan, "completed"), 4, [],
         "each step runs once"),
    ]
    for claim, given, cap, expected, why in cases:
        got = c.call(ready_steps, fan, dict(given), cap)
        c.expect(list(got) == expected, f"{claim}: {expected}", got, why)
    properties.ready_steps_properties(c, ready_steps)
    return c.verified


# --------------------------------------------------------------------------
# notebook 5
# --------------------------------------------------------------------------


def check_after_failure(after_failure: Callable) -> List[str]:
    from zenml.enums import ExecutionMode

    c = _Checker("after_failure")
    graph = {"src": [], "slow": ["src"], "late": ["slow"], "bad": ["src"], "after_bad": ["bad"],
             "after_after": ["after_bad"]}
    states = {"src": "completed", "slow": "running", "late": "pending", "bad": "failed",
              "after_bad": "pending", "after_after": "pending"}
    expected = {
        ExecutionMode.FAIL_FAST: (["slow"], ["after_after", "after_bad", "late"],
                                  "FAIL_FAST stops what runs and starts nothing more"),
        ExecutionMode.STOP_ON_FAILURE: ([], ["after_after", "after_bad", "late"],
                                        "STOP_ON_FAILURE lets what runs finish, starts "
                                        "nothing more"),
        ExecutionMode.CONTINUE_ON_FAILURE: ([], ["after_after", "after_bad"],
                                            "CONTINUE_ON_FAILURE skips only what needs the "
                                            "failed step, directly or not"),
    }
    for mode, (stop, skip, why) in expected.items():
        result = c.call(after_failure, mode, "bad", graph, dict(states))
        c.expect(isinstance(result, tuple) and len(result) == 2,
                 f"{mode.value}: returns (to_stop, to_skip)", result,
                 "the runner stops the first and marks the second skipped")
        to_stop, to_skip = result
        c.expect(sorted(to_stop) == stop and sorted(to_skip) == skip,
                 f"{mode.value}: stop {stop}, skip {skip}",
                 (sorted(to_stop), sorted(to_skip)), why)
    properties.after_failure_properties(c, after_failure)
    return c.verified


def check_retry_delay(retry_delay: Callable) -> List[str]:
    from zenml.config.retry_config import StepRetryConfig

    c = _Checker("retry_delay")
    got = c.call(retry_delay, None, 1)
    c.expect(got is None, "no retry policy: no retry (None)", got,
             "ZenML's default is to run a step once")
    policy = StepRetryConfig(max_retries=3, delay=2, backoff=3)
    got = [c.call(retry_delay, policy, attempt) for attempt in (1, 2, 3, 4)]
    c.expect(got[:3] == [2, 6, 18],
             "max_retries=3, delay=2, backoff=3: 2, 6, 18 s after attempts 1, 2, 3", got[:3],
             "ZenML's rule: retry k waits delay * backoff ** (k - 1)")
    c.expect(got[3] is None, "after attempt 4 (all 3 retries used): None", got[3],
             "max_retries counts retries, not attempts")
    got = c.call(retry_delay, StepRetryConfig(max_retries=1, delay=0, backoff=1), 1)
    c.expect(got == 0 and got is not None, "delay=0: retry at once (0, not None)", got,
             "None means 'no retry left'; 0 seconds is a retry")
    properties.retry_delay_properties(c, retry_delay)
    return c.verified


def check_resource_limits(resource_limits: Callable) -> List[str]:
    from zenml.config import ResourceSettings

    c = _Checker("resource_limits")
    got = c.call(resource_limits, ResourceSettings())
    c.expect(got == {}, "no request: no limits ({})", got,
             "a step without ResourceSettings runs unlimited, as before")
    got = c.call(resource_limits, ResourceSettings(cpu_count=1.5))
    c.expect(got == {"nano_cpus": 1_500_000_000}, "cpu_count=1.5: nano_cpus=1500000000", got,
             "Docker's CPU limit is in billionths of a CPU")
    got = c.call(resource_limits, ResourceSettings(memory="512MiB"))
    c.expect(isinstance(got, dict) and got.get("mem_limit") == 512 * 2**20,
             "memory='512MiB': mem_limit=536870912 (bytes)", got,
             "ResourceSettings.get_memory(unit='B') gives bytes")
    c.expect(got.get("memswap_limit") == 512 * 2**20,
             "memory='512MiB': memswap_limit=536870912 too", got,
             "without it Docker lets the container swap as much again: the limit would not hold")
    got = c.call(resource_limits, ResourceSettings(cpu_count=1, memory="1GB"))
    c.expect(got == {"nano_cpus": 10**9, "mem_limit": 10**9, "memswap_limit": 10**9},
             "cpu_count=1 and memory='1GB' together: both limits", got, "both are honoured")
    return c.verified


class _GuardedContainers:
    """docker-py's containers collection, restricted to the check's own containers."""

    def __init__(self, containers: Any, guard: str) -> None:
        self._containers, self._guard = containers, guard

    def list(self, all: bool = False, filters: Any = None, **kwargs: Any) -> list:  # noqa: A002
        filters = dict(filters or {})
        labels = filters.get("label") or []
        labels = [labels] if isinstance(labels, str) else list(labels)
        filters["label"] = labels + [self._guard]
        return self._containers.list(all=all, filters=filters, **kwargs)

    def get(self, container_id: str) -> Any:
        container = self._containers.get(container_id)
        if self._guard.split("=")[0] not in container.labels:
            raise LookupError("the check only lets you see its own containers")
        return container


class _GuardedClient:
    def __init__(self, client: Any, guard: str) -> None:
        self.containers = _GuardedContainers(client.containers, guard)


# The check's containers: a shell that answers SIGTERM by exiting with this
# code, so that each container's exit code tells how it was stopped (SIGTERM
# first: this code; SIGKILL at once: 137), whatever the machine's speed.
TERM_EXIT_CODE = 43
KILLED_EXIT_CODE = 137  # 128 + SIGKILL
_TERM_AWARE = ["sh", "-c", f"trap 'exit {TERM_EXIT_CODE}' TERM; sleep 120 & wait"]


def _exit_codes(containers: List[Any]) -> Dict[str, Any]:
    """name -> exit code, or "running" for a container still running a few seconds on."""
    codes: Dict[str, Any] = {}
    for container in containers:
        container.reload()
        name = container.labels["check.name"]
        if container.status == "running":
            try:  # a kill may still be on its way through the engine
                codes[name] = container.wait(timeout=5)["StatusCode"]
            except Exception:  # noqa: BLE001  (requests' timeout: it still runs)
                codes[name] = "running"
        else:
            codes[name] = container.attrs["State"]["ExitCode"]
    return codes


def check_stop_containers(stop_containers: Callable, image: str = "") -> List[str]:
    """Runs `stop_containers` on three real containers: two of run A, one of run B.

    How each container was stopped is read from its exit code, never from
    how long the call took (a grace period of a second is no slower than a
    busy engine).
    """
    from orchestrator.conformance.image import step_image
    from orchestrator.machine.engine import connect

    c = _Checker("stop_containers")
    client = connect()
    token = uuid.uuid4().hex[:10]
    guard = f"io.my-docker.exercise-check={token}"
    image = image or step_image(client)
    made = []
    try:
        for name, run in (("a1", "A"), ("a2", "A"), ("b1", "B")):
            made.append(client.containers.run(
                image, _TERM_AWARE, entrypoint=[], detach=True,
                labels={guard.split("=")[0]: token, "check.run": f"{token}-{run}",
                        "check.name": name}))
        guarded = _GuardedClient(client, guard)
        count = c.call(stop_containers, guarded, f"check.run={token}-A", False, 10)
        codes = _exit_codes(made[:2])
        made[2].reload()
        c.expect(all(code != "running" for code in codes.values()),
                 "run A's two containers are stopped", codes, "a stop request must stop the run")
        c.expect(made[2].status == "running", "run B's container still runs",
                 made[2].status, "only the run the label names may be stopped: others' work goes on")
        c.expect(count == 2, "returns how many it stopped (2)", count, "the caller reports it")
        c.expect(all(code == KILLED_EXIT_CODE for code in codes.values()),
                 f"graceful=False kills at once: SIGKILL, no SIGTERM first (exit code "
                 f"{KILLED_EXIT_CODE}, not {TERM_EXIT_CODE})", codes,
                 "`zenml pipeline runs stop` is forceful unless --graceful: SIGKILL, no grace")
        count = c.call(stop_containers, guarded, f"check.run={token}-B", True, 10)
        codes = _exit_codes(made[2:])
        c.expect(codes["b1"] == TERM_EXIT_CODE and count == 1,
                 f"graceful=True sends SIGTERM first: run B's container ends by itself (exit "
                 f"code {TERM_EXIT_CODE}), and 1 is returned", (codes["b1"], count),
                 "--graceful gives a step the chance to finish cleanly before SIGKILL")
    finally:
        for container in made:
            try:
                container.remove(force=True)
            except Exception:  # noqa: BLE001
                pass
        client.close()
    return c.verified


# --------------------------------------------------------------------------
# notebook 6
# --------------------------------------------------------------------------


def check_container_labels(container_labels: Callable) -> List[str]:
    import os
    import socket
    from types import SimpleNamespace

    from orchestrator.running.labels import (
        CLIENT_HOST_LABEL,
        CLIENT_PID_LABEL,
        MANAGED_BY_LABEL,
        MANAGED_BY_VALUE,
        attempt_of,
        pipeline_run_of,
        step_of,
    )

    c = _Checker("container_labels")
    run = SimpleNamespace(pipeline_run_id="6a0e-run", orchestrator_run_id="orch-1",
                          pipeline_name="fan_out", run_name="fan_out-2026_01_01")
    labels = c.call(container_labels, run, "branch_1", 2)
    c.expect(isinstance(labels, dict) and all(isinstance(v, str) for v in labels.values()),
             "a dict of strings", labels, "Docker labels are text")
    c.expect(labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE,
             f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}", labels.get(MANAGED_BY_LABEL),
             "the panel's Docker event stream and queries select containers by it")
    c.expect(pipeline_run_of(labels) == "6a0e-run",
             "the panel reads the run's ZenML id from them", pipeline_run_of(labels),
             "a run's containers are found by ZenML's run id")
    c.expect(step_of(labels) == "branch_1", "the panel reads the step from them",
             step_of(labels), "each row of the panel is a step")
    c.expect(attempt_of(labels) == 2, "the panel reads the attempt from them", attempt_of(labels),
             "a retry is a new container of the same step")
    client = (labels.get(CLIENT_HOST_LABEL), labels.get(CLIENT_PID_LABEL))
    c.expect(client == (socket.gethostname(), str(os.getpid())),
             "the client's host and pid (this process) are in them", client,
             "fetch_status tells a run whose client died (FAILED) from one still going by them")
    return c.verified


def check_merge_status(merge_status: Callable) -> List[str]:
    from zenml.enums import ExecutionStatus as S

    c = _Checker("merge_status")
    cases = [
        ("one step running: running", S.RUNNING, {"a": S.COMPLETED, "b": S.RUNNING},
         {"b": "running"}, True, S.RUNNING, {"a": S.COMPLETED, "b": S.RUNNING},
         "the containers say what runs now"),
        ("a completed run, containers gone: completed", S.COMPLETED, {"a": S.COMPLETED},
         {}, True, S.COMPLETED, {"a": S.COMPLETED}, "what ended, ZenML's record says"),
        ("a step killed before it recorded its end: failed", S.RUNNING, {"a": S.RUNNING},
         {"a": "exited"}, True, S.RUNNING, {"a": S.FAILED},
         "an exited container whose record still says running has failed"),
        ("a stop in progress: stopping", S.STOPPING, {"a": S.RUNNING}, {"a": "running"}, True,
         S.STOPPING, {"a": S.RUNNING}, "stopping until its last container ended"),
        ("a stop whose containers all ended: stopped", S.STOPPING, {"a": S.STOPPED}, {}, True,
         S.STOPPED, {"a": S.STOPPED}, "nothing runs any more"),
        ("a run whose client died: failed", S.RUNNING, {"a": S.COMPLETED}, {"a": "exited"},
         False, S.FAILED, {"a": S.COMPLETED}, "no further step can start"),
    ]
    for claim, run, steps, containers, alive, want_run, want_steps, why in cases:
        result = c.call(merge_status, run, dict(steps), dict(containers), alive)
        c.expect(isinstance(result, tuple) and len(result) == 2,
                 f"{claim.split(':')[0]}: returns (run status, step statuses)", result,
                 "ZenML's fetch_status returns that pair")
        got_run, got_steps = result
        c.expect(got_run == want_run and dict(got_steps) == want_steps, claim,
                 (got_run, dict(got_steps)), why)
    properties.merge_status_properties(c, merge_status)
    return c.verified


# --------------------------------------------------------------------------
# notebook 7
# --------------------------------------------------------------------------


def check_sweep(wire_sweep: Callable, loader: Any, trainer: Any, evaluator: Any,
                pick_best: Any, gammas: List[float], test_size: float = 0.25) -> List[str]:
    """Checks the graph `wire_sweep` builds with the given steps (prepared, not run)."""
    from zenml import pipeline

    @pipeline(name="sweep_under_check", enable_cache=False)
    def candidate(gammas: list, test_size: float) -> None:
        wire_sweep(loader, trainer, evaluator, pick_best, gammas, test_size)

    c = _Checker("wire_sweep")
    c.call(candidate.prepare, gammas=list(gammas), test_size=test_size)
    graph = {name: set(inv.upstream_steps) for name, inv in candidate.invocations.items()}
    trainers = sorted(n for n in graph if n.startswith("train_"))
    evaluators = sorted(n for n in graph if n.startswith("evaluate_"))
    c.expect(len(trainers) == len(gammas) and len(evaluators) == len(gammas),
             f"one train_<i> and one evaluate_<i> per gamma ({len(gammas)})", sorted(graph),
             "each gamma is one model to train and to evaluate")
    loaders = [n for n, ups in graph.items() if not ups]
    c.expect(len(loaders) == 1, "one step without upstream steps (the loader)", loaders,
             "the data is loaded once and shared")

    def needs(step: str) -> set:
        found, todo = set(), list(graph[step])
        while todo:
            up = todo.pop()
            if up not in found:
                found.add(up)
                todo.extend(graph[up])
        return found

    for trainer in trainers:
        c.expect(graph[trainer] == set(loaders), f"{trainer} needs only the loader",
                 sorted(graph[trainer]), "a trainer that waits for another trainer cannot "
                 "run at the same time: the sweep would take the sum of their times")
    for number, evaluator in enumerate(evaluators):
        c.expect(f"train_{number}" in graph[evaluator] and not (needs(evaluator) & (
            set(trainers) - {f"train_{number}"})),
            f"{evaluator} needs train_{number} and no other trainer", sorted(needs(evaluator)),
            "each evaluation is about one model")
    last = [n for n in graph if set(evaluators) <= graph[n]]
    c.expect(len(last) == 1, "one step that waits for every evaluation (picks the best)",
             last, "the sweep's answer needs every result")
    return c.verified


CHECKS: Dict[str, Callable[..., List[str]]] = {
    "run_order": check_run_order,
    "container_kwargs": check_container_kwargs,
    "follow_container": check_follow_container,
    "ready_steps": check_ready_steps,
    "after_failure": check_after_failure,
    "retry_delay": check_retry_delay,
    "resource_limits": check_resource_limits,
    "stop_containers": check_stop_containers,
    "container_labels": check_container_labels,
    "merge_status": check_merge_status,
}

# The checks of the methods (and of notebook 6's client_is_gone) live in modules of their
# own, gathered by method_checks, and so do those of the flavor's pieces (its classes,
# stage 2's submit_pipeline).
from orchestrator.teaching.flavor_checks import FLAVOR_CHECKS, STAND_INS  # noqa: E402
from orchestrator.teaching.method_checks import METHOD_CHECKS  # noqa: E402

CHECKS.update(METHOD_CHECKS)
CHECKS.update(FLAVOR_CHECKS)
