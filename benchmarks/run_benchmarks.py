"""Benchmark `my_docker` against ZenML's built-in `local_docker`, in one run.

    python -m benchmarks.run_benchmarks [--repetitions N] [--quick]

Both orchestrators run the same example pipelines (`orchestrator.teaching.examples`)
on the same machine, from the same pre-built step image, registered in one
private ZENML_CONFIG_PATH and project folder. Repetitions are interleaved
(my_docker, local_docker, then the other way round in the next repetition), so
that the noise of a shared machine hits both, and medians are reported.

What is timed (see benchmarks/README.md):

- orchestration: the orchestrator's `submit_pipeline` call, which for both
  orchestrators runs every step container to its end. The image build is
  not in it: the image is built once per stack before the measured runs.
- call: the whole `pipeline()` call with that pre-built image.
- floor: `docker run --rm IMAGE python -c "import zenml"`, the least any
  one-container-per-step orchestrator pays per step.

Figures are printed as a table and written to artifacts/benchmarks.json; the
ZenML logs of every run go to artifacts/benchmark-logs/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from benchmarks.zenml_side import BENCH_LABEL, BUILTIN_STACK, MY_STACK, PIPELINES

REPO_ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO_ROOT / "artifacts"
STACK_LABELS = {MY_STACK: "my_docker", BUILTIN_STACK: "local_docker"}
STEP_COUNTS = {"fan_out": 8, "chain": 6, "demo": 4}
FAN_OUT_TARGET = 2.5  # local_docker / my_docker, fan-out
CHAIN_TARGET = 1.0  # chain: no slower than local_docker


CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_cpu_seconds(name: str) -> Optional[float]:
    """CPU seconds charged to cgroup `name` and its (possibly removed) children.

    cgroup v1's cpuacct charges every ancestor at once, so the counter of a
    run's parent cgroup still holds its containers' CPU after they are gone.
    """
    relative = name.strip("/")
    v1 = CGROUP_ROOT / "cpuacct" / relative / "cpuacct.usage"
    v2 = CGROUP_ROOT / relative / "cpu.stat"
    try:
        if v1.exists():
            return int(v1.read_text()) / 1e9
        if v2.exists():
            for line in v2.read_text().splitlines():
                if line.startswith("usage_usec"):
                    return int(line.split()[1]) / 1e6
    except (OSError, ValueError):
        pass
    return None


def remove_cgroup(name: str) -> None:
    """Remove the (empty) parent cgroup Docker created for one run."""
    relative = name.strip("/")
    for path in [*CGROUP_ROOT.glob(f"*/{relative}"), CGROUP_ROOT / relative]:
        try:
            path.rmdir()
        except OSError:
            pass  # not there, or a controller Docker did not use


class BenchmarkError(RuntimeError):
    """A benchmark step failed; the message says which and where its log is."""


def median(values: Sequence[float]) -> Optional[float]:
    return statistics.median(values) if values else None


def summary(values: Sequence[float]) -> Dict[str, Any]:
    """Median, min, max and the raw samples of one measurement."""
    return {
        "median": median(values),
        "min": min(values) if values else None,
        "max": max(values) if values else None,
        "samples": [round(v, 3) for v in values],
    }


def timeline_profile(runs: List[Dict[str, Any]]) -> Dict[str, Optional[float]]:
    """Where a run's time goes, from the step start/end times ZenML recorded.

    ZenML stamps a step's start inside its container, after the container
    started, Python imported zenml and the entrypoint prepared the step. So
    "ready -> started" (a step's start minus the latest end of its upstream
    steps) is what running one more step costs beyond its own work: the
    upstream container exiting, the orchestrator noticing, creating and
    starting the next container, `import zenml` and ZenML's preparation,
    plus any wait for a free slot (my_docker's max_parallelism) or, for
    local_docker, for the sibling steps it runs one after another.
    """
    first_start, latencies, worst, inside, tails, cpu, step_cpu = [], [], [], [], [], [], []
    for run in runs:
        steps = {s["name"]: s for s in run["steps"]
                 if s["start"] is not None and s["end"] is not None}
        if not steps:
            continue
        first_start.append(min(s["start"] for s in steps.values()))
        inside.extend(s["end"] - s["start"] for s in steps.values())
        tails.append(run["orchestration_seconds"] - max(s["end"] for s in steps.values()))
        cpu.append(run.get("client_cpu_seconds"))
        if run.get("containers_cpu_seconds") is not None:
            step_cpu.append(run["containers_cpu_seconds"] / len(run["steps"]))
        run_latencies = [
            s["start"] - max(steps[u]["end"] for u in s["upstream"])
            for s in steps.values()
            if s.get("upstream") and all(u in steps for u in s["upstream"])
        ]
        latencies.extend(run_latencies)
        if run_latencies:
            worst.append(max(run_latencies))
    return {
        "first_step_start": median(first_start),
        "ready_to_started": median(latencies),
        "ready_to_started_worst": median(worst),
        "in_step_seconds": median(inside),
        "after_last_step": median(tails),
        "client_cpu_seconds": median([c for c in cpu if c is not None]),
        "container_cpu_per_step": median(step_cpu),
    }


@dataclass
class Session:
    """One benchmark invocation: its private ZenML state, logs and results."""

    repetitions: int
    pipelines: List[str]
    max_parallelism: Optional[int]
    keep: bool
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="my-docker-bench-")))
    logs: Path = ARTIFACTS / "benchmark-logs"
    runs: List[Dict[str, Any]] = field(default_factory=list)
    floor: Dict[str, List[float]] = field(default_factory=lambda: {"import_zenml": [], "true": []})
    builds: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    loads: List[float] = field(default_factory=list)
    parent_image: str = ""
    # Whether step containers can be grouped under a cgroup of ours to count
    # their CPU (the engine must use the cgroupfs driver).
    count_container_cpu: bool = False
    _counter: int = 0

    @property
    def project(self) -> Path:
        return self.workdir / "project"

    @property
    def repository(self) -> str:
        """Image repository of this session only: removing it touches nobody else."""
        return f"my-docker-bench-{self.session_id}"

    def private_env(self) -> Dict[str, str]:
        """ZenML settings that keep all of this session's state in `workdir`."""
        return {
            "ZENML_CONFIG_PATH": str(self.workdir / "zenml-config"),
            "ZENML_ANALYTICS_OPT_IN": "false",
            "ZENML_ENABLE_REPO_INIT_WARNINGS": "false",
        }

    def env(self) -> Dict[str, str]:
        """The child processes' environment: private ZenML state, `benchmarks` importable."""
        env = dict(os.environ)
        env.update(self.private_env())
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        return env

    # -- the ZenML side, one child process per action ---------------------
    def zenml(self, action: str, name: str, *options: str) -> Dict[str, Any]:
        """Run `benchmarks.zenml_side <action>` and return the JSON it wrote."""
        self._counter += 1
        log = self.logs / f"{self._counter:02d}-{name}.log"
        result = self.workdir / f"{self._counter:02d}-{name}.json"
        command = [sys.executable, "-m", "benchmarks.zenml_side", action,
                   "--result", str(result), *options]
        with log.open("w") as out:
            code = subprocess.run(command, cwd=self.project, env=self.env(),
                                  stdout=out, stderr=subprocess.STDOUT).returncode
        if code != 0 or not result.exists():
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
            raise BenchmarkError(f"`{action}` ({name}) failed with exit code {code}; "
                                 f"log: {log}\n{tail}")
        return json.loads(result.read_text())

    def prepare(self) -> None:
        """Engine, parent image, private project with both stacks, one build each."""
        from orchestrator.machine.base_image import ensure_parent_image
        from orchestrator.machine.engine import ensure_engine

        # This process too: base_image imports zenml, which must not touch the
        # user's own ZenML configuration.
        os.environ.update(self.private_env())
        if self.logs.exists():
            shutil.rmtree(self.logs)
        self.logs.mkdir(parents=True)
        self.project.mkdir(parents=True)
        client = ensure_engine(log=lambda line: None)
        self.parent_image = ensure_parent_image(client=client, log=lambda line: None)
        self.count_container_cpu = (client.info().get("CgroupDriver") == "cgroupfs"
                                    and CGROUP_ROOT.is_dir())
        print(f"Private ZenML state in {self.workdir}; logs in {self.logs}", flush=True)
        self.zenml("setup", "setup")
        for pipeline in self.pipelines:
            for stack in (MY_STACK, BUILTIN_STACK):
                built = self.zenml("build", f"build-{pipeline}-{STACK_LABELS[stack]}",
                                   "--stack", stack, "--pipeline", pipeline,
                                   "--parent-image", self.parent_image,
                                   "--repository", self.repository)
                built["image_id"] = client.images.get(built["image"]).id
                self.builds[f"{pipeline}/{stack}"] = built
            ids = {self.builds[f"{pipeline}/{s}"]["image_id"] for s in (MY_STACK, BUILTIN_STACK)}
            if len(ids) != 1:
                raise BenchmarkError(f"The two stacks got different images for {pipeline}: {ids}")
        print(f"Step images built once (parent {self.parent_image}); "
              "both orchestrators use the same image id.", flush=True)

    # -- measurements ------------------------------------------------------
    def measure_floor(self, samples: int) -> None:
        """`docker run --rm IMAGE python -c "import zenml"` (and `true`), timed."""
        image = self.builds[f"{self.pipelines[0]}/{MY_STACK}"]["image"]
        commands = {"import_zenml": ["python", "-c", "import zenml"], "true": ["true"]}
        for _ in range(samples):
            for key, command in commands.items():
                started = time.perf_counter()
                try:
                    subprocess.run(["docker", "run", "--rm", image, *command], check=True,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                except (OSError, subprocess.CalledProcessError) as error:
                    raise BenchmarkError(f"The floor measurement `docker run --rm {image} "
                                         f"{' '.join(command)}` failed: {error}") from error
                self.floor[key].append(time.perf_counter() - started)

    def run_once(self, pipeline: str, stack: str, repetition: int) -> Dict[str, Any]:
        """One measured run, then removal of what local_docker leaves behind."""
        from orchestrator.machine.engine import connect
        from orchestrator.running.labels import find_containers

        options = ["--stack", stack, "--pipeline", pipeline,
                   "--build", self.builds[f"{pipeline}/{stack}"]["build_id"],
                   "--parent-image", self.parent_image, "--repository", self.repository,
                   "--label-value", self.session_id]
        if self.max_parallelism is not None:
            options += ["--max-parallelism", str(self.max_parallelism)]
        cgroup = f"/my-docker-bench-{self.session_id}-{self._counter + 1}"
        if self.count_container_cpu:
            options += ["--cgroup-parent", cgroup]
        load_before = os.getloadavg()[0]
        try:
            result = self.zenml("run", f"run-r{repetition}-{pipeline}-{STACK_LABELS[stack]}",
                                *options)
        finally:
            client = connect()
            leftovers = client.containers.list(
                all=True, filters={"label": f"{BENCH_LABEL}={self.session_id}"})
            for container in leftovers:  # local_docker never removes its containers
                container.remove(force=True)
            container_cpu = cgroup_cpu_seconds(cgroup) if self.count_container_cpu else None
            remove_cgroup(cgroup)
        self.loads += [load_before, os.getloadavg()[0]]
        ours_left = find_containers(client, pipeline_run_id=result["run_id"])
        result.update(pipeline=pipeline, orchestrator=STACK_LABELS[stack],
                      repetition=repetition, load_before=load_before,
                      containers_cpu_seconds=container_cpu,
                      containers_left_behind=len(leftovers) + len(ours_left))
        if result["status"] != "completed" or not result["output_ok"]:
            raise BenchmarkError(f"Run {result['run_id']} did not complete correctly: {result}")
        self.runs.append(result)
        print(f"  rep {repetition}  {pipeline:8s} {STACK_LABELS[stack]:13s} "
              f"orchestration {result['orchestration_seconds']:6.1f} s   "
              f"call {result['call_seconds']:6.1f} s   load {load_before:.1f}", flush=True)
        return result

    def run_all(self) -> None:
        floor_per_repetition = 2
        for repetition in range(1, self.repetitions + 1):
            # Alternate who goes first, so neither always runs right after a build
            # or into the same background load.
            order = [MY_STACK, BUILTIN_STACK]
            if repetition % 2 == 0:
                order.reverse()
            for pipeline in self.pipelines:
                for stack in order:
                    self.run_once(pipeline, stack, repetition)
            self.measure_floor(floor_per_repetition)

    def cleanup(self) -> None:
        """Remove this session's containers, image tags and private ZenML state."""
        from orchestrator.machine.engine import connect

        try:  # local_docker's containers of a run that was interrupted
            client = connect()
            for container in client.containers.list(
                    all=True, filters={"label": f"{BENCH_LABEL}={self.session_id}"}):
                container.remove(force=True)
        except Exception as error:  # noqa: BLE001 - cleanup must not hide results
            print(f"warning: could not remove local_docker's containers: {error}")
        if self.keep:
            print(f"Kept {self.workdir} and the {self.repository} images.")
            return
        try:
            client = connect()
            for image in client.images.list(name=self.repository):
                for tag in image.tags:
                    if tag.startswith(self.repository + ":"):
                        client.images.remove(tag, noprune=False)
        except Exception as error:  # noqa: BLE001 - cleanup must not hide results
            print(f"warning: could not remove the {self.repository} images: {error}")
        shutil.rmtree(self.workdir, ignore_errors=True)

    # -- results -------------------------------------------------------------
    def results(self) -> Dict[str, Any]:
        return summarize(
            runs=self.runs,
            floor=self.floor,
            loads=self.loads,
            meta={
                "machine": machine_info(),
                "parent_image": self.parent_image,
                "repetitions": self.repetitions,
                "max_parallelism": self.max_parallelism,
            },
        )


DEFINITIONS = {
    "orchestration_seconds": "wall time of the orchestrator's submit_pipeline call, image "
    "already built: first container created -> last container finished (plus the "
    "orchestrator's own cleanup)",
    "call_seconds": "wall time of the whole pipeline() call with the pre-built image "
    "(snapshot, run creation, code upload, orchestration)",
    "floor_import_zenml": "docker run --rm IMAGE python -c 'import zenml'",
    "floor_true": "docker run --rm IMAGE true",
    "ratio": "local_docker median / my_docker median",
    "paired_ratio": "median over repetitions of local_docker / my_docker within the same "
    "repetition",
    "best_ratio": "local_docker's fastest run / my_docker's fastest run (the least noise)",
}


def summarize(runs: List[Dict[str, Any]], floor: Dict[str, List[float]], loads: List[float],
              meta: Dict[str, Any]) -> Dict[str, Any]:
    """All figures, from the raw runs and floor samples (also used by --show)."""
    out: Dict[str, Any] = {
        "definitions": DEFINITIONS,
        **meta,
        "load_average_1min": summary(loads),
        "floor": {key: summary(values) for key, values in floor.items()},
        "pipelines": {},
        "runs": runs,
    }
    floor_median = median(floor["import_zenml"])
    for pipeline in dict.fromkeys(r["pipeline"] for r in runs):
        entry: Dict[str, Any] = {"steps": STEP_COUNTS[pipeline]}
        for label in STACK_LABELS.values():
            chosen = [r for r in runs if r["pipeline"] == pipeline and r["orchestrator"] == label]
            orchestration = [r["orchestration_seconds"] for r in chosen]
            per_step = median(orchestration) / STEP_COUNTS[pipeline] if orchestration else None
            entry[label] = {
                "orchestration_seconds": summary(orchestration),
                "call_seconds": summary([r["call_seconds"] for r in chosen]),
                "per_step_seconds": per_step,
                "per_step_over_floor": per_step / floor_median if per_step and floor_median else None,
                "profile": timeline_profile(chosen),
            }
        mine, builtin = entry["my_docker"], entry["local_docker"]
        for key in ("orchestration_seconds", "call_seconds"):
            if mine[key]["median"] and builtin[key]["median"]:
                entry[f"ratio_{key}"] = builtin[key]["median"] / mine[key]["median"]
                entry[f"best_ratio_{key}"] = builtin[key]["min"] / mine[key]["min"]
            pairs = [b / m for m, b in zip(mine[key]["samples"], builtin[key]["samples"]) if m]
            entry[f"paired_ratio_{key}"] = median(pairs)
        out["pipelines"][pipeline] = entry
    return out


def machine_info() -> Dict[str, Any]:
    """What the figures were measured on."""
    info: Dict[str, Any] = {
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gib"] = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    try:
        from importlib.metadata import version

        from orchestrator.machine.engine import connect

        info["zenml"] = version("zenml")
        info["docker_engine"] = connect().version().get("Version")
    except Exception:  # noqa: BLE001 - informational only
        pass
    return info


def _fmt(value: Optional[float], unit: str = " s", digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{unit}"


def print_report(results: Dict[str, Any]) -> None:
    machine = results["machine"]
    print()
    print("=" * 78)
    print(f"my_docker vs local_docker: medians of {results['repetitions']} interleaved "
          f"repetition(s)")
    print(f"machine: {machine.get('cores')} cores, {machine.get('cpu', '?')}, "
          f"{machine.get('memory_gib', '?')} GiB, Docker {machine.get('docker_engine', '?')}, "
          f"ZenML {machine.get('zenml', '?')}, Python {machine.get('python')}")
    load = results["load_average_1min"]
    print(f"1-min load average during runs: median {_fmt(load['median'], '', 1)} "
          f"(min {_fmt(load['min'], '', 1)}, max {_fmt(load['max'], '', 1)}): "
          "shared machine, other work ran too")
    used = sorted({r.get("max_parallelism") for r in results["runs"]
                   if r["orchestrator"] == "my_docker" and r.get("max_parallelism")})
    source = "set with --max-parallelism" if results.get("max_parallelism") else "its default"
    print(f"parent image: {results['parent_image']}; my_docker max_parallelism: "
          f"{', '.join(map(str, used)) or results.get('max_parallelism') or '?'} ({source})")
    print()
    print("orchestration = submit_pipeline wall time, image pre-built (first container")
    print("                created -> last container finished); call = whole pipeline() call")
    print()
    header = (f"{'pipeline':9s} {'orchestrator':13s} {'orchestration':>14s} {'(min-max)':>15s} "
              f"{'call':>8s} {'per step':>9s}")
    print(header)
    print("-" * len(header))
    for pipeline, entry in results["pipelines"].items():
        for label in ("my_docker", "local_docker"):
            e = entry[label]
            o = e["orchestration_seconds"]
            spread = f"({_fmt(o['min'], '')}-{_fmt(o['max'], '')})"
            print(f"{pipeline:9s} {label:13s} {_fmt(o['median']):>14s} {spread:>15s} "
                  f"{_fmt(e['call_seconds']['median']):>8s} {_fmt(e['per_step_seconds']):>9s}")
    print()
    print("ratios local_docker / my_docker (higher = my_docker faster):")
    for pipeline, entry in results["pipelines"].items():
        target = FAN_OUT_TARGET if pipeline == "fan_out" else CHAIN_TARGET
        ratio = entry.get("ratio_orchestration_seconds")
        verdict = "n/a" if ratio is None else ("MET" if ratio >= target else "MISSED")
        print(f"  {pipeline:8s} orchestration {_fmt(ratio, 'x', 2):>7s} "
              f"(paired {_fmt(entry.get('paired_ratio_orchestration_seconds'), 'x', 2)}, "
              f"best runs {_fmt(entry.get('best_ratio_orchestration_seconds'), 'x', 2)})   "
              f"call {_fmt(entry.get('ratio_call_seconds'), 'x', 2):>7s}   "
              f"target >= {target:.1f}x: {verdict}")
    print()
    floor = results["floor"]
    print(f"floor: docker run --rm IMAGE python -c 'import zenml': "
          f"{_fmt(floor['import_zenml']['median'], ' s', 2)} (median of "
          f"{len(floor['import_zenml']['samples'])}); docker run --rm IMAGE true: "
          f"{_fmt(floor['true']['median'], ' s', 2)}")
    if "chain" in results["pipelines"]:
        chain = results["pipelines"]["chain"]
        for label in ("my_docker", "local_docker"):
            e = chain[label]
            print(f"  chain per-step, {label:12s}: {_fmt(e['per_step_seconds'], ' s', 2)} = "
                  f"{_fmt(e['per_step_over_floor'], 'x', 2)} the floor")
    print()
    print("where the time goes (medians; step start/end as ZenML stamps them inside the")
    print("container, i.e. after `import zenml` and step preparation):")
    print("  ready->started: a step's start minus the end of its last upstream step;")
    print("  worst: the slowest step of a run; client CPU: the orchestrating process;")
    print("  CPU/step: CPU time of the run's step containers (cgroup) / number of steps")
    print(f"  {'pipeline':9s} {'orchestrator':13s} {'1st start':>9s} {'ready->started':>14s} "
          f"{'worst':>7s} {'in-step':>8s} {'after last':>10s} {'client CPU':>10s} "
          f"{'CPU/step':>8s}")
    for pipeline, entry in results["pipelines"].items():
        for label in ("my_docker", "local_docker"):
            p = entry[label]["profile"]
            print(f"  {pipeline:9s} {label:13s} {_fmt(p['first_step_start']):>9s} "
                  f"{_fmt(p['ready_to_started']):>14s} {_fmt(p['ready_to_started_worst']):>7s} "
                  f"{_fmt(p['in_step_seconds']):>8s} {_fmt(p['after_last_step']):>10s} "
                  f"{_fmt(p['client_cpu_seconds']):>10s} "
                  f"{_fmt(p.get('container_cpu_per_step')):>8s}")
    left = sum(r["containers_left_behind"] for r in results["runs"] if r["orchestrator"] == "my_docker")
    print(f"\nmy_docker containers left after its runs: {left}; local_docker's were removed "
          "by the benchmark (it leaves them all behind).")
    print("=" * 78)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run_benchmarks",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--repetitions", type=int, default=3,
                        help="interleaved repetitions per pipeline and orchestrator (default 3)")
    parser.add_argument("--quick", action="store_true",
                        help="one repetition: a smoke run, not figures to quote")
    parser.add_argument("--pipelines", nargs="+", choices=sorted(PIPELINES),
                        default=["fan_out", "chain"])
    parser.add_argument("--max-parallelism", type=int,
                        help="my_docker's max_parallelism (default: its own default)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the private ZenML folder and the step images")
    parser.add_argument("--output", type=Path, default=ARTIFACTS / "benchmarks.json")
    parser.add_argument("--show", type=Path, metavar="JSON",
                        help="print the report of an earlier run's JSON file and exit")
    args = parser.parse_args(argv)
    if args.show:
        saved = json.loads(args.show.read_text())
        meta = {k: saved.get(k) for k in ("machine", "parent_image", "repetitions", "max_parallelism")}
        print_report(summarize(saved["runs"], {k: v["samples"] for k, v in saved["floor"].items()},
                               saved["load_average_1min"]["samples"], meta))
        return 0
    if args.repetitions < 1:
        parser.error("--repetitions must be at least 1")
    session = Session(repetitions=1 if args.quick else args.repetitions,
                      pipelines=args.pipelines, max_parallelism=args.max_parallelism,
                      keep=args.keep)
    started = time.monotonic()
    try:
        session.prepare()
        session.run_all()
    except BenchmarkError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        session.cleanup()
    results = session.results()
    results["benchmark_seconds"] = time.monotonic() - started
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, default=str))
    print_report(results)
    print(f"Figures written to {args.output}; logs in {session.logs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
