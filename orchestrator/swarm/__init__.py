"""The `my_swarm` flavor's running code: the same pipelines on a Docker Swarm cluster.

Each step attempt becomes one Swarm service whose single task runs the step
once (Swarm never restarts it: retries stay the runner's). The pure parts of
`orchestrator.running` (run plan, DAG scheduler, container spec, labels, step
logs, ZenML reporting) are reused as they are; what differs is here:

- settings.py: what users may set (placement constraints, service mode, ...),
  and where the registered orchestrator runs (`SwarmCluster`, plain data);
- service_spec.py: pure: a step's container spec and resources -> the
  arguments of docker-py's `services.create`;
- cluster.py: the swarm seen from the client: nodes, stores every node must
  reach, services and tasks found by labels, cleanup on every node;
- planning.py: ZenML's snapshot -> a `SwarmPlan`;
- runner.py: the loop: create services, follow tasks and logs, retries,
  timeouts, stop, interrupt, cleanup;
- pipeline_run.py: one run from `submit_pipeline` to its end, here or in
  the detached orchestration process of `orchestrator.running.detached`
  (`synchronous=False`: `swarm_run_functions`), and its services removed
  when it is stopped or its orchestration process died.

Its runs are watched by `orchestrator.status` (`swarm_source` reads their
tasks from the manager, `swarm_text` adds each attempt's node to the text
view): status stands on swarm, never the other way round.
"""
