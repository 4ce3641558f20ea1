"""The checks of the runner's `start_step` and `follow_step` (notebook 4), on real containers.

Each starts containers of its own on the engine (labelled with a token of
the check's, removed at the end, whatever happened): `start_step` must start
the step's container, label it with its attempt, and follow it in a thread of
its own; `follow_step` must put the container's end on the runner's queue,
even when the container was removed under its feet, and remove it.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from types import SimpleNamespace
from typing import Any, Callable, Dict, List

from orchestrator.teaching.check_base import _Checker, _removed


class _StartRunner:
    """A stand-in Runner for `start_step`, with the real Docker client."""

    def __init__(self, client: Any, kwargs: Dict[str, Any], run_id: str) -> None:
        self.client = client
        self.plans = {"train": SimpleNamespace(kwargs=kwargs, upstream=[], retry=None)}
        self.run_info = SimpleNamespace(pipeline_run_id=run_id, orchestrator_run_id="orch-1",
                                        pipeline_name="check", run_name="check-run")
        self.states = {"train": "pending"}
        self.attempts = {"train": 0}
        self.containers: Dict[str, Any] = {}
        self.ended: "queue.Queue" = queue.Queue()
        self.followed: List[Any] = []
        self.release = threading.Event()

    def follow_step(self, step: str, attempt: int, container: Any) -> None:
        self.followed.append((step, attempt, container.id, threading.current_thread().name))
        self.release.wait(30)  # a container that runs a while


def check_start_step(start_step: Callable, image: str = "") -> List[str]:
    from orchestrator.conformance.image import step_image
    from orchestrator.machine.engine import connect
    from orchestrator.teaching.solutions import ATTEMPT_LABEL, PIPELINE_RUN_ID_LABEL, STEP_LABEL

    c = _Checker("start_step")
    client = connect()
    token = "check-" + uuid.uuid4().hex[:10]
    image = image or step_image(client)
    kwargs = {"image": image, "command": ["sh", "-c", "sleep 20"], "entrypoint": [],
              "detach": True}
    runner = _StartRunner(client, kwargs, token)
    try:
        for attempt in (1, 2):
            runner.release.clear()
            done = threading.Event()
            result: List[Any] = []

            def call(result: List[Any] = result, done: threading.Event = done) -> None:
                try:
                    start_step(runner, "train")
                except BaseException as error:  # noqa: BLE001 - shown below
                    result.append(error)
                done.set()

            threading.Thread(target=call, daemon=True).start()
            shown = (f"start_step(runner, 'train') (attempt {attempt}; the plan's kwargs run "
                     "`sleep 20` detached)")
            returned = done.wait(20)
            c.expect(returned, "returns at once, while the container runs",
                     "it did not return within 20 s", "the loop must go on starting other "
                     "steps: follow the container in a thread (threading.Thread(target="
                     "self.follow_step, ...).start()), do not call follow_step yourself",
                     given=shown)
            runner.release.set()
            if result:
                c.fail("it returns an answer", shown,
                       f"it raised {type(result[0]).__name__}: {result[0]}",
                       "an exception here stops the whole pipeline run")
            container = runner.containers.get("train")
            c.expect(container is not None and runner.states["train"] == "running",
                     "the step's container is in runner.containers, its state 'running'",
                     {"containers": list(runner.containers), "states": runner.states},
                     "the loop counts running containers for its free slots", given=shown)
            labels = client.containers.get(container.id).labels
            c.expect(runner.attempts["train"] == attempt
                     and labels.get(ATTEMPT_LABEL) == str(attempt)
                     and labels.get(STEP_LABEL) == "train"
                     and labels.get(PIPELINE_RUN_ID_LABEL) == token,
                     f"attempt {attempt}: attempts counted, the container carries "
                     "container_labels(run_info, step, attempt)",
                     {"attempts": runner.attempts, "labels": {k: labels.get(k) for k in (
                         STEP_LABEL, ATTEMPT_LABEL, PIPELINE_RUN_ID_LABEL)}},
                     "the labels find a run's containers (stop, cleanup, the panel); the "
                     "attempt tells a retry from the first try", given=shown)
            deadline = time.monotonic() + 10
            while len(runner.followed) < attempt and time.monotonic() < deadline:
                time.sleep(0.05)
            followed = runner.followed[attempt - 1] if len(runner.followed) >= attempt else None
            c.expect(followed is not None and followed[:3] == ("train", attempt, container.id)
                     and followed[3] != threading.current_thread().name,
                     f"follow_step('train', {attempt}, container) runs in a thread of its own",
                     followed, "its end reaches the loop through the queue", given=shown)
            container.remove(force=True)
            runner.states["train"] = "pending"
            runner.containers.clear()
    finally:
        runner.release.set()
        for leftover in client.containers.list(
                all=True, ignore_removed=True,
                filters={"label": f"{PIPELINE_RUN_ID_LABEL}={token}"}):
            try:
                leftover.remove(force=True)
            except Exception:  # noqa: BLE001
                pass
        client.close()
    return c.verified


def check_follow_step(follow_step: Callable, image: str = "") -> List[str]:
    from orchestrator.conformance.image import step_image
    from orchestrator.machine.engine import connect

    c = _Checker("follow_step")
    client = connect()
    token = uuid.uuid4().hex[:10]
    labels = {"io.my-docker.exercise-check": token}
    image = image or step_image(client)
    runner = SimpleNamespace(ended=queue.Queue())
    made = []
    try:
        container = client.containers.run(image, ["sh", "-c", "echo working; exit 3"],
                                          entrypoint=[], detach=True, labels=labels)
        made.append(container)
        shown = "follow_step(runner, 'train', 2, <a started container: echo working; exit 3>)"
        c.call_shown(shown, follow_step, runner, "train", 2, container)
        got = runner.ended.get_nowait() if not runner.ended.empty() else "nothing on the queue"
        c.expect(got == ("train", 2, 3), "puts (step, attempt, exit code) on runner.ended: "
                 "('train', 2, 3)", got, "the loop learns of each end from the queue, and "
                 "the attempt tells which try ended", given=shown)
        c.expect(_removed(client, container.id), "the container is gone after its end "
                 "(follow_container removes it)", "still on the engine",
                 "a run must leave no container behind", given=shown)
        gone = client.containers.run(image, ["sh", "-c", "exit 0"], entrypoint=[],
                                     detach=True, labels=labels)
        made.append(gone)
        gone.remove(force=True)
        shown = "follow_step(runner, 'train', 1, <a container removed under our feet>)"
        c.call_shown(shown, follow_step, runner, "train", 1, gone)
        got = runner.ended.get_nowait() if not runner.ended.empty() else "nothing on the queue"
        c.expect(got == ("train", 1, -1), "a container lost under our feet: ('train', 1, -1) "
                 "on the queue, no exception", got, "an exception would end the thread "
                 "silently, and the loop would wait for that end forever", given=shown)
    finally:
        for made_container in made:
            try:
                made_container.remove(force=True)
            except Exception:  # noqa: BLE001
                pass
        client.close()
    return c.verified
