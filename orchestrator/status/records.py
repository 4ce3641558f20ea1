"""Every read of ZenML's records of pipeline runs, and their translation to the status model.

ZenML knows a run's steps and their dependencies (its snapshot), cached steps,
final statuses and the timings of steps whose containers are long gone. This
module is the one place that asks: the runner (is a stop requested? did the
step record its success?), the status views and `fetch_status` all read
through it. Lists are read page by page, so nothing is silently cut at a page
size. `zenml` is imported inside the functions so the model and the views
load without it.

- `get_run`, `run_status`, `resolve_run`, `recent_runs`, `known_run_ids`,
  `runs_not_in`: runs;
- `step_runs_of`, `latest_step_run`: a run's step runs (every attempt);
- `status_for_run`, `read_zenml_facts`, `zenml_facts_from`: the status model's terms.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from typing import Any, Dict, Iterable, List, Optional

from orchestrator.status.model import RunStatus, ZenmlFacts, ZenmlStepFact, new_run_status


def epoch_seconds(moment: Optional[datetime]) -> Optional[float]:
    """ZenML stores naive UTC datetimes."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _value(status: Any) -> str:
    return str(getattr(status, "value", status))


def zenml_facts_from(run: Any, step_runs: Iterable[Any], now: float) -> ZenmlFacts:
    """Summarise a run and its step runs (ZenML response models)."""
    latest: Dict[str, Any] = {}
    attempts: Dict[str, int] = {}
    every: Dict[str, List[Any]] = {}
    for step_run in step_runs:
        attempts[step_run.name] = attempts.get(step_run.name, 0) + 1
        every.setdefault(step_run.name, []).append(step_run)
        known = latest.get(step_run.name)
        if known is None or step_run.created > known.created:
            latest[step_run.name] = step_run
    return ZenmlFacts(
        run_status=_value(run.status),
        run_reason=getattr(run, "status_reason", None) or "",
        steps={
            name: ZenmlStepFact(
                status=_value(step_run.status),
                attempts=attempts[name],
                started_at=epoch_seconds(step_run.start_time),
                finished_at=epoch_seconds(step_run.end_time),
                runs=tuple((_value(one.status), epoch_seconds(one.start_time),
                            epoch_seconds(one.end_time))
                           for one in sorted(every[name], key=lambda s: s.created)),
            )
            for name, step_run in latest.items()
        },
        time=now,
    )


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


def read_zenml_facts(run_id: str) -> ZenmlFacts:
    """One reading of ZenML's records of a run."""

    run = get_run(run_id)
    return zenml_facts_from(run, step_runs_of(run_id), time.time())


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


def status_for_run(run: Any) -> RunStatus:
    """The initial model of a ZenML run: its steps from the snapshot, nothing seen yet.

    A dynamic pipeline's steps are only known as its function creates them
    (its snapshot lists configuration templates, not steps): they appear in
    the model as their containers and ZenML's records do.
    """
    steps: Dict[str, Dict[str, Any]] = {}
    mode = "continue_on_failure"
    snapshot = getattr(run, "snapshot", None)
    if snapshot is not None:
        templates_only = bool(getattr(snapshot, "is_dynamic", False))
        for name, step in ({} if templates_only else snapshot.step_configurations).items():
            retry = getattr(step.config, "retry", None)
            steps[name] = {
                "upstream": list(step.spec.upstream_steps),
                "max_retries": int(retry.max_retries) if retry is not None else 0,
            }
        mode_value = getattr(snapshot.pipeline_configuration, "execution_mode", None)
        if mode_value is not None:
            mode = _value(mode_value)
    pipeline = getattr(run, "pipeline", None)
    return new_run_status(
        str(run.id),
        steps,
        run_name=run.name,
        pipeline_name=getattr(pipeline, "name", "") or "",
        execution_mode=mode,
        zenml_status=_value(run.status),
        zenml_reason=getattr(run, "status_reason", None) or "",
    )


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
