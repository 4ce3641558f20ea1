"""Errors that tell the user what went wrong and what to do about it.

Every error the orchestrator raises on purpose is one of these, so that a user
never has to read a traceback from deep inside docker-py or ZenML to learn that
Docker is not running or that a setting is misspelled.
"""


class MyDockerError(RuntimeError):
    """Base class for every error raised on purpose by this package."""


class DockerEngineUnavailableError(MyDockerError):
    """No Docker engine answers, so no container can be started."""


class ImageNotFoundError(MyDockerError):
    """A container was asked to run an image the engine does not have."""


class InvalidSettingsError(MyDockerError, ValueError):
    """Orchestrator settings that cannot be turned into a container."""


class BaseImageError(MyDockerError):
    """The parent image could not be found or built."""


class StepFailedError(MyDockerError):
    """One or more steps of a pipeline run failed.

    Attributes:
        failures: one `running.run_outcome.StepFailure` per failed step, in the
            order they failed.
    """

    def __init__(self, message: str, failures: list) -> None:
        super().__init__(message)
        self.failures = failures


class RunStoppedError(MyDockerError):
    """The run was stopped (by the user or a stop request) before it finished."""


class StopRefused(MyDockerError):
    """A run cannot be stopped from where it is watched (already finished or
    stopping, or its stack is gone); the message says why, in ZenML's words."""
