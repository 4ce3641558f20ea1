"""Following one pipeline run live: Docker's events, ZenML polls and logs feed the reducer.

* `RunWatcher`: follows one run (Docker events in a background thread, ZenML
  polled every `poll_seconds`, container logs for the last log line; for a
  `my_swarm` run, its tasks polled from the swarm's manager instead, see
  `orchestrator.status.swarm_source`), applies every input to the pure
  reducer of `orchestrator.status`, tells listeners, and stops, releasing
  its threads and connections, once the run is over.
* `read_status` reads a run's status once; `watcher_for` starts a watcher for
  a named run or the next one.

Docker's shared event stream is `orchestrator.status.docker_events`'s and
finding the run a process starts next is `orchestrator.status.next_run`'s;
with those, this is the part of the live status with threads and Docker
connections.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from orchestrator.running.labels import attempt_of, find_containers, step_of
from orchestrator.running.orphans import settle_if_orphaned
from orchestrator.running.step_entrypoint import DONE_LINE_PREFIX
from orchestrator.running.step_logs import LineSplitter
from orchestrator.status.docker_events import DockerEvents, close_quietly
from orchestrator.status.events import (
    ContainerEvent,
    Event,
    LogLine,
    ResourceSample,
    RunEnded,
    WatcherProblem,
    events_from_container,
)
from orchestrator.status.model import (
    CREATED,
    EXITED,
    RUNNING,
    ZENML_FINAL_RUN_STATUSES,
    RunStatus,
    run_is_over,
)
from orchestrator.status.next_run import NextRun
from orchestrator.status.records import read_zenml_facts, status_for_run
from orchestrator.status.reducer import apply
from orchestrator.status.resources import StatsFollower
from orchestrator.zenml_records import resolve_run

logger = logging.getLogger(__name__)

# The most a watcher waits for its threads to end once it stops (seconds).
THREADS_END_SECONDS = 30.0
# How often a my_swarm run's tasks are read from the manager: the runner removes
# each service within a second of its task's end, so a slower poll misses exits.
SWARM_POLL_SECONDS = 0.5
# Problems that stay shown while ZenML is read fine: a source that is not there at all.
_LASTING_PROBLEMS = ("Docker is not available", "The swarm's manager is not available")


# --------------------------------------------------------------------------
# The watcher: follows one run
# --------------------------------------------------------------------------

Listener = Callable[[RunStatus], None]


class RunWatcher:
    """Follows one pipeline run and keeps its `RunStatus` current.

    Three kinds of background threads feed the reducer: one reads Docker's
    event stream (filtered by the run's label, so a change shows within
    milliseconds), one polls ZenML and reconciles with the engine every
    `poll_seconds`, and per running container one follows its log for the
    last line and one its CPU and memory use (Docker's stats, about once a
    second). Listeners are called after every change, and on every poll
    while the run goes on (so elapsed times can tick), from those threads.

    A run whose stack runs on `my_swarm` has no container on this machine's
    engine: instead of Docker's events, one thread reads the run's tasks from
    the swarm's manager every `SWARM_POLL_SECONDS`, and one per running task
    follows its output through the manager (`orchestrator.status.swarm_source`).

    Once the run is over (see `run_is_over`) or `finish()`/`stop()` is
    called, every thread ends and every connection is closed. Problems
    reading a source (no Docker engine, a busy store) are shown in
    `status.error`; they never raise in the threads.

    Typical use::

        watcher = RunWatcher(resolve_run("latest")).start()
        watcher.wait()
        print(render_text(watcher.status))
    """

    def __init__(self, run: Any, *, poll_seconds: float = 1.0, docker_client: Any = None,
                 events: Optional[DockerEvents] = None, follow_logs: bool = True,
                 sample_resources: bool = True, on_change: Optional[Listener] = None,
                 record: Optional[List[Dict[str, Any]]] = None) -> None:
        """Args:
            run: a ZenML run (response model) or an initial `RunStatus`.
            poll_seconds: how often to read ZenML and reconcile with the engine.
            docker_client: a client to use (kept open); by default the watcher
                opens its own and closes it at the end.
            events: an event stream already open (from `NextRun.take_events`);
                the watcher replays its kept events of this run and closes it
                at the end. By default the watcher opens its own.
            follow_logs: follow running containers' logs for the last line.
            sample_resources: follow running containers' CPU and memory use.
            on_change: a first listener.
            record: if given, every input (raw Docker event, ZenML reading,
                log line) is appended to it, for replay in tests.
        """
        self._status = run if isinstance(run, RunStatus) else status_for_run(run)
        self._run = None if isinstance(run, RunStatus) else run
        self.run_id = self._status.run_id
        self.poll_seconds = poll_seconds
        self.follow_logs = follow_logs
        self.sample_resources = sample_resources
        self._stats: Dict[str, StatsFollower] = {}
        self._record = record
        self._client = docker_client
        self._owns_client = docker_client is None
        self._lock = threading.RLock()
        self._listeners: List[Listener] = [on_change] if on_change else []
        self._stop = threading.Event()
        self.done = threading.Event()
        self._threads: List[threading.Thread] = []
        self._events = events
        self._log_streams: Dict[str, Any] = {}
        self._last_change = time.monotonic()
        self._started = False
        self._finalized = False
        self._swarm: Any = None  # a SwarmSource, for a my_swarm run
        self._swarm_lock = threading.Lock()
        self._swarm_problem: Optional[str] = None
        self._swarm_looping = False  # the swarm loop reads the tasks (else `_sync` does)

    # -- public ------------------------------------------------------------
    @property
    def status(self) -> RunStatus:
        with self._lock:
            return self._status

    def subscribe(self, listener: Listener) -> None:
        """Call `listener(status)` after every change (from a watcher thread)."""
        with self._lock:
            self._listeners.append(listener)

    def start(self) -> "RunWatcher":
        """Attach to the engine and ZenML and follow the run in the background."""
        if self._started:
            return self
        self._started = True
        self._attach_sources(live=True)
        self._sync()  # containers that exist already, ZenML's record so far
        self._spawn(self._poll_loop, "poll")
        if self._swarm is not None:
            self._swarm_looping = True
            self._spawn(self._swarm_loop, "swarm")
        return self

    def _attach_sources(self, live: bool) -> None:
        """Connect to where the run's steps run: the swarm's manager for a my_swarm
        run, else the machine's engine (with its event stream when `live`)."""
        from orchestrator.status.swarm_source import swarm_manager_of

        manager = swarm_manager_of(self._run) if self._run is not None else None
        if manager is None:
            if live and self._events is not None:  # taken over: its kept events show at once
                self._events.subscribe(self._on_docker_event, run_id=self.run_id)
            self._connect_docker(events=live)
            return
        if self._events is not None:  # the machine's engine has none of this run's containers
            self._events.close()
            self._events = None
        self._connect_swarm(manager, follow_logs=live and self.follow_logs)

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until the run is over and every thread has ended; False on timeout."""
        if not self.done.wait(timeout):
            return False
        self._join_threads()
        return True

    def finish(self, settle_seconds: float = 2.0) -> RunStatus:
        """The run is known to be over (its pipeline call returned): final reading, stop.

        Docker's last events (exits) may still be on their way: they get up
        to `settle_seconds` to arrive before the final reading.
        """
        deadline = time.monotonic() + settle_seconds
        while (self._events is not None and time.monotonic() < deadline
               and any(step.container_alive for step in self.status.steps)):
            time.sleep(0.05)
        self._sync(final=True)
        self._end()
        return self.status

    def stop(self) -> None:
        """Stop following now, wherever the run is; release threads and connections."""
        self._end(mark_ended=False)

    # -- feeding the reducer --------------------------------------------------
    def feed(self, event: Event) -> RunStatus:
        """Apply one event and tell listeners if something changed."""
        with self._lock:
            if self._finalized and not isinstance(event, RunEnded):
                return self._status
            old = self._status
            new = apply(old, event)
            self._status = new
            if new != old:
                self._last_change = time.monotonic()
        if new != old:
            self._notify(new)
        return new

    def _feed_together(self, events: Sequence[Event]) -> None:
        """Apply one reading's events as one change (listeners see no half-read task)."""
        with self._lock:
            if self._finalized:
                return
            old = self._status
            for event in events:
                before = self._status
                self._status = apply(before, event)
                if self._status is not before:
                    kind = ("container_event" if isinstance(event, ContainerEvent)
                            else "attempt_placed")
                    self._remember(kind, vars(event))
            new = self._status
            if new != old:
                self._last_change = time.monotonic()
        if new != old:
            self._notify(new)

    def _notify(self, status: RunStatus) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(status)
            except Exception:
                logger.exception("a run status listener failed")

    def _remember(self, kind: str, data: Any) -> None:
        if self._record is not None:
            self._record.append({kind: data})

    def _feed_recorded(self, kind: str, data: Any, event: Event) -> None:
        """Feed an input we made ourselves; record it only if it changed something."""
        before = self.status
        if self.feed(event) is not before:
            self._remember(kind, data)

    # -- Docker ------------------------------------------------------------
    def _connect_docker(self, events: bool = True) -> None:
        try:
            if self._client is None:
                from orchestrator.machine.engine import connect

                self._client = connect(timeout=5)
            else:
                self._client.ping()
            if events and self._events is None:
                self._events = DockerEvents(self._client, self.run_id)
                self._events.subscribe(self._on_docker_event, run_id=self.run_id)
        except Exception as error:  # noqa: BLE001 - follow ZenML alone then
            self.feed(WatcherProblem(
                f"Docker is not available ({error}); showing ZenML's record only.",
                time.time()))
            self._client = None

    def _on_docker_event(self, raw: Dict[str, Any]) -> None:
        """One raw event of this run, from the event thread."""
        if self._stop.is_set():
            return
        self._remember("docker", raw)
        event = ContainerEvent.from_docker(raw)
        if event is None:
            return
        self.feed(event)
        if event.action == "start":
            self._follow_container(event.container_id, event.step, event.attempt)

    def _reconcile_containers(self) -> None:
        """Read the run's containers: catches anything the event stream missed."""
        if self._client is None:
            return
        listed_at = time.time()
        containers = find_containers(self._client, pipeline_run_id=self.run_id)
        seen = set()
        for container in containers:
            seen.add(container.id[:12])
            for event in events_from_container(container.attrs):
                self._feed_recorded("container_event", vars(event), event)
            if container.status == "running":
                labels = container.labels
                self._follow_container(container.id[:12], step_of(labels) or "",
                                       attempt_of(labels))
        for step in self.status.steps:
            if (step.container_id and step.container_id not in seen
                    and step.container_state in (CREATED, RUNNING, EXITED)
                    and (step.created_at or 0) < listed_at - 1.0):
                self.feed(ContainerEvent("destroy", step.name, step.attempt,
                                         step.container_id, listed_at, run_id=self.run_id))

    def _follow_container(self, container_id: str, step: str, attempt: int) -> None:
        """A container started: follow its log and its resource use, as asked."""
        if self.follow_logs:
            self._follow_log(container_id, step, attempt)
        if self.sample_resources:
            self._follow_stats(container_id, step, attempt)

    def _follow_stats(self, container_id: str, step: str, attempt: int) -> None:
        with self._lock:
            if container_id in self._stats or self._stop.is_set() or self._client is None:
                return
            follower = StatsFollower(self._client, container_id, step, attempt,
                                     self._on_sample)
            self._stats[container_id] = follower
            self._threads.append(follower.thread)
        follower.start()

    def _on_sample(self, sample: ResourceSample) -> None:
        if not self._stop.is_set():
            self.feed(sample)

    def _follow_log(self, container_id: str, step: str, attempt: int) -> None:
        with self._lock:
            if container_id in self._log_streams or self._stop.is_set() or self._client is None:
                return
            self._log_streams[container_id] = None
        self._spawn(lambda: self._log_loop(container_id, step, attempt), f"log-{step}")

    def _log_loop(self, container_id: str, step: str, attempt: int) -> None:
        try:
            stream = self._client.api.logs(container_id, stream=True, follow=True, tail=5)
        except Exception:  # noqa: BLE001 - gone already
            return
        with self._lock:
            self._log_streams[container_id] = stream
        if self._stop.is_set():
            close_quietly(stream)
            return
        lines = LineSplitter()
        try:
            for chunk in stream:
                text = _last_text_line(lines.feed(chunk))
                if text:
                    event = LogLine(step, attempt, text, time.time())
                    self._feed_recorded("log", vars(event), event)
        except Exception:  # noqa: BLE001 - the container was removed, or we closed it
            pass
        text = _last_text_line(lines.rest())
        if text and not self._stop.is_set():
            self.feed(LogLine(step, attempt, text, time.time()))

    # -- the swarm (my_swarm runs) --------------------------------------------------
    def _connect_swarm(self, manager: str, follow_logs: bool) -> None:
        from orchestrator.status.swarm_source import connect_swarm_source, placements_recorded

        try:
            self._swarm = connect_swarm_source(
                manager, self.run_id, self._on_swarm_line if follow_logs else None)
        except Exception as error:  # noqa: BLE001 - follow ZenML alone then
            self.feed(WatcherProblem(
                f"The swarm's manager is not available ({error}); showing ZenML's record "
                "only.", time.time()))
        try:  # names the nodes of attempts whose services are gone already
            for placed in placements_recorded(self.run_id):
                self._feed_recorded("attempt_placed", vars(placed), placed)
        except Exception as error:  # noqa: BLE001 - no record on this machine
            logger.debug("no node record of run %s: %s", self.run_id, error)

    def _poll_swarm(self, final: bool = False) -> None:
        """Read the run's tasks from the manager once; `final`: what is gone is gone."""
        from orchestrator.status.swarm_source import GONE_SECONDS

        with self._swarm_lock:
            if self._swarm is None:
                return
            try:
                events = self._swarm.poll(gone_seconds=0.0 if final else GONE_SECONDS)
            except Exception as error:  # noqa: BLE001 - shown, and tried again
                self._swarm_problem = f"could not read the swarm's tasks: {error}"
                return
            self._swarm_problem = None
        self._feed_together(events)

    def _swarm_loop(self) -> None:
        while not self._stop.wait(SWARM_POLL_SECONDS):
            self._poll_swarm()

    def _on_swarm_line(self, event: LogLine) -> None:
        if not self._stop.is_set():
            self._feed_recorded("log", vars(event), event)

    # -- ZenML and the poll loop -----------------------------------------------
    def _sync(self, final: bool = False) -> None:
        """Read ZenML and the engine (or the swarm) once."""
        problems = []
        if self.status.zenml_status not in ZENML_FINAL_RUN_STATUSES:
            try:  # a run whose orchestration process died is ended now, not followed for ever
                settle_if_orphaned(self.run_id)
            except Exception as error:  # noqa: BLE001
                problems.append(f"could not end the orphaned run: {error}")
        if self._swarm is not None:
            if final or not self._swarm_looping:  # else the swarm loop reads it
                self._poll_swarm(final=final)
            if self._swarm_problem:
                problems.append(self._swarm_problem)
        else:
            try:
                self._reconcile_containers()
            except Exception as error:  # noqa: BLE001
                problems.append(f"could not list containers: {error}")
        if self._events is not None and self._events.closed and not self._stop.is_set():
            problems.append(f"Docker's event stream ended ({self._events.problem}); "
                            f"updates come every {self.poll_seconds:g} s")
        try:
            facts = read_zenml_facts(self.run_id)
        except Exception as error:  # noqa: BLE001
            problems.append(f"could not read ZenML: {error}")
        else:
            self._feed_recorded("zenml", facts.to_json(), facts)
        current = self.status.error
        if problems:
            self.feed(WatcherProblem("; ".join(problems), time.time()))
        elif current and not current.startswith(_LASTING_PROBLEMS):
            self.feed(WatcherProblem(None, time.time()))

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self._sync()
            status = self.status
            quiet = time.monotonic() - self._last_change
            if run_is_over(status, quiet_for=quiet):
                self._end()
                return
            self._notify(status)  # lets views tick elapsed times

    # -- the end -------------------------------------------------------------
    def _end(self, mark_ended: bool = True) -> None:
        with self._lock:
            if self._finalized:
                return
            if mark_ended:
                old = self._status
                self._status = apply(old, RunEnded(time.time()))
                changed = self._status != old
            else:
                changed = False
            self._finalized = True
            self._stop.set()
            streams = list(self._log_streams.values())
            followers = list(self._stats.values())
        for follower in followers:
            follower.close()
        if self._events is not None:
            self._events.close()
        if self._swarm is not None:
            with self._swarm_lock:
                self._swarm.close()
        for stream in streams:
            close_quietly(stream)
        self._join_threads()
        if self._owns_client and self._client is not None:
            try:
                self._client.close()
            except Exception:  # noqa: BLE001
                pass
        if changed or mark_ended:
            self._notify(self.status)
        self.done.set()

    def _join_threads(self) -> None:
        """Wait for every thread but this one, up to THREADS_END_SECONDS in all.

        A thread may be in the middle of reading ZenML (slow on a busy
        store) or waiting for Docker's next stats sample (a second).
        """
        deadline = time.monotonic() + THREADS_END_SECONDS
        for thread in list(self._threads):
            if thread is not threading.current_thread():
                thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=f"run-watcher-{name}", daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    @property
    def alive_threads(self) -> List[str]:
        """Names of the watcher's threads still running (empty once it ended)."""
        names = [t.name for t in self._threads if t.is_alive()]
        if self._events is not None and not self._events.closed:
            names.append("docker-events")
        if self._swarm is not None:
            names += self._swarm.alive_threads
        return names


def _last_text_line(lines: Sequence[str]) -> str:
    for line in reversed(lines):
        if line.strip() and DONE_LINE_PREFIX not in line:  # the runner's, not the step's
            return line.strip()
    return ""


# --------------------------------------------------------------------------
# One reading, or a started watcher
# --------------------------------------------------------------------------


def read_status(run: Union[str, Any] = "latest",
                record: Optional[List[Dict[str, Any]]] = None) -> RunStatus:
    """A run's status now, read once from the engine and ZenML (no threads left).

    Args:
        run: "latest", a run's id or name, or a ZenML run (response model).
    """
    found = resolve_run(run) if isinstance(run, str) else run
    watcher = RunWatcher(found, follow_logs=False, sample_resources=False, record=record)
    watcher._attach_sources(live=False)
    watcher._sync()
    status = watcher.status
    watcher.stop()
    if run_is_over(status):
        status = apply(status, RunEnded(time.time()))
    return status


def watcher_for(run: Optional[str], *, wait_timeout: Optional[float] = None,
                poll_seconds: float = 1.0, **kwargs: Any) -> RunWatcher:
    """A started watcher for `run` ("latest", id, name) or, if None, the next new run.

    Raises:
        LookupError: the run does not exist, or no new run started in time.
    """
    if run is None:
        finder = NextRun()
        try:
            found = finder.wait(timeout=wait_timeout, poll_seconds=0.25)
            if found is None:
                raise LookupError(f"No new pipeline run started within {wait_timeout:.0f} s.")
            return RunWatcher(found, poll_seconds=poll_seconds, events=finder.take_events(),
                              **kwargs).start()
        finally:
            finder.close()
    return RunWatcher(resolve_run(run), poll_seconds=poll_seconds, **kwargs).start()
