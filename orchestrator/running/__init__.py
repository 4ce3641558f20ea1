"""Running a pipeline: from ZenML's compiled snapshot to one container per step.

Modules, in the order a run flows through them:

- `settings`: what users may set (`MyDockerOrchestratorSettings`), and the
  names the orchestrator owns;
- `request`: what a run asks for (settings, images, environments, run
  identity), resolved once by the flavor: plain data handed down;
- `builds`: ZenML's image builds on our stack: the parent image checked and
  never pulled when it is on the engine, bytecode compiled, builds reused
  without a registry, no intermediate container left;
- `submission`: where a run goes on: in the call or detached; with which
  flavor's run function (`my_docker`'s static or dynamic run, or `my_swarm`'s);
- `run_functions`: which functions run a flavor's run, check it and end it
  once orphaned, named so that a detached process finds them again;
- `pipeline_run`: one static run, from `submit_pipeline` to its end;
- `dynamic`: one dynamic run: ZenML's runner on the host, each isolated step
  in its own container;
- `isolated_steps`, `isolated_containers`, `isolated_records`: ZenML's
  isolated-step methods as the flavor hands them over; each isolated step's
  container started, followed, settled, stopped, removed, and its status;
  the step's ZenML record read and written where the step could not;
- `dynamic_stops`, `isolated_futures`: a dynamic run stopped (Ctrl-C, a stop
  requested elsewhere, `zenml pipeline runs stop`); a prompt `future.load()`
  (a patch of one private ZenML method);
- `detached`, `orchestration_record`, `orphans`: runs that do not block (on
  both flavors): the detached orchestration process and its watchdog, which
  process orchestrates a run, runs whose orchestrator died ended as failed;
- `planning`: a snapshot -> a typed `plan.RunPlan`, checked by the engine
  before any step starts;
- `plan`: the run plan and each step's container template (pure dataclasses);
- `scheduler`: which steps may start now; failures, retries, stops (pure,
  property-tested);
- `early_start`, `gates`: which step containers start before their upstream
  steps succeeded (pure rules), and the gates they wait at;
- `container_spec`: settings -> `docker create` arguments, the environment
  merge, container names (pure);
- `labels`: the label schema and every container query by label;
- `containers`: a step as a container: create, start, logs, wait, stop,
  remove; image checks;
- `step_entrypoint`, `step_timing`: the command every step container runs
  (ZenML's entrypoint, warmed up, timed), and where a step's time went;
- `step_logs`: a step's output, kept whole in a file, shown with tracebacks folded;
- `runner`: the loop that runs a plan and cleans up whatever happens;
- `attempt_output`: one attempt's output followed while its container runs
  (kept in its log file, shown folded, its marker lines read);
- `run_hooks`, `run_outcome`: how a run loop reports what happens (ZenML's
  side: `reporting`), and the error a run that did not succeed raises;
- `signals`: SIGTERM and SIGHUP as Ctrl-C while a run loop runs (the docker and
  swarm runners), and a second signal that hurries the cleanup;
- `verdict`: what an ended attempt was (succeeded, stopped, failed; ZenML's
  record has the last word), one rule for containers and Swarm tasks;
- `reporting`: ZenML's record kept true (statuses a step cannot write
  itself), stop requests;
- `error_display`: our own errors printed as their message, in a terminal
  and in notebooks.
"""
