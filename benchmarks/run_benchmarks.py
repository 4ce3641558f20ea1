"""Benchmark `my_docker` against ZenML's built-in `local_docker`, in one run.

    python -m benchmarks.run_benchmarks [--repetitions N] [--quick]

Both orchestrators run the same example pipelines (`orchestrator.examples`)
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
STEP_COUNTS = {"fan_out": 8, "chain": 6}
FAN_OUT_TARGET = 2.5  # local_docker / my_docker, fan-out
CHAIN_TARGET = 1.0  # chain: no slower than local_docker


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
    started, Python imported zenml and the entrypoint loaded the snapshot; so
    for a chain, the gap between one step's end and the next step's start is
    the orchestrator's per-step overhead beyond the step's own work.
    """
    first_start, gaps, inside, tails = [], [], [], []
    for run in runs:
        steps = [s for s in run["steps"] if s["start"] is not None and s["end"] is not None]
        if not steps:
            continue
        first_start.append(steps[0]["start"])
        inside.extend(s["end"] - s["start"] for s in steps)
        tails.append(run["orchestration_seconds"] - max(s["end"] for s in steps))
        ordered = sorted(steps, key=lambda s: s["start"])
        gaps.extend(b["start"] - a["end"] for a, b in zip(ordered, ordered[1:]))
    return {
        "first_step_start": median(first_start),
        "gap_between_consecutive_steps": median(gaps),
        "in_step_seconds": median(inside),
        "after_last_step": median(tails),
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
    _counter: int = 0

    @property
    def project(self) -> Path:
        return self.workdir / "project"

    @property
    def repository(self) -> str:
        """Image repository of this session only: removing it touches nobody else."""
        return f"my-docker-bench-{self.session_id}"

    def env(self) -> Dict[str, str]:
        env = dict(os.environ)
        env.update(
            ZENML_CONFIG_PATH=str(self.workdir / "zenml-config"),
            ZENML_ANALYTICS_OPT_IN="false",
            ZENML_ENABLE_REPO_INIT_WARNINGS="false",
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
        )
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
        from orchestrator.base_image import ensure_parent_image
        from orchestrator.engine import ensure_engine

        if self.logs.exists():
            shutil.rmtree(self.logs)
        self.logs.mkdir(parents=True)
        self.project.mkdir(parents=True)
        client = ensure_engine(log=lambda line: None)
        self.parent_image = ensure_parent_image(client=client, log=lambda line: None)
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
                subprocess.run(["docker", "run", "--rm", image, *command], check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                self.floor[key].append(time.perf_counter() - started)

    def run_once(self, pipeline: str, stack: str, repetition: int) -> Dict[str, Any]:
        """One measured run, then removal of what local_docker leaves behind."""
        from orchestrator.containers import find_containers
        from orchestrator.engine import connect

        options = ["--stack", stack, "--pipeline", pipeline,
                   "--build", self.builds[f"{pipeline}/{stack}"]["build_id"],
                   "--parent-image", self.parent_image, "--repository", self.repository,
                   "--label-value", self.session_id]
        if self.max_parallelism is not None:
            options += ["--max-parallelism", str(self.max_parallelism)]
        load_before = os.getloadavg()[0]
        result = self.zenml("run", f"run-r{repetition}-{pipeline}-{STACK_LABELS[stack]}", *options)
        self.loads += [load_before, os.getloadavg()[0]]
        client = connect()
        leftovers = client.containers.list(
            all=True, filters={"label": f"{BENCH_LABEL}={self.session_id}"})
        for container in leftovers:  # local_docker never removes its containers
            container.remove(force=True)
        ours_left = find_containers(client, pipeline_run_id=result["run_id"])
        result.update(pipeline=pipeline, orchestrator=STACK_LABELS[stack],
                      repetition=repetition, load_before=load_before,
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
        """Remove this session's image tags and private ZenML state."""
        from orchestrator.engine import connect

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
        out: Dict[str, Any] = {
            "definitions": {
                "orchestration_seconds": "wall time of the orchestrator's submit_pipeline "
                "call, image already built: first container created -> last container "
                "finished (plus the orchestrator's own cleanup)",
                "call_seconds": "wall time of the whole pipeline() call with the "
                "pre-built image (snapshot, run creation, code upload, orchestration)",
                "floor_import_zenml": "docker run --rm IMAGE python -c 'import zenml'",
                "floor_true": "docker run --rm IMAGE true",
                "ratio": "local_docker median / my_docker median",
                "paired_ratio": "median over repetitions of local_docker / my_docker "
                "within the same repetition",
            },
            "machine": machine_info(),
            "load_average_1min": summary(self.loads),
            "parent_image": self.parent_image,
            "repetitions": self.repetitions,
            "max_parallelism": self.max_parallelism,
            "floor": {key: summary(values) for key, values in self.floor.items()},
            "pipelines": {},
            "runs": self.runs,
        }
        floor = median(self.floor["import_zenml"])
        for pipeline in self.pipelines:
            entry: Dict[str, Any] = {"steps": STEP_COUNTS[pipeline]}
            for label in STACK_LABELS.values():
                runs = [r for r in self.runs if r["pipeline"] == pipeline and r["orchestrator"] == label]
                orchestration = [r["orchestration_seconds"] for r in runs]
                per_step = median(orchestration) / STEP_COUNTS[pipeline] if orchestration else None
                entry[label] = {
                    "orchestration_seconds": summary(orchestration),
                    "call_seconds": summary([r["call_seconds"] for r in runs]),
                    "per_step_seconds": per_step,
                    "per_step_over_floor": per_step / floor if per_step and floor else None,
                    "profile": timeline_profile(runs),
                }
            mine, builtin = entry["my_docker"], entry["local_docker"]
            for key in ("orchestration_seconds", "call_seconds"):
                if mine[key]["median"] and builtin[key]["median"]:
                    entry[f"ratio_{key}"] = builtin[key]["median"] / mine[key]["median"]
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
        import zenml

        from orchestrator.engine import connect

        info["zenml"] = zenml.__version__
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
    print(f"parent image: {results['parent_image']}; my_docker max_parallelism: "
          f"{results['max_parallelism'] or 'default (2 per core)'}")
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
              f"(paired {_fmt(entry.get('paired_ratio_orchestration_seconds'), 'x', 2)})   "
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
    print("where the time goes (medians, from ZenML's step start/end stamps, which are")
    print("taken inside the container after `import zenml` and loading the step):")
    print(f"  {'pipeline':9s} {'orchestrator':13s} {'1st step starts':>16s} "
          f"{'gap end->start':>15s} {'in-step':>8s} {'after last':>11s}")
    for pipeline, entry in results["pipelines"].items():
        for label in ("my_docker", "local_docker"):
            p = entry[label]["profile"]
            print(f"  {pipeline:9s} {label:13s} {_fmt(p['first_step_start']):>16s} "
                  f"{_fmt(p['gap_between_consecutive_steps']):>15s} "
                  f"{_fmt(p['in_step_seconds']):>8s} {_fmt(p['after_last_step']):>11s}")
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
    args = parser.parse_args(argv)
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
