"""Run status: what each step of a pipeline run is doing, from its containers and ZenML.

Modules, from facts to views:

- `model`: the status of a run's steps, a pure model and reducer (facts in,
  phases out), the one place where a step's phase is decided;
- `records`: every read of ZenML's records of runs (paginated);
- `watcher`: follows a run live (Docker's event stream, ZenML polls, logs);
- `fetch`: ZenML's `fetch_status`, from the same facts and rules;
- `text`, `widget`, `cli`: the views: text, the ipywidgets panel, and
  ``python -m orchestrator.status``.
"""
