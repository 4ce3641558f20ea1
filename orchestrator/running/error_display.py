"""Show the orchestrator's own errors as their message, not as a traceback.

When a step fails, `StepFailedError` already says which step, how, the
exception and where the full log is. Printed as an uncaught exception, it
would come inside ZenML's boxed traceback of the client's frames (about 100
lines in a terminal, a screen of frames in a notebook) that say nothing about
the step. Command-line tools print their own errors as a message (click's
`ClickException` does); this module does the same for `MyDockerError` and its
subclasses only, in a terminal (`sys.excepthook`) and in IPython/Jupyter
(`InteractiveShell.set_custom_exc`). Every other exception keeps its
traceback. Set MY_DOCKER_FULL_TRACEBACKS=1 to keep full tracebacks for ours too.
"""

from __future__ import annotations

import os
import sys
from typing import Any, List

from orchestrator.errors import MyDockerError

FULL_TRACEBACKS_ENV = "MY_DOCKER_FULL_TRACEBACKS"
_installed = {"terminal": False, "ipython": False}


def brief(error: BaseException) -> List[str]:
    """The lines that show `error`: its type and message."""
    return [f"{type(error).__name__}: {error}",
            f"(traceback hidden: set {FULL_TRACEBACKS_ENV}=1 to see it)"]


def show_our_errors_briefly() -> None:
    """Install the brief display, once per process (no-op if the user opted out)."""
    if os.environ.get(FULL_TRACEBACKS_ENV, "").lower() in ("1", "true", "yes"):
        return
    _install_in_ipython()
    if not _installed["terminal"]:
        previous = sys.excepthook

        def excepthook(kind: type, error: BaseException, traceback: Any) -> None:
            if isinstance(error, MyDockerError):
                print("\n".join(brief(error)), file=sys.stderr)
            else:
                previous(kind, error, traceback)

        sys.excepthook = excepthook
        _installed["terminal"] = True


def _install_in_ipython() -> None:
    if _installed["ipython"]:
        return
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or not hasattr(shell, "set_custom_exc"):
        return

    def handler(self: Any, kind: type, error: BaseException, traceback: Any,
                tb_offset: Any = None) -> List[str]:
        lines = brief(error)
        # Shown as the cell's error output: the cell still fails.
        self._showtraceback(kind, error, lines)
        return lines

    shell.set_custom_exc((MyDockerError,), handler)
    _installed["ipython"] = True
