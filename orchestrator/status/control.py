"""Acting on a run from where it is watched: stopping it, the way `zenml pipeline runs stop` does.

The panel's Stop button calls `stop_run`, which takes ZenML's own path
(`zenml.utils.run_utils.stop_run`, what the command line calls): ZenML marks
the run STOPPING and asks the run's orchestrator to stop it; `my_docker`
stops the run's containers (`orchestrator.running.reporting.stop_run_containers`):
SIGTERM, then SIGKILL once the orchestrator's `stop_grace_seconds` have
passed (Docker's own stop). The client that runs the pipeline sees the run
STOPPING, records the steps as stopped and removes the containers; if that
client is gone, the stop removes them itself.
"""

from __future__ import annotations

from typing import Any, Optional

from orchestrator.errors import StopRefused

__all__ = ["StopRefused", "stop_grace_seconds", "stop_run"]

DEFAULT_GRACE_SECONDS = 10


def stop_grace_seconds(run: Any) -> int:
    """How long the run's orchestrator waits between SIGTERM and SIGKILL (seconds).

    The run's own setting: the orchestrator component it ran on, with the
    pipeline's settings over it (as the stop itself uses it); the default
    when it cannot be read.

    Args:
        run: a hydrated ZenML run (response model).
    """
    from zenml.enums import StackComponentType
    from zenml.stack import StackComponent

    try:
        model = run.stack.components[StackComponentType.ORCHESTRATOR][0]
        return int(StackComponent.from_model(model).get_settings(run).stop_grace_seconds)
    except Exception:  # noqa: BLE001 - no stack (deleted), another flavor: the default
        return DEFAULT_GRACE_SECONDS


def stop_run(run_id: str, *, graceful: bool = True) -> Optional[str]:
    """Stop a run through ZenML, as `zenml pipeline runs stop RUN` does.

    Blocks while the containers are stopped: up to the orchestrator's stop
    grace when `graceful` (SIGTERM, then SIGKILL), at once otherwise.

    Args:
        run_id: the ZenML run's id.
        graceful: SIGTERM first (True) or SIGKILL at once (False).

    Returns:
        None.

    Raises:
        StopRefused: ZenML refused (the run is finished or already being
            stopped, or its stack or orchestrator was deleted).
        KeyError: no such run in this store.
    """
    from zenml.exceptions import IllegalOperationError
    from zenml.utils.run_utils import stop_run as zenml_stop_run

    from orchestrator.zenml_records import get_run

    run = get_run(run_id, hydrate=True)
    try:
        zenml_stop_run(run, graceful=graceful)
    except (IllegalOperationError, ValueError, NotImplementedError) as error:
        raise StopRefused(f"ZenML did not stop run {run.name}: {error}") from error
    return None
