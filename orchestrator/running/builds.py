"""ZenML's image builds on a my_docker stack: checked first, and leaving nothing behind.

ZenML builds the step image before `submit_pipeline`; the orchestrator sees
the builds in `get_docker_builds` and in its stack validator. Two things are
done there: a missing parent image is reported before `docker build` fails
deep inside with a registry error, and docker-py's build options `rm` and
`forcerm` are turned on, because ZenML builds with docker-py's default
`rm=False`, which leaves one stopped container per build step on the engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional, Tuple

if TYPE_CHECKING:
    from zenml.config import DockerSettings
    from zenml.config.build_configuration import BuildConfiguration
    from zenml.config.docker_settings import DockerBuildConfig
    from zenml.stack import Stack


def engine_answers(stack: "Stack") -> Tuple[bool, str]:
    """The stack validator: (True, "") if a Docker engine answers, else (False, why)."""
    from orchestrator.errors import DockerEngineUnavailableError
    from orchestrator.machine.engine import connect

    try:
        connect()
    except DockerEngineUnavailableError as error:
        return False, str(error)
    return True, ""


def prepare_builds(builds: List["BuildConfiguration"]) -> List["BuildConfiguration"]:
    """`builds` with intermediate containers removed, after checking parent images.

    Raises:
        ImageNotFoundError: a parent image is neither local nor pullable.
    """
    from zenml.utils.pipeline_docker_image_builder import DEFAULT_DOCKER_PARENT_IMAGE

    from orchestrator.machine.engine import connect
    from orchestrator.running.containers import require_parent_image

    prepared = [
        build.model_copy(update={"settings": removing_build_containers(build.settings)})
        for build in builds
    ]
    client = None
    for build in prepared:
        settings = build.settings
        if settings.dockerfile or settings.skip_build:
            continue
        client = client or connect()
        require_parent_image(client, settings.parent_image or DEFAULT_DOCKER_PARENT_IMAGE)
    return prepared


def removing_build_containers(settings: "DockerSettings") -> "DockerSettings":
    """`settings` with docker-py's `rm` and `forcerm` build options turned on."""
    update = {"build_config": _with_removal(settings.build_config)}
    if settings.dockerfile:  # ZenML builds the parent image too
        update["parent_image_build_config"] = _with_removal(settings.parent_image_build_config)
    return settings.model_copy(update=update)


def _with_removal(config: Optional["DockerBuildConfig"]) -> "DockerBuildConfig":
    from zenml.config.docker_settings import DockerBuildConfig, DockerBuildOptions

    config = config or DockerBuildConfig()
    options = config.build_options.model_dump() if config.build_options else {}
    options.update(rm=True, forcerm=True)
    return config.model_copy(update={"build_options": DockerBuildOptions.model_validate(options)})
