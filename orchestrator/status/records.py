"""ZenML's records of a run in the status model's terms.

The reads themselves are `orchestrator.zenml_records` (the bottom layer the
runner uses too); this module turns what they return into the pure model's
facts and initial status:

- `status_for_run`: the initial model of a run, its steps from the snapshot;
- `read_zenml_facts`, `zenml_facts_from`: one reading of ZenML's records as
  `ZenmlFacts`.
"""

from __future__ import annotations

import time
from typing import Any, Dict, Iterable, List

from orchestrator.status.events import ZenmlFacts, ZenmlStepFact
from orchestrator.status.model import RunStatus
from orchestrator.status.reducer import new_run_status
from orchestrator.zenml_records import epoch_seconds, get_run, step_runs_of


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


def read_zenml_facts(run_id: str) -> ZenmlFacts:
    """One reading of ZenML's records of a run."""

    run = get_run(run_id)
    return zenml_facts_from(run, step_runs_of(run_id), time.time())


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
