"""Run a pipeline's steps as Swarm services, in DAG order, in parallel, anywhere on the swarm.

The loop is `my_docker`'s (`orchestrator.running.runner`), with services for
containers: the pure scheduler says which step may start; each attempt
becomes one service whose single task Swarm places on a node with room for
its reservations and never restarts; its output is streamed from the
service; its task's end (state, exit code) decides the attempt, with ZenML's
record having the last word on success. Retries are new services (the next
attempt), so a task killed on its node is retried like any failure. A stop
request, a timeout or a fail-fast removes the service (SIGTERM, SIGKILL
after the grace period). Whatever happens, Ctrl-C included, every service of
the run is removed and the loop waits until no task or container of it is
left on any node it can reach.
"""

from __future__ import annotations

import collections
import json
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Deque, Dict, List, Mapping, Optional

import docker
import requests

from orchestrator.errors import RunStoppedError, StepFailedError
from orchestrator.running.containers import ContainerExit
from orchestrator.running.labels import label_filters
from orchestrator.running.run_hooks import RunHooks
from orchestrator.running.run_outcome import StepFailure
from orchestrator.running.scheduler import DagScheduler, StepState
from orchestrator.running.signals import terminate_as_interrupt
from orchestrator.running.step_logs import StepLogFile, TracebackFolder
from orchestrator.running.verdict import Verdict, judge_attempt
from orchestrator.swarm.cluster import (
    TERMINAL_TASK_STATES,
    ServiceLogFollower,
    latest_task,
    node_names,
    wait_until_gone,
)
from orchestrator.swarm.planning import SwarmPlan

# How often the loop looks at its tasks.
POLL_SECONDS = 0.25
# How often to ask ZenML whether someone requested a stop of this run.
STOP_CHECK_SECONDS = 2.0
# How long the end of a run waits for Swarm to remove tasks and containers.
CLEANUP_SECONDS = 60.0
LAST_LINES = 60
# Where each run's step -> node record is kept, beside the step logs.
NODES_FILE = "nodes.json"


@dataclass
class _Attempt:
    """One attempt of one step: its service, its task as last seen, its output."""

    step_name: str
    attempt: int
    service: Any
    created: float
    log_file: StepLogFile
    folder: TracebackFolder = field(default_factory=TracebackFolder)
    last_lines: Deque[str] = field(default_factory=lambda: collections.deque(maxlen=LAST_LINES))
    follower: Optional[ServiceLogFollower] = None
    node: Optional[str] = None
    running_since: Optional[float] = None
    waiting_reason: Optional[str] = None
    stopping: Optional[str] = None  # why we are removing its service
    timed_out: Optional[float] = None
    removal: Optional[Future] = None


class SwarmRunner:
    """Runs a `SwarmPlan` on a swarm; `run()` returns when every step is final.

    Args:
        client: a client of the swarm's manager.
        plan: what to run.
        hooks: how to report (ZenML's record, logs).
        node_engines: node host name -> a client of its own engine, where it
            can be reached (the local swarm's); used to find an out-of-memory
            kill and to check, at the end, that no container is left.
    """

    def __init__(self, client: docker.DockerClient, plan: SwarmPlan, hooks: RunHooks,
                 node_engines: Optional[Mapping[str, docker.DockerClient]] = None) -> None:
        self.client = client
        self.plan = plan
        self.hooks = hooks
        self.node_engines = dict(node_engines or {})
        run = plan.run
        self.scheduler = DagScheduler(run.upstreams, max_parallelism=run.max_parallelism,
                                      mode=run.mode, retries=run.retries)
        self.failures: List[StepFailure] = []
        self.stop_reason: Optional[str] = None
        self.service_ids: List[str] = []
        self.nodes_seen: Dict[str, Dict[str, str]] = {}  # step -> attempt -> node
        self._active: Dict[str, _Attempt] = {}
        self._node_names: Dict[str, str] = {}
        self._removers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="swarm-remove")
        self._lock = threading.Lock()

    # -- the loop ------------------------------------------------------------
    def run(self) -> DagScheduler:
        """Run every step; return the scheduler with every step final.

        Raises:
            StepFailedError: one or more steps failed for good.
            RunStoppedError: the run was stopped.
            KeyboardInterrupt: the client was interrupted (every service of
                the run removed, nothing left on the nodes, ZenML's record
                says stopped).
        """
        try:
            with terminate_as_interrupt():
                self._loop()
        except KeyboardInterrupt:
            self._abort("the client was interrupted")
            raise
        except BaseException as error:
            self._abort(f"the orchestrator failed: {error}", crashed=True)
            raise
        finally:
            self._cleanup()
        self.hooks.run_ended(self.scheduler)
        return self._result()

    def _loop(self) -> None:
        next_stop_check = 0.0
        while not self.scheduler.is_finished():
            now = time.monotonic()
            if now >= next_stop_check:
                next_stop_check = now + STOP_CHECK_SECONDS
                if self.stop_reason is None and self.hooks.stop_requested():
                    self._request_stop("a stop was requested for this run")
            for step_name in self.scheduler.ready(now):
                self._start(step_name, now)
            for attempt in list(self._active.values()):
                self._poll(attempt, time.monotonic())
            time.sleep(POLL_SECONDS)

    # -- starting ------------------------------------------------------------
    def _start(self, step_name: str, now: float) -> None:
        number = self.scheduler.start(step_name, now)
        log_file = StepLogFile(self.plan.run.log_dir, step_name, number)
        try:
            service = self.client.services.create(**self.plan.service_for(step_name, number))
        except (docker.errors.APIError, requests.exceptions.RequestException) as error:
            log_file.close()
            ended = ContainerExit.refused(f"Swarm refused the step's service: {error}")
            self._record_failure(step_name, number, ended, log_file, TracebackFolder(), now)
            return
        self.service_ids.append(service.id)
        attempt = _Attempt(step_name, number, service, now, log_file)
        attempt.follower = ServiceLogFollower(self.client, service.id,
                                              lambda line, a=attempt: self._on_line(a, line),
                                              on_bytes=log_file.write_bytes)
        self._active[step_name] = attempt
        total = self.scheduler.max_attempts(step_name)
        placement = self.plan.placements[step_name].describe()
        self.hooks.log(f"[{step_name}] attempt {number}/{total}: service {service.name} "
                       f"({placement})")

    def _on_line(self, attempt: _Attempt, line: str) -> None:
        # (the kept log has the bytes already: ServiceLogFollower's on_bytes)
        attempt.last_lines.append(line)
        where = f"{attempt.step_name}@{attempt.node}" if attempt.node else attempt.step_name
        for shown in attempt.folder.feed(line):
            self.hooks.step_line(where, shown)

    # -- watching ------------------------------------------------------------
    def _poll(self, attempt: _Attempt, now: float) -> None:
        if attempt.removal is not None:
            if attempt.removal.done():
                self._on_removed(attempt, now)
            return
        try:
            task = latest_task(self.client, attempt.service.id)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
            self.hooks.log(f"[{attempt.step_name}] could not read its task ({error}); trying again")
            return
        if task is None:
            if now - attempt.created > 10 and not self._service_exists(attempt):
                self._on_vanished(attempt, now)
            return
        status = task.get("Status", {})
        state = status.get("State", "")
        if attempt.node is None and task.get("NodeID"):
            attempt.node = self._node_name(task["NodeID"])
            self.nodes_seen.setdefault(attempt.step_name, {})[str(attempt.attempt)] = attempt.node
            self._write_nodes()
            self.hooks.log(f"[{attempt.step_name}] attempt {attempt.attempt} placed on {attempt.node}")
        if state in ("new", "pending", "assigned", "accepted", "preparing", "ready", "starting"):
            reason = status.get("Err")
            if reason and reason != attempt.waiting_reason and state == "pending":
                attempt.waiting_reason = reason
                self.hooks.log(f"[{attempt.step_name}] waits for a node: {reason}")
            limit = self.plan.pending_timeouts.get(attempt.step_name)
            if limit and attempt.running_since is None and now - attempt.created > limit:
                attempt.timed_out = None
                self._remove(attempt, f"no node could take it within {limit:g} s"
                                      + (f" ({attempt.waiting_reason})" if attempt.waiting_reason else ""))
            return
        if state == "running":
            if attempt.running_since is None:
                attempt.running_since = now
            limit = self.plan.run.steps[attempt.step_name].timeout_seconds
            if limit and now - attempt.running_since > limit:
                attempt.timed_out = limit
                self._remove(attempt, f"timed out after {limit:g} s")
            return
        if state in TERMINAL_TASK_STATES:
            self._on_task_end(attempt, task, now)

    def _on_task_end(self, attempt: _Attempt, task: Dict[str, Any], now: float) -> None:
        status = task.get("Status", {})
        state = status.get("State")
        container = status.get("ContainerStatus") or {}
        code = container.get("ExitCode")
        if attempt.follower is not None:
            attempt.follower.finish()
        attempt.log_file.close()
        if state == "complete":
            ended = ContainerExit(exit_code=0, oom_killed=False, last_lines=tuple(attempt.last_lines))
        elif state == "failed" and code is not None:
            ended = ContainerExit(exit_code=int(code),
                                  oom_killed=self._oom_killed(attempt, container.get("ContainerID")),
                                  last_lines=tuple(attempt.last_lines))
        else:
            where = f" on {attempt.node}" if attempt.node else ""
            ended = ContainerExit(exit_code=-1 if code is None else int(code), oom_killed=False,
                                  last_lines=tuple(attempt.last_lines),
                                  error=f"its task ended {state}{where}: "
                                        f"{status.get('Err') or status.get('Message') or 'no reason given'}")
        self._active.pop(attempt.step_name, None)
        if not self.plan.run.keep_containers:
            self._removers.submit(_remove_quietly, attempt.service)
        self._finish(attempt, ended, now)

    def _finish(self, attempt: _Attempt, ended: ContainerExit, now: float) -> None:
        step_name = attempt.step_name
        judgement = judge_attempt(
            ended, stopping=self.scheduler.state(step_name) == StepState.STOPPING,
            stop_known=self.stop_reason is not None,
            recorded_success=lambda: self.hooks.recorded_success(step_name),
            stop_requested=self.hooks.stop_requested, what="task")
        ended = judgement.ended
        if judgement.note:
            self.hooks.log(f"[{step_name}] {judgement.note}")
        if judgement.verdict == Verdict.SUCCEEDED:
            self.scheduler.succeeded(step_name, now)
            where = f" on {attempt.node}" if attempt.node else ""
            self.hooks.log(f"[{step_name}] completed{where}")
        elif judgement.verdict == Verdict.STOPPED:
            self.scheduler.stopped(step_name, now)
            self.hooks.log(f"[{step_name}] stopped ({ended.describe()})")
        elif judgement.verdict == Verdict.STOPPED_ELSEWHERE:
            # Its service was removed by a stop from another process before this loop saw the
            # request: the task ends "shutdown" (an error) but the step was stopped, not failed.
            self._request_stop("a stop was requested for this run")
            self.scheduler.stopped(step_name, now, self.stop_reason)
            self.hooks.log(f"[{step_name}] stopped ({ended.describe()})")
        else:
            self._record_failure(step_name, attempt.attempt, ended, attempt.log_file,
                                 attempt.folder, now)
            return
        self.hooks.attempt_ended(step_name, attempt.attempt, ended, self.scheduler.state(step_name))

    def _record_failure(self, step_name: str, number: int, ended: ContainerExit,
                        log_file: StepLogFile, folder: TracebackFolder, now: float) -> None:
        path = str(log_file.path) if log_file.path else None
        failure = StepFailure(step_name, number, ended, ended.last_lines, folder.exception, path)
        outcome = self.scheduler.failed(step_name, now, ended.describe())
        if outcome.retry_at is not None:
            self.hooks.log(f"[{step_name}] attempt {number} failed ({ended.describe()}); "
                           f"retrying in {max(0.0, outcome.retry_at - now):.0f}s")
        else:
            self.failures.append(failure)
            self.hooks.log(f"[{step_name}] FAILED: {ended.describe()}")
        for skipped in outcome.skipped:
            self.hooks.log(f"[{skipped}] skipped: {self.scheduler.reason(skipped)}")
        for other in outcome.to_stop:
            if other in self._active:
                self._remove(self._active[other], self.scheduler.reason(other) or "stopping")
        self.hooks.attempt_ended(step_name, number, ended, self.scheduler.state(step_name))

    # -- stopping ------------------------------------------------------------
    def _request_stop(self, reason: str) -> None:
        self.stop_reason = reason
        outcome = self.scheduler.request_stop(reason)
        self.hooks.log(f"Stopping the run: {reason}")
        for step_name in outcome.to_stop:
            if step_name in self._active:
                self._remove(self._active[step_name], reason)

    def _remove(self, attempt: _Attempt, reason: str) -> None:
        """Remove the attempt's service in the background; `_on_removed` settles the step."""
        if attempt.removal is not None:
            return
        attempt.stopping = reason
        self.hooks.log(f"[{attempt.step_name}] removing service {attempt.service.name}: {reason}")
        attempt.removal = self._removers.submit(self._remove_and_wait, attempt)

    def _remove_and_wait(self, attempt: _Attempt) -> None:
        _remove_quietly(attempt.service)
        deadline = time.monotonic() + self.plan.run.grace_seconds + 15
        while time.monotonic() < deadline:
            task = latest_task(self.client, attempt.service.id)
            if task is None or task["Status"]["State"] in TERMINAL_TASK_STATES:
                return
            time.sleep(0.2)

    def _on_removed(self, attempt: _Attempt, now: float) -> None:
        if attempt.follower is not None:
            attempt.follower.finish(quiet_seconds=0.1, timeout=1.0)
        attempt.log_file.close()
        self._active.pop(attempt.step_name, None)
        reason = attempt.stopping or "its service was removed"
        ended = ContainerExit(exit_code=143, oom_killed=False, last_lines=tuple(attempt.last_lines),
                              error=reason)
        state = self.scheduler.state(attempt.step_name)
        if state == StepState.STOPPING:
            self.scheduler.stopped(attempt.step_name, now)
            self.hooks.log(f"[{attempt.step_name}] stopped ({reason})")
            self.hooks.attempt_ended(attempt.step_name, attempt.attempt, ended,
                                     self.scheduler.state(attempt.step_name))
        else:
            self._record_failure(attempt.step_name, attempt.attempt, ended, attempt.log_file,
                                 attempt.folder, now)

    def _on_vanished(self, attempt: _Attempt, now: float) -> None:
        """Someone removed the service (a stop from another process, `docker service rm`)."""
        if self.stop_reason is None and self.hooks.stop_requested():
            self._request_stop("a stop was requested for this run")
        attempt.stopping = attempt.stopping or "its service was removed from outside the run"
        attempt.removal = self._removers.submit(lambda: None)
        self._on_removed(attempt, now)

    def _abort(self, reason: str, crashed: bool = False) -> None:
        """Interrupted or crashed: remove every service we started, record the end."""
        self.stop_reason = self.stop_reason or reason
        try:
            self.scheduler.request_stop(self.stop_reason)
        except Exception:  # noqa: BLE001 - never mask the original error
            pass
        if not crashed:
            self.hooks.run_stopping()
        active = list(self._active.values())
        if active:
            self.hooks.log(f"{'Failed' if crashed else 'Interrupted'}: removing "
                           f"{len(active)} running service(s)")
        for attempt in active:
            _remove_quietly(attempt.service)
            if attempt.follower is not None:
                attempt.follower.finish(quiet_seconds=0.0, timeout=0.5)
            attempt.log_file.close()
        self._active.clear()
        self.hooks.run_aborted(crashed=crashed, reason=reason)

    def _cleanup(self) -> None:
        """Remove every service of the run (unless kept) and wait until nothing is left."""
        self._removers.shutdown(wait=True)
        if self.plan.run.keep_containers:
            return
        run_id = self.plan.run.orchestrator_run_id
        from orchestrator.swarm.cluster import find_services

        try:
            for service in find_services(self.client, orchestrator_run_id=run_id):
                _remove_quietly(service)
            left = wait_until_gone(self.client, self.service_ids, self.node_engines,
                                   label_filters(run_id), timeout=CLEANUP_SECONDS)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
            left = [f"(the swarm did not answer: {error})"]
        if left:
            self.hooks.log("Not everything of the run was removed from the swarm: " + "; ".join(left))

    # -- helpers ---------------------------------------------------------------
    def _service_exists(self, attempt: _Attempt) -> bool:
        try:
            self.client.api.inspect_service(attempt.service.id)
            return True
        except docker.errors.NotFound:
            return False

    def _node_name(self, node_id: str) -> str:
        if node_id not in self._node_names:
            try:
                self._node_names.update(node_names(self.client))
            except (docker.errors.DockerException, requests.exceptions.RequestException):
                pass
        return self._node_names.get(node_id, node_id[:12])

    def _oom_killed(self, attempt: _Attempt, container_id: Optional[str]) -> bool:
        """Whether the node's engine says the kernel killed it for memory (if reachable)."""
        engine = self.node_engines.get(attempt.node or "")
        if engine is None or not container_id:
            return False
        try:
            return bool(engine.api.inspect_container(container_id)["State"].get("OOMKilled"))
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            return False

    def _write_nodes(self) -> None:
        """Record which node ran each attempt, beside the step logs (for the status views)."""
        folder = self.plan.run.log_dir
        if folder is None:
            return
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / NODES_FILE).write_text(json.dumps(self.nodes_seen, indent=1))
        except OSError:
            pass

    def _result(self) -> DagScheduler:
        if self.failures:
            skipped = [s for s in self.scheduler.steps if self.scheduler.state(s) == StepState.SKIPPED]
            message = "\n".join(f.describe() for f in self.failures)
            if skipped:
                message += f"\nSkipped because of the failure: {', '.join(skipped)}"
            raise StepFailedError(message, self.failures)
        if self.stop_reason is not None:
            counts = self.scheduler.counts()
            raise RunStoppedError(
                f"The run was stopped ({self.stop_reason}): "
                f"{counts.get(StepState.COMPLETED, 0)} step(s) completed, "
                f"{counts.get(StepState.STOPPED, 0)} stopped.")
        return self.scheduler


def _remove_quietly(service: Any) -> None:
    try:
        service.remove()
    except (docker.errors.NotFound, requests.exceptions.RequestException):
        pass
    except docker.errors.APIError as error:
        if error.status_code != 404:
            raise


def read_nodes(log_dir: Any) -> Dict[str, Dict[str, str]]:
    """step -> attempt -> node host name, as a run recorded it (empty when unknown)."""
    try:
        return json.loads((log_dir / NODES_FILE).read_text())
    except (OSError, ValueError, TypeError):
        return {}
