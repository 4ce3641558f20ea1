"""The exercise checks reject plausible wrong answers, and say so in the reader's terms.

For every pure piece of the reader's orchestrator, the mistakes a learner
plausibly makes (a FIFO Kahn sort, a slot count that forgets the running
steps, a retry delay without backoff, a status that stays RUNNING after the
run stopped, ...) are run through the piece's check: each must fail it, with
the message that names the broken rule. Several of them pass every fixed
example and are caught only by the property-based part (Hypothesis), which is
why that part exists. The reference solutions pass every check.

The pure pieces need no Docker engine. `follow_container`, `start_step` and
`follow_step` are checked on the real engine (one test each, its wrong
answers in turn); `stop_containers`, the other check on the engine, is
tested in tests/test_notebooks.py. The methods of the reader's runner
(`run`, `on_end`, ...) are checked on a stand-in runner (pure).
"""

import logging
import os
import queue
import textwrap
import time
from collections import deque
from uuid import uuid4

import pytest

from orchestrator.teaching import checks, solutions
from orchestrator.teaching.checks import ExerciseCheckError

ON_ENGINE = ("stop_containers", "follow_container", "start_step", "follow_step")
PURE = [name for name in checks.CHECKS if name not in ON_ENGINE]


@pytest.mark.parametrize("name", PURE)
def test_the_reference_passes_its_check(name):
    from orchestrator.teaching.checked_pieces import reference_function

    verified = checks.CHECKS[name](reference_function(name))
    assert verified and all(isinstance(item, str) for item in verified)


# --------------------------------------------------------------------------
# Wrong answers, piece by piece: (function, words the failure must contain)
# --------------------------------------------------------------------------


def fifo_kahn(upstreams):
    """Kahn's algorithm with a FIFO queue: a, c, b for {"b": ["a"], "a": [], "c": []}."""
    waiting = {step: len(ups) for step, ups in upstreams.items()}
    queue = deque(step for step in upstreams if not waiting[step])
    order = []
    while queue:
        step = queue.popleft()
        order.append(step)
        for other, ups in upstreams.items():
            if step in ups:
                waiting[other] -= 1
                if not waiting[other]:
                    queue.append(other)
    if len(order) != len(upstreams):
        raise ValueError("cycle")
    return order


def run_order_listing(upstreams):
    return list(upstreams)


def run_order_alphabetical_ties(upstreams):
    order, placed = [], set()
    while len(order) < len(upstreams):
        ready = sorted(s for s in upstreams if s not in placed and set(upstreams[s]) <= placed)
        if not ready:
            raise ValueError("cycle")
        order.append(ready[0])
        placed.add(ready[0])
    return order


def run_order_no_cycle_check(upstreams):
    order, placed = [], set()
    for _ in range(len(upstreams)):
        ready = [s for s in upstreams if s not in placed and set(upstreams[s]) <= placed]
        if ready:
            order.append(ready[0])
            placed.add(ready[0])
    return order


def ready_ignores_cap(upstreams, states, max_parallelism):
    return [s for s in upstreams if states[s] == "pending"
            and all(states[u] == "completed" for u in upstreams[s])]


def ready_forgets_running(upstreams, states, max_parallelism):
    ready = ready_ignores_cap(upstreams, states, max_parallelism)
    return ready[:max_parallelism]


def ready_upstream_only_ended(upstreams, states, max_parallelism):
    free = max_parallelism - list(states.values()).count("running")
    ready = [s for s in upstreams if states[s] == "pending"
             and all(states[u] in ("completed", "failed", "skipped") for u in upstreams[s])]
    return ready[:max(free, 0)]


def ready_sorted(upstreams, states, max_parallelism):
    return sorted(solutions.ready_steps(upstreams, states, len(upstreams) + 10))[
        :max(0, max_parallelism - list(states.values()).count("running"))]


def fail_fast_like_stop(mode, failed, upstreams, states):
    return [], [s for s in upstreams if states[s] == "pending"]


def continue_skips_direct_children_only(mode, failed, upstreams, states):
    from zenml.enums import ExecutionMode

    if mode != ExecutionMode.CONTINUE_ON_FAILURE:
        return solutions.after_failure(mode, failed, upstreams, states)
    return [], [s for s in upstreams if states[s] == "pending" and failed in upstreams[s]]


def continue_skips_by_name(mode, failed, upstreams, states):
    """Tuned to the fixed example: skips the pending steps whose name mentions the failed one."""
    from zenml.enums import ExecutionMode

    if mode != ExecutionMode.CONTINUE_ON_FAILURE:
        return solutions.after_failure(mode, failed, upstreams, states)
    return [], [s for s in upstreams if states[s] == "pending" and failed in s]


def retry_without_backoff(retry, failed_attempt):
    if retry is None or failed_attempt > retry.max_retries:
        return None
    return float(retry.delay)


def retry_one_short(retry, failed_attempt):
    if retry is None or failed_attempt >= retry.max_retries:
        return None
    return float(retry.delay * retry.backoff ** (failed_attempt - 1))


def retry_backoff_from_the_first(retry, failed_attempt):
    if retry is None or failed_attempt > retry.max_retries:
        return None
    return float(retry.delay * retry.backoff ** failed_attempt)


def retry_tuned_to_the_examples(retry, failed_attempt):
    """Right for the fixed examples' policies, wrong for others (max_retries=2)."""
    if retry is None or failed_attempt > 3 or (retry.max_retries == 1 and failed_attempt > 1):
        return None
    return float(retry.delay * retry.backoff ** (failed_attempt - 1))


def status_trusts_the_record(recorded_run, recorded_steps, containers, client_alive):
    return recorded_run, dict(recorded_steps)


def status_running_after_stop(recorded_run, recorded_steps, containers, client_alive):
    from zenml.enums import ExecutionStatus

    run, steps = solutions.merge_status(recorded_run, recorded_steps, containers, client_alive)
    if recorded_run == ExecutionStatus.STOPPED:
        return ExecutionStatus.RUNNING, steps  # the record says stopped; it still says running
    return run, steps


def status_ignores_created(recorded_run, recorded_steps, containers, client_alive):
    """Counts only "running" containers as alive: a just-created one reads as ended."""
    shown = {step: ("exited" if state == "created" else state) for step, state in containers.items()}
    return solutions.merge_status(recorded_run, recorded_steps, shown, client_alive)


def limits_without_swap(resources):
    limits = solutions.resource_limits(resources)
    limits.pop("memswap_limit", None)
    return limits


def limits_cpu_as_count(resources):
    limits = solutions.resource_limits(resources)
    if "nano_cpus" in limits:
        limits["nano_cpus"] = int(resources.cpu_count)
    return limits


def kwargs_without_mount(image, entrypoint, arguments, environment, stores_path, run_id):
    kwargs = solutions.container_kwargs(image, entrypoint, arguments, environment, stores_path,
                                        run_id)
    del kwargs["volumes"]
    return kwargs


def kwargs_changing_zenmls_dict(image, entrypoint, arguments, environment, stores_path, run_id):
    kwargs = solutions.container_kwargs(image, entrypoint, arguments, environment, stores_path,
                                        run_id)
    environment.update(kwargs["environment"])
    kwargs["environment"] = environment
    return kwargs


def kwargs_attached(image, entrypoint, arguments, environment, stores_path, run_id):
    kwargs = solutions.container_kwargs(image, entrypoint, arguments, environment, stores_path,
                                        run_id)
    kwargs["detach"] = False
    return kwargs


def labels_of_its_own(run, step_name, attempt):
    return {"my-orchestrator.run": run.pipeline_run_id, "my-orchestrator.step": step_name}


def labels_without_attempt(run, step_name, attempt):
    labels = solutions.container_labels(run, step_name, attempt)
    return {key: value for key, value in labels.items() if "attempt" not in key}


# -- the methods (notebooks 2, 4, 5, 6) -----------------------------------


def run_id_new_each_call(self):
    return str(uuid4())


def run_id_made_up_outside_a_step(self):
    return os.environ.get(solutions.RUN_ID_VARIABLE, "local-run")


def loop_one_at_a_time(self):
    """Starts one ready step, then waits for its end: notebook 3's runner."""
    try:
        while self.containers or self.waiting():
            self.start_due_retries()
            started = solutions.ready_steps(self.upstreams, self.states, self.max_parallelism)
            for step in started[:1]:
                self.start_step(step)
            self.raise_if_stuck(started)
            try:
                step, attempt, exit_code = self.ended.get(timeout=0.5)
            except queue.Empty:
                self.check_stop_request()
                continue
            self.on_end(step, attempt, exit_code)
    finally:
        self.remove_containers()
    self.finish_record()
    if "failed" in self.states.values() or self.stop_requested:
        raise RuntimeError(f"not completed: {self.states}")


def loop_cleanup_not_in_finally(self):
    """Removes the containers after the loop: a Ctrl-C skips that."""
    try:
        while self.containers or self.waiting():
            self.start_due_retries()
            for step in solutions.ready_steps(self.upstreams, self.states, self.max_parallelism):
                self.start_step(step)
            try:
                step, attempt, exit_code = self.ended.get(timeout=0.5)
            except queue.Empty:
                self.check_stop_request()
                continue
            self.on_end(step, attempt, exit_code)
    except KeyboardInterrupt:
        self.on_interrupt()
        raise
    self.remove_containers()
    self.finish_record()
    failed = [step for step, state in self.states.items() if state == "failed"]
    if failed or self.stop_requested:
        raise RuntimeError(f"step(s) failed: {failed}")


def loop_without_empty(self):
    """Waits for each end without handling a quiet moment (queue.Empty)."""
    try:
        while self.containers or self.waiting():
            self.start_due_retries()
            for step in solutions.ready_steps(self.upstreams, self.states, self.max_parallelism):
                self.start_step(step)
            step, attempt, exit_code = self.ended.get(timeout=0.5)
            self.on_end(step, attempt, exit_code)
    except KeyboardInterrupt:
        self.on_interrupt()
        raise
    finally:
        self.remove_containers()
    self.finish_record()


def loop_quiet_about_a_stop(self):
    """Raises for failed steps only: a stopped run looks like a success."""
    try:
        while self.containers or self.waiting():
            self.start_due_retries()
            for step in solutions.ready_steps(self.upstreams, self.states, self.max_parallelism):
                self.start_step(step)
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


def retries_ignore_the_cap(self):
    """A slot count that ignores retrying steps: every due retry starts."""
    now = time.monotonic()
    for step, due in list(self.retry_at.items()):
        if due <= now:
            del self.retry_at[step]
            self.start_step(step)


def retries_at_once(self):
    for step in list(self.retry_at):
        running = sum(1 for state in self.states.values() if state == "running")
        if running < self.max_parallelism:
            del self.retry_at[step]
            self.start_step(step)


def on_end_retries_without_delay(self, step, attempt, exit_code):
    self.containers.pop(step, None)
    if self.states[step] == "stopping":
        self.states[step] = "stopped"
    elif exit_code == 0:
        self.states[step] = "completed"
    elif solutions.retry_delay(self.plans[step].retry, attempt) is not None:
        self.states[step] = "retrying"
        self.retry_at[step] = time.monotonic()  # the delay forgotten
    else:
        self.states[step] = "failed"
        to_stop, to_skip = solutions.after_failure(self.mode, step, self.upstreams, self.states)
        for other in to_skip:
            self.states[other] = "skipped"
        for other in to_stop:
            self.stop_step(other)


def on_end_policy_before_retry(self, step, attempt, exit_code):
    """Applies the execution mode to every failure, even one that will be retried."""
    self.containers.pop(step, None)
    if self.states[step] == "stopping":
        self.states[step] = "stopped"
        return
    if exit_code == 0:
        self.states[step] = "completed"
        return
    to_stop, to_skip = solutions.after_failure(self.mode, step, self.upstreams,
                                               dict(self.states, **{step: "failed"}))
    for other in to_stop:
        self.stop_step(other)
    delay = solutions.retry_delay(self.plans[step].retry, attempt)
    if delay is not None:
        self.states[step] = "retrying"
        self.retry_at[step] = time.monotonic() + delay
        return
    self.states[step] = "failed"
    for other in to_skip:
        self.states[other] = "skipped"


def on_end_stopped_counts_as_failed(self, step, attempt, exit_code):
    self.containers.pop(step, None)
    if exit_code == 0:
        self.states[step] = "completed"
        return
    delay = solutions.retry_delay(self.plans[step].retry, attempt)
    if delay is not None:
        self.states[step] = "retrying"
        self.retry_at[step] = time.monotonic() + delay
        return
    self.states[step] = "failed"
    to_stop, to_skip = solutions.after_failure(self.mode, step, self.upstreams, self.states)
    for other in to_skip:
        self.states[other] = "skipped"
    for other in to_stop:
        self.stop_step(other)
    if self.mode != solutions.ExecutionMode.CONTINUE_ON_FAILURE:
        for other in list(self.retry_at):
            del self.retry_at[other]
            self.states[other] = "stopped"


def stop_that_never_kills(self, at_most_every=2.0):
    """Marks the states, never stops a container: the run goes on to its end."""
    if self.stop_requested:
        return True
    if not self.stop_asked(at_most_every):
        return False
    self.stop_requested = True
    for step, state in self.states.items():
        if state in ("pending", "retrying"):
            self.states[step] = "stopped"
        elif state == "running":
            self.states[step] = "stopping"
    self.retry_at.clear()
    return True


def stop_forgets_the_retrying(self, at_most_every=2.0):
    if self.stop_requested:
        return True
    if not self.stop_asked(at_most_every):
        return False
    self.stop_requested = True
    for step, state in self.states.items():
        if state == "pending":
            self.states[step] = "stopped"
        elif state == "running":
            self.states[step] = "stopping"
    self.stop_all(self.grace_seconds)
    return True


def interrupt_without_stopping(self):
    for step, state in self.states.items():
        if state not in ("completed", "failed", "skipped", "stopped"):
            self.states[step] = "stopped"
    self.finish_record()


def interrupt_without_record(self):
    self.stop_all(2, wait=True)
    for step, state in self.states.items():
        if state not in ("completed", "failed", "skipped", "stopped"):
            self.states[step] = "stopped"


def gone_by_pid_exists(labels):
    """psutil.pid_exists: a zombie's pid exists, so a dead client looks alive."""
    import socket

    import psutil

    if labels.get(solutions.CLIENT_HOST_LABEL) != socket.gethostname():
        return False
    try:
        return not psutil.pid_exists(int(labels.get(solutions.CLIENT_PID_LABEL, "")))
    except ValueError:
        return False


def gone_whatever_the_host(labels):
    import psutil

    try:
        process = psutil.Process(int(labels.get(solutions.CLIENT_PID_LABEL, "")))
        return process.status() == psutil.STATUS_ZOMBIE
    except ValueError:
        return False
    except psutil.NoSuchProcess:
        return True


def fetch_trusts_the_record(self, run, include_steps=False):
    recorded_run, recorded_steps = self.recorded(run)
    return recorded_run, (recorded_steps if include_steps else None)


def fetch_always_with_steps(self, run, include_steps=False):
    recorded_run, recorded_steps = self.recorded(run)
    found = self.run_containers(run)
    containers = {c.labels.get(solutions.STEP_LABEL): c.status for c in found}
    alive = not (found and all(solutions.client_is_gone(c.labels) for c in found))
    return solutions.merge_status(recorded_run, recorded_steps, containers, alive)


WRONG = {
    "run_order": [
        (fifo_kahn, "listed first"),
        (run_order_listing, "after its upstream steps"),
        (run_order_alphabetical_ties, "listed first"),
        (run_order_no_cycle_check, "cycle"),
    ],
    "ready_steps": [
        (ready_ignores_cap, "max_parallelism=2"),
        (ready_forgets_running, "running steps take their slots"),
        (ready_upstream_only_ended, "upstream failed"),
        (ready_sorted, "in pipeline order"),
    ],
    "after_failure": [
        (fail_fast_like_stop, "fail_fast"),
        (continue_skips_direct_children_only, "continue_on_failure"),
        (continue_skips_by_name, "only what needs the failed step"),
    ],
    "retry_delay": [
        (retry_without_backoff, "2, 6, 18"),
        (retry_one_short, "2, 6, 18"),
        (retry_backoff_from_the_first, "2, 6, 18"),
        (retry_tuned_to_the_examples, "while retries are left"),
    ],
    "merge_status": [
        (status_trusts_the_record, "killed before it recorded its end"),
        (status_running_after_stop, "by the rule"),
        (status_ignores_created, "by the rule"),
    ],
    "resource_limits": [
        (limits_without_swap, "memswap_limit"),
        (limits_cpu_as_count, "nano_cpus"),
    ],
    "container_kwargs": [
        (kwargs_without_mount, "volumes"),
        (kwargs_changing_zenmls_dict, "left as it was"),
        (kwargs_attached, "detach"),
    ],
    "container_labels": [
        (labels_of_its_own, "io.my-docker.managed-by"),
        (labels_without_attempt, "attempt"),
    ],
    "get_orchestrator_run_id": [
        (run_id_new_each_call, "the same on every call"),
        (run_id_made_up_outside_a_step, "an error, not an id"),
    ],
    "run": [
        (loop_one_at_a_time, "two branches ran at once"),
        (loop_cleanup_not_in_finally, "the containers removed (in a `finally`)"),
        (loop_without_empty, "returns (no exception)"),
        (loop_quiet_about_a_stop, "a stopped run"),
    ],
    "start_due_retries": [
        (retries_ignore_the_cap, "one free slot"),
        (retries_at_once, "not b"),
    ],
    "on_end": [
        (on_end_retries_without_delay, "due in"),
        (on_end_policy_before_retry, "does not apply the execution mode"),
        (on_end_stopped_counts_as_failed, "ends 'stopped'"),
    ],
    "check_stop_request": [
        (stop_that_never_kills, "the containers are stopped"),
        (stop_forgets_the_retrying, "retrying -> stopped"),
    ],
    "on_interrupt": [
        (interrupt_without_stopping, "stops the run's containers"),
        (interrupt_without_record, "finish_record"),
    ],
    "client_is_gone": [
        (gone_by_pid_exists, "zombie"),
        (gone_whatever_the_host, "another machine"),
    ],
    "fetch_status": [
        (fetch_trusts_the_record, "a run going on"),
        (fetch_always_with_steps, "include_steps=False"),
    ],
}


# --------------------------------------------------------------------------
# The flavor's pieces (notebooks 2, 4, 5): classes, run as a cell of the file is
# --------------------------------------------------------------------------


def _cell(piece, source):
    """What a reader's cell for `piece` defines, executed as the notebook's check does."""
    from orchestrator.teaching.checked_pieces import _execute
    from orchestrator.teaching.piece_plan import defined_name

    return _execute(textwrap.dedent(source), piece)[defined_name(piece)]


_SETTINGS_HEAD = """
from zenml.config.base_settings import BaseSettings
from zenml.orchestrators import BaseOrchestratorConfig


class MyOrchestratorSettings(BaseSettings):
    announce: bool = True
"""
_PROPERTIES = """
    @property
    def is_local(self):
        return True

    @property
    def is_synchronous(self):
        return True
"""

config_without_settings = _cell("MyOrchestratorConfig", _SETTINGS_HEAD + """

class MyOrchestratorConfig(BaseOrchestratorConfig):  # forgot the settings
""" + _PROPERTIES)
config_not_synchronous = _cell("MyOrchestratorConfig", _SETTINGS_HEAD + """

class MyOrchestratorConfig(BaseOrchestratorConfig, MyOrchestratorSettings):
    @property
    def is_local(self):
        return True
""")
config_claims_retries_early = _cell("MyOrchestratorConfig", _SETTINGS_HEAD + """

class MyOrchestratorConfig(BaseOrchestratorConfig, MyOrchestratorSettings):
""" + _PROPERTIES + """
    @property
    def handles_step_retries(self):
        return True
""")
config_4_keeps_announce_only = _cell("MyOrchestratorConfig@4", _SETTINGS_HEAD + """

class MyOrchestratorConfig(BaseOrchestratorConfig, MyOrchestratorSettings):
""" + _PROPERTIES)
config_4_untyped_field = _cell("MyOrchestratorConfig@4", """
from typing import Any

from zenml.config.base_settings import BaseSettings
from zenml.orchestrators import BaseOrchestratorConfig


class MyOrchestratorSettings(BaseSettings):
    max_parallelism: Any = 4  # any value goes


class MyOrchestratorConfig(BaseOrchestratorConfig, MyOrchestratorSettings):
""" + _PROPERTIES)
config_5_without_retries = _cell("MyOrchestratorConfig@5", """
from zenml.config.base_settings import BaseSettings
from zenml.orchestrators import BaseOrchestratorConfig


class MyOrchestratorSettings(BaseSettings):
    max_parallelism: int = 4
    stop_grace_seconds: int = 5


class MyOrchestratorConfig(BaseOrchestratorConfig, MyOrchestratorSettings):
""" + _PROPERTIES)

_FLAVOR = """
from zenml.orchestrators import BaseOrchestratorFlavor


class MyOrchestratorFlavor(BaseOrchestratorFlavor):
    @property
    def name(self):
        return {name!r}

    @property
    def config_class(self):
        return MyOrchestratorConfig

    @property
    def implementation_class(self):
        return {implementation}
"""
flavor_named_like_the_package = _cell("MyOrchestratorFlavor", _FLAVOR.format(
    name="my_docker", implementation="MyOrchestrator"))
flavor_implemented_by_its_config = _cell("MyOrchestratorFlavor", _FLAVOR.format(
    name="my_orchestrator", implementation="MyOrchestratorConfig"))


logger = logging.getLogger("my_orchestrator (the wrong answers')")  # as the file's `logger`


def _submit_with(order_of, skip, env, raise_at_end=True, run_id_per_step=False,
                 announce_always=False):
    """A stage-2 submit_pipeline with one decision made differently."""

    def submit_pipeline(self, snapshot, stack, base_environment, step_environments,
                        placeholder_run=None):
        announce = announce_always or self.get_settings(snapshot).announce
        steps = snapshot.step_configurations
        upstreams = {name: list(step.spec.upstream_steps) for name, step in steps.items()}
        run_id = str(uuid4())
        not_run, failed = set(), []
        for number, name in enumerate(order_of(upstreams), start=1):
            if skip and not_run & set(upstreams[name]):
                not_run.add(name)
                continue
            if announce:
                logger.info("my_orchestrator: step %d/%d: %s", number, len(steps), name)
            variables = {**step_environments[name],
                         solutions.RUN_ID_VARIABLE: str(uuid4()) if run_id_per_step else run_id}
            try:
                env(variables, lambda step=steps[name]: self.run_step(step))
            except Exception:  # noqa: BLE001
                not_run.add(name)
                failed.append(name)
        if failed:
            self._record_failed_run(placeholder_run)
            if raise_at_end:
                raise RuntimeError(f"step(s) failed: {failed}")

    return submit_pipeline


def _temporary(variables, call):
    from zenml.utils.env_utils import temporary_environment

    with temporary_environment(variables):
        call()


def _set_for_good(variables, call):
    os.environ.update(variables)
    call()


submit_in_listed_order = _submit_with(list, True, _temporary)
submit_runs_what_needs_a_failed_step = _submit_with(solutions.run_order, False, _temporary)
submit_leaves_the_id_behind = _submit_with(solutions.run_order, True, _set_for_good)
submit_without_an_error = _submit_with(solutions.run_order, True, _temporary, raise_at_end=False)
submit_an_id_per_step = _submit_with(solutions.run_order, True, _temporary, run_id_per_step=True)


submit_announcing_always = _submit_with(solutions.run_order, True, _temporary,
                                        announce_always=True)


def submit_returning_the_run_id(self, snapshot, stack, base_environment, step_environments,
                                placeholder_run=None):
    _submit_with(solutions.run_order, True, _temporary)(
        self, snapshot, stack, base_environment, step_environments, placeholder_run)
    return "my-run-id"  # ZenML takes it for a SubmissionResult

WRONG.update({
    "MyOrchestratorConfig": [
        (config_without_settings, "inherits MyOrchestratorSettings"),
        (config_not_synchronous, "is_synchronous"),
        (config_claims_retries_early, "handles_step_retries is False"),
    ],
    "MyOrchestratorConfig@4": [
        (config_4_keeps_announce_only, "max_parallelism"),
        (config_4_untyped_field, "wrong value"),
    ],
    "MyOrchestratorConfig@5": [
        (config_5_without_retries, "handles_step_retries is True"),
    ],
    "MyOrchestratorFlavor": [
        (flavor_named_like_the_package, "'my_orchestrator'"),
        (flavor_implemented_by_its_config, "implementation_class"),
    ],
    "submit_pipeline": [
        (submit_in_listed_order, "after its upstream steps"),
        (submit_runs_what_needs_a_failed_step, "is skipped"),
        (submit_leaves_the_id_behind, "not left in this process's environment"),
        (submit_without_an_error, "returned normally"),
        (submit_an_id_per_step, "one run id"),
        (submit_announcing_always, "announce off"),
        (submit_returning_the_run_id, "returned 'my-run-id'"),
    ],
})

CASES = [(name, function, words) for name, wrongs in WRONG.items()
         for function, words in wrongs]


def test_every_pure_piece_has_wrong_answers():
    assert set(WRONG) == set(PURE)


@pytest.mark.parametrize("name, wrong, words", CASES,
                         ids=[f"{name}-{function.__name__}" for name, function, _ in CASES])
def test_a_plausible_wrong_answer_fails_its_check(name, wrong, words):
    with pytest.raises(ExerciseCheckError) as raised:
        checks.CHECKS[name](wrong)
    message = str(raised.value)
    assert words in message, message
    for part in ("claim:", "input:", "yours returned:", "why it matters:", "checks already passed"):
        assert part in message, (part, message)


def test_fifo_kahn_passes_every_fixed_example_and_is_caught_by_the_property():
    """The issue's example: a tie rule that fixed cases do not pin down."""
    assert fifo_kahn({"b": ["a"], "a": [], "c": []}) == ["a", "c", "b"]
    with pytest.raises(ExerciseCheckError) as raised:
        checks.check_run_order(fifo_kahn)
    message = str(raised.value)
    assert "generated cases" in message
    assert "passed: ties go to the step listed first" in message  # the fixed tie example passed


def test_a_failure_shows_no_traceback_into_the_checks():
    """In a notebook the error is its message: no frames of checks.py, no file paths."""
    with pytest.raises(ExerciseCheckError) as raised:
        checks.check_retry_delay(retry_without_backoff)
    shown = "\n".join(raised.value._render_traceback_())
    assert shown.splitlines()[0].endswith("retry_delay: your code fails a check.\x1b[0m")
    assert "checks.py" not in shown and "Traceback" not in shown and "File " not in shown
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_an_answer_that_raises_is_shown_with_its_input():
    def broken(upstreams):
        return upstreams["nope"]

    with pytest.raises(ExerciseCheckError) as raised:
        checks.check_run_order(broken)
    assert "raised KeyError" in str(raised.value)
    assert "input:          run_order({'c': ['b']" in str(raised.value)


def test_the_generated_cases_are_the_same_on_every_run():
    """Derandomized: a reader who fixes a failure sees the same cases again."""
    first = second = None
    for attempt in range(2):
        with pytest.raises(ExerciseCheckError) as raised:
            checks.check_run_order(fifo_kahn)
        if attempt:
            second = str(raised.value)
        else:
            first = str(raised.value)
    assert first == second


# --------------------------------------------------------------------------
# follow_container: checked on the real engine
# --------------------------------------------------------------------------


def follow_read_at_the_end(container, echo):
    try:
        code = container.wait()["StatusCode"]
        for line in container.logs().decode().splitlines():
            echo(line)
        return code
    finally:
        container.remove(force=True)


def follow_never_removes(container, echo):
    for line in container.logs(stream=True, follow=True):
        echo(line.decode(errors="replace").rstrip())
    return container.wait()["StatusCode"]


def follow_removes_only_on_success(container, echo):
    for line in container.logs(stream=True, follow=True):
        echo(line.decode(errors="replace").rstrip())
    code = container.wait()["StatusCode"]
    container.remove(force=True)  # not in a finally: an error in echo leaves it behind
    return code


def follow_returns_the_wait_answer(container, echo):
    try:
        for line in container.logs(stream=True, follow=True):
            echo(line.decode(errors="replace").rstrip())
        return container.wait()  # {"StatusCode": 3, "Error": None}, not 3
    finally:
        container.remove(force=True)


def follow_echoes_bytes(container, echo):
    try:
        for line in container.logs(stream=True, follow=True):
            echo(line)
        return container.wait()["StatusCode"]
    finally:
        container.remove(force=True)


FOLLOW_WRONG = [
    (follow_read_at_the_end, "while the container still runs"),
    (follow_never_removes, "removed after its end"),
    (follow_removes_only_on_success, "removed also when something fails"),
    (follow_returns_the_wait_answer, "exit code"),
    (follow_echoes_bytes, "decoded"),
]


@pytest.mark.usefixtures("parent_image")
def test_follow_container_check_on_the_engine():
    """The reference passes; each plausible wrong answer fails with its rule; nothing is left."""
    assert len(checks.check_follow_container(solutions.follow_container)) == 5
    for wrong, words in FOLLOW_WRONG:
        with pytest.raises(ExerciseCheckError) as raised:
            checks.check_follow_container(wrong)
        assert words in str(raised.value), (wrong.__name__, str(raised.value))


# --------------------------------------------------------------------------
# start_step and follow_step: checked on the real engine
# --------------------------------------------------------------------------


def start_step_follows_in_the_loop(self, step):
    """Calls follow_step itself: start_step returns only at the container's end."""
    self.attempts[step] += 1
    attempt = self.attempts[step]
    labels = solutions.container_labels(self.run_info, step, attempt)
    container = self.client.containers.run(**self.plans[step].kwargs, labels=labels)
    self.containers[step] = container
    self.states[step] = "running"
    self.follow_step(step, attempt, container)


def start_step_always_attempt_one(self, step):
    import threading

    labels = solutions.container_labels(self.run_info, step, 1)
    container = self.client.containers.run(**self.plans[step].kwargs, labels=labels)
    self.containers[step] = container
    self.states[step] = "running"
    threading.Thread(target=self.follow_step, args=(step, 1, container), daemon=True).start()


def follow_step_lets_errors_out(self, step, attempt, container):
    self.ended.put((step, attempt, solutions.follow_container(container, print)))


def follow_step_without_attempt(self, step, attempt, container):
    try:
        exit_code = solutions.follow_container(container, print)
    except Exception:  # noqa: BLE001
        exit_code = -1
    self.ended.put((step, exit_code))


@pytest.mark.usefixtures("parent_image")
def test_start_step_and_follow_step_checks_on_the_engine():
    """The references pass; each plausible wrong answer fails with its rule; nothing is left."""
    assert len(checks.CHECKS["start_step"](solutions.start_step)) == 8
    assert len(checks.CHECKS["follow_step"](solutions.follow_step)) == 3
    for name, wrong, words in [
            ("start_step", start_step_follows_in_the_loop, "returns at once"),
            ("start_step", start_step_always_attempt_one, "attempts counted"),
            ("follow_step", follow_step_lets_errors_out, "removed under our feet"),
            ("follow_step", follow_step_without_attempt, "('train', 2, 3)")]:
        with pytest.raises(ExerciseCheckError) as raised:
            checks.CHECKS[name](wrong)
        assert words in str(raised.value), (wrong.__name__, str(raised.value))


# --------------------------------------------------------------------------
# The reference solutions, pasted into the exercise cells, count as the reader's
# --------------------------------------------------------------------------


def _paste_references(notebooks_dir, into):
    """Copies of notebooks 2-6 whose exercise cells hold the reference solutions."""
    import ast
    import inspect
    import json

    from orchestrator.teaching.checked_pieces import reference_source
    from orchestrator.teaching.piece_plan import (
        EXERCISE_TAG,
        NOTEBOOK_FILES,
        PIECES,
        piece_written_in,
    )

    for file_name in NOTEBOOK_FILES.values():
        notebook = json.loads((notebooks_dir / file_name).read_text())
        for cell in notebook["cells"]:
            if EXERCISE_TAG not in cell.get("metadata", {}).get("tags", []):
                continue
            source = "".join(cell["source"])
            lines = source.splitlines()
            number = next(n for n, name in NOTEBOOK_FILES.items() if name == file_name)
            classes = [node.name for node in ast.parse(source).body
                       if isinstance(node, ast.ClassDef)]
            if classes:  # a cell of classes: the reference cell in its place
                cell["source"] = reference_source(piece_written_in(classes[-1], number))
                continue
            for node in reversed(ast.parse(source).body):
                if isinstance(node, ast.FunctionDef) and node.name in PIECES:
                    reference = inspect.getsource(getattr(solutions, node.name)).splitlines()
                    lines[node.lineno - 1:node.end_lineno] = reference
            cell["source"] = "\n".join(lines) + "\n"
        (into / file_name).write_text(json.dumps(notebook))


def test_the_references_pasted_into_the_exercise_cells_count_as_the_readers(tmp_path):
    """Notebook 7's scoreboard says N of N when every exercise cell holds the reference:
    each piece is found in its notebook, runs on its own as the file will run it, and
    passes its check (the pure ones here; the engine's are the same mechanism)."""
    from pathlib import Path

    from orchestrator.teaching.piece_plan import PIECES
    from orchestrator.teaching.reader_answers import saved_piece

    _paste_references(Path(__file__).resolve().parents[1] / "notebooks", tmp_path)
    for name in PIECES:
        if name in ON_ENGINE:
            continue
        piece = saved_piece(name, tmp_path)
        assert piece.origin == "yours" and piece.reader == "passed", (name, piece.note)


def test_a_methods_own_imports_go_to_the_top_of_the_file():
    """A method's cell may import what it uses: the file puts that at module level,
    where the method sees it (inside the class body it would be a class attribute)."""
    import ast

    from orchestrator.teaching.assembly import assemble, reference_file
    from orchestrator.teaching.checked_pieces import reference_source
    from orchestrator.teaching.exercise_cells import extract_piece
    from orchestrator.teaching.piece_plan import Piece, pieces_of_stage

    cell = ("import hashlib\n\n\ndef get_orchestrator_run_id(self):\n"
            "    return hashlib.sha1(os.environ[RUN_ID_VARIABLE].encode()).hexdigest()\n\n\n"
            "print('a call in the cell stays out')\n")
    source = extract_piece(cell, "get_orchestrator_run_id")
    assert source.startswith("import hashlib") and "print(" not in source
    sources = {name: reference_source(name) for name in pieces_of_stage(2)}
    sources.update({"run_order": "def run_order(u):\n    return list(u)\n",
                    "get_orchestrator_run_id": source})
    pieces = {name: Piece(name, piece_source, None, "reference", "", [])
              for name, piece_source in sources.items()}
    text = assemble(2, pieces)
    tree = ast.parse(text)
    assert any(isinstance(node, ast.Import) and node.names[0].name == "hashlib"
               for node in tree.body)
    orchestrator_class = next(node for node in tree.body
                              if isinstance(node, ast.ClassDef) and node.name == "MyOrchestrator")
    assert not any(isinstance(node, ast.Import) for node in orchestrator_class.body)
    assert "get_orchestrator_run_id" in [node.name for node in orchestrator_class.body
                                         if isinstance(node, ast.FunctionDef)]
    assert "# the imports of your methods' cells" not in reference_file(2)  # none to hoist


def test_a_flavor_written_with_class_attributes_passes_its_check():
    """Right, if not the notebook's way: `name` and the classes as class attributes."""
    from orchestrator.teaching.checked_pieces import checked_piece

    cell = textwrap.dedent("""
        from zenml.orchestrators import BaseOrchestratorFlavor


        class MyOrchestratorFlavor(BaseOrchestratorFlavor):
            name = "my_orchestrator"
            config_class = MyOrchestratorConfig
            implementation_class = MyOrchestrator
    """)
    piece = checked_piece("MyOrchestratorFlavor", cell, "a test")
    assert any("implementation_class" in claim for claim in piece.verified), piece.verified



def test_writing_the_file_after_a_failed_check_says_the_check_failed(tmp_path):
    """A trial: after a failed check, `my_file.write()` said "run the check cell of
    run_order first", which the reader had just done."""
    from orchestrator.teaching.my_file import MyFile

    def run_order(upstreams):  # Kahn's sort with a FIFO queue: ties not in the pipeline's order
        order, done = [], set()
        ready = [step for step, ups in upstreams.items() if not ups]
        while ready:
            step = ready.pop(0)
            order.append(step)
            done.add(step)
            ready += [s for s, ups in upstreams.items()
                      if s not in done and s not in ready and set(ups) <= done]
        return order

    my_file = MyFile(2, tmp_path, None, {}, echo=lambda line: None)
    with pytest.raises(ExerciseCheckError):
        my_file.exercise("run_order", run_order)
    with pytest.raises(RuntimeError, match="the check of run_order failed above"):
        my_file.write()
