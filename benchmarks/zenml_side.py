"""The ZenML half of the benchmark: register stacks, build images, run one pipeline.

`run_benchmarks.py` calls this module in a child process for every action
(`python -m benchmarks.zenml_side setup|build|run|e2e ...`), with the private
ZENML_CONFIG_PATH and the private project folder as working directory. A fresh
process per run keeps ZenML's very chatty output in a log file instead of the
benchmark's table, and means no run inherits state (threads, caches, open
database connections) from the run before it. Which `orchestrator` package the
child imports (this checkout, or an earlier one given with `--baseline`) is
decided by the PYTHONPATH the parent gives it. The child writes what it
measured as JSON to the `--result` file.

Timings taken here (all wall clock, `time.perf_counter`):

- ``orchestration_seconds``: the duration of the orchestrator's
  `submit_pipeline` call. ZenML hands it the compiled snapshot, with the image
  already built; both `my_docker` and `local_docker` run every step to its
  end inside that call, so this is "first container created -> last container
  finished" plus the orchestrator's own bookkeeping (for `my_docker`: removing
  its containers; `local_docker` leaves them behind).
- ``client_cpu_seconds``: CPU time the client process (the orchestrator's
  own loop and threads, not the step containers) used during that call.
- ``call_seconds``: the whole `pipeline()` call with the pre-built image:
  snapshot and run creation, code upload, then the orchestration above.
- ``e2e``: the whole `pipeline()` call of the demo pipeline, image build
  included, twice in a row in one process (first and second call), as a user
  iterating in a notebook calls it.

Per step it also returns ZenML's recorded start and end, Docker's created /
started / finished times (local_docker leaves its containers, which are read
here; my_docker writes them to its run's `timings.json`, returned as is).
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import resource
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

from orchestrator.zenml_records import epoch_seconds

MY_STACK = "my_stack"
BUILTIN_STACK = "builtin_stack"
MY_ORCHESTRATOR = "my_docker_orchestrator"
BUILTIN_ORCHESTRATOR = "builtin_docker"
IMAGE_BUILDER = "bench_image_builder"
# Label put on local_docker's step containers, which it leaves behind, so that
# the benchmark removes exactly its own containers and nobody else's.
BENCH_LABEL = "io.my-docker.benchmark"
# The module of the pandas/scikit-learn pipelines, copied into the project
# folder, and the modules its steps import (for the import floor).
ML_MODULE = "ml_workload"
ML_LIBRARIES = ("pandas", "sklearn.datasets", "sklearn.linear_model",
                "sklearn.model_selection", "sklearn.preprocessing")


def _equals(expected: Any) -> Callable[[Any], bool]:
    return lambda value: value == expected


def _plausible_accuracy(value: Any) -> bool:
    return isinstance(value, float) and 0.6 <= value <= 1.0


# key -> (module, pipeline, last step, check of its output, uses the ML image)
PIPELINES = {
    "fan_out": ("orchestrator.teaching.examples", "fan_out_pipeline", "join_six", _equals(6), False),
    "chain": ("orchestrator.teaching.examples", "chain_pipeline", "increment_5", _equals(6), False),
    # The example pipeline of `make demo` (count=5, seconds=2 by default).
    "demo": ("orchestrator.teaching.examples", "demo_pipeline", "total", _equals(60), False),
    "ml_chain": (ML_MODULE, "ml_chain_pipeline", "fit_score", _plausible_accuracy, True),
    "ml_fan_out": (ML_MODULE, "ml_fan_out_pipeline", "best_of", _plausible_accuracy, True),
}


def _write(path: str, payload: Dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(payload, indent=2, default=str))


def setup() -> Dict[str, Any]:
    """Register both orchestrators and one stack for each in this project.

    The CLI equivalent:
        zenml init
        zenml orchestrator flavor register orchestrator.my_docker_orchestrator.MyDockerOrchestratorFlavor
        zenml orchestrator register my_docker_orchestrator -f my_docker
        zenml orchestrator register builtin_docker -f local_docker
        zenml image-builder register bench_image_builder -f local
        zenml stack register my_stack -o my_docker_orchestrator -a default -i bench_image_builder
        zenml stack register builtin_stack -o builtin_docker -a default -i bench_image_builder

    Both stacks share the artifact store, the image builder and therefore the
    images: local_docker requires an image builder in its stack, and giving
    ours the same one keeps the comparison about orchestration only.
    """
    from zenml.client import Client
    from zenml.enums import StackComponentType as T

    Client.initialize(root=Path.cwd())
    client = Client()
    client.create_flavor(
        source="orchestrator.my_docker_orchestrator.MyDockerOrchestratorFlavor",
        component_type=T.ORCHESTRATOR,
    )
    client.create_stack_component(MY_ORCHESTRATOR, "my_docker", T.ORCHESTRATOR, {})
    client.create_stack_component(BUILTIN_ORCHESTRATOR, "local_docker", T.ORCHESTRATOR, {})
    client.create_stack_component(IMAGE_BUILDER, "local", T.IMAGE_BUILDER, {})
    for stack, orchestrator in ((MY_STACK, MY_ORCHESTRATOR), (BUILTIN_STACK, BUILTIN_ORCHESTRATOR)):
        client.create_stack(
            stack,
            components={
                T.ORCHESTRATOR: orchestrator,
                T.ARTIFACT_STORE: "default",
                T.IMAGE_BUILDER: IMAGE_BUILDER,
            },
        )
    return {"stacks": [MY_STACK, BUILTIN_STACK]}


def _docker_settings(pipeline_key: str, parent_image: str, repository: str,
                     environment: Optional[Dict[str, str]] = None) -> Any:
    """The same image settings for both orchestrators.

    The images get a repository name of their own (not ZenML's default
    `zenml`), so that nobody else's build of the same pipeline (same tag
    `zenml:<pipeline>-orchestrator`) can replace the image between our runs.
    Bytecode compilation is asked for explicitly, so that both stacks build
    the same image (my_docker asks for it by itself, local_docker does not).
    The ML pipelines get ZenML's pandas and scikit-learn integrations, as a
    user's image would.
    """
    from zenml.config import DockerSettings
    from zenml.integrations.constants import PANDAS, SKLEARN

    ml = PIPELINES[pipeline_key][4]
    return DockerSettings(
        parent_image=parent_image, target_repository=repository,
        python_package_installer_args={"compile-bytecode": None},
        required_integrations=[SKLEARN, PANDAS] if ml else [],
        environment=environment or {},
    )


def _settings(pipeline_key: str, stack: str, parent_image: str, repository: str,
              label_value: str, max_parallelism: Optional[int],
              cgroup_parent: Optional[str] = None,
              orchestrator_settings: Optional[Dict[str, Any]] = None,
              environment: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """Pipeline settings: the same image settings for both orchestrators.

    local_docker gets our package mounted exactly as `my_docker` mounts it
    (planning.py), because the example pipelines live in it and its
    containers must import them too. `cgroup_parent` (the same for both) puts
    a run's step containers under one cgroup whose CPU counter outlives them.
    """
    import os
    import socket

    import orchestrator
    from orchestrator.running.container_spec import PACKAGE_MOUNT_ROOT
    from orchestrator.running.labels import CLIENT_HOST_LABEL, CLIENT_PID_LABEL

    package_dir = Path(orchestrator.__file__).resolve().parent

    settings: Dict[str, Any] = {
        "docker": _docker_settings(pipeline_key, parent_image, repository, environment)
    }
    extra_run_args = {"cgroup_parent": cgroup_parent} if cgroup_parent else {}
    if stack == BUILTIN_STACK:
        settings["orchestrator.local_docker"] = {
            "run_args": {
                "volumes": {
                    str(package_dir): {"bind": f"{PACKAGE_MOUNT_ROOT}/orchestrator", "mode": "ro"}
                },
                "environment": {"PYTHONPATH": PACKAGE_MOUNT_ROOT},
                # The client labels tell other test sessions' leftover checks
                # (tests/leftovers.py) that a live process still collects them:
                # unlabelled, an exited one was removed before ZenML read its logs.
                "labels": {BENCH_LABEL: label_value, CLIENT_HOST_LABEL: socket.gethostname(),
                           CLIENT_PID_LABEL: str(os.getpid())},
                **extra_run_args,
            }
        }
    else:
        ours: Dict[str, Any] = {"run_args": extra_run_args, **(orchestrator_settings or {})}
        if max_parallelism is not None:
            ours["max_parallelism"] = max_parallelism
        settings["orchestrator.my_docker"] = ours
    return settings


def _pipeline(key: str):
    import importlib

    module, name = PIPELINES[key][:2]
    return getattr(importlib.import_module(module), name)


def build(stack: str, pipeline_key: str, parent_image: str, repository: str) -> Dict[str, Any]:
    """Build the pipeline's image for `stack` once; the runs reuse it by id."""
    from zenml.client import Client

    Client().activate_stack(stack)
    started = time.perf_counter()
    pipeline_build = _pipeline(pipeline_key).with_options(
        settings=_settings(pipeline_key, stack, parent_image, repository, "build", None)
    ).build()
    if pipeline_build is None:
        raise RuntimeError("ZenML built no image for this pipeline.")
    return {
        "build_id": str(pipeline_build.id),
        "image": pipeline_build.get_image(component_key="orchestrator"),
        "build_seconds": time.perf_counter() - started,
    }


def _cpu_seconds() -> float:
    """CPU time (user + system, all threads) this client process used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def timed_submissions(record: Dict[str, float]) -> Iterator[None]:
    """Time `submit_pipeline` of both orchestrator classes (instrumentation only).

    The wrapper calls the real method unchanged and notes when it started, how
    long it took and how much CPU the client process (the orchestrator's own
    loop and threads, not the step containers) used meanwhile.
    """
    from zenml.orchestrators.local_docker.local_docker_orchestrator import (
        LocalDockerOrchestrator,
    )

    from orchestrator.my_docker_orchestrator import MyDockerOrchestrator

    originals = {cls: cls.__dict__["submit_pipeline"] for cls in
                 (MyDockerOrchestrator, LocalDockerOrchestrator)}

    def wrap(original):
        @functools.wraps(original)
        def timed(self, *args, **kwargs):
            record["submit_started_at"] = time.time()
            cpu = _cpu_seconds()
            started = time.perf_counter()
            try:
                return original(self, *args, **kwargs)
            finally:
                record["orchestration_seconds"] = time.perf_counter() - started
                record["client_cpu_seconds"] = _cpu_seconds() - cpu
        return timed

    for cls, original in originals.items():
        cls.submit_pipeline = wrap(original)
    try:
        yield
    finally:
        for cls, original in originals.items():
            cls.submit_pipeline = original


def _step_records(pipeline_run: Any, submit_at: float) -> List[Dict[str, Any]]:
    """Each step's ZenML record: status, upstream steps, start and end (epoch seconds)."""
    steps: List[Dict[str, Any]] = []
    for name, step_run in pipeline_run.steps.items():
        steps.append({
            "name": name,
            "upstream": sorted(step_run.spec.upstream_steps),
            "status": str(step_run.status.value),
            # As ZenML recorded them inside the container (after `import
            # zenml` and loading the step), in epoch seconds; the run's
            # relative times are derived by the parent.
            "zenml_start": epoch_seconds(step_run.start_time),
            "zenml_end": epoch_seconds(step_run.end_time),
        })
    for step in steps:
        start, end = step["zenml_start"], step["zenml_end"]
        step["start"] = None if start is None else round(start - submit_at, 3)
        step["end"] = None if end is None else round(end - submit_at, 3)
    steps.sort(key=lambda s: (s["start"] is None, s["start"]))
    return steps


def _left_containers(label_value: str) -> List[Dict[str, Any]]:
    """Docker's times of local_docker's containers (it leaves them), by step."""
    from orchestrator.machine.engine import connect
    from orchestrator.running.step_timing import docker_time

    found = []
    for container in connect().containers.list(
            ignore_removed=True, all=True, filters={"label": f"{BENCH_LABEL}={label_value}"}):
        args = " ".join(container.attrs.get("Args") or [])
        match = re.search(r"--step_name (\S+)", args)
        state = container.attrs.get("State") or {}
        found.append({"step": match.group(1) if match else "?",
                      "docker_created": docker_time(container.attrs.get("Created")),
                      "docker_started": docker_time(state.get("StartedAt")),
                      "docker_finished": docker_time(state.get("FinishedAt"))})
    return found


def _my_docker_timings(run_id: str) -> Optional[List[Dict[str, Any]]]:
    """The run's `timings.json` as the runner wrote it (None for a package without it)."""
    from zenml.config.global_config import GlobalConfiguration

    path = Path(GlobalConfiguration().config_directory) / "my_docker" / "runs" / run_id / "timings.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def run(stack: str, pipeline_key: str, build_id: str, parent_image: str, repository: str,
        label_value: str, max_parallelism: Optional[int], cgroup_parent: Optional[str],
        orchestrator_settings: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """Run the pipeline once on `stack` with the pre-built image and time it."""
    from zenml.client import Client

    Client().activate_stack(stack)
    last_step, check = PIPELINES[pipeline_key][2:4]
    pipeline = _pipeline(pipeline_key).with_options(
        build=build_id,
        settings=_settings(pipeline_key, stack, parent_image, repository, label_value,
                           max_parallelism, cgroup_parent, orchestrator_settings),
    )
    record: Dict[str, float] = {}
    with timed_submissions(record):
        started = time.perf_counter()
        response = pipeline()
        call_seconds = time.perf_counter() - started
    if "orchestration_seconds" not in record:
        raise RuntimeError("The orchestrator's submit_pipeline was never called.")
    pipeline_run = Client().get_pipeline_run(response.id)
    output = pipeline_run.steps[last_step].output.load()
    if stack == MY_STACK and max_parallelism is None:
        from orchestrator.running.settings import default_parallelism

        max_parallelism = default_parallelism()
    return {
        "max_parallelism": max_parallelism if stack == MY_STACK else 1,
        "run_id": str(pipeline_run.id),
        "status": str(pipeline_run.status.value),
        "output": output,
        "output_ok": bool(check(output)),
        "call_seconds": call_seconds,
        "orchestration_seconds": record["orchestration_seconds"],
        "submit_started_at": record["submit_started_at"],
        "client_cpu_seconds": record["client_cpu_seconds"],
        "steps": _step_records(pipeline_run, record["submit_started_at"]),
        "timings": _my_docker_timings(str(pipeline_run.id)) if stack == MY_STACK else None,
        "containers": _left_containers(label_value) if stack == BUILTIN_STACK else None,
    }


def end_to_end(stack: str, parent_image: str, repository: str, label_value: str,
               build_variant: str,
               orchestrator_settings: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """The demo pipeline's whole `pipeline()` call, image build included, twice.

    `build_variant` goes into the image's environment, so that the first call
    of each repetition and orchestrator really builds (neither an earlier
    repetition's image nor the other orchestrator's can be reused), as a
    user's first call after changing the Docker settings does.
    """
    from zenml.client import Client

    Client().activate_stack(stack)
    last_step, check = PIPELINES["demo"][2:4]
    pipeline = _pipeline("demo").with_options(settings=_settings(
        "demo", stack, parent_image, repository, label_value, None, None,
        orchestrator_settings, environment={"MY_DOCKER_BENCH_BUILD": build_variant}))
    calls = []
    for _ in range(2):
        record: Dict[str, float] = {}
        with timed_submissions(record):
            started = time.perf_counter()
            response = pipeline()
            seconds = time.perf_counter() - started
        pipeline_run = Client().get_pipeline_run(response.id)
        output = pipeline_run.steps[last_step].output.load()
        calls.append({"call_seconds": seconds,
                      "orchestration_seconds": record.get("orchestration_seconds"),
                      "run_id": str(pipeline_run.id), "status": str(pipeline_run.status.value),
                      "output_ok": bool(check(output)),
                      "image": pipeline_run.build.get_image(component_key="orchestrator")
                      if pipeline_run.build else None})
    return {"calls": calls}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.zenml_side")
    parser.add_argument("action", choices=["setup", "build", "run", "e2e"])
    parser.add_argument("--result", required=True, help="JSON file to write")
    parser.add_argument("--stack", choices=[MY_STACK, BUILTIN_STACK])
    parser.add_argument("--pipeline", choices=sorted(PIPELINES))
    parser.add_argument("--parent-image")
    parser.add_argument("--repository", default="my-docker-bench")
    parser.add_argument("--build")
    parser.add_argument("--label-value", default="")
    parser.add_argument("--max-parallelism", type=int)
    parser.add_argument("--cgroup-parent")
    parser.add_argument("--orchestrator-settings", type=json.loads, default=None,
                        help="extra my_docker settings, as JSON")
    parser.add_argument("--build-variant", default="")
    args = parser.parse_args(argv)
    if args.action == "setup":
        payload = setup()
    elif args.action == "build":
        payload = build(args.stack, args.pipeline, args.parent_image, args.repository)
    elif args.action == "e2e":
        payload = end_to_end(args.stack, args.parent_image, args.repository, args.label_value,
                             args.build_variant, args.orchestrator_settings)
    else:
        payload = run(args.stack, args.pipeline, args.build, args.parent_image,
                      args.repository, args.label_value, args.max_parallelism,
                      args.cgroup_parent, args.orchestrator_settings)
    _write(args.result, payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
