"""The conformance kit's probe steps and pipelines (shipped to step containers as user code).

The kit copies this file into the pipeline's source root as
``my_docker_conformance_probe.py`` before a battery and imports it from there,
so that ZenML ships it to the step containers inside its code archive, exactly
like a user's own step code. The kit therefore needs nothing of the
orchestrator under test (no mount, no setting): any orchestrator that can run
a user's steps can run these. For the same reason this file imports only the
standard library and ZenML, and every step is self-contained.

Every step writes small JSON *notes* into a folder shared with the kit (under
ZenML's local stores path, which every local orchestrator mounts at the same
path): when it started and ended by the machine's clock, which container it
ran in (read from ``/proc/self/mountinfo``, where Docker bind-mounts the
container's ``hostname`` file, so it works with any network mode), which
process, and the resource limits its cgroup enforces. The kit judges the
orchestrator from these notes, ZenML's records and the Docker engine.
"""

import json
import os
import re
import time
from typing import Any, Dict, Optional, Sequence

from zenml import get_step_context, pipeline, step
from zenml.config import ResourceSettings
from zenml.config.retry_config import StepRetryConfig

# Docker keeps a container's files in .../containers/<id>/, Podman in
# .../overlay-containers/<id>/userdata/ (or vfs-containers/ without overlay).
_CONTAINER_ID = re.compile(r"/(?:[a-z0-9]+-)?containers/([0-9a-f]{64})/")


def container_id(mountinfo: Optional[str] = None) -> Optional[str]:
    """The id of the Docker or Podman container this process runs in, or None (not in one).

    Args:
        mountinfo: the text of ``/proc/self/mountinfo`` (read when not given).
    """
    if mountinfo is None:
        try:
            with open("/proc/self/mountinfo") as mounts:
                mountinfo = mounts.read()
        except OSError:
            return None
    found = _CONTAINER_ID.search(mountinfo)
    return found.group(1) if found else None


def _read_number(path: str) -> Optional[int]:
    try:
        with open(path) as handle:
            text = handle.read().split()[0]
    except (OSError, IndexError):
        return None
    return None if text == "max" else int(text)


def cgroup_limits() -> Dict[str, Optional[float]]:
    """The memory limit (bytes) and CPU limit (CPUs) this process's cgroup enforces.

    Reads cgroup v2 (``memory.max``, ``cpu.max``) or v1 (``memory.limit_in_bytes``,
    ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``). None means no limit (or unreadable).
    """
    memory = _read_number("/sys/fs/cgroup/memory.max")
    cpus: Optional[float] = None
    try:
        with open("/sys/fs/cgroup/cpu.max") as handle:
            quota, period = handle.read().split()
        if quota != "max":
            cpus = int(quota) / int(period)
    except (OSError, ValueError):
        quota_v1 = _read_number("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
        period_v1 = _read_number("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
        if quota_v1 is not None and quota_v1 > 0 and period_v1:
            cpus = quota_v1 / period_v1
    if memory is None:
        memory = _read_number("/sys/fs/cgroup/memory/memory.limit_in_bytes")
        if memory is not None and memory >= 2**60:  # v1's "unlimited"
            memory = None
    return {"memory_bytes": memory, "cpus": cpus}


def write_note(folder: str, name: str, **facts: Any) -> Dict[str, Any]:
    """Write one note (atomically: the kit never reads half a file)."""
    note = {"time": time.time(), "pid": os.getpid(), "container_id": container_id(), **facts}
    try:
        context = get_step_context()
        note["step"] = context.step_run.name
        note["pipeline_run_id"] = str(context.pipeline_run.id)
    except Exception:  # noqa: BLE001 - outside a step: no context
        pass
    path = os.path.join(folder, f"{name}.json")
    with open(path + ".tmp", "w") as handle:
        json.dump(note, handle)
    os.replace(path + ".tmp", path)
    return note


def has_note(folder: str, name: str) -> bool:
    return os.path.exists(os.path.join(folder, f"{name}.json"))


def wait_for_note(folder: str, name: str, seconds: float, unless: Sequence[str] = ()) -> bool:
    """Wait up to `seconds` for note `name`, while none of the notes `unless` exists."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        if has_note(folder, name):
            return True
        if any(has_note(folder, other) for other in unless):
            return False
        time.sleep(0.1)
    return has_note(folder, name)


@step(enable_cache=False)
def probe(folder: str, name: str, wait_for: str = "", wait_seconds: float = 0.0,
          work_seconds: float = 0.0) -> str:
    """Note its start, wait for a sibling's start (if asked), work, note its end.

    Waiting for a sibling that is running at the same time is what makes
    independent steps overlap on a parallel orchestrator however slowly
    their containers start. A sequential orchestrator would make it wait in
    vain: the kit releases it (note ``<name>.alone``) once the sibling has
    had time to get a container and has none (`notes.NoteWatcher`).
    """
    write_note(folder, f"{name}.started", limits=cgroup_limits())
    saw = wait_for_note(folder, f"{wait_for}.started", wait_seconds,
                        unless=(f"{wait_for}.ended", f"{name}.alone")) if wait_for else False
    time.sleep(work_seconds)
    write_note(folder, f"{name}.ended", saw_sibling=saw)
    return name


@step(enable_cache=False)
def slow(folder: str, wait_seconds: float, linger_seconds: float) -> str:
    """Runs when `fail_soon` fails (if the orchestrator runs them together), then lingers.

    It lingers until the kit releases it (note ``slow.release``: the kit gives
    the orchestrator time counted from the failed container's exit, which is
    what the orchestrator reacts to), at most `linger_seconds`.
    """
    write_note(folder, "slow.started")
    saw_failure = wait_for_note(folder, "fail_soon.failing", wait_seconds)
    # Linger only when running next to the failure: one at a time, there is nothing to stop.
    if saw_failure:
        wait_for_note(folder, "slow.release", linger_seconds)  # short sleeps: a stop ends it
    else:
        time.sleep(0.2)
    write_note(folder, "slow.ended")
    return "slow"


@step(enable_cache=False)
def fail_soon(folder: str, wait_seconds: float) -> str:
    """Fails on purpose, once `slow` has started (or after `wait_seconds`)."""
    write_note(folder, "fail_soon.started")
    wait_for_note(folder, "slow.started", wait_seconds)
    write_note(folder, "fail_soon.failing")
    raise RuntimeError("fail_soon fails on purpose (conformance kit)")


@step(enable_cache=False)
def victim(folder: str, wait_seconds: float = 60.0) -> int:
    """The kit kills the container of its first attempt; a later attempt succeeds.

    The attempt is counted from the notes earlier attempts left, so it works
    whoever retries (and whatever the orchestrator tells a container).
    """
    attempt = 1
    while has_note(folder, f"victim.attempt{attempt}"):
        attempt += 1
    note = write_note(folder, f"victim.attempt{attempt}", attempt=attempt)
    if attempt == 1 and note["container_id"]:
        wait_for_note(folder, "never", wait_seconds)  # killed meanwhile
    write_note(folder, "victim.ended", attempt=attempt)
    return attempt


@step(enable_cache=False)
def long_step(folder: str, name: str, seconds: float = 120.0) -> str:
    """Runs for a long time: something to stop or interrupt."""
    write_note(folder, f"{name}.started")
    deadline = time.time() + seconds
    while time.time() < deadline:
        time.sleep(0.1)
    write_note(folder, f"{name}.ended")
    return name


@pipeline(enable_cache=False)
def shape_pipeline(folder: str, wait_seconds: float = 15.0, memory: str = "512MiB",
                   cpus: float = 1.0, with_victim: bool = False) -> None:
    """Two independent steps that wait for each other; one asks for resources.

    With `with_victim`, a third independent step whose first container the
    kit kills, with one retry allowed.
    """
    probe.with_options(settings={"resources": ResourceSettings(memory=memory, cpu_count=cpus)})(
        folder, "branch_a", wait_for="branch_b", wait_seconds=wait_seconds,
        work_seconds=0.5, id="branch_a")
    probe(folder, "branch_b", wait_for="branch_a", wait_seconds=wait_seconds,
          work_seconds=0.5, id="branch_b")
    if with_victim:
        victim.with_options(retry=StepRetryConfig(max_retries=1, delay=1, backoff=1))(
            folder, id="victim")


@pipeline(enable_cache=False)
def modes_pipeline(folder: str, wait_seconds: float = 15.0, linger_seconds: float = 1.0) -> None:
    """`slow` next to `fail_soon`; `after_slow` waits for slow, `after_fail` for the failure."""
    slow(folder, wait_seconds, linger_seconds, id="slow")
    fail_soon(folder, wait_seconds, id="fail_soon")
    probe(folder, "after_slow", id="after_slow", after="slow")
    probe(folder, "after_fail", id="after_fail", after="fail_soon")


@pipeline(enable_cache=False)
def long_pipeline(folder: str, name: str, seconds: float = 120.0) -> None:
    """One long step."""
    long_step(folder, name, seconds)
