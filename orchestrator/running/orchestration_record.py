"""Which process orchestrates a run: a small record on disk, and whether that process lives.

Every run on `my_docker`, and every detached run on `my_swarm`, is driven by
one process on the host: the client that called the pipeline
(`synchronous=True`), or a detached orchestration process
(`synchronous=False`). Its containers say so in their client labels,
but a run may have no container running (a dynamic run between steps, or
one whose steps run inline), so the run's folder also holds
`orchestration.json`: the process's pid, its start time (so that a reused
pid is not taken for it), the host, and where its log goes. Anyone on the
same machine can then tell a run that is going on from one whose
orchestrator died (`orchestrator.running.orphans` settles those, removing
what the record's `remove_with` function removes: a `my_swarm` run's
services; by default the run's containers).

psutil (a ZenML dependency) reads process states, so a zombie (a process
that has exited but was not yet reaped by its parent) counts as gone.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Optional

RECORD_NAME = "orchestration.json"
LOG_NAME = "orchestration.log"


@dataclass(frozen=True)
class OrchestrationRecord:
    """The process that orchestrates one run.

    Attributes:
        run_id: the ZenML pipeline run id.
        pid: the orchestration process (the client, or the detached process).
        started_at: that process's start time (epoch seconds, as psutil reads it).
        host: the machine it runs on (a pid means nothing elsewhere).
        detached: True for a run that goes on after the pipeline call returned.
        log_path: the file the detached process writes its output to.
        supervisor_pid: the detached process's watchdog, if any.
        submitted_by: for a detached run, the process whose pipeline call
            submitted it (a notebook's kernel): its `live_panel` follows the
            run although another process orchestrates it.
        written_at: when the record was written (epoch seconds).
        remove_with: what removes everything of the run once it is orphaned,
            as a `run_functions.FunctionCall` in JSON (`my_swarm`: its
            services); None: the run's containers on this machine's engine.
    """

    run_id: str
    pid: int
    started_at: Optional[float]
    host: str
    detached: bool = False
    log_path: Optional[str] = None
    supervisor_pid: Optional[int] = None
    submitted_by: Optional[int] = None
    written_at: float = 0.0
    remove_with: Optional[Dict[str, Any]] = None

    def process_is_alive(self) -> bool:
        """Whether the orchestration process still runs (True when it cannot be told).

        A process on another machine is assumed alive: we never call a run
        orphaned that we cannot see.
        """
        if self.host != socket.gethostname():
            return True
        return process_is_alive(self.pid, self.started_at)


def process_start_time(pid: int) -> Optional[float]:
    """A process's start time in epoch seconds, or None if it cannot be read."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OSError):
        return None


def process_is_alive(pid: int, started_at: Optional[float] = None) -> bool:
    """Whether process `pid` runs (not exited, not a zombie, not a reused pid).

    Args:
        pid: the process id.
        started_at: its start time as `process_start_time` gave it; a process
            with this pid that started at another time is another process.
    """
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
            return False
        # A process with this pid that started at another time reused the pid.
        return started_at is None or abs(process.create_time() - started_at) <= 1.0
    except psutil.NoSuchProcess:
        return False
    except (psutil.AccessDenied, OSError):
        return True  # another user's process: it exists


def record_path(run_dir: Path) -> Path:
    return Path(run_dir) / RECORD_NAME


def write_record(run_dir: Path, run_id: str, *, detached: bool = False,
                 log_path: Optional[str] = None,
                 supervisor_pid: Optional[int] = None, pid: Optional[int] = None,
                 submitted_by: Optional[int] = None,
                 remove_with: Optional[Dict[str, Any]] = None) -> Optional[OrchestrationRecord]:
    """Record that this process (or `pid`) orchestrates run `run_id` (in `run_dir`).

    Args:
        log_path: where a detached process's output goes (by default
            `run_dir/orchestration.log`).
        pid: the orchestration process, when it is not this one (the
            submitting process writes the first record of a detached run,
            naming its watchdog, before the pipeline call returns).
        submitted_by: the process that submitted a detached run; kept from
            the run's earlier record when not given, so the detached
            process's own record still names the submitter.
        remove_with: see `OrchestrationRecord`; kept from the run's earlier
            record when not given, like `submitted_by`.

    Returns:
        The record, or None if the folder cannot be written (a run without a
        record still runs; only telling its orchestrator's death is lost).
    """
    pid = os.getpid() if pid is None else pid
    if submitted_by is None or remove_with is None:
        earlier = read_record(run_dir)
        if earlier is not None and earlier.run_id == run_id:
            submitted_by = earlier.submitted_by if submitted_by is None else submitted_by
            remove_with = earlier.remove_with if remove_with is None else remove_with
    if detached and log_path is None:
        log_path = str(Path(run_dir) / LOG_NAME)
    record = OrchestrationRecord(
        run_id=run_id, pid=pid, started_at=process_start_time(pid),
        host=socket.gethostname(), detached=detached, log_path=log_path,
        supervisor_pid=supervisor_pid, submitted_by=submitted_by, written_at=time.time(),
        remove_with=remove_with,
    )
    try:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        temporary = record_path(run_dir).with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(record), indent=1), encoding="utf-8")
        temporary.replace(record_path(run_dir))  # readers never see half a record
    except OSError:
        return None
    return record


def read_record(run_dir: Path) -> Optional[OrchestrationRecord]:
    """The run's orchestration record, or None if it has none (or it is unreadable)."""
    try:
        data = json.loads(record_path(run_dir).read_text(encoding="utf-8"))
        return OrchestrationRecord(**data)
    except (OSError, ValueError, TypeError):
        return None
