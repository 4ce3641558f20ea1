"""Small pipelines for the early-start and done-line tests (issue "Per-step cost near the floor").

The tests copy this file into the project folder (ZenML's source root), so
that step containers import it from the code ZenML ships them, as they would
a user's module. Times are epoch seconds, taken inside the step function.
"""

import os
import time
from pathlib import Path

from zenml import pipeline, step
from zenml.config.retry_config import StepRetryConfig

# Test hooks, both set through the step containers' environment. Their values
# are names of files in ZenML's local stores folder (the same path in every
# step container and on the host).
CRASH_ENV = "CRASH_WHILE_WAITING"  # an early container touches this file, then dies
WAIT_ENV = "SLOW_SOURCE_WAITS_FOR"  # slow_source returns only once this file exists


def _shared_file(name: str) -> Path:
    return Path(os.environ["ZENML_LOCAL_STORES_PATH"]) / name


if os.environ.get(CRASH_ENV) and os.environ.get("MY_DOCKER_GATE"):
    _shared_file(os.environ[CRASH_ENV]).touch()  # a container started early dies in its
    os._exit(3)  # warm-up (which imports this module), before its gate opens


@step
def slow_source(seconds: float = 4.0) -> float:
    """Works for `seconds` (and until the file named by WAIT_ENV exists, if set: a busy
    machine may be slower than any fixed time), then says when it finished its work."""
    print("slow_source is working", flush=True)
    time.sleep(seconds)
    if os.environ.get(WAIT_ENV):
        deadline = time.time() + 180
        while not _shared_file(os.environ[WAIT_ENV]).exists() and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # and what made it may be seen by the orchestrator
    return time.time()


@step
def note_start(upstream_done: float) -> float:
    """When this step's function started."""
    print("note_start runs after its upstream step", flush=True)
    return time.time()


@pipeline(enable_cache=False)
def gated_chain(seconds: float = 4.0) -> None:
    """A slow step and the step that needs its output."""
    note_start(slow_source(seconds), id="second")


@step(retry=StepRetryConfig(max_retries=1, delay=0))
def flaky_on_first_attempt(value: float) -> int:
    """Fails its first attempt, succeeds on the retry."""
    if os.environ.get("MY_DOCKER_STEP_ATTEMPT") == "1":
        raise RuntimeError("the first attempt fails on purpose")
    return 2


@step
def add_one(value: int) -> int:
    return value + 1


@pipeline(enable_cache=False)
def retried_chain() -> None:
    """source -> a step retried once -> a step waiting for it (started early)."""
    add_one(flaky_on_first_attempt(slow_source(1.0)))


@step
def sleep_a_little(value: float, seconds: float = 1.0) -> float:
    time.sleep(seconds)
    return value


@pipeline(enable_cache=False)
def long_wait_short_step(wait: float = 8.0, timeout: float = 5.0) -> None:
    """A step whose container waits longer than its timeout for a slow upstream step."""
    limited = sleep_a_little.with_options(settings={"orchestrator": {"timeout_seconds": timeout}})
    limited(slow_source(wait))


@step
def print_without_newline() -> int:
    """Output whose last line has no newline, right before the done line."""
    print("no newline at the end", end="", flush=True)
    return 7


@pipeline(enable_cache=False)
def unterminated_output() -> None:
    add_one(print_without_newline())
