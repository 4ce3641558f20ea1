"""my_docker: a ZenML orchestrator flavor that runs each step in its own Docker container.

Modules, in the order data flows through them:

- `my_docker_orchestrator`: the flavor, its settings and the orchestrator (ZenML glue)
- `planning`: a compiled pipeline -> a run plan (checked before anything starts)
- `dag`: which steps may start now; failures, retries, stops (pure logic)
- `container_spec`: settings -> `docker create` arguments (pure logic)
- `containers`: a step as a container (docker-py)
- `runner`: the loop that runs the plan
- `zenml_bridge`: statuses ZenML cannot see for itself, stop requests
- `engine`, `base_image`: a Docker engine and a parent image, offline
- `status`: a run's live step status, a pure model and reducer; `status_zenml` and
  `run_watcher` feed it from ZenML and Docker; `status_text`, `status_cli` and
  `widget` show it
"""

__version__ = "0.1.0"
