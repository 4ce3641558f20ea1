"""Small dynamic pipelines (ZenML 0.98, `@pipeline(dynamic=True)`) that show what `my_docker` does.

A dynamic pipeline's function runs when the pipeline runs, so its steps can
depend on data only known then: a loop of `.submit()` calls over a step's
output, a `.map()` over an artifact's items. ZenML runs each step call
either *inline* (in the orchestration process, on the host) or *isolated*
(handed to the orchestrator, which `my_docker` runs in a container of its
own). A step is isolated when it says `runtime="isolated"`, asks for
resources (`ResourceSettings`), or has Docker settings of its own; the steps
here say `runtime="isolated"`, except `describe`, which shows an inline step.

Used by the tests, the README and the benchmarks; they stay tiny and
deterministic. Every step prints the host it runs on: a container's host
name is its short id.
"""

import os
import socket
import time
from typing import List

from zenml import pipeline, step, unmapped
from zenml.config.retry_config import StepRetryConfig


def where() -> str:
    """Where this code runs: host name (a container's short id) and pid."""
    return f"host={socket.gethostname()} pid={os.getpid()}"


@step(runtime="isolated")
def make_items(count: int = 3) -> List[int]:
    """Runtime data: the numbers 1..count, known only once this step ran."""
    print(f"make_items {where()}", flush=True)
    return list(range(1, count + 1))


@step(runtime="isolated")
def square(value: int, seconds: float = 1.0) -> int:
    """Stands for real work on one item: waits, then squares it."""
    print(f"square({value}) {where()}", flush=True)
    time.sleep(seconds)
    return value * value


@step(runtime="isolated")
def add_up(values: List[int]) -> int:
    """Joins any number of results."""
    print(f"add_up({values}) {where()}", flush=True)
    return sum(values)


@step
def describe(values: List[int]) -> str:
    """No runtime given: ZenML runs it inline, in the orchestration process."""
    print(f"describe {where()}", flush=True)
    return f"{len(values)} values, total {sum(values)}"


@pipeline(dynamic=True, enable_cache=False)
def dynamic_fan_out(count: int = 3, seconds: float = 1.0):
    """make_items -> a loop of .submit() over its output, and a .map() over it -> add_up.

    The number of `square` steps is decided by `make_items`' output, at run
    time: `count` of them from the loop, `count` from the map.
    """
    items = make_items(count)  # a plain call: waits, returns the output artifact
    futures = [square.submit(value=value, seconds=seconds, id=f"square_{value}")
               for value in items.load()]  # a loop over runtime data, all at once
    mapped = square.map(value=items, seconds=unmapped(seconds))  # one step per item
    looped = add_up.submit(values=futures, id="add_loop")  # futures are valid inputs
    total = add_up(values=[looped.load()] + mapped.load(), id="add_all")
    describe(values=mapped.load())  # an inline step, on the host
    return total


@step(runtime="isolated")
def sleep_for(seconds: float = 60.0) -> float:
    """A long isolated step: something to stop, interrupt or time out."""
    print(f"sleeping {seconds} s {where()}", flush=True)
    time.sleep(seconds)
    return seconds


@pipeline(dynamic=True, enable_cache=False)
def dynamic_sleepers(count: int = 2, seconds: float = 60.0, retries: int = 0) -> None:
    """`count` long steps at once, then one more: something to stop, interrupt or resume."""
    sleeper = sleep_for
    if retries:
        sleeper = sleeper.with_options(retry=StepRetryConfig(max_retries=retries, delay=0))
    futures = [sleeper.submit(seconds=seconds, id=f"sleeper_{i}") for i in range(count)]
    sleep_for(seconds=1.0, after=futures, id="after_sleepers")


@step(runtime="isolated")
def fail_soon(seconds: float = 2.0) -> int:
    """Works a little, then fails."""
    time.sleep(seconds)
    raise RuntimeError(f"gave up after {seconds} s on purpose")


@pipeline(dynamic=True, enable_cache=False)
def dynamic_fail_fast(seconds: float = 120.0) -> None:
    """A long submitted step next to one that fails: FAIL_FAST stops the long one."""
    sleep_for.submit(seconds=seconds, id="slow")
    fail_soon()


@step(runtime="isolated")
def sleeps_unless_retried(seconds: float = 60.0) -> int:
    """Hangs on its first attempt (past any sane timeout), is quick on the next.

    ZenML retries an isolated step as a new step run, in a new container; its
    attempt number (the step run's version) is MY_DOCKER_STEP_ATTEMPT.
    """
    attempt = int(os.environ.get("MY_DOCKER_STEP_ATTEMPT", "1"))
    print(f"attempt {attempt} {where()}", flush=True)
    if attempt == 1:
        time.sleep(seconds)
    return attempt


@pipeline(dynamic=True, enable_cache=False)
def dynamic_hanging(seconds: float = 60.0, retries: int = 0) -> None:
    """One isolated step that hangs on its first attempt (for timeouts), retried `retries` times."""
    hanging = sleeps_unless_retried
    if retries:
        hanging = hanging.with_options(retry=StepRetryConfig(max_retries=retries, delay=0))
    hanging(seconds=seconds)


@step(runtime="isolated")
def hog_memory(megabytes: int = 400) -> int:
    """Touches `megabytes` of memory: killed when its container's limit is lower."""
    block = bytearray(megabytes * 1024 * 1024)
    for i in range(0, len(block), 4096):
        block[i] = 1
    return megabytes


@pipeline(dynamic=True, enable_cache=False)
def dynamic_memory_hog(megabytes: int = 400) -> None:
    """One isolated step that needs more memory than it may have."""
    hog_memory(megabytes=megabytes)
