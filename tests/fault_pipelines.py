"""Small pipelines that hit faults real pipelines hit (issue "Right on a real user's machine").

The tests copy this file into the project folder (ZenML's source root), so
that step containers import it from the code ZenML ships them, as they would
a user's module.
"""

import os
import sys

from zenml import pipeline, step


@step
def exits_early() -> int:
    """Ends its process with exit code 0 before returning a value."""
    print("leaving with sys.exit(0)", flush=True)
    sys.exit(0)


@step
def needs_value(value: int) -> int:
    return value + 1


@pipeline(enable_cache=False)
def early_exit_pipeline() -> None:
    needs_value(exits_early())


@step
def named_step() -> str:
    return "ok"


@pipeline(enable_cache=False)
def look_alike_names_pipeline() -> None:
    """Step names that only differ in characters a container name cannot hold."""
    for name in ("prep 1", "prep-1", "prep_1", "prép/1", "x" * 120):
        named_step(id=name)


@step
def python_path() -> str:
    """The step's import path (sys.path), joined with ':'."""
    return ":".join(sys.path)


@step
def import_user_module() -> str:
    """Imports a module from a folder the user put on PYTHONPATH."""
    import user_helpers

    return user_helpers.GREETING


@pipeline(enable_cache=False)
def python_path_pipeline() -> None:
    python_path()


@pipeline(enable_cache=False)
def user_module_pipeline() -> None:
    import_user_module()


@step
def say_hello() -> int:
    print("hello from the step's own log", flush=True)
    return 1


@pipeline(enable_cache=False)
def two_step_pipeline() -> None:
    needs_value(say_hello())


@step
def sleeps_unless_retried(seconds: float = 60.0) -> int:
    """Hangs on its first attempt (past any sane timeout), is quick on the next."""
    import time

    attempt = int(os.environ.get("MY_DOCKER_STEP_ATTEMPT", "1"))
    if attempt == 1:
        time.sleep(seconds)
    return attempt


@pipeline(enable_cache=False)
def hanging_pipeline() -> None:
    sleeps_unless_retried()
