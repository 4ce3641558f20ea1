"""The labels on every step container, and every query that finds containers by them.

A step container is found again by its labels, never by state kept
elsewhere, so that any process (a stop request, the status panel, the
terminal view, a test) sees the same truth. This module is the one owner of
the label schema: the names, how a container's labels are read back, the
Docker filters that select a run's containers or events, and the list query.
"""

from __future__ import annotations

import os
import socket
from typing import Any, Dict, List, Mapping, Optional

from orchestrator.running.orchestration_record import process_is_alive

LABEL_PREFIX = "io.my-docker"
MANAGED_BY_LABEL = f"{LABEL_PREFIX}.managed-by"
MANAGED_BY_VALUE = "my_docker"
ORCHESTRATOR_RUN_ID_LABEL = f"{LABEL_PREFIX}.orchestrator-run-id"
PIPELINE_RUN_ID_LABEL = f"{LABEL_PREFIX}.pipeline-run-id"
PIPELINE_LABEL = f"{LABEL_PREFIX}.pipeline"
RUN_NAME_LABEL = f"{LABEL_PREFIX}.run-name"
STEP_LABEL = f"{LABEL_PREFIX}.step"
ATTEMPT_LABEL = f"{LABEL_PREFIX}.attempt"
# On a container started before its upstream steps succeeded: it waits at its
# gate, its step not running yet, until they did (see running/early_start.py).
STARTED_EARLY_LABEL = f"{LABEL_PREFIX}.started-early"
# Which process on which machine runs the loop that owns the container: lets
# anyone tell a run in progress from one whose client died.
CLIENT_HOST_LABEL = f"{LABEL_PREFIX}.client-host"
CLIENT_PID_LABEL = f"{LABEL_PREFIX}.client-pid"
# The ZenML step run an isolated step's container runs (dynamic pipelines):
# ZenML retries such a step as a new step run, so each attempt has its own.
STEP_RUN_ID_LABEL = f"{LABEL_PREFIX}.step-run-id"
# On a container created (never started) only to let the engine check a
# step's options before the run starts (`containers.check_with_engine`).
TRIAL_LABEL = f"{LABEL_PREFIX}.trial"


def run_labels(*, orchestrator_run_id: str, pipeline_name: str, run_name: str,
               pipeline_run_id: Optional[str]) -> Dict[str, str]:
    """The labels every container of one run carries (step and attempt come per container)."""
    labels = {
        MANAGED_BY_LABEL: MANAGED_BY_VALUE,
        ORCHESTRATOR_RUN_ID_LABEL: orchestrator_run_id,
        PIPELINE_LABEL: pipeline_name,
        RUN_NAME_LABEL: run_name,
        CLIENT_HOST_LABEL: socket.gethostname(),
        CLIENT_PID_LABEL: str(os.getpid()),
    }
    if pipeline_run_id is not None:
        labels[PIPELINE_RUN_ID_LABEL] = pipeline_run_id
    return labels


def trial_labels(labels: Mapping[str, str]) -> Dict[str, str]:
    """The labels of a trial container: its run's orchestrator run id and client,
    so that a run whose client died while checking is cleaned up with it,
    but no pipeline run or step, so that no watcher takes it for a step's."""
    kept = (MANAGED_BY_LABEL, ORCHESTRATOR_RUN_ID_LABEL, CLIENT_HOST_LABEL, CLIENT_PID_LABEL)
    return {**{key: labels[key] for key in kept if key in labels}, TRIAL_LABEL: "true"}


def step_labels(step_name: str, attempt: int) -> Dict[str, str]:
    """The labels that say which step and which attempt a container runs."""
    return {STEP_LABEL: step_name, ATTEMPT_LABEL: str(attempt)}


# -- reading a container's labels back -------------------------------------------


def step_of(labels: Mapping[str, str]) -> Optional[str]:
    """The step a container runs, or None for a container that is not a step's."""
    return labels.get(STEP_LABEL) or None


def attempt_of(labels: Mapping[str, str]) -> int:
    """The attempt a container runs (1 when the label is missing or unreadable)."""
    try:
        return int(labels.get(ATTEMPT_LABEL, "1"))
    except (TypeError, ValueError):
        return 1


def started_early(labels: Mapping[str, str]) -> bool:
    """Whether a container was started before its upstream steps succeeded."""
    return labels.get(STARTED_EARLY_LABEL) == "true"


def pipeline_run_of(labels: Mapping[str, str]) -> Optional[str]:
    """The ZenML pipeline run id a container belongs to."""
    return labels.get(PIPELINE_RUN_ID_LABEL) or None


def step_run_of(labels: Mapping[str, str]) -> Optional[str]:
    """The ZenML step run id an isolated step's container runs, or None."""
    return labels.get(STEP_RUN_ID_LABEL) or None


def client_is_gone(labels: Mapping[str, str]) -> bool:
    """Whether the client process that ran this container's run has died.

    Only decidable on the machine the client ran on; elsewhere we assume it
    lives (and so never report a healthy run as failed). A client that has
    exited but was not reaped yet (a zombie) is gone.
    """
    if labels.get(CLIENT_HOST_LABEL) != socket.gethostname():
        return False
    try:
        pid = int(labels.get(CLIENT_PID_LABEL, ""))
    except ValueError:
        return False
    return not process_is_alive(pid)


# -- finding containers and events ---------------------------------------------------


def label_filters(orchestrator_run_id: Optional[str] = None,
                  pipeline_run_id: Optional[str] = None) -> List[str]:
    """Docker label filters that select our containers (of one run, if given)."""
    labels = [f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"]
    if orchestrator_run_id:
        labels.append(f"{ORCHESTRATOR_RUN_ID_LABEL}={orchestrator_run_id}")
    if pipeline_run_id:
        labels.append(f"{PIPELINE_RUN_ID_LABEL}={pipeline_run_id}")
    return labels


def find_containers(client: Any, *, orchestrator_run_id: Optional[str] = None,
                    pipeline_run_id: Optional[str] = None) -> List[Any]:
    """All our containers (running or exited), optionally of one run.

    Args:
        client: a `docker.DockerClient`.

    Returns:
        docker-py `Container` objects, their attributes read at listing time.
    """
    # ignore_removed: a container removed between docker-py's list and its
    # inspect of each entry (a run cleaning up) is not an error.
    return client.containers.list(
        all=True, ignore_removed=True,
        filters={"label": label_filters(orchestrator_run_id, pipeline_run_id)},
    )


def find_step_run_container(client: Any, step_run_id: str) -> Optional[Any]:
    """The container of one ZenML step run (an isolated step), or None if there is none.

    Returns:
        A docker-py `Container`, its attributes read at listing time.
    """
    found = client.containers.list(
        all=True, ignore_removed=True,
        filters={"label": [f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}",
                           f"{STEP_RUN_ID_LABEL}={step_run_id}"]},
    )
    return found[0] if found else None


def container_events(client: Any, pipeline_run_id: Optional[str] = None,
                     since: Optional[int] = None) -> Any:
    """Docker's event stream of our containers (of one run, if given), decoded.

    Args:
        since: replay the events since this time (epoch seconds) first.

    Returns:
        docker-py's blocking event generator; `close()` it to end it.
    """
    return client.events(decode=True, since=since, filters={
        "type": "container", "label": label_filters(pipeline_run_id=pipeline_run_id)})
