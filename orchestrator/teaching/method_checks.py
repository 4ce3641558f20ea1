"""The checks of the pieces that are methods, by the piece they check.

Each method is called with a stand-in for ``self``: a small object with the
attributes and helper methods the scaffolding's class has, which records what
the method did. The checks live by what they check: the orchestrator's
methods ZenML calls (`orchestrator_method_checks`: notebooks 2 and 6), the
runner's loop on simulated containers (`loop_checks`: notebook 4), its start
and following of real containers (`container_checks`: notebook 4), and its
reactions to an end, a stop and Ctrl-C (`failure_checks`: notebook 5).
"""

from __future__ import annotations

from typing import Callable, Dict, List

from orchestrator.teaching.container_checks import check_follow_step, check_start_step
from orchestrator.teaching.failure_checks import (
    check_check_stop_request,
    check_on_end,
    check_on_interrupt,
    check_start_due_retries,
)
from orchestrator.teaching.loop_checks import check_run
from orchestrator.teaching.orchestrator_method_checks import (
    check_client_is_gone,
    check_fetch_status,
    check_get_orchestrator_run_id,
)

# piece -> its check (`checks.CHECKS` takes these in).
METHOD_CHECKS: Dict[str, Callable[..., List[str]]] = {
    "get_orchestrator_run_id": check_get_orchestrator_run_id,
    "run": check_run,
    "start_step": check_start_step,
    "follow_step": check_follow_step,
    "start_due_retries": check_start_due_retries,
    "on_end": check_on_end,
    "check_stop_request": check_check_stop_request,
    "on_interrupt": check_on_interrupt,
    "client_is_gone": check_client_is_gone,
    "fetch_status": check_fetch_status,
}
