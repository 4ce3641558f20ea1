"""Reference solutions of the tutorial's class exercises: the flavor's classes.

The reader writes the classes ZenML knows an orchestrator by: the settings
and the config (one exercise: the config carries the settings' fields as
the registered component's defaults) and the flavor. The settings grow: a
field in notebook 4 (``max_parallelism``), one and a config property in
notebook 5 (``stop_grace_seconds``, ``handles_step_retries``). So the
settings-and-config piece is written three times (`piece_plan.PIECES`: its
notebook-4 and notebook-5 versions are ``MyOrchestratorConfig@4`` and
``@5``), each replacing the one before in the file from its stage on.

Each source is an exercise cell as a reader would write it: its own
imports, then the classes. They are text, not classes of this module,
because the three versions of ``MyOrchestratorConfig`` share one name
(`checked_pieces.reference_piece` executes the text, as it executes a reader's
cell). The package's own classes: `orchestrator.running.settings` and
`orchestrator.my_docker_orchestrator`.
"""

from typing import Dict

_SETTINGS_AND_CONFIG_2 = '''\
from zenml.config.base_settings import BaseSettings
from zenml.orchestrators import BaseOrchestratorConfig


class MyOrchestratorSettings(BaseSettings):
    """What a pipeline (or a step) may set under settings={"orchestrator": {...}}."""

    announce: bool = True  # log a line before each step


class MyOrchestratorConfig(BaseOrchestratorConfig, MyOrchestratorSettings):
    """A registered component's options; they are the settings' defaults."""

    @property
    def is_local(self) -> bool:
        return True  # runs on this machine

    @property
    def is_synchronous(self) -> bool:
        return True  # the pipeline call returns when the run is over
'''

_SETTINGS_AND_CONFIG_4 = '''\
from zenml.config.base_settings import BaseSettings
from zenml.orchestrators import BaseOrchestratorConfig


class MyOrchestratorSettings(BaseSettings):
    """What a pipeline (or a step) may set under settings={"orchestrator": {...}}."""

    max_parallelism: int = 4  # step containers running at once


class MyOrchestratorConfig(BaseOrchestratorConfig, MyOrchestratorSettings):
    """A registered component's options; they are the settings' defaults."""

    @property
    def is_local(self) -> bool:
        return True

    @property
    def is_synchronous(self) -> bool:
        return True
'''

_SETTINGS_AND_CONFIG_5 = '''\
from zenml.config.base_settings import BaseSettings
from zenml.orchestrators import BaseOrchestratorConfig


class MyOrchestratorSettings(BaseSettings):
    """What a pipeline (or a step) may set under settings={"orchestrator": {...}}."""

    max_parallelism: int = 4  # step containers running at once
    stop_grace_seconds: int = 5  # SIGTERM to SIGKILL when a step is stopped


class MyOrchestratorConfig(BaseOrchestratorConfig, MyOrchestratorSettings):
    """A registered component's options; they are the settings' defaults."""

    @property
    def is_local(self) -> bool:
        return True

    @property
    def is_synchronous(self) -> bool:
        return True

    @property
    def handles_step_retries(self) -> bool:
        return True  # we retry whole containers (ZenML must not retry inside one)
'''

_FLAVOR = '''\
from typing import Type

from zenml.orchestrators import BaseOrchestrator, BaseOrchestratorConfig, BaseOrchestratorFlavor


class MyOrchestratorFlavor(BaseOrchestratorFlavor):
    """The flavor: a name, and where the config and implementation are."""

    @property
    def name(self) -> str:
        return "my_orchestrator"

    @property
    def config_class(self) -> Type[BaseOrchestratorConfig]:
        return MyOrchestratorConfig

    @property
    def implementation_class(self) -> Type[BaseOrchestrator]:
        return MyOrchestrator
'''

# piece -> its reference source (an exercise cell)
CLASS_SOURCES: Dict[str, str] = {
    "MyOrchestratorConfig": _SETTINGS_AND_CONFIG_2,
    "MyOrchestratorConfig@4": _SETTINGS_AND_CONFIG_4,
    "MyOrchestratorConfig@5": _SETTINGS_AND_CONFIG_5,
    "MyOrchestratorFlavor": _FLAVOR,
}
