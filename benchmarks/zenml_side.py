"""The ZenML half of the benchmark: register stacks, build images, run one pipeline.

`run_benchmarks.py` calls this module in a child process for every action
(`python -m benchmarks.zenml_side setup|build|run ...`), with the private
ZENML_CONFIG_PATH and the private project folder as working directory. A fresh
process per run keeps ZenML's very chatty output in a log file instead of the
benchmark's table, and means no run inherits state (threads, caches, open
database connections) from the run before it. The child writes what it
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
  snapshot and run creation, code upload, then the orchestration above. Not
  the image build: the build is made once, before the measured runs, and
  passed as `build=<id>`, because without a container registry ZenML would
  rebuild it (~10 s cached) on every run for either orchestrator.
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

from orchestrator.status.records import epoch_seconds

MY_STACK = "my_stack"
BUILTIN_STACK = "builtin_stack"
MY_ORCHESTRATOR = "my_docker_orchestrator"
BUILTIN_ORCHESTRATOR = "builtin_docker"
IMAGE_BUILDER = "bench_image_builder"
# Label put on local_docker's step containers, which it leaves behind, so that
# the benchmark removes exactly its own containers and nobody else's.
BENCH_LABEL = "io.my-docker.benchmark"

# The benchmarked pipelines and the output their last step must produce.
PIPELINES = {
    "fan_out": ("fan_out_pipeline", "join_six", 6),
    "chain": ("chain_pipeline", "increment_5", 6),
    # The example pipeline of `make demo` (count=5, seconds=2 by default).
    "demo": ("demo_pipeline", "total", 60),
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


def _settings(stack: str, parent_image: str, repository: str, label_value: str,
              max_parallelism: Optional[int], cgroup_parent: Optional[str] = None
              ) -> Dict[str, Any]:
    """Pipeline settings: the same image settings for both orchestrators.

    The images get a repository name of their own (not ZenML's default
    `zenml`), so that nobody else's build of the same pipeline (same tag
    `zenml:<pipeline>-orchestrator`) can replace the image between our runs.

    local_docker gets our package mounted exactly as `my_docker` mounts it
    (planning.py), because the example pipelines live in it and its
    containers must import them too. `cgroup_parent` (the same for both) puts
    a run's step containers under one cgroup whose CPU counter outlives them.
    """
    from zenml.config import DockerSettings

    import orchestrator
    from orchestrator.running.container_spec import PACKAGE_MOUNT_ROOT

    package_dir = Path(orchestrator.__file__).resolve().parent

    settings: Dict[str, Any] = {
        "docker": DockerSettings(parent_image=parent_image, target_repository=repository)
    }
    extra_run_args = {"cgroup_parent": cgroup_parent} if cgroup_parent else {}
    if stack == BUILTIN_STACK:
        settings["orchestrator.local_docker"] = {
            "run_args": {
                "volumes": {
                    str(package_dir): {"bind": f"{PACKAGE_MOUNT_ROOT}/orchestrator", "mode": "ro"}
                },
                "environment": {"PYTHONPATH": PACKAGE_MOUNT_ROOT},
                "labels": {BENCH_LABEL: label_value},
                **extra_run_args,
            }
        }
    else:
        ours: Dict[str, Any] = {"run_args": extra_run_args}
        if max_parallelism is not None:
            ours["max_parallelism"] = max_parallelism
        settings["orchestrator.my_docker"] = ours
    return settings


def _pipeline(key: str):
    from orchestrator.teaching import examples

    return getattr(examples, PIPELINES[key][0])


def build(stack: str, pipeline_key: str, parent_image: str, repository: str) -> Dict[str, Any]:
    """Build the pipeline's image for `stack` once; the runs reuse it by id."""
    from zenml.client import Client

    Client().activate_stack(stack)
    started = time.perf_counter()
    pipeline_build = _pipeline(pipeline_key).with_options(
        settings=_settings(stack, parent_image, repository, "build", None)
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


def run(stack: str, pipeline_key: str, build_id: str, parent_image: str, repository: str,
        label_value: str, max_parallelism: Optional[int],
        cgroup_parent: Optional[str]) -> Dict[str, Any]:
    """Run the pipeline once on `stack` with the pre-built image and time it."""
    from zenml.client import Client

    Client().activate_stack(stack)
    _, last_step, expected = PIPELINES[pipeline_key]
    pipeline = _pipeline(pipeline_key).with_options(
        build=build_id,
        settings=_settings(stack, parent_image, repository, label_value, max_parallelism,
                           cgroup_parent),
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
    submit_at = record["submit_started_at"]
    steps: List[Dict[str, Any]] = []
    for name, step_run in pipeline_run.steps.items():
        start, end = epoch_seconds(step_run.start_time), epoch_seconds(step_run.end_time)
        steps.append({
            "name": name,
            "upstream": sorted(step_run.spec.upstream_steps),
            "status": str(step_run.status.value),
            # Seconds after submit_pipeline started, as ZenML recorded them
            # inside the container (after `import zenml` and loading the step).
            "start": None if start is None else round(start - submit_at, 3),
            "end": None if end is None else round(end - submit_at, 3),
        })
    steps.sort(key=lambda s: (s["start"] is None, s["start"]))
    if stack == MY_STACK and max_parallelism is None:
        from orchestrator.running.settings import default_parallelism

        max_parallelism = default_parallelism()
    return {
        "max_parallelism": max_parallelism if stack == MY_STACK else 1,
        "run_id": str(pipeline_run.id),
        "status": str(pipeline_run.status.value),
        "output": output,
        "output_ok": output == expected,
        "call_seconds": call_seconds,
        "orchestration_seconds": record["orchestration_seconds"],
        "submit_started_at": submit_at,
        "client_cpu_seconds": record["client_cpu_seconds"],
        "steps": steps,
    }


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.zenml_side")
    parser.add_argument("action", choices=["setup", "build", "run"])
    parser.add_argument("--result", required=True, help="JSON file to write")
    parser.add_argument("--stack", choices=[MY_STACK, BUILTIN_STACK])
    parser.add_argument("--pipeline", choices=sorted(PIPELINES))
    parser.add_argument("--parent-image")
    parser.add_argument("--repository", default="my-docker-bench")
    parser.add_argument("--build")
    parser.add_argument("--label-value", default="")
    parser.add_argument("--max-parallelism", type=int)
    parser.add_argument("--cgroup-parent")
    args = parser.parse_args(argv)
    if args.action == "setup":
        payload = setup()
    elif args.action == "build":
        payload = build(args.stack, args.pipeline, args.parent_image, args.repository)
    else:
        payload = run(args.stack, args.pipeline, args.build, args.parent_image,
                      args.repository, args.label_value, args.max_parallelism,
                      args.cgroup_parent)
    _write(args.result, payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
