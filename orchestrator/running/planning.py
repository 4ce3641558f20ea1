"""From a compiled ZenML pipeline (a snapshot) to the `RunPlan` the runner executes.

This is where ZenML's view of a pipeline (steps, upstream steps, settings,
retry and resource configuration, the built image) becomes ours: a typed
`RunPlan` of `StepTemplate`s. Everything is checked here, before the first
container starts, so that a misspelled setting, a missing image or a setting
the engine refuses fails the run at once with a clear message instead of
halfway through.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Sequence, Set, Tuple

import docker

from orchestrator.errors import InvalidSettingsError
from orchestrator.running.container_spec import (
    PACKAGE_MOUNT_ROOT,
    resource_limits,
    resource_request,
)
from orchestrator.running.containers import (
    APP_DIR,
    AppDir,
    app_dir_state,
    check_with_engine,
    image_environment,
    require_image,
)
from orchestrator.running.gates import Gates, create_gate_folder
from orchestrator.running.labels import STEP_RUN_ID_LABEL, run_labels
from orchestrator.running.plan import RunPlan, StepTemplate
from orchestrator.running.scheduler import ExecutionMode, RetryPolicy
from orchestrator.running.settings import ENV_ORCHESTRATOR_RUN_ID, default_parallelism
from orchestrator.running.step_entrypoint import DONE_LINE_PREFIX, DONE_MARKER_ENV
from orchestrator.running.step_entrypoint import MODULE as STEP_ENTRYPOINT_MODULE
from orchestrator.running.step_logs import run_log_dir

if TYPE_CHECKING:
    from zenml.models import PipelineSnapshotResponse

    from orchestrator.running.request import IsolatedStepRequest, RunRequest

# The `orchestrator` package itself, mounted into every step container.
PACKAGE_DIR = Path(__file__).resolve().parents[1]

# Set in every step container of a static run: the client process has brought
# the store's schema up to date before submitting, so a step container need
# not check it again (ZenML's name has no ZENML_ prefix).
FAST_STEP_ENVIRONMENT = {"DISABLE_DATABASE_MIGRATION": "true"}

# What the orchestrator sets only where neither the user nor the image does.
DEFAULT_ENVIRONMENT = {
    "ZENML_LOGGING_COLORS_DISABLED": "true",  # plain lines in our log
    "ZENML_ENABLE_RICH_TRACEBACK": "false",  # a traceback in lines, not a box
}


def step_user(client: Optional[docker.DockerClient] = None) -> Optional[str]:
    """The container user whose files on the host are the caller's.

    The caller's uid:gid on a rootful engine; ``0:0`` on a rootless Docker or
    Podman engine, where container uid 0 is the caller on the host (see
    `orchestrator.machine.engine_facts.step_user_for`). Without a client
    (Swarm nodes are rootful engines), the caller's uid:gid.
    """
    if sys.platform == "win32":
        return None
    if client is None:
        return f"{os.getuid()}:{os.getgid()}"
    from orchestrator.machine.engine import read_engine_facts
    from orchestrator.machine.engine_facts import step_user_for

    return step_user_for(read_engine_facts(client), os.getuid(), os.getgid())


def gpu_runtime_available(client: docker.DockerClient) -> bool:
    """Whether the engine can hand GPUs to containers (an nvidia runtime)."""
    try:
        runtimes = client.info().get("Runtimes", {}) or {}
    except docker.errors.DockerException:
        return False
    return "nvidia" in runtimes


def retry_policy(step_config: Any) -> RetryPolicy:
    """ZenML's `StepRetryConfig` as our scheduler's `RetryPolicy`."""
    retry = getattr(step_config, "retry", None)
    if retry is None:
        return RetryPolicy()
    return RetryPolicy(
        max_retries=int(retry.max_retries),
        delay=float(retry.delay),
        backoff=float(retry.backoff),
    )


def plan_run(
    *,
    request: "RunRequest",
    client: docker.DockerClient,
    orchestrator_run_id: str,
) -> RunPlan:
    """Check everything about the run and describe how to start each step.

    Raises:
        InvalidSettingsError: a setting is invalid, or the engine refuses a
            step's container (checked by creating one, not started).
        ImageNotFoundError: a step's image is not on the engine.
    """
    from zenml.config.global_config import GlobalConfiguration
    from zenml.entrypoints import StepEntrypointConfiguration

    snapshot, pipeline_run, settings = request.snapshot, request.placeholder_run, request.settings
    assert request.step_environments is not None, "a static pipeline's request"
    local_stores_path = GlobalConfiguration().local_stores_path
    run_name = pipeline_run.name if pipeline_run else snapshot.pipeline_configuration.name
    user = step_user(client)
    images: Dict[str, Any] = {}  # image name -> docker-py Image, read once
    planner = _StepPlanner(client, snapshot, request.step_settings,
                           request.step_environments, user, images)
    steps = {name: planner.template(name, step, request.step_images[name])
             for name, step in snapshot.step_configurations.items()}
    warn_about_run_level_settings_of_steps(request)
    warn_about_unenforced_limits(client, steps)
    done_marker = f"{DONE_LINE_PREFIX}{uuid.uuid4().hex}"
    gates = create_gate_folder(local_stores_path) if settings.start_early else None
    plan = RunPlan(
        steps=steps,
        entrypoint=step_entrypoint_command(
            StepEntrypointConfiguration.get_entrypoint_command()),
        labels=run_labels(
            orchestrator_run_id=orchestrator_run_id,
            pipeline_name=snapshot.pipeline_configuration.name,
            run_name=run_name,
            pipeline_run_id=str(pipeline_run.id) if pipeline_run else None,
        ),
        environment={
            **orchestrator_environment(orchestrator_run_id, local_stores_path),
            **FAST_STEP_ENVIRONMENT,
            DONE_MARKER_ENV: done_marker,
        },
        mounts=orchestrator_mounts(local_stores_path),
        user=user,
        run_name=run_name,
        mode=ExecutionMode(snapshot.pipeline_configuration.execution_mode.value),
        max_parallelism=settings.max_parallelism or default_parallelism(),
        grace_seconds=settings.stop_grace_seconds,
        keep_containers=settings.keep_containers,
        orchestrator_run_id=orchestrator_run_id,
        log_dir=run_log_dir(str(pipeline_run.id) if pipeline_run else orchestrator_run_id),
        gate_dir=str(gates) if gates else None,
        done_marker=done_marker,
    )
    # Build every first attempt now (warning about anything that gives way),
    # and let the engine check each distinct kind of container: what Docker
    # would refuse fails before any step runs.
    try:
        check_with_engine(client, {name: plan.spec_for(name, 1, warn=orchestrator_warning)
                                   for name in plan.steps})
    except BaseException:
        if gates:
            Gates(gates).remove()
        raise
    return plan


def step_entrypoint_command(zenml_command: Sequence[str]) -> Tuple[str, ...]:
    """Our step entrypoint (`step_entrypoint`), run by the Python of ZenML's command.

    It takes ZenML's step entrypoint arguments unchanged and runs ZenML's
    code, warmed up before the step may start, and prints a done line.
    """
    return (zenml_command[0], "-m", STEP_ENTRYPOINT_MODULE)


def orchestrator_environment(orchestrator_run_id: str, local_stores_path: str) -> Dict[str, str]:
    """What the orchestrator itself sets in every step container of a run."""
    from zenml.constants import ENV_ZENML_LOCAL_STORES_PATH

    return {
        ENV_ORCHESTRATOR_RUN_ID: orchestrator_run_id,
        ENV_ZENML_LOCAL_STORES_PATH: local_stores_path,
        "PYTHONPATH": PACKAGE_MOUNT_ROOT,  # merged with the user's and the image's
    }


def orchestrator_mounts(local_stores_path: str) -> Dict[str, Dict[str, str]]:
    """What the orchestrator mounts into every step container of a run."""
    return {
        # ZenML's local stores (SQLite database and artifact store) must be
        # at the same path inside the container as outside.
        local_stores_path: {"bind": local_stores_path, "mode": "rw"},
        # Our own package: ZenML loads the active stack, custom flavor
        # included, inside every step container, whatever folder the
        # pipeline was started from.
        str(PACKAGE_DIR): {"bind": f"{PACKAGE_MOUNT_ROOT}/orchestrator", "mode": "ro"},
    }


# The dynamic runs (orchestrator run ids) already told which ResourceSettings
# their engine does not enforce.
_TOLD_OF_UNENFORCED_LIMITS: Set[str] = set()


def plan_isolated_step(
    *,
    request: "IsolatedStepRequest",
    client: docker.DockerClient,
    orchestrator_run_id: str,
) -> RunPlan:
    """A one-step `RunPlan` for an isolated step of a dynamic pipeline.

    ZenML's dynamic runner hands each isolated step over as a `StepRunInfo`
    whose step run already exists. Its container is built from the same
    template, settings and checks as a static pipeline's step (user, mounts,
    environment merge, resource limits, run_args, a writable /app,
    timeout), with the differences ZenML's dynamic semantics ask for: the
    image is the one ZenML chose for the step (`StepRunInfo.get_image`); the
    container runs that one step run (ZenML's step-operator entrypoint, or
    the step's own command); and the plan holds no retries, because ZenML
    retries an isolated step as a new step run, which gets a new container
    whose attempt is the step run's version. Labels name the step's own run
    (a child pipeline's, for nested pipelines) and its step run.

    Args:
        request: ZenML's `StepRunInfo` of the step run, the step's settings,
            and ZenML's environment for it (store access and the step's
            runtime variables).

    Raises:
        InvalidSettingsError: a setting is invalid.
        ImageNotFoundError: the step's image is not on the engine.
    """
    from zenml.config.global_config import GlobalConfiguration
    from zenml.constants import ORCHESTRATOR_DOCKER_IMAGE_KEY
    from zenml.orchestrators.utils import get_step_entrypoint_command
    from zenml.step_operators.step_operator_entrypoint_configuration import (
        StepOperatorEntrypointConfiguration,
    )

    step_run_info, settings = request.step_run_info, request.settings
    step_name = step_run_info.pipeline_step_name  # the invocation id, e.g. "map:square:0"
    command, arguments = get_step_entrypoint_command(
        invocation_id=step_name,
        config=step_run_info.config,
        entrypoint_config_class=StepOperatorEntrypointConfiguration,
        snapshot_id=step_run_info.snapshot.id,
        step_run_id=str(step_run_info.step_run_id),
    )
    local_stores_path = GlobalConfiguration().local_stores_path
    user = step_user(client)
    planner = _StepPlanner(client, step_run_info.snapshot, {step_name: settings},
                           {step_name: request.environment}, user, {})
    image_name = settings.run_args.get(
        "image", step_run_info.get_image(key=ORCHESTRATOR_DOCKER_IMAGE_KEY))
    template = planner.template_from(step_name, step_run_info, image_name=image_name,
                                     arguments=arguments, upstream=(), retry=RetryPolicy())
    labels = run_labels(
        orchestrator_run_id=orchestrator_run_id,
        pipeline_name=step_run_info.pipeline.name,
        run_name=step_run_info.run_name,
        pipeline_run_id=str(step_run_info.run_id),
    )
    labels[STEP_RUN_ID_LABEL] = str(step_run_info.step_run_id)
    if orchestrator_run_id not in _TOLD_OF_UNENFORCED_LIMITS:
        # As a static run does before its first step; once per run, not per step run.
        if template.limits:
            _TOLD_OF_UNENFORCED_LIMITS.add(orchestrator_run_id)
        warn_about_unenforced_limits(client, {step_name: template})
    return RunPlan(
        steps={step_name: template},
        entrypoint=tuple(command),
        labels=labels,
        environment=orchestrator_environment(orchestrator_run_id, local_stores_path),
        mounts=orchestrator_mounts(local_stores_path),
        user=user,
        run_name=step_run_info.run_name,
        max_parallelism=settings.max_parallelism or default_parallelism(),
        grace_seconds=settings.stop_grace_seconds,
        keep_containers=settings.keep_containers,
        orchestrator_run_id=orchestrator_run_id,
        log_dir=run_log_dir(str(step_run_info.run_id)),
    )


def check_settings(request: "RunRequest") -> None:
    """The quick part of `plan_run`'s checks: every step's settings and image.

    For a run handed to a detached process (`my_docker`'s `RunFunctions.check`),
    so that a misspelled setting or a missing image still fails the pipeline
    call, in a fraction of a second; the engine's own check (trial containers)
    is made by `plan_run` there.

    Raises:
        InvalidSettingsError: a step's run_args are invalid.
        ImageNotFoundError: a step's image is not on the engine.
        DockerEngineUnavailableError: no Docker engine answers.
    """
    from orchestrator.machine.engine import connect
    from orchestrator.running.container_spec import validate_run_args

    client = connect()

    validate_run_args(request.settings.run_args)
    for step_name, settings in request.step_settings.items():
        validate_run_args(settings.run_args)
        if step_name in request.step_images:
            require_image(client, settings.run_args.get("image", request.step_images[step_name]))


class _StepPlanner:
    """Turns one step of the snapshot into its `StepTemplate` (engine read once per image)."""

    def __init__(self, client: docker.DockerClient, snapshot: "PipelineSnapshotResponse",
                 step_settings: Mapping[str, Any],
                 step_environments: Mapping[str, Mapping[str, str]],
                 user: Optional[str], images: Dict[str, Any]) -> None:
        self.client = client
        self.step_settings = step_settings
        self.snapshot = snapshot
        self.step_environments = step_environments
        self.user = user
        self.images = images
        self.downloads_code = _downloads_code(snapshot)
        self._gpu_runtime: Optional[bool] = None  # asked only when a step wants a GPU

    def template(self, step_name: str, step: Any, zenml_image: str) -> StepTemplate:
        """The template of a static pipeline's step (`zenml_image`: ZenML's build)."""
        from zenml.entrypoints import StepEntrypointConfiguration

        image_name = self.step_settings[step_name].run_args.get("image", zenml_image)
        return self.template_from(
            step_name, step, image_name=image_name,
            arguments=StepEntrypointConfiguration.get_entrypoint_arguments(
                step_name=step_name, snapshot_id=self.snapshot.id),
            upstream=step.spec.upstream_steps, retry=retry_policy(step.config))

    def template_from(self, step_name: str, step: Any, *, image_name: str,
                      arguments: Sequence[str], upstream: Sequence[str],
                      retry: RetryPolicy) -> StepTemplate:
        """The template of a step whose image, entrypoint arguments, upstream
        steps and retries are decided by the caller.

        Args:
            step: anything with the step's ZenML `config` (a snapshot's `Step`,
                or a dynamic pipeline's `StepRunInfo`).
        """
        settings = self.step_settings[step_name]
        if image_name not in self.images:
            self.images[image_name] = require_image(self.client, image_name)
        image = self.images[image_name]
        user = settings.run_args.get("user", self.user)
        defaults = dict(DEFAULT_ENVIRONMENT)
        if user is not None and str(user).split(":")[0] not in ("0", "root"):
            defaults["HOME"] = "/tmp"  # a writable home for any uid
        return StepTemplate(
            image=image_name,
            arguments=tuple(arguments),
            upstream=tuple(upstream),
            retry=retry,
            user_environment=_user_environment(step, self.step_environments[step_name]),
            default_environment=defaults,
            image_environment=image_environment(image),
            run_args=dict(settings.run_args),
            limits=self._limits(step_name, step),
            tmpfs=_writable_app_dir(self.client, image, user, self.downloads_code, step_name),
            timeout_seconds=settings.timeout_seconds,
        )

    def _limits(self, step_name: str, step: Any) -> Dict[str, Any]:
        request = resource_request(step.config.resource_settings)
        if request.gpu_count and self._gpu_runtime is None:
            self._gpu_runtime = gpu_runtime_available(self.client)
        return resource_limits(
            request,
            host_cpus=os.cpu_count() or 1,
            gpu_runtime_available=bool(self._gpu_runtime),
            warn=orchestrator_warning,
            step_name=step_name,
        )


def _downloads_code(snapshot: "PipelineSnapshotResponse") -> bool:
    """Whether step containers will download the pipeline's code into /app."""
    docker_settings = snapshot.pipeline_configuration.docker_settings
    return bool(
        (snapshot.code_path and docker_settings.allow_download_from_artifact_store)
        or (snapshot.code_reference and docker_settings.allow_download_from_code_repository)
    )


def _user_environment(step: Any, zenml_environment: Mapping[str, str]) -> Dict[str, str]:
    """The step's environment as the user set it, lowest precedence first.

    ZenML bakes `DockerSettings.environment` and `runtime_environment` into
    the images it builds; with `skip_build` no image is built, so we pass
    them to the container ourselves rather than drop them.
    """
    docker_settings = step.config.docker_settings
    environment: Dict[str, str] = {}
    if docker_settings.skip_build:
        for layer in (docker_settings.environment, docker_settings.runtime_environment):
            environment.update({str(k): str(v) for k, v in layer.items()})
    environment.update(zenml_environment)
    return environment


def _writable_app_dir(client: docker.DockerClient, image: Any, user: Optional[str],
                      downloads_code: bool, step_name: str) -> Dict[str, str]:
    """A tmpfs for /app when the image has no /app this uid can write.

    ZenML's step entrypoint creates /app, changes into it and extracts the
    pipeline's code there. Images ZenML builds have a world-writable /app;
    other images (a parent image used with `skip_build`) may have none, or
    one only root can write.

    Raises:
        InvalidSettingsError: /app holds files this uid cannot write and the
            code must be extracted there.
    """
    state = app_dir_state(client, image, user)
    if state in (AppDir.MISSING, AppDir.EMPTY_READ_ONLY):
        return {APP_DIR: "mode=1777"}
    if state is AppDir.FULL_READ_ONLY and downloads_code:
        raise InvalidSettingsError(
            f"Step '{step_name}': the image {image.tags[0] if image.tags else image.short_id} "
            f"has files in {APP_DIR} that the step's user ({user}) cannot write, and ZenML "
            f"extracts the pipeline's code there. Make {APP_DIR} writable in the image "
            f"(`RUN chmod -R a+rwX {APP_DIR}`), let ZenML build the step image (no "
            "skip_build), or run the step as the image's owner (run_args['user'])."
        )
    return {}


def warn_if_store_in_source_root(snapshot: "PipelineSnapshotResponse") -> None:
    """Warn (once per run) when ZenML's store lives inside the code ZenML archives.

    ZenML packs the pipeline's source root into an archive for every run and
    every step container downloads it. A store inside that folder (say
    ZENML_CONFIG_PATH=./.zen-config) is packed too, with every earlier
    archive in it, so the archive doubles with each run.
    """
    from zenml.config.global_config import GlobalConfiguration
    from zenml.utils import source_utils

    root = Path(source_utils.get_source_root()).resolve()
    config = GlobalConfiguration()
    for store in (Path(config.config_directory), Path(config.local_stores_path)):
        store = store.resolve()
        if store == root or root in store.parents:
            size = ""
            if snapshot.code_path and os.path.exists(snapshot.code_path):
                size = f" (this run's: {os.path.getsize(snapshot.code_path) / 2**20:.2f} MiB)"
            orchestrator_warning(
                f"ZenML's store ({store}) is inside the pipeline's source root ({root}). "
                "ZenML archives the source root for every run, so the archive holds the "
                "store and every earlier archive, grows with each run" + size + ", and "
                "every step container downloads it. Keep ZENML_CONFIG_PATH outside the "
                "project folder (for example the default, ~/.config/zenml)."
            )
            return


def warn_about_run_level_settings_of_steps(request: "RunRequest") -> None:
    """A step that sets a setting of the whole run (`stop_grace_seconds`, say) is
    told that its value is not used, instead of it being dropped in silence."""
    from orchestrator.running.settings import RUN_LEVEL_SETTINGS

    settings = request.settings
    for name, step_settings in request.step_settings.items():
        for key in RUN_LEVEL_SETTINGS:
            if getattr(step_settings, key) != getattr(settings, key):
                orchestrator_warning(
                    f"Step '{name}' sets the orchestrator setting {key}={getattr(step_settings, key)!r}, "
                    f"which applies to the whole run: the run's value "
                    f"{getattr(settings, key)!r} is used. Set it on the pipeline instead.")


def warn_about_unenforced_limits(client: docker.DockerClient,
                                 steps: Mapping[str, StepTemplate]) -> None:
    """Say, before the first step, which ResourceSettings this engine will not enforce.

    A rootless engine on cgroup v1 (Docker) or without delegated cgroup
    controllers (Podman) accepts memory and CPU limits and drops them without
    an error; the user is told once per run, naming the steps, the settings
    and the engine.
    """
    from orchestrator.machine.engine import read_engine_facts
    from orchestrator.machine.engine_facts import unenforced_limits, unenforced_message

    if not any(template.limits for template in steps.values()):
        return
    facts = read_engine_facts(client)
    dropped = {name: unenforced_limits(facts, template.limits)
               for name, template in steps.items()}
    dropped = {name: names for name, names in dropped.items() if names}
    if dropped:
        orchestrator_warning(unenforced_message(facts, dropped))


def orchestrator_warning(message: str) -> None:
    """Warnings about settings we cannot honour go to ZenML's log."""
    from zenml.logger import get_logger

    get_logger("orchestrator").warning(message)
