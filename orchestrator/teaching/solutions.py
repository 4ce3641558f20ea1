"""Reference solutions of the tutorial's exercises: the pieces of the reader's orchestrator.

Each function here is one piece the reader writes in a notebook (notebook 2
to 6) and that goes into the reader's own orchestrator module,
``my_orchestrator.py`` (see `orchestrator.teaching.my_file`). A notebook uses
the reference only where the reader has not written their own yet, and says
so; the checks in `orchestrator.teaching.checks` run on whichever is used.

They are written as a reader would write them: short, with the names the
scaffolding of ``my_orchestrator.py`` provides (``ExecutionMode``,
``ExecutionStatus``, ``RUN_ID_VARIABLE``, ``logger``), importing anything
else inside the function: ZenML imports ``my_orchestrator.py`` in every
step container, where this package is not installed. The package's own,
fuller versions are named in each docstring.
"""

import os

from zenml.enums import ExecutionMode, ExecutionStatus

RUN_ID_VARIABLE = "MY_ORCHESTRATOR_RUN_ID"  # as in the scaffolding


def run_order(upstreams):
    """Every step once, each after all of its upstream steps (notebook 2).

    Among steps that could go next, the one listed first goes first.
    The package's version: `orchestrator.running.scheduler.topological_order`.

    Raises:
        ValueError: the graph has a cycle.
    """
    order, placed = [], set()
    while len(order) < len(upstreams):
        ready = [s for s in upstreams if s not in placed and set(upstreams[s]) <= placed]
        if not ready:
            raise ValueError(f"a cycle among {sorted(set(upstreams) - placed)}")
        order.append(ready[0])
        placed.add(ready[0])
    return order


def container_kwargs(image, entrypoint, arguments, environment, stores_path, run_id):
    """docker-py's ``containers.run`` arguments for one step's container (notebook 3).

    The package's version: `orchestrator.running.container_spec.build_spec`.
    """
    environment = dict(environment)  # ZenML's dict: add to a copy
    environment[RUN_ID_VARIABLE] = run_id
    environment["ZENML_LOCAL_STORES_PATH"] = stores_path
    return {
        "image": image,
        "entrypoint": entrypoint,
        "command": arguments,
        "environment": environment,
        "volumes": {stores_path: {"bind": stores_path, "mode": "rw"}},
        "user": f"{os.getuid()}:{os.getgid()}",
        "detach": True,
    }


def ready_steps(upstreams, states, max_parallelism):
    """The pending steps that may start now, at most one per free slot (notebook 4).

    The package's version: `orchestrator.running.scheduler.DagScheduler.ready`.
    """
    free = max_parallelism - sum(1 for state in states.values() if state == "running")
    ready = [step for step in upstreams if states[step] == "pending"
             and all(states[up] == "completed" for up in upstreams[step])]
    return ready[:max(free, 0)]


def after_failure(mode, failed, upstreams, states):
    """What a step's final failure does to the others: (steps to stop, steps to skip) (notebook 5).

    The package's version: `orchestrator.running.scheduler.DagScheduler._apply_failure`.
    """
    pending = [step for step in upstreams if states[step] == "pending"]
    if mode == ExecutionMode.FAIL_FAST:
        return [step for step in upstreams if states[step] == "running"], pending
    if mode == ExecutionMode.STOP_ON_FAILURE:
        return [], pending
    downstream, changed = {failed}, True
    while changed:  # everything that needs the failed step, directly or not
        changed = False
        for step in upstreams:
            if step not in downstream and downstream & set(upstreams[step]):
                downstream.add(step)
                changed = True
    return [], [step for step in pending if step in downstream]


def retry_delay(retry, failed_attempt):
    """Seconds before the next attempt, or None when no retry is left (notebook 5).

    ``retry`` is ZenML's `StepRetryConfig` (or None). ZenML's rule: retry
    number k waits ``delay * backoff ** (k - 1)``.
    The package's version: `orchestrator.running.scheduler.RetryPolicy`.
    """
    if retry is None or failed_attempt > retry.max_retries:
        return None
    return float(retry.delay * retry.backoff ** (failed_attempt - 1))


def resource_limits(resources):
    """ZenML's `ResourceSettings` as docker-py's limit arguments (notebook 5).

    The package's version: `orchestrator.running.container_spec.resource_limits`.
    """
    limits = {}
    if resources.cpu_count:
        limits["nano_cpus"] = int(resources.cpu_count * 1e9)
    if resources.memory:
        memory = int(resources.get_memory(unit="B"))
        limits["mem_limit"] = memory
        limits["memswap_limit"] = memory  # the same: no swap beyond the limit
    return limits


def stop_containers(client, label, graceful, grace_seconds):
    """Stop every running container carrying ``label`` ("key=value"); return how many (notebook 5).

    The package's version: `orchestrator.running.reporting.stop_run_containers`.
    """
    containers = client.containers.list(filters={"label": label})
    for container in containers:
        if graceful:
            container.stop(timeout=grace_seconds)  # SIGTERM, SIGKILL after the grace
        else:
            container.kill()
    return len(containers)


def container_labels(run, step_name, attempt):
    """The labels of one step container, in the package's schema (notebook 6).

    ``run`` is the scaffolding's `RunInfo` (ZenML's run id, the orchestrator
    run id, pipeline and run names). With these labels the package's live
    panel and ``python -m orchestrator.status`` follow your runs.
    The package's version: `orchestrator.running.labels`.
    """
    from orchestrator.running.labels import run_labels, step_labels

    labels = run_labels(orchestrator_run_id=run.orchestrator_run_id,
                        pipeline_name=run.pipeline_name, run_name=run.run_name,
                        pipeline_run_id=run.pipeline_run_id)
    labels.update(step_labels(step_name, attempt))
    return labels


def merge_status(recorded_run, recorded_steps, containers, client_alive):
    """fetch_status's answer from ZenML's records and the run's containers (notebook 6).

    Args:
        recorded_run: the run's status in ZenML's record (`ExecutionStatus`).
        recorded_steps: step -> its status in ZenML's record.
        containers: step -> the state of its latest container ("running",
            "exited", ...), for the steps that still have one.
        client_alive: whether the process that runs the pipeline still runs.

    The package's version: `orchestrator.status.fetch.execution_statuses`.
    """
    steps = dict(recorded_steps)
    for step, state in containers.items():
        if state in ("created", "running", "restarting"):
            steps[step] = ExecutionStatus.RUNNING
        elif not (step in steps and steps[step].is_finished):
            steps[step] = ExecutionStatus.FAILED  # ended without recording its end
    if recorded_run.is_finished:
        return recorded_run, steps
    alive = any(state in ("created", "running", "restarting") for state in containers.values())
    if recorded_run in (ExecutionStatus.STOPPING, ExecutionStatus.STOPPED):
        return (ExecutionStatus.STOPPING if alive else ExecutionStatus.STOPPED), steps
    if not client_alive:
        return ExecutionStatus.FAILED, steps  # nobody will start another step
    return ExecutionStatus.RUNNING, steps


PIECES = ("run_order", "container_kwargs", "ready_steps", "after_failure", "retry_delay",
          "resource_limits", "stop_containers", "container_labels", "merge_status")


def wire_sweep(loader, trainer, evaluator, pick_best, gammas, test_size):
    """Notebook 7: a hyper-parameter sweep whose trainers can run at the same time.

    One loader; per gamma a trainer that needs only the loader's training
    data, and an evaluator that needs that trainer's model and the test data;
    one step that picks the best evaluation. Called inside a `@pipeline`.
    """
    X_train, X_test, y_train, y_test = loader(test_size=test_size)
    reports = []
    for number, gamma in enumerate(gammas):
        model = trainer(X_train, y_train, gamma=gamma, id=f"train_{number}")
        reports.append(evaluator(model, X_test, y_test, id=f"evaluate_{number}"))
    return pick_best(reports)
