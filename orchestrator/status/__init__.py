"""Run status: what each step of a pipeline run is doing, from its containers and ZenML.

Modules, from facts to views:

- `model`, `events`, `reducer`: the status of a run's steps as immutable
  values (every attempt of every step and how it went; resource samples),
  the facts that change it, and the pure reducer (facts in, phases out), the
  one place where a step's phase is decided;
- `records`: every read of ZenML's records of runs (paginated);
- `watcher`: follows a run live (Docker's event stream, ZenML polls, logs,
  CPU and memory samples);
- `docker_events`, `next_run`: Docker's event stream of our containers,
  shared by its readers, and finding the run a process starts next (its
  stream handed to the run's watcher);
- `resources`: a container's CPU and memory against its limits, from
  Docker's stats stream;
- `swarm_source`: a `my_swarm` run's live facts: its tasks on the swarm's
  manager as the model's events (node, container, start, exit), their
  output through the manager;
- `fetch`: ZenML's `fetch_status`, from the same facts and rules as the views;
- `timeline`, `drawing`: a run's attempts as bars, and the SVG pictures
  (graph, Gantt chart) the panel and the notebooks draw;
- `logs`: each step attempt's whole output, as the orchestrator keeps it,
  read and followed;
- `control`: stopping a run from where it is watched (ZenML's stop path);
- `text`, `panel_html`, `panel_view`, `log_view`, `cli`: the views: text
  (table and timeline), the panel's HTML, its ipywidgets and each step's log
  tab in them, and ``python -m orchestrator.status``;
- `widget`: the live panel's controller and entry points (`live_panel`,
  `watch_run`): follows a run with a watcher and drives the panel's view;
- `swarm_text`: a `my_swarm` run's text view with the node of every attempt
  (``python -m orchestrator.status.swarm_text RUN``).

ZenML's records are read through `orchestrator.zenml_records` (the layer
under both running and status); `records` puts them in the model's terms.
"""
