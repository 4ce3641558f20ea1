"""Small pipelines that show what the orchestrator does, each in a few lines.

They are used by the demo (`python -m orchestrator.teaching.demo`), the integration tests
and the benchmarks, so they stay tiny and deterministic: the interesting part
is how their steps are run, not what they compute.
"""

import os
import time
from typing import List

from zenml import pipeline, step


@step
def load_numbers(count: int = 5) -> List[int]:
    """The source of every example: the numbers 1..count."""
    return list(range(1, count + 1))


@step
def slow_double(numbers: List[int], seconds: float = 2.0) -> List[int]:
    """Stands for real work: waits, then doubles every number."""
    time.sleep(seconds)
    return [2 * n for n in numbers]


@step
def total(left: List[int], right: List[int]) -> int:
    """Joins two branches into one number."""
    return sum(left) + sum(right)


@pipeline(enable_cache=False)
def demo_pipeline(count: int = 5, seconds: float = 2.0) -> None:
    """load -> two independent slow steps -> join: the branches run in parallel."""
    numbers = load_numbers(count)
    left = slow_double(numbers, seconds=seconds, id="double_left")
    right = slow_double(numbers, seconds=seconds, id="double_right")
    total(left, right)


@step
def sleep_then_echo(value: int, seconds: float = 3.0) -> int:
    """One independent branch of the fan-out."""
    time.sleep(seconds)
    return value


@step
def join_six(a: int, b: int, c: int, d: int, e: int, f: int) -> int:
    """Waits for all six branches."""
    return a + b + c + d + e + f


@step
def first_value() -> int:
    return 1


@pipeline(enable_cache=False)
def fan_out_pipeline(seconds: float = 3.0) -> None:
    """One source, six independent sleeping steps, one join."""
    source = first_value()
    branches = [
        sleep_then_echo(source, seconds=seconds, id=f"sleep_{i}") for i in range(6)
    ]
    join_six(*branches)


@step
def increment(value: int) -> int:
    """A trivial step: the per-step overhead is all that is measured."""
    return value + 1


@pipeline(enable_cache=False)
def chain_pipeline(length: int = 6) -> None:
    """A chain of trivial steps, each waiting for the one before."""
    value = first_value()
    for i in range(length - 1):
        value = increment(value, id=f"increment_{i + 1}")


@step
def fail_with(exit_code: int = 3, message: str = "this step fails on purpose") -> int:
    """A step that fails, printing a recognisable last line."""
    print(message, flush=True)
    if exit_code:
        raise RuntimeError(message)
    return 0


@pipeline(enable_cache=False)
def failing_pipeline() -> None:
    """source -> failing step -> downstream; plus an independent branch."""
    source = first_value()
    broken = fail_with()
    increment(broken, id="after_failure")
    sleep_then_echo(source, seconds=1.0, id="independent")


@step
def report_user() -> str:
    """Which uid:gid the step container runs as."""
    return f"{os.getuid()}:{os.getgid()}"


@step
def read_environment(name: str = "MY_FLAG") -> str:
    """The value of one environment variable inside the step container."""
    return os.environ.get(name, "")


@pipeline(enable_cache=False)
def settings_pipeline() -> None:
    """Shows which settings reached the container: environment and user."""
    read_environment()
    report_user()


@step
def hog_memory_on_first_attempt(megabytes: int = 400) -> int:
    """Gets killed for memory on its first attempt, succeeds on the next.

    The orchestrator tells a step which attempt it is in MY_DOCKER_STEP_ATTEMPT.
    """
    attempt = int(os.environ.get("MY_DOCKER_STEP_ATTEMPT", "1"))
    if attempt == 1:
        block = bytearray(megabytes * 1024 * 1024)
        for i in range(0, len(block), 4096):
            block[i] = 1
    return attempt


@pipeline(enable_cache=False)
def memory_retry_pipeline(megabytes: int = 400) -> None:
    """One step that runs out of memory once and is retried."""
    hog_memory_on_first_attempt(megabytes)


@step
def join_two(a: int, b: int) -> int:
    """Waits for two branches."""
    return a + b


@pipeline(enable_cache=False)
def long_pipeline(seconds: float = 60.0) -> None:
    """Two long parallel steps and a join: something to stop or interrupt."""
    source = first_value()
    left = sleep_then_echo(source, seconds=seconds, id="long_left")
    right = sleep_then_echo(source, seconds=seconds, id="long_right")
    join_two(left, right)


@step
def fail_after(value: int, seconds: float = 2.0) -> int:
    """Works for a while, then fails: starts together with its siblings."""
    time.sleep(seconds)
    raise RuntimeError(f"gave up after {seconds} s on purpose")


@pipeline(enable_cache=False)
def failure_modes_pipeline(seconds: float = 20.0) -> None:
    """A failure next to a slow branch, to compare the execution modes.

    `slow_branch` is running when `fail_after` fails; `late_branch` waits for
    it, so it has not started yet; `after_failure` needs the failed step.
    """
    source = first_value()
    slow = sleep_then_echo(source, seconds=seconds, id="slow_branch")
    increment(slow, id="late_branch")
    broken = fail_after(source, seconds=2.0)
    increment(broken, id="after_failure")
