"""Running a pipeline: from ZenML's compiled snapshot to one container per step.

Modules, in the order a run flows through them:

- `settings`: what users may set, and the names the orchestrator owns;
- `builds`: ZenML's image builds, checked and leaving no container behind;
- `submission`: where a run goes on: here or detached, static or dynamic;
- `pipeline_run`: one static run from `submit_pipeline` to its end;
- `dynamic`: one dynamic run: ZenML's runner on the host, isolated steps in containers;
- `detached`: runs that do not block: a detached orchestration process and its watchdog;
- `orchestration_record`: which process orchestrates a run, and whether it lives;
- `orphans`: runs whose orchestration process died, ended;
- `planning`: a snapshot -> a typed `plan.RunPlan`, checked before anything starts;
- `plan`: the run plan and each step's container template (pure);
- `scheduler`: which steps may start now; failures, retries, stops (pure);
- `container_spec`: settings -> `docker create` arguments (pure);
- `labels`: the label schema and every container query by label;
- `containers`: a step as a container (docker-py);
- `step_logs`: a step's output, kept whole, shown folded (pure);
- `runner`: the loop that runs a plan and cleans up whatever happens;
- `reporting`: ZenML's record kept true, stop requests;
- `error_display`: our errors shown as their message.
"""
