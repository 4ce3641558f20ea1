"""Benchmark `my_docker` against ZenML's built-in `local_docker`, in one run.

    python -m benchmarks.run_benchmarks [--repetitions N] [--quick]
        [--pipelines fan_out chain ml_chain ml_fan_out demo e2e]
        [--baseline PATH] [--without-early-start]

Every orchestrator runs the same pipelines on the same machine, from the same
pre-built step image, registered in one private ZENML_CONFIG_PATH and project
folder. Repetitions are interleaved (one orchestrator after the other, the
order reversed in the next repetition), so that the noise of a shared machine
hits all of them, and medians are reported. Besides `my_docker` (this
checkout) and `local_docker`, a run can include `my_docker` with
`start_early=False` and an earlier version of the package (`--baseline`, a
folder holding an `orchestrator` package, e.g. `git archive <commit>
orchestrator | tar -x -C DIR`), so that a change is measured before and after
in the same run.

What is timed (see benchmarks/README.md):

- orchestration: the orchestrator's `submit_pipeline` call, which for both
  orchestrators runs every step container to its end. The image build is
  not in it: the image is built once per stack before the measured runs.
- call: the whole `pipeline()` call with that pre-built image.
- e2e: the demo pipeline's whole `pipeline()` call, image build included,
  first and second call in a row.
- floor: `docker run --rm IMAGE python -c "import zenml"` (for the pandas
  and scikit-learn pipelines: the same image importing those libraries too),
  the least any one-container-per-step orchestrator pays per step.
- the per-step breakdown: from Docker's, ZenML's, the orchestrator's and the
  step container's own clocks (`orchestrator.running.step_timing`).

Figures are printed as tables and written to artifacts/benchmarks.json; the
ZenML logs of every run go to artifacts/benchmark-logs/.
"""

from __future__ import annotations

import argparse
import importlib.util
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
from typing import Any, Dict, List, Optional, Sequence, Tuple

from benchmarks.zenml_side import (
    BENCH_LABEL,
    BUILTIN_STACK,
    ML_LIBRARIES,
    ML_MODULE,
    MY_STACK,
    PIPELINES,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO_ROOT / "artifacts"
STEP_COUNTS = {"fan_out": 8, "chain": 6, "demo": 4, "ml_chain": 6, "ml_fan_out": 8}
CHAINS = ("chain", "ml_chain")
RUN_PIPELINES = tuple(PIPELINES)
ALL_PIPELINES = (*RUN_PIPELINES, "e2e")
DEFAULT_PIPELINES = ("fan_out", "chain", "ml_chain", "ml_fan_out", "e2e")
# Targets (issue 11), printed as ratios measured in the same run, never asserted.
FAN_OUT_TARGET = 2.5  # local_docker / my_docker, fan-out: at least
CHAIN_TARGET = 0.6  # my_docker / local_docker, chain time: at most
FLOOR_TARGET = 1.3  # my_docker per step / floor, chains: at most
E2E_SECOND_CALL_TARGET = 0.4  # my_docker / local_docker, demo's second call: at most

MY = "my_docker"
NO_EARLY = "my_docker, start_early=False"
BASELINE = "my_docker, baseline"
BUILTIN = "local_docker"


@dataclass(frozen=True)
class Variant:
    """One orchestrator as benchmarked: a stack, the package it runs, extra settings."""

    label: str
    stack: str
    package_root: Path  # the folder holding the `orchestrator` package
    settings: Optional[Dict[str, Any]] = None

    @property
    def is_ours(self) -> bool:
        return self.stack == MY_STACK


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
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summary(values: Sequence[float]) -> Dict[str, Any]:
    """Median, min, max and the raw samples of one measurement."""
    values = [v for v in values if v is not None]
    return {
        "median": median(values),
        "min": min(values) if values else None,
        "max": max(values) if values else None,
        "samples": [round(v, 3) for v in values],
    }


@dataclass
class Session:
    """One benchmark invocation: its private ZenML state, logs and results."""

    repetitions: int
    pipelines: List[str]
    variants: List[Variant]
    max_parallelism: Optional[int]
    keep: bool
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="my-docker-bench-")))
    logs: Path = ARTIFACTS / "benchmark-logs"
    runs: List[Dict[str, Any]] = field(default_factory=list)
    e2e: List[Dict[str, Any]] = field(default_factory=list)
    floor: Dict[str, List[float]] = field(
        default_factory=lambda: {"import_zenml": [], "true": [], "import_ml": []})
    builds: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    loads: List[float] = field(default_factory=list)
    failed_runs: List[Dict[str, Any]] = field(default_factory=list)  # run again once
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

    @property
    def run_pipelines(self) -> List[str]:
        return [p for p in self.pipelines if p in RUN_PIPELINES]

    def private_env(self) -> Dict[str, str]:
        """ZenML settings that keep all of this session's state in `workdir`."""
        return {
            "ZENML_CONFIG_PATH": str(self.workdir / "zenml-config"),
            "ZENML_ANALYTICS_OPT_IN": "false",
            "ZENML_ENABLE_REPO_INIT_WARNINGS": "false",
        }

    def env(self, package_root: Path = REPO_ROOT) -> Dict[str, str]:
        """A child's environment: private ZenML state, `orchestrator` from
        `package_root`, `benchmarks` from this checkout."""
        env = dict(os.environ)
        env.update(self.private_env())
        roots = dict.fromkeys([str(package_root), str(REPO_ROOT)])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [*roots, env.get("PYTHONPATH")]))
        return env

    # -- the ZenML side, one child process per action ---------------------
    def zenml(self, action: str, name: str, *options: str,
              package_root: Path = REPO_ROOT) -> Dict[str, Any]:
        """Run `benchmarks.zenml_side <action>` and return the JSON it wrote."""
        self._counter += 1
        log = self.logs / f"{self._counter:03d}-{name}.log"
        result = self.workdir / f"{self._counter:03d}-{name}.json"
        command = [sys.executable, "-m", "benchmarks.zenml_side", action,
                   "--result", str(result), *options]
        with log.open("w") as out:
            code = subprocess.run(command, cwd=self.project, env=self.env(package_root),
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
        shutil.copy(Path(__file__).with_name(f"{ML_MODULE}.py"), self.project / f"{ML_MODULE}.py")
        client = ensure_engine(log=lambda line: None)
        self.parent_image = self._private_parent(
            client, ensure_parent_image(client=client, log=lambda line: None))
        self.count_container_cpu = (client.info().get("CgroupDriver") == "cgroupfs"
                                    and CGROUP_ROOT.is_dir())
        print(f"Private ZenML state in {self.workdir}; logs in {self.logs}", flush=True)
        self.zenml("setup", "setup")
        for pipeline in self.run_pipelines:
            for stack in (MY_STACK, BUILTIN_STACK):
                started = time.monotonic()
                built = self.zenml("build", f"build-{pipeline}-{stack}",
                                   "--stack", stack, "--pipeline", pipeline,
                                   "--parent-image", self.parent_image,
                                   "--repository", self.repository)
                built["image_id"] = client.images.get(built["image"]).id
                self.builds[f"{pipeline}/{stack}"] = built
                print(f"  built {pipeline} on {stack} in {time.monotonic() - started:.0f} s",
                      flush=True)
            ids = {self.builds[f"{pipeline}/{s}"]["image_id"] for s in (MY_STACK, BUILTIN_STACK)}
            if len(ids) != 1:
                raise BenchmarkError(f"The two stacks got different images for {pipeline}: {ids}")
        print(f"Step images built once (parent {self.parent_image}); "
              "all orchestrators use the same image id.", flush=True)

    def _private_parent(self, client: Any, parent: str) -> str:
        """The parent image under a tag of this session's, as an image of its own.

        Same content (one LABEL more), but nobody else's tagging or pushing
        can change it while we measure: ZenML pulls a parent image that has a
        registry digest (someone pushed it), which fails without a registry.
        """
        import io

        tag = f"{self.repository}:parent"
        dockerfile = f"FROM {parent}\nLABEL {BENCH_LABEL}={self.session_id}\n"
        client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True,
                            forcerm=True, pull=False)
        return tag

    # -- measurements ------------------------------------------------------
    def _image(self, ml: bool) -> Optional[str]:
        for pipeline in self.run_pipelines:
            if PIPELINES[pipeline][4] == ml:
                return self.builds[f"{pipeline}/{MY_STACK}"]["image"]
        return None

    def measure_floor(self, samples: int) -> None:
        """`docker run --rm IMAGE python -c "import zenml"` (and `true`; and the ML imports), timed."""
        commands = []
        plain, ml = self._image(False), self._image(True)
        if plain:
            commands += [("import_zenml", plain, ["python", "-c", "import zenml"]),
                         ("true", plain, ["true"])]
        if ml:
            commands.append(("import_ml", ml, ["python", "-c",
                                               "import zenml, " + ", ".join(ML_LIBRARIES)]))
        for _ in range(samples):
            for key, image, command in commands:
                started = time.perf_counter()
                try:
                    subprocess.run(["docker", "run", "--rm", image, *command], check=True,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                except (OSError, subprocess.CalledProcessError) as error:
                    raise BenchmarkError(f"The floor measurement `docker run --rm {image} "
                                         f"{' '.join(command)}` failed: {error}") from error
                self.floor[key].append(time.perf_counter() - started)

    def _common_options(self, variant: Variant) -> List[str]:
        options = ["--stack", variant.stack, "--parent-image", self.parent_image,
                   "--repository", self.repository, "--label-value", self.session_id]
        if variant.settings:
            options += ["--orchestrator-settings", json.dumps(variant.settings)]
        return options

    def _cleanup_after(self, client: Any) -> int:
        """Remove what local_docker leaves behind; returns how many containers."""
        leftovers = client.containers.list(
            ignore_removed=True, all=True, filters={"label": f"{BENCH_LABEL}={self.session_id}"})
        for container in leftovers:  # local_docker never removes its containers
            container.remove(force=True)
        return len(leftovers)

    def run_once(self, pipeline: str, variant: Variant, repetition: int) -> Dict[str, Any]:
        """One measured run; a failed one is run again once (said so), because on a
        shared engine another process may remove or kill a container of ours."""
        try:
            return self._run_once(pipeline, variant, repetition)
        except BenchmarkError as error:
            first_line = str(error).splitlines()[0]
            print(f"  rep {repetition}  {pipeline:10s} {variant.label:30s} FAILED ({first_line}); "
                  "running it again", flush=True)
            self.failed_runs.append({"pipeline": pipeline, "orchestrator": variant.label,
                                     "repetition": repetition, "error": str(error)[:2000]})
            return self._run_once(pipeline, variant, repetition)

    def _run_once(self, pipeline: str, variant: Variant, repetition: int) -> Dict[str, Any]:
        """One measured run, then removal of what local_docker leaves behind."""
        from orchestrator.machine.engine import connect
        from orchestrator.running.labels import find_containers

        options = [*self._common_options(variant), "--pipeline", pipeline,
                   "--build", self.builds[f"{pipeline}/{variant.stack}"]["build_id"]]
        if self.max_parallelism is not None and variant.is_ours:
            options += ["--max-parallelism", str(self.max_parallelism)]
        cgroup = f"/my-docker-bench-{self.session_id}-{self._counter + 1}"
        if self.count_container_cpu:
            options += ["--cgroup-parent", cgroup]
        load_before = os.getloadavg()[0]
        name = f"run-r{repetition}-{pipeline}-{variant.label.replace(' ', '').replace(',', '-')}"
        try:
            result = self.zenml("run", name, *options, package_root=variant.package_root)
        finally:
            client = connect()
            left = self._cleanup_after(client)
            container_cpu = cgroup_cpu_seconds(cgroup) if self.count_container_cpu else None
            remove_cgroup(cgroup)
        self.loads += [load_before, os.getloadavg()[0]]
        ours_left = find_containers(client, pipeline_run_id=result["run_id"])
        result.update(pipeline=pipeline, orchestrator=variant.label,
                      repetition=repetition, load_before=load_before,
                      containers_cpu_seconds=container_cpu,
                      containers_left_behind=(0 if not variant.is_ours else left) + len(ours_left))
        if result["status"] != "completed" or not result["output_ok"]:
            raise BenchmarkError(f"Run {result['run_id']} did not complete correctly: "
                                 f"{ {k: result[k] for k in ('status', 'output')} }")
        self.runs.append(result)
        print(f"  rep {repetition}  {pipeline:10s} {variant.label:30s} "
              f"orchestration {result['orchestration_seconds']:6.1f} s   "
              f"call {result['call_seconds']:6.1f} s   load {load_before:.1f}", flush=True)
        return result

    def e2e_once(self, variant: Variant, repetition: int) -> Dict[str, Any]:
        """The demo pipeline called twice, image build included; run again once if it failed."""
        try:
            return self._e2e_once(variant, repetition)
        except BenchmarkError as error:
            print(f"  rep {repetition}  {'e2e':10s} {variant.label:30s} FAILED "
                  f"({str(error).splitlines()[0]}); running it again", flush=True)
            self.failed_runs.append({"pipeline": "e2e", "orchestrator": variant.label,
                                     "repetition": repetition, "error": str(error)[:2000]})
            return self._e2e_once(variant, repetition)

    def _e2e_once(self, variant: Variant, repetition: int) -> Dict[str, Any]:
        from orchestrator.machine.engine import connect

        load_before = os.getloadavg()[0]
        build_variant = f"{self.session_id}-{repetition}-{variant.label}"
        name = f"e2e-r{repetition}-{variant.label.replace(' ', '').replace(',', '-')}"
        try:
            result = self.zenml("e2e", name, *self._common_options(variant),
                                "--build-variant", build_variant,
                                package_root=variant.package_root)
        finally:
            self._cleanup_after(connect())
        for call in result["calls"]:
            if call["status"] != "completed" or not call["output_ok"]:
                raise BenchmarkError(f"End-to-end run {call['run_id']} did not complete "
                                     f"correctly: {call}")
        result.update(orchestrator=variant.label, repetition=repetition, load_before=load_before)
        self.e2e.append(result)
        first, second = (c["call_seconds"] for c in result["calls"])
        print(f"  rep {repetition}  {'e2e':10s} {variant.label:30s} first call {first:6.1f} s   "
              f"second call {second:6.1f} s   load {load_before:.1f}", flush=True)
        return result

    def run_all(self) -> None:
        for repetition in range(1, self.repetitions + 1):
            # Alternate who goes first, so that none always runs right after a
            # build or into the same background load.
            order = list(self.variants)
            if repetition % 2 == 0:
                order.reverse()
            for pipeline in self.run_pipelines:
                for variant in order:
                    self.run_once(pipeline, variant, repetition)
            if "e2e" in self.pipelines:
                for variant in order:
                    self.e2e_once(variant, repetition)
            if self.run_pipelines:
                self.measure_floor(2)

    def cleanup(self) -> None:
        """Remove this session's containers, image tags and private ZenML state."""
        from orchestrator.machine.engine import connect

        try:  # local_docker's containers of a run that was interrupted
            self._cleanup_after(connect())
        except Exception as error:  # noqa: BLE001 - cleanup must not hide results
            print(f"warning: could not remove local_docker's containers: {error}")
        if self.keep:
            print(f"Kept {self.workdir} and the {self.repository} images.")
            return
        try:
            client = connect()
            tags = [tag for image in client.images.list(name=self.repository)
                    for tag in image.tags if tag.startswith(self.repository + ":")]
            for tag in tags:
                try:
                    client.images.remove(tag, noprune=False)
                except Exception:  # noqa: BLE001 - shared by a tag still in use
                    pass
        except Exception as error:  # noqa: BLE001 - cleanup must not hide results
            print(f"warning: could not remove the {self.repository} images: {error}")
        try:
            from orchestrator.running.builds import forget_build_cache

            forget_build_cache(str(self.workdir / "zenml-config"))
        except Exception as error:  # noqa: BLE001 - cleanup must not hide results
            print(f"warning: could not remove the images cached for reuse: {error}")
        shutil.rmtree(self.workdir, ignore_errors=True)

    # -- results -------------------------------------------------------------
    def results(self) -> Dict[str, Any]:
        return summarize(
            runs=self.runs,
            e2e=self.e2e,
            floor=self.floor,
            loads=self.loads,
            meta={
                "machine": machine_info(),
                "parent_image": self.parent_image,
                "repetitions": self.repetitions,
                "max_parallelism": self.max_parallelism,
                "orchestrators": [v.label for v in self.variants],
                "packages": {v.label: str(v.package_root) for v in self.variants},
                "failed_runs": self.failed_runs,
            },
        )


DEFINITIONS = {
    "orchestration_seconds": "wall time of the orchestrator's submit_pipeline call, image "
    "already built: first container created -> last container finished (plus the "
    "orchestrator's own cleanup)",
    "call_seconds": "wall time of the whole pipeline() call with the pre-built image "
    "(snapshot, run creation, code upload, orchestration)",
    "e2e": "the demo pipeline's whole pipeline() call, image build included, first and "
    "second call in one process",
    "floor_import_zenml": "docker run --rm IMAGE python -c 'import zenml'",
    "floor_import_ml": "docker run --rm ML_IMAGE python -c 'import zenml, pandas, sklearn...'",
    "floor_true": "docker run --rm IMAGE true",
    "ratio": "local_docker median / my_docker median (time ratios: my_docker / local_docker)",
    "paired_ratio": "median over repetitions of the ratio within the same repetition",
    "breakdown": "per step container, medians over every step of every run",
}

# -- the per-step breakdown ---------------------------------------------------------

COARSE_PHASES = (
    "Docker: created -> started",
    "started -> ZenML step start (Python, imports, ZenML preparation; early start: + wait)",
    "ZenML step start -> end (inputs, step function, outputs, publish)",
    "ZenML step end -> container exit (teardown, interpreter exit)",
    "upstream step's ZenML end -> this step's ZenML start (critical path per level)",
)
CPU_ROW = "CPU-s per step container (cgroup, whole run / steps)"
INSIDE_CPU_ROW = "CPU-s per step container (its own clock: stages + children)"


def step_breakdown(run: Dict[str, Any]) -> List[Dict[str, Tuple[float, Optional[float]]]]:
    """Per step of one run: phase name -> (seconds, CPU seconds or None)."""
    from orchestrator.running.step_timing import AttemptTiming, phases

    steps = {s["name"]: s for s in run["steps"]}
    docker: Dict[str, Dict[str, Any]] = {}
    fine: Dict[str, List[Any]] = {}
    for raw in run.get("timings") or []:
        if raw.get("given_up"):
            continue  # removed at its gate: no attempt of its step
        timing = AttemptTiming(**raw)
        docker[timing.step] = raw  # the latest attempt wins
        fine[timing.step] = phases(timing)
    for raw in run.get("containers") or []:
        docker[raw["step"]] = raw
    result = []
    for name, step in steps.items():
        row: Dict[str, Tuple[float, Optional[float]]] = {}
        times = docker.get(name, {})
        created, started, finished = (times.get("docker_created"), times.get("docker_started"),
                                      times.get("docker_finished"))
        z_start, z_end = step.get("zenml_start"), step.get("zenml_end")
        upstream_ends = [steps[u].get("zenml_end") for u in step["upstream"] if u in steps]
        for phase, start, end in (
            (COARSE_PHASES[0], created, started),
            (COARSE_PHASES[1], started, z_start),
            (COARSE_PHASES[2], z_start, z_end),
            (COARSE_PHASES[3], z_end, finished),
            (COARSE_PHASES[4], max(upstream_ends) if upstream_ends and None not in upstream_ends
             else None, z_start),
        ):
            if start is not None and end is not None:
                row[phase] = (end - start, None)
        for phase in fine.get(name, ()):
            row[phase.name] = (phase.seconds, phase.cpu)
        inside = (times.get("inside") or {}) if "inside" in times else {}
        if inside.get("stages"):
            row[INSIDE_CPU_ROW] = (inside["stages"][-1][2] + inside.get("children_cpu", 0), None)
        if run.get("containers_cpu_seconds") is not None:
            row[CPU_ROW] = (run["containers_cpu_seconds"] / len(steps), None)
        result.append(row)
    return result


def breakdown_table(runs: List[Dict[str, Any]]) -> Dict[str, Dict[str, Dict[str, Any]]]:
    """Phase -> orchestrator -> median seconds and median CPU, over all steps of `runs`."""
    from orchestrator.running.step_timing import PHASE_ORDER

    collected: Dict[str, Dict[str, List[Tuple[float, Optional[float]]]]] = {}
    for run in runs:
        for row in step_breakdown(run):
            for phase, value in row.items():
                collected.setdefault(phase, {}).setdefault(run["orchestrator"], []).append(value)
    order = [*COARSE_PHASES, *PHASE_ORDER, INSIDE_CPU_ROW, CPU_ROW]
    table: Dict[str, Dict[str, Dict[str, Any]]] = {}
    for phase in order:
        if phase not in collected:
            continue
        table[phase] = {
            label: {"seconds": median([v[0] for v in values]),
                    "cpu": median([v[1] for v in values if v[1] is not None]),
                    "n": len(values)}
            for label, values in collected[phase].items()
        }
    return table


def summarize(runs: List[Dict[str, Any]], floor: Dict[str, List[float]], loads: List[float],
              meta: Dict[str, Any], e2e: Optional[List[Dict[str, Any]]] = None) -> Dict[str, Any]:
    """All figures, from the raw runs and floor samples (also used by --show)."""
    e2e = e2e or []
    labels = meta.get("orchestrators") or list(dict.fromkeys(r["orchestrator"] for r in runs))
    out: Dict[str, Any] = {
        "definitions": DEFINITIONS,
        **meta,
        "orchestrators": labels,
        "load_average_1min": summary(loads),
        "floor": {key: summary(values) for key, values in floor.items()},
        "pipelines": {},
        "e2e": {},
        "runs": runs,
        "e2e_runs": e2e,
    }
    for pipeline in dict.fromkeys(r["pipeline"] for r in runs):
        floor_key = "import_ml" if PIPELINES[pipeline][4] else "import_zenml"
        floor_median = median(floor.get(floor_key, []))
        chosen_runs = [r for r in runs if r["pipeline"] == pipeline]
        entry: Dict[str, Any] = {"steps": STEP_COUNTS[pipeline], "floor": floor_median,
                                 "orchestrators": {},
                                 "breakdown": breakdown_table(chosen_runs)}
        for label in labels:
            chosen = [r for r in chosen_runs if r["orchestrator"] == label]
            if not chosen:
                continue
            orchestration = [r["orchestration_seconds"] for r in chosen]
            per_step = median(orchestration) / STEP_COUNTS[pipeline]
            entry["orchestrators"][label] = {
                "orchestration_seconds": summary(orchestration),
                "call_seconds": summary([r["call_seconds"] for r in chosen]),
                "client_cpu_seconds": median([r.get("client_cpu_seconds") for r in chosen]),
                "per_step_seconds": per_step,
                "per_step_over_floor": per_step / floor_median if floor_median else None,
            }
        builtin = entry["orchestrators"].get(BUILTIN)
        for label, mine in entry["orchestrators"].items():
            if label == BUILTIN or builtin is None:
                continue
            mine["speedup"] = (builtin["orchestration_seconds"]["median"]
                               / mine["orchestration_seconds"]["median"])
            mine["time_ratio"] = 1 / mine["speedup"]
            pairs = _paired(chosen_runs, label, BUILTIN, "orchestration_seconds")
            mine["paired_speedup"] = median([b / m for m, b in pairs if m])
        out["pipelines"][pipeline] = entry
    for label in labels:
        chosen = [r for r in e2e if r["orchestrator"] == label]
        if chosen:
            out["e2e"][label] = {
                "first_call_seconds": summary([r["calls"][0]["call_seconds"] for r in chosen]),
                "second_call_seconds": summary([r["calls"][1]["call_seconds"] for r in chosen]),
                "second_call_orchestration": summary(
                    [r["calls"][1]["orchestration_seconds"] for r in chosen]),
            }
    return out


def _paired(runs: List[Dict[str, Any]], mine: str, theirs: str,
            key: str) -> List[Tuple[float, float]]:
    """(mine, theirs) of the same repetition."""
    by_rep: Dict[int, Dict[str, float]] = {}
    for run in runs:
        by_rep.setdefault(run["repetition"], {})[run["orchestrator"]] = run[key]
    return [(r[mine], r[theirs]) for r in by_rep.values() if mine in r and theirs in r]


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


def _verdict(value: Optional[float], target: float, at_least: bool) -> str:
    if value is None:
        return "n/a"
    return "MET" if (value >= target if at_least else value <= target) else "MISSED"


def print_report(results: Dict[str, Any]) -> None:
    machine = results["machine"]
    labels = results["orchestrators"]
    print()
    print("=" * 100)
    print(f"my_docker vs local_docker: medians of {results['repetitions']} interleaved "
          f"repetition(s)")
    print(f"machine: {machine.get('cores')} cores, {machine.get('cpu', '?')}, "
          f"{machine.get('memory_gib', '?')} GiB, Docker {machine.get('docker_engine', '?')}, "
          f"ZenML {machine.get('zenml', '?')}, Python {machine.get('python')}")
    load = results["load_average_1min"]
    print(f"1-min load average during runs: median {_fmt(load['median'], '', 1)} "
          f"(min {_fmt(load['min'], '', 1)}, max {_fmt(load['max'], '', 1)}): "
          "shared machine, other work ran too")
    for label, package in (results.get("packages") or {}).items():
        if label != BUILTIN:
            print(f"  {label}: package {package}")
    print()
    print("orchestration = submit_pipeline wall time, image pre-built (first container")
    print("                created -> last container finished); call = whole pipeline() call")
    header = (f"{'pipeline':11s} {'orchestrator':30s} {'orchestration':>13s} {'(min-max)':>13s} "
              f"{'call':>7s} {'per step':>9s} {'/floor':>7s} {'client CPU':>10s}")
    print(header)
    print("-" * len(header))
    for pipeline, entry in results["pipelines"].items():
        for label, e in entry["orchestrators"].items():
            o = e["orchestration_seconds"]
            spread = f"({_fmt(o['min'], '')}-{_fmt(o['max'], '')})"
            print(f"{pipeline:11s} {label:30s} {_fmt(o['median']):>13s} {spread:>13s} "
                  f"{_fmt(e['call_seconds']['median']):>7s} "
                  f"{_fmt(e['per_step_seconds'], ' s', 2):>9s} "
                  f"{_fmt(e['per_step_over_floor'], 'x', 2):>7s} "
                  f"{_fmt(e['client_cpu_seconds'], ' s', 1):>10s}")
    floor = results["floor"]
    print(f"\nfloor: docker run --rm IMAGE python -c 'import zenml': "
          f"{_fmt(floor['import_zenml']['median'], ' s', 2)}; same with pandas and "
          f"scikit-learn (ML image): {_fmt(floor.get('import_ml', {}).get('median'), ' s', 2)}; "
          f"docker run --rm IMAGE true: {_fmt(floor['true']['median'], ' s', 2)}")
    if results.get("e2e"):
        print("\nend to end: the demo pipeline's whole pipeline() call, image build included")
        for label, e in results["e2e"].items():
            print(f"  {label:30s} first call {_fmt(e['first_call_seconds']['median']):>8s}   "
                  f"second call {_fmt(e['second_call_seconds']['median']):>8s} "
                  f"(orchestration {_fmt(e['second_call_orchestration']['median'])})")
    _print_targets(results)
    for pipeline, entry in results["pipelines"].items():
        _print_breakdown(pipeline, entry["breakdown"], labels)
    left = sum(r["containers_left_behind"] for r in results["runs"]
               if r["orchestrator"] != BUILTIN)
    print(f"\nmy_docker containers left after its runs: {left}; local_docker's were removed "
          "by the benchmark (it leaves them all behind).")
    for failed in results.get("failed_runs") or []:
        print(f"run again after a failure: rep {failed['repetition']} {failed['pipeline']} "
              f"{failed['orchestrator']}: {failed['error'].splitlines()[0]}")
    print("=" * 100)


def _print_targets(results: Dict[str, Any]) -> None:
    print("\ntargets (ratios measured in this run, never asserted):")
    pipelines, e2e = results["pipelines"], results.get("e2e", {})
    for label in results["orchestrators"]:
        if label == BUILTIN:
            continue
        lines = []
        fan = pipelines.get("fan_out", {}).get("orchestrators", {}).get(label, {})
        if fan.get("speedup"):
            lines.append(f"fan-out {_fmt(fan['speedup'], 'x', 2)} faster than local_docker "
                         f"(paired {_fmt(fan.get('paired_speedup'), 'x', 2)}; target >= "
                         f"{FAN_OUT_TARGET}x): {_verdict(fan['speedup'], FAN_OUT_TARGET, True)}")
        for pipeline in ("chain", "ml_chain", "ml_fan_out"):
            e = pipelines.get(pipeline, {}).get("orchestrators", {}).get(label, {})
            if e.get("time_ratio"):
                target = CHAIN_TARGET if pipeline != "ml_fan_out" else 1 / FAN_OUT_TARGET
                lines.append(f"{pipeline} time {_fmt(e['time_ratio'], 'x', 2)} local_docker's "
                             f"(target <= {target:.2f}x): "
                             f"{_verdict(e['time_ratio'], target, False)}")
            if pipeline in CHAINS and e.get("per_step_over_floor"):
                lines.append(f"{pipeline} per step {_fmt(e['per_step_seconds'], ' s', 2)} = "
                             f"{_fmt(e['per_step_over_floor'], 'x', 2)} the floor (target <= "
                             f"{FLOOR_TARGET}x): "
                             f"{_verdict(e['per_step_over_floor'], FLOOR_TARGET, False)}")
        if label in e2e and BUILTIN in e2e:
            ratio = (e2e[label]["second_call_seconds"]["median"]
                     / e2e[BUILTIN]["second_call_seconds"]["median"])
            lines.append(f"demo second call end to end {_fmt(ratio, 'x', 2)} local_docker's "
                         f"(target <= {E2E_SECOND_CALL_TARGET}x): "
                         f"{_verdict(ratio, E2E_SECOND_CALL_TARGET, False)}")
        if lines:
            print(f"  {label}:")
            for line in lines:
                print(f"    {line}")


def _print_breakdown(pipeline: str, table: Dict[str, Dict[str, Dict[str, Any]]],
                     labels: Sequence[str]) -> None:
    if not table:
        return
    shown = [label for label in labels if any(label in row for row in table.values())]
    print(f"\nper-step breakdown, {pipeline}: medians over every step of every run, "
          "seconds [CPU-seconds]")
    width = 58
    print(f"  {'phase':{width}s}" + "".join(f" {label[:24]:>24s}" for label in shown))
    for phase, row in table.items():
        cells = []
        for label in shown:
            value = row.get(label)
            if value is None or value["seconds"] is None:
                cells.append(f" {'-':>24s}")
                continue
            text = f"{value['seconds']:.2f}"
            if value["cpu"] is not None:
                text += f" [{value['cpu']:.2f}]"
            cells.append(f" {text:>24s}")
        print(f"  {phase[:width]:{width}s}" + "".join(cells))


def markdown_tables(results: Dict[str, Any]) -> str:
    """The figures as Markdown tables, for benchmarks/README.md."""
    lines = ["| pipeline | orchestrator | orchestration | call | per step | / floor |",
             "|---|---|---:|---:|---:|---:|"]
    for pipeline, entry in results["pipelines"].items():
        for label, e in entry["orchestrators"].items():
            lines.append(f"| {pipeline} | {label} | {_fmt(e['orchestration_seconds']['median'])} "
                         f"| {_fmt(e['call_seconds']['median'])} "
                         f"| {_fmt(e['per_step_seconds'], ' s', 2)} "
                         f"| {_fmt(e['per_step_over_floor'], 'x', 2)} |")
    for pipeline in CHAINS:
        table = results["pipelines"].get(pipeline, {}).get("breakdown")
        if not table:
            continue
        shown = [label for label in results["orchestrators"]
                 if any(label in row for row in table.values())]
        lines += ["", f"Per-step breakdown, {pipeline} (medians, s [CPU-s]):", "",
                  "| phase | " + " | ".join(shown) + " |",
                  "|---|" + "---:|" * len(shown)]
        for phase, row in table.items():
            cells = []
            for label in shown:
                value = row.get(label)
                if value is None or value["seconds"] is None:
                    cells.append("")
                    continue
                cpu = f" [{value['cpu']:.2f}]" if value["cpu"] is not None else ""
                cells.append(f"{value['seconds']:.2f}{cpu}")
            lines.append(f"| {phase} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run_benchmarks",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--repetitions", type=int, default=3,
                        help="interleaved repetitions per pipeline and orchestrator (default 3)")
    parser.add_argument("--quick", action="store_true",
                        help="one repetition: a smoke run, not figures to quote")
    parser.add_argument("--pipelines", nargs="+", choices=ALL_PIPELINES,
                        default=list(DEFAULT_PIPELINES))
    parser.add_argument("--max-parallelism", type=int,
                        help="my_docker's max_parallelism (default: its own default)")
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="also run the orchestrator package in DIR/orchestrator (an "
                        "earlier version), as 'my_docker, baseline'")
    parser.add_argument("--without-early-start", action="store_true",
                        help="also run my_docker with start_early=False")
    parser.add_argument("--keep", action="store_true",
                        help="keep the private ZenML folder and the step images")
    parser.add_argument("--output", type=Path, default=ARTIFACTS / "benchmarks.json")
    parser.add_argument("--markdown", action="store_true",
                        help="also print the tables as Markdown (for benchmarks/README.md)")
    parser.add_argument("--show", type=Path, metavar="JSON",
                        help="print the report of an earlier run's JSON file and exit")
    args = parser.parse_args(argv)
    if args.show:
        saved = json.loads(args.show.read_text())
        meta = {k: saved.get(k) for k in ("machine", "parent_image", "repetitions",
                                          "max_parallelism", "orchestrators", "packages")}
        results = summarize(saved["runs"], {k: v["samples"] for k, v in saved["floor"].items()},
                            saved["load_average_1min"]["samples"], meta,
                            saved.get("e2e_runs"))
        print_report(results)
        if args.markdown:
            print(markdown_tables(results))
        return 0
    if args.repetitions < 1:
        parser.error("--repetitions must be at least 1")
    ml = [p for p in args.pipelines if p in RUN_PIPELINES and PIPELINES[p][4]]
    missing = [name for name in ("pandas", "sklearn") if ml and importlib.util.find_spec(name) is None]
    if missing:
        parser.error(f"the pipelines {', '.join(ml)} import pandas and scikit-learn on this "
                     f"machine too (ZenML loads a pipeline's steps in the client), but "
                     f"{', '.join(missing)} is missing: `pip install pandas scikit-learn` "
                     "(a virtualenv with --system-site-packages will do), or leave them out "
                     "with --pipelines.")
    if args.baseline and not (args.baseline / "orchestrator" / "__init__.py").is_file():
        parser.error(f"--baseline {args.baseline}: no orchestrator package in it")
    variants = [Variant(MY, MY_STACK, REPO_ROOT)]
    if args.without_early_start:
        variants.append(Variant(NO_EARLY, MY_STACK, REPO_ROOT, {"start_early": False}))
    if args.baseline:
        variants.append(Variant(BASELINE, MY_STACK, args.baseline.resolve()))
    variants.append(Variant(BUILTIN, BUILTIN_STACK, REPO_ROOT))
    session = Session(repetitions=1 if args.quick else args.repetitions,
                      pipelines=args.pipelines, variants=variants,
                      max_parallelism=args.max_parallelism, keep=args.keep)
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
    if args.markdown:
        print(markdown_tables(results))
    print(f"Figures written to {args.output}; logs in {session.logs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
