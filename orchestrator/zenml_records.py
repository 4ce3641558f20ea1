"""Every read of ZenML's records of pipeline runs: the bottom layer both running and status use.

ZenML knows a run's steps and their dependencies (its snapshot), cached steps,
final statuses and the timings of steps whose containers are long gone. This
module is the one place that asks: the runner (is a stop requested? did the
step record its success?), dynamic runs, orphaned runs, the status views and
`fetch_status` all read through it. Lists are read page by page, so nothing
is silently cut at a page size. `zenml` is imported inside the functions so
that what imports this module loads without it. It imports nothing of the
package: running/ and status/ both stand on it.

- `get_run`, `run_status`, `resolve_run`, `recent_runs`, `known_run_ids`,
  `runs_not_in`: runs;
- `step_runs_of`, `latest_step_run`: a run's step runs (every attempt);
- `epoch_seconds`: ZenML's naive UTC datetimes as epoch seconds.

(`orchestrator.status.records` turns these records into the status model's terms.)
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Any, Iterable, List, Optional


def epoch_seconds(moment: Optional[datetime]) -> Optional[float]:
    """ZenML stores naive UTC datetimes."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


PAGE_SIZE = 500


def get_run(run_id: Any, hydrate: bool = False) -> Any:
    """A pipeline run by id (a ZenML response model; hydrated: with its snapshot).

    Raises:
        KeyError: no such run in this store.
    """
    from zenml.client import Client

    return Client().get_pipeline_run(run_id, hydrate=hydrate)


def run_status(run_id: Any) -> Any:
    """A run's current `ExecutionStatus`."""
    from zenml.enums import ExecutionStatus

    return ExecutionStatus(get_run(run_id).status)


def runs_not_in(known: Iterable[Any], limit: int = 20) -> List[Any]:
    """The newest runs (at most `limit`) whose ids are not in `known`, newest first."""
    from zenml.client import Client

    known = set(known)
    return [run for run in Client().list_pipeline_runs(sort_by="desc:created", size=limit).items
            if run.id not in known]


def step_runs_of(run_id: Any) -> List[Any]:
    """Every step run of a pipeline run, all pages read (no silent cap)."""
    from zenml.client import Client

    found: List[Any] = []
    page = 1
    while True:
        result = Client().list_run_steps(pipeline_run_id=run_id, page=page, size=PAGE_SIZE,
                                         hydrate=False)
        found.extend(result.items)
        if page >= result.total_pages:
            return found
        page += 1


def latest_step_run(run_id: Any, step_name: str) -> Optional[Any]:
    """The newest step run of one step (its latest attempt), or None."""
    runs = [s for s in step_runs_of(run_id) if s.name == step_name]
    return max(runs, key=lambda s: s.created) if runs else None


def resolve_run(ref: str = "latest") -> Any:
    """The ZenML pipeline run `ref` names: "latest", an id, an id prefix or a name.

    Raises:
        LookupError: no run matches, with what to try instead.
    """
    from zenml.client import Client

    client = Client()
    if ref == "latest":
        runs = client.list_pipeline_runs(sort_by="desc:created", size=1).items
        if not runs:
            raise LookupError(
                "There is no pipeline run yet in this ZenML store "
                f"({_store_hint()}): run a pipeline first, or watch the next "
                "one with watch_run(None) / `python -m orchestrator.status --next`.")
        return client.get_pipeline_run(runs[0].id)
    try:
        return client.get_pipeline_run(ref)
    except KeyError as error:
        raise LookupError(
            f"No pipeline run matches {ref!r} in this ZenML store ({_store_hint()}). "
            "Give a run's name, id or id prefix as shown by `zenml pipeline runs list`, "
            "or 'latest'.") from error


def _store_hint() -> str:
    return f"ZENML_CONFIG_PATH={os.environ.get('ZENML_CONFIG_PATH', '(default)')}"


def recent_runs(limit: int = 10) -> List[Any]:
    """The newest pipeline runs of this store, newest first (at most `limit`).

    Returns:
        ZenML run response models (not hydrated: name, id, status, created).
    """
    from zenml.client import Client

    return list(Client().list_pipeline_runs(sort_by="desc:created", size=limit,
                                            hydrate=False).items)


def known_run_ids(limit: int = 50) -> set:
    """Ids of the newest runs in the store now."""
    from zenml.client import Client

    return {run.id for run in
            Client().list_pipeline_runs(sort_by="desc:created", size=limit).items}
