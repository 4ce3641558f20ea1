"""Which functions run a flavor's run, check it and end it: named, so another process finds them.

Both flavors run a pipeline here (`synchronous=True`) or in a detached
orchestration process (`detached`). What differs between them is which
function runs the run (`my_docker`: `pipeline_run.run_pipeline` or
`dynamic.run_dynamic_pipeline`; `my_swarm`: its swarm's run, with the
cluster's options), which quick checks fail the pipeline call before a run
is handed over, and how an orphaned run's containers or services are
removed. The flavor says which (`RunFunctions`); the detached machinery
stores them by name in the run's submission and its orchestration record,
so the orchestration process, its watchdog and anyone who settles an
orphaned run later (`orphans`) call the same functions, without this
package importing the flavors' own packages (they stand on it, not the
other way round).

A function is named as "module:qualified name" and must be importable at
module level; its keyword arguments must be JSON (they go through a file).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Optional


@dataclass(frozen=True)
class FunctionCall:
    """A module-level function and the keyword arguments it is called with, storable as JSON.

    Attributes:
        function: "module:qualified name", e.g. "orchestrator.running.pipeline_run:run_pipeline".
        kwargs: JSON values, passed as keyword arguments after the call's own.
    """

    function: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, function: Callable[..., Any], **kwargs: Any) -> "FunctionCall":
        """Name `function` (defined at a module's top level) with its keyword arguments."""
        return cls(f"{function.__module__}:{function.__qualname__}", dict(kwargs))

    def load(self) -> Callable[..., Any]:
        """The function itself.

        Raises:
            ImportError, AttributeError: its module or name no longer exists.
        """
        module, _, name = self.function.partition(":")
        found: Any = importlib.import_module(module)
        for part in name.split("."):
            found = getattr(found, part)
        return found

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.load()(*args, **kwargs, **self.kwargs)

    def to_json(self) -> Dict[str, Any]:
        return {"function": self.function, "kwargs": dict(self.kwargs)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "FunctionCall":
        return cls(str(data["function"]), dict(data.get("kwargs") or {}))


@dataclass(frozen=True)
class RunFunctions:
    """How one flavor runs one run, checks it and ends it once orphaned.

    Attributes:
        run: runs the request to its end: `run(request, detached=bool)`;
            raises what a synchronous pipeline call raises (StepFailedError,
            RunStoppedError, ...).
        check: the quick checks made before a run is handed to a detached
            process, so that a mistake fails the pipeline call itself:
            `check(request)`; raises MyDockerError (InvalidSettingsError, ...).
        remove: kills and removes everything of a run whose orchestration
            process died: `remove(run)` (ZenML's run record) -> how many
            containers or services there were. None: the run's containers on
            this machine's engine (`orphans.remove_run_containers`).
    """

    run: FunctionCall
    check: FunctionCall
    remove: Optional[FunctionCall] = None

    def to_json(self) -> Dict[str, Any]:
        return {"run": self.run.to_json(), "check": self.check.to_json(),
                "remove": None if self.remove is None else self.remove.to_json()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "RunFunctions":
        remove = data.get("remove")
        return cls(run=FunctionCall.from_json(data["run"]),
                   check=FunctionCall.from_json(data["check"]),
                   remove=None if remove is None else FunctionCall.from_json(remove))
