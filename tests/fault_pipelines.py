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
def dies_before_its_record() -> int:
    """Ends its process at once, with exit code 3: ZenML records neither success nor failure."""
    print("leaving with os._exit(3)", flush=True)
    os._exit(3)


@pipeline(enable_cache=False)
def unrecorded_failure_pipeline() -> None:
    needs_value(dies_before_its_record())


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


# -- faults from public bug reports (issue 19) --------------------------------------

@step(enable_cache=True)
def constant(token: str) -> str:
    """The same step, called twice with the same input: ZenML caches the second."""
    return token


@pipeline(enable_cache=True)
def cached_twice_pipeline(token: str) -> None:
    constant(token, id="first")
    constant(token, id="second", after="first")


@step(enable_cache=False)
def speak(word: str) -> str:
    for _ in range(3):
        print(f"I am {word}", flush=True)
    return word


@pipeline(enable_cache=False)
def non_ascii_names_pipeline() -> None:
    for word in ("数据加载", "モデル学習", "обучение"):
        speak(word, id=word)


# A tool that prints 64 MiB of carriage-return progress without a newline, then
# its last lines (the last without a newline either).
PROGRESS_TOOL = """
import sys
block = "".join("\\rfetching shard %5d of 99999 [%3d%%]" % (i, i % 100)
                for i in range(1, 30001)).encode()
out = sys.stdout.buffer
out.write(block * ({megabytes} * 1024 * 1024 // len(block)))
out.write(b"\\nlast line one\\nlast line two, no newline")
"""


def _run_progress_tool(megabytes: int) -> int:
    import subprocess

    subprocess.run([sys.executable, "-c", PROGRESS_TOOL.format(megabytes=megabytes)],
                   check=True)
    return megabytes


@step(enable_cache=False)
def progress_flood(megabytes: int) -> int:
    """Runs the progress tool (its output goes straight to the container's)."""
    return _run_progress_tool(megabytes)


@pipeline(enable_cache=False)
def progress_flood_pipeline(megabytes: int = 64) -> None:
    progress_flood(megabytes)


@step(enable_cache=False, runtime="isolated")
def isolated_progress_flood(megabytes: int) -> int:
    """The same tool in an isolated step of a dynamic pipeline (its own container)."""
    return _run_progress_tool(megabytes)


@pipeline(dynamic=True, enable_cache=False)
def dynamic_progress_flood_pipeline(megabytes: int = 8) -> None:
    isolated_progress_flood(megabytes)


@step(enable_cache=False)
def loads_too_much() -> int:
    """Prints what it does (no flush), then runs out of memory."""
    for shard in (1, 2, 3):
        print(f"loading shard {shard} of 3")
    hoard = []
    while True:
        hoard.append(bytearray(32 * 1024 * 1024))


@pipeline(enable_cache=False)
def out_of_memory_pipeline() -> None:
    loads_too_much()


@step(enable_cache=False)
def leaves_a_thread() -> int:
    """Returns at once, but leaves a thread that is not a daemon running."""
    import threading
    import time

    threading.Thread(target=time.sleep, args=(300,), daemon=False).start()
    return 1


@pipeline(enable_cache=False)
def lingering_pipeline() -> None:
    needs_value(leaves_a_thread())


@step(enable_cache=False)
def checkpoints_on_sigterm(checkpoint_seconds: float = 13.0) -> int:
    """Trains until SIGTERM, then needs `checkpoint_seconds` to save a checkpoint."""
    import signal
    import time

    stopping = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))
    print("training", flush=True)
    deadline = time.monotonic() + 300
    while not stopping and time.monotonic() < deadline:
        time.sleep(0.1)
    print("SIGTERM: saving a checkpoint", flush=True)
    time.sleep(checkpoint_seconds)
    print("checkpoint saved", flush=True)
    os._exit(0)


@pipeline(enable_cache=False)
def checkpoint_pipeline() -> None:
    checkpoints_on_sigterm()


@step(enable_cache=False)
def slow_to_stop(stop_seconds: float = 1.8) -> int:
    """Runs long; on SIGTERM takes `stop_seconds` to stop."""
    import signal
    import time

    def stop(signum, frame):
        time.sleep(stop_seconds)
        os._exit(143)

    signal.signal(signal.SIGTERM, stop)
    print("working", flush=True)
    time.sleep(300)
    return 1


@pipeline(enable_cache=False)
def slow_to_stop_pipeline() -> None:
    slow_to_stop(id="slow_a")
    slow_to_stop(id="slow_b")


@step(enable_cache=False)
def ticks(seconds: int = 14) -> int:
    """Prints one numbered line a second."""
    import time

    for number in range(seconds):
        print(f"tick {number}", flush=True)
        time.sleep(1)
    return seconds


@pipeline(enable_cache=False)
def ticking_pipeline() -> None:
    ticks()


@pipeline(enable_cache=False)
def other_process_pipeline(seconds: float = 20.0) -> None:
    """Started by another process on the same store, while a live panel waits."""
    sleeps_unless_retried(seconds=seconds)
