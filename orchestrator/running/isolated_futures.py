"""A prompt `future.load()` for isolated steps: an optional patch of one private ZenML method.

In a dynamic pipeline, a step started with `.submit()` returns a future;
`future.load()` waits for the step to end. ZenML 0.98 waits 1, 2, 4 ... 64 s
between its looks, so the pipeline function may go on up to a minute after
the step ended. While a dynamic run goes on (`dynamic.run_dynamic_pipeline`),
the same wait asks every `future_poll_seconds` instead (the setting;
None leaves ZenML's wait alone).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any, Iterator, Optional

from zenml.enums import ExecutionStatus

logger = logging.getLogger("orchestrator.my_docker_orchestrator")

_patch_lock = threading.Lock()
_patch_users = [0]


@contextlib.contextmanager
def prompt_isolated_futures(interval: Optional[float]) -> Iterator[None]:
    """While a run goes on, a pipeline function waiting on a submitted isolated
    step's future asks every `interval` seconds instead of ZenML's backoff.

    ZenML 0.98's `_IsolatedStepFuture._wait_for_step_to_finish` (private)
    waits 1, 2, 4 ... 64 s between looks, so `future.load()` may return up
    to a minute after the step ended. Its loop is replaced by the same loop
    with a fixed pause: the same statuses end the wait (not PROVISIONING,
    RUNNING or RETRYING), the submission is re-checked on each round. If the
    method is not where 0.98 has it, ZenML's own wait is kept, with a
    warning. `future_poll_seconds=None` turns this off. Runs at the same time
    in one process share the patch; the last to end puts ZenML's method back.
    """
    if interval is None:
        yield
        return
    try:
        from zenml.execution.pipeline.dynamic import outputs
        from zenml.execution.pipeline.dynamic.utils import get_latest_step_run

        future_class = outputs._IsolatedStepFuture
        original = future_class.__dict__["_wait_for_step_to_finish"]
    except (ImportError, AttributeError, KeyError):
        logger.warning("ZenML's isolated-step futures are not where ZenML 0.98 keeps them: "
                       "future.load() uses ZenML's own wait (up to 64 s between looks).")
        yield
        return
    waiting = {ExecutionStatus.PROVISIONING, ExecutionStatus.RUNNING, ExecutionStatus.RETRYING}

    def wait_for_step_to_finish(future: Any) -> Any:
        while True:
            if future._wrapped:  # the submission may have failed, or been replaced by a retry
                future._wrapped.result()
            step_run = get_latest_step_run(future.pipeline_run_id, future.invocation_id,
                                           hydrate=False)
            if step_run.status not in waiting:
                return step_run
            time.sleep(interval)

    with _patch_lock:
        _patch_users[0] += 1
        future_class._wait_for_step_to_finish = wait_for_step_to_finish
    try:
        yield
    finally:
        with _patch_lock:
            _patch_users[0] -= 1
            if _patch_users[0] == 0:
                future_class._wait_for_step_to_finish = original
