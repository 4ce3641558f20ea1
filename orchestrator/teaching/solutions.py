"""Reference solutions of the tutorial's exercises: the pieces of the reader's orchestrator.

Each function here is one piece the reader writes in a notebook (notebook 2
to 6) and that goes into the reader's own orchestrator module,
``my_orchestrator.py`` (see `orchestrator.teaching.my_file`). A notebook uses
the reference only where the reader has not written their own yet, and says
so; the checks in `orchestrator.teaching.checks` run on whichever is used.

They are written as a reader would write them: short, with the names the
scaffolding of ``my_orchestrator.py`` provides (``ExecutionMode``,
``ExecutionStatus``, ``RUN_ID_VARIABLE``, ``logger``, and at stage 2
``uuid4`` and ``temporary_environment``), importing anything
else inside the function: ZenML imports ``my_orchestrator.py`` in every
step container, where this package is not installed. The package's own,
fuller versions are named in each docstring.
"""

import os
import queue
import threading
import time
from uuid import uuid4

from zenml.enums import ExecutionMode, ExecutionStatus
from zenml.logger import get_logger
from zenml.utils.env_utils import temporary_environment

logger = get_logger(__name__)  # as in the scaffolding
RUN_ID_VARIABLE = "MY_ORCHESTRATOR_RUN_ID"  # as in the scaffolding
# The package's label schema (orchestrator/running/labels.py), copied as in the scaffolding: with
# these labels its live panel and `python -m orchestrator.status` follow your
# runs, and this file still imports nothing from the package.
MANAGED_BY_LABEL = "io.my-docker.managed-by"
MANAGED_BY_VALUE = "my_docker"
ORCHESTRATOR_RUN_ID_LABEL = "io.my-docker.orchestrator-run-id"
PIPELINE_RUN_ID_LABEL = "io.my-docker.pipeline-run-id"
PIPELINE_LABEL = "io.my-docker.pipeline"
RUN_NAME_LABEL = "io.my-docker.run-name"
STEP_LABEL = "io.my-docker.step"
ATTEMPT_LABEL = "io.my-docker.attempt"
CLIENT_HOST_LABEL = "io.my-docker.client-host"
CLIENT_PID_LABEL = "io.my-docker.client-pid"


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


def get_orchestrator_run_id(self):
    """This run's id, the same in every step of the run (notebook 2; a method of MyOrchestrator).

    ZenML asks for it inside each step (in this process at stage 2, in each
    step's container from stage 3 on); `submit_pipeline` put it in every
    step's environment under ``RUN_ID_VARIABLE``.

    Raises:
        RuntimeError: not inside a step of my_orchestrator.
    """
    try:
        return os.environ[RUN_ID_VARIABLE]
    except KeyError:
        raise RuntimeError(f"{RUN_ID_VARIABLE} is not set: not in a step of "
                           "my_orchestrator") from None


def submit_pipeline(self, snapshot, stack, base_environment, step_environments,
                    placeholder_run=None):
    """Run every step of the snapshot in this process, in `run_order` (notebook 2; a
    method of MyOrchestrator at stage 2, replaced by a container loop from stage 3).

    A step that fails is logged and the steps that need it are skipped; the
    others go on (CONTINUE_ON_FAILURE). ZenML's `run_step` records each step.
    The package's version: `orchestrator.running.submission`.

    Raises:
        RuntimeError: a step failed (after every step that could run has run).
    """
    settings = self.get_settings(snapshot)
    steps = snapshot.step_configurations
    upstreams = {name: list(step.spec.upstream_steps) for name, step in steps.items()}
    run_id = str(uuid4())  # one id for the whole run, in every step's environment
    not_run = set()  # failed or skipped
    failed = []
    for number, name in enumerate(run_order(upstreams), start=1):
        if not_run & set(upstreams[name]):
            not_run.add(name)
            logger.info("my_orchestrator: skipping %s: it needs a step that failed", name)
            continue
        if settings.announce:
            logger.info("my_orchestrator: step %d/%d: %s", number, len(steps), name)
        try:
            with temporary_environment({**step_environments[name], RUN_ID_VARIABLE: run_id}):
                self.run_step(steps[name])  # raises if the step fails
        except Exception as error:  # noqa: BLE001 - CONTINUE_ON_FAILURE: the others go on
            logger.error("my_orchestrator: step %s failed: %s", name, error)
            not_run.add(name)
            failed.append(name)
    if failed:
        self._record_failed_run(placeholder_run)
        raise RuntimeError(f"step(s) failed: {', '.join(failed)}")
    return None  # nothing to wait for: the run is over


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


def follow_container(container, echo):
    """A started step container to its end and removal: its exit code (notebook 3).

    Each line of its output goes to ``echo`` as it comes (decoded, without
    its newline); the container is removed whatever happens.
    The package's version: `orchestrator.running.docker_backend` (following,
    waiting, removing) and `orchestrator.running.step_logs`.
    """
    try:
        for line in container.logs(stream=True, follow=True):  # as they come
            echo(line.decode(errors="replace").rstrip())
        return container.wait()["StatusCode"]
    finally:  # an error, Ctrl-C: no container stays behind
        container.remove(force=True)


def ready_steps(upstreams, states, max_parallelism):
    """The pending steps that may start now, at most one per free slot (notebook 4).

    The package's version: `orchestrator.running.scheduler.DagScheduler.ready`.
    """
    free = max_parallelism - sum(1 for state in states.values() if state == "running")
    ready = [step for step in upstreams if states[step] == "pending"
             and all(states[up] == "completed" for up in upstreams[step])]
    return ready[:max(free, 0)]


def run(self):
    """The loop (notebook 4; a method of Runner): start what is ready, react to each end.

    Until nothing runs and nothing waits: start the due retries and the
    steps `ready_steps` allows, then take one end off the queue and react to
    it. Ctrl-C: `on_interrupt`, and the interrupt goes on. Whatever happens,
    no container of the run stays behind. At the end: ZenML's record, and an
    error if a step failed or the run was stopped.
    The package's version: `orchestrator.running.runner.DagRunner.run`.
    """
    try:
        while self.containers or self.waiting():
            self.start_due_retries()
            started = ready_steps(self.upstreams, self.states, self.max_parallelism)
            for step in started:
                self.start_step(step)
            self.raise_if_stuck(started)
            try:
                step, attempt, exit_code = self.ended.get(timeout=0.5)
            except queue.Empty:
                self.check_stop_request()
                continue
            self.on_end(step, attempt, exit_code)
    except KeyboardInterrupt:
        self.on_interrupt()
        raise
    finally:
        self.remove_containers()
    self.finish_record()
    failed = [step for step, state in self.states.items() if state == "failed"]
    if failed:
        raise RuntimeError(f"step(s) failed: {', '.join(failed)}")
    if self.stop_requested:
        raise RuntimeError("the run was stopped")


def start_step(self, step):
    """Start one attempt of a step in a new container, and a thread that follows it
    (notebook 4; a method of Runner).

    The package's version: `orchestrator.running.docker_backend`.
    """
    self.attempts[step] += 1
    attempt = self.attempts[step]
    labels = container_labels(self.run_info, step, attempt)
    container = self.client.containers.run(**self.plans[step].kwargs, labels=labels)
    self.containers[step] = container
    self.states[step] = "running"
    logger.info("[%s] started in container %s (attempt %d)", step, container.short_id, attempt)
    threading.Thread(target=self.follow_step, args=(step, attempt, container),
                     daemon=True).start()


def follow_step(self, step, attempt, container):
    """In a thread of its own: a container's lines as they come, then its end on the queue
    (notebook 4; a method of Runner). A container removed under our feet ends with -1.
    """
    try:
        exit_code = follow_container(container, lambda line: logger.info("[%s] %s", step, line))
    except Exception as error:  # noqa: BLE001 - docker's NotFound, a broken connection
        logger.info("[%s] lost its container: %s", step, error)
        exit_code = -1
    self.ended.put((step, attempt, exit_code))


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
    containers = client.containers.list(ignore_removed=True, filters={"label": label})
    for container in containers:
        if graceful:
            container.stop(timeout=grace_seconds)  # SIGTERM, SIGKILL after the grace
        else:
            container.kill()
    return len(containers)


def start_due_retries(self):
    """Start the retries whose delay is over, while a slot is free (notebook 5; Runner)."""
    now = time.monotonic()
    for step, due in list(self.retry_at.items()):
        running = sum(1 for state in self.states.values() if state == "running")
        if due <= now and running < self.max_parallelism:
            del self.retry_at[step]
            self.start_step(step)


def on_end(self, step, attempt, exit_code):
    """A container ended: completed, stopped, retried after its delay, or failed with
    the execution mode's consequences (notebook 5; a method of Runner).

    The package's version: `orchestrator.running.scheduler.DagScheduler.failed`.
    """
    self.containers.pop(step, None)  # follow_container removed it
    if self.states[step] == "stopping" or (exit_code != 0 and self.check_stop_request(0)):
        self.states[step] = "stopped"
        return
    if exit_code == 0:
        self.states[step] = "completed"
        return
    delay = retry_delay(self.plans[step].retry, attempt)
    if delay is not None:
        logger.info("[%s] attempt %d failed (exit code %d); retrying in %.0f s",
                    step, attempt, exit_code, delay)
        self.states[step] = "retrying"
        self.retry_at[step] = time.monotonic() + delay
        return
    logger.error("[%s] FAILED (exit code %d)", step, exit_code)
    self.states[step] = "failed"
    to_stop, to_skip = after_failure(self.mode, step, self.upstreams, self.states)
    for other in to_skip:
        self.states[other] = "skipped"
    for other in to_stop:
        self.stop_step(other)
    if self.mode != ExecutionMode.CONTINUE_ON_FAILURE:  # no new attempt either
        for other in list(self.retry_at):
            del self.retry_at[other]
            self.states[other] = "stopped"


def check_stop_request(self, at_most_every=2.0):
    """Whether someone asked ZenML to stop this run; if so, stop everything now
    (notebook 5; a method of Runner).
    """
    if self.stop_requested:
        return True
    if not self.stop_asked(at_most_every):
        return False
    self.stop_requested = True
    logger.info("my_orchestrator: stop requested")
    for step, state in self.states.items():
        if state in ("pending", "retrying"):
            self.states[step] = "stopped"
        elif state == "running":
            self.states[step] = "stopping"
    self.retry_at.clear()
    self.stop_all(self.grace_seconds)
    return True


def on_interrupt(self):
    """Ctrl-C in the loop: stop the run's containers, record the run stopped
    (notebook 5; a method of Runner). `run` removes the containers after.
    """
    logger.info("my_orchestrator: interrupted, stopping %d container(s)", len(self.containers))
    self.stop_all(2, wait=True)
    for step, state in self.states.items():
        if state not in ("completed", "failed", "skipped", "stopped"):
            self.states[step] = "stopped"
    self.finish_record()


def container_labels(run, step_name, attempt):
    """The labels of one step container, in the package's schema (notebook 6).

    ``run`` is the scaffolding's `RunInfo` (ZenML's run id, the orchestrator
    run id, pipeline and run names). With these labels the package's live
    panel and ``python -m orchestrator.status`` follow your runs.
    The package's version: `orchestrator.running.labels`.
    """
    import socket

    return {
        MANAGED_BY_LABEL: MANAGED_BY_VALUE,
        PIPELINE_RUN_ID_LABEL: run.pipeline_run_id,
        ORCHESTRATOR_RUN_ID_LABEL: run.orchestrator_run_id,
        PIPELINE_LABEL: run.pipeline_name,
        RUN_NAME_LABEL: run.run_name,
        STEP_LABEL: step_name,
        ATTEMPT_LABEL: str(attempt),
        CLIENT_HOST_LABEL: socket.gethostname(),  # who runs the loop: fetch_status
        CLIENT_PID_LABEL: str(os.getpid()),       # tells a live run from an orphan
    }


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


def client_is_gone(labels):
    """Whether the process that runs this container's run has died (notebook 6).

    ``labels`` are a container's labels (`container_labels`). On another
    machine it cannot be told: assumed alive. A process that exited but was
    not reaped yet (a zombie) is gone. A pid label that is not a number
    cannot be told either: assumed alive.
    The package's version: `orchestrator.status.fetch` (client liveness).
    """
    import socket

    import psutil

    if labels.get(CLIENT_HOST_LABEL) != socket.gethostname():
        return False
    try:
        process = psutil.Process(int(labels.get(CLIENT_PID_LABEL, "")))
        return process.status() == psutil.STATUS_ZOMBIE
    except ValueError:
        return False
    except psutil.NoSuchProcess:
        return True


def fetch_status(self, run, include_steps=False):
    """ZenML's question "how is this run?", answered while it runs and after
    (notebook 6; a method of MyOrchestrator): (run status, step statuses or None).

    The package's version: `orchestrator.status.fetch`.
    """
    recorded_run, recorded_steps = self.recorded(run)
    found = self.run_containers(run)
    containers = {c.labels.get(STEP_LABEL): c.status for c in found}
    client_alive = not (found and all(client_is_gone(c.labels) for c in found))
    status, steps = merge_status(recorded_run, recorded_steps, containers, client_alive)
    return status, (steps if include_steps else None)


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
