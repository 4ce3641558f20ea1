"""Docker's event stream of our containers, read once and shared by its subscribers.

`DockerEvents` owns one connection's event stream (filtered by our labels,
optionally by one pipeline run), the one background thread that reads it,
and a short memory of recent events, so that whoever learns a run's id only
from its first container (`orchestrator.status.next_run.NextRun`) can hand
the stream to that run's watcher (`orchestrator.status.watcher.RunWatcher`)
without losing an event. A stream the engine dropped is opened again, with
the events since the last one replayed and each passed on once.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from orchestrator.running.containers import ENGINE_RETRY_SECONDS
from orchestrator.running.labels import container_events, pipeline_run_of

logger = logging.getLogger(__name__)


class DockerEvents:
    """One Docker event stream of our containers, read by one background thread.

    Subscribers get the events of one run (or of all runs). Events are also
    kept for a while, and a late subscriber first gets the kept events of its
    run: whoever learns the run id only from its first container (`NextRun`)
    can hand the stream to the run's watcher without losing a single event.
    """

    def __init__(self, client: Any, run_id: Optional[str] = None, *, keep: int = 2000,
                 close_client: bool = False) -> None:
        self._client = client
        self._close_client = close_client
        self._run_id = run_id
        self._closing = threading.Event()
        self._stream = container_events(client, run_id)
        self._kept: "collections.deque" = collections.deque(maxlen=keep)
        self._subscribers: List[Tuple[Optional[str], Callable[[Dict[str, Any]], None]]] = []
        self._lock = threading.Lock()
        self.problem: Optional[str] = None
        self._thread = threading.Thread(target=self._read, name="docker-events", daemon=True)
        self._thread.start()

    def subscribe(self, callback: Callable[[Dict[str, Any]], None],
                  run_id: Optional[str] = None) -> None:
        """Call `callback(raw_event)` for every event of `run_id` (None: all), kept ones first."""
        with self._lock:
            for raw in self._kept:
                if run_id is None or run_of_event(raw) == run_id:
                    callback(raw)
            self._subscribers.append((run_id, callback))

    def _read(self) -> None:
        """Read the stream; one that breaks (the engine's socket dropped) is opened
        again with the events since the last one replayed, each passed on once,
        until the engine has not answered for ENGINE_RETRY_SECONDS."""
        last_time: Optional[int] = None
        seen: "collections.deque" = collections.deque(maxlen=256)  # events passed on lately
        deadline: Optional[float] = None
        while not self._closing.is_set():
            try:
                for raw in self._stream:
                    deadline = None
                    key = (raw.get("timeNano"), raw.get("id"), raw.get("Action"))
                    if key in seen:
                        continue  # replayed after a reconnection
                    seen.append(key)
                    last_time = raw.get("time", last_time)
                    self._pass_on(raw)
            except Exception as error:  # noqa: BLE001 - closed, or the engine went away
                self.problem = str(error)
            if self._closing.is_set():
                return
            now = time.monotonic()
            deadline = deadline or now + ENGINE_RETRY_SECONDS
            if now >= deadline or self._closing.wait(1.0):
                return
            try:
                self._stream = container_events(self._client, self._run_id,
                                                since=None if last_time is None else last_time - 1)
                self.problem = None
            except Exception as error:  # noqa: BLE001 - not back yet: try again
                self.problem = str(error)
                self._stream = iter(())

    def _pass_on(self, raw: Dict[str, Any]) -> None:
        with self._lock:
            self._kept.append(raw)
            for run_id, callback in self._subscribers:
                if run_id is None or run_of_event(raw) == run_id:
                    try:
                        callback(raw)
                    except Exception:
                        logger.exception("a Docker event subscriber failed")

    @property
    def closed(self) -> bool:
        return not self._thread.is_alive()

    def close(self) -> None:
        """End the stream and its thread (and the client, if it was handed to us)."""
        self._closing.set()
        close_quietly(self._stream)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)
        if self._close_client:
            try:
                self._client.close()
            except Exception:  # noqa: BLE001
                pass


def run_of_event(raw: Mapping[str, Any]) -> Optional[str]:
    """The pipeline run id named by a raw Docker event's container labels, or None.

    Args:
        raw: one event as Docker's API returns it (a dict with "Actor").
    """
    return pipeline_run_of((raw.get("Actor") or {}).get("Attributes") or {})


def close_quietly(stream: Any) -> None:
    """Close a Docker stream (events, logs) that may already be closed or gone; None is fine."""
    if stream is None:
        return
    try:
        stream.close()
    except Exception:  # noqa: BLE001
        pass
