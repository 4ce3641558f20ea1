"""Finding the pipeline run a process starts next, and handing its event stream on.

`NextRun` remembers the runs ZenML's store holds now; the first newer one is
the run looked for. ZenML creates the run just before its first container,
so besides polling the store it listens to Docker's create events (our
run-id label names the run at once), and the run's watcher takes over that
stream without losing an event. With `started_here`, only a run this very
process orchestrates, supervises or submitted counts: its containers' client
labels or its orchestration record name the process. `live_panel()` and
`python -m orchestrator.status --next` find their run here; following it is
`orchestrator.status.watcher`'s.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from typing import Any, Dict, Optional

from orchestrator.running.labels import CLIENT_HOST_LABEL, CLIENT_PID_LABEL
from orchestrator.running.orchestration_record import read_record
from orchestrator.running.step_logs import run_log_dir
from orchestrator.status.docker_events import DockerEvents, run_of_event
from orchestrator.zenml_records import get_run, known_run_ids, runs_not_in

logger = logging.getLogger(__name__)


class NextRun:
    """Finds the first pipeline run created after this object was made.

    It remembers which runs exist now; any newer run in ZenML's store is the
    one this process (or anyone using the same store) started next. ZenML
    creates the run just before the run's first container, so besides asking
    ZenML every `poll_seconds`, it listens to Docker for our containers:
    their run-id label names the run at once (runs of other ZenML stores on
    the same engine are told apart by asking our store). The run's watcher
    then takes over that event stream (`take_events`), missing nothing.
    Call `close()` when done; `find()` keeps working after it.

    With `started_here`, only a run this process orchestrates counts (a
    `with live_panel(): pipeline()` block): another process on the same store
    may start a run first. Its containers' client labels, or its
    orchestration record (written before planning), name the process; a new
    run that names none for UNDECIDED_SECONDS (another flavor) is taken too.
    """

    UNDECIDED_SECONDS = 30.0

    def __init__(self, listen_to_docker: bool = True, *, started_here: bool = False) -> None:
        self._known = known_run_ids()
        self._started_here = started_here
        self._first_seen: Dict[Any, float] = {}  # undecided run id -> when first seen
        self._candidates: "queue.Queue[str]" = queue.Queue()
        self._not_ours: set = set()
        self.events: Optional[DockerEvents] = None
        if listen_to_docker:
            try:
                from orchestrator.machine.engine import connect

                self.events = DockerEvents(connect(timeout=5), close_client=True)
                self.events.subscribe(self._on_event)
            except Exception as error:  # noqa: BLE001 - polling ZenML alone still works
                logger.debug("no Docker events while looking for a run: %s", error)

    def _on_event(self, raw: Dict[str, Any]) -> None:
        run_id = run_of_event(raw)
        if not run_id or raw.get("Action") != "create":
            return
        if self._started_here:
            attributes = (raw.get("Actor") or {}).get("Attributes") or {}
            if not _names_this_process(attributes.get(CLIENT_HOST_LABEL),
                                       attributes.get(CLIENT_PID_LABEL)):
                # A detached run's containers name its own process; its
                # record names the submitter. `find` asks the record.
                if _orchestrated_here(run_id) is False:
                    self._not_ours.add(run_id)
                return
        self._candidates.put(run_id)

    def take_events(self) -> Optional[DockerEvents]:
        """The Docker event stream, now the caller's to close."""
        events, self.events = self.events, None
        return events

    def close(self) -> None:
        """Stop listening to Docker (unless the stream was taken) and release it."""
        events, self.events = self.events, None
        if events is not None:
            events.close()

    def _from_docker(self) -> Optional[Any]:
        from uuid import UUID

        while True:
            try:
                run_id = self._candidates.get_nowait()
            except queue.Empty:
                return None
            if run_id in self._not_ours:
                continue
            try:
                run = get_run(UUID(run_id), hydrate=True)
            except (KeyError, ValueError):
                self._not_ours.add(run_id)  # another store's run on the same engine
                continue
            if run.id not in self._known:
                return run
            self._not_ours.add(run_id)

    def find(self) -> Optional[Any]:
        """The oldest run not known at creation (started here, if asked), or None yet."""
        run = self._from_docker()
        if run is not None:
            return run
        newer = runs_not_in(self._known)
        if not self._started_here:
            return get_run(newer[-1].id, hydrate=True) if newer else None
        now = time.monotonic()
        for candidate in reversed(newer):  # oldest first
            if str(candidate.id) in self._not_ours:
                continue
            ours = _orchestrated_here(candidate.id)
            if ours is False:
                self._not_ours.add(str(candidate.id))
                continue
            first_seen = self._first_seen.setdefault(candidate.id, now)
            if ours or now - first_seen >= self.UNDECIDED_SECONDS:
                return get_run(candidate.id, hydrate=True)
        return None

    def wait(self, timeout: Optional[float] = None, poll_seconds: float = 0.5,
             cancel: Optional[threading.Event] = None) -> Optional[Any]:
        """Block until a new run exists; None on timeout or cancel."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                run = self.find()
            except Exception as error:  # noqa: BLE001 - a busy store: try again
                logger.debug("looking for a new run failed: %s", error)
                run = None
            if run is not None:
                return run
            if cancel is not None and cancel.is_set():
                return None
            left = poll_seconds if deadline is None else min(
                poll_seconds, deadline - time.monotonic())
            if left <= 0:
                return None
            try:  # wakes up at once when Docker names a candidate
                candidate = self._candidates.get(timeout=left)
            except queue.Empty:
                continue
            self._candidates.put(candidate)


def _names_this_process(host: Optional[str], pid: Any) -> bool:
    """True when `pid` on `host` is this process."""
    return host == socket.gethostname() and str(pid) == str(os.getpid())


def _orchestrated_here(run_id: Any) -> Optional[bool]:
    """Whether this process orchestrates the run, supervises its detached
    process, or submitted it (`synchronous=False`), from its orchestration
    record; None while it has none.

    Only this very process counts, never its children: a script a notebook
    starts with `!python ...` is another client of the store.
    """
    record = read_record(run_log_dir(str(run_id)))
    if record is None:
        return None
    return any(_names_this_process(record.host, pid)
               for pid in (record.pid, record.supervisor_pid, record.submitted_by))

