"""Run status: what each step of a pipeline run is doing, from its containers and ZenML.

Modules, from facts to views:

- `model`: the status of a run's steps, a pure model and reducer (facts in,
  phases out), the one place where a step's phase is decided;
- `records`: every read of ZenML's records of runs (paginated);
- `watcher`: follows a run live (Docker's event stream, ZenML polls, logs,
  CPU and memory samples from `resources`; a my_swarm run's tasks on the
  swarm's manager from `swarm_source`);
- `fetch`: ZenML's `fetch_status`, from the same facts and rules;
- `timeline`, `drawing`: a run's attempts as bars, and the SVG pictures
  (graph, Gantt chart) the panel and the notebooks draw;
- `logs`: each step attempt's whole output, as the orchestrator keeps it;
- `control`: stopping a run from where it is watched (ZenML's stop path);
- `text`, `panel_html`, `widget`, `cli`: the views: text, the panel's HTML
  and its ipywidgets, and ``python -m orchestrator.status``.
"""
