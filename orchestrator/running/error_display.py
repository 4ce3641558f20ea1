"""Show the orchestrator's own errors as their message, not as a traceback.

When a step fails, `StepFailedError` already says which step, how, the
exception and where the full log is. Printed as an uncaught exception, it
would come inside ZenML's boxed traceback of the client's frames (about 100
lines in a terminal, a screen of frames in a notebook) that say nothing about
the step. Command-line tools print their own errors as a message (click's
`ClickException` does); this module does the same, in a terminal
(`sys.excepthook`) and in IPython/Jupyter (`InteractiveShell.set_custom_exc`),
for the errors whose message says all there is to say:

- `MyDockerError` and its subclasses (ours);
- pydantic's `ValidationError` of our settings (`max_parallelism=0`): raised
  inside ZenML's compiler, it names the field, the value and the rule;
- ZenML's `StackValidationError`, which carries our validator's message
  (no Docker engine answers, and what to do).

Every other exception keeps its traceback. Set MY_DOCKER_FULL_TRACEBACKS=1 to
keep full tracebacks for these too.
"""

from __future__ import annotations

import os
import sys
from typing import Any, List

from orchestrator.errors import MyDockerError

FULL_TRACEBACKS_ENV = "MY_DOCKER_FULL_TRACEBACKS"
_installed = {"terminal": False, "ipython": False}


# pydantic names a ValidationError after the model that refused the input.
OUR_SETTINGS_MODELS = ("MyDockerOrchestratorSettings", "MyDockerOrchestratorConfig")


def is_told_briefly(error: BaseException) -> bool:
    """Whether `error`'s message says all there is to say (see the module's docstring)."""
    if isinstance(error, MyDockerError):
        return True
    kind = type(error).__name__
    if kind == "StackValidationError":
        return True
    return kind == "ValidationError" and getattr(error, "title", "") in OUR_SETTINGS_MODELS


def brief(error: BaseException) -> List[str]:
    """The lines that show `error`: its type and message."""
    if type(error).__name__ == "ValidationError":
        first = f"InvalidSettings: the my_docker orchestrator's settings were refused. {error}"
    else:
        first = f"{type(error).__name__}: {error}"
    return [first, f"(traceback hidden: set {FULL_TRACEBACKS_ENV}=1 to see it)"]


def show_our_errors_briefly() -> None:
    """Install the brief display, once per process (no-op if the user opted out)."""
    if os.environ.get(FULL_TRACEBACKS_ENV, "").lower() in ("1", "true", "yes"):
        return
    _install_in_ipython()
    if not _installed["terminal"]:
        previous = sys.excepthook

        def excepthook(kind: type, error: BaseException, traceback: Any) -> None:
            if is_told_briefly(error):
                print("\n".join(brief(error)), file=sys.stderr)
            else:
                previous(kind, error, traceback)

        sys.excepthook = excepthook
        _installed["terminal"] = True


def _install_in_ipython() -> None:
    if _installed["ipython"]:
        return
    ipython = sys.modules.get("IPython")  # only where IPython already runs: never import it
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or not hasattr(shell, "set_custom_exc"):
        return

    def handler(self: Any, kind: type, error: BaseException, traceback: Any,
                tb_offset: Any = None) -> List[str]:
        if is_told_briefly(error):
            lines = brief(error)
        else:  # a pydantic error of another model: its usual traceback
            lines = self.InteractiveTB.structured_traceback(kind, error, traceback,
                                                            tb_offset=tb_offset)
        # Shown as the cell's error output: the cell still fails.
        self._showtraceback(kind, error, lines)
        return lines

    shell.set_custom_exc(tuple(_classes_told_briefly()), handler)
    _installed["ipython"] = True


def _classes_told_briefly() -> List[type]:
    """The exception classes IPython hands to our handler (it picks by class)."""
    classes: List[type] = [MyDockerError]
    for module, name in (("zenml.exceptions", "StackValidationError"),
                         ("pydantic", "ValidationError")):
        loaded = sys.modules.get(module)
        if loaded is not None and hasattr(loaded, name):
            classes.append(getattr(loaded, name))
    return classes
