"""What a running step container uses: CPU and memory against its limits, from the engine.

Docker's stats endpoint (what `docker stats` shows) publishes one sample per
container about once a second. `StatsFollower` follows that stream for one
running container in a background thread and hands each sample, already
turned into a `ResourceSample` (the status model's input), to a callback; it
ends when the container stops or `close()` is called. `sample_from_stats`
and `limits_from_inspect` are the pure part (unit-tested on recorded
payloads).

The numbers are read the way the `docker stats` command reads them (its
source, docker/cli `cli/command/container/stats_helpers.go`): CPU as the
container's share of the host's CPU time between two samples times the
number of CPUs, memory as usage minus the page cache the kernel can take
back (`inactive_file`).
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Mapping, Optional, Tuple

from orchestrator.status.events import ResourceSample, parse_docker_time


def limits_from_inspect(attrs: Mapping[str, Any]) -> Tuple[Optional[int], Optional[float]]:
    """A container's (memory limit in bytes, CPU limit in cores) from its inspect data.

    None stands for no limit (Docker's 0). CPU limits come from `--cpus`
    (NanoCpus) or a CFS quota (CpuQuota / CpuPeriod).
    """
    host = attrs.get("HostConfig") or {}
    memory = int(host.get("Memory") or 0) or None
    cpus: Optional[float] = None
    if host.get("NanoCpus"):
        cpus = int(host["NanoCpus"]) / 1e9
    elif host.get("CpuQuota") and int(host["CpuQuota"]) > 0:
        cpus = int(host["CpuQuota"]) / int(host.get("CpuPeriod") or 100_000)
    return memory, cpus


def sample_from_stats(stats: Mapping[str, Any], *, step: str, attempt: int,
                      memory_limit: Optional[int], cpu_limit: Optional[float]
                      ) -> Optional[ResourceSample]:
    """One payload of Docker's stats stream as a `ResourceSample`; None when it is empty.

    Docker keeps sending empty payloads (read time 0001-01-01) once the
    container has stopped: None tells the follower to end.

    Args:
        stats: one decoded payload of `GET /containers/{id}/stats`.
        memory_limit, cpu_limit: the container's limits (`limits_from_inspect`).
    """
    read = parse_docker_time(stats.get("read"))
    memory = stats.get("memory_stats") or {}
    if read is None or "usage" not in memory:
        return None
    cache = (memory.get("stats") or {})
    # cgroup v1 reports total_inactive_file, v2 inactive_file.
    inactive = cache.get("total_inactive_file", cache.get("inactive_file", 0)) or 0
    used = max(0, int(memory["usage"]) - int(inactive))
    return ResourceSample(step=step, attempt=attempt, time=read, cpu_cores=cpu_cores(stats),
                          memory_bytes=used, memory_limit=memory_limit, cpu_limit=cpu_limit)


def cpu_cores(stats: Mapping[str, Any]) -> float:
    """CPU used between the previous sample and this one, in cores (0.0 for the first)."""
    now = stats.get("cpu_stats") or {}
    before = stats.get("precpu_stats") or {}
    used = (now.get("cpu_usage") or {}).get("total_usage", 0) \
        - (before.get("cpu_usage") or {}).get("total_usage", 0)
    system = (now.get("system_cpu_usage") or 0) - (before.get("system_cpu_usage") or 0)
    if not before.get("system_cpu_usage") or used <= 0 or system <= 0:
        return 0.0
    cpus = now.get("online_cpus") or len((now.get("cpu_usage") or {}).get("percpu_usage") or ()) \
        or 1
    return used / system * cpus


class StatsFollower:
    """Follows Docker's stats stream of one running container in a background thread.

    Docker publishes a sample about once a second, so the callback is
    called at most that often. The thread ends by itself when the container
    stops or is removed. docker-py gives no way to close a stats stream
    from another thread, so `close()` asks the thread to end at the next
    sample: within about a second.
    """

    def __init__(self, client: Any, container_id: str, step: str, attempt: int,
                 on_sample: Callable[[ResourceSample], None]) -> None:
        """Args:
            client: a `docker.DockerClient` (kept open; not closed here).
            on_sample: called from the follower's thread with each sample.
        """
        self._client = client
        self.container_id = container_id
        self.step = step
        self.attempt = attempt
        self._on_sample = on_sample
        self._closed = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"run-watcher-stats-{step}",
                                       daemon=True)

    def start(self) -> "StatsFollower":
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            memory_limit, cpu_limit = limits_from_inspect(
                self._client.api.inspect_container(self.container_id))
            stream = self._client.api.stats(self.container_id, stream=True, decode=True)
            for stats in stream:
                if self._closed.is_set():
                    break
                sample = sample_from_stats(stats, step=self.step, attempt=self.attempt,
                                           memory_limit=memory_limit, cpu_limit=cpu_limit)
                if sample is None:
                    break  # the container stopped
                self._on_sample(sample)
            stream.close()
        except Exception:  # noqa: BLE001 - the container is gone, or the client closed
            pass

    def close(self) -> None:
        """Ask the thread to end (at the next sample); join `thread` to wait for it."""
        self._closed.set()
