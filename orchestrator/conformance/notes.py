"""The probe steps' notes, read while the battery's runs go on: the kit's eyes and hands.

Each probe step writes small JSON notes into its run's folder (`probe`): that
it started, with its container's id, that it ended. `NoteWatcher` reads them
every 0.2 s in one thread and acts on them at once, while the containers still
exist: it inspects each step's container (labels, limits), kills the retry
step's first container, releases the FAIL_FAST run's lingering step, and
releases a probe waiting for a sibling that an orchestrator running one step
at a time has not even created. The battery (`battery`) starts the runs; the
judges (`properties`) read the facts gathered here.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence

from orchestrator.conformance.properties import RunFacts

# A probe that waits for its sibling is released when, this long after it
# began, its sibling has no container at all (not even created): then the
# orchestrator starts steps one at a time (a parallel orchestrator creates the
# sibling's container long before its step code runs).
ALONE_AFTER_SECONDS = 20.0
# The two independent steps of the shape run, each waiting for the other.
SIBLINGS = {"branch_a": "branch_b", "branch_b": "branch_a"}
# In FAIL_FAST, `slow` lingers after the failure until the kit releases it:
# RELEASE_SECONDS after fail_soon's container has exited (what an orchestrator
# reacts to; inside the container, ZenML's failure handling took tens of
# seconds at load 30).
RELEASE_SECONDS = 30.0


class NoteWatcher:
    """Reads the probe steps' notes while the runs go on (every 0.2 s, one thread).

    On a note naming a container it asks the engine about that container at
    once, while it still exists (its labels and limits), and it kills the
    container of the retry step's first attempt (SIGKILL, as the kernel's
    out-of-memory killer or ``docker kill`` would).
    """

    def __init__(self, docker_client: Any) -> None:
        self.docker = docker_client
        self._folders: Dict[str, tuple] = {}  # run key -> (folder, RunFacts)
        self._exited: Dict[Path, float] = {}  # run folder -> when fail_soon's container ended
        # (run folder, probe) whose sibling was seen with a container: never released, not
        # asked again (a Docker inspect and list every 0.2 s while it waits would be waste)
        self._sibling_seen: set = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="conformance-notes", daemon=True)
        self._thread.start()

    def watch(self, key: str, folder: Path, facts: RunFacts) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o777)
        with self._lock:
            self._folders[key] = (folder, facts)

    def sync(self) -> None:
        """Read every note now (call after a run, before judging it)."""
        with self._lock:
            for folder, facts in self._folders.values():
                self._read(folder, facts)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sync()

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            try:
                self.sync()
            except Exception:  # noqa: BLE001 - a half-removed folder; next round
                pass

    def _read(self, folder: Path, facts: RunFacts) -> None:
        self._maybe_release(folder, facts)
        self._maybe_release_alone(folder, facts)
        for path in folder.glob("*.json"):
            name = path.stem
            if name in facts.notes:
                continue
            try:
                note = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # being replaced; next round
            facts.notes[name] = note
            cid = note.get("container_id")
            if cid and cid not in facts.containers:
                facts.containers[cid] = self._inspect(cid)
            if name == "victim.attempt1" and cid and "victim.killed" not in facts.notes:
                facts.notes["victim.killed"] = {"time": time.time(), "ok": self._kill(cid)}

    def _maybe_release(self, folder: Path, facts: RunFacts) -> None:
        """Release `slow` RELEASE_SECONDS after fail_soon's container ended (see `probe.slow`)."""
        if "fail_soon.failing" not in facts.notes or "slow.release" in facts.notes:
            return
        if folder not in self._exited:
            cid = facts.notes.get("fail_soon.started", {}).get("container_id")
            try:
                running = bool(cid) and self.docker.api.inspect_container(cid)["State"]["Running"]
            except Exception:  # noqa: BLE001 - removed already: it ended
                running = False
            if running:
                return
            self._exited[folder] = time.time()
        if time.time() - self._exited[folder] >= RELEASE_SECONDS:
            note = {"time": time.time()}
            try:
                (folder / "slow.release.json").write_text(json.dumps(note))
            except OSError:  # the run's folder is gone: nothing to release
                pass
            facts.notes["slow.release"] = note

    def _maybe_release_alone(self, folder: Path, facts: RunFacts) -> None:
        """Release a probe that waits for a sibling with no container (see `probe.probe`)."""
        for name, sibling in SIBLINGS.items():
            started = facts.notes.get(f"{name}.started")
            if started is None or f"{name}.alone" in facts.notes \
                    or f"{name}.ended" in facts.notes or f"{sibling}.started" in facts.notes \
                    or time.time() - started.get("time", time.time()) < ALONE_AFTER_SECONDS:
                continue
            if (folder, name) in self._sibling_seen:
                continue
            if self._has_container(started.get("container_id"), sibling) is not False:
                self._sibling_seen.add((folder, name))  # it has one, or we cannot tell:
                continue  # the probe waits in full
            note = {"time": time.time()}
            try:
                (folder / f"{name}.alone.json").write_text(json.dumps(note))
            except OSError:  # the run's folder is gone
                pass
            facts.notes[f"{name}.alone"] = note

    def _has_container(self, cid: Optional[str], step: str) -> Optional[bool]:
        """Whether step `step` of the run of container `cid` has a container not yet exited.

        Step containers of any ZenML orchestrator carry ZenML's entrypoint
        arguments (``--snapshot_id <id> --step_name <name>``); None when that
        cannot be read (no container, other arguments).
        """
        if not cid:
            return None
        try:
            attrs = self.docker.api.inspect_container(cid)
            candidates = self.docker.api.containers(all=True)
        except Exception:  # noqa: BLE001 - an engine hiccup: cannot tell
            return None
        return sibling_has_container(attrs, candidates, step)

    def _inspect(self, cid: str) -> Dict[str, Any]:
        try:
            attrs = self.docker.api.inspect_container(cid)
        except Exception as error:  # noqa: BLE001 - gone already
            return {"error": str(error)}
        host = attrs.get("HostConfig") or {}
        return {"labels": (attrs.get("Config") or {}).get("Labels") or {},
                "memory": host.get("Memory"), "nano_cpus": host.get("NanoCpus"),
                "name": attrs.get("Name", "").lstrip("/")}

    def _kill(self, cid: str) -> bool:
        try:
            self.docker.api.kill(cid, signal="SIGKILL")
            return True
        except Exception:  # noqa: BLE001 - it ended by itself
            return False


def sibling_has_container(waiter: Mapping[str, Any], containers: Iterable[Mapping[str, Any]],
                          step: str) -> Optional[bool]:
    """Whether step `step` of the waiting container's run has a container not yet exited.

    Args:
        waiter: the waiting step's container, as the engine inspects it.
        containers: every container on the engine, as the engine lists them
            (``Command`` a string, ``State`` a word).
        step: the sibling step's name.

    Returns:
        True or False; None when the waiter's command has no snapshot id
        (then nobody can tell, and the probe waits in full).
    """
    config = waiter.get("Config") or {}
    words = list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])
    snapshot = _option(words, "--snapshot_id")
    if snapshot is None:
        return None
    for container in containers:
        words = str(container.get("Command", "")).split()
        if _option(words, "--snapshot_id") == snapshot and _option(words, "--step_name") == step \
                and container.get("State") in ("created", "running", "restarting", "paused"):
            return True
    return False


def _option(words: Sequence[str], option: str) -> Optional[str]:
    """The value of `option` in a command line (``--x v`` or ``--x=v``), else None."""
    for index, word in enumerate(words):
        if word == option and index + 1 < len(words):
            return words[index + 1]
        if word.startswith(option + "="):
            return word[len(option) + 1:]
    return None
