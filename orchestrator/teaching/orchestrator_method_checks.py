"""The checks of the orchestrator's methods ZenML calls outside the run loop.

`get_orchestrator_run_id` (notebook 2), which ZenML calls in each step's
container, and `fetch_status` (notebook 6), which ZenML calls to learn a
run's status, with its helper `client_is_gone` (whether the process running
the loop is gone). Each is called with a stand-in for ``self``; the processes
`client_is_gone` is asked about are real ones, started and ended here.
"""

from __future__ import annotations

import os
import time
from types import SimpleNamespace
from typing import Any, Callable, Dict, List

from orchestrator.teaching.check_base import _Checker, variable_kept

# --------------------------------------------------------------------------
# notebook 2
# --------------------------------------------------------------------------


def check_get_orchestrator_run_id(get_orchestrator_run_id: Callable) -> List[str]:
    from orchestrator.teaching.solutions import RUN_ID_VARIABLE

    c = _Checker("get_orchestrator_run_id")
    with variable_kept(RUN_ID_VARIABLE):
        for value in ("run-1111", "run-2222"):
            os.environ[RUN_ID_VARIABLE] = value
            first = c.call_shown(f"get_orchestrator_run_id(self) with {RUN_ID_VARIABLE}="
                                 f"{value!r}", get_orchestrator_run_id, None)
            second = get_orchestrator_run_id(None)
            c.expect(first == value and second == value,
                     f"returns {RUN_ID_VARIABLE} of the step's environment ({value!r}), the "
                     "same on every call", [first, second],
                     "every step of one run must give ZenML the same id: ZenML finds the run's "
                     "record by it (a new uuid per call makes each step a run of its own)")
        del os.environ[RUN_ID_VARIABLE]
        shown = f"get_orchestrator_run_id(self) with {RUN_ID_VARIABLE} not set"
        try:
            got: Any = get_orchestrator_run_id(None)
        except Exception as error:  # noqa: BLE001 - any clear error is right
            got = None
            c.verified.append(f"outside a step (variable not set): an error "
                              f"({type(error).__name__})")
        else:
            c.fail("outside a step (variable not set): an error, not an id", shown, got,
                   "an id made up on the spot belongs to no run: the step's record would "
                   "go nowhere")
    return c.verified


# --------------------------------------------------------------------------
# notebook 6: who runs the loop, and fetch_status
# --------------------------------------------------------------------------


def _dead_pid() -> int:
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def check_client_is_gone(client_is_gone: Callable) -> List[str]:
    import socket
    import subprocess
    import sys

    from orchestrator.teaching.solutions import CLIENT_HOST_LABEL, CLIENT_PID_LABEL

    c = _Checker("client_is_gone")
    host = socket.gethostname()

    def labels(pid: Any, on: str = host) -> Dict[str, str]:
        return {CLIENT_HOST_LABEL: on, CLIENT_PID_LABEL: str(pid)}

    got = c.call(client_is_gone, labels(os.getpid()))
    c.expect(got is False, "this process (alive): False", got,
             "a live run must not be called failed")
    got = c.call(client_is_gone, labels(_dead_pid()))
    c.expect(got is True, "a process that exited and was reaped: True", got,
             "nobody will start the run's next step: fetch_status says FAILED")
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 10
        import psutil

        while time.monotonic() < deadline and psutil.Process(zombie.pid).status() \
                != psutil.STATUS_ZOMBIE:
            time.sleep(0.05)
        got = c.call(client_is_gone, labels(zombie.pid))
        c.expect(got is True, "a process that exited but was not reaped yet (a zombie): True",
                 got, "a zombie's pid still exists (psutil.pid_exists says True), but it "
                 "runs nothing: ask psutil.Process(pid).status()")
    finally:
        zombie.wait()
    got = c.call(client_is_gone, labels(_dead_pid(), on="another-host.example"))
    c.expect(got is False, "a pid on another machine: False (cannot be told: alive)", got,
             "a pid means nothing on another host; calling a live run failed is worse")
    got = c.call(client_is_gone, {CLIENT_HOST_LABEL: host, CLIENT_PID_LABEL: "not-a-pid"})
    c.expect(got is False, "a pid label that is not a number: False, no exception", got,
             "a container labelled by someone else must not break fetch_status")
    return c.verified


class _Found:
    """A container as docker-py lists it: its labels and its state (data, not a client)."""

    def __init__(self, step: str, status: str, pid: int) -> None:
        import socket

        from orchestrator.teaching.solutions import (
            CLIENT_HOST_LABEL,
            CLIENT_PID_LABEL,
            STEP_LABEL,
        )

        self.labels = {STEP_LABEL: step, CLIENT_HOST_LABEL: socket.gethostname(),
                       CLIENT_PID_LABEL: str(pid)}
        self.status = status

    def __repr__(self) -> str:
        return f"<container of {self.labels} {self.status}>"


def check_fetch_status(fetch_status: Callable) -> List[str]:
    from zenml.enums import ExecutionStatus as S

    c = _Checker("fetch_status")
    run = SimpleNamespace(id="run-1")
    alive, dead = os.getpid(), _dead_pid()

    def orchestrator(recorded_run: Any, recorded_steps: Dict[str, Any],
                     found: List[_Found]) -> Any:
        return SimpleNamespace(recorded=lambda r: (recorded_run, dict(recorded_steps)),
                               run_containers=lambda r: list(found))

    cases = [
        ("a run going on: the record says RUNNING, step b's container runs",
         (S.RUNNING, {"a": S.COMPLETED}, [_Found("b", "running", alive)]),
         (S.RUNNING, {"a": S.COMPLETED, "b": S.RUNNING}),
         "ZenML's record of b comes when b ends; its container says it runs now"),
        ("the process running the loop died: the record still says RUNNING, b's container "
         "exited", (S.RUNNING, {"a": S.COMPLETED}, [_Found("b", "exited", dead)]),
         (S.FAILED, {"a": S.COMPLETED, "b": S.FAILED}),
         "nobody will finish that record: the run is over, failed"),
        ("a stopped run: the record says STOPPING, no container left",
         (S.STOPPING, {"a": S.COMPLETED}, []), (S.STOPPED, {"a": S.COMPLETED}),
         "a status that says RUNNING (or STOPPING) after the run stopped never settles"),
    ]
    for claim, (recorded_run, recorded_steps, found), (status, steps), why in cases:
        me = orchestrator(recorded_run, recorded_steps, found)
        shown = (f"fetch_status(self, run, include_steps=True) where self.recorded(run) = "
                 f"({recorded_run.value}, {recorded_steps}) and self.run_containers(run) = "
                 f"{found}")
        got = c.call_shown(shown, fetch_status, me, run, True)
        c.expect(isinstance(got, tuple) and len(got) == 2 and got[0] == status
                 and got[1] == steps, f"{claim}: {status.value}, steps {steps}", got, why,
                 given=shown)
    me = orchestrator(S.RUNNING, {"a": S.COMPLETED}, [_Found("b", "running", alive)])
    got = c.call_shown("fetch_status(self, run) (include_steps left False)", fetch_status,
                       me, run)
    c.expect(isinstance(got, tuple) and len(got) == 2 and got[1] is None,
             "include_steps=False: (status, None)", got,
             "ZenML asks for the steps only when it needs them")
    return c.verified
